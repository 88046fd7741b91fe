"""Why an ingestion run stops: a bad input, an output it cannot write, an interruption.

::

    IngestError          a bad input line, a duplicate id, an empty text, an output
     │                   that --resume cannot continue
     ├── OutputError     the output cannot be written (no folder, no permission, disk full)
     └── Interrupted     Ctrl-C: what was written is kept

Each message is one line that names the file and line it is about. What was
written before the error stays written, in whole records.
"""

from __future__ import annotations

from pathlib import Path

__all__ = ["IngestError", "Interrupted", "OutputError"]


class IngestError(Exception):
    """A bad input, or an output a run cannot continue; the message names the file and line."""


class OutputError(IngestError):
    """The output cannot be written."""


class Interrupted(IngestError):
    """The run was interrupted; the message says what was kept."""


def cannot_write(path: Path | str, exc: OSError) -> OutputError:
    return OutputError(f"cannot write {path}: {exc.strerror or exc}")

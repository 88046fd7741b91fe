"""The output of ``hf-endpoint embed``: JSONL appended in whole records, the sidecar that
records what made it, ``--resume``, and the writer thread.

The sidecar (``OUTPUT.meta.json``) lets ``--resume`` refuse to mix the vectors of
two models or two chunking settings in one file. Both engines write through
``Output`` and ``Writer``, and both stop through ``write_run``: what was written
before an error or an interruption stays written, in whole records.
"""

from __future__ import annotations

import json
import os
import queue
import signal
import sys
import threading
from collections.abc import Callable
from pathlib import Path
from typing import IO, Any, Protocol

import httpx
import orjson
from tqdm import tqdm

from .. import __version__
from ..config.settings import ChunkingSettings
from .errors import IngestError, Interrupted, OutputError, cannot_write
from .records import IdIndex
from .work import Plan

__all__ = [
    "SIDECAR_FORMAT",
    "SIDECAR_SUFFIX",
    "Batch",
    "Output",
    "WriteFailed",
    "Writer",
    "provenance",
    "public_url",
    "write_run",
]

SIDECAR_SUFFIX = ".meta.json"
SIDECAR_FORMAT = "hf-endpoint embed 1"

# What must agree between an output file and a run that resumes it.
_COMPARED = (
    "url",
    "model_id",
    "dimensions",
    "chunking_settings",
    "truncate",
    "normalize",
    "text",
    "document_prefix",
    "query_prefix",
)


def public_url(url: str) -> str:
    """The URL without user, password, query or fragment: what the sidecar may hold."""
    try:
        parsed = httpx.URL(url)
    except httpx.InvalidURL:
        return "<invalid URL>"
    return str(parsed.copy_with(userinfo=b"", query=None, fragment=None))


def provenance(
    *,
    url: str,
    model_id: str | None,
    plan: Plan,
    truncate: bool | None,
    normalize: bool | None,
    document_prefix: str | None,
    query_prefix: str | None,
    input: str,
    batch_size: int,
    max_concurrency: int,
    rate_limit: int,
) -> dict[str, Any]:
    """What the sidecar records; ``rate_limit`` is what applied (the option's, the config
    file's, or 3000)."""
    settings: ChunkingSettings | None = plan.settings
    return {
        "format": SIDECAR_FORMAT,
        "hf_endpoint": __version__,
        "url": public_url(url),
        "model_id": model_id,
        "dimensions": None,
        "chunking_settings": None if settings is None else settings.to_dict(),
        "truncate": truncate,
        "normalize": normalize,
        "text": plan.with_text,
        "document_prefix": document_prefix,
        "query_prefix": query_prefix,
        "input": input,
        "batch_records": plan.batch_records,
        "batch_size": batch_size,
        "max_concurrency": max_concurrency,
        "rate_limit": rate_limit,
    }


def _differences(recorded: dict[str, Any], now: dict[str, Any]) -> list[str]:
    """What differs between two provenances; an unknown model id or width differs from nothing."""
    out = []
    for key in _COMPARED:
        there, here = recorded.get(key), now.get(key)
        if key in ("model_id", "dimensions") and (there is None or here is None):
            continue
        if there != here:
            out.append(
                f"{key} {json.dumps(there, ensure_ascii=False)} there, "
                f"{json.dumps(here, ensure_ascii=False)} now"
            )
    return out


class Output:
    """The JSONL output of ``embed`` and its sidecar ``OUTPUT.meta.json``."""

    def __init__(self, path: Path, provenance: dict[str, Any], expected: int = 0) -> None:
        self.path = path
        self.sidecar = path.with_name(path.name + SIDECAR_SUFFIX)
        self.provenance = provenance
        self.done = IdIndex(expected)
        self.file: IO[bytes] | None = None
        self.size = 0  # bytes of whole records in the file
        self.created = False  # by this run: removed again if no record reaches it

    def open(self) -> None:
        """Check what an existing output holds and open it for appending."""
        self.created = not self.path.exists()
        if not self.created and self.path.stat().st_size > 0:
            self._check_sidecar()
            self._read_done()
        self.write_sidecar()
        try:
            self.file = self.path.open("ab")
        except OSError as exc:
            raise cannot_write(self.path, exc) from None
        self.size = self.file.tell()

    def _check_sidecar(self) -> None:
        try:
            recorded = json.loads(self.sidecar.read_text("utf-8"))
        except FileNotFoundError:
            raise IngestError(
                f"{self.path} has no {self.sidecar.name} beside it, so nothing tells what made it: "
                "write to a new file"
            ) from None
        except (OSError, ValueError) as exc:
            raise IngestError(f"cannot read {self.sidecar}: {exc}") from None
        if not isinstance(recorded, dict) or recorded.get("format") != SIDECAR_FORMAT:
            raise IngestError(f"{self.sidecar} is not an hf-endpoint embed sidecar")
        differences = _differences(recorded, self.provenance)
        if differences:
            raise IngestError(
                f"{self.path} was written with other settings ({'; '.join(differences)}): "
                "resume with the same ones, or write to a new file"
            )
        for key in ("model_id", "dimensions"):
            if self.provenance[key] is None:
                self.provenance[key] = recorded.get(key)

    def _read_done(self) -> None:
        """The ids already written; a last line cut short by an interruption is removed."""
        try:
            with self.path.open("r+b") as f:
                end = f.seek(0, os.SEEK_END)
                keep = end
                while keep > 0:
                    f.seek(max(0, keep - 65536))
                    block = f.read(keep - f.tell())
                    newline = block.rfind(b"\n")
                    if newline >= 0:
                        keep = keep - len(block) + newline + 1
                        break
                    keep -= len(block)
                if keep < end:
                    f.truncate(keep)
                f.seek(0)
                for number, line in enumerate(f, 1):
                    self.done.setdefault(self._written_id(number, line), number)
        except OSError as exc:
            raise cannot_write(self.path, exc) from None

    def _written_id(self, number: int, line: bytes) -> str | int:
        try:
            row = orjson.loads(line)
        except orjson.JSONDecodeError as exc:
            raise IngestError(
                f"{self.path}:{number}: not valid JSON ({exc}): --resume continues only files "
                "that hf-endpoint embed wrote"
            ) from None
        doc_id = row.get("id") if isinstance(row, dict) else None
        if isinstance(doc_id, bool) or not isinstance(doc_id, (str, int)):
            raise IngestError(
                f'{self.path}:{number}: no "id": --resume continues only files that '
                "hf-endpoint embed wrote"
            )
        return doc_id

    def write_sidecar(self) -> None:
        partial = self.sidecar.with_name(self.sidecar.name + ".partial")
        try:
            partial.write_text(json.dumps(self.provenance, indent=2, ensure_ascii=False) + "\n")
            os.replace(partial, self.sidecar)
        except OSError as exc:
            raise cannot_write(self.sidecar, exc) from None

    def check_dimensions(self, width: int | None) -> None:
        """Record the vectors' width on the first answer; refuse a different one later."""
        if width is None:
            return
        recorded = self.provenance["dimensions"]
        if recorded is None:
            self.provenance["dimensions"] = width
            self.write_sidecar()
        elif recorded != width:
            raise IngestError(
                f"the endpoint answers vectors of {width} dimensions, {self.path} holds {recorded}: "
                "resume against the same model, or write to a new file"
            )

    def write(self, data: bytes) -> None:
        """Append whole records; on failure, cut the file back to the records before them."""
        assert self.file is not None
        try:
            self.file.write(data)
            self.file.flush()
        except OSError:
            try:
                self.file.truncate(self.size)
            except OSError:
                pass
            raise
        self.size += len(data)

    def close(self) -> None:
        if self.file is not None:
            try:
                self.file.close()
            except OSError:
                pass  # what could not be flushed was reported by write()
            self.file = None

    def discard_if_empty(self) -> bool:
        """Remove the output and its sidecar when this run made them and wrote no record,
        so that a failed first run does not stand in the way of the next."""
        if not self.created or self.size > 0:
            return False
        for path in (self.path, self.sidecar):
            try:
                path.unlink(missing_ok=True)
            except OSError:
                return False
        return True


class Batch(Protocol):
    """Embedded records on their way to the output."""

    records: int
    chunks: int

    def render(self) -> bytes:
        """The batch's output lines."""
        ...


class WriteFailed(Exception):
    """The writer thread could not write; its error says why."""


class Writer:
    """Renders and appends batches in a thread of its own, in order, so that the next
    batch's requests are in flight while this one is written. At most one batch waits."""

    def __init__(self, output: Output, progress: tqdm[Any]) -> None:
        self.output = output
        self.progress = progress
        self.records = 0
        self.chunks = 0
        self.error: OSError | None = None
        self._queue: queue.Queue[Batch | None] = queue.Queue(maxsize=1)
        self._thread = threading.Thread(target=self._run, name="hf-endpoint-writer", daemon=True)
        self._thread.start()

    def put(self, batch: Batch) -> None:
        if self.error is not None:
            raise WriteFailed
        self._queue.put(batch)

    def _run(self) -> None:
        while (batch := self._queue.get()) is not None:
            if self.error is not None:
                continue  # drain: nothing more is written after a failed write
            try:
                self.output.write(batch.render())
            except OSError as exc:
                self.error = exc
                continue
            self.records += batch.records
            self.chunks += batch.chunks
            self.progress.update(batch.records)

    def close(self) -> None:
        """Write what is queued, then stop."""
        self._queue.put(None)
        self._thread.join()


def write_run(
    output: Output,
    total: int | None,
    quiet: bool,
    embed: Callable[[Writer], None],
    on_interrupt: Callable[[], None] = lambda: None,
) -> Writer:
    """Open ``output`` and let ``embed`` put its batches to a writer; whatever stops the run,
    what was embedded is written, and an output this run made stays only if a record
    reached it.

    ``total``: the input's records when known (the progress bar's end); ``on_interrupt``:
    what to silence once Ctrl-C stopped the run (requests cut short must not report
    themselves)."""
    progress = tqdm(  # disable=None: shown on a terminal only
        total=total, unit="record", file=sys.stderr, disable=True if quiet else None
    )
    writer = Writer(output, progress)
    interrupted = discarded = False
    try:
        # Opened here, so that a Ctrl-C at any moment after the output exists is the one
        # handled below, which removes an output that got no record.
        output.open()
        progress.n = len(output.done)  # the records a resumed run finds written
        progress.refresh()
        embed(writer)
    except KeyboardInterrupt:
        interrupted = True
        on_interrupt()
        # Stopping is under way: a second Ctrl-C must not cut it short, here or while the
        # interpreter joins the client's threads at exit (its noise: `Exception ignored in
        # <module 'threading'>`), so Ctrl-C stays ignored until the process ends.
        _ignore_interrupts()
    except WriteFailed:
        pass
    finally:
        previous = _ignore_interrupts()
        try:
            writer.close()
            progress.close()
            output.close()
            discarded = output.discard_if_empty()
        finally:
            if not interrupted:
                _restore_interrupts(previous)
    kept = f"{writer.records} records written to {output.path} are kept"
    if discarded:
        kept = f"no record was written, so {output.path} is not left behind"
    if writer.error is not None:
        raise OutputError(
            f"cannot write {output.path}: {writer.error.strerror or writer.error}; {kept}"
        )
    if interrupted:
        resume = "" if discarded else "; --resume continues from there"
        raise Interrupted(f"interrupted: {kept}{resume}")
    return writer


def _ignore_interrupts() -> Any:
    """While the output is closed, a second Ctrl-C must not cut it short."""
    if threading.current_thread() is not threading.main_thread():
        return None
    return signal.signal(signal.SIGINT, signal.SIG_IGN)


def _restore_interrupts(previous: Any) -> None:
    if previous is not None:
        signal.signal(signal.SIGINT, previous)

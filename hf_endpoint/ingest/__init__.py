"""One ingestion engine: records read, given ids and checked, chunked, embedded, written
with their provenance, and resumed.

* ``records``: reading JSONL records (or whole texts), their ids, duplicate ids and
  empty texts refused with the file and line.
* ``work``: what a run does to one batch of records (chunk, embed, render a line each).
* ``output``: the JSONL output, its sidecar ``OUTPUT.meta.json``, ``--resume`` and the
  writer thread.
* ``local``: the engine that runs the batches in this process.
* ``ray``: the engine that runs the same batches on Ray Data workers (the ``ray``
  extra; not imported here).

``hf-endpoint chunk`` and ``hf-endpoint embed`` are argument parsing over this package.
"""

from __future__ import annotations

from .errors import IngestError, Interrupted, OutputError
from .output import Output, provenance
from .records import IdIndex, Record, Skipped
from .work import Plan

__all__ = [
    "IdIndex",
    "IngestError",
    "Interrupted",
    "Output",
    "OutputError",
    "Plan",
    "Record",
    "Skipped",
    "provenance",
]

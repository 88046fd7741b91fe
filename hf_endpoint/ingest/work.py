"""What a run does to one batch of records, wherever it runs: chunk, embed, render.

The local engine calls these in its own process; the Ray engine in its workers.
Both write the bytes ``jsonl_lines`` renders, so their outputs are the same.
"""

from __future__ import annotations

import json
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from typing import Any

import orjson

from ..chunking import chunk_offsets
from ..client import EmbeddedChunk, EmbeddingClient
from ..config.settings import ChunkingSettings
from .records import Record

__all__ = ["Plan", "chunk_lines", "embed_batch", "jsonl_lines", "width"]


@dataclass(frozen=True)
class Plan:
    """How a run embeds: the chunking settings (None: the client's), whether the records
    are queries, whether each chunk's text is written, and how many records go per batch."""

    settings: ChunkingSettings | None = None
    query: bool = False
    with_text: bool = False
    batch_records: int = 64


def embed_batch(
    client: EmbeddingClient, plan: Plan, records: Sequence[Record]
) -> list[list[EmbeddedChunk]]:
    """Each record's chunks with their vectors, in order."""
    return client.embed_chunks([r.text for r in records], plan.settings, query=plan.query)


def width(results: Sequence[Sequence[EmbeddedChunk]]) -> int | None:
    """The vectors' dimensions, or None when no record had a chunk."""
    return next((len(chunks[0].embedding) for chunks in results if chunks), None)


def jsonl_lines(
    records: Sequence[Record], results: Sequence[Sequence[EmbeddedChunk]], with_text: bool
) -> bytes:
    """One output line per record: ``{"id", "chunks": [{"start", "end", ["text",] "embedding"}]}``."""
    lines = []
    for record, chunks in zip(records, results):
        if with_text:
            rendered = [
                {"start": c.start, "end": c.end, "text": c.text, "embedding": c.embedding}
                for c in chunks
            ]
        else:
            rendered = [{"start": c.start, "end": c.end, "embedding": c.embedding} for c in chunks]
        lines.append(orjson.dumps({"id": record.id, "chunks": rendered}))
    lines.append(b"")
    return b"\n".join(lines)


def _dumps_line(row: dict[str, Any]) -> bytes:
    try:
        return orjson.dumps(row, option=orjson.OPT_APPEND_NEWLINE)
    except TypeError:  # a lone surrogate from undecodable input bytes: escape it
        return json.dumps(row).encode("ascii") + b"\n"


def chunk_lines(record: Record, settings: ChunkingSettings) -> Iterator[bytes]:
    """``hf-endpoint chunk``'s lines for one record: ``{"id", "chunk", "start", "end", "text"}``."""
    text = record.text
    for i, (start, end) in enumerate(chunk_offsets(text, settings)):
        yield _dumps_line(
            {"id": record.id, "chunk": i, "start": start, "end": end, "text": text[start:end]}
        )

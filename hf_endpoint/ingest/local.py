"""The local engine: records embedded in this process, batch after batch, written behind
by a thread of their own.

The client keeps ``max_concurrency`` requests in flight within a batch; the writer
thread renders and appends one batch while the next one's requests are answered.
"""

from __future__ import annotations

from collections.abc import Callable

from ..client import EmbeddedChunk, EmbeddingClient
from .errors import IngestError
from .output import Output, Writer, write_run
from .records import Record, Skipped, checked, jsonl_records, open_input, to_embed
from .work import Plan, embed_batch, jsonl_lines, width

__all__ = ["embed_file"]


class _Embedded:
    """A batch of records and their embedded chunks, rendered by the writer thread."""

    def __init__(
        self, records: list[Record], results: list[list[EmbeddedChunk]], with_text: bool
    ) -> None:
        self._batch = records
        self._results = results
        self._with_text = with_text
        self.records = len(records)
        self.chunks = sum(len(chunks) for chunks in results)

    def render(self) -> bytes:
        return jsonl_lines(self._batch, self._results, self._with_text)


def embed_file(
    source: str,
    output: Output,
    client: EmbeddingClient,
    plan: Plan,
    *,
    total: int | None = None,
    skipped: Skipped | None = None,
    quiet: bool = False,
    on_interrupt: Callable[[], None] = lambda: None,
) -> Writer:
    """Embed the JSONL records of ``source`` (``-``: standard input) into ``output``, in
    batches of ``plan.batch_records``; records already in the output (``--resume``) are
    skipped. A bad input line stops the run after the records before it are written.

    ``total``: the input's records when known; ``skipped``: counts the empty texts left
    out (``--skip-empty``; without it an empty text is an error). Returns the writer,
    which counts the records and chunks written."""

    def embed(writer: Writer) -> None:
        pending: list[Record] = []

        def send() -> None:
            if pending:
                results = embed_batch(client, plan, pending)
                output.check_dimensions(width(results))
                writer.put(_Embedded(list(pending), results, plan.with_text))
                pending.clear()

        with open_input(source) as stream:
            records = jsonl_records(source, enumerate(stream, 1))
            try:
                for record in to_embed(
                    source, checked(source, records, skipped, total or 0), output.done
                ):
                    pending.append(record)
                    if len(pending) >= plan.batch_records:
                        send()
            except IngestError:
                send()
                raise
            send()

    return write_run(output, total, quiet, embed, on_interrupt)

"""The Ray engine: the local engine's per-batch work (``work.embed_batch``) on Ray Data,
within one rate limit for the whole cluster.

Needs the ``ray`` extra (``pip install 'hf-endpoint[ray]'``)::

    import ray
    from hf_endpoint.ray import embed_dataset

    records = ray.data.read_json("docs.jsonl", lines=True)  # "text", optional "id", ...
    chunks = embed_dataset(records, put_body, concurrency=4)
    chunks.write_parquet("chunks/")

``embed_dataset`` maps batches of records through a pool of actors that each
hold one ``EmbeddingClient``: the same chunking settings, batching, retries and
errors as the client, and Ray's own fault tolerance (a worker that dies is
restarted and its batch is run again; a batch's output only exists once the
batch succeeded, so every chunk appears exactly once). Every actor takes its
rate-limit slots from one ``ClusterLimiter`` (``hf_endpoint.ingest.limiter``).

``embed_file`` is ``hf-endpoint embed --engine ray``: the records of a JSONL file
read, given ids and checked in the driver as the local engine reads them, embedded
and rendered by the workers, and written by the driver through the local engine's
``Output``: the same lines, sidecar and ``--resume``.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import logging
import os
import tempfile
from collections.abc import Callable, Iterator, Mapping
from pathlib import Path
from typing import Any

import numpy as np
import pyarrow as pa
import ray

from ..client import EmbeddingClient
from ..config.settings import ChunkingSettings, InferenceConfig
from ..errors import ConfigError, HFEndpointError
from .errors import IngestError
from .limiter import cluster_limiter
from .output import Output, Writer, write_run
from .records import IdIndex, Record, Skipped, checked, jsonl_records, open_input, to_embed
from .work import Plan, embed_batch, jsonl_lines, width

__all__ = ["OUTPUT_COLUMNS", "embed_dataset", "embed_file", "embed_jsonl"]

logger = logging.getLogger(__name__)

OUTPUT_COLUMNS = ("id", "chunk", "start", "end", "text", "embedding")


def _text_id(text: str) -> str:
    """The id of a dataset's record without one: its text's SHA-256 (equal texts, equal ids)."""
    return hashlib.sha256(text.encode("utf-8", "surrogatepass")).hexdigest()[:32]


def _with_limiter(client: EmbeddingClient, limiter: Any) -> EmbeddingClient:
    """A copy of ``client`` that takes its slots from ``limiter``.

    Made through the client's pickling, which is how a client travels to another
    process with its key; the copy pickles the same way, with the limiter."""
    state = client.__getstate__()
    state["limiter"] = limiter
    copy = type(client).__new__(type(client))
    copy.__setstate__(state)
    return copy


def _api_key(client: EmbeddingClient) -> str | None:
    """The key ``client`` sends, as its pickling hands it on (to name the cluster's limiter)."""
    key: str | None = client.__getstate__()["api_key"]
    return key


class _Embedder:
    """One actor of the pool: a client, and records in, chunks (or output lines) out."""

    def __init__(
        self, client: EmbeddingClient, plan: Plan, text_column: str, id_column: str, lines: bool
    ) -> None:
        self.client = client
        self.plan = plan
        self.text_column = text_column
        self.id_column = id_column
        self.lines = lines

    def __call__(self, batch: pa.Table) -> pa.Table:
        if self.lines:
            return self._lines(batch)
        return self._chunks(batch)

    def _lines(self, batch: pa.Table) -> pa.Table:
        """The records of ``embed_file`` (``line``, ``id`` as JSON, ``text``) to output lines."""
        records = [
            Record(line, json.loads(doc_id), text)
            for line, doc_id, text in zip(
                batch.column("line").to_pylist(),
                batch.column("id").to_pylist(),
                batch.column("text").to_pylist(),
            )
        ]
        results = embed_batch(self.client, self.plan, records)
        return pa.table(
            {
                "line": pa.array([r.line for r in records], pa.int64()),
                "row": pa.array(
                    [jsonl_lines([r], [c], self.plan.with_text) for r, c in zip(records, results)],
                    pa.binary(),
                ),
                "chunks": pa.array([len(c) for c in results], pa.int64()),
                "width": pa.array([width([c]) for c in results], pa.int64()),
            }
        )

    def _chunks(self, records: pa.Table) -> pa.Table:
        """Any dataset's records to one row per chunk, with the records' other columns."""
        columns = records.column_names
        texts = records.column(self.text_column).to_pylist()
        ids: list[Any] = (
            records.column(self.id_column).to_pylist()
            if self.id_column in columns
            else [None] * len(texts)
        )
        for i, text in enumerate(texts):
            if not isinstance(text, str):
                who = ids[i] if ids[i] is not None else f"at row {i} of its batch"
                raise ConfigError(
                    f"record {who}: [{self.text_column}] must be a string, "
                    f"not {type(text).__name__}"
                )
        ids = [i if i is not None else _text_id(t) for i, t in zip(ids, texts)]
        batch = [Record(row, doc_id, text) for row, (doc_id, text) in enumerate(zip(ids, texts))]
        embedded = embed_batch(self.client, self.plan, batch)
        rows = [r for r, chunks in enumerate(embedded) for _ in chunks]
        flat = [c for chunks in embedded for c in chunks]
        dimensions = len(flat[0].embedding) if flat else 0
        vectors = np.asarray([c.embedding for c in flat], dtype=np.float32).reshape(-1)
        out = {
            "id": pa.array([ids[r] for r in rows]),
            "chunk": pa.array([k for chunks in embedded for k in range(len(chunks))], pa.int32()),
            "start": pa.array([c.start for c in flat], pa.int64()),
            "end": pa.array([c.end for c in flat], pa.int64()),
            "text": pa.array([c.text for c in flat], pa.string()),
            "embedding": pa.FixedSizeListArray.from_arrays(
                pa.array(vectors, pa.float32()), dimensions
            ),
        }
        carried = [c for c in columns if c not in (self.text_column, self.id_column)]
        if carried:
            taken = records.select(carried).take(pa.array(rows, pa.int64()))
            for name in carried:
                out[name] = taken.column(name)
        return pa.table(out)


def _pool(
    dataset: ray.data.Dataset,
    client: EmbeddingClient,
    plan: Plan,
    *,
    concurrency: int,
    num_cpus: float,
    limiter: Any,
    text_column: str = "text",
    id_column: str = "id",
    lines: bool = False,
) -> ray.data.Dataset:
    """``dataset`` mapped through ``concurrency`` actors, each with a copy of ``client``
    taking its slots from ``limiter`` (by default the cluster's for the client's endpoint)."""
    if limiter is None:
        limiter = cluster_limiter(
            client.url, _api_key(client), client.rate_limit.requests_per_minute
        )
    return dataset.map_batches(
        _Embedder,
        fn_constructor_kwargs={
            "client": _with_limiter(client, limiter),
            "plan": plan,
            "text_column": text_column,
            "id_column": id_column,
            "lines": lines,
        },
        batch_size=plan.batch_records,
        batch_format="pyarrow",
        compute=ray.data.ActorPoolStrategy(size=concurrency),
        num_cpus=num_cpus,
    )


def embed_dataset(
    dataset: ray.data.Dataset,
    endpoint: EmbeddingClient | InferenceConfig | Mapping[str, Any] | str,
    *,
    api_key: str | None = None,
    chunking_settings: ChunkingSettings | Mapping[str, Any] | None = None,
    concurrency: int = 2,
    records_per_batch: int = 64,
    num_cpus: float = 0.25,
    limiter: Any = None,
    text_column: str = "text",
    id_column: str = "id",
    **client_options: Any,
) -> ray.data.Dataset:
    """Chunk and embed a dataset of records; one row per chunk, lazily (as Ray Data is).

    * ``endpoint``: an Elasticsearch ``PUT _inference`` body (or ``InferenceConfig``),
      an ``EmbeddingClient`` whose settings the workers copy, or a URL (with
      ``api_key`` and any ``EmbeddingClient`` keyword in ``client_options``).
    * ``chunking_settings``: else the endpoint's, else Elasticsearch's default.
    * ``concurrency``: actors in the pool (workers), each with one client;
      ``records_per_batch``: records per ``map_batches`` call; ``num_cpus``: CPUs
      reserved per actor (they mostly wait on the endpoint).
    * ``limiter``: any object with ``try_acquire()``; by default ``cluster_limiter``
      for the endpoint's URL, key and rate.

    Records have a string ``text_column``, an optional ``id_column`` (without one,
    a record's id is its text's hash: a dataset has no file and line to name it by)
    and any other columns, which every chunk of the record carries. Rows: ``id``,
    ``chunk`` (its number in the record), ``start``, ``end``, ``text``
    (``record_text[start:end]``), ``embedding`` (a fixed-size float32 list), then the
    carried columns; ``(id, chunk)`` identifies a chunk. Errors are the client's,
    raised by Ray when the dataset runs.
    """
    client = _client_for(endpoint, api_key, client_options)
    settings = ChunkingSettings.coerce(
        chunking_settings if chunking_settings is not None else client.chunking_settings
    )
    problems = [
        f"[{name}] must be {kind}, not {value!r}"
        for name, value, kind, ok in (
            ("concurrency", concurrency, "an integer >= 1", _integer(concurrency, 1)),
            ("records_per_batch", records_per_batch, "an integer >= 1", _integer(records_per_batch, 1)),
            ("num_cpus", num_cpus, "a number >= 0", isinstance(num_cpus, (int, float)) and num_cpus >= 0),
        )
        if not ok
    ]  # fmt: skip
    clash = [c for c in (text_column, id_column) if c in OUTPUT_COLUMNS[1:4] + OUTPUT_COLUMNS[5:]]
    problems += [f"[{c}] is an output column: name the input column otherwise" for c in clash]
    if problems:
        raise ConfigError("; ".join(problems))
    schema = dataset.schema(fetch_if_missing=False)
    if schema is not None:
        _check_columns(list(schema.names), text_column, id_column)
    return _pool(
        dataset,
        client,
        Plan(settings, batch_records=records_per_batch),
        concurrency=concurrency,
        num_cpus=num_cpus,
        limiter=limiter,
        text_column=text_column,
        id_column=id_column,
    )


def _integer(value: object, low: int) -> bool:
    return isinstance(value, int) and not isinstance(value, bool) and value >= low


def _check_columns(columns: list[str], text_column: str, id_column: str) -> None:
    if text_column not in columns:
        raise ConfigError(f"the records have no [{text_column}] column (columns: {columns})")
    taken = sorted(set(columns) & set(OUTPUT_COLUMNS) - {text_column, id_column})
    if taken:
        raise ConfigError(
            f"the records' columns {taken} would clash with the chunks' own {list(OUTPUT_COLUMNS)}"
        )


def _client_for(
    endpoint: EmbeddingClient | InferenceConfig | Mapping[str, Any] | str,
    api_key: str | None,
    options: dict[str, Any],
) -> EmbeddingClient:
    if isinstance(endpoint, EmbeddingClient):
        if api_key is not None or options:
            raise ConfigError("with an EmbeddingClient, give no api_key or client options")
        return endpoint
    if isinstance(endpoint, str):
        return EmbeddingClient(endpoint, api_key, **options)
    if api_key is not None:
        raise ConfigError("with an inference config, the api_key comes from its service_settings")
    return EmbeddingClient.from_config(endpoint, **options)


# -- a JSONL file (``hf-endpoint embed --engine ray``) -----------------------------------------


def _endpoint_error(exc: BaseException) -> HFEndpointError | None:
    """The client's error inside Ray's wrapping of it, if that is what failed."""
    seen: set[int] = set()
    stack: list[BaseException | None] = [exc]
    while stack:
        error = stack.pop()
        if error is None or id(error) in seen:
            continue
        seen.add(id(error))
        if isinstance(error, HFEndpointError):
            return error
        stack += [error.__cause__, error.__context__, getattr(error, "cause", None)]
    return None


def _batches(dataset: ray.data.Dataset) -> Iterator[pa.Table]:
    try:
        yield from dataset.iter_batches(batch_format="pyarrow", batch_size=None)
    except Exception as exc:
        error = _endpoint_error(exc)
        if error is None:
            raise
        raise error from None


@contextlib.contextmanager
def _connected(address: str | None) -> Iterator[None]:
    """Joins the Ray cluster at ``address`` (else ``RAY_ADDRESS``, else starts a local Ray),
    unless this process is connected already; the order of the records is kept."""
    started = not ray.is_initialized()
    if started:
        ray.init(address=address, include_dashboard=False, logging_level=logging.WARNING)
    try:
        context = ray.data.DataContext.get_current()
        context.enable_progress_bars = False
        context.execution_options.preserve_order = True
        yield
    finally:
        if started:
            ray.shutdown()


def _read(
    source: str,
    done: IdIndex,
    skipped: Skipped | None,
    expected: int,
    table: Callable[[list[Record]], pa.Table],
    block: int,
) -> tuple[list[pa.Table], IngestError | None]:
    """The records of ``source`` still to embed, read and checked as the local engine reads
    them, in Arrow tables of ``block`` records (one batch each: a block is a worker's
    task); and the error that stopped the reading, if one did: the records before it are
    embedded first, as the local engine does."""
    blocks: list[pa.Table] = []
    pending: list[Record] = []
    with open_input(source) as stream:
        records = jsonl_records(source, enumerate(stream, 1), keep_fields=table is _fields_table)
        try:
            for record in to_embed(source, checked(source, records, skipped, expected), done):
                pending.append(record)
                if len(pending) == block:
                    blocks.append(table(pending))
                    pending = []
        except IngestError as exc:
            return blocks + ([table(pending)] if pending else []), exc
    return blocks + ([table(pending)] if pending else []), None


def _lines_table(records: list[Record]) -> pa.Table:
    # Ids travel as JSON: a column of strings and integers alike, lone surrogates escaped.
    return pa.table(
        {
            "line": pa.array([r.line for r in records], pa.int64()),
            "id": pa.array([json.dumps(r.id) for r in records], pa.string()),
            "text": pa.array([r.text for r in records], pa.string()),
        }
    )


def _fields_table(records: list[Record]) -> pa.Table:
    # An array of structs takes its fields from every record, not from the first alone.
    rows = pa.array([{"id": r.id, "text": r.text, **(r.fields or {})} for r in records])
    return pa.Table.from_struct_array(rows)


class _Rendered:
    """Output lines the workers rendered, for the writer."""

    def __init__(self, batch: pa.Table) -> None:
        self._rows: list[bytes] = batch.column("row").to_pylist()
        self.records = batch.num_rows
        self.chunks = sum(batch.column("chunks").to_pylist())

    def render(self) -> bytes:
        return b"".join(self._rows)


def embed_file(
    source: str,
    output: Output,
    client: EmbeddingClient,
    plan: Plan,
    *,
    address: str | None = None,
    concurrency: int = 2,
    total: int | None = None,
    skipped: Skipped | None = None,
    quiet: bool = False,
    on_interrupt: Callable[[], None] = lambda: None,
) -> Writer:
    """``hf-endpoint embed --engine ray``: the local engine's ``embed_file`` with the
    batches embedded by ``concurrency`` Ray workers.

    The driver reads and checks the records (the same ids, duplicate rule and messages),
    leaving out those already in the output (``--resume``), and writes the lines the
    workers render, in input order, through ``output``: the same file, sidecar and
    resumption. The records still to embed are held in Ray's object store."""

    def embed(writer: Writer) -> None:
        with _connected(address):
            blocks, error = _read(
                source, output.done, skipped, total or 0, _lines_table, plan.batch_records
            )
            if blocks:
                dataset = _pool(
                    ray.data.from_arrow(blocks),
                    client,
                    plan,
                    concurrency=concurrency,
                    num_cpus=0.25,
                    limiter=None,
                    lines=True,
                )
                del blocks
                for batch in _batches(dataset):
                    if not batch.num_rows:
                        continue
                    widths = [w for w in batch.column("width").to_pylist() if w is not None]
                    for w in sorted(set(widths)):
                        output.check_dimensions(w)
                    writer.put(_Rendered(batch))
            if error is not None:
                raise error

    return write_run(output, total, quiet, embed, on_interrupt)


def embed_jsonl(
    source: str,
    output: str | os.PathLike[str],
    client: EmbeddingClient,
    settings: ChunkingSettings,
    *,
    address: str | None = None,
    concurrency: int = 2,
    records_per_batch: int = 64,
    progress: bool = True,
) -> int:
    """Embed a JSONL file of records into one Parquet file, one row per chunk (the rows of
    ``embed_dataset``, with each record's other keys as columns); returns the number of
    chunks. The records are read as ``hf-endpoint embed`` reads them: a record without
    an id gets ``FILE:LINE``, a duplicate id or a bad line is an error naming it. Joins
    the Ray cluster at ``address`` (else ``RAY_ADDRESS``, else starts a local Ray). The
    file appears only once every record is embedded."""
    import pyarrow.parquet as pq
    from tqdm import tqdm

    total = 0
    with open_input(source) as f:
        total = sum(1 for line in f if line.strip())
    with _connected(address):
        blocks, error = _read(source, IdIndex(), None, total, _fields_table, records_per_batch)
        if error is not None:
            raise error
        if not blocks:
            raise ConfigError(f"{source} holds no records")
        chunks = embed_dataset(
            ray.data.from_arrow(blocks),
            client,
            chunking_settings=settings,
            concurrency=concurrency,
            records_per_batch=records_per_batch,
        )
        del blocks
        target = Path(output)
        written = 0
        with tempfile.NamedTemporaryFile(
            dir=target.parent or ".", prefix=f".{target.name}.", suffix=".part", delete=False
        ) as part:
            try:
                writer: pq.ParquetWriter | None = None
                bar = tqdm(total=total, unit="record", disable=not progress)
                for batch in _batches(chunks):
                    if not batch.num_rows:
                        continue
                    if writer is None:
                        writer = pq.ParquetWriter(part, batch.schema)
                    writer.write_table(batch)
                    written += batch.num_rows
                    bar.update(int(np.count_nonzero(batch.column("chunk").to_numpy() == 0)))
                bar.close()
                if writer is None:
                    raise ConfigError(f"{source} holds no records")
                writer.close()
            except BaseException:
                os.unlink(part.name)
                raise
        os.replace(part.name, target)
        return written

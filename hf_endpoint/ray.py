"""Embedding a Ray Data dataset on a cluster, within one rate limit for the whole cluster.

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
batch succeeded, so every chunk appears exactly once).

Every actor takes its rate-limit slots from one ``ClusterLimiter``: a named Ray
actor per endpoint, key and rate, that hands out slots a few at a time (as
many as a worker has callers waiting), so that it is asked about once per
lease rather than once per request. The actor keeps its schedule in the
machine-wide state of ``hf_endpoint.client.ratelimit.shared_limiter`` on its node,
so processes outside Ray on that node (``hf-endpoint embed``, a notebook)
share the same limit. See docs/scale-out.md.
"""

from __future__ import annotations

import asyncio
import hashlib
import logging
import os
import tempfile
import threading
import time
from collections import deque
from collections.abc import Iterator, Mapping
from pathlib import Path
from typing import Any

import numpy as np
import pyarrow as pa
import ray
from ray.util.scheduling_strategies import NodeAffinitySchedulingStrategy

from .client._embedding import EmbeddingClient
from .client.ratelimit import (
    TOLERANCE,
    Grant,
    Lease,
    RateLimiter,
    lease_of,
    limit_key,
    named_limiter,
    take_leased,
)
from .config.settings import ChunkingSettings, InferenceConfig
from .errors import ConfigError, HFEndpointError

__all__ = ["OUTPUT_COLUMNS", "ClusterLimiter", "cluster_limiter", "embed_dataset", "embed_jsonl"]

logger = logging.getLogger(__name__)

NAMESPACE = "hf-endpoint"
HORIZON = 1.0
"""The furthest ahead (seconds) a slot is ever handed out: a limiter actor that starts
(or starts again) opens no slot for this long, so that slots an earlier life of it
handed out have passed."""
MAX_LEASE = 64
OUTPUT_COLUMNS = ("id", "chunk", "start", "end", "text", "embedding")


# -- the cluster-wide limiter -------------------------------------------------------------


class _SlotActor:
    """Hands out slots of the machine-wide schedule of the node it runs on."""

    def __init__(self, name: str, requests_per_minute: int) -> None:
        self._limiter: RateLimiter = named_limiter(name, requests_per_minute)
        self._node = ray.get_runtime_context().get_node_id()
        # Whether an earlier life of this actor (on another node, or without a state file)
        # handed out slots that are still to come cannot be known: wait until any would have
        # passed. Ray's restart count is not reliable enough to skip this on a first start.
        self._limiter.hold(HORIZON + TOLERANCE)

    def lease(self, slots: int) -> tuple[str, float, Grant]:
        """Up to ``slots`` slots; the node and this node's clock go with them."""
        now, given = self._limiter.grant(slots, HORIZON)
        return self._node, now, given


class ClusterLimiter:
    """A rate limiter for every process of a Ray cluster: ``try_acquire()`` as
    ``RateLimiter``'s, with slots leased from one named actor.

    Pickles small (the actor's name and the rate; leases never travel), so each
    process, and each restarted worker, starts without slots and asks the actor.
    Make it with ``cluster_limiter``; use it in a process connected to the cluster.
    """

    def __init__(self, name: str, requests_per_minute: int) -> None:
        self.name = name
        self.requests_per_minute = requests_per_minute
        self._lock = threading.Lock()
        self._actor: Any = None
        self._node: str | None = None
        self._lease: Lease | None = None
        self._due = -float("inf")
        self._retry_at = -float("inf")
        self._waiting: dict[tuple[int, int], float] = {}
        self._offsets: deque[tuple[float, float]] = deque(maxlen=8)
        self._doubt = 0.0
        self.leases = 0

    def __reduce__(self) -> tuple[Any, ...]:
        return (ClusterLimiter, (self.name, self.requests_per_minute))

    def __repr__(self) -> str:
        return (
            f"ClusterLimiter(requests_per_minute={self.requests_per_minute}, actor={self.name!r})"
        )

    def try_acquire(self) -> float:
        """Take a slot now and return ``0.0``, or return how long to wait before asking again."""
        caller = _caller()
        with self._lock:
            now = time.monotonic()
            wait = self._take(now)
            if wait is None:
                if now < self._retry_at:
                    wait = self._retry_at - now
                else:
                    self._fetch(now, caller)
                    now = time.monotonic()
                    wait = self._take(now)
                    if wait is None:
                        wait = max(self._retry_at - now, 0.001)
            if wait == 0:
                self._waiting.pop(caller, None)
            else:
                self._waiting[caller] = now + wait + 1.0
            return wait

    def _take(self, now: float) -> float | None:
        if self._lease is None:
            return None
        wait, self._due = take_leased(self._lease, self._due, now)
        if wait is None:
            self._lease = None
        return wait

    def _demand(self, now: float, caller: tuple[int, int]) -> int:
        """How many callers wait for a slot (this one included)."""
        for who, until in list(self._waiting.items()):
            if until < now:
                del self._waiting[who]
        waiting = len(self._waiting) + (caller not in self._waiting)
        # A lease on another node loses its uncertainty off its length: ask for enough.
        interval = 60.0 / self.requests_per_minute
        return max(1, min(MAX_LEASE, max(waiting, 2 + int(self._doubt / interval))))

    def _fetch(self, now: float, caller: tuple[int, int]) -> None:
        slots = self._demand(now, caller)
        sent = time.monotonic()
        try:
            node, granter_now, given = ray.get(self._slot_actor().lease.remote(slots), timeout=30)
        except ray.exceptions.ActorDiedError:
            logger.warning("the rate limiter actor %s is gone: starting another", self.name)
            self._actor = None
            self._retry_at = time.monotonic() + 0.1
            return
        except (ray.exceptions.ActorUnavailableError, ray.exceptions.GetTimeoutError) as exc:
            logger.warning("the rate limiter actor %s does not answer (%s)", self.name, exc)
            self._retry_at = time.monotonic() + 0.5
            return
        received = time.monotonic()
        self.leases += 1
        if given.slots == 0:
            self._retry_at = received + given.wait
            return
        if self._node is None:
            self._node = ray.get_runtime_context().get_node_id()
        if node == self._node:
            low = high = 0.0  # one machine, one monotonic clock
        else:
            low, high = self._offset(sent - granter_now, received - granter_now)
        self._doubt = high - low
        self._lease = lease_of(given, low, high)
        self._due = self._lease.first

    def _offset(self, low: float, high: float) -> tuple[float, float]:
        """How far this clock reads ahead of the actor's, narrowed over the last exchanges."""
        self._offsets.append((low, high))
        best_low = max(o[0] for o in self._offsets)
        best_high = min(o[1] for o in self._offsets)
        if best_low > best_high:  # the clocks drifted apart: trust the latest exchange
            self._offsets.clear()
            self._offsets.append((low, high))
            return low, high
        return best_low, best_high

    def _slot_actor(self) -> Any:
        if self._actor is None:
            self._actor = _start_actor(self.name, self.requests_per_minute)
        return self._actor


def _caller() -> tuple[int, int]:
    """Who asks: the thread, and the asyncio task where there is one."""
    try:
        task = asyncio.current_task()
    except RuntimeError:
        task = None
    return threading.get_ident(), 0 if task is None else id(task)


def _start_actor(name: str, requests_per_minute: int) -> Any:
    actor = ray.remote(_SlotActor).options(
        name=f"hf-endpoint-limiter-{name[:32]}",
        namespace=NAMESPACE,
        get_if_exists=True,
        lifetime="detached",
        max_restarts=-1,
        num_cpus=0,
        # On the node that first asks (the driver's), where other processes may share it.
        scheduling_strategy=NodeAffinitySchedulingStrategy(
            ray.get_runtime_context().get_node_id(), soft=True
        ),
    )
    return actor.remote(name, requests_per_minute)


def cluster_limiter(url: str, api_key: str | None, requests_per_minute: int) -> ClusterLimiter:
    """The limiter shared by every process of the connected Ray cluster (and by the
    processes outside Ray on the limiter actor's node) that uses this URL, key and rate.
    The key is never sent to the cluster: the actor is named by a hash."""
    name = limit_key(url, api_key, requests_per_minute)
    limiter = ClusterLimiter(name, requests_per_minute)
    limiter._slot_actor()  # started here, on the caller's node
    return limiter


# -- embedding a dataset -------------------------------------------------------------------


def _client_arguments(client: EmbeddingClient) -> dict[str, Any]:
    """What it takes to build ``client`` again in another process."""
    return {"options": client.options, "api_key": client._api_key}


def _text_id(text: str) -> str:
    """The id of a record without one: its text's SHA-256 (equal texts, equal ids)."""
    return hashlib.sha256(text.encode("utf-8", "surrogatepass")).hexdigest()[:32]


class _Embedder:
    """One actor of the pool: a client, and records in, chunks out."""

    def __init__(
        self,
        client_arguments: dict[str, Any],
        limiter: Any,
        settings: ChunkingSettings,
        text_column: str,
        id_column: str,
    ) -> None:
        # The client takes its slots from the cluster's limiter, not from this machine's.
        self.client = EmbeddingClient.from_options(**client_arguments, limiter=limiter)
        self.settings = settings
        self.text_column = text_column
        self.id_column = id_column

    def __call__(self, records: pa.Table) -> pa.Table:
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
        embedded = self.client.embed_chunks(texts, self.settings)
        rows = [r for r, chunks in enumerate(embedded) for _ in chunks]
        flat = [c for chunks in embedded for c in chunks]
        width = len(flat[0].embedding) if flat else 0
        vectors = np.asarray([c.embedding for c in flat], dtype=np.float32).reshape(-1)
        out = {
            "id": pa.array([ids[r] for r in rows]),
            "chunk": pa.array([k for chunks in embedded for k in range(len(chunks))], pa.int32()),
            "start": pa.array([c.start for c in flat], pa.int64()),
            "end": pa.array([c.end for c in flat], pa.int64()),
            "text": pa.array([c.text for c in flat], pa.string()),
            "embedding": pa.FixedSizeListArray.from_arrays(pa.array(vectors, pa.float32()), width),
        }
        carried = [c for c in columns if c not in (self.text_column, self.id_column)]
        if carried:
            taken = records.select(carried).take(pa.array(rows, pa.int64()))
            for name in carried:
                out[name] = taken.column(name)
        return pa.table(out)


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
    a record's id is its text's hash) and any other columns, which every chunk of
    the record carries. Rows: ``id``, ``chunk`` (its number in the record),
    ``start``, ``end``, ``text`` (``record_text[start:end]``), ``embedding`` (a
    fixed-size float32 list), then the carried columns; ``(id, chunk)`` identifies
    a chunk. Errors are the client's, raised by Ray when the dataset runs.
    """
    client = _client_for(endpoint, api_key, client_options)
    arguments = _client_arguments(client)
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
    if limiter is None:
        key = arguments["api_key"]
        limiter = cluster_limiter(
            client.url,
            None if key is None else key.get_secret_value(),
            client.rate_limit.requests_per_minute,
        )
    schema = dataset.schema(fetch_if_missing=False)
    if schema is not None:
        _check_columns(list(schema.names), text_column, id_column)
    return dataset.map_batches(
        _Embedder,
        fn_constructor_kwargs={
            "client_arguments": arguments,
            "limiter": limiter,
            "settings": settings,
            "text_column": text_column,
            "id_column": id_column,
        },
        batch_size=records_per_batch,
        batch_format="pyarrow",
        compute=ray.data.ActorPoolStrategy(size=concurrency),
        num_cpus=num_cpus,
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


# -- JSONL in, Parquet out (``hf-endpoint embed --engine ray``) ------------------------------


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


def _batches(chunks: ray.data.Dataset) -> Iterator[pa.Table]:
    try:
        yield from chunks.iter_batches(batch_format="pyarrow", batch_size=None)
    except Exception as exc:
        error = _endpoint_error(exc)
        if error is None:
            raise
        raise error from None


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
    """Embed a JSONL file of records into one Parquet file, one row per chunk; returns
    the number of chunks. Joins the Ray cluster at ``address`` (else ``RAY_ADDRESS``,
    else starts a local Ray). The file appears only once every record is embedded."""
    import pyarrow.parquet as pq
    from tqdm import tqdm

    with open(source, encoding="utf-8") as f:
        total = sum(1 for line in f if line.strip())
    started = not ray.is_initialized()
    if started:
        ray.init(address=address, include_dashboard=False, logging_level=logging.WARNING)
    try:
        ray.data.DataContext.get_current().enable_progress_bars = False
        # local://: read on this node, where the file is, whichever nodes embed.
        records = ray.data.read_json(f"local://{os.path.abspath(source)}", lines=True)
        chunks = embed_dataset(
            records,
            client,
            chunking_settings=settings,
            concurrency=concurrency,
            records_per_batch=records_per_batch,
        )
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
    finally:
        if started:
            ray.shutdown()

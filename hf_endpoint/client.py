"""``EmbeddingClient``: embeddings from a Hugging Face Inference Endpoint, nothing lost.

The client is a facade over three layers. What is not I/O is pure: the options
(``_options``), the batch plan (``plan_call``), the request and answer formats
(``_protocol``), the retry decisions (``retry``) and the flows that string them
together (``_flows``: the batch loop and the ``GET /info`` discovery, generators
that yield *gate*, *slot*, *wait* and *send*). Two drivers (``_drivers``) run
the flows: the sync one with ``time.sleep``, ``httpx.Client`` and a thread
pool, the async one with ``asyncio.sleep`` and ``httpx.AsyncClient``. No event
loop ever runs inside a sync call, so the sync methods work inside Jupyter and
async web apps.

>>> with EmbeddingClient("http://127.0.0.1:8080", api_key=None) as client:  # doctest: +SKIP
...     vectors = client.embed(["first text", "second text"])
"""

from __future__ import annotations

import asyncio
import random
import threading
from collections.abc import Iterable, Mapping, Sequence
from concurrent.futures import Future
from json.encoder import encode_basestring
from typing import TYPE_CHECKING, Any, Literal, NamedTuple

from pydantic import SecretStr
from typing_extensions import Self

from ._auth import clean_api_key, find_api_key
from ._batching import TokenCounter, plan_batches
from ._drivers import AsyncDriver, Connection, Limiter, RequestGate, SyncDriver
from ._flows import Batch, ServerLimits, discovery_flow, embed_flow, request_tail
from ._options import ClientOptions
from .chunking import chunk_offsets
from .errors import ConfigError, HFEndpointError, InputTooLargeError, ResponseFormatError
from .ratelimit import shared_limiter
from .retry import RetryPolicy
from .settings import ChunkingSettings, InferenceConfig, RateLimit
from .stats import ClientStats, StatsRecorder

if TYPE_CHECKING:
    import numpy as np

__all__ = [
    "EmbeddedChunk",
    "EmbeddingClient",
    "EmbeddingResult",
    "RequestGate",
    "ServerLimits",
    "fitted_chunking",
    "lone_surrogate",
    "plan_call",
    "pool_chunks",
]

# JSON around the inputs of one request, with every option set.
_BODY_OVERHEAD = 256
# The most bytes of JSON one vector may take in an answer, unless max_response_bytes says.
_RESPONSE_BYTES_PER_INPUT = 1 << 20
# Above this many characters, planning and chunking in async calls run in a worker thread.
_OFFLOAD_CHARS = 200_000


class _LookUp:
    """The default of ``api_key``: look it up as ``huggingface_hub`` does."""

    def __repr__(self) -> str:
        return "<from HF_TOKEN, HUGGINGFACEHUB_API_TOKEN or the hf login token file>"


FROM_ENVIRONMENT: Any = _LookUp()


class EmbeddedChunk(NamedTuple):
    """A chunk of an input text and its vector: ``text == source[start:end]``."""

    text: str
    start: int
    end: int
    embedding: list[float]


def pool_chunks(chunks: Sequence[EmbeddedChunk]) -> list[float]:
    """One vector for a chunked text: the chunks' mean weighted by their length in
    characters, scaled to unit length (L2). A text of one chunk keeps its vector's
    direction; an empty text's single empty chunk counts with weight 1."""
    if len(chunks) == 1:
        vectors = [chunks[0].embedding]
        weights = [1.0]
    else:
        vectors = [c.embedding for c in chunks]
        weights = [float(max(len(c.text), 1)) for c in chunks]
    total = sum(weights)
    mean = [sum(w * v for w, v in zip(weights, column)) / total for column in zip(*vectors)]
    norm = sum(x * x for x in mean) ** 0.5
    return [x / norm for x in mean] if norm else mean


class EmbeddingResult(list[list[float]]):
    """The vectors, one per input, in input order.

    ``truncated`` lists the indices of inputs that were cut before sending
    (``max_input_tokens``, or a ``truncate=True`` input too large for one request).
    """

    def __init__(self, rows: Iterable[list[float]] = (), truncated: Iterable[int] = ()) -> None:
        super().__init__(rows)
        self.truncated = sorted(truncated)

    def __repr__(self) -> str:
        # Short: asyncio and notebooks repr results, and 10,000 x 384 floats take a while.
        width = len(self[0]) if self else 0
        return f"<EmbeddingResult: {len(self)} vectors of {width} dimensions, truncated={self.truncated}>"


def lone_surrogate(text: str) -> int | None:
    """Where ``text`` holds a lone surrogate (which UTF-8 cannot carry), or ``None``."""
    if text.isascii():
        return None
    for i, ch in enumerate(text):
        if "\ud800" <= ch <= "\udfff":
            return i
    return None


def _check_texts(texts: object) -> list[str]:
    """The texts as a list, or a ``TypeError`` naming the bad one."""
    if isinstance(texts, str) or not isinstance(texts, Sequence):
        raise TypeError(f"texts must be a list of str, not {type(texts).__name__}")
    out = list(texts)
    for i, text in enumerate(out):
        if not isinstance(text, str):
            raise TypeError(f"texts[{i}] must be a str, not {type(text).__name__}")
    return out


def _encode(i: int, text: str) -> bytes:
    """A text as JSON, measured once: its size in the body is its length.

    The standard library's C string encoder gives exact-size bytes (orjson keeps
    a 4 KiB buffer behind each small result: 200,000 texts held 800 MB).
    """
    try:
        return encode_basestring(text).encode()
    except UnicodeEncodeError:
        at = lone_surrogate(text)
        raise ConfigError(
            f"texts[{i}] holds a lone surrogate (U+{ord(text[at or 0]):04X}) at index {at}: "
            "it cannot be sent as UTF-8"
        ) from None


def fitted_chunking(max_input_length: int | None) -> ChunkingSettings:
    """Elasticsearch's default chunking (sentence, 250 words, overlap 1), with fewer words
    per chunk when the endpoint takes fewer tokens: half its ``max_input_length``
    (a word is rarely more than two tokens), between 20 and 250."""
    if max_input_length is None:
        return ChunkingSettings()
    words = max(20, min(250, max_input_length // 2))
    return ChunkingSettings(strategy="sentence", max_chunk_size=words, sentence_overlap=1)


def plan_call(
    texts: Sequence[str], options: ClientOptions, limits: ServerLimits
) -> tuple[list[Batch], list[int]]:
    """The batches of one call, within every limit, and the inputs cut before sending."""
    truncated: list[int] = []
    cut = options.max_input_tokens * 3 if options.max_input_tokens else None
    left = options.truncation_direction == "Left"
    budget = options.max_body_bytes - _BODY_OVERHEAD
    encoded: list[bytes] = []
    for i, text in enumerate(texts):
        if cut is not None and len(text) > cut:
            text = text[-cut:] if left else text[:cut]
            truncated.append(i)
        data = _encode(i, text)
        if len(data) > budget:
            if not options.truncate:
                raise InputTooLargeError(
                    i,
                    f"is {len(data)} bytes as JSON, over the {options.max_body_bytes} bytes one "
                    "request may carry: chunk it (embed_chunks, or chunking_settings) or set "
                    "truncate=True",
                )
            keep = int(len(text) * budget / len(data) * 0.9)
            data = _encode(i, text[-keep:] if left else text[:keep])
            if not truncated or truncated[-1] != i:
                truncated.append(i)
        encoded.append(data)
    max_inputs = min(options.batch_size, limits.max_client_batch_size or options.batch_size)
    max_tokens = limits.max_batch_tokens
    if max_tokens is None:
        tokens = [0] * len(encoded)
    else:
        # A token takes at least one byte: count only where that bound is too loose.
        threshold = max_tokens // max_inputs
        counter = TokenCounter()
        tokens = [
            len(data) if len(data) <= threshold else counter.count(text)
            for text, data in zip(texts, encoded)
        ]
    ranges = plan_batches(
        [len(data) + 1 for data in encoded],
        tokens,
        max_inputs=max_inputs,
        max_tokens=max_tokens or 2**62,
        max_bytes=budget,
    )
    tail = request_tail(options.server_options.body_fields())
    per_input = _RESPONSE_BYTES_PER_INPUT
    if options.max_response_bytes is not None:
        per_input = options.max_response_bytes  # each batch may take the whole allowance
    return [Batch(r, encoded, tail, per_input) for r in ranges], truncated


def _needs_thread(texts: Sequence[str], limits: ServerLimits) -> bool:
    """Whether planning ``texts`` would hold an event loop up (long input, or a first load)."""
    return sum(map(len, texts)) > _OFFLOAD_CHARS or (
        limits.max_batch_tokens is not None and not TokenCounter.loaded()
    )


class _Rows:
    """Collects batches as they finish: checks widths, then lists or a float32 array."""

    def __init__(
        self, batches: list[Batch], total: int, dtype: str | None, width: int | None
    ) -> None:
        self.batches = batches
        self.width = width
        self.lock = threading.Lock()
        self.rows: list[list[list[float]]] = [[] for _ in batches]
        self.array: np.ndarray[Any, Any] | None = None
        self.total = total
        self.dtype = dtype
        if dtype is not None:
            try:
                import numpy
            except ImportError:
                raise ConfigError(
                    f'[dtype] {dtype!r} needs numpy: pip install "hf-endpoint[numpy]" or numpy'
                ) from None
            try:
                self.numpy_dtype = numpy.dtype(dtype)
            except TypeError:
                raise ConfigError(f"[dtype] must be a numpy float type, not {dtype!r}") from None

    def keep(self, i: int, rows: list[list[float]]) -> None:
        width = len(rows[0])
        with self.lock:
            if self.width is None:
                self.width = width
            elif width != self.width:
                raise ResponseFormatError(
                    f"the endpoint answered vectors of {width} dimensions for inputs "
                    f"{self.batches[i].indices[0]}..; earlier vectors have {self.width}"
                )
            if self.dtype is None:
                self.rows[i] = rows
                return
            if self.array is None:
                import numpy

                self.array = numpy.empty((self.total, width), dtype=self.numpy_dtype)
        r = self.batches[i].indices
        self.array[r[0] : r[-1] + 1] = rows

    def result(self, truncated: list[int]) -> Any:
        if self.dtype is not None:
            assert self.array is not None
            return self.array
        return EmbeddingResult((row for part in self.rows for row in part), truncated)


class _Discovery:
    """``GET /info`` once per client, whichever path (sync, async, any thread) asks first."""

    def __init__(self, enabled: bool) -> None:
        self.limits: ServerLimits | None = None if enabled else ServerLimits()
        self._lock = threading.Lock()
        self._asking: Future[ServerLimits | None] | None = None

    def claim(self) -> tuple[ServerLimits | None, Future[ServerLimits | None], bool]:
        """The known limits, or the future to wait on and whether this caller must ask."""
        with self._lock:
            if self.limits is not None:
                return self.limits, Future(), False
            if self._asking is not None:
                return None, self._asking, False
            self._asking = Future()
            return None, self._asking, True

    def finish(
        self, future: Future[ServerLimits | None], limits: ServerLimits | None, settled: bool
    ) -> None:
        """Settle (or not) what the asker found; waiters get it, or ``None`` to ask again."""
        with self._lock:
            if settled and limits is not None:
                self.limits = limits
            self._asking = None
        future.set_result(limits)


class _ChunkJob:
    """One ``embed_chunks`` call: the texts, their chunking, and what to do when a chunk is
    too large for the endpoint (a fitted default shrinks for that text; an explicit
    setting is reported, naming the text, the chunk and the setting to change)."""

    def __init__(
        self, texts: list[str], explicit: ChunkingSettings | None, limits: ServerLimits
    ) -> None:
        self.texts = texts
        self.explicit = explicit
        self.limits = limits
        settings = explicit or fitted_chunking(limits.max_input_length)
        self.settings = [settings] * len(texts)
        self.spans = [chunk_offsets(t, settings) for t in texts]

    def flat(self) -> list[str]:
        return [t[s:e] for t, offs in zip(self.texts, self.spans) for s, e in offs]

    def refit(self, exc: InputTooLargeError) -> None:
        """Shrink the chunks of the text behind ``exc``, or raise an error that names it."""
        index = exc.index
        for text_i, offs in enumerate(self.spans):
            if index < len(offs):
                break
            index -= len(offs)
        start, end = self.spans[text_i][index]
        settings = self.settings[text_i]
        size = settings.max_chunk_size
        if self.explicit is None and size is not None and size > 20:
            smaller = ChunkingSettings(
                strategy="sentence", max_chunk_size=max(20, size // 2), sentence_overlap=1
            )
            self.settings[text_i] = smaller
            self.spans[text_i] = chunk_offsets(self.texts[text_i], smaller)
            return
        limit = self.limits.max_input_length
        told = f" (the endpoint takes {limit} tokens)" if limit else ""
        raise InputTooLargeError(
            text_i,
            f"chunk [{index}] (characters {start}-{end}) is too large for the endpoint{told}: "
            f"use a smaller max_chunk_size in chunking_settings (now {size}), or truncate=True. "
            f"The endpoint said: {exc.errors[0].split(': ', 1)[-1]}",
        ) from None

    def result(self, vectors: Sequence[list[float]]) -> list[list[EmbeddedChunk]]:
        out: list[list[EmbeddedChunk]] = []
        it = iter(vectors)
        for text, offsets in zip(self.texts, self.spans):
            out.append([EmbeddedChunk(text[s:e], s, e, next(it)) for s, e in offsets])
        return out


class EmbeddingClient:
    """Embeddings from one endpoint, batched, rate-limited and retried, in input order.

    * ``url``: the endpoint URL; requests go to it as given.
    * ``api_key``: the token, sent as ``Authorization: Bearer``. Not given: looked
      up as ``huggingface_hub`` does (``HF_TOKEN``, ``HUGGINGFACEHUB_API_TOKEN``,
      then the token file ``hf auth login`` writes); ``None``: no key. Never
      shown by ``repr``, logs or errors.
    * ``rate_limit``: ``{"requests_per_minute": N}``, a ``RateLimit`` or ``N``
      (default 3000): requests spaced ``60 / N`` s apart, retries included,
      shared by every client of this URL, key and rate on this machine;
      ``limiter`` replaces it (a cluster-wide limiter, for instance).
    * ``batch_size``: inputs per request (default 20), lowered to the
      endpoint's ``max_client_batch_size`` when ``GET /info`` tells it; requests
      also stay within its ``max_batch_tokens`` and ``max_body_bytes``.
    * ``max_concurrency``: requests in flight at once (threads for sync calls,
      per event loop for async calls).
    * ``timeout``: seconds for each HTTP attempt, the whole answer included.
    * ``max_retries`` (default 5) or a whole ``retry_policy``: how often to retry
      429/502/503/504, timeouts and lost connections, each after a backoff of at
      most ``max_backoff`` seconds (5), or the server's ``Retry-After`` up to
      ``max_retry_after`` (60). A call thus gives up after at most
      ``max_retries`` retries of one batch; cold starts (503 while the
      endpoint starts) are waited out within ``cold_start_timeout`` (600 s).
      The first contact with an endpoint fails at once, naming the URL, when
      nothing answers there.
    * ``truncate``, ``normalize``, ``prompt_name``, ``truncation_direction``:
      sent to the endpoint only when set.
    * ``max_input_tokens``: inputs longer than ``max_input_tokens * 3``
      characters are cut to that before sending, as Elasticsearch does.
    * ``chunking_settings``: the default of ``embed_chunks``. Without one,
      Elasticsearch's default (sentence, 250 words) with fewer words when the
      endpoint's ``max_input_length`` calls for it (``fitted_chunking``).
    * ``scale_up_timeout``: sends ``X-Scale-Up-Timeout`` so that a
      scale-to-zero endpoint holds the request while it starts.
    * ``max_response_bytes``: the most bytes one answer may have (default
      1 MiB per input); ``dimensions``: the width every vector must have.

    Every option is validated at construction (``ConfigError`` lists every
    problem). Safe to share between threads and tasks; pickles (the key
    travels, pools are rebuilt on the other side). ``stats`` counts what it
    did. Use it as a context manager, or call ``close()`` / ``await aclose()``.
    """

    def __init__(
        self,
        url: str,
        api_key: str | SecretStr | None = FROM_ENVIRONMENT,
        *,
        rate_limit: RateLimit | Mapping[str, Any] | int | None = None,
        batch_size: int = 20,
        max_concurrency: int = 4,
        timeout: float = 60.0,
        max_retries: int | None = None,
        retry_policy: RetryPolicy | None = None,
        truncate: bool | None = None,
        normalize: bool | None = None,
        prompt_name: str | None = None,
        truncation_direction: Literal["Right", "Left"] | None = None,
        max_input_tokens: int | None = None,
        chunking_settings: ChunkingSettings | Mapping[str, Any] | None = None,
        scale_up_timeout: float | None = None,
        discover_limits: bool = True,
        max_body_bytes: int = 2_000_000,
        max_response_bytes: int | None = None,
        dimensions: int | None = None,
        limiter: Limiter | None = None,
    ) -> None:
        options = ClientOptions(
            url,
            RateLimit() if rate_limit is None else rate_limit,  # type: ignore[arg-type]
            batch_size,
            max_concurrency,
            timeout,
            max_retries,
            retry_policy,
            truncate,
            normalize,
            prompt_name,
            truncation_direction,
            max_input_tokens,
            chunking_settings or None,  # type: ignore[arg-type]
            scale_up_timeout,
            discover_limits,
            max_body_bytes,
            max_response_bytes,
            dimensions,
        )
        key = find_api_key() if api_key is FROM_ENVIRONMENT else clean_api_key(api_key)
        self._setup(options, key, limiter, None)

    def _setup(
        self,
        options: ClientOptions,
        api_key: SecretStr | None,
        limiter: Limiter | None,
        limits: ServerLimits | None,
    ) -> None:
        self.options = options
        self._api_key = api_key
        self._custom_limiter = limiter
        key = api_key.get_secret_value() if api_key is not None else None
        self._stats = StatsRecorder()
        connection = Connection(
            url=options.url,
            headers=options.headers(key),
            timeout=options.timeout,
            max_concurrency=options.max_concurrency,
            limiter=limiter
            or shared_limiter(options.url, key, options.rate_limit.requests_per_minute),
            stats=self._stats,
            secret=key,
        )
        self._connection = connection
        self._sync = SyncDriver(connection)
        self._async = AsyncDriver(self._sync)
        self._discovery = _Discovery(options.discover_limits)
        if limits is not None:
            self._discovery.limits = limits
        self._random = random.Random()
        self._width: int | None = None

    # -- the public attributes, read from the options ----------------------------

    @property
    def url(self) -> str:
        return self.options.url

    @property
    def rate_limit(self) -> RateLimit:
        return self.options.rate_limit

    @property
    def batch_size(self) -> int:
        return self.options.batch_size

    @property
    def max_concurrency(self) -> int:
        return self.options.max_concurrency

    @property
    def timeout(self) -> float:
        return self.options.timeout

    @property
    def retry_policy(self) -> RetryPolicy:
        return self.options.policy

    @property
    def chunking_settings(self) -> ChunkingSettings | None:
        return self.options.chunking_settings

    @property
    def stats(self) -> ClientStats:
        """What this client did so far: requests, inputs, retries, waits (``ClientStats``)."""
        return self._stats.snapshot()

    @classmethod
    def from_options(
        cls,
        options: ClientOptions,
        api_key: str | SecretStr | None = None,
        *,
        limiter: Limiter | None = None,
    ) -> EmbeddingClient:
        """A client from validated ``options`` (``client.options`` of another client)."""
        client = cls.__new__(cls)
        client._setup(options, clean_api_key(api_key), limiter, None)
        return client

    @classmethod
    def from_config(
        cls, config: InferenceConfig | Mapping[str, Any], **kwargs: Any
    ) -> EmbeddingClient:
        """A client for an Elasticsearch ``PUT _inference`` body (or a parsed ``InferenceConfig``).

        Without ``chunking_settings`` in the body, ``embed_chunks`` fits
        Elasticsearch's default to the endpoint (see ``fitted_chunking``).
        """
        config = InferenceConfig.coerce(config)
        s = config.service_settings
        if config.explicit_chunking:
            kwargs.setdefault("chunking_settings", config.chunking_settings)
        kwargs.setdefault("max_input_tokens", s.max_input_tokens)
        return cls(s.url, s.api_key, rate_limit=s.rate_limit, **kwargs)

    def __repr__(self) -> str:
        key = "None" if self._api_key is None else "SecretStr('**********')"
        return (
            f"EmbeddingClient(url={self.url!r}, api_key={key}, rate_limit={self.rate_limit!r}, "
            f"batch_size={self.batch_size}, max_concurrency={self.max_concurrency})"
        )

    def __getstate__(self) -> dict[str, Any]:
        # Pickle is how a process hands work to another: the key travels with it.
        return {
            "options": self.options,
            "api_key": self._api_key.get_secret_value() if self._api_key else None,
            "limiter": self._custom_limiter,
            "limits": self._discovery.limits,
        }

    def __setstate__(self, state: dict[str, Any]) -> None:
        key = SecretStr(state["api_key"]) if state["api_key"] else None
        self._setup(state["options"], key, state["limiter"], state["limits"])

    # -- lifecycle -------------------------------------------------------------

    def __enter__(self) -> Self:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    async def __aenter__(self) -> Self:
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.aclose()

    def close(self) -> None:
        """Close the sync connection pool and worker threads."""
        self._sync.close()

    async def aclose(self) -> None:
        """``close`` for async callers."""
        self.close()

    # -- endpoint discovery ------------------------------------------------------

    def server_limits(self, gate: RequestGate | None = None) -> ServerLimits:
        """What ``GET /info`` says about the endpoint, asked once per client."""
        while True:
            known, future, ask = self._discovery.claim()
            if known is not None:
                return known
            if not ask:
                found = future.result()
                if found is not None:
                    return found
                continue
            limits: ServerLimits | None = None
            settled = False
            try:
                flow = discovery_flow(self.url, first_contact=not self._connection.contacted)
                limits, settled = self._sync.run(flow, gate)
            finally:
                self._discovery.finish(future, limits, settled)
            assert limits is not None  # run returned
            return limits

    async def aserver_limits(self, gate: RequestGate | None = None) -> ServerLimits:
        """``server_limits`` for async callers."""
        while True:
            known, future, ask = self._discovery.claim()
            if known is not None:
                return known
            if not ask:
                found = await asyncio.wrap_future(future)
                if found is not None:
                    return found
                continue
            limits: ServerLimits | None = None
            settled = False
            try:
                flow = discovery_flow(self.url, first_contact=not self._connection.contacted)
                limits, settled = await self._async.run(flow, gate)
            finally:
                self._discovery.finish(future, limits, settled)
            assert limits is not None  # run returned
            return limits

    # -- embeddings ------------------------------------------------------------------

    def _flows(self, batches: list[Batch]) -> list[Any]:
        policy = self.options.policy
        retry_connect = self._connection.contacted
        return [
            embed_flow(self.url, b, policy, self._random.random, retry_connect=retry_connect)
            for b in batches
        ]

    def _rows(self, batches: list[Batch], total: int, dtype: str | None) -> _Rows:
        return _Rows(batches, total, dtype, self.options.dimensions or self._width)

    def _done(self, rows: _Rows, total: int, truncated: list[int]) -> Any:
        self._stats.inputs(total)
        self._width = rows.width  # an endpoint's vectors keep their width
        return rows.result(truncated)

    def embed(
        self, texts: Sequence[str], *, dtype: str | None = None, gate: RequestGate | None = None
    ) -> Any:
        """One vector per text, in order (an ``EmbeddingResult``, a list of lists).

        ``dtype="float32"`` returns a numpy array instead, filled batch by batch
        (a tenth of the memory of lists for large runs). ``gate`` is an extra
        limiter passed before every HTTP attempt of this call. An empty list
        returns an empty result without a request.
        """
        checked = _check_texts(texts)
        if not checked:
            return self._rows([], 0, dtype).result([]) if dtype is None else _empty(dtype)
        try:
            batches, truncated = plan_call(checked, self.options, self.server_limits(gate))
            rows = self._rows(batches, len(checked), dtype)
            self._sync.map(self._flows(batches), gate, rows.keep)
        except HFEndpointError:
            self._stats.failure()
            raise
        return self._done(rows, len(checked), truncated)

    async def aembed(
        self, texts: Sequence[str], *, dtype: str | None = None, gate: RequestGate | None = None
    ) -> Any:
        """``embed`` for async callers: batches go out concurrently on this event loop."""
        checked = _check_texts(texts)
        if not checked:
            return self._rows([], 0, dtype).result([]) if dtype is None else _empty(dtype)
        try:
            limits = await self.aserver_limits(gate)
            if _needs_thread(checked, limits):
                batches, truncated = await asyncio.to_thread(
                    plan_call, checked, self.options, limits
                )
            else:
                batches, truncated = plan_call(checked, self.options, limits)
            rows = self._rows(batches, len(checked), dtype)
            await self._async.map(self._flows(batches), gate, rows.keep)
        except HFEndpointError:
            self._stats.failure()
            raise
        return self._done(rows, len(checked), truncated)

    def _chunk_job(
        self,
        texts: object,
        chunking_settings: ChunkingSettings | Mapping[str, Any] | None,
        limits: ServerLimits,
    ) -> _ChunkJob:
        explicit = chunking_settings or self.options.chunking_settings
        return _ChunkJob(
            _check_texts(texts),
            ChunkingSettings.coerce(explicit) if explicit else None,
            limits,
        )

    def embed_chunks(
        self,
        texts: Sequence[str],
        chunking_settings: ChunkingSettings | Mapping[str, Any] | None = None,
        *,
        gate: RequestGate | None = None,
    ) -> list[list[EmbeddedChunk]]:
        """Chunk each text and embed every chunk; batches cross text boundaries.

        Chunking: ``chunking_settings``, else the client's, else Elasticsearch's
        default fitted to the endpoint (``fitted_chunking``; a text whose chunk the
        endpoint still refuses is chunked again, smaller). A chunk that explicit
        settings make too large raises ``InputTooLargeError`` naming the text, the
        chunk and the setting to change. Nothing is cut silently.
        """
        job = self._chunk_job(texts, chunking_settings, self.server_limits(gate))
        while True:
            try:
                return job.result(self.embed(job.flat(), gate=gate))
            except InputTooLargeError as exc:
                job.refit(exc)

    async def aembed_chunks(
        self,
        texts: Sequence[str],
        chunking_settings: ChunkingSettings | Mapping[str, Any] | None = None,
        *,
        gate: RequestGate | None = None,
    ) -> list[list[EmbeddedChunk]]:
        """``embed_chunks`` for async callers; long inputs are chunked in a worker thread."""
        limits = await self.aserver_limits(gate)
        checked = _check_texts(texts)
        if sum(map(len, checked)) > _OFFLOAD_CHARS:
            job = await asyncio.to_thread(self._chunk_job, checked, chunking_settings, limits)
        else:
            job = self._chunk_job(checked, chunking_settings, limits)
        while True:
            try:
                return job.result(await self.aembed(job.flat(), gate=gate))
            except InputTooLargeError as exc:
                job.refit(exc)

    def embed_pooled(
        self,
        texts: Sequence[str],
        chunking_settings: ChunkingSettings | Mapping[str, Any] | None = None,
        *,
        gate: RequestGate | None = None,
    ) -> list[list[float]]:
        """One vector per text: chunked as ``embed_chunks`` does, then ``pool_chunks``."""
        return [pool_chunks(c) for c in self.embed_chunks(texts, chunking_settings, gate=gate)]

    async def aembed_pooled(
        self,
        texts: Sequence[str],
        chunking_settings: ChunkingSettings | Mapping[str, Any] | None = None,
        *,
        gate: RequestGate | None = None,
    ) -> list[list[float]]:
        """``embed_pooled`` for async callers."""
        chunks = await self.aembed_chunks(texts, chunking_settings, gate=gate)
        return [pool_chunks(c) for c in chunks]


def _empty(dtype: str) -> Any:
    import numpy

    return numpy.empty((0, 0), dtype=dtype)

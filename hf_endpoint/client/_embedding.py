"""``EmbeddingClient``: embeddings from a Hugging Face Inference Endpoint, nothing lost.

The client is a facade (over ``_base.BaseClient``, which it shares with
``RerankClient``) over three layers. What is not I/O is pure: the options
(``_options``), the batch plan (``plan_call``), the request and answer formats
(``_protocol``), the retry decisions (``retry``) and the flows that string them
together (``_flows``: the batch loop and the ``GET /info`` discovery, generators
that yield *gate*, *slot*, *wait* and *send*). Two drivers (``_drivers``) run
the flows: the sync one with ``time.sleep``, ``httpx.Client`` and a thread
pool, the async one awaiting its waits on the event loop and running each HTTP
exchange on that same pool. No event loop ever runs inside a sync call, so the
sync methods work inside Jupyter and async web apps.

>>> from hf_endpoint.server import LocalEndpoint
>>> with LocalEndpoint("hash") as endpoint, EmbeddingClient(endpoint.url, api_key=None) as client:
...     vectors = client.embed(["first text", "second text"])
>>> len(vectors), len(vectors[0])
(2, 384)
"""

from __future__ import annotations

import array
import asyncio
import logging
import threading
from collections.abc import Iterable, Mapping, Sequence
from typing import TYPE_CHECKING, Any, Literal, NamedTuple, overload

from pydantic import SecretStr

from ..chunking._strategies import chunk_offsets
from ..config.settings import ChunkingSettings, InferenceConfig, RateLimit
from ..errors import ConfigError, InputTooLargeError, ResponseFormatError
from ._base import (
    FROM_ENVIRONMENT,
    OFFLOAD_CHARS,
    BaseClient,
    HTTPClient,
    RequestShape,
    check_texts,
    plan_call,
)
from ._drivers import RequestGate
from ._flows import Batch, ServerLimits, embed_flow, openai_embed_flow, tei_root
from ._options import ClientOptions, openai_route
from .ratelimit import Limiter
from .retry import RetryPolicy

if TYPE_CHECKING:
    import numpy.typing as npt

logger = logging.getLogger("hf_endpoint.client")

__all__ = [
    "MAX_CHUNKS",
    "EmbeddedChunk",
    "EmbeddingClient",
    "EmbeddingResult",
    "ServerLimits",
    "fitted_chunking",
    "merge_chunks",
    "pool_chunks",
]

# Elasticsearch keeps at most this many chunks per input (EmbeddingRequestChunker.MAX_CHUNKS).
MAX_CHUNKS = 512


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


def merge_chunks(
    offsets: Sequence[tuple[int, int]],
    vectors: Sequence[list[float]],
    max_chunks: int = MAX_CHUNKS,
) -> list[tuple[int, int, list[float]]]:
    """At most ``max_chunks`` chunks of one input, as Elasticsearch keeps them (PR #123150).

    Every chunk was embedded on its own; beyond ``max_chunks``, chunk ``i`` of ``n`` goes
    to merged chunk ``i * max_chunks // n``, whose offsets widen from its first chunk's
    start to its last chunk's end and whose vector is the mean of its chunks' vectors,
    accumulated in order as ``EmbeddingRequestChunker`` does
    (``(n * mean + m * v) / (n + m)``). ``n <= max_chunks``: the chunks as they are.
    """
    n = len(offsets)
    if n <= max_chunks:
        return [(s, e, v) for (s, e), v in zip(offsets, vectors)]
    merged: list[tuple[int, int, list[float]]] = []
    counts: list[int] = []
    for i, ((start, end), vector) in enumerate(zip(offsets, vectors)):
        target = i * max_chunks // n
        if target == len(merged):
            merged.append((start, end, list(vector)))
            counts.append(1)
            continue
        first, _, mean = merged[target]
        k = counts[target]
        merged[target] = (first, end, [(k * a + b) / (k + 1) for a, b in zip(mean, vector)])
        counts[target] = k + 1
    return merged


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


def fitted_chunking(max_input_length: int | None) -> ChunkingSettings:
    """Elasticsearch's default chunking (sentence, 250 words, overlap 1), with fewer words
    per chunk when the endpoint takes fewer tokens: half its ``max_input_length``
    (a word is rarely more than two tokens), between 20 and 250."""
    if max_input_length is None:
        return ChunkingSettings()
    words = max(20, min(250, max_input_length // 2))
    return ChunkingSettings(strategy="sentence", max_chunk_size=words, sentence_overlap=1)


class _Rows:
    """Collects batches as they finish: checks widths, then lists or a float32 array."""

    def __init__(
        self, batches: list[Batch], total: int, dtype: str | None, width: int | None
    ) -> None:
        self.batches = batches
        self.width = width
        self.lock = threading.Lock()
        self.rows: list[list[list[float]]] = [[] for _ in batches]
        self.array: npt.NDArray[Any] | None = None
        self.total = total
        self.dtype = dtype
        if dtype is not None:
            import numpy

            try:
                self.numpy_dtype = numpy.dtype(dtype)
            except TypeError:
                raise ConfigError(f"[dtype] must be a numpy float type, not {dtype!r}") from None

    def keep(self, i: int, rows: list[Any]) -> None:
        width = len(rows[0])
        packed = isinstance(rows[0], array.array)  # float32 from base64 (the OpenAI route)
        with self.lock:
            if self.width is None:
                self.width = width
            elif width != self.width:
                raise ResponseFormatError(
                    f"the endpoint answered vectors of {width} dimensions for inputs "
                    f"{self.batches[i].indices[0]}..; earlier vectors have {self.width}"
                )
            if self.dtype is None:
                self.rows[i] = [row.tolist() for row in rows] if packed else rows
                return
            if self.array is None:
                import numpy

                self.array = numpy.empty((self.total, width), dtype=self.numpy_dtype)
        r = self.batches[i].indices
        if packed:
            import numpy

            # The decoded float32 go into the array as they are: no Python float per value.
            block = numpy.frombuffer(b"".join(rows), dtype=numpy.float32)
            self.array[r[0] : r[-1] + 1] = block.reshape(len(rows), width)
        else:
            self.array[r[0] : r[-1] + 1] = rows

    def result(self, truncated: list[int]) -> EmbeddingResult | npt.NDArray[Any]:
        if self.dtype is not None:
            assert self.array is not None
            return self.array
        return EmbeddingResult((row for part in self.rows for row in part), truncated)


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
        at = 0
        for text, offsets in zip(self.texts, self.spans):
            mine = vectors[at : at + len(offsets)]
            at += len(offsets)
            out.append(
                [EmbeddedChunk(text[s:e], s, e, v) for s, e, v in merge_chunks(offsets, mine)]
            )
        return out


class EmbeddingClient(BaseClient):
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
      1 MiB per input); ``dimensions``: the width every vector must have (sent
      as ``dimensions`` on the OpenAI route, for models that can shorten).
    * ``protocol``: ``"tei"`` (``POST /embed`` with ``{"inputs"}``, Text
      Embeddings Inference and Hugging Face Inference Endpoints), ``"openai"``
      (``POST /v1/embeddings`` with ``{"input", "model", "encoding_format"}``:
      vLLM, Infinity, TEI's own ``/v1/embeddings``; a base URL gets
      ``/v1/embeddings``, a URL ending in ``/v1`` gets ``/embeddings``), or
      ``"auto"`` (default): ``openai`` when the URL's path ends in
      ``/embeddings``, else ``tei``. On the OpenAI route ``model`` (default: the
      first of ``GET /v1/models``) is sent, and ``encoding_format`` (default
      ``"base64"``: float32 decoded in C, straight into the array for
      ``dtype="float32"``; ``"float"`` for JSON numbers). The OpenAI API has no
      ``truncate``: the server's own rule applies to an over-long input (TEI:
      ``--auto-truncate``; Infinity cuts to the model's length; vLLM refuses it,
      and the client then reports it or chunks it again, as with TEI). An
      ``auto`` URL whose server turns out to be TEI (no ``GET /v1/models``, TEI's
      ``GET /info`` at the root) is sent to TEI's ``/embed`` there, which can be
      asked not to truncate; ``protocol="openai"`` keeps the OpenAI route and
      logs a warning when that server auto-truncates.
    * ``query_prefix``, ``document_prefix``: put before every query (``query=True``) or
      every document (each chunk, when chunking) that is sent, for models trained with
      them: e5 (``"query: "``, ``"passage: "``), bge (``"Represent this sentence for
      searching relevant passages: "`` before queries, nothing before documents). Offsets
      still point into the original text. ``prompt_name`` asks the endpoint for a prompt
      its model folder defines instead.
    * ``http_client``: an ``httpx.Client`` every request goes through (your proxies,
      certificates, event hooks; its own headers and timeout are overridden per request
      by the client's), or an ``httpx.BaseTransport`` under the client's own
      ``httpx.Client`` (``httpx.MockTransport`` in tests, a transport with retries or
      a Unix socket). Async calls send through it too, from worker threads, so an
      ``httpx.AsyncClient`` is refused. The client never closes what it was given:
      close it yourself, once the clients using it are done.

    Every option is validated at construction (``ConfigError`` lists every
    problem); each is declared once, with its default, in ``ClientOptions``
    (``hf_endpoint.client._options``). Safe to share between threads and tasks; pickles (the key
    travels, pools are rebuilt on the other side; a transport travels if it pickles, an
    ``httpx.Client`` does not, and pickling says so). ``stats`` counts what it
    did. Use it as a context manager, or call ``close()`` / ``await aclose()``.
    """

    def __init__(
        self,
        url: str,
        api_key: str | SecretStr | None = FROM_ENVIRONMENT,
        *,
        # -- from the declaration: embed keywords --
        rate_limit: RateLimit | Mapping[str, Any] | int | None = ClientOptions.rate_limit,
        batch_size: int = ClientOptions.batch_size,
        max_concurrency: int = ClientOptions.max_concurrency,
        timeout: float = ClientOptions.timeout,
        max_retries: int | None = ClientOptions.max_retries,
        retry_policy: RetryPolicy | None = ClientOptions.retry_policy,
        truncate: bool | None = ClientOptions.truncate,
        normalize: bool | None = ClientOptions.normalize,
        prompt_name: str | None = ClientOptions.prompt_name,
        truncation_direction: Literal["Right", "Left"] | None = ClientOptions.truncation_direction,
        max_input_tokens: int | None = ClientOptions.max_input_tokens,
        chunking_settings: ChunkingSettings
        | Mapping[str, Any]
        | None = ClientOptions.chunking_settings,
        scale_up_timeout: float | None = ClientOptions.scale_up_timeout,
        discover_limits: bool = ClientOptions.discover_limits,
        max_body_bytes: int = ClientOptions.max_body_bytes,
        max_response_bytes: int | None = ClientOptions.max_response_bytes,
        dimensions: int | None = ClientOptions.dimensions,
        protocol: Literal["auto", "tei", "openai"] = ClientOptions.protocol,
        model: str | None = ClientOptions.model,
        encoding_format: Literal["base64", "float"] = ClientOptions.encoding_format,
        document_prefix: str | None = ClientOptions.document_prefix,
        query_prefix: str | None = ClientOptions.query_prefix,
        # -- end: embed keywords --
        limiter: Limiter | None = None,
        http_client: HTTPClient | None = None,
    ) -> None:
        options = ClientOptions.from_arguments("embed", locals())
        self._setup(options, self._find_key(api_key), limiter, None, http_client)

    def _setup(
        self,
        options: ClientOptions,
        api_key: SecretStr | None,
        limiter: Limiter | None,
        limits: ServerLimits | None,
        http_client: HTTPClient | None = None,
    ) -> None:
        super()._setup(options, api_key, limiter, limits, http_client)
        self._width: int | None = None
        self._warned = False

    @property
    def chunking_settings(self) -> ChunkingSettings | None:
        return self.options.chunking_settings

    @property
    def _openai(self) -> bool:
        return self.options.openai

    @property
    def _target(self) -> str:
        return openai_route(self.url) if self._openai else self.url

    def _via_tei(self, limits: ServerLimits) -> bool:
        """Whether an OpenAI URL of ``protocol="auto"`` turned out to be TEI's, whose own
        ``/embed`` beside it is used: only there can the client ask it not to truncate."""
        return self._openai and self.options.protocol == "auto" and limits.tei

    def _speaks_openai(self, limits: ServerLimits) -> bool:
        if not self._openai or self._via_tei(limits):
            return False
        if limits.auto_truncate and self.options.truncate is None and not self._warned:
            self._warned = True
            logger.warning(
                "%s is Text Embeddings Inference with auto-truncate on: its OpenAI route cuts "
                "inputs over %s tokens without saying so (the OpenAI API cannot ask it not to); "
                'protocol="tei" (or "auto") sends them to its /embed, which refuses them instead',
                self._target,
                limits.max_input_length,
            )
        return True

    def _shape(self, limits: ServerLimits) -> RequestShape | None:
        """The OpenAI route's body (``input``, ``model``, ...); ``None``: TEI's ``/embed``."""
        if not self._speaks_openai(limits):
            return None
        return RequestShape(key=b"input", fields=self.options.openai_fields(limits.model_id))

    def _embed_flows(self, batches: list[Batch], limits: ServerLimits) -> list[Any]:
        if self._via_tei(limits):
            return self._flows(batches, embed_flow, tei_root(self._target) + "/embed")
        return self._flows(batches, openai_embed_flow if self._openai else embed_flow)

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
        client = cls(s.url, s.api_key, rate_limit=s.rate_limit, **kwargs)
        client._key_source = "the token in the PUT body (service_settings.api_key)"
        return client

    # -- embeddings ------------------------------------------------------------------

    def _rows(self, batches: list[Batch], total: int, dtype: str | None) -> _Rows:
        return _Rows(batches, total, dtype, self.options.dimensions or self._width)

    def _done(
        self, rows: _Rows, total: int, truncated: list[int]
    ) -> EmbeddingResult | npt.NDArray[Any]:
        self._stats.inputs(total)
        self._width = rows.width  # an endpoint's vectors keep their width
        return rows.result(truncated)

    @overload
    def embed(
        self,
        texts: Sequence[str],
        *,
        dtype: None = None,
        gate: RequestGate | None = None,
        query: bool = False,
    ) -> EmbeddingResult: ...

    @overload
    def embed(
        self,
        texts: Sequence[str],
        *,
        dtype: str,
        gate: RequestGate | None = None,
        query: bool = False,
    ) -> npt.NDArray[Any]: ...

    @overload
    def embed(
        self,
        texts: Sequence[str],
        *,
        dtype: str | None = None,
        gate: RequestGate | None = None,
        query: bool = False,
    ) -> EmbeddingResult | npt.NDArray[Any]: ...

    def embed(
        self,
        texts: Sequence[str],
        *,
        dtype: str | None = None,
        gate: RequestGate | None = None,
        query: bool = False,
    ) -> EmbeddingResult | npt.NDArray[Any]:
        """One vector per text, in order (an ``EmbeddingResult``, a list of lists).

        ``dtype="float32"`` returns a numpy array instead, filled batch by batch
        (a tenth of the memory of lists for large runs). ``gate`` is an extra
        limiter passed before every HTTP attempt of this call. ``query=True``: the
        texts are queries (``query_prefix`` is sent before each, else
        ``document_prefix``). An empty list returns an empty result without a request.
        """
        checked = self.options.prefixed(check_texts(texts), query)
        if not checked:
            return self._rows([], 0, dtype).result([]) if dtype is None else _empty(dtype)
        with self._counting_failures():
            limits = self.server_limits(gate)
        # Refused while planning (too large, no dtype): nothing was sent, so not a failed call.
        batches, truncated = plan_call(checked, self.options, limits, self._shape(limits))
        rows = self._rows(batches, len(checked), dtype)
        with self._counting_failures():
            self._sync.map(self._embed_flows(batches, limits), gate, rows.keep)
        return self._done(rows, len(checked), truncated)

    @overload
    async def aembed(
        self,
        texts: Sequence[str],
        *,
        dtype: None = None,
        gate: RequestGate | None = None,
        query: bool = False,
    ) -> EmbeddingResult: ...

    @overload
    async def aembed(
        self,
        texts: Sequence[str],
        *,
        dtype: str,
        gate: RequestGate | None = None,
        query: bool = False,
    ) -> npt.NDArray[Any]: ...

    @overload
    async def aembed(
        self,
        texts: Sequence[str],
        *,
        dtype: str | None = None,
        gate: RequestGate | None = None,
        query: bool = False,
    ) -> EmbeddingResult | npt.NDArray[Any]: ...

    async def aembed(
        self,
        texts: Sequence[str],
        *,
        dtype: str | None = None,
        gate: RequestGate | None = None,
        query: bool = False,
    ) -> EmbeddingResult | npt.NDArray[Any]:
        """``embed`` for async callers: batches go out concurrently on this event loop."""
        checked = self.options.prefixed(check_texts(texts), query)
        if not checked:
            return self._rows([], 0, dtype).result([]) if dtype is None else _empty(dtype)
        with self._counting_failures():
            limits = await self.aserver_limits(gate)
        # refused here: nothing sent
        batches, truncated = await self._aplan(checked, limits, self._shape(limits))
        rows = self._rows(batches, len(checked), dtype)
        with self._counting_failures():
            await self._async.map(self._embed_flows(batches, limits), gate, rows.keep)
        return self._done(rows, len(checked), truncated)

    def _chunk_job(
        self,
        texts: object,
        chunking_settings: ChunkingSettings | Mapping[str, Any] | None,
        limits: ServerLimits,
    ) -> _ChunkJob:
        explicit = chunking_settings or self.options.chunking_settings
        return _ChunkJob(
            check_texts(texts),
            ChunkingSettings.coerce(explicit) if explicit else None,
            limits,
        )

    def embed_chunks(
        self,
        texts: Sequence[str],
        chunking_settings: ChunkingSettings | Mapping[str, Any] | None = None,
        *,
        gate: RequestGate | None = None,
        query: bool = False,
    ) -> list[list[EmbeddedChunk]]:
        """Chunk each text and embed every chunk; batches cross text boundaries.

        Chunking: ``chunking_settings``, else the client's, else Elasticsearch's
        default fitted to the endpoint (``fitted_chunking``; a text whose chunk the
        endpoint still refuses is chunked again, smaller). A chunk that explicit
        settings make too large raises ``InputTooLargeError`` naming the text, the
        chunk and the setting to change. Nothing is cut silently. A text of more
        than 512 chunks gets 512, neighbouring chunks merged as Elasticsearch
        merges them (``merge_chunks``): every chunk is embedded, none is dropped. Each chunk is
        sent with ``document_prefix`` (``query_prefix`` when ``query``) before it;
        the chunks' ``text``, ``start`` and ``end`` are those of the original text.
        """
        checked = check_texts(texts)  # an empty text is refused before anything is sent
        job = self._chunk_job(checked, chunking_settings, self.server_limits(gate))
        while True:
            try:
                return job.result(self.embed(job.flat(), gate=gate, query=query))
            except InputTooLargeError as exc:
                job.refit(exc)

    async def aembed_chunks(
        self,
        texts: Sequence[str],
        chunking_settings: ChunkingSettings | Mapping[str, Any] | None = None,
        *,
        gate: RequestGate | None = None,
        query: bool = False,
    ) -> list[list[EmbeddedChunk]]:
        """``embed_chunks`` for async callers; long inputs are chunked in a worker thread."""
        checked = check_texts(texts)  # an empty text is refused before anything is sent
        limits = await self.aserver_limits(gate)
        if sum(map(len, checked)) > OFFLOAD_CHARS:
            job = await asyncio.to_thread(self._chunk_job, checked, chunking_settings, limits)
        else:
            job = self._chunk_job(checked, chunking_settings, limits)
        while True:
            try:
                return job.result(await self.aembed(job.flat(), gate=gate, query=query))
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


def _empty(dtype: str) -> npt.NDArray[Any]:
    import numpy

    return numpy.empty((0, 0), dtype=dtype)

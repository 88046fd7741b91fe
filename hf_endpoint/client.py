"""``EmbeddingClient``: embeddings from a Hugging Face Inference Endpoint, nothing lost.

One class serves sync and async callers. Everything that is not I/O lives in
one place: the batch plan (``_batching``), the request body and response
parsing (``_protocol``), the retry decisions (``retry``) and the rate limit
slots (``ratelimit``). ``_run_batch`` is a generator that strings them
together and yields the I/O it needs (wait so long, send this); the sync
driver answers with ``time.sleep`` and ``httpx.Client``, the async driver with
``asyncio.sleep`` and ``httpx.AsyncClient``. No event loop ever runs inside a
sync call, so the sync methods work inside Jupyter and async web apps.

>>> with EmbeddingClient("http://127.0.0.1:8080", api_key=None) as client:  # doctest: +SKIP
...     vectors = client.embed(["first text", "second text"])
"""

from __future__ import annotations

import asyncio
import functools
import logging
import random
import re
import threading
import time
import weakref
from collections import deque
from collections.abc import Awaitable, Callable, Generator, Iterable, Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from typing import Any, Literal, NamedTuple, Protocol, TypeVar

import httpx
import orjson
from pydantic import SecretStr
from typing_extensions import Self

from ._batching import TokenCounter, plan_batches
from ._protocol import ServerOptions, parse_error, request_body
from ._validation import Problems
from .chunking import chunk_offsets
from .errors import AuthenticationError, ConfigError, InputTooLargeError
from .ratelimit import RateLimiter, shared_limiter
from .retry import Fail, Outcome, Retry, RetryPolicy, Split, Success, decide
from .settings import ChunkingSettings, InferenceConfig, RateLimit, _check_url

__all__ = [
    "EmbeddedChunk",
    "EmbeddingClient",
    "EmbeddingResult",
    "RequestGate",
    "ServerLimits",
    "pool_chunks",
]

logger = logging.getLogger(__name__)

T = TypeVar("T")

# JSON around the inputs of one request, with every option set.
_BODY_OVERHEAD = 256


class EmbeddedChunk(NamedTuple):
    """A chunk of an input text and its vector: ``text == source[start:end]``."""

    text: str
    start: int
    end: int
    embedding: list[float]


# The settings an adapter holds as fields and hands to its clients unchanged.
ADAPTER_OPTIONS = (
    "rate_limit",
    "max_concurrency",
    "timeout",
    "max_retries",
    "truncate",
    "normalize",
    "truncation_direction",
    "chunking_settings",
    "scale_up_timeout",
)


def adapter_clients(adapter: Any, batch_size: int) -> tuple[EmbeddingClient, EmbeddingClient]:
    """The clients an adapter needs, built from its fields (``url``, ``api_key``,
    ``prompt_name``, ``query_prompt_name`` and ``ADAPTER_OPTIONS``): one for
    documents and one for queries, the same one when the two prompts agree."""
    options = {name: getattr(adapter, name) for name in ADAPTER_OPTIONS}
    documents = EmbeddingClient(
        adapter.url,
        adapter.api_key,
        batch_size=batch_size,
        prompt_name=adapter.prompt_name,
        **options,
    )
    if adapter.query_prompt_name == adapter.prompt_name:
        return documents, documents
    queries = EmbeddingClient(
        adapter.url,
        adapter.api_key,
        batch_size=batch_size,
        prompt_name=adapter.query_prompt_name,
        **options,
    )
    return documents, queries


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


@dataclass(frozen=True)
class ServerLimits:
    """What ``GET /info`` told about the endpoint (``None`` where it said nothing)."""

    max_client_batch_size: int | None = None
    max_batch_tokens: int | None = None
    max_input_length: int | None = None

    @classmethod
    def from_info(cls, info: Any) -> ServerLimits:
        def positive(key: str) -> int | None:
            value = info.get(key) if isinstance(info, dict) else None
            return (
                value
                if isinstance(value, int) and not isinstance(value, bool) and value > 0
                else None
            )

        return cls(
            positive("max_client_batch_size"),
            positive("max_batch_tokens"),
            positive("max_input_length"),
        )


@dataclass(frozen=True)
class _Wait:
    seconds: float


@dataclass(frozen=True)
class _Send:
    body: bytes
    inputs: int


@dataclass(frozen=True)
class _Gate:
    """Pass the extra limiters before sending."""


_Step = _Wait | _Send | _Gate


class RequestGate(Protocol):
    """An extra limiter passed before every HTTP attempt (LlamaIndex's rate limiters fit)."""

    def acquire(self) -> None: ...

    async def async_acquire(self) -> None: ...


_LONE_SURROGATE = re.compile("[\ud800-\udfff]")


def lone_surrogate(text: str) -> int | None:
    """Where ``text`` holds a lone surrogate (which UTF-8 cannot carry), or ``None``."""
    if text.isascii():
        return None
    found = _LONE_SURROGATE.search(text)
    return None if found is None else found.start()


def _check_texts(texts: object) -> list[str]:
    """The texts as a list, or a ``TypeError`` / ``ConfigError`` naming the bad one."""
    if isinstance(texts, str) or not isinstance(texts, Sequence):
        raise TypeError(f"texts must be a list of str, not {type(texts).__name__}")
    for i, text in enumerate(texts):
        if not isinstance(text, str):
            raise TypeError(f"texts[{i}] must be a str, not {type(text).__name__}")
        at = lone_surrogate(text)
        if at is not None:
            raise ConfigError(
                f"texts[{i}] holds a lone surrogate (U+{ord(text[at]):04X}) at index {at}: "
                "it cannot be sent as UTF-8"
            )
    return list(texts)


def _info_url(url: str) -> str:
    base = url.rstrip("/")
    base = base.removesuffix("/embed")
    return base + "/info"


class EmbeddingClient:
    """Embeddings from one endpoint, batched, rate-limited and retried, in input order.

    * ``url``: the endpoint URL; requests go to it as given.
    * ``api_key``: the token, sent as ``Authorization: Bearer``; ``None`` for an
      endpoint that needs none. Never shown by ``repr``, logs or errors.
    * ``rate_limit``: ``{"requests_per_minute": N}``, a ``RateLimit`` or ``N``
      (default 3000): requests spaced ``60 / N`` s apart, retries included,
      shared by every client of this URL, key and rate in the process.
    * ``batch_size``: inputs per request (default 20), lowered to the
      endpoint's ``max_client_batch_size`` when ``GET /info`` tells it; requests
      also stay within its ``max_batch_tokens`` and ``max_body_bytes``.
    * ``max_concurrency``: requests in flight at once (threads for sync calls).
    * ``timeout``: seconds for each HTTP attempt; ``max_retries`` (or a whole
      ``retry_policy``) how often to retry 429/502/503/504 and lost connections.
    * ``truncate``, ``normalize``, ``prompt_name``, ``truncation_direction``:
      sent to the endpoint only when set.
    * ``max_input_tokens``: inputs longer than ``max_input_tokens * 3``
      characters are cut to that before sending, as Elasticsearch does.
    * ``chunking_settings``: the default of ``embed_chunks``.
    * ``scale_up_timeout``: sends ``X-Scale-Up-Timeout`` so that a
      scale-to-zero endpoint holds the request while it starts.

    Safe to share between threads and tasks. Use it as a context manager, or
    call ``close()`` / ``await aclose()``.
    """

    def __init__(
        self,
        url: str,
        api_key: str | SecretStr | None = None,
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
    ) -> None:
        problems = Problems()
        if not isinstance(url, str) or not url.strip():
            problems.add("[url] must be a non-empty string")
        else:
            _check_url(url, problems)
        for name, value, low in (
            ("batch_size", batch_size, 1),
            ("max_concurrency", max_concurrency, 1),
            ("max_body_bytes", max_body_bytes, 1024),
        ):
            if isinstance(value, bool) or not isinstance(value, int) or value < low:
                problems.add(f"[{name}] must be an integer >= {low}, not {value!r}")
        if not isinstance(timeout, (int, float)) or isinstance(timeout, bool) or timeout <= 0:
            problems.add(f"[timeout] must be a positive number of seconds, not {timeout!r}")
        if max_input_tokens is not None and (
            isinstance(max_input_tokens, bool)
            or not isinstance(max_input_tokens, int)
            or max_input_tokens <= 0
        ):
            problems.add(f"[max_input_tokens] must be a positive integer, not {max_input_tokens!r}")
        if max_retries is not None and retry_policy is not None:
            problems.add("give max_retries or retry_policy, not both")
        problems.raise_if_any()

        self.url = url
        self._api_key = (
            api_key if isinstance(api_key, SecretStr) or api_key is None else SecretStr(api_key)
        )
        self.rate_limit = RateLimit.coerce(rate_limit)
        self.batch_size = batch_size
        self.max_concurrency = max_concurrency
        self.timeout = float(timeout)
        self.retry_policy = retry_policy or RetryPolicy(
            **({} if max_retries is None else {"max_retries": max_retries})
        )
        self.options = ServerOptions(truncate, normalize, prompt_name, truncation_direction)
        self.max_input_tokens = max_input_tokens
        self.chunking_settings = (
            None if chunking_settings is None else ChunkingSettings.coerce(chunking_settings)
        )
        self.scale_up_timeout = scale_up_timeout
        self.discover_limits = discover_limits
        self.max_body_bytes = max_body_bytes
        self.gates: list[RequestGate] = []

        key = self._api_key.get_secret_value() if self._api_key is not None else None
        self._limiter: RateLimiter = shared_limiter(url, key, self.rate_limit.requests_per_minute)
        self._headers = {"Content-Type": "application/json"}
        if key:
            self._headers["Authorization"] = f"Bearer {key}"
        if scale_up_timeout is not None:
            self._headers["X-Scale-Up-Timeout"] = str(int(scale_up_timeout))
        self._tokens = TokenCounter()
        self._limits: ServerLimits | None = None
        self._limits_lock = threading.Lock()
        self._random = random.Random()
        self._sync_client: httpx.Client | None = None
        self._executor: ThreadPoolExecutor | None = None
        self._async_clients: weakref.WeakKeyDictionary[
            asyncio.AbstractEventLoop, httpx.AsyncClient
        ] = weakref.WeakKeyDictionary()
        self._semaphores: weakref.WeakKeyDictionary[
            asyncio.AbstractEventLoop, asyncio.Semaphore
        ] = weakref.WeakKeyDictionary()
        self._lock = threading.Lock()

    @classmethod
    def from_config(
        cls, config: InferenceConfig | Mapping[str, Any], **kwargs: Any
    ) -> EmbeddingClient:
        """A client for an Elasticsearch ``PUT _inference`` body (or a parsed ``InferenceConfig``)."""
        if not isinstance(config, InferenceConfig):
            config = InferenceConfig.from_dict(config)
        s = config.service_settings
        kwargs.setdefault("chunking_settings", config.chunking_settings)
        kwargs.setdefault("max_input_tokens", s.max_input_tokens)
        return cls(s.url, s.api_key, rate_limit=s.rate_limit, **kwargs)

    def __repr__(self) -> str:
        key = "None" if self._api_key is None else "SecretStr('**********')"
        return (
            f"EmbeddingClient(url={self.url!r}, api_key={key}, rate_limit={self.rate_limit!r}, "
            f"batch_size={self.batch_size}, max_concurrency={self.max_concurrency})"
        )

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
        with self._lock:
            if self._sync_client is not None:
                self._sync_client.close()
                self._sync_client = None
            if self._executor is not None:
                self._executor.shutdown(wait=False, cancel_futures=True)
                self._executor = None

    async def aclose(self) -> None:
        """Close this event loop's connection pool, and the sync one."""
        client = self._async_clients.pop(asyncio.get_running_loop(), None)
        if client is not None:
            await client.aclose()
        self.close()

    def _http_options(self) -> dict[str, Any]:
        """What the sync and the async connection pools share."""
        return {
            "timeout": self.timeout,
            "limits": httpx.Limits(max_connections=self.max_concurrency + 1),
            "headers": self._headers,
        }

    def _http(self) -> httpx.Client:
        with self._lock:
            if self._sync_client is None:
                self._sync_client = httpx.Client(**self._http_options())
            return self._sync_client

    def _ahttp(self) -> httpx.AsyncClient:
        loop = asyncio.get_running_loop()
        client = self._async_clients.get(loop)
        if client is None:
            client = self._async_clients[loop] = httpx.AsyncClient(**self._http_options())
        return client

    def _in_flight(self) -> asyncio.Semaphore:
        """This event loop's bound on requests in flight, shared by every call on it."""
        loop = asyncio.get_running_loop()
        gate = self._semaphores.get(loop)
        if gate is None:
            gate = self._semaphores[loop] = asyncio.Semaphore(self.max_concurrency)
        return gate

    def _pool(self) -> ThreadPoolExecutor:
        with self._lock:
            if self._executor is None:
                self._executor = ThreadPoolExecutor(
                    self.max_concurrency, thread_name_prefix="hf-endpoint-client"
                )
            return self._executor

    # -- what does not do I/O --------------------------------------------------

    def _slot(self) -> float:
        """Take a rate-limit slot; the seconds to wait before sending."""
        return self._limiter.reserve()

    def _prepare(self, texts: object) -> tuple[list[str], list[int]]:
        """Validated inputs, cut where the settings say so, and which were cut."""
        prepared = _check_texts(texts)
        truncated: list[int] = []
        limit = self.max_input_tokens * 3 if self.max_input_tokens else None
        budget = self.max_body_bytes - _BODY_OVERHEAD
        left = self.options.truncation_direction == "Left"
        for i, text in enumerate(prepared):
            if limit is not None and len(text) > limit:
                prepared[i] = text = text[-limit:] if left else text[:limit]
                truncated.append(i)
            if (
                len(text) * 6 + 2 > budget
            ):  # a character is at most 6 bytes of JSON: measure only then
                size = len(orjson.dumps(text))
                if size > budget:
                    if not self.options.truncate:
                        raise InputTooLargeError(
                            i,
                            f"is {size} bytes as JSON, over the {self.max_body_bytes} bytes one request may carry: "
                            "chunk it (embed_chunks, or chunking_settings) or set truncate=True",
                        )
                    keep = int(len(text) * budget / size * 0.9)
                    prepared[i] = text[-keep:] if left else text[:keep]
                    if i not in truncated:
                        truncated.append(i)
        return prepared, truncated

    def _plan(self, texts: list[str], limits: ServerLimits) -> list[range]:
        max_inputs = min(self.batch_size, limits.max_client_batch_size or self.batch_size)
        max_tokens = limits.max_batch_tokens
        max_length = limits.max_input_length
        sizes = [
            len(t) * 3 + 3 for t in texts
        ]  # UTF-8 bytes, at most 3 per BMP character, plus quotes
        if max(sizes) * max_inputs > self.max_body_bytes - _BODY_OVERHEAD:
            sizes = [len(orjson.dumps(t)) + 1 for t in texts]
        if max_tokens is None and max_length is None:
            tokens = [0] * len(texts)
        else:
            # A token is at least one UTF-8 byte: count exactly only where the bound is too loose.
            threshold = min(max_length or max_tokens or 0, (max_tokens or 2**62) // max_inputs)
            tokens = [
                bound if bound <= threshold else self._tokens.count(t)
                for t, bound in zip(texts, (len(t.encode("utf-8", "surrogatepass")) for t in texts))
            ]
            if max_length is not None and not self.options.truncate:
                over = [i for i, n in enumerate(tokens) if n > max_length]
                for i in over[:5]:
                    logger.warning(
                        "input [%d] is about %d tokens, over the endpoint's limit of %d: the endpoint will "
                        "refuse it; use a smaller max_chunk_size, or truncate=True",
                        i,
                        tokens[i],
                        max_length,
                    )
                if len(over) > 5:
                    logger.warning(
                        "%d more inputs are over the endpoint's token limit", len(over) - 5
                    )
        return plan_batches(
            sizes,
            tokens,
            max_inputs=max_inputs,
            max_tokens=max_tokens or 2**62,
            max_bytes=self.max_body_bytes - _BODY_OVERHEAD,
        )

    def _run_batch(
        self, texts: list[str], batch: range
    ) -> Generator[_Step, Outcome | None, list[list[float]]]:
        """Send one planned batch until it succeeds or fails for good; yields the I/O it needs."""
        rows: dict[int, list[float]] = {}
        pending: deque[list[int]] = deque([list(batch)])
        policy = self.retry_policy
        while pending:
            indices = pending.popleft()
            body = request_body([texts[i] for i in indices], self.options)
            retries = attempt = 0
            cold_waited = 0.0
            while True:
                if self.gates:
                    yield _Gate()
                wait = self._slot()
                if wait > 0:
                    yield _Wait(wait)
                attempt += 1
                outcome = yield _Send(body, len(indices))
                assert outcome is not None
                decision = decide(
                    policy,
                    outcome,
                    batch_size=len(indices),
                    first_index=indices[0],
                    retries_used=retries,
                    cold_waited=cold_waited,
                    draw=self._random.random(),
                )
                logger.debug(
                    "batch of %d inputs, attempt %d: %s -> %s",
                    len(indices),
                    attempt,
                    outcome.transport_error or f"HTTP {outcome.status}",
                    type(decision).__name__,
                )
                if isinstance(decision, Success):
                    rows.update(zip(indices, decision.rows))
                    break
                if isinstance(decision, Retry):
                    if decision.cold:
                        cold_waited += decision.wait
                    else:
                        retries += 1
                    logger.debug("retrying in %.2f s (%s)", decision.wait, decision.reason)
                    yield _Wait(decision.wait)
                    continue
                if isinstance(decision, Split):
                    half = len(indices) // 2
                    logger.debug(
                        "HTTP 413 on %d inputs: sending halves of %d and %d",
                        len(indices),
                        half,
                        len(indices) - half,
                    )
                    pending.extendleft([indices[half:], indices[:half]])
                    break
                assert isinstance(decision, Fail)
                raise decision.error
        return [rows[i] for i in batch]

    def _limits_from(self, outcome: Outcome) -> tuple[ServerLimits, bool]:
        """Read a ``GET /info`` answer: the limits, and whether they are settled.

        An endpoint that is starting or unreachable settles nothing: the
        configured values serve this call and the next call asks again.
        """
        if outcome.status in (401, 403):
            server = parse_error(outcome.content)
            raise AuthenticationError(outcome.status, server.error, server.error_type)
        limits = ServerLimits()
        if outcome.status == 200:
            try:
                limits = ServerLimits.from_info(orjson.loads(outcome.content))
            except orjson.JSONDecodeError:
                pass
        logger.debug(
            "endpoint limits from GET /info (%s): %s",
            outcome.transport_error or outcome.status,
            limits,
        )
        settled = outcome.transport_error is None and outcome.status not in (429, 502, 503, 504)
        return limits, settled

    # -- sync I/O ----------------------------------------------------------------

    def _outcome(self, send: Callable[[], httpx.Response]) -> Outcome:
        try:
            response = send()
        except httpx.TransportError as exc:
            return Outcome(transport_error=type(exc).__name__)
        return Outcome(response.status_code, response.headers, response.content)

    def _drive(self, run: Generator[_Step, Outcome | None, T]) -> T:
        http = self._http()
        try:
            step = next(run)
            while True:
                if isinstance(step, _Wait):
                    time.sleep(step.seconds)
                    step = run.send(None)
                elif isinstance(step, _Gate):
                    for gate in self.gates:
                        gate.acquire()
                    step = run.send(None)
                else:
                    step = run.send(
                        self._outcome(functools.partial(http.post, self.url, content=step.body))
                    )
        except StopIteration as done:
            result: T = done.value
            return result

    def _server_limits(self) -> ServerLimits:
        with self._limits_lock:
            if self._limits is not None:
                return self._limits
            if not self.discover_limits:
                self._limits = ServerLimits()
                return self._limits
            http = self._http()  # before the slot: making a client takes a while
            for gate in self.gates:
                gate.acquire()
            wait = self._slot()
            if wait > 0:
                time.sleep(wait)
            limits, settled = self._limits_from(
                self._outcome(functools.partial(http.get, _info_url(self.url)))
            )
            if settled:
                self._limits = limits
            return limits

    def embed(self, texts: Sequence[str]) -> EmbeddingResult:
        """One vector per text, in order. An empty list returns ``[]`` without a request."""
        prepared, truncated = self._prepare(texts)
        if not prepared:
            return EmbeddingResult()
        batches = self._plan(prepared, self._server_limits())
        if len(batches) == 1 or self.max_concurrency == 1:
            parts = [self._drive(self._run_batch(prepared, b)) for b in batches]
        else:
            pool = self._pool()
            futures = [pool.submit(self._drive, self._run_batch(prepared, b)) for b in batches]
            try:
                parts = [f.result() for f in futures]
            finally:
                for f in futures:
                    f.cancel()
        return EmbeddingResult((row for part in parts for row in part), truncated)

    def embed_chunks(
        self,
        texts: Sequence[str],
        chunking_settings: ChunkingSettings | Mapping[str, Any] | None = None,
    ) -> list[list[EmbeddedChunk]]:
        """Chunk each text (``chunking_settings``, else the client's, else Elasticsearch's
        default) and embed every chunk; batches cross text boundaries."""
        texts, spans = self._chunk(texts, chunking_settings)
        return self._regroup(
            texts, spans, self.embed([t[s:e] for t, offs in zip(texts, spans) for s, e in offs])
        )

    def embed_pooled(
        self,
        texts: Sequence[str],
        chunking_settings: ChunkingSettings | Mapping[str, Any] | None = None,
    ) -> list[list[float]]:
        """One vector per text: chunked as ``embed_chunks`` does, then ``pool_chunks``."""
        return [pool_chunks(chunks) for chunks in self.embed_chunks(texts, chunking_settings)]

    # -- async I/O ---------------------------------------------------------------

    async def _aoutcome(self, send: Callable[[], Awaitable[httpx.Response]]) -> Outcome:
        try:
            response = await send()
        except httpx.TransportError as exc:
            return Outcome(transport_error=type(exc).__name__)
        return Outcome(response.status_code, response.headers, response.content)

    async def _adrive(self, run: Generator[_Step, Outcome | None, T]) -> T:
        http = self._ahttp()
        try:
            step = next(run)
            while True:
                if isinstance(step, _Wait):
                    await asyncio.sleep(step.seconds)
                    step = run.send(None)
                elif isinstance(step, _Gate):
                    for gate in self.gates:
                        await gate.async_acquire()
                    step = run.send(None)
                else:
                    step = run.send(
                        await self._aoutcome(
                            functools.partial(http.post, self.url, content=step.body)
                        )
                    )
        except StopIteration as done:
            result: T = done.value
            return result

    async def _aserver_limits(self) -> ServerLimits:
        if self._limits is not None:
            return self._limits
        if not self.discover_limits:
            self._limits = ServerLimits()
            return self._limits
        http = self._ahttp()
        for gate in self.gates:
            await gate.async_acquire()
        wait = self._slot()
        if wait > 0:
            await asyncio.sleep(wait)
        limits, settled = self._limits_from(
            await self._aoutcome(functools.partial(http.get, _info_url(self.url)))
        )
        if settled:
            self._limits = limits
        return limits

    async def aembed(self, texts: Sequence[str]) -> EmbeddingResult:
        """``embed`` for async callers: batches go out concurrently on this event loop."""
        prepared, truncated = self._prepare(texts)
        if not prepared:
            return EmbeddingResult()
        batches = self._plan(prepared, await self._aserver_limits())
        gate = self._in_flight()

        async def one(batch: range) -> list[list[float]]:
            async with gate:
                return await self._adrive(self._run_batch(prepared, batch))

        tasks = [asyncio.ensure_future(one(b)) for b in batches]
        try:
            parts = await asyncio.gather(*tasks)
        except BaseException:
            for task in tasks:
                task.cancel()
            raise
        return EmbeddingResult((row for part in parts for row in part), truncated)

    async def aembed_chunks(
        self,
        texts: Sequence[str],
        chunking_settings: ChunkingSettings | Mapping[str, Any] | None = None,
    ) -> list[list[EmbeddedChunk]]:
        """``embed_chunks`` for async callers."""
        texts, spans = self._chunk(texts, chunking_settings)
        flat = [t[s:e] for t, offs in zip(texts, spans) for s, e in offs]
        return self._regroup(texts, spans, await self.aembed(flat))

    async def aembed_pooled(
        self,
        texts: Sequence[str],
        chunking_settings: ChunkingSettings | Mapping[str, Any] | None = None,
    ) -> list[list[float]]:
        """``embed_pooled`` for async callers."""
        return [
            pool_chunks(chunks) for chunks in await self.aembed_chunks(texts, chunking_settings)
        ]

    # -- chunks ------------------------------------------------------------------

    def _chunk(
        self, texts: object, chunking_settings: ChunkingSettings | Mapping[str, Any] | None
    ) -> tuple[list[str], list[list[tuple[int, int]]]]:
        checked = _check_texts(texts)
        settings = ChunkingSettings.coerce(
            chunking_settings if chunking_settings is not None else self.chunking_settings
        )
        return checked, [chunk_offsets(t, settings) for t in checked]

    @staticmethod
    def _regroup(
        texts: list[str], spans: list[list[tuple[int, int]]], vectors: list[list[float]]
    ) -> list[list[EmbeddedChunk]]:
        out: list[list[EmbeddedChunk]] = []
        it = iter(vectors)
        for text, offsets in zip(texts, spans):
            out.append([EmbeddedChunk(text[s:e], s, e, next(it)) for s, e in offsets])
        return out

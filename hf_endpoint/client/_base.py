"""``BaseClient``: what every client of one endpoint shares, whatever it asks the endpoint.

``EmbeddingClient`` (``POST /embed``) and ``RerankClient`` (``POST /rerank``)
are thin facades over this base: the validated options, the key, the
connection and its two drivers, ``GET /info`` once per client, the stats,
pickling and the lifecycle live here once. What differs is the request
(``RequestShape``: where the inputs go, what travels beside them) and how an
answer is read (the flow each facade hands to the drivers).
"""

from __future__ import annotations

import asyncio
import contextlib
import random
import threading
from collections.abc import Callable, Iterator, Mapping, Sequence
from concurrent.futures import Future
from dataclasses import dataclass, field
from json.encoder import encode_basestring
from typing import Any

import httpx
from pydantic import SecretStr
from typing_extensions import Self

from ..config._auth import clean_api_key, find_api_key, key_source
from ..config.settings import RateLimit
from ..errors import AuthenticationError, ConfigError, HFEndpointError, InputTooLargeError
from ._batching import TokenCounter, plan_batches
from ._drivers import AsyncDriver, Connection, RequestGate, SyncDriver
from ._flows import Batch, Flow, ServerLimits, discovery_flow, request_tail
from ._options import ClientOptions
from .ratelimit import Limiter, shared_limiter
from .retry import RetryPolicy
from .stats import ClientStats, StatsRecorder

__all__ = [
    "FROM_ENVIRONMENT",
    "BaseClient",
    "HTTPClient",
    "RequestShape",
    "check_texts",
    "lone_surrogate",
    "needs_thread",
    "plan_call",
]

# JSON around the inputs of one request, with every option set.
_BODY_OVERHEAD = 256
# The most bytes of JSON one result may take in an answer, unless max_response_bytes says.
_RESPONSE_BYTES_PER_INPUT = 1 << 20
# Above this many characters, planning and chunking in async calls run in a worker thread.
OFFLOAD_CHARS = 200_000


class _LookUp:
    """The default of ``api_key``: look it up as ``huggingface_hub`` does."""

    def __repr__(self) -> str:
        return "<from HF_TOKEN, HUGGINGFACEHUB_API_TOKEN or the hf login token file>"


FROM_ENVIRONMENT: Any = _LookUp()

HTTPClient = httpx.Client | httpx.BaseTransport
"""What ``http_client`` takes: an ``httpx.Client`` or an ``httpx.BaseTransport``."""


def check_http_client(http_client: object) -> HTTPClient | None:
    """``http_client`` as given, or a ``ConfigError`` saying what it takes."""
    if http_client is None or isinstance(http_client, (httpx.Client, httpx.BaseTransport)):
        return http_client
    also = ""
    if isinstance(http_client, (httpx.AsyncClient, httpx.AsyncBaseTransport)):
        also = " (async calls send through it too, from worker threads)"
    raise ConfigError(
        "[http_client] must be an httpx.Client or an httpx.BaseTransport"
        f"{also}, not {type(http_client).__name__}"
    )


def lone_surrogate(text: str) -> int | None:
    """Where ``text`` holds a lone surrogate (which UTF-8 cannot carry), or ``None``."""
    if text.isascii():
        return None
    for i, ch in enumerate(text):
        if "\ud800" <= ch <= "\udfff":
            return i
    return None


def check_texts(texts: object, name: str = "texts") -> list[str]:
    """The texts as a list, or a ``TypeError`` naming the bad one; an empty text is a
    ``ConfigError`` naming it, raised before anything is sent (so no failed call)."""
    if isinstance(texts, str) or not isinstance(texts, Sequence):
        raise TypeError(f"{name} must be a list of str, not {type(texts).__name__}")
    out = list(texts)
    for i, text in enumerate(out):
        if not isinstance(text, str):
            raise TypeError(f"{name}[{i}] must be a str, not {type(text).__name__}")
        if not text:
            _encode(i, text, name)  # raises, naming it
    return out


def _encode(i: int | None, text: str, name: str = "texts") -> bytes:
    """A text as JSON, measured once: its size in the body is its length.

    The standard library's C string encoder gives exact-size bytes (orjson keeps
    a 4 KiB buffer behind each small result: 200,000 texts held 800 MB).
    """
    if not text:
        where = name if i is None else f"{name}[{i}]"
        raise ConfigError(
            f"{where} is empty: Text Embeddings Inference refuses empty inputs (HTTP 400); "
            "leave it out or give it some text"
        )
    try:
        return encode_basestring(text).encode()
    except UnicodeEncodeError:
        at = lone_surrogate(text)
        where = name if i is None else f"{name}[{i}]"
        raise ConfigError(
            f"{where} holds a lone surrogate (U+{ord(text[at or 0]):04X}) at index {at}: "
            "it cannot be sent as UTF-8"
        ) from None


@dataclass(frozen=True)
class RequestShape:
    """How the requests of one call carry their inputs.

    * ``key``: the list the inputs go in (``inputs`` for ``/embed``, ``texts`` for ``/rerank``);
    * ``fields``: what every body carries after the inputs (server options, the query);
    * ``shared``: text the endpoint reads with every input (rerank's query, also
      in ``fields``): its bytes count once per body, its tokens once per input;
    * ``remedy``: what to do about an input too large for any request;
    * ``name``: what errors call the inputs.
    """

    key: bytes = b"inputs"
    fields: Mapping[str, Any] = field(default_factory=dict)
    shared: str = ""
    remedy: str = "chunk it (embed_chunks, or chunking_settings) or set truncate=True"
    name: str = "texts"


def plan_call(
    texts: Sequence[str],
    options: ClientOptions,
    limits: ServerLimits,
    shape: RequestShape | None = None,
) -> tuple[list[Batch], list[int]]:
    """The batches of one call, within every limit, and the inputs cut before sending.

    ``shape`` says what the requests look like besides the inputs (default:
    ``/embed`` with the client's server options).
    """
    if shape is None:
        shape = RequestShape(fields=options.server_options.body_fields())
    tail = request_tail(dict(shape.fields))
    truncated: list[int] = []
    cut = options.max_input_tokens * 3 if options.max_input_tokens else None
    left = options.truncation_direction == "Left"
    shared = _encode(None, shape.shared, "query") if shape.shared else b""
    budget = options.max_body_bytes - _BODY_OVERHEAD - len(shared)
    room = f"the {options.max_body_bytes} bytes one request may carry" + (
        f" beside the {len(shared)}-byte query" if shared else ""
    )
    if budget <= 0:
        raise ConfigError(
            f"[query] is {len(shared)} bytes as JSON: no text fits beside it in {room}"
        )
    encoded: list[bytes] = []
    for i, text in enumerate(texts):
        if cut is not None and len(text) > cut:
            text = text[-cut:] if left else text[:cut]
            truncated.append(i)
        data = _encode(i, text, shape.name)
        if len(data) > budget:
            if not options.truncate:
                raise InputTooLargeError(
                    i,
                    f"is {len(data)} bytes as JSON, over {room}: {shape.remedy}",
                )
            keep = int(len(text) * budget / len(data) * 0.9)
            data = _encode(i, text[-keep:] if left else text[:keep], shape.name)
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

        def estimate(text: str, size: int) -> int:
            return size if size <= threshold else counter.count(text)

        pair = estimate(shape.shared, len(shared)) if shared else 0
        tokens = [estimate(text, len(data)) + pair for text, data in zip(texts, encoded)]
    ranges = plan_batches(
        [len(data) + 1 for data in encoded],
        tokens,
        max_inputs=max_inputs,
        max_tokens=max_tokens or 2**62,
        max_bytes=budget,
    )
    per_input = _RESPONSE_BYTES_PER_INPUT
    if options.max_response_bytes is not None:
        per_input = options.max_response_bytes  # each batch may take the whole allowance
    return [Batch(r, encoded, tail, per_input, shape.key) for r in ranges], truncated


def needs_thread(texts: Sequence[str], limits: ServerLimits) -> bool:
    """Whether planning ``texts`` would hold an event loop up (long input, or a first load)."""
    return sum(map(len, texts)) > OFFLOAD_CHARS or (
        limits.max_batch_tokens is not None and not TokenCounter.loaded()
    )


def refuse_to_pickle(http_client: HTTPClient | None, owner: str) -> None:
    """A ``TypeError`` saying why, for an ``httpx.Client`` that would go with a pickle
    (it holds sockets and locks); a transport goes, if it pickles."""
    if isinstance(http_client, httpx.Client):
        raise TypeError(
            f"an {owner} given an httpx.Client as http_client does not pickle: give it a "
            "picklable transport instead, or build the client in each process"
        )


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


# Makes the flow of one batch: (url, batch, policy, draw, retry_connect=...) -> flow.
FlowMaker = Callable[..., Flow[list[Any]]]


class BaseClient:
    """Options, key, connection, drivers, discovery, stats, pickling and lifecycle.

    Subclasses build their ``ClientOptions`` and call ``_setup``; they send
    batches with ``_map``/``_amap`` and their own flow. Not for direct use.
    """

    options: ClientOptions

    @property
    def _openai(self) -> bool:
        """Whether this client speaks the OpenAI API (its endpoint has no ``GET /info``)."""
        return False

    @property
    def _target(self) -> str:
        """Where the requests go: the URL as given, unless a subclass's protocol says."""
        return self.url

    @staticmethod
    def _find_key(api_key: str | SecretStr | None) -> SecretStr | None:
        return find_api_key() if api_key is FROM_ENVIRONMENT else clean_api_key(api_key)

    def _setup(
        self,
        options: ClientOptions,
        api_key: SecretStr | None,
        limiter: Limiter | None,
        limits: ServerLimits | None,
        http_client: HTTPClient | None = None,
    ) -> None:
        self.options = options
        self._api_key = api_key
        self._http_client = check_http_client(http_client)
        # Where the key came from, when the caller knows better than key_source() can tell.
        self._key_source: str | None = None
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
            http_client=self._http_client,
        )
        self._connection = connection
        self._sync = SyncDriver(connection)
        self._async = AsyncDriver(self._sync)
        self._discovery = _Discovery(options.discover_limits)
        if limits is not None:
            self._discovery.limits = limits
        self._random = random.Random()

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
    def stats(self) -> ClientStats:
        """What this client did so far: requests, inputs, retries, waits (``ClientStats``)."""
        return self._stats.snapshot()

    def __repr__(self) -> str:
        key = "None" if self._api_key is None else "SecretStr('**********')"
        return (
            f"{type(self).__name__}(url={self.url!r}, api_key={key}, "
            f"rate_limit={self.rate_limit!r}, batch_size={self.batch_size}, "
            f"max_concurrency={self.max_concurrency})"
        )

    def __getstate__(self) -> dict[str, Any]:
        # Pickle is how a process hands work to another: the key travels with it.
        refuse_to_pickle(self._http_client, type(self).__name__)
        return {
            "options": self.options,
            "api_key": self._api_key.get_secret_value() if self._api_key else None,
            "limiter": self._custom_limiter,
            "limits": self._discovery.limits,
            "key_source": self._key_source,
            "http_client": self._http_client,
        }

    def __setstate__(self, state: dict[str, Any]) -> None:
        key = SecretStr(state["api_key"]) if state["api_key"] else None
        self._setup(
            state["options"], key, state["limiter"], state["limits"], state.get("http_client")
        )
        self._key_source = state.get("key_source")

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
        """Close the connection pool and worker threads; an ``http_client`` the caller
        gave (a client or a transport) stays open: it is the caller's to close."""
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
                flow = discovery_flow(
                    self._target, first_contact=not self._connection.contacted, openai=self._openai
                )
                limits, settled = self._sync.run(flow, gate)
            except AuthenticationError as exc:
                raise self._refused(exc) from None
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
                flow = discovery_flow(
                    self._target, first_contact=not self._connection.contacted, openai=self._openai
                )
                limits, settled = await self._async.run(flow, gate)
            except AuthenticationError as exc:
                raise self._refused(exc) from None
            finally:
                self._discovery.finish(future, limits, settled)
            assert limits is not None  # run returned
            return limits

    # -- sending planned batches ---------------------------------------------------

    async def _aplan(
        self,
        texts: list[str],
        limits: ServerLimits,
        shape: RequestShape | None = None,
    ) -> tuple[list[Batch], list[int]]:
        """``plan_call`` without holding the event loop up for long inputs."""
        if needs_thread(texts, limits):
            return await asyncio.to_thread(plan_call, texts, self.options, limits, shape)
        return plan_call(texts, self.options, limits, shape)

    def _flows(
        self, batches: list[Batch], make: FlowMaker, target: str | None = None
    ) -> list[Flow[list[Any]]]:
        policy = self.options.policy
        retry_connect = self._connection.contacted
        url = target or self._target
        return [
            make(url, b, policy, self._random.random, retry_connect=retry_connect) for b in batches
        ]

    def _refused(self, exc: AuthenticationError) -> AuthenticationError:
        """``exc`` saying where the refused token came from (never the token) and what to do."""
        if exc.token is not None:
            return exc
        token = self._key_source or key_source(self._api_key)
        return AuthenticationError(exc.status_code, exc.error, exc.error_type, token=token)

    @contextlib.contextmanager
    def _counting_failures(self) -> Iterator[None]:
        """Count a call that ends in an error in ``stats.failures`` (a call refused before
        anything was sent, such as an empty text, is not counted: it is not a call)."""
        try:
            yield
        except AuthenticationError as exc:
            self._stats.failure()
            raise self._refused(exc) from None
        except HFEndpointError:
            self._stats.failure()
            raise

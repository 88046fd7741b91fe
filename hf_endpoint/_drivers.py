"""The two drivers: the only code of the client that sleeps, sends or spawns.

``SyncDriver`` answers a flow's steps (``_flows``) with ``time.sleep``, an
``httpx.Client`` and a thread pool; ``AsyncDriver`` with ``asyncio.sleep`` and
one ``httpx.AsyncClient`` per event loop. Both bound each attempt by the
client's ``timeout`` and the answer by the flow's ``max_bytes``, count what
happens in the client's ``StatsRecorder``, and take rate-limit slots from the
shared limiter.

An event loop's connection pool is closed when the loop shuts down
(``asyncio.run`` and Jupyter's ``shutdown_asyncgens``): a call per
``asyncio.run`` leaves no connection behind.
"""

from __future__ import annotations

import asyncio
import sys
import threading
import time
import weakref
from collections.abc import AsyncGenerator, AsyncIterator, Callable, Iterator, Mapping, Sequence
from concurrent.futures import FIRST_EXCEPTION, Future, ThreadPoolExecutor, wait
from contextlib import AbstractAsyncContextManager, nullcontext
from dataclasses import dataclass
from typing import Any, Protocol, TypeVar

import httpx

from ._auth import redact
from ._flows import Flow, Gate, Halved, Send, Slot, Wait
from .retry import Outcome
from .stats import StatsRecorder

__all__ = ["AsyncDriver", "Connection", "RequestGate", "SyncDriver"]

T = TypeVar("T")


class RequestGate(Protocol):
    """An extra limiter passed before every HTTP attempt (LlamaIndex's rate limiters fit)."""

    def acquire(self) -> None: ...

    async def async_acquire(self) -> None: ...


class Limiter(Protocol):
    """A rate limit: ``try_acquire()`` is 0 when a slot was taken, else seconds to wait."""

    def try_acquire(self) -> float: ...


class _TooLate(Exception):
    """The attempt ran past the client's ``timeout``."""


@dataclass
class Connection:
    """What both drivers share: where, how, and the client's counters."""

    url: str
    headers: Mapping[str, str]
    timeout: float
    max_concurrency: int
    limiter: Limiter
    stats: StatsRecorder
    secret: str | None
    contacted: bool = False

    def http_options(self) -> dict[str, Any]:
        return {
            "timeout": self.timeout,
            "limits": httpx.Limits(max_connections=self.max_concurrency + 1),
            "headers": dict(self.headers),
        }

    def outcome(self, response: httpx.Response, content: bytes | None) -> Outcome:
        self.contacted = True
        if content is None:
            return Outcome(response.status_code, response.headers, b"", oversize=True)
        if response.status_code >= 400:
            content = redact(content, self.secret)
        return Outcome(response.status_code, response.headers, content)

    def failure(self, exc: Exception) -> Outcome:
        if isinstance(exc, _TooLate):
            return Outcome(
                transport_error="ReadTimeout",
                detail=f"no complete answer within timeout={self.timeout:g} s",
            )
        detail = redact(str(exc).encode(), self.secret).decode(errors="replace")[:200]
        return Outcome(transport_error=type(exc).__name__, detail=detail)


def _too_big(headers: Mapping[str, str], max_bytes: int) -> bool:
    length = headers.get("content-length", "")
    return length.isdigit() and int(length) > max_bytes


def _read(chunks: Iterator[bytes], max_bytes: int, deadline: float) -> bytes | None:
    parts, total = [], 0
    for chunk in chunks:
        total += len(chunk)
        if total > max_bytes:
            return None
        if time.monotonic() > deadline:
            raise _TooLate
        parts.append(chunk)
    return b"".join(parts)


async def _aread(chunks: AsyncIterator[bytes], max_bytes: int, deadline: float) -> bytes | None:
    parts, total = [], 0
    async for chunk in chunks:
        total += len(chunk)
        if total > max_bytes:
            return None
        if time.monotonic() > deadline:
            raise _TooLate
        parts.append(chunk)
    return b"".join(parts)


def _deadline(seconds: float) -> AbstractAsyncContextManager[Any]:
    """The whole attempt within ``seconds`` (Python 3.11+; 3.10 checks as the body arrives)."""
    if sys.version_info >= (3, 11):
        return asyncio.timeout(seconds)
    return nullcontext()  # pragma: no cover


class SyncDriver:
    """Runs flows in the calling thread, several at once on a thread pool."""

    def __init__(self, connection: Connection) -> None:
        self.connection = connection
        self._lock = threading.Lock()
        self._http: httpx.Client | None = None
        self._pool: ThreadPoolExecutor | None = None

    def _client(self) -> httpx.Client:
        with self._lock:
            if self._http is None:
                self._http = httpx.Client(**self.connection.http_options())
            return self._http

    def _executor(self) -> ThreadPoolExecutor:
        with self._lock:
            if self._pool is None:
                self._pool = ThreadPoolExecutor(
                    self.connection.max_concurrency, thread_name_prefix="hf-endpoint-client"
                )
            return self._pool

    def close(self) -> None:
        with self._lock:
            if self._http is not None:
                self._http.close()
                self._http = None
            if self._pool is not None:
                self._pool.shutdown(wait=False, cancel_futures=True)
                self._pool = None

    def _send(self, http: httpx.Client, step: Send) -> Outcome:
        conn = self.connection
        conn.stats.request()
        deadline = time.monotonic() + conn.timeout
        try:
            with http.stream(step.method, step.url, content=step.body) as response:
                content = (
                    None
                    if _too_big(response.headers, step.max_bytes)
                    else _read(response.iter_bytes(), step.max_bytes, deadline)
                )
        except (httpx.TransportError, _TooLate) as exc:
            return conn.failure(exc)
        return conn.outcome(response, content)

    def _slot(self) -> None:
        limiter = self.connection.limiter
        waited = 0.0
        while (seconds := limiter.try_acquire()) > 0:
            time.sleep(seconds)
            waited += seconds
        if waited:
            self.connection.stats.rate_wait(waited)

    def run(self, flow: Flow[T], gate: RequestGate | None = None) -> T:
        """Drive one flow to its end in this thread."""
        stats = self.connection.stats
        http = self._client()  # before any slot: making a pool takes a while
        answer: Outcome | None = None
        try:
            while True:
                step = flow.send(answer)
                answer = None
                if isinstance(step, Send):
                    answer = self._send(http, step)
                elif isinstance(step, Slot):
                    self._slot()
                elif isinstance(step, Gate):
                    if gate is not None:
                        gate.acquire()
                elif isinstance(step, Wait):
                    time.sleep(step.seconds)
                    if step.cold:
                        stats.cold(step.seconds)
                    else:
                        stats.retry(step.reason)
                elif isinstance(step, Halved):
                    stats.split()
        except StopIteration as done:
            result: T = done.value
            return result

    def map(
        self, flows: Sequence[Flow[T]], gate: RequestGate | None, keep: Callable[[int, T], None]
    ) -> None:
        """Drive every flow, ``max_concurrency`` at once, handing ``keep(i, result)`` each result.

        The first error is raised once the flows in flight have ended; flows not
        started yet are cancelled.
        """
        if len(flows) == 1 or self.connection.max_concurrency == 1:
            for i, flow in enumerate(flows):
                keep(i, self.run(flow, gate))
            return
        pool = self._executor()
        futures: list[Future[None]] = [
            pool.submit(lambda i, f: keep(i, self.run(f, gate)), i, f) for i, f in enumerate(flows)
        ]
        done, _ = wait(futures, return_when=FIRST_EXCEPTION)
        if any(f.exception() is not None for f in done):
            for f in futures:
                f.cancel()
        for f in futures:
            f.result()


async def _keep_open(http: httpx.AsyncClient) -> AsyncGenerator[None, None]:
    """Suspended for the loop's life; the loop's ``shutdown_asyncgens`` closes the pool."""
    try:
        yield
    finally:
        await http.aclose()


@dataclass
class _LoopState:
    http: httpx.AsyncClient
    in_flight: asyncio.Semaphore
    keeper: AsyncGenerator[None, None]


class AsyncDriver:
    """Runs flows as tasks of the running event loop; one connection pool per loop."""

    def __init__(self, connection: Connection) -> None:
        self.connection = connection
        self._states: dict[int, tuple[weakref.ref[asyncio.AbstractEventLoop], _LoopState]] = {}
        self._lock = threading.Lock()

    async def _state(self) -> _LoopState:
        loop = asyncio.get_running_loop()
        entry = self._states.get(id(loop))
        if entry is not None and entry[0]() is loop:
            return entry[1]
        http = httpx.AsyncClient(**self.connection.http_options())
        keeper = _keep_open(http)
        await keeper.__anext__()
        state = _LoopState(http, asyncio.Semaphore(self.connection.max_concurrency), keeper)
        with self._lock:
            # Forget loops that are gone (their pools were closed when they shut down).
            for key, (ref, _) in list(self._states.items()):
                gone = ref()
                if gone is None or gone.is_closed():
                    del self._states[key]
            self._states[id(loop)] = (weakref.ref(loop), state)
        return state

    async def aclose(self) -> None:
        """Close this event loop's connection pool."""
        loop = asyncio.get_running_loop()
        with self._lock:
            entry = self._states.pop(id(loop), None)
        if entry is not None:
            await entry[1].keeper.aclose()

    async def _send(self, http: httpx.AsyncClient, step: Send) -> Outcome:
        conn = self.connection
        conn.stats.request()
        deadline = time.monotonic() + conn.timeout
        try:
            async with (
                _deadline(conn.timeout),
                http.stream(step.method, step.url, content=step.body) as response,
            ):
                content = (
                    None
                    if _too_big(response.headers, step.max_bytes)
                    else await _aread(response.aiter_bytes(), step.max_bytes, deadline)
                )
        except TimeoutError:
            return conn.failure(_TooLate())
        except (httpx.TransportError, _TooLate) as exc:
            return conn.failure(exc)
        return conn.outcome(response, content)

    async def _slot(self) -> None:
        limiter = self.connection.limiter
        waited = 0.0
        while (seconds := limiter.try_acquire()) > 0:
            await asyncio.sleep(seconds)
            waited += seconds
        if waited:
            self.connection.stats.rate_wait(waited)

    async def run(self, flow: Flow[T], gate: RequestGate | None = None) -> T:
        """Drive one flow to its end; at most ``max_concurrency`` flows send at once per loop."""
        state = await self._state()
        stats = self.connection.stats
        answer: Outcome | None = None
        async with state.in_flight:
            try:
                while True:
                    step = flow.send(answer)
                    answer = None
                    if isinstance(step, Send):
                        answer = await self._send(state.http, step)
                    elif isinstance(step, Slot):
                        await self._slot()
                    elif isinstance(step, Gate):
                        if gate is not None:
                            await gate.async_acquire()
                    elif isinstance(step, Wait):
                        await asyncio.sleep(step.seconds)
                        if step.cold:
                            stats.cold(step.seconds)
                        else:
                            stats.retry(step.reason)
                    elif isinstance(step, Halved):
                        stats.split()
            except StopIteration as done:
                result: T = done.value
                return result

    async def map(
        self, flows: Sequence[Flow[T]], gate: RequestGate | None, keep: Callable[[int, T], None]
    ) -> None:
        """Drive every flow concurrently on this loop, handing ``keep(i, result)`` each result."""
        if len(flows) == 1:
            keep(0, await self.run(flows[0], gate))
            return

        async def one(i: int, flow: Flow[T]) -> None:
            keep(i, await self.run(flow, gate))

        tasks = [asyncio.ensure_future(one(i, f)) for i, f in enumerate(flows)]
        try:
            await asyncio.gather(*tasks)
        except BaseException:
            for task in tasks:
                task.cancel()
            raise

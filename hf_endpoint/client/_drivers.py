"""The two drivers: the only code of the client that sleeps, sends or spawns.

``SyncDriver`` answers a flow's steps (``_flows``) with ``time.sleep``, an
``httpx.Client`` (the caller's ``http_client``, or one of its own, over the caller's
transport when given one) and a thread pool; ``AsyncDriver`` awaits waits, gates and
slots on the event loop and hands each HTTP exchange to the sync driver's pool.
Both bound each attempt by the client's ``timeout`` and the answer by the
flow's ``max_bytes``, count what happens in the client's ``StatsRecorder``, and
take rate-limit slots from the shared limiter. No connection belongs to an
event loop, so a call per ``asyncio.run`` leaves none behind.
"""

from __future__ import annotations

import asyncio
import threading
import time
import weakref
from collections.abc import Callable, Iterator, Mapping, Sequence
from concurrent.futures import FIRST_EXCEPTION, Future, ThreadPoolExecutor, wait
from dataclasses import dataclass
from typing import Any, Protocol, TypeVar

import httpx

from ..config._auth import redact
from ._flows import Flow, Gate, Halved, Send, Slot, Wait
from .ratelimit import Limiter
from .retry import Outcome
from .stats import StatsRecorder

__all__ = ["AsyncDriver", "Connection", "RequestGate", "SyncDriver"]

T = TypeVar("T")


class RequestGate(Protocol):
    """An extra limiter passed before every HTTP attempt (LlamaIndex's rate limiters fit)."""

    def acquire(self) -> None: ...

    async def async_acquire(self) -> None: ...


class _TooLate(Exception):
    """The attempt ran past the client's ``timeout``."""


class _Stopped(Exception):
    """Another flow of the same call failed for good: this one ends before its next step."""


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
    # The caller's: an httpx.Client used as it is, or a transport for the client's own.
    http_client: httpx.Client | httpx.BaseTransport | None = None
    contacted: bool = False

    def http_options(self) -> dict[str, Any]:
        return {
            "timeout": self.timeout,
            "limits": httpx.Limits(max_connections=self.max_concurrency + 1),
            "headers": dict(self.headers),
            "transport": self.http_client,
        }

    def per_request(self) -> dict[str, Any]:
        """What a request sent through the caller's ``httpx.Client`` carries itself: the
        headers and timeout the client's own would have had."""
        if isinstance(self.http_client, httpx.Client):
            return {"headers": self.headers, "timeout": self.timeout}
        return {}

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


def _record(stats: StatsRecorder, step: Wait | Halved) -> None:
    """What a wait that was waited out, or a halved batch, adds to the client's stats."""
    if isinstance(step, Halved):
        stats.split()
    elif step.cold:
        stats.cold(step.seconds)
    else:
        stats.retry(step.reason)


class SyncDriver:
    """Runs flows in the calling thread, several at once on a thread pool."""

    def __init__(self, connection: Connection) -> None:
        self.connection = connection
        self._lock = threading.Lock()
        self._http: httpx.Client | None = None
        self._pool: ThreadPoolExecutor | None = None

    def client(self) -> httpx.Client:
        given = self.connection.http_client
        if isinstance(given, httpx.Client):
            return given
        with self._lock:
            if self._http is None:
                self._http = httpx.Client(**self.connection.http_options())
            return self._http

    def executor(self) -> ThreadPoolExecutor:
        with self._lock:
            if self._pool is None:
                self._pool = ThreadPoolExecutor(
                    self.connection.max_concurrency, thread_name_prefix="hf-endpoint-client"
                )
            return self._pool

    def close(self) -> None:
        with self._lock:
            if self._http is not None:
                # A transport the caller gave is theirs to close (closing ours would close it).
                if self.connection.http_client is None:
                    self._http.close()
                self._http = None
            if self._pool is not None:
                self._pool.shutdown(wait=False, cancel_futures=True)
                self._pool = None

    def send(self, http: httpx.Client, step: Send) -> Outcome:
        """One HTTP exchange, bounded by ``timeout`` and the step's ``max_bytes``."""
        conn = self.connection
        conn.stats.request()
        deadline = time.monotonic() + conn.timeout
        try:
            with http.stream(
                step.method, step.url, content=step.body, **conn.per_request()
            ) as response:
                content = (
                    None
                    if _too_big(response.headers, step.max_bytes)
                    else _read(response.iter_bytes(), step.max_bytes, deadline)
                )
        except (httpx.TransportError, _TooLate) as exc:
            return conn.failure(exc)
        return conn.outcome(response, content)

    def _slot(self, stop: threading.Event | None) -> None:
        limiter = self.connection.limiter
        waited = 0.0
        while (seconds := limiter.try_acquire()) > 0:
            if stop is None:
                time.sleep(seconds)
            elif stop.wait(seconds):
                return  # the next step sees the stop
            waited += seconds
        if waited:
            self.connection.stats.rate_wait(waited)

    def run(
        self, flow: Flow[T], gate: RequestGate | None = None, stop: threading.Event | None = None
    ) -> T:
        """Drive one flow to its end in this thread.

        Once ``stop`` is set (another flow of the call failed), the flow ends
        before its next step with ``_Stopped``: no further request, no more waiting.
        """
        stats = self.connection.stats
        http = self.client()  # before any slot: making a pool takes a while
        answer: Outcome | None = None
        try:
            while True:
                step = flow.send(answer)
                answer = None
                if stop is not None and stop.is_set():
                    flow.close()
                    raise _Stopped
                if isinstance(step, Send):
                    answer = self.send(http, step)
                elif isinstance(step, Slot):
                    self._slot(stop)
                elif isinstance(step, Gate):
                    if gate is not None:
                        gate.acquire()
                elif isinstance(step, Wait):
                    if stop is None:
                        time.sleep(step.seconds)
                    elif stop.wait(step.seconds):
                        continue
                    _record(stats, step)
                elif isinstance(step, Halved):
                    _record(stats, step)
        except StopIteration as done:
            result: T = done.value
            return result

    def map(
        self, flows: Sequence[Flow[T]], gate: RequestGate | None, keep: Callable[[int, T], None]
    ) -> None:
        """Drive every flow, ``max_concurrency`` at once, handing ``keep(i, result)`` each result.

        When a flow fails for good, the call stops: flows not started yet are
        cancelled, flows in flight end before their next step (a request already
        sent is answered first, within ``timeout``), and then the error is raised.
        Nothing of the call goes on in the background once the caller has the error.
        """
        if len(flows) == 1 or self.connection.max_concurrency == 1:
            for i, flow in enumerate(flows):
                keep(i, self.run(flow, gate))
            return
        pool = self.executor()
        stop = threading.Event()
        futures: list[Future[None]] = [
            pool.submit(lambda i, f: keep(i, self.run(f, gate, stop)), i, f)
            for i, f in enumerate(flows)
        ]
        done, _ = wait(futures, return_when=FIRST_EXCEPTION)
        failed = [f for f in futures if f in done and f.exception() is not None]
        if not failed:
            return
        stop.set()
        for f in futures:
            f.cancel()
        wait(futures)
        error = failed[0].exception()
        assert error is not None
        raise error


class AsyncDriver:
    """Runs flows as tasks of the running event loop.

    Waits, gates and rate-limit slots are awaited on the loop; the HTTP exchange
    itself runs on the sync driver's pool (``run_in_executor``), which costs the
    event loop less CPU per request than an asyncio HTTP stack and leaves no
    connection pool tied to a loop that ends. At most ``max_concurrency`` flows
    of one loop send at once, whatever the number of concurrent calls.
    """

    def __init__(self, sync: SyncDriver) -> None:
        self.sync = sync
        self.connection = sync.connection
        self._bounds: dict[
            int, tuple[weakref.ref[asyncio.AbstractEventLoop], asyncio.Semaphore]
        ] = {}
        self._lock = threading.Lock()

    def _in_flight(self) -> asyncio.Semaphore:
        loop = asyncio.get_running_loop()
        entry = self._bounds.get(id(loop))
        if entry is not None and entry[0]() is loop:
            return entry[1]
        bound = asyncio.Semaphore(self.connection.max_concurrency)
        with self._lock:
            for key, (ref, _) in list(self._bounds.items()):  # forget loops that are gone
                gone = ref()
                if gone is None or gone.is_closed():
                    del self._bounds[key]
            self._bounds[id(loop)] = (weakref.ref(loop), bound)
        return bound

    async def _send(
        self, http: httpx.Client, step: Send, sends: set[asyncio.Future[Outcome]] | None
    ) -> Outcome:
        loop = asyncio.get_running_loop()
        exchange = loop.run_in_executor(self.sync.executor(), self.sync.send, http, step)
        if sends is None:
            return await exchange
        # Shielded, so that a call that stops can wait for the requests it already sent.
        sends.add(exchange)
        exchange.add_done_callback(sends.discard)
        return await asyncio.shield(exchange)

    async def _slot(self) -> None:
        limiter = self.connection.limiter
        waited = 0.0
        while (seconds := limiter.try_acquire()) > 0:
            await asyncio.sleep(seconds)
            waited += seconds
        if waited:
            self.connection.stats.rate_wait(waited)

    async def run(
        self,
        flow: Flow[T],
        gate: RequestGate | None = None,
        sends: set[asyncio.Future[Outcome]] | None = None,
    ) -> T:
        """Drive one flow to its end; at most ``max_concurrency`` flows send at once per loop.

        ``sends`` collects the HTTP exchanges in flight (see ``map``).
        """
        stats = self.connection.stats
        http = self.sync.client()
        answer: Outcome | None = None
        async with self._in_flight():
            try:
                while True:
                    step = flow.send(answer)
                    answer = None
                    if isinstance(step, Send):
                        answer = await self._send(http, step, sends)
                    elif isinstance(step, Slot):
                        await self._slot()
                    elif isinstance(step, Gate):
                        if gate is not None:
                            await gate.async_acquire()
                    elif isinstance(step, Wait):
                        await asyncio.sleep(step.seconds)
                        _record(stats, step)
                    elif isinstance(step, Halved):
                        _record(stats, step)
            except StopIteration as done:
                result: T = done.value
                return result

    async def map(
        self, flows: Sequence[Flow[T]], gate: RequestGate | None, keep: Callable[[int, T], None]
    ) -> None:
        """Drive every flow concurrently on this loop, handing ``keep(i, result)`` each result.

        When a flow fails for good, the others are cancelled and the requests
        already sent are answered (within ``timeout``) before the error is raised:
        nothing of the call goes on once the caller has the error. A cancelled
        call cancels its flows and does not wait.
        """
        if len(flows) == 1:
            keep(0, await self.run(flows[0], gate))
            return
        sends: set[asyncio.Future[Outcome]] = set()

        async def one(i: int, flow: Flow[T]) -> None:
            keep(i, await self.run(flow, gate, sends))

        tasks = [asyncio.ensure_future(one(i, f)) for i, f in enumerate(flows)]
        try:
            await asyncio.gather(*tasks)
        except asyncio.CancelledError:
            for task in tasks:
                task.cancel()
            raise
        except Exception:
            for task in tasks:
                task.cancel()
            await asyncio.wait(tasks)
            if sends:
                await asyncio.wait(list(sends))
            raise

"""Client-side rate limit: at the endpoint, no window of ``T >= 1`` s holds more
than ``1 + requests_per_minute * T / 60`` requests.

The model is Elasticsearch's: a token bucket of capacity 1 refilled at
``requests_per_minute / 60`` per second, so there is no burst and the first
request goes at once. Every HTTP attempt takes a slot, retries included.

A slot is taken *now* or not at all. ``RateLimiter.try_acquire()`` returns
``0.0`` when the caller may send at once, or the seconds to wait before asking
again; nothing is reserved for later, so a caller that wakes up late cannot be
followed by one on time in a burst. Threads (``time.sleep``), event loops
(``asyncio.sleep``) and processes all poll the same way::

    while (wait := limiter.try_acquire()) > 0:
        time.sleep(wait)
    send()

**Deviation from a bare bucket, and why.** A request reaches the endpoint a
little after it leaves the limiter, and not always equally late; a bucket
running at exactly the rate is full to the last request, so any such jitter
shows up at the endpoint as one request too many. Slots are therefore spaced
``2 %`` wider than ``60 / rpm``: that margin absorbs up to ``JITTER`` (19 ms)
of jitter on the way to the endpoint plus up to ``TOLERANCE`` (1 ms) of
lateness of the caller, who keeps his place in the schedule instead of pushing
every later slot back (a thread woken a little late, or waiting for the GIL,
would otherwise cost the rate a little each time). A long run gets 98 % of
``requests_per_minute``.

The slot arithmetic is pure (``Pace``, ``take``, ``grant``) and the state is
one number, the time the next slot opens. ``RateLimiter`` keeps it in memory
(this process) or, through ``shared_limiter``, in a small file shared by every
process on this machine.

Sharing across processes relies on ``time.monotonic()`` being one clock for the
whole machine, which it is on Linux (``CLOCK_MONOTONIC``), macOS
(``mach_absolute_time``) and Windows (``QueryPerformanceCounter``), and on
``fcntl.flock``, which Windows lacks: there ``shared_limiter`` logs a warning
and the limit holds per process.
"""

from __future__ import annotations

import hashlib
import logging
import math
import os
import stat
import struct
import tempfile
import threading
import time
import weakref
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any, NamedTuple, Protocol, TypeVar

try:
    import fcntl
except ImportError:  # Windows
    fcntl = None  # type: ignore[assignment]

__all__ = [
    "JITTER",
    "TOLERANCE",
    "WINDOW",
    "Grant",
    "Lease",
    "Limiter",
    "Pace",
    "RateLimiter",
    "grant",
    "lease_of",
    "limit_key",
    "named_limiter",
    "runtime_dir",
    "shared_limiter",
    "take",
    "take_leased",
]

logger = logging.getLogger(__name__)

T = TypeVar("T")

WINDOW = 1.0
"""The shortest window (seconds) the promise covers."""
TOLERANCE = 0.001
"""How late (seconds) a caller may take an open slot and keep the schedule."""
JITTER = 0.019
"""Variation (seconds) in the time from the limiter to the endpoint that the spacing absorbs."""

IDLE = -math.inf
"""The state of a limiter that has never let a request go."""
_LONGEST_HOLD = 60.0


class Limiter(Protocol):
    """What a client needs from a rate limiter (picklable, shared by threads and tasks)."""

    def try_acquire(self) -> float:
        """``0.0``: a slot was taken now, send at once; ``> 0``: nothing taken, ask again after
        that many seconds."""
        ...


# -- the arithmetic ----------------------------------------------------------------------


@dataclass(frozen=True)
class Pace:
    """Slot spacing for a rate: ``interval`` seconds between slots, each of which may be
    taken up to ``tolerance`` seconds after it opens without moving the next one."""

    interval: float
    tolerance: float = TOLERANCE

    @classmethod
    def for_rate(cls, requests_per_minute: int) -> Pace:
        """The pace that keeps every window of ``WINDOW`` s or more within
        ``1 + requests_per_minute * T / 60`` at the endpoint."""
        if isinstance(requests_per_minute, bool) or not isinstance(requests_per_minute, int):
            raise TypeError(
                f"requests_per_minute must be an int, not {type(requests_per_minute).__name__}"
            )
        if requests_per_minute <= 0:
            raise ValueError(f"requests_per_minute must be positive, not {requests_per_minute}")
        return cls(60.0 / requests_per_minute * (1 + (TOLERANCE + JITTER) / WINDOW))


def take(due: float, now: float, pace: Pace) -> tuple[float, float]:
    """Try to take a slot at ``now`` when the next one opens at ``due``.

    Returns ``(wait, due)``: ``wait == 0`` means the slot is taken and ``due`` is
    when the next opens; ``wait > 0`` means nothing was taken (``due`` unchanged).
    A caller at most ``pace.tolerance`` late takes the slot that opened at ``due``;
    a later one (or the first) takes a slot opening now.
    """
    if now < due:
        return due - now, due
    slot = due if now - due <= pace.tolerance else now
    return 0.0, slot + pace.interval


class Grant(NamedTuple):
    """Slots handed out at once: ``slots`` slots opening at ``first + k * interval``,
    each usable for ``tolerance`` seconds; or, when ``slots == 0``, ask again after ``wait``."""

    first: float
    slots: int
    interval: float
    tolerance: float
    wait: float = 0.0


def grant(due: float, now: float, pace: Pace, count: int, horizon: float) -> tuple[Grant, float]:
    """Hand out up to ``count`` consecutive slots, none opening later than ``now + horizon``.

    Returns the grant and the new ``due``. Slots may open in the future; like a
    taken slot, each one is used at most ``pace.tolerance`` after it opens, so
    grants and takes on one state keep the same promise.
    """
    first = due if due >= now - pace.tolerance else now
    if first - now > horizon:
        return Grant(first, 0, pace.interval, pace.tolerance, first - now - horizon), due
    n = max(1, min(count, int((now + horizon - first) / pace.interval) + 1))
    return Grant(first, n, pace.interval, pace.tolerance), first + n * pace.interval


class Lease(NamedTuple):
    """Granted slots on the clock of the process that uses them: slots from ``first`` to
    ``last``, at least ``interval`` apart, each usable for ``tolerance`` seconds."""

    first: float
    last: float
    interval: float
    tolerance: float


def lease_of(given: Grant, offset_low: float, offset_high: float) -> Lease:
    """``given`` on a clock that reads between ``offset_low`` and ``offset_high`` seconds
    more than the granter's (both 0 on the granter's machine).

    The uncertainty comes off the slots' tolerance; where it is larger, slots are
    spaced wider and the last one moves earlier, so that every use still falls
    within ``tolerance`` of a slot of the grant on the granter's clock.
    """
    doubt = offset_high - offset_low
    over = max(0.0, doubt - given.tolerance)
    last_slot = given.first + (given.slots - 1) * given.interval
    return Lease(
        first=given.first + offset_high,
        last=last_slot + offset_high - over,
        interval=given.interval + over,
        tolerance=max(0.0, given.tolerance - doubt),
    )


def take_leased(lease: Lease, due: float, now: float) -> tuple[float | None, float]:
    """``take`` within a lease: ``(wait, due)``, or ``(None, due)`` once no slot is left.

    A caller late by more than the tolerance shifts the lease's remaining slots
    (it holds them alone); none ever goes past ``lease.last``.
    """
    due = max(due, lease.first)
    if due > lease.last:
        return None, due
    if now < due:
        return due - now, due
    slot = due if now - due <= lease.tolerance else now
    if slot > lease.last:
        return None, due
    return 0.0, slot + lease.interval


# -- where the state lives ---------------------------------------------------------------


class _MemoryState:
    """The state in this process."""

    def __init__(self) -> None:
        self._due = IDLE
        self._lock = threading.Lock()

    def update(self, step: Callable[[float], tuple[T, float]]) -> T:
        with self._lock:
            result, self._due = step(self._due)
            return result


_RECORD = struct.Struct("<d")
_file_states: weakref.WeakSet[_FileState] = weakref.WeakSet()


class _FileState:
    """The state in a file shared by the processes of this machine, under ``flock``.

    ``flock`` excludes open files, not threads, so a thread lock goes with it;
    a forked child opens the file anew rather than share its parent's.
    """

    def __init__(self, path: Path) -> None:
        self.path = path
        self._lock = threading.Lock()
        self._fd: int | None = None
        _file_states.add(self)

    def _after_fork(self) -> None:
        self._lock = threading.Lock()
        self._fd = None  # the parent's descriptor shares the parent's lock

    def update(self, step: Callable[[float], tuple[T, float]]) -> T:
        assert fcntl is not None
        with self._lock:
            if self._fd is None:
                self._fd = os.open(self.path, os.O_RDWR | os.O_CREAT, 0o600)
            fd = self._fd
            fcntl.flock(fd, fcntl.LOCK_EX)
            try:
                data = os.pread(fd, _RECORD.size, 0)
                due = _RECORD.unpack(data)[0] if len(data) == _RECORD.size else IDLE
                result, due = step(due)
                os.pwrite(fd, _RECORD.pack(due), 0)
                return result
            finally:
                fcntl.flock(fd, fcntl.LOCK_UN)

    def __del__(self) -> None:
        if self._fd is not None:
            os.close(self._fd)


def _reopen_after_fork() -> None:
    for state in list(_file_states):
        state._after_fork()


if hasattr(os, "register_at_fork"):
    os.register_at_fork(after_in_child=_reopen_after_fork)


# -- the limiter -------------------------------------------------------------------------


class RateLimiter:
    """Requests spaced ``60 / requests_per_minute`` seconds apart (see the module), no burst.

    Thread-safe and usable from any event loop. ``RateLimiter(rpm)`` limits this
    process only (a pickled copy starts a bucket of its own); ``shared_limiter``
    gives one shared by every process on the machine, and its pickled copies
    share it too.

    >>> limiter = RateLimiter(600)
    >>> limiter.try_acquire()
    0.0
    """

    def __init__(
        self,
        requests_per_minute: int,
        *,
        clock: Callable[[], float] = time.monotonic,
        path: Path | None = None,
    ) -> None:
        self.requests_per_minute = requests_per_minute
        self.pace = Pace.for_rate(requests_per_minute)
        self.path = path
        self._clock = clock
        self._state: _MemoryState | _FileState = (
            _MemoryState() if path is None else _FileState(path)
        )
        # No slot opens further ahead than this, unless the clock restarted (a reboot
        # under a state file that survived it): then the state is forgotten.
        self._stale_after = self.pace.interval + _LONGEST_HOLD

    def _now(self, due: float) -> tuple[float, float]:
        now = self._clock()
        return now, (IDLE if due - now > self._stale_after else due)

    @property
    def interval(self) -> float:
        """Seconds between slots."""
        return self.pace.interval

    def try_acquire(self) -> float:
        """Take a slot now and return ``0.0``, or return how long to wait before asking again."""
        pace = self.pace

        def step(due: float) -> tuple[float, float]:
            now, due = self._now(due)
            return take(due, now, pace)

        return self._state.update(step)

    def grant(self, count: int, horizon: float) -> tuple[float, Grant]:
        """Hand out up to ``count`` slots (see ``grant``); returns the clock's time and the grant."""
        if not 0 < horizon <= _LONGEST_HOLD:
            raise ValueError(f"horizon must be within 0..{_LONGEST_HOLD} seconds, not {horizon}")
        pace = self.pace

        def step(due: float) -> tuple[tuple[float, Grant], float]:
            now, due = self._now(due)
            given, due = grant(due, now, pace, count, horizon)
            return (now, given), due

        return self._state.update(step)

    def hold(self, seconds: float) -> None:
        """Open no slot for the next ``seconds`` (a limiter that may have lost track of
        slots it handed out waits until they have surely passed)."""

        if not 0 <= seconds <= _LONGEST_HOLD:
            raise ValueError(f"seconds must be within 0..{_LONGEST_HOLD}, not {seconds}")

        def step(due: float) -> tuple[None, float]:
            now, due = self._now(due)
            return None, max(due, now + seconds)

        self._state.update(step)

    def __reduce__(self) -> tuple[Any, ...]:
        return (_rebuild, (self.requests_per_minute, self.path, self._clock))

    def __repr__(self) -> str:
        scope = "this process" if self.path is None else "this machine"
        return f"RateLimiter(requests_per_minute={self.requests_per_minute}, shared by {scope})"


def _rebuild(
    requests_per_minute: int, path: Path | None, clock: Callable[[], float]
) -> RateLimiter:
    if path is not None:
        return _machine_limiter(path, requests_per_minute)
    return RateLimiter(requests_per_minute, clock=clock)


# -- one limiter per endpoint, key and rate on this machine -----------------------------

_limiters: dict[Path, RateLimiter] = {}
_process_limiters: dict[str, RateLimiter] = {}
_limiters_lock = threading.Lock()
_warned = False


def limit_key(url: str, api_key: str | None, requests_per_minute: int) -> str:
    """A name for an endpoint, key and rate that shows none of them (a SHA-256 hex digest)."""
    data = f"{url}\n{requests_per_minute}\n{api_key or ''}".encode("utf-8", "surrogatepass")
    return hashlib.sha256(data).hexdigest()


def runtime_dir() -> Path | None:
    """A directory of this user's for the shared state, or ``None`` when there is none
    that only this user can write.

    ``$XDG_RUNTIME_DIR/hf-endpoint`` where the session has one (a tmpfs, emptied
    at logout), else ``hf-endpoint-<uid>`` in the temporary directory.
    """
    base = os.environ.get("XDG_RUNTIME_DIR")
    uid = os.getuid() if hasattr(os, "getuid") else None
    if base and os.path.isdir(base):
        directory = Path(base) / "hf-endpoint"
    else:
        directory = Path(tempfile.gettempdir()) / f"hf-endpoint-{uid if uid is not None else 0}"
    try:
        directory.mkdir(mode=0o700, exist_ok=True)
        info = directory.lstat()
    except OSError as exc:
        logger.warning("no directory for the shared rate limit (%s)", exc)
        return None
    if not stat.S_ISDIR(info.st_mode) or (uid is not None and info.st_uid != uid):
        logger.warning(
            "%s is not a directory of this user's: not sharing the rate limit", directory
        )
        return None
    if info.st_mode & 0o022:
        logger.warning("%s is writable by others: not sharing the rate limit", directory)
        return None
    return directory


def _machine_limiter(path: Path, requests_per_minute: int) -> RateLimiter:
    with _limiters_lock:
        limiter = _limiters.get(path)
        if limiter is None:
            limiter = _limiters[path] = RateLimiter(requests_per_minute, path=path)
        return limiter


def shared_limiter(url: str, api_key: str | None, requests_per_minute: int) -> RateLimiter:
    """The limiter of every process on this machine that uses this URL, key and rate.

    Its state is a file of 8 bytes named by ``limit_key`` (a hash: the key is
    never written) in ``runtime_dir()``. Where files cannot be locked (Windows)
    or no private directory exists, the limit holds per process, with a warning.
    """
    return named_limiter(limit_key(url, api_key, requests_per_minute), requests_per_minute)


def named_limiter(name: str, requests_per_minute: int) -> RateLimiter:
    """The machine-wide limiter stored under ``name`` (a ``limit_key``)."""
    global _warned
    directory = runtime_dir() if fcntl is not None else None
    if directory is not None:
        return _machine_limiter(directory / f"{name}.rate", requests_per_minute)
    with _limiters_lock:
        if not _warned:
            _warned = True
            logger.warning(
                "the rate limit is shared by the threads and tasks of this process only: "
                "processes that use the same endpoint each get the whole rate"
            )
        limiter = _process_limiters.get(name)
        if limiter is None:
            limiter = _process_limiters[name] = RateLimiter(requests_per_minute)
        return limiter

"""Client-side rate limit with Elasticsearch's semantics.

A token bucket of capacity 1 refilled at ``requests_per_minute / 60`` per
second: requests are spaced ``60 / rpm`` seconds apart, with no burst, and the
first goes at once. Every HTTP attempt takes a slot, retries included.

Slots are reserved, not waited for under a lock: ``reserve()`` returns how
long the caller must wait before sending, so threads (``time.sleep``) and
event loops (``asyncio.sleep``) share one limiter and go in reservation order.
Clients with the same URL, API key and rate share one limiter per process.
"""

from __future__ import annotations

import hashlib
import threading
import time
from collections.abc import Callable

__all__ = ["RateLimiter", "next_slot", "shared_limiter"]


def next_slot(previous: float | None, now: float, interval: float) -> float:
    """When the next request may go: now if the limiter is idle, else ``interval`` after the previous."""
    if previous is None:
        return now
    return max(now, previous + interval)


class RateLimiter:
    """Requests spaced ``60 / requests_per_minute`` seconds apart, no burst; thread-safe."""

    def __init__(
        self, requests_per_minute: int, clock: Callable[[], float] = time.monotonic
    ) -> None:
        if requests_per_minute <= 0:
            raise ValueError("requests_per_minute must be positive")
        self.requests_per_minute = requests_per_minute
        self.interval = 60.0 / requests_per_minute
        self._clock = clock
        self._previous: float | None = None
        self._lock = threading.Lock()

    def try_acquire(self) -> float:
        """Take a slot now (0.0), or nothing: the seconds after which to ask again."""
        with self._lock:
            now = self._clock()
            if self._previous is not None and now < self._previous + self.interval:
                return self._previous + self.interval - now
            self._previous = now
        return 0.0

    def reserve(self) -> float:
        """Take the next slot; return the seconds to wait before sending (0 to go now)."""
        with self._lock:
            now = self._clock()
            slot = next_slot(self._previous, now, self.interval)
            self._previous = slot
        return slot - now

    def __repr__(self) -> str:
        return f"RateLimiter(requests_per_minute={self.requests_per_minute})"


_shared: dict[tuple[str, str, int], RateLimiter] = {}
_shared_lock = threading.Lock()


def shared_limiter(url: str, api_key: str | None, requests_per_minute: int) -> RateLimiter:
    """The process-wide limiter for this endpoint, key and rate (the key is kept only as a hash)."""
    key_hash = hashlib.sha256((api_key or "").encode()).hexdigest()
    with _shared_lock:
        limiter = _shared.get((url, key_hash, requests_per_minute))
        if limiter is None:
            limiter = _shared[(url, key_hash, requests_per_minute)] = RateLimiter(
                requests_per_minute
            )
        return limiter

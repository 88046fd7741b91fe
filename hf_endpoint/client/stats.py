"""``ClientStats``: what a client did, for people watching a run.

>>> from hf_endpoint import EmbeddingClient
>>> from hf_endpoint.server import LocalEndpoint
>>> with LocalEndpoint("hash") as endpoint:
...     client = EmbeddingClient(endpoint.url, api_key=None, batch_size=10)
...     vectors = client.embed([f"text {i}" for i in range(50)])
>>> client.stats  # doctest: +ELLIPSIS
ClientStats(requests=6, inputs=50, retries={}, cold_start_seconds=0.0, ...)
>>> print(client.stats)  # doctest: +ELLIPSIS
6 requests, 50 inputs, 0 retries, 0 splits after HTTP 413, 0 failed calls, 0.0 s cold-start wait, ...

Six requests: one ``GET /info`` to learn the endpoint's limits, then five batches of ten.
"""

from __future__ import annotations

import threading
import time
from dataclasses import dataclass, field

__all__ = ["ClientStats", "StatsRecorder"]


@dataclass(frozen=True)
class ClientStats:
    """A snapshot of a client's counters since it was made.

    * ``requests``: HTTP attempts sent, ``GET /info`` and retries included;
    * ``inputs``: inputs embedded (or scored);
    * ``retries``: retries by reason (``"HTTP 429"``, ``"HTTP 503"``, ``"ConnectError"``, ...);
    * ``cold_start_seconds``: time waited for a scale-to-zero endpoint to start, by the
      clock: requests waiting at the same time count once (four batches waiting out a
      2-second start report about 2 s, not 8);
    * ``rate_limit_seconds``: time waited for rate-limit slots;
    * ``splits``: batches split in two after HTTP 413;
    * ``failures``: calls that ended in an error.
    """

    requests: int = 0
    inputs: int = 0
    retries: dict[str, int] = field(default_factory=dict)
    cold_start_seconds: float = 0.0
    rate_limit_seconds: float = 0.0
    splits: int = 0
    failures: int = 0

    @property
    def total_retries(self) -> int:
        return sum(self.retries.values())

    def __str__(self) -> str:
        reasons = ", ".join(f"{k}: {v}" for k, v in sorted(self.retries.items()))
        retries = f"{self.total_retries} retries" + (f" ({reasons})" if reasons else "")
        return (
            f"{self.requests} requests, {self.inputs} inputs, {retries}, "
            f"{self.splits} splits after HTTP 413, {self.failures} failed calls, "
            f"{self.cold_start_seconds:.1f} s cold-start wait, "
            f"{self.rate_limit_seconds:.1f} s rate-limit wait"
        )


class StatsRecorder:
    """The live counters behind ``ClientStats``; thread-safe."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._requests = self._inputs = self._splits = self._failures = 0
        self._retries: dict[str, int] = {}
        self._cold = self._rate = 0.0
        # The cold-start waits as disjoint (start, end) spans, merged as they come.
        self._cold_spans: list[tuple[float, float]] = []

    def request(self) -> None:
        with self._lock:
            self._requests += 1

    def inputs(self, n: int) -> None:
        with self._lock:
            self._inputs += n

    def retry(self, reason: str) -> None:
        with self._lock:
            self._retries[reason] = self._retries.get(reason, 0) + 1

    def cold(self, seconds: float, now: float | None = None) -> None:
        """A cold-start wait of ``seconds`` that ended ``now`` (``time.monotonic()``)."""
        end = time.monotonic() if now is None else now
        with self._lock:
            start = end - seconds
            kept = []
            for a, b in self._cold_spans:
                if b < start or a > end:
                    kept.append((a, b))
                else:  # overlapping waits: one span
                    start, end = min(a, start), max(b, end)
            self._cold_spans = [*kept, (start, end)]
            self._cold = sum(b - a for a, b in self._cold_spans)

    def rate_wait(self, seconds: float) -> None:
        with self._lock:
            self._rate += seconds

    def split(self) -> None:
        with self._lock:
            self._splits += 1

    def failure(self) -> None:
        with self._lock:
            self._failures += 1

    def snapshot(self) -> ClientStats:
        with self._lock:
            return ClientStats(
                self._requests,
                self._inputs,
                dict(self._retries),
                round(self._cold, 3),
                round(self._rate, 3),
                self._splits,
                self._failures,
            )

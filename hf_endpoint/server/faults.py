"""Fault injection and request accounting for the local endpoint server.

The decisions are pure: ``FaultPlan.decide(now)`` takes the arrival time of a
request and returns what to do with it, drawing from a seeded random
generator in arrival order, so a run with the same seed and the same request
order meets the same faults.
"""

from __future__ import annotations

import random
import threading
from collections import Counter, deque
from dataclasses import asdict, dataclass, field
from typing import Any, Literal

__all__ = ["Decision", "FaultPlan", "Faults", "Stats"]

Action = Literal["serve", "cold", "rate_limited", "429", "502", "503", "drop"]


@dataclass(frozen=True)
class Faults:
    """What the server does wrong on purpose. Everything is off by default.

    * ``cold_start``: for this many seconds after start, answer 503 with
      ``estimated_time`` (a scale-to-zero endpoint waking up).
    * ``rate_429``, ``rate_502``, ``rate_503``, ``rate_drop``: the share of
      requests answered 429 (with ``Retry-After``), 502, 503, or dropped
      (the connection closes mid-response).
    * ``latency``: seconds added to every request.
    * ``requests_per_minute``: a server-side limit over a sliding 60 s window,
      answered 429 with ``Retry-After``.
    * ``malformed``: answer 200 with a wrong body: ``"missing_row"``,
      ``"ragged"``, ``"token_level"``, ``"not_numbers"``, ``"html"``, or the
      valid ``"object"`` form ``{"embeddings": [...]}``.
    * ``seed``: seeds the random faults.
    """

    cold_start: float = 0.0
    rate_429: float = 0.0
    rate_502: float = 0.0
    rate_503: float = 0.0
    rate_drop: float = 0.0
    latency: float = 0.0
    requests_per_minute: int | None = None
    retry_after: float = 1.0
    malformed: str | None = None
    seed: int = 0

    def __post_init__(self) -> None:
        rates = (self.rate_429, self.rate_502, self.rate_503, self.rate_drop)
        if any(r < 0 for r in rates) or sum(rates) > 1:
            raise ValueError("fault rates must be >= 0 and add up to at most 1")
        if self.cold_start < 0 or self.latency < 0:
            raise ValueError("cold_start and latency must be >= 0")
        kinds = (None, "missing_row", "ragged", "token_level", "not_numbers", "html", "object")
        if self.malformed not in kinds:
            raise ValueError(f"malformed must be one of {kinds}")

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


@dataclass(frozen=True)
class Decision:
    action: Action
    wait: float = 0.0  # Retry-After, or estimated_time for a cold start


@dataclass
class FaultPlan:
    """Decides the fate of each request; thread-safe."""

    faults: Faults
    started: float
    _random: random.Random = field(init=False)
    _window: deque[float] = field(init=False, default_factory=deque)
    _lock: threading.Lock = field(init=False, default_factory=threading.Lock)

    def __post_init__(self) -> None:
        self._random = random.Random(self.faults.seed)

    def cold_for(self, now: float) -> float:
        """Seconds of cold start left at ``now`` (0 once warm)."""
        return max(0.0, self.started + self.faults.cold_start - now)

    def decide(self, now: float) -> Decision:
        f = self.faults
        with self._lock:
            if self.cold_for(now) > 0:
                return Decision("cold", self.cold_for(now))
            if f.requests_per_minute is not None:
                while self._window and self._window[0] <= now - 60.0:
                    self._window.popleft()
                if len(self._window) >= f.requests_per_minute:
                    return Decision("rate_limited", self._window[0] + 60.0 - now)
                self._window.append(now)
            draw = self._random.random()
        for action, rate in (
            ("429", f.rate_429),
            ("502", f.rate_502),
            ("503", f.rate_503),
            ("drop", f.rate_drop),
        ):
            if draw < rate:
                return Decision(action, f.retry_after)  # type: ignore[arg-type]
            draw -= rate
        return Decision("serve")


@dataclass
class Stats:
    """What the server received and answered, for tests to assert on."""

    requests: int = 0
    in_flight: int = 0
    max_in_flight: int = 0
    info_requests: int = 0
    inputs: int = 0
    served_inputs: int = 0
    status: Counter[int] = field(default_factory=Counter)
    actions: Counter[str] = field(default_factory=Counter)
    batch_sizes: Counter[int] = field(default_factory=Counter)
    scale_up_timeouts: Counter[str] = field(default_factory=Counter)
    arrivals: deque[float] = field(default_factory=lambda: deque(maxlen=100_000))
    # The client ports of the requests being handled, and the inputs served to each port:
    # a test finds the process behind a port, and how far along its work is.
    in_flight_ports: Counter[int] = field(default_factory=Counter)
    served_by_port: Counter[int] = field(default_factory=Counter)
    _lock: threading.Lock = field(default_factory=threading.Lock, repr=False)

    def arrived(self, now: float, embed: bool = True) -> None:
        """A request came in (``embed=False``: a ``GET /info``)."""
        with self._lock:
            if embed:
                self.requests += 1
            else:
                self.info_requests += 1
            self.arrivals.append(now)

    def entered(self, port: int) -> None:
        """An embed request from client ``port`` is being handled (``left`` when answered)."""
        with self._lock:
            self.in_flight += 1
            self.max_in_flight = max(self.max_in_flight, self.in_flight)
            self.in_flight_ports[port] += 1

    def left(self, port: int) -> None:
        with self._lock:
            self.in_flight -= 1
            self.in_flight_ports[port] -= 1
            if not self.in_flight_ports[port]:
                del self.in_flight_ports[port]

    def answered(self, status: int, action: str, inputs: int = 0, port: int = 0) -> None:
        with self._lock:
            self.status[status] += 1
            self.actions[action] += 1
            if status == 200:
                self.served_inputs += inputs
                self.served_by_port[port] += inputs

    def asked_to_hold(self, seconds: str) -> None:
        """A request carried ``X-Scale-Up-Timeout``."""
        with self._lock:
            self.scale_up_timeouts[seconds] += 1

    def received_inputs(self, n: int) -> None:
        with self._lock:
            self.inputs += n

    def batched(self, size: int) -> None:
        with self._lock:
            self.batch_sizes[size] += 1

    def snapshot(self) -> dict[str, Any]:
        with self._lock:
            return {
                "requests": self.requests,
                "info_requests": self.info_requests,
                "max_in_flight": self.max_in_flight,
                "in_flight_ports": sorted(self.in_flight_ports),
                "served_by_port": {str(k): v for k, v in self.served_by_port.items()},
                "inputs": self.inputs,
                "served_inputs": self.served_inputs,
                "status": {str(k): v for k, v in sorted(self.status.items())},
                "actions": dict(self.actions),
                "batch_sizes": {str(k): v for k, v in sorted(self.batch_sizes.items())},
                "scale_up_timeouts": dict(self.scale_up_timeouts),
                "arrivals": list(self.arrivals),
            }

    def reset(self) -> None:
        with self._lock:
            self.requests = self.info_requests = self.inputs = self.served_inputs = 0
            self.max_in_flight = self.in_flight
            self.status.clear()
            self.actions.clear()
            self.batch_sizes.clear()
            self.scale_up_timeouts.clear()
            self.arrivals.clear()
            self.served_by_port.clear()

"""One rate limit for every process of a Ray cluster: ``ClusterLimiter``.

The Ray engine's workers take their rate-limit slots from one ``ClusterLimiter``:
a named Ray actor per endpoint, key and rate, that hands out slots a few at a
time (as many as a worker has callers waiting), so that it is asked about once
per lease rather than once per request. The actor keeps its schedule in the
machine-wide state of ``hf_endpoint.client.ratelimit.shared_limiter`` on its node, so
processes outside Ray on that node (``hf-endpoint embed``, a notebook) share the
same limit. See docs/scale-out.md.
"""

from __future__ import annotations

import asyncio
import logging
import threading
import time
from collections import deque
from typing import Any

import ray
from ray.util.scheduling_strategies import NodeAffinitySchedulingStrategy

from ..client.ratelimit import (
    TOLERANCE,
    Grant,
    Lease,
    RateLimiter,
    lease_of,
    limit_key,
    named_limiter,
    take_leased,
)

__all__ = ["HORIZON", "NAMESPACE", "ClusterLimiter", "cluster_limiter"]

logger = logging.getLogger(__name__)

NAMESPACE = "hf-endpoint"
HORIZON = 1.0
"""The furthest ahead (seconds) a slot is ever handed out: a limiter actor that starts
(or starts again) opens no slot for this long, so that slots an earlier life of it
handed out have passed."""
MAX_LEASE = 64


class _SlotActor:
    """Hands out slots of the machine-wide schedule of the node it runs on."""

    def __init__(self, name: str, requests_per_minute: int) -> None:
        self._limiter: RateLimiter = named_limiter(name, requests_per_minute)
        self._node = ray.get_runtime_context().get_node_id()
        # Whether an earlier life of this actor (on another node, or without a state file)
        # handed out slots that are still to come cannot be known: wait until any would have
        # passed. Ray's restart count is not reliable enough to skip this on a first start.
        self._limiter.hold(HORIZON + TOLERANCE)

    def lease(self, slots: int) -> tuple[str, float, Grant]:
        """Up to ``slots`` slots; the node and this node's clock go with them."""
        now, given = self._limiter.grant(slots, HORIZON)
        return self._node, now, given


class ClusterLimiter:
    """A rate limiter for every process of a Ray cluster: ``try_acquire()`` as
    ``RateLimiter``'s, with slots leased from one named actor.

    Pickles small (the actor's name and the rate; leases never travel), so each
    process, and each restarted worker, starts without slots and asks the actor.
    Make it with ``cluster_limiter``; use it in a process connected to the cluster.
    """

    def __init__(self, name: str, requests_per_minute: int) -> None:
        self.name = name
        self.requests_per_minute = requests_per_minute
        self._lock = threading.Lock()
        self._actor: Any = None
        self._node: str | None = None
        self._lease: Lease | None = None
        self._due = -float("inf")
        self._retry_at = -float("inf")
        self._waiting: dict[tuple[int, int], float] = {}
        self._offsets: deque[tuple[float, float]] = deque(maxlen=8)
        self._doubt = 0.0
        self._round_trip = 0.0
        self.leases = 0

    def __reduce__(self) -> tuple[Any, ...]:
        return (ClusterLimiter, (self.name, self.requests_per_minute))

    def __repr__(self) -> str:
        return (
            f"ClusterLimiter(requests_per_minute={self.requests_per_minute}, actor={self.name!r})"
        )

    def try_acquire(self) -> float:
        """Take a slot now and return ``0.0``, or return how long to wait before asking again."""
        caller = _caller()
        with self._lock:
            now = time.monotonic()
            wait = self._take(now)
            if wait is None:
                if now < self._retry_at:
                    wait = self._retry_at - now
                else:
                    self._fetch(now, caller)
                    now = time.monotonic()
                    wait = self._take(now)
                    if wait is None:
                        wait = max(self._retry_at - now, 0.001)
            if wait == 0:
                self._waiting.pop(caller, None)
            else:
                self._waiting[caller] = now + wait + 1.0
            return wait

    def _take(self, now: float) -> float | None:
        if self._lease is None:
            return None
        wait, self._due = take_leased(self._lease, self._due, now)
        if wait is None:
            self._lease = None
        return wait

    def _demand(self, now: float, caller: tuple[int, int]) -> int:
        """How many slots to ask for: one per caller waiting (this one included), or as
        many as open while a lease is uncertain or on its way, whichever is more."""
        for who, until in list(self._waiting.items()):
            if until < now:
                del self._waiting[who]
        waiting = len(self._waiting) + (caller not in self._waiting)
        # A lease on another node loses its uncertainty off its length, and every lease costs
        # the time its answer takes (long on a busy machine, while the callers wait): ask
        # for enough to last that long, else asking becomes the limit rather than the rate.
        interval = 60.0 / self.requests_per_minute
        lost = self._doubt + self._round_trip
        return max(1, min(MAX_LEASE, max(waiting, 2 + int(lost / interval))))

    def _fetch(self, now: float, caller: tuple[int, int]) -> None:
        slots = self._demand(now, caller)
        sent = time.monotonic()
        try:
            node, granter_now, given = ray.get(self._slot_actor().lease.remote(slots), timeout=30)
        except ray.exceptions.ActorDiedError:
            logger.warning("the rate limiter actor %s is gone: starting another", self.name)
            self._actor = None
            self._retry_at = time.monotonic() + 0.1
            return
        except (ray.exceptions.ActorUnavailableError, ray.exceptions.GetTimeoutError) as exc:
            logger.warning("the rate limiter actor %s does not answer (%s)", self.name, exc)
            self._retry_at = time.monotonic() + 0.5
            return
        received = time.monotonic()
        self._round_trip = received - sent
        self.leases += 1
        if given.slots == 0:
            self._retry_at = received + given.wait
            return
        if self._node is None:
            self._node = ray.get_runtime_context().get_node_id()
        if node == self._node:
            low = high = 0.0  # one machine, one monotonic clock
        else:
            low, high = self._offset(sent - granter_now, received - granter_now)
        self._doubt = high - low
        self._lease = lease_of(given, low, high)
        self._due = self._lease.first

    def _offset(self, low: float, high: float) -> tuple[float, float]:
        """How far this clock reads ahead of the actor's, narrowed over the last exchanges."""
        self._offsets.append((low, high))
        best_low = max(o[0] for o in self._offsets)
        best_high = min(o[1] for o in self._offsets)
        if best_low > best_high:  # the clocks drifted apart: trust the latest exchange
            self._offsets.clear()
            self._offsets.append((low, high))
            return low, high
        return best_low, best_high

    def _slot_actor(self) -> Any:
        if self._actor is None:
            self._actor = _start_actor(self.name, self.requests_per_minute)
        return self._actor


def _caller() -> tuple[int, int]:
    """Who asks: the thread, and the asyncio task where there is one."""
    try:
        task = asyncio.current_task()
    except RuntimeError:
        task = None
    return threading.get_ident(), 0 if task is None else id(task)


def _start_actor(name: str, requests_per_minute: int) -> Any:
    actor = ray.remote(_SlotActor).options(
        name=f"hf-endpoint-limiter-{name[:32]}",
        namespace=NAMESPACE,
        get_if_exists=True,
        lifetime="detached",
        max_restarts=-1,
        num_cpus=0,
        # On the node that first asks (the driver's), where other processes may share it.
        scheduling_strategy=NodeAffinitySchedulingStrategy(
            ray.get_runtime_context().get_node_id(), soft=True
        ),
    )
    return actor.remote(name, requests_per_minute)


def cluster_limiter(url: str, api_key: str | None, requests_per_minute: int) -> ClusterLimiter:
    """The limiter shared by every process of the connected Ray cluster (and by the
    processes outside Ray on the limiter actor's node) that uses this URL, key and rate.
    The key is never sent to the cluster: the actor is named by a hash."""
    name = limit_key(url, api_key, requests_per_minute)
    limiter = ClusterLimiter(name, requests_per_minute)
    limiter._slot_actor()  # started here, on the caller's node
    return limiter

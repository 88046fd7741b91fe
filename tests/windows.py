"""The busiest window of a run: how tests and benchmarks check the rate-limit promise
(at most ``1 + requests_per_minute * T / 60`` requests in any window of ``T >= 1`` s) from the
arrival times an endpoint recorded."""

import bisect
from collections.abc import Sequence
from typing import NamedTuple

from hf_endpoint.client.ratelimit import WINDOW

# A rate-limit test reads the promise from the endpoint's arrival stamps, where a loaded machine
# adds delay between the limiter's slot and the request's arrival (and between the arrival and
# its stamp). Counted over windows of 10 s or more at 300 requests a minute, a request may
# arrive 200 ms (the limiter's 2% margin of 10 s) or more after its slot without an excess; over
# windows of 1 s, 20 ms was enough to fail a test beside other test runs, and 160 ms appeared
# over 5 s on a service answering fifty callers. A test at this rate sends about 100 requests,
# lasting 20 s, so that windows of 10 s see the limiter's pace, not the whole run at once.
TEST_RPM = 300
TEST_WINDOW = 10.0


class Window(NamedTuple):
    """A window of the busiest kind: ``requests`` from ``start`` for ``length`` s,
    where the promise allows ``allowed``."""

    start: float
    length: float
    requests: int
    allowed: float

    @property
    def excess(self) -> float:
        """Requests over the limit (``<= 0``: within it)."""
        return self.requests - self.allowed


def busiest_window(
    times: Sequence[float], requests_per_minute: float, shortest: float = WINDOW
) -> Window:
    """The window of ``shortest`` seconds or more whose count most exceeds
    ``1 + requests_per_minute * T / 60`` (the one closest to it when none does).

    Check a run against the promise from the endpoint's arrival times:
    ``busiest_window(arrivals, rpm).excess <= 0``.
    """
    a = sorted(times)
    if not a:
        return Window(0.0, shortest, 0, 1.0)
    rate = requests_per_minute / 60.0
    n = len(a)
    # For windows longer than `shortest` that start at a[i] and end at a[j], the excess is
    # (j - rate * a[j]) - (i - rate * a[i]): the best end is a suffix maximum of j - rate * a[j].
    best_end = [0] * n
    best = n - 1
    for j in range(n - 1, -1, -1):
        if j - rate * a[j] >= best - rate * a[best]:
            best = j
        best_end[j] = best
    top = Window(a[0], shortest, 1, 1 + rate * shortest)
    for i in range(n):
        short_end = bisect.bisect_right(a, a[i] + shortest) - 1
        candidate = Window(a[i], shortest, short_end - i + 1, 1 + rate * shortest)
        if candidate.excess > top.excess:
            top = candidate
        if short_end + 1 < n:
            j = best_end[short_end + 1]
            length = a[j] - a[i]
            candidate = Window(a[i], length, j - i + 1, 1 + rate * length)
            if candidate.excess > top.excess:
                top = candidate
    return top


def assert_within_limit(arrivals: Sequence[float], requests_per_minute: int, at_least: int) -> None:
    """At least ``at_least`` requests arrived, over at least two test windows, and no window of
    ``TEST_WINDOW`` seconds or more held more than the limit allows."""
    assert len(arrivals) >= at_least, (len(arrivals), at_least)
    assert max(arrivals) - min(arrivals) >= 2 * TEST_WINDOW - 1, "too short to see the pace"
    window = busiest_window(arrivals, requests_per_minute, TEST_WINDOW)
    assert window.excess <= 0, window

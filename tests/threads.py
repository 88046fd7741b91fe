"""Running test work in several threads at once, so that what fails in a thread fails the test."""

from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from typing import Any


def run_together(calls: list[Callable[[], Any]], timeout: float = 300) -> list[Any]:
    """Start every call in a thread of its own at once; return their results in order.

    An exception raised in a thread is raised here (a bare ``threading.Thread`` only prints
    it, and the test passes), and a thread still running after ``timeout`` seconds fails the
    test instead of hanging the run.
    """
    pool = ThreadPoolExecutor(len(calls))
    try:
        futures = [pool.submit(call) for call in calls]
        return [future.result(timeout=timeout) for future in futures]
    finally:
        pool.shutdown(wait=False, cancel_futures=True)

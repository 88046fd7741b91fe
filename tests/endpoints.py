"""Local endpoints shared by the whole test run (started on first use, stopped at exit)."""

import atexit
import threading

import pytest

from hf_endpoint.server import LocalEndpoint

_started: dict[str, LocalEndpoint] = {}
_lock = threading.Lock()


def local_url(backend: str) -> str:
    """The URL of a local ``backend`` endpoint (no token) that lives as long as the test run.

    ``minilm`` skips the test when the minilm extra is not installed.
    """
    if backend == "minilm":
        pytest.importorskip("sentence_transformers", reason="the minilm extra is not installed")
    with _lock:
        if backend not in _started:
            endpoint = LocalEndpoint(backend)
            endpoint.__enter__()
            atexit.register(endpoint.close)
            _started[backend] = endpoint
        return _started[backend].url

"""Local endpoints shared by the whole test run (started on first use, stopped at exit)."""

import atexit
import contextlib
import http.server
import threading

import pytest

from hf_endpoint.server import LocalEndpoint

# LocalEndpoint options for a server as Text Embeddings Inference before 1.9: no
# auto-truncation (router/src/main.rs) and 413 for a validation error (router/src/http/server.rs;
# 422 since 1.9.0, PR #818). The local endpoint's defaults are TEI v1.9.3's.
TEI_1_8 = {"auto_truncate": False, "validation_status": 413}

_started: dict[tuple, LocalEndpoint] = {}
_lock = threading.Lock()


def local_url(backend: str, **options) -> str:
    """The URL of a local ``backend`` endpoint (no token) that lives as long as the test run.

    ``options`` are :class:`LocalEndpoint`'s (e.g. ``**TEI_1_8``); ``minilm`` skips the test
    when the minilm extra is not installed.
    """
    if backend == "minilm":
        pytest.importorskip("sentence_transformers", reason="the minilm extra is not installed")
    with _lock:
        key = (backend, *sorted(options.items()))
        if key not in _started:
            endpoint = LocalEndpoint(backend, **options)
            endpoint.__enter__()
            atexit.register(endpoint.close)
            _started[key] = endpoint
        return _started[key].url


class _Quiet(http.server.BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"

    def log_message(self, *args):
        pass


@contextlib.contextmanager
def raw_endpoint(answer):
    """A bare HTTP server on loopback for behaviour the local endpoint does not have.

    ``answer(handler, body)`` writes the whole response for each request (``handler`` is
    the ``BaseHTTPRequestHandler``; ``body`` the request body). Yields the URL.
    """

    class Handler(_Quiet):
        def do_GET(self):
            answer(self, b"")

        def do_POST(self):
            body = self.rfile.read(int(self.headers.get("content-length", 0)))
            answer(self, body)

    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    server.daemon_threads = True
    thread = threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.05})
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}"
    finally:
        server.shutdown()
        server.server_close()
        thread.join(timeout=10)


def reply(handler, status, content, headers=()):
    """Write one complete response."""
    handler.send_response(status)
    handler.send_header("Content-Type", "application/json")
    handler.send_header("Content-Length", str(len(content)))
    for name, value in headers:
        handler.send_header(name, value)
    handler.end_headers()
    handler.wfile.write(content)

"""Running the local endpoint: in this process (a thread), or as a subprocess."""

from __future__ import annotations

import argparse
import json
import logging
import os
import socket
import subprocess
import sys
import threading
import time
import urllib.request
from collections.abc import Callable
from typing import Any

from typing_extensions import Self

from .app import ServerConfig, create_app
from .backends import create_backend
from .faults import Faults

__all__ = ["LocalEndpoint", "add_arguments", "config_from_arguments", "serve"]

READY_LINE = "hf-endpoint server listening on "


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """The server's command-line options (shared by ``hf-endpoint serve``)."""
    parser.add_argument("--backend", choices=["hash", "minilm"], default="minilm")
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=8080, help="0 picks a free port")
    parser.add_argument(
        "--api-key", help="require 'Authorization: Bearer KEY' (default: no token needed)"
    )
    parser.add_argument("--max-client-batch-size", type=int, default=32)
    parser.add_argument("--max-batch-tokens", type=int, default=16384)
    faults = parser.add_argument_group("fault injection (off by default)")
    faults.add_argument("--cold-start", type=float, default=0.0, metavar="SECONDS")
    faults.add_argument("--fault-429", type=float, default=0.0, metavar="RATE")
    faults.add_argument("--fault-502", type=float, default=0.0, metavar="RATE")
    faults.add_argument("--fault-503", type=float, default=0.0, metavar="RATE")
    faults.add_argument("--fault-drop", type=float, default=0.0, metavar="RATE")
    faults.add_argument("--latency", type=float, default=0.0, metavar="SECONDS")
    faults.add_argument(
        "--requests-per-minute", type=int, metavar="N", help="server-side limit, answered 429"
    )
    faults.add_argument("--retry-after", type=float, default=1.0, metavar="SECONDS")
    faults.add_argument(
        "--malformed",
        choices=["missing_row", "ragged", "token_level", "not_numbers", "html", "object"],
    )
    faults.add_argument("--seed", type=int, default=0)


def config_from_arguments(args: argparse.Namespace) -> ServerConfig:
    faults = Faults(
        cold_start=args.cold_start,
        rate_429=args.fault_429,
        rate_502=args.fault_502,
        rate_503=args.fault_503,
        rate_drop=args.fault_drop,
        latency=args.latency,
        requests_per_minute=args.requests_per_minute,
        retry_after=args.retry_after,
        malformed=args.malformed,
        seed=args.seed,
    )
    return ServerConfig(
        backend=create_backend(args.backend),
        api_key=args.api_key,
        max_client_batch_size=args.max_client_batch_size,
        max_batch_tokens=args.max_batch_tokens,
        faults=faults,
    )


def _bind(host: str, port: int) -> socket.socket:
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    # Responses go out as two writes (head, body): without this, Nagle and the
    # peer's delayed ACK hold the body back about 40 ms.
    sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
    sock.bind((host, port))
    return sock


class _QuietDrops(logging.Filter):
    """A dropped connection is a fault injected on purpose, not an error to log."""

    def filter(self, record: logging.LogRecord) -> bool:
        return "without completing response" not in record.getMessage()


logging.getLogger("uvicorn.error").addFilter(_QuietDrops())


def _uvicorn_server(config: ServerConfig) -> Any:
    import uvicorn

    return uvicorn.Server(
        uvicorn.Config(
            create_app(config),
            log_level="warning",
            access_log=False,
            lifespan="on",
            timeout_keep_alive=30,
        )
    )


def serve(
    config: ServerConfig,
    host: str = "127.0.0.1",
    port: int = 8080,
    on_ready: Callable[[str], None] | None = None,
) -> None:
    """Serve in this thread until interrupted; ``on_ready(url)`` is called once listening."""
    sock = _bind(host, port)
    server = _uvicorn_server(config)
    url = f"http://{host}:{sock.getsockname()[1]}"

    def announce() -> None:
        while not server.started and not server.should_exit:
            time.sleep(0.01)
        if server.started and on_ready is not None:
            on_ready(url)

    threading.Thread(target=announce, daemon=True).start()
    server.run(sockets=[sock])


class LocalEndpoint:
    """A local endpoint on a free loopback port, for the length of a ``with`` block.

    ``in_process=True`` (default) serves from a thread of this process;
    ``False`` starts ``python -m hf_endpoint.server`` in a subprocess, so that
    a benchmark's client and server do not share one interpreter.

    >>> with LocalEndpoint(backend="hash") as endpoint:   # doctest: +SKIP
    ...     endpoint.url
    'http://127.0.0.1:41234'
    """

    def __init__(
        self,
        backend: str = "hash",
        *,
        api_key: str | None = None,
        faults: Faults | None = None,
        max_client_batch_size: int = 32,
        max_batch_tokens: int = 16384,
        in_process: bool = True,
        startup_timeout: float = 120.0,
    ) -> None:
        self.backend = backend
        self.api_key = api_key
        self.faults = faults or Faults()
        self.max_client_batch_size = max_client_batch_size
        self.max_batch_tokens = max_batch_tokens
        self.in_process = in_process
        self.startup_timeout = startup_timeout
        self.url = ""
        self._server: Any = None
        self._thread: threading.Thread | None = None
        self._process: subprocess.Popen[str] | None = None

    def __enter__(self) -> Self:
        if self.in_process:
            self._start_thread()
        else:
            self._start_process()
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def _start_thread(self) -> None:
        config = ServerConfig(
            backend=create_backend(self.backend),
            api_key=self.api_key,
            max_client_batch_size=self.max_client_batch_size,
            max_batch_tokens=self.max_batch_tokens,
            faults=self.faults,
        )
        sock = _bind("127.0.0.1", 0)
        self.url = f"http://127.0.0.1:{sock.getsockname()[1]}"
        self._server = _uvicorn_server(config)
        self._thread = threading.Thread(
            target=self._server.run, kwargs={"sockets": [sock]}, daemon=True
        )
        self._thread.start()
        deadline = time.monotonic() + self.startup_timeout
        while not self._server.started:
            if not self._thread.is_alive() or time.monotonic() > deadline:
                raise RuntimeError(f"the local {self.backend} endpoint did not start")
            time.sleep(0.01)

    def _start_process(self) -> None:
        f = self.faults
        command = [
            sys.executable, "-m", "hf_endpoint.server", "--backend", self.backend, "--port", "0",
            "--max-client-batch-size", str(self.max_client_batch_size),
            "--max-batch-tokens", str(self.max_batch_tokens),
            "--cold-start", str(f.cold_start), "--fault-429", str(f.rate_429), "--fault-502", str(f.rate_502),
            "--fault-503", str(f.rate_503), "--fault-drop", str(f.rate_drop), "--latency", str(f.latency),
            "--retry-after", str(f.retry_after), "--seed", str(f.seed),
        ]  # fmt: skip
        if f.requests_per_minute is not None:
            command += ["--requests-per-minute", str(f.requests_per_minute)]
        if f.malformed is not None:
            command += ["--malformed", f.malformed]
        if self.api_key is not None:
            command += ["--api-key", self.api_key]
        self._process = subprocess.Popen(
            command, stdout=subprocess.PIPE, text=True, env={**os.environ, "PYTHONUNBUFFERED": "1"}
        )
        assert self._process.stdout is not None
        line = self._process.stdout.readline()
        if not line.startswith(READY_LINE):
            self.close()
            raise RuntimeError(f"the local {self.backend} endpoint did not start: {line!r}")
        self.url = line[len(READY_LINE) :].strip()

    def close(self) -> None:
        """Stop the server (idempotent)."""
        if self._server is not None:
            self._server.should_exit = True
            if self._thread is not None:
                self._thread.join(timeout=10)
            self._server = None
        if self._process is not None:
            self._process.terminate()
            try:
                self._process.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self._process.kill()
                self._process.wait()
            if self._process.stdout is not None:
                self._process.stdout.close()
            self._process = None

    def stats(self) -> dict[str, Any]:
        """What the server received: request and input counts, statuses, arrival times."""
        with urllib.request.urlopen(self.url + "/stats", timeout=10) as response:
            result: dict[str, Any] = json.load(response)
        return result

    def reset_stats(self) -> None:
        request = urllib.request.Request(self.url + "/stats/reset", method="POST")
        with urllib.request.urlopen(request, timeout=10):
            pass

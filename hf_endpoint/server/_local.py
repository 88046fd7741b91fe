"""Running the local endpoint: in this process (a thread), or as a subprocess."""

from __future__ import annotations

import copy
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
from pathlib import Path
from typing import Any

from typing_extensions import Self

from .app import ServerConfig, create_app
from .backends import Backend, create_backend
from .faults import Faults

__all__ = ["READY_LINE", "CannotListen", "LocalEndpoint", "serve"]

READY_LINE = "hf-endpoint server listening on "


class CannotListen(OSError):
    """The server cannot listen where it was told to (a port in use, an unknown host)."""


def _bind(host: str, port: int) -> socket.socket:
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    # Responses go out as two writes (head, body): without this, Nagle and the
    # peer's delayed ACK hold the body back about 40 ms.
    sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
    try:
        sock.bind((host, port))
    except OSError as exc:
        sock.close()
        raise CannotListen(exc.errno, f"cannot listen on {host}:{port}: {exc.strerror}") from None
    return sock


class _QuietDrops(logging.Filter):
    """A dropped connection is a fault injected on purpose, not an error to log."""

    def filter(self, record: logging.LogRecord) -> bool:
        return "without completing response" not in record.getMessage()


def _log_config() -> dict[str, Any]:
    """uvicorn's own logging configuration, with dropped connections left out.

    Applied by uvicorn when a server is created, never when this module is imported.
    """
    from uvicorn.config import LOGGING_CONFIG

    config: dict[str, Any] = copy.deepcopy(LOGGING_CONFIG)
    config.setdefault("filters", {})["quiet_drops"] = {"()": _QuietDrops}
    for handler in config["handlers"].values():
        handler.setdefault("filters", []).append("quiet_drops")
    return config


def _uvicorn_server(config: ServerConfig) -> Any:
    import uvicorn

    return uvicorn.Server(
        uvicorn.Config(
            create_app(config),
            log_level="warning",
            log_config=_log_config(),
            access_log=False,
            lifespan="on",
            timeout_keep_alive=30,
        )
    )


def _run_announcing(
    server: Any, sock: socket.socket, url: str, on_ready: Callable[[str], None] | None
) -> None:
    """Run uvicorn's ``server`` on ``sock`` in this thread; ``on_ready(url)`` once it serves."""

    def announce() -> None:
        while not server.started and not server.should_exit:
            time.sleep(0.01)
        if server.started and on_ready is not None:
            on_ready(url)

    threading.Thread(target=announce, daemon=True).start()
    server.run(sockets=[sock])


def serve(
    config: ServerConfig,
    host: str = "127.0.0.1",
    port: int = 8080,
    on_ready: Callable[[str], None] | None = None,
) -> None:
    """Load the model, then serve in this thread until interrupted; ``on_ready(url)`` is
    called once listening. ``CannotListen`` when the port is taken (before the model loads)."""
    sock = _bind(host, port)
    config.backend.load()
    server = _uvicorn_server(config)
    url = f"http://{host}:{sock.getsockname()[1]}"
    _run_announcing(server, sock, url, on_ready)


class LocalEndpoint:
    """A local endpoint on a free loopback port, for the length of a ``with`` block.

    ``backend`` is ``"hash"`` (the default), ``"minilm"`` or a :class:`Backend` object
    (in process only); ``model`` serves a local sentence-transformers folder instead, on
    ``device`` (``auto``, ``cpu``, ``cuda``) in ``dtype`` (``float32``, ``float16``), with
    ``threads`` torch threads (in process: left as they are unless given; a subprocess
    defaults to one less than the CPUs); ``progress=True`` shows the model's loading bar.
    ``in_process=True`` (default) serves from a thread of this process; ``False`` starts ``python -m hf_endpoint.server`` in a
    subprocess, so that a benchmark's client and server do not share one interpreter.
    The model is loaded before the ``with`` block starts: a bad folder raises there.

    The server follows TEI v1.9.3: ``auto_truncate=True`` and ``validation_status=422``;
    ``auto_truncate=False, validation_status=413`` is a server from before TEI 1.9
    (see :class:`ServerConfig`).

    >>> with LocalEndpoint(backend="hash") as endpoint:
    ...     endpoint.url
    'http://127.0.0.1:...'
    """

    def __init__(
        self,
        backend: str | Backend | None = None,
        *,
        model: str | Path | None = None,
        device: str = "auto",
        dtype: str = "float32",
        threads: int | None = None,
        api_key: str | None = None,
        faults: Faults | None = None,
        max_client_batch_size: int = 32,
        max_batch_tokens: int = 16384,
        auto_truncate: bool = True,
        validation_status: int = 422,
        in_process: bool = True,
        startup_timeout: float = 120.0,
        progress: bool = False,
    ) -> None:
        self.backend = backend or ("sentence-transformers" if model is not None else "hash")
        self.model = model
        self.device = device
        self.dtype = dtype
        self.threads = threads
        self.api_key = api_key
        self.faults = faults or Faults()
        self.max_client_batch_size = max_client_batch_size
        self.max_batch_tokens = max_batch_tokens
        self.auto_truncate = auto_truncate
        self.validation_status = validation_status
        self.in_process = in_process
        self.startup_timeout = startup_timeout
        self.progress = progress
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

    def _backend(self) -> Backend:
        if not isinstance(self.backend, str):
            return self.backend
        return create_backend(
            self.backend,
            model=self.model,
            device=self.device,
            dtype=self.dtype,
            threads=self.threads,
            progress=self.progress,
        )

    def _start_thread(self) -> None:
        config = ServerConfig(
            backend=self._backend(),
            api_key=self.api_key,
            max_client_batch_size=self.max_client_batch_size,
            max_batch_tokens=self.max_batch_tokens,
            auto_truncate=self.auto_truncate,
            validation_status=self.validation_status,
            faults=self.faults,
        )
        config.backend.load()
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
        if not isinstance(self.backend, str):
            raise TypeError("a Backend object is served in process only")
        f = self.faults
        command = [
            sys.executable, "-m", "hf_endpoint.server", "--port", "0",
            "--device", self.device, "--dtype", self.dtype,
            "--max-client-batch-size", str(self.max_client_batch_size),
            "--max-batch-tokens", str(self.max_batch_tokens),
            "--auto-truncate", str(self.auto_truncate).lower(),
            "--validation-status", str(self.validation_status),
            "--cold-start", str(f.cold_start), "--fault-429", str(f.rate_429), "--fault-502", str(f.rate_502),
            "--fault-503", str(f.rate_503), "--fault-drop", str(f.rate_drop), "--latency", str(f.latency),
            "--retry-after", str(f.retry_after), "--seed", str(f.seed),
        ]  # fmt: skip
        command += ["--model", str(self.model)] if self.model else ["--backend", self.backend]
        if self.progress:
            command.append("--progress")
        if self.threads is not None:
            command += ["--threads", str(self.threads)]
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

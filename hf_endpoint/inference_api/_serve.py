"""Running the service: in this process (a thread, ``InferenceAPI``), or as the command.

Without any credential in the store the service answers loopback callers only and
refuses to listen on another address; with TLS files it serves HTTPS.
"""

from __future__ import annotations

import ipaddress
import logging
import os
import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from typing_extensions import Self

from ..errors import ConfigError
from ..server._local import _bind, _log_config, _run_announcing
from ._secrets import MasterKey
from .app import ServiceConfig, create_app
from .store import Store, default_store_path

__all__ = ["InferenceAPI", "check_bind", "open_store", "serve", "serve_workers"]

logger = logging.getLogger(__name__)

READY_LINE = "hf-endpoint inference-api listening on "


def open_store(path: str | Path | None = None) -> Store:
    """The store at ``path`` (default: the user's data directory) with its master key:
    ``HF_ENDPOINT_MASTER_KEY``, else the key file beside it (``<store>.key``)."""
    store_path = Path(path).expanduser() if path is not None else default_store_path()
    key_file = store_path.with_name(store_path.name + ".key")
    return Store(store_path, MasterKey.load(key_file))


def _loopback(host: str) -> bool:
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def check_bind(host: str, store: Store) -> None:
    """Refuse to listen beyond loopback while no caller credential exists."""
    if _loopback(host):
        if not store.has_credentials():
            logger.warning(
                "no API key or user exists: serving loopback callers only, without "
                "authentication (create one: hf-endpoint inference-api keys create NAME)"
            )
        return
    if not store.has_credentials():
        raise ConfigError(
            f"[host] {host} is not a loopback address and no credential exists: create an API "
            "key first (hf-endpoint inference-api keys create NAME), or serve on 127.0.0.1"
        )


def _uvicorn_config(app: Any, tls_cert: str | None, tls_key: str | None, **extra: Any) -> Any:
    import uvicorn

    if (tls_cert is None) != (tls_key is None):
        raise ConfigError("[tls_cert] and [tls_key] go together: give both or neither")
    return uvicorn.Config(
        app,
        log_level="warning",
        log_config=_log_config(),
        access_log=False,
        lifespan="on",
        timeout_keep_alive=30,
        ssl_certfile=tls_cert,
        ssl_keyfile=tls_key,
        **extra,
    )


def serve(
    config: ServiceConfig,
    host: str = "127.0.0.1",
    port: int = 9200,
    *,
    tls_cert: str | None = None,
    tls_key: str | None = None,
    on_ready: Callable[[str], None] | None = None,
) -> None:
    """Serve in this thread until interrupted; ``on_ready(url)`` once listening."""
    import uvicorn

    check_bind(host, config.store)
    sock = _bind(host, port)
    server = uvicorn.Server(_uvicorn_config(create_app(config), tls_cert, tls_key))
    scheme = "https" if tls_cert else "http"
    url = f"{scheme}://{host}:{sock.getsockname()[1]}"
    _run_announcing(server, sock, url, on_ready)


def serve_workers(
    store: Store,
    host: str,
    port: int,
    workers: int,
    *,
    tls_cert: str | None = None,
    tls_key: str | None = None,
    on_ready: Callable[[str], None] | None = None,
) -> None:
    """Serve with ``workers`` uvicorn processes on one socket, bound here (so that port 0
    is known before they start). Each worker builds its app from the environment
    (``environment_app``); every client of one url+key shares the machine-wide limit."""
    from uvicorn.supervisors import Multiprocess

    check_bind(host, store)
    sock = _bind(host, port)
    config = _uvicorn_config(
        "hf_endpoint.inference_api._serve:environment_app",
        tls_cert,
        tls_key,
        factory=True,
        workers=workers,
    )
    if on_ready is not None:
        on_ready(f"{'https' if tls_cert else 'http'}://{host}:{sock.getsockname()[1]}")
    Multiprocess(config, sockets=[sock]).run()


class InferenceAPI:
    """The service on a free loopback port, in a thread of this process, for a ``with`` block.

    ``store`` is the SQLite file (a ``Store``, a path, or ``None`` for the default);
    ``tls_cert`` and ``tls_key`` serve HTTPS; the other keywords are ``ServiceConfig``'s.

    >>> import tempfile
    >>> with tempfile.TemporaryDirectory() as folder:
    ...     with InferenceAPI(store=f"{folder}/endpoints.sqlite3") as service:
    ...         service.url
    'http://127.0.0.1:...'
    """

    def __init__(
        self,
        store: Store | str | Path | None = None,
        *,
        host: str = "127.0.0.1",
        tls_cert: str | Path | None = None,
        tls_key: str | Path | None = None,
        startup_timeout: float = 30.0,
        **options: Any,
    ) -> None:
        self.store = store if isinstance(store, Store) else open_store(store)
        self.config = ServiceConfig(store=self.store, **options)
        self.host = host
        self.tls = (str(tls_cert) if tls_cert else None, str(tls_key) if tls_key else None)
        self.startup_timeout = startup_timeout
        self.url = ""
        self._server: Any = None
        self._thread: threading.Thread | None = None

    def __enter__(self) -> Self:
        import uvicorn

        check_bind(self.host, self.store)
        sock = _bind(self.host, 0)
        scheme = "https" if self.tls[0] else "http"
        self.url = f"{scheme}://{self.host}:{sock.getsockname()[1]}"
        self._server = uvicorn.Server(_uvicorn_config(create_app(self.config), *self.tls))
        self._thread = threading.Thread(
            target=self._server.run, kwargs={"sockets": [sock]}, daemon=True
        )
        self._thread.start()
        deadline = time.monotonic() + self.startup_timeout
        while not self._server.started:
            if not self._thread.is_alive() or time.monotonic() > deadline:
                raise RuntimeError("the inference API service did not start")
            time.sleep(0.01)
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def close(self) -> None:
        """Stop the service (idempotent)."""
        if self._server is not None:
            self._server.should_exit = True
            if self._thread is not None:
                self._thread.join(timeout=10)
            self._server = None


def environment_app() -> Any:
    """The app for ``uvicorn --workers``: settings from ``HF_ENDPOINT_INFERENCE_API_*``."""
    store = open_store(os.environ["HF_ENDPOINT_INFERENCE_API_STORE"])
    limits: dict[str, Any] = {
        name: int(os.environ[f"HF_ENDPOINT_INFERENCE_API_{name.upper()}"])
        for name in ("max_body_bytes", "max_inputs", "max_in_flight")
        if f"HF_ENDPOINT_INFERENCE_API_{name.upper()}" in os.environ
    }
    return create_app(ServiceConfig(store=store, **limits))

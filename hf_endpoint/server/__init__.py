"""A local Hugging Face Inference Endpoint: the embedded default and the test peer.

It speaks Text Embeddings Inference's protocol (what Hugging Face endpoints
run) with a real model (``minilm``) or hashed vectors (``hash``), and can
misbehave on purpose (cold starts, 429/502/503, dropped connections, latency,
a requests-per-minute limit) to exercise clients.

Start it from the command line::

    hf-endpoint serve --backend minilm --port 8080
    python -m hf_endpoint.server --backend hash --fault-429 0.1 --seed 7

or from Python, on a free loopback port::

    with LocalEndpoint(backend="hash") as endpoint:
        httpx.post(endpoint.url, json={"inputs": ["hello"]})

Needs the ``server`` extra (Starlette, uvicorn, sentence-transformers, the model).
"""

from ._local import LocalEndpoint, add_arguments, config_from_arguments, serve
from .app import ServerConfig, create_app
from .backends import HashBackend, MiniLMBackend, create_backend
from .faults import Faults

__all__ = [
    "Faults",
    "HashBackend",
    "LocalEndpoint",
    "MiniLMBackend",
    "ServerConfig",
    "add_arguments",
    "config_from_arguments",
    "create_app",
    "create_backend",
    "serve",
]

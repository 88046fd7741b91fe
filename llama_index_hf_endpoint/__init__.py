"""LlamaIndex integration: ``HFEndpointEmbedding``, ``HFEndpointNodeParser`` and
``HFEndpointRerank``."""

try:
    import llama_index.core  # noqa: F401
except ImportError as exc:
    raise ImportError(
        f"llama_index_hf_endpoint needs LlamaIndex ({exc.name} is not installed): "
        'pip install "hf-endpoint[llama-index]"',
        name=exc.name,
    ) from exc

from .embeddings import HFEndpointEmbedding
from .node_parser import HFEndpointNodeParser
from .postprocessor import HFEndpointRerank

__all__ = ["HFEndpointEmbedding", "HFEndpointNodeParser", "HFEndpointRerank"]

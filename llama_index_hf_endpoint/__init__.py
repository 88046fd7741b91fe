"""LlamaIndex integration: ``HFEndpointEmbedding`` and ``HFEndpointNodeParser``."""

from .embeddings import HFEndpointEmbedding
from .node_parser import HFEndpointNodeParser

__all__ = ["HFEndpointEmbedding", "HFEndpointNodeParser"]

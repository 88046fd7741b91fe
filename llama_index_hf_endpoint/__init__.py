"""LlamaIndex integration: ``HFEndpointEmbedding``, ``HFEndpointNodeParser`` and
``HFEndpointRerank``."""

from .embeddings import HFEndpointEmbedding
from .node_parser import HFEndpointNodeParser
from .postprocessor import HFEndpointRerank

__all__ = ["HFEndpointEmbedding", "HFEndpointNodeParser", "HFEndpointRerank"]

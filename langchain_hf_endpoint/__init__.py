"""LangChain integration: ``HFEndpointEmbeddings``, ``HFEndpointTextSplitter`` and
``HFEndpointRerank``."""

from .embeddings import HFEndpointEmbeddings
from .rerank import HFEndpointRerank
from .text_splitter import HFEndpointTextSplitter

__all__ = ["HFEndpointEmbeddings", "HFEndpointRerank", "HFEndpointTextSplitter"]

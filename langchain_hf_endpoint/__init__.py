"""LangChain integration: ``HFEndpointEmbeddings`` and ``HFEndpointTextSplitter``."""

from .embeddings import HFEndpointEmbeddings
from .text_splitter import HFEndpointTextSplitter

__all__ = ["HFEndpointEmbeddings", "HFEndpointTextSplitter"]

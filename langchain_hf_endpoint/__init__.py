"""LangChain integration: ``HFEndpointEmbeddings``, ``HFEndpointTextSplitter`` and
``HFEndpointRerank``."""

try:
    import langchain_core  # noqa: F401
    import langchain_text_splitters  # noqa: F401
except ImportError as exc:
    raise ImportError(
        f"langchain_hf_endpoint needs LangChain ({exc.name} is not installed): "
        'pip install "hf-endpoint[langchain]"',
        name=exc.name,
    ) from exc

from .embeddings import HFEndpointEmbeddings
from .rerank import HFEndpointRerank
from .text_splitter import HFEndpointTextSplitter

__all__ = ["HFEndpointEmbeddings", "HFEndpointRerank", "HFEndpointTextSplitter"]

"""Hugging Face Inference Endpoint embeddings and reranking with Elasticsearch's
``hugging_face`` semantics."""

from .chunking import Chunk, chunk_offsets, chunk_text
from .client import EmbeddedChunk, EmbeddingClient, EmbeddingResult, ServerLimits, pool_chunks
from .errors import (
    AuthenticationError,
    ConfigError,
    EndpointConnectionError,
    EndpointError,
    EndpointOverloadedError,
    HFEndpointError,
    InputRejectedError,
    InputTooLargeError,
    ResponseFormatError,
)
from .registry import InferenceEndpoints
from .rerank import RankedDocument, RerankClient, RerankResult
from .retry import RetryPolicy
from .settings import (
    ChunkingSettings,
    InferenceConfig,
    RateLimit,
    RerankTaskSettings,
    ServiceSettings,
)
from .stats import ClientStats

__all__ = [
    "AuthenticationError",
    "Chunk",
    "ChunkingSettings",
    "ClientStats",
    "ConfigError",
    "EmbeddedChunk",
    "EmbeddingClient",
    "EmbeddingResult",
    "EndpointConnectionError",
    "EndpointError",
    "EndpointOverloadedError",
    "HFEndpointError",
    "InferenceConfig",
    "InferenceEndpoints",
    "InputRejectedError",
    "InputTooLargeError",
    "RankedDocument",
    "RateLimit",
    "RerankClient",
    "RerankResult",
    "RerankTaskSettings",
    "ResponseFormatError",
    "RetryPolicy",
    "ServerLimits",
    "ServiceSettings",
    "chunk_offsets",
    "chunk_text",
    "pool_chunks",
]
__version__ = "0.1.0"

"""Hugging Face Inference Endpoint embeddings and reranking with Elasticsearch's
``hugging_face`` semantics."""

from .chunking import Chunk, chunk_offsets, chunk_text
from .client import (
    ClientStats,
    EmbeddedChunk,
    EmbeddingClient,
    EmbeddingResult,
    RankedDocument,
    RerankClient,
    RerankResult,
    RetryPolicy,
    ServerLimits,
    pool_chunks,
)
from .config.settings import (
    ChunkingSettings,
    InferenceConfig,
    RateLimit,
    RerankTaskSettings,
    ServiceSettings,
)
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

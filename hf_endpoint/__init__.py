"""Hugging Face Inference Endpoint embeddings with Elasticsearch's ``hugging_face`` semantics."""

from .chunking import Chunk, chunk_offsets, chunk_text
from .client import EmbeddedChunk, EmbeddingClient, EmbeddingResult, ServerLimits, pool_chunks
from .errors import (
    AuthenticationError,
    ConfigError,
    EndpointConnectionError,
    EndpointError,
    EndpointOverloadedError,
    HFEndpointError,
    InputTooLargeError,
    ResponseFormatError,
)
from .registry import InferenceEndpoints
from .retry import RetryPolicy
from .settings import ChunkingSettings, InferenceConfig, RateLimit, ServiceSettings
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
    "InputTooLargeError",
    "RateLimit",
    "ResponseFormatError",
    "RetryPolicy",
    "ServerLimits",
    "ServiceSettings",
    "chunk_offsets",
    "chunk_text",
    "pool_chunks",
]
__version__ = "0.1.0"

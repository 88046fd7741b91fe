"""Hugging Face Inference Endpoint embeddings with Elasticsearch's ``hugging_face`` semantics."""

from .chunking import Chunk, chunk_offsets, chunk_text
from .errors import ConfigError, HFEndpointError
from .settings import ChunkingSettings, InferenceConfig, RateLimit, ServiceSettings

__all__ = [
    "Chunk",
    "ChunkingSettings",
    "ConfigError",
    "HFEndpointError",
    "InferenceConfig",
    "RateLimit",
    "ServiceSettings",
    "chunk_offsets",
    "chunk_text",
]
__version__ = "0.1.0"

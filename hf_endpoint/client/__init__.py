"""The clients of an endpoint, in layers.

What is not I/O is pure: the options (``_options``), the batch plan (``_base``), the request
and answer formats (``_protocol``), the retry decisions (``retry``), the rate limit's
arithmetic and its state shared between processes (``ratelimit``) and the flows that string
them together (``_flows``). Two drivers (``_drivers``) run the flows, sync and async. On top:
``EmbeddingClient`` (``_embedding``) and ``RerankClient`` (``rerank``), sharing ``BaseClient``
(``_base``), and their ``ClientStats`` (``stats``).
"""

from ._embedding import (
    MAX_CHUNKS,
    EmbeddedChunk,
    EmbeddingClient,
    EmbeddingResult,
    ServerLimits,
    fitted_chunking,
    merge_chunks,
    pool_chunks,
)
from .rerank import RankedDocument, RerankClient, RerankResult
from .retry import RetryPolicy
from .stats import ClientStats

__all__ = [
    "MAX_CHUNKS",
    "ClientStats",
    "EmbeddedChunk",
    "EmbeddingClient",
    "EmbeddingResult",
    "RankedDocument",
    "RerankClient",
    "RerankResult",
    "RetryPolicy",
    "ServerLimits",
    "fitted_chunking",
    "merge_chunks",
    "pool_chunks",
]

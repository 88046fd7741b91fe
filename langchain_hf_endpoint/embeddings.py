"""``HFEndpointEmbeddings``: LangChain embeddings from a Hugging Face Inference Endpoint."""

from __future__ import annotations

from langchain_core.embeddings import Embeddings
from pydantic import ConfigDict, Field

from hf_endpoint._adapter import EndpointAdapter
from hf_endpoint.client._options import ClientOptions

__all__ = ["HFEndpointEmbeddings"]


class HFEndpointEmbeddings(EndpointAdapter, Embeddings):
    """Embeddings from a Hugging Face Inference Endpoint, with Elasticsearch's
    ``hugging_face`` semantics: batching, a client-side rate limit, retries, and
    (when ``chunking_settings`` is set) Elasticsearch's chunking.

    With ``chunking_settings``, ``embed_documents`` chunks each text and returns
    the chunks' mean vector weighted by chunk length in characters, L2-normalised;
    ``embed_chunks`` gives every chunk with its offsets and vector instead.
    Without it, texts are sent whole. Construction makes no network call, and the
    key is sent only to ``url``. Pickles (the key travels); ``model_dump`` never
    holds the key.

    Setup: ``pip install "hf-endpoint[langchain]"``; ``export HF_TOKEN=hf_...``
    (or ``hf auth login``).

    For your endpoint, ``url="https://<name>.endpoints.huggingface.cloud"``; here the
    local one:

    >>> from hf_endpoint.server import LocalEndpoint
    >>> with LocalEndpoint("hash") as endpoint:
    ...     embeddings = HFEndpointEmbeddings(url=endpoint.url, api_key=None)
    ...     vector = embeddings.embed_query("What is a token bucket?")
    >>> len(vector)
    384
    """

    model_config = ConfigDict(populate_by_name=True, arbitrary_types_allowed=True, extra="forbid")

    batch_size: int = Field(
        default=ClientOptions.batch_size,
        description="Inputs per request (lowered to the endpoint's limit).",
    )

    def _batch_size(self) -> int:
        return self.batch_size

    def embed_documents(self, texts: list[str]) -> list[list[float]]:
        return self._embed_texts(texts)

    def embed_query(self, text: str) -> list[float]:
        return self._embed_texts([text], query=True)[0]

    async def aembed_documents(self, texts: list[str]) -> list[list[float]]:
        return await self._aembed_texts(texts)

    async def aembed_query(self, text: str) -> list[float]:
        return (await self._aembed_texts([text], query=True))[0]

"""``HFEndpointEmbeddings``: LangChain embeddings from a Hugging Face Inference Endpoint."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, Literal

from langchain_core.embeddings import Embeddings
from langchain_core.utils import from_env, secret_from_env
from pydantic import BaseModel, ConfigDict, Field, PrivateAttr, SecretStr, model_validator
from typing_extensions import Self

from hf_endpoint import (
    ChunkingSettings,
    EmbeddedChunk,
    EmbeddingClient,
    InferenceConfig,
    InferenceEndpoints,
)
from hf_endpoint.client import adapter_clients

__all__ = ["HFEndpointEmbeddings"]


class HFEndpointEmbeddings(BaseModel, Embeddings):
    """Embeddings from a Hugging Face Inference Endpoint, with Elasticsearch's
    ``hugging_face`` semantics: batching, a client-side rate limit, retries, and
    (when ``chunking_settings`` is set) Elasticsearch's chunking.

    With ``chunking_settings``, ``embed_documents`` chunks each text and returns
    the chunks' mean vector weighted by chunk length in characters, L2-normalised;
    ``embed_chunks`` gives every chunk with its offsets and vector instead.
    Without it, texts are sent whole. Construction makes no network call, and the
    key is sent only to ``url``.

    Setup: ``pip install "hf-endpoint[langchain]"``; ``export HF_TOKEN=hf_...``.

    >>> embeddings = HFEndpointEmbeddings(url="https://xyz.endpoints.huggingface.cloud")  # doctest: +SKIP
    >>> vector = embeddings.embed_query("What is a token bucket?")                         # doctest: +SKIP
    """

    model_config = ConfigDict(populate_by_name=True, arbitrary_types_allowed=True, extra="forbid")

    url: str = Field(
        default_factory=from_env("HF_ENDPOINT_URL", default=""),
        description="The endpoint URL; from HF_ENDPOINT_URL.",
    )
    api_key: SecretStr | None = Field(
        default_factory=secret_from_env(["HF_TOKEN", "HUGGINGFACEHUB_API_TOKEN"], default=None),
        description="The access token; from HF_TOKEN or HUGGINGFACEHUB_API_TOKEN. None for an open endpoint.",
    )
    rate_limit: int | dict[str, int] | None = Field(
        default=None,
        description='Requests per minute, or {"requests_per_minute": N}; default 3000.',
    )
    chunking_settings: dict[str, Any] | None = Field(
        default=None, description="Elasticsearch chunking_settings; None sends texts whole."
    )
    batch_size: int = Field(
        default=20, description="Inputs per request (lowered to the endpoint's limit)."
    )
    max_concurrency: int = Field(default=4, description="Requests in flight at once.")
    timeout: float = Field(default=60.0, description="Seconds per HTTP attempt.")
    max_retries: int = Field(default=5, description="Retries after the first attempt.")
    truncate: bool | None = Field(
        default=None, description="Ask the endpoint to truncate long inputs."
    )
    normalize: bool | None = Field(
        default=None, description="Ask the endpoint to L2-normalise vectors."
    )
    prompt_name: str | None = Field(
        default=None, description="The endpoint's prompt for documents."
    )
    query_prompt_name: str | None = Field(
        default=None, description="The endpoint's prompt for queries."
    )
    truncation_direction: Literal["Right", "Left"] | None = Field(
        default=None, description="Which end truncate cuts."
    )
    scale_up_timeout: float | None = Field(default=None, description="Sent as X-Scale-Up-Timeout.")

    _client: EmbeddingClient = PrivateAttr()
    _query_client: EmbeddingClient = PrivateAttr()

    @model_validator(mode="after")
    def _make_clients(self) -> Self:
        if not self.url:
            raise ValueError("url is required: pass url= or set HF_ENDPOINT_URL")
        if self.chunking_settings is not None:
            self.chunking_settings = ChunkingSettings.coerce(self.chunking_settings).to_dict()
        self._client, self._query_client = adapter_clients(self, self.batch_size)
        return self

    @classmethod
    def from_endpoint(
        cls, endpoints: InferenceEndpoints, inference_id: str, **kwargs: Any
    ) -> HFEndpointEmbeddings:
        """From an endpoint registered in an ``InferenceEndpoints`` registry."""
        return cls.from_inference_config(endpoints.config(inference_id), **kwargs)

    @classmethod
    def from_inference_config(
        cls, body: Mapping[str, Any] | InferenceConfig, **kwargs: Any
    ) -> HFEndpointEmbeddings:
        """From an Elasticsearch ``PUT _inference/text_embedding/<id>`` body."""
        return cls(**{**InferenceConfig.coerce(body).adapter_fields(), **kwargs})

    def embed_documents(self, texts: list[str]) -> list[list[float]]:
        if self.chunking_settings is None:
            return list(self._client.embed(texts))
        return self._client.embed_pooled(texts)

    def embed_query(self, text: str) -> list[float]:
        return self._query_client.embed([text])[0]

    async def aembed_documents(self, texts: list[str]) -> list[list[float]]:
        if self.chunking_settings is None:
            return list(await self._client.aembed(texts))
        return await self._client.aembed_pooled(texts)

    async def aembed_query(self, text: str) -> list[float]:
        return (await self._query_client.aembed([text]))[0]

    def embed_chunks(
        self, texts: list[str], chunking_settings: Mapping[str, Any] | None = None
    ) -> list[list[EmbeddedChunk]]:
        """Every chunk of every text, with ``text``, ``start``, ``end`` and ``embedding``."""
        return self._client.embed_chunks(texts, chunking_settings)

    async def aembed_chunks(
        self, texts: list[str], chunking_settings: Mapping[str, Any] | None = None
    ) -> list[list[EmbeddedChunk]]:
        return await self._client.aembed_chunks(texts, chunking_settings)

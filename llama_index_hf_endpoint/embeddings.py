"""``HFEndpointEmbedding``: LlamaIndex embeddings from a Hugging Face Inference Endpoint."""

from __future__ import annotations

import contextvars
import os
from collections.abc import Mapping
from typing import Any, Literal

from llama_index.core.base.embeddings.base import BaseEmbedding
from llama_index.core.bridge.pydantic import Field, PrivateAttr, SecretStr, model_validator
from typing_extensions import Self

from hf_endpoint import (
    ChunkingSettings,
    EmbeddedChunk,
    EmbeddingClient,
    InferenceConfig,
    InferenceEndpoints,
)
from hf_endpoint.client import adapter_clients

__all__ = ["HFEndpointEmbedding"]

# Set while a LlamaIndex batch call runs whose rate-limiter token BaseEmbedding
# already took: the first HTTP attempt of that call does not take another.
_prepaid: contextvars.ContextVar[bool] = contextvars.ContextVar(
    "hf_endpoint_prepaid", default=False
)


class _RateLimiterGate:
    """Passes ``BaseEmbedding.rate_limiter`` before every HTTP attempt of the client."""

    def __init__(self, model: HFEndpointEmbedding) -> None:
        self.model = model

    def _limiter(self) -> Any:
        """The model's rate limiter, unless BaseEmbedding already took this attempt's token."""
        if _prepaid.get():
            _prepaid.set(False)
            return None
        return self.model.rate_limiter

    def acquire(self) -> None:
        limiter = self._limiter()
        if limiter is not None:
            limiter.acquire()

    async def async_acquire(self) -> None:
        limiter = self._limiter()
        if limiter is not None:
            await limiter.async_acquire()


class HFEndpointEmbedding(BaseEmbedding):
    """Embeddings from a Hugging Face Inference Endpoint, with Elasticsearch's
    ``hugging_face`` semantics: one HTTP request per batch, a client-side rate
    limit, retries, and (with ``chunking_settings``) Elasticsearch's chunking,
    each text then getting its chunks' length-weighted, L2-normalised mean.

    ``BaseEmbedding.rate_limiter``, when set, is honoured for every HTTP
    request (retries included), on top of the endpoint's own ``rate_limit``.
    ``to_dict()`` leaves the key out; ``from_dict`` takes it from ``HF_TOKEN``
    (or ``HUGGINGFACEHUB_API_TOKEN``) again. Sync methods run no event loop, so
    they work inside Jupyter.

    >>> embed_model = HFEndpointEmbedding(url="https://xyz.endpoints.huggingface.cloud")  # doctest: +SKIP
    """

    url: str = Field(
        default_factory=lambda: os.environ.get("HF_ENDPOINT_URL", ""),
        description="The endpoint URL.",
    )
    api_key: SecretStr | None = Field(
        default=None,
        exclude=True,
        description="The access token; from HF_TOKEN or HUGGINGFACEHUB_API_TOKEN.",
    )
    model_name: str = Field(
        default="", description="A name for the model behind the endpoint (the URL by default)."
    )
    embed_batch_size: int = Field(default=20, gt=0, description="Inputs per request.")
    rate_limit: int | dict[str, int] | None = Field(
        default=None,
        description='The endpoint\'s requests per minute, or {"requests_per_minute": N}; default 3000.',
    )
    chunking_settings: dict[str, Any] | None = Field(
        default=None, description="Elasticsearch chunking_settings; None sends texts whole."
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
        if self.api_key is None:
            token = os.environ.get("HF_TOKEN") or os.environ.get("HUGGINGFACEHUB_API_TOKEN")
            self.api_key = SecretStr(token) if token else None
        if self.chunking_settings is not None:
            self.chunking_settings = ChunkingSettings.coerce(self.chunking_settings).to_dict()
        if not self.model_name:
            self.model_name = self.url
        self._client, self._query_client = adapter_clients(self, self.embed_batch_size)
        gate = _RateLimiterGate(self)
        for client in {id(c): c for c in (self._client, self._query_client)}.values():
            client.gates.append(gate)
        return self

    @classmethod
    def from_endpoint(
        cls, endpoints: InferenceEndpoints, inference_id: str, **kwargs: Any
    ) -> HFEndpointEmbedding:
        """From an endpoint registered in an ``InferenceEndpoints`` registry."""
        return cls.from_inference_config(endpoints.config(inference_id), **kwargs)

    @classmethod
    def class_name(cls) -> str:
        return "HFEndpointEmbedding"

    @classmethod
    def from_inference_config(
        cls, body: Mapping[str, Any] | InferenceConfig, **kwargs: Any
    ) -> HFEndpointEmbedding:
        """From an Elasticsearch ``PUT _inference/text_embedding/<id>`` body."""
        return cls(**{**InferenceConfig.coerce(body).adapter_fields(), **kwargs})

    def _prepaid(self) -> contextvars.Token[bool]:
        return _prepaid.set(self.rate_limiter is not None)

    def _embed(self, client: EmbeddingClient, texts: list[str]) -> list[list[float]]:
        token = self._prepaid()
        try:
            if self.chunking_settings is None:
                return list(client.embed(texts))
            return client.embed_pooled(texts)
        finally:
            _prepaid.reset(token)

    async def _aembed(self, client: EmbeddingClient, texts: list[str]) -> list[list[float]]:
        token = self._prepaid()
        try:
            if self.chunking_settings is None:
                return list(await client.aembed(texts))
            return await client.aembed_pooled(texts)
        finally:
            _prepaid.reset(token)

    def _get_query_embedding(self, query: str) -> list[float]:
        return self._embed(self._query_client, [query])[0]

    async def _aget_query_embedding(self, query: str) -> list[float]:
        return (await self._aembed(self._query_client, [query]))[0]

    def _get_text_embedding(self, text: str) -> list[float]:
        return self._embed(self._client, [text])[0]

    async def _aget_text_embedding(self, text: str) -> list[float]:
        return (await self._aembed(self._client, [text]))[0]

    def _get_text_embeddings(self, texts: list[str]) -> list[list[float]]:
        return self._embed(self._client, texts)

    async def _aget_text_embeddings(self, texts: list[str]) -> list[list[float]]:
        return await self._aembed(self._client, texts)

    def embed_chunks(
        self, texts: list[str], chunking_settings: Mapping[str, Any] | None = None
    ) -> list[list[EmbeddedChunk]]:
        """Every chunk of every text, with ``text``, ``start``, ``end`` and ``embedding``."""
        return self._client.embed_chunks(texts, chunking_settings)

    async def aembed_chunks(
        self, texts: list[str], chunking_settings: Mapping[str, Any] | None = None
    ) -> list[list[EmbeddedChunk]]:
        return await self._client.aembed_chunks(texts, chunking_settings)

"""``EndpointAdapter``: what the LangChain and LlamaIndex embeddings classes share.

Both adapters are pydantic models; this base carries their common fields (with
their documentation and defaults), builds their clients, reads a PUT body,
chooses between whole texts and pooled chunks, and keeps the key out of every
error. An adapter adds only what its framework asks for. The core still
imports neither framework.
"""

from __future__ import annotations

import os
import threading
from collections.abc import Mapping
from typing import Any, Literal

from pydantic import BaseModel, Field, PrivateAttr, SecretStr, ValidationError, model_validator
from typing_extensions import Self

from ._auth import clean_api_key, find_api_key
from ._drivers import RequestGate
from .client import EmbeddedChunk, EmbeddingClient
from .errors import ConfigError
from .registry import InferenceEndpoints
from .retry import RetryPolicy
from .settings import ChunkingSettings, InferenceConfig

__all__ = ["EndpointAdapter"]

_clients_lock = threading.Lock()


def _problems(exc: ValidationError) -> list[str]:
    """pydantic's errors without the input values (which may hold the key)."""
    out: list[str] = []
    for error in exc.errors(include_input=False, include_url=False):
        cause = (error.get("ctx") or {}).get("error")
        if isinstance(cause, ConfigError):
            out.extend(cause.errors)
            continue
        where = ".".join(str(part) for part in error["loc"])
        message = error["msg"].removeprefix("Value error, ")
        out.append(f"[{where}] {message}" if where else message)
    return out


class EndpointAdapter(BaseModel):
    """The fields and behaviour both adapters share (see their classes for use)."""

    url: str = Field(
        default_factory=lambda: os.environ.get("HF_ENDPOINT_URL", ""),
        description="The endpoint URL; from HF_ENDPOINT_URL when not given.",
    )
    api_key: SecretStr | None = Field(
        default_factory=find_api_key,
        exclude=True,
        description=(
            "The access token. Not given: HF_TOKEN, HUGGINGFACEHUB_API_TOKEN, then the token "
            "file of `hf auth login`. Never serialised, shown or logged."
        ),
    )
    rate_limit: int | dict[str, int] | None = Field(
        default=None,
        description='Requests per minute, or {"requests_per_minute": N}; default 3000.',
    )
    chunking_settings: dict[str, Any] | None = Field(
        default=None,
        description=(
            "Elasticsearch chunking_settings: each text is chunked and gets its chunks' "
            "length-weighted mean vector. {} is Elasticsearch's default fitted to the endpoint; "
            "None sends texts whole."
        ),
    )
    max_concurrency: int = Field(default=4, description="Requests in flight at once.")
    timeout: float = Field(default=60.0, description="Seconds per HTTP attempt.")
    max_retries: int | None = Field(
        default=None, description="Retries after the first attempt (default 5)."
    )
    retry_policy: RetryPolicy | None = Field(
        default=None, description="The whole retry policy, instead of max_retries."
    )
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

    _clients: tuple[EmbeddingClient, EmbeddingClient] | None = PrivateAttr(default=None)

    def __init__(self, /, **data: Any) -> None:
        try:
            super().__init__(**data)
        except ValidationError as exc:
            raise ConfigError(_problems(exc)) from None

    @model_validator(mode="after")
    def _check_options(self) -> Self:
        if not self.url:
            raise ConfigError("[url] is required: pass url= or set HF_ENDPOINT_URL")
        self.api_key = clean_api_key(self.api_key)
        if self.chunking_settings:
            self.chunking_settings = ChunkingSettings.coerce(self.chunking_settings).to_dict()
        self._build(self.prompt_name).close()  # every option checked now, not at first use
        return self

    def _batch_size(self) -> int:
        raise NotImplementedError

    def _build(self, prompt_name: str | None) -> EmbeddingClient:
        return EmbeddingClient(
            self.url,
            self.api_key,
            rate_limit=self.rate_limit,
            batch_size=self._batch_size(),
            max_concurrency=self.max_concurrency,
            timeout=self.timeout,
            max_retries=self.max_retries,
            retry_policy=self.retry_policy,
            truncate=self.truncate,
            normalize=self.normalize,
            prompt_name=prompt_name,
            truncation_direction=self.truncation_direction,
            chunking_settings=self.chunking_settings or None,
            scale_up_timeout=self.scale_up_timeout,
        )

    @property
    def clients(self) -> tuple[EmbeddingClient, EmbeddingClient]:
        """The clients for documents and for queries (one and the same when the prompts agree)."""
        with _clients_lock:
            if self._clients is None:
                documents = self._build(self.prompt_name)
                queries = (
                    documents
                    if self.query_prompt_name == self.prompt_name
                    else self._build(self.query_prompt_name)
                )
                self._clients = (documents, queries)
            return self._clients

    def __getstate__(self) -> dict[str, Any]:
        # Clients hold pools and locks: the other side builds its own from the fields.
        state: dict[str, Any] = super().__getstate__()
        private = state.get("__pydantic_private__")
        if private:
            state["__pydantic_private__"] = {**private, "_clients": None}
        return state

    @classmethod
    def from_endpoint(cls, endpoints: InferenceEndpoints, inference_id: str, **kwargs: Any) -> Self:
        """From an endpoint registered in an ``InferenceEndpoints`` registry."""
        return cls.from_inference_config(endpoints.config(inference_id), **kwargs)

    @classmethod
    def from_inference_config(
        cls, body: Mapping[str, Any] | InferenceConfig, **kwargs: Any
    ) -> Self:
        """From an Elasticsearch ``PUT _inference/text_embedding/<id>`` body.

        Without ``chunking_settings`` in the body, texts are chunked with
        Elasticsearch's default fitted to the endpoint, as Elasticsearch chunks them.
        """
        return cls(**{**InferenceConfig.coerce(body).adapter_fields(), **kwargs})

    def _embed_texts(
        self, texts: list[str], gate: RequestGate | None = None, query: bool = False
    ) -> list[list[float]]:
        client = self.clients[1 if query else 0]
        if self.chunking_settings is None or query:
            return list(client.embed(texts, gate=gate))
        return client.embed_pooled(texts, gate=gate)

    async def _aembed_texts(
        self, texts: list[str], gate: RequestGate | None = None, query: bool = False
    ) -> list[list[float]]:
        client = self.clients[1 if query else 0]
        if self.chunking_settings is None or query:
            return list(await client.aembed(texts, gate=gate))
        return await client.aembed_pooled(texts, gate=gate)

    def embed_chunks(
        self, texts: list[str], chunking_settings: Mapping[str, Any] | None = None
    ) -> list[list[EmbeddedChunk]]:
        """Every chunk of every text, with ``text``, ``start``, ``end`` and ``embedding``."""
        return self.clients[0].embed_chunks(texts, chunking_settings)

    async def aembed_chunks(
        self, texts: list[str], chunking_settings: Mapping[str, Any] | None = None
    ) -> list[list[EmbeddedChunk]]:
        """``embed_chunks`` for async callers."""
        return await self.clients[0].aembed_chunks(texts, chunking_settings)

    def close(self) -> None:
        """Close the clients' connection pools and threads."""
        if self._clients is not None:
            for client in set(self._clients):
                client.close()

    async def aclose(self) -> None:
        """Close this event loop's connection pools, and the sync ones."""
        if self._clients is not None:
            for client in set(self._clients):
                await client.aclose()

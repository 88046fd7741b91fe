"""The adapters' bases: what the LangChain and LlamaIndex classes share.

Every adapter is a pydantic model. ``AdapterBase`` carries the fields all of
them have (the endpoint, the key, the ``http_client``), builds and closes their
clients, reads a PUT body, and keeps the key out of every error and every dump.
``EndpointAdapter`` has a field for every option ``EmbeddingClient`` takes and
``RerankAdapter`` one for every option of ``RerankClient``: written from their
declaration (``_options``) by ``python -m hf_endpoint.client._keywords``, each with
the declared type, default and description. ``EndpointAdapter`` adds what both
embeddings classes share (the chunking of whole texts, a prompt for queries, pooled
chunks), ``RerankAdapter`` what both rerank classes share (the ranking). An adapter
adds only what its framework asks for. The core still imports neither framework.
"""

from __future__ import annotations

import os
import threading
from collections.abc import Mapping
from typing import Any, ClassVar, Literal, cast

import httpx
from pydantic import (
    BaseModel,
    Field,
    InstanceOf,
    PrivateAttr,
    SecretStr,
    ValidationError,
    model_validator,
)
from pydantic.json_schema import SkipJsonSchema
from typing_extensions import Self

from .client._base import BaseClient, refuse_to_pickle
from .client._drivers import RequestGate
from .client._embedding import EmbeddedChunk, EmbeddingClient
from .client._options import EMBED, RERANK, RERANK_BATCH_SIZE, declared
from .client.rerank import RerankClient, RerankResult
from .client.retry import RetryPolicy
from .config._auth import clean_api_key, find_api_key
from .config.settings import ChunkingSettings, InferenceConfig
from .errors import ConfigError
from .registry import InferenceEndpoints
from .remote import RemoteInferenceEndpoints, Wire

__all__ = ["AdapterBase", "EndpointAdapter", "RerankAdapter"]

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


def declared_field(name: str) -> Any:
    """The pydantic field of option ``name``: its declared default and docstring."""
    spec = next(s for s in declared() if s.name == name)
    return Field(default=spec.default, description=spec.doc)


class AdapterBase(BaseModel):
    """The fields and behaviour every adapter shares (see the adapters for use)."""

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
    http_client: SkipJsonSchema[
        InstanceOf[httpx.Client] | InstanceOf[httpx.BaseTransport] | None
    ] = Field(
        default=None,
        exclude=True,
        description=(
            "An httpx.Client every request goes through, or an httpx.BaseTransport under the "
            "clients' own; never closed here: the caller closes it. Not serialised; an "
            "adapter given an httpx.Client does not pickle."
        ),
    )

    # Every option both clients take, written from the declaration (``_keywords``): type
    # checkers read pydantic fields from the source; default and description are read
    # from the declaration at import.
    # -- from the declaration: adapter fields both --
    rate_limit: int | dict[str, int] | None = declared_field("rate_limit")
    max_concurrency: int = declared_field("max_concurrency")
    timeout: float = declared_field("timeout")
    max_retries: int | None = declared_field("max_retries")
    retry_policy: RetryPolicy | None = declared_field("retry_policy")
    truncate: bool | None = declared_field("truncate")
    truncation_direction: Literal["Right", "Left"] | None = declared_field("truncation_direction")
    scale_up_timeout: float | None = declared_field("scale_up_timeout")
    discover_limits: bool = declared_field("discover_limits")
    max_body_bytes: int = declared_field("max_body_bytes")
    max_response_bytes: int | None = declared_field("max_response_bytes")
    protocol: Literal["auto", "tei", "openai"] = declared_field("protocol")
    model: str | None = declared_field("model")
    # -- end: adapter fields both --

    # The Elasticsearch task type of the endpoints this adapter serves, and its client.
    _task_type: ClassVar[str] = "text_embedding"
    _client_kind: ClassVar[str] = EMBED
    _clients: tuple[BaseClient, ...] | None = PrivateAttr(default=None)
    # Set by from_endpoint on a RemoteInferenceEndpoints: the clients speak the _inference API.
    _wire: Wire | None = PrivateAttr(default=None)

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
        self._normalise()
        for client in self._make_clients():  # every option checked now, not at first use
            client.close()
        return self

    def _normalise(self) -> None:
        """Bring the adapter's own fields to their canonical form (after validation)."""

    def _make_clients(self) -> tuple[BaseClient, ...]:
        raise NotImplementedError

    def _batch_size(self) -> int:
        raise NotImplementedError

    def _client_options(self) -> dict[str, Any]:
        """The options of every client an adapter builds: its declared fields (see
        ``option_fields``), its batch size and its ``http_client``."""
        declared_here = [s.name for s in declared(self._client_kind) if s.adapter]
        return {
            **{name: getattr(self, name) for name in declared_here},
            "batch_size": self._batch_size(),
            "http_client": self.http_client,
        }

    def _built(self) -> tuple[BaseClient, ...]:
        """The adapter's clients, built on first use."""
        with _clients_lock:
            if self._clients is None:
                self._clients = self._make_clients()
            return self._clients

    def __getstate__(self) -> dict[str, Any]:
        # Clients hold pools and locks: the other side builds its own from the fields.
        refuse_to_pickle(self.http_client, type(self).__name__)
        state: dict[str, Any] = super().__getstate__()
        private = state.get("__pydantic_private__")
        if private:
            state["__pydantic_private__"] = {**private, "_clients": None}
        return state

    @classmethod
    def from_endpoint(
        cls,
        endpoints: InferenceEndpoints | RemoteInferenceEndpoints,
        inference_id: str,
        **kwargs: Any,
    ) -> Self:
        """From an endpoint of an ``InferenceEndpoints`` registry, or of an ``_inference``
        API (``InferenceEndpoints.connect``): then every request goes through the service,
        which holds the Hugging Face key, and chunking follows the endpoint's GET view."""
        if isinstance(endpoints, RemoteInferenceEndpoints):
            fields, wire = endpoints.adapter_source(inference_id, cls._task_type)
            present = {k: v for k, v in fields.items() if v is not None or k == "api_key"}
            adapter = cls(**{**present, **kwargs})
            adapter._wire = wire
            return adapter
        return cls.from_inference_config(endpoints.config(inference_id), **kwargs)

    @classmethod
    def from_inference_config(
        cls, body: Mapping[str, Any] | InferenceConfig, **kwargs: Any
    ) -> Self:
        """From an Elasticsearch ``PUT _inference/<task_type>/<id>`` body of the adapter's
        task type (``text_embedding`` for embeddings, ``rerank`` for rerankers).

        Embeddings: without ``chunking_settings`` in the body, texts are chunked with
        Elasticsearch's default fitted to the endpoint, as Elasticsearch chunks them.
        Rerank: the body's ``top_n`` becomes the adapter's.
        """
        config = InferenceConfig.coerce(body, cls._task_type)
        fields = {k: v for k, v in config.adapter_fields().items() if v is not None}
        return cls(**{**fields, **kwargs})

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


class EndpointAdapter(AdapterBase):
    """The fields and behaviour both embeddings adapters share (see their classes for use)."""

    chunking_settings: dict[str, Any] | None = Field(
        default=None,
        description=(
            "Elasticsearch chunking_settings: each text is chunked and gets its chunks' "
            "length-weighted mean vector. {} is Elasticsearch's default fitted to the endpoint; "
            "None sends texts whole."
        ),
    )
    query_prompt_name: str | None = Field(
        default=None, description="The endpoint's prompt for queries."
    )
    # -- from the declaration: adapter fields embed --
    normalize: bool | None = declared_field("normalize")
    prompt_name: str | None = declared_field("prompt_name")
    max_input_tokens: int | None = declared_field("max_input_tokens")
    dimensions: int | None = declared_field("dimensions")
    encoding_format: Literal["base64", "float"] = declared_field("encoding_format")
    document_prefix: str | None = declared_field("document_prefix")
    query_prefix: str | None = declared_field("query_prefix")
    # -- end: adapter fields embed --

    def _normalise(self) -> None:
        if self.chunking_settings:
            self.chunking_settings = ChunkingSettings.coerce(self.chunking_settings).to_dict()

    def _build(self, prompt_name: str | None) -> EmbeddingClient:
        options = {
            **self._client_options(),
            "prompt_name": prompt_name,
            "chunking_settings": self.chunking_settings or None,
        }
        if self._wire is not None:
            return self._wire.embedding_client(self.url, self.api_key, **options)
        return EmbeddingClient(self.url, self.api_key, **options)

    def _make_clients(self) -> tuple[EmbeddingClient, EmbeddingClient]:
        documents = self._build(self.prompt_name)
        if self.query_prompt_name == self.prompt_name:
            return documents, documents
        return documents, self._build(self.query_prompt_name)

    @property
    def clients(self) -> tuple[EmbeddingClient, EmbeddingClient]:
        """The clients for documents and for queries (one and the same when the prompts agree)."""
        return cast(tuple[EmbeddingClient, EmbeddingClient], self._built())

    def _embed_texts(
        self, texts: list[str], gate: RequestGate | None = None, query: bool = False
    ) -> list[list[float]]:
        client = self.clients[1 if query else 0]
        if self.chunking_settings is None or query:
            return list(client.embed(texts, gate=gate, query=query))
        return client.embed_pooled(texts, gate=gate)

    async def _aembed_texts(
        self, texts: list[str], gate: RequestGate | None = None, query: bool = False
    ) -> list[list[float]]:
        client = self.clients[1 if query else 0]
        if self.chunking_settings is None or query:
            return list(await client.aembed(texts, gate=gate, query=query))
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


class RerankAdapter(AdapterBase):
    """The fields and behaviour both rerank adapters share (see their classes for use)."""

    _task_type: ClassVar[str] = "rerank"
    _client_kind: ClassVar[str] = RERANK

    batch_size: int = Field(
        default=RERANK_BATCH_SIZE,
        description="Documents per request (lowered to the endpoint's limit).",
    )
    # -- from the declaration: adapter fields rerank --
    raw_scores: bool | None = declared_field("raw_scores")
    top_n: int | None = declared_field("top_n")
    return_documents: bool | None = declared_field("return_documents")
    # -- end: adapter fields rerank --

    def _batch_size(self) -> int:
        return self.batch_size

    def _make_clients(self) -> tuple[RerankClient]:
        if self._wire is not None:
            return (self._wire.rerank_client(self.url, self.api_key, **self._client_options()),)
        return (RerankClient(self.url, self.api_key, **self._client_options()),)

    @property
    def client(self) -> RerankClient:
        """The ``RerankClient`` every call goes through."""
        return cast(RerankClient, self._built()[0])

    def _rerank(
        self, query: str, texts: list[str], gate: RequestGate | None = None
    ) -> RerankResult:
        return self.client.rerank(query, texts, gate=gate)

    async def _arerank(
        self, query: str, texts: list[str], gate: RequestGate | None = None
    ) -> RerankResult:
        return await self.client.arerank(query, texts, gate=gate)

"""``HFEndpointEmbedding``: LlamaIndex embeddings from a Hugging Face Inference Endpoint."""

from __future__ import annotations

import threading
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import llama_index.core.instrumentation as instrument
from llama_index.core.base.embeddings.base import BaseEmbedding, Embedding
from llama_index.core.bridge.pydantic import Field, model_validator
from llama_index.core.callbacks import CBEventType, EventPayload
from llama_index.core.instrumentation.events.embedding import (
    EmbeddingEndEvent,
    EmbeddingStartEvent,
)
from typing_extensions import Self

from hf_endpoint._adapter import EndpointAdapter
from hf_endpoint.client._options import ClientOptions

__all__ = ["HFEndpointEmbedding"]

dispatcher = instrument.get_dispatcher(__name__)  # type: ignore[attr-defined]


class _Prepaid:
    """The call's rate limiter for every HTTP attempt but the first, whose token
    ``BaseEmbedding`` took before calling the adapter."""

    def __init__(self, limiter: Any) -> None:
        self.limiter = limiter
        self.free = 1
        self.lock = threading.Lock()

    def _paid(self) -> bool:
        with self.lock:
            if self.free:
                self.free -= 1
                return True
            return False

    def acquire(self) -> None:
        if not self._paid():
            self.limiter.acquire()

    async def async_acquire(self) -> None:
        if not self._paid():
            await self.limiter.async_acquire()


class HFEndpointEmbedding(EndpointAdapter, BaseEmbedding):
    """Embeddings from a Hugging Face Inference Endpoint, with Elasticsearch's
    ``hugging_face`` semantics: batching, a client-side rate limit, retries, and
    (with ``chunking_settings``) Elasticsearch's chunking, each text then getting
    its chunks' length-weighted, L2-normalised mean.

    ``get_text_embedding_batch`` (what ``IngestionPipeline`` and the indexes call)
    hands the whole call to the client: ``embed_batch_size`` inputs per request,
    ``max_concurrency`` requests in flight, sync and async alike.
    ``BaseEmbedding.rate_limiter``, when set, takes one token per HTTP attempt,
    retries included. ``to_dict()`` leaves the key out (``from_dict`` looks it
    up again, as the constructor does); pickling keeps it, so
    ``IngestionPipeline.run(num_workers=N)`` works. Sync methods run no event
    loop, so they work inside Jupyter.

    For your endpoint, ``url="https://<name>.endpoints.huggingface.cloud"``; here the
    local one:

    >>> from hf_endpoint.server import LocalEndpoint
    >>> with LocalEndpoint("hash") as endpoint:
    ...     embed_model = HFEndpointEmbedding(url=endpoint.url, api_key=None)
    ...     vectors = embed_model.get_text_embedding_batch(["first", "second"])
    >>> len(vectors), len(vectors[0])
    (2, 384)
    """

    model_name: str = Field(
        default="", description="A name for the model behind the endpoint (the URL by default)."
    )
    embed_batch_size: int = Field(
        default=ClientOptions.batch_size, gt=0, description="Inputs per request."
    )

    @model_validator(mode="after")
    def _name_model(self) -> Self:
        if not self.model_name:
            self.model_name = self.url
        return self

    @classmethod
    def class_name(cls) -> str:
        return "HFEndpointEmbedding"

    def _batch_size(self) -> int:
        return self.embed_batch_size

    def _prepaid(self) -> _Prepaid | None:
        return None if self.rate_limiter is None else _Prepaid(self.rate_limiter)

    # BaseEmbedding takes a limiter token, then calls these for one text.

    def _get_query_embedding(self, query: str) -> Embedding:
        return self._embed_texts([query], self._prepaid(), query=True)[0]

    async def _aget_query_embedding(self, query: str) -> Embedding:
        return (await self._aembed_texts([query], self._prepaid(), query=True))[0]

    def _get_text_embedding(self, text: str) -> Embedding:
        return self._embed_texts([text], self._prepaid())[0]

    async def _aget_text_embedding(self, text: str) -> Embedding:
        return (await self._aembed_texts([text], self._prepaid()))[0]

    def _get_text_embeddings(self, texts: list[str]) -> list[Embedding]:
        return self._embed_texts(texts, self.rate_limiter)

    async def _aget_text_embeddings(self, texts: list[str]) -> list[Embedding]:
        return await self._aembed_texts(texts, self.rate_limiter)

    # The batch entry points: the whole call goes to the client at once.

    def _misses(self, texts: list[str]) -> tuple[list[Embedding | None], list[int]]:
        found: list[Embedding | None] = [None] * len(texts)
        if self.embeddings_cache is not None:
            for i, text in enumerate(texts):
                cached = self.embeddings_cache.get(key=text, collection="embeddings")
                if cached:
                    found[i] = next(iter(cached.values()))
        return found, [i for i, v in enumerate(found) if v is None]

    def _fill(
        self,
        texts: list[str],
        found: list[Embedding | None],
        misses: list[int],
        new: list[Embedding],
    ) -> list[Embedding]:
        for i, vector in zip(misses, new):
            found[i] = vector
            if self.embeddings_cache is not None:
                self.embeddings_cache.put(
                    key=texts[i], val={str(uuid.uuid4()): vector}, collection="embeddings"
                )
        return [v for v in found if v is not None]

    @contextmanager
    def _event(self, texts: list[str]) -> Iterator[list[Embedding]]:
        """One embedding event around a call, as LlamaIndex's own embeddings report it; an
        error ends the event too (with the error), so no trace is left open behind it."""
        model_dict = self.to_payload()
        dispatcher.event(EmbeddingStartEvent(model_dict=model_dict))
        payload: dict[str, Any] = {EventPayload.SERIALIZED: model_dict}
        with self.callback_manager.event(CBEventType.EMBEDDING, payload=payload) as event:
            vectors: list[Embedding] = []
            yield vectors
            event.on_end(payload={EventPayload.CHUNKS: texts, EventPayload.EMBEDDINGS: vectors})
        dispatcher.event(EmbeddingEndEvent(chunks=texts, embeddings=vectors))

    @dispatcher.span
    def get_text_embedding_batch(
        self, texts: list[str], show_progress: bool = False, **kwargs: Any
    ) -> list[Embedding]:
        """Embed ``texts`` in one client call: batches, concurrency and rate limit apply."""
        if not texts:
            return []
        with self._event(texts) as vectors:
            found, misses = self._misses(texts)
            new = self._embed_texts([texts[i] for i in misses], self.rate_limiter) if misses else []
            vectors += self._fill(texts, found, misses, new)
        return vectors

    @dispatcher.span
    async def aget_text_embedding_batch(
        self, texts: list[str], show_progress: bool = False, **kwargs: Any
    ) -> list[Embedding]:
        """``get_text_embedding_batch`` for async callers."""
        if not texts:
            return []
        with self._event(texts) as vectors:
            found, misses = self._misses(texts)
            new = (
                await self._aembed_texts([texts[i] for i in misses], self.rate_limiter)
                if misses
                else []
            )
            vectors += self._fill(texts, found, misses, new)
        return vectors

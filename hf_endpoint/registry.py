"""``InferenceEndpoints``: Elasticsearch's ``_inference`` API, in process.

Paste the body you would ``PUT _inference/text_embedding/<id>`` (or
``_inference/rerank/<id>``); get it back in Elasticsearch's read view (never
with the API key); run inference on it::

    endpoints = InferenceEndpoints()
    endpoints.put("text_embedding", "hugging-face-embeddings", {
        "service": "hugging_face",
        "service_settings": {"api_key": "hf_...", "url": "https://xyz.endpoints.huggingface.cloud"},
    })
    endpoints.inference("hugging-face-embeddings", ["some text"])
    # {"text_embedding": [{"embedding": [...]}]}

    endpoints.put("rerank", "hugging-face-rerank", {
        "service": "hugging_face",
        "service_settings": {"api_key": "hf_...", "url": "https://abc.endpoints.huggingface.cloud"},
        "task_settings": {"top_n": 3, "return_documents": True},
    })
    endpoints.inference("hugging-face-rerank", ["a text", "another"], query="a question")
    # {"rerank": [{"index": 1, "relevance_score": 0.93, "text": "another"}, ...]}
"""

from __future__ import annotations

import re
import threading
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, replace
from typing import TYPE_CHECKING, Any, TypedDict

from .client._base import BaseClient
from .client._embedding import EmbeddedChunk, EmbeddingClient
from .client.rerank import RerankClient
from .config._validation import Problems, show
from .config.settings import InferenceConfig, RerankTaskSettings, parse_task_type
from .errors import ConfigError

if TYPE_CHECKING:
    from typing_extensions import Unpack

    from .remote import RemoteInferenceEndpoints

__all__ = ["InferenceEndpoints", "InferenceOptions", "InferenceRequest"]

_ID = re.compile(r"[a-z0-9](?:[a-z0-9_\-.]*[a-z0-9])?")


@dataclass(frozen=True)
class _Endpoint:
    inference_id: str
    task_type: str
    config: InferenceConfig

    def view(self) -> dict[str, Any]:
        return {
            "inference_id": self.inference_id,
            "task_type": self.task_type,
            **self.config.to_dict(),
        }


class InferenceOptions(TypedDict, total=False):
    """The keyword arguments of ``inference`` and ``ainference``, local and remote.

    ``query`` (rerank, required there); ``task_settings``, ``top_n`` and
    ``return_documents`` (rerank: they override the endpoint's task settings for this
    request); ``chunk`` (``text_embedding``: see ``InferenceEndpoints.inference``).
    """

    query: str | None
    task_settings: Mapping[str, Any] | None
    top_n: int | None
    return_documents: bool | None
    chunk: bool


@dataclass(frozen=True)
class InferenceRequest:
    """One inference request: what ``POST _inference/{id}`` carries."""

    input: str | Sequence[str]
    query: str | None = None
    task_settings: Mapping[str, Any] | None = None
    top_n: int | None = None
    return_documents: bool | None = None
    chunk: bool = False

    @classmethod
    def of(cls, input: str | Sequence[str], options: Mapping[str, Any]) -> InferenceRequest:
        """The request of ``inference(id, input, **options)``; an unknown keyword is a
        ``TypeError``, as Python reports one."""
        for name in options:
            if name not in InferenceOptions.__annotations__:
                raise TypeError(f"inference() got an unexpected keyword argument {name!r}")
        return cls(input, **options)

    @property
    def texts(self) -> list[str]:
        return [self.input] if isinstance(self.input, str) else list(self.input)

    def body(self) -> dict[str, Any]:
        """The JSON body: ``input`` and whatever else was given (``chunk`` only when asked:
        Elasticsearch's own API has no such field)."""
        body: dict[str, Any] = {"input": self.input if isinstance(self.input, str) else self.texts}
        for name, value in (
            ("query", self.query),
            ("task_settings", dict(self.task_settings) if self.task_settings else None),
            ("top_n", self.top_n),
            ("return_documents", self.return_documents),
            ("chunk", self.chunk or None),
        ):
            if value is not None:
                body[name] = value
        return body


def _chunked_answer(results: Sequence[Sequence[EmbeddedChunk]]) -> dict[str, Any]:
    """``embed_chunks``' results in the shape of a chunked inference answer."""
    return {
        "chunked_inference_service_result": [
            [
                {
                    "chunk_text": c.text,
                    "text_offset": {"start": c.start, "end": c.end},
                    "embedding": c.embedding,
                }
                for c in chunks
            ]
            for chunks in results
        ]
    }


class InferenceEndpoints:
    """An in-process registry of ``hugging_face`` inference endpoints, thread-safe.

    ``client_options`` are passed to every client it makes (``timeout``,
    ``max_retries``, ...): an ``EmbeddingClient`` for a ``text_embedding``
    endpoint, a ``RerankClient`` for a ``rerank`` one.
    """

    def __init__(self, **client_options: Any) -> None:
        self._endpoints: dict[str, _Endpoint] = {}
        self._clients: dict[str, BaseClient] = {}
        self._client_options = client_options
        self._lock = threading.Lock()

    def __repr__(self) -> str:
        return f"InferenceEndpoints({sorted(self._endpoints)})"

    @classmethod
    def connect(
        cls,
        url: str,
        *,
        api_key: str | tuple[str, str] | None = None,
        basic_auth: tuple[str, str] | None = None,
        **client_options: Any,
    ) -> RemoteInferenceEndpoints:
        """The same methods over the ``_inference`` API at ``url``: ``hf-endpoint
        inference-api``, or an Elasticsearch cluster's (see ``hf_endpoint.remote``).

        Against the service on a free port, with a local endpoint as the Hugging Face side:

        >>> import tempfile
        >>> from hf_endpoint.inference_api import InferenceAPI
        >>> from hf_endpoint.server import LocalEndpoint
        >>> body = {"service": "hugging_face", "service_settings": {"api_key": "hf_..."}}
        >>> with tempfile.TemporaryDirectory() as folder, LocalEndpoint("hash") as hf:
        ...     with InferenceAPI(store=f"{folder}/endpoints.sqlite3") as service:
        ...         endpoints = InferenceEndpoints.connect(service.url)
        ...         body["service_settings"]["url"] = hf.url
        ...         endpoints.put("text_embedding", "hugging-face-embeddings", body)["task_type"]
        ...         result = endpoints.inference("hugging-face-embeddings", "some text")
        'text_embedding'
        >>> len(result["text_embedding"][0]["embedding"])
        384
        """
        from .remote import RemoteInferenceEndpoints

        return RemoteInferenceEndpoints(
            url, api_key=api_key, basic_auth=basic_auth, **client_options
        )

    def put(
        self,
        task_type: str,
        inference_id: str,
        inference_config: Mapping[str, Any],
        *,
        validate: bool = True,
    ) -> dict[str, Any]:
        """Create an endpoint; return its read view.

        Every problem with the id, the task type and the body is reported in one
        ``ConfigError``. With ``validate`` (the default), one request with the
        input ``"how big"`` checks the endpoint, as Elasticsearch does: a
        ``text_embedding`` endpoint records ``dimensions`` from its answer, a
        ``rerank`` one is asked with the query ``"test query"``.
        """
        problems = Problems()
        task = None
        try:
            task = parse_task_type(task_type)
        except ConfigError as exc:
            problems.messages.extend(exc.errors)
        if (
            not isinstance(inference_id, str)
            or not _ID.fullmatch(inference_id)
            or inference_id == "_all"
        ):
            problems.add(
                f"Invalid inference_id [{show(inference_id)}]: use lowercase letters, digits, '_', '-' and '.', "
                "starting and ending with a letter or digit ('_all' is reserved)"
            )
        elif inference_id in self._endpoints:
            problems.add(f"Inference endpoint [{inference_id}] already exists")
        config = None
        try:
            config = InferenceConfig.from_dict(inference_config, task or "text_embedding")
        except ConfigError as exc:
            problems.messages.extend(exc.errors)
        except TypeError as exc:
            problems.add(str(exc))
        problems.raise_if_any()
        assert config is not None and task is not None
        endpoint = _Endpoint(inference_id, task, config)
        client = self._make_client(config)
        if validate and isinstance(client, RerankClient):
            client.rerank("test query", ["how big"])
        elif validate and isinstance(client, EmbeddingClient):
            vector = client.embed(["how big"])[0]
            settings = replace(config.service_settings, dimensions=len(vector))
            endpoint = replace(endpoint, config=replace(config, service_settings=settings))
        with self._lock:
            if inference_id in self._endpoints:
                client.close()
                raise ConfigError(f"Inference endpoint [{inference_id}] already exists")
            self._endpoints[inference_id] = endpoint
            self._clients[inference_id] = client
        return endpoint.view()

    def _make_client(self, config: InferenceConfig) -> BaseClient:
        if config.task_type == "rerank":
            return RerankClient.from_config(config, **self._client_options)
        return EmbeddingClient.from_config(config, **self._client_options)

    def _get(self, inference_id: str) -> _Endpoint:
        endpoint = self._endpoints.get(inference_id)
        if endpoint is None:
            raise ConfigError(f"Inference endpoint not found [{inference_id}]")
        return endpoint

    def get(self, inference_id: str | None = None) -> dict[str, Any]:
        """``{"endpoints": [...]}``: one endpoint's read view, or all of them (``None`` or ``"_all"``)."""
        if inference_id is None or inference_id == "_all":
            return {"endpoints": [self._endpoints[k].view() for k in sorted(self._endpoints)]}
        return {"endpoints": [self._get(inference_id).view()]}

    def config(self, inference_id: str) -> InferenceConfig:
        """The endpoint's configuration, key included, for building clients and adapters."""
        return self._get(inference_id).config

    def client(self, inference_id: str) -> BaseClient:
        """The endpoint's client: an ``EmbeddingClient`` or a ``RerankClient``."""
        self._get(inference_id)
        return self._clients[inference_id]

    def delete(self, inference_id: str) -> dict[str, bool]:
        """Remove an endpoint (to change its key: delete it and create it again)."""
        with self._lock:
            self._get(inference_id)
            del self._endpoints[inference_id]
            self._clients.pop(inference_id).close()
        return {"acknowledged": True}

    def _request(
        self, inference_id: str, request: InferenceRequest
    ) -> tuple[BaseClient, list[str], RerankTaskSettings]:
        """The client, the texts and (rerank) the task settings of one inference request,
        checked as Elasticsearch checks them."""
        client = self.client(inference_id)
        texts = request.texts
        query, task_settings, chunk = request.query, request.task_settings, request.chunk
        top_n, return_documents = request.top_n, request.return_documents
        if not isinstance(chunk, bool):
            raise ConfigError(f"[chunk] must be true or false, not {show(chunk)}")
        if chunk and isinstance(client, RerankClient):
            raise ConfigError("Field [chunk] cannot be specified for task type [rerank]")
        if not isinstance(client, RerankClient):
            for name, value in (("top_n", top_n), ("return_documents", return_documents)):
                if value is not None:
                    raise ConfigError(
                        f"Field [{name}] cannot be specified for task type [text_embedding]"
                    )
            if query is not None:
                raise ConfigError(
                    "Field [query] cannot be specified for task type [text_embedding]"
                )
            if task_settings:
                raise ConfigError(
                    f"Model configuration contains settings {list(task_settings)} unknown to "
                    "the [hugging_face] service"
                )
            return client, texts, RerankTaskSettings()
        if not texts:
            raise ConfigError("Field [input] cannot be an empty array")
        # Request task_settings override the endpoint's; top_n and return_documents
        # given beside them override both, as in Elasticsearch's rerank request.
        settings = client.task_settings.merged(RerankTaskSettings.from_dict(task_settings))
        return client, texts, settings.merged(RerankTaskSettings(top_n, return_documents))

    def inference(
        self, inference_id: str, input: str | Sequence[str], **options: Unpack[InferenceOptions]
    ) -> dict[str, Any]:
        """Run the endpoint on ``input``, shaped as Elasticsearch answers.

        ``text_embedding``: ``{"text_embedding": [{"embedding": [...]}, ...]}``, one
        per input, in order. ``rerank`` (``query`` required):
        ``{"rerank": [{"index", "relevance_score", "text"?}, ...]}`` by decreasing
        score, cut to ``top_n``; ``task_settings``, ``top_n`` and ``return_documents``
        override the endpoint's task settings for this request.

        ``chunk`` (``text_embedding`` only): each input chunked with the endpoint's
        ``chunking_settings`` and every chunk embedded, as ``semantic_text`` would store
        them, at most 512 chunks per input (Elasticsearch's ``EmbeddingRequestChunker``
        cap: beyond it neighbouring chunks are merged, offsets widened, vectors averaged).
        The answer follows the ``chunk`` flag proposed for Elasticsearch's perform
        inference API (elastic/elasticsearch PR #125160, not in a release yet), with
        the chunk's offsets beside its text:
        ``{"chunked_inference_service_result": [[{"chunk_text", "text_offset":
        {"start", "end"}, "embedding"}, ...], ...]}``, one list per input, in order.
        """
        request = InferenceRequest.of(input, options)
        client, texts, settings = self._request(inference_id, request)
        if isinstance(client, RerankClient):
            return client.rerank(
                request.query,  # type: ignore[arg-type]  # checked by rerank, with Elasticsearch's words
                texts,
                top_n=settings.top_n,
                return_documents=settings.return_documents,
            ).to_dict()
        assert isinstance(client, EmbeddingClient)
        if request.chunk:
            return _chunked_answer(client.embed_chunks(texts))
        return {"text_embedding": [{"embedding": v} for v in client.embed(texts)]}

    async def ainference(
        self, inference_id: str, input: str | Sequence[str], **options: Unpack[InferenceOptions]
    ) -> dict[str, Any]:
        """``inference`` for async callers."""
        request = InferenceRequest.of(input, options)
        client, texts, settings = self._request(inference_id, request)
        if isinstance(client, RerankClient):
            result = await client.arerank(
                request.query,  # type: ignore[arg-type]  # checked by arerank
                texts,
                top_n=settings.top_n,
                return_documents=settings.return_documents,
            )
            return result.to_dict()
        assert isinstance(client, EmbeddingClient)
        if request.chunk:
            return _chunked_answer(await client.aembed_chunks(texts))
        return {"text_embedding": [{"embedding": v} for v in await client.aembed(texts)]}

    def close(self) -> None:
        """Close every endpoint's client."""
        with self._lock:
            for client in self._clients.values():
                client.close()

"""``InferenceEndpoints``: Elasticsearch's ``_inference`` API, in process.

Paste the body you would ``PUT _inference/text_embedding/<id>``; get it back
in Elasticsearch's read view (never with the API key); run inference on it::

    endpoints = InferenceEndpoints()
    endpoints.put("text_embedding", "hugging-face-embeddings", {
        "service": "hugging_face",
        "service_settings": {"api_key": "hf_...", "url": "https://xyz.endpoints.huggingface.cloud"},
    })
    endpoints.inference("hugging-face-embeddings", ["some text"])
    # {"text_embedding": [{"embedding": [...]}]}
"""

from __future__ import annotations

import re
import threading
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, replace
from typing import Any

from ._validation import Problems, show
from .client import EmbeddingClient
from .errors import ConfigError
from .settings import SERVICE_NAME, InferenceConfig

__all__ = ["InferenceEndpoints"]

TASK_TYPES = ("text_embedding",)
_ID = re.compile(r"[a-z0-9](?:[a-z0-9_\-.]*[a-z0-9])?")


@dataclass(frozen=True)
class _Endpoint:
    inference_id: str
    task_type: str
    config: InferenceConfig

    def view(self) -> dict[str, Any]:
        body = self.config.to_dict()
        return {
            "inference_id": self.inference_id,
            "task_type": self.task_type,
            "service": body["service"],
            "service_settings": body["service_settings"],
            "chunking_settings": body["chunking_settings"],
        }


class InferenceEndpoints:
    """An in-process registry of ``hugging_face`` inference endpoints, thread-safe.

    ``client_options`` are passed to every ``EmbeddingClient`` it makes
    (``timeout``, ``max_retries``, ...).
    """

    def __init__(self, **client_options: Any) -> None:
        self._endpoints: dict[str, _Endpoint] = {}
        self._clients: dict[str, EmbeddingClient] = {}
        self._client_options = client_options
        self._lock = threading.Lock()

    def __repr__(self) -> str:
        return f"InferenceEndpoints({sorted(self._endpoints)})"

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
        input ``"how big"`` checks the endpoint and records ``dimensions`` from
        its answer, as Elasticsearch does.
        """
        problems = Problems()
        task = task_type.strip().lower() if isinstance(task_type, str) else None
        if task not in TASK_TYPES:
            problems.add(
                f"The [{SERVICE_NAME}] service does not support task type [{show(task_type)}]"
            )
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
            config = InferenceConfig.from_dict(inference_config)
        except ConfigError as exc:
            problems.messages.extend(exc.errors)
        except TypeError as exc:
            problems.add(str(exc))
        problems.raise_if_any()
        assert config is not None and task is not None
        endpoint = _Endpoint(inference_id, task, config)
        client = self._make_client(config)
        if validate:
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

    def _make_client(self, config: InferenceConfig) -> EmbeddingClient:
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

    def client(self, inference_id: str) -> EmbeddingClient:
        """The endpoint's ``EmbeddingClient``."""
        self._get(inference_id)
        return self._clients[inference_id]

    def delete(self, inference_id: str) -> dict[str, bool]:
        """Remove an endpoint (to change its key: delete it and create it again)."""
        with self._lock:
            self._get(inference_id)
            del self._endpoints[inference_id]
            self._clients.pop(inference_id).close()
        return {"acknowledged": True}

    def inference(self, inference_id: str, input: str | Sequence[str]) -> dict[str, Any]:
        """``{"text_embedding": [{"embedding": [...]}, ...]}``, one per input, in order."""
        texts = [input] if isinstance(input, str) else input
        vectors = self.client(inference_id).embed(texts)
        return {"text_embedding": [{"embedding": v} for v in vectors]}

    async def ainference(self, inference_id: str, input: str | Sequence[str]) -> dict[str, Any]:
        """``inference`` for async callers."""
        texts = [input] if isinstance(input, str) else input
        vectors = await self.client(inference_id).aembed(texts)
        return {"text_embedding": [{"embedding": v} for v in vectors]}

    def close(self) -> None:
        """Close every endpoint's client."""
        with self._lock:
            for client in self._clients.values():
                client.close()

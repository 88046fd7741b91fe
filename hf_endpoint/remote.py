"""``RemoteInferenceEndpoints``: the registry's methods over an ``_inference`` HTTP API.

``InferenceEndpoints.connect(url, api_key=..., basic_auth=...)`` returns one. It talks
to ``hf-endpoint inference-api`` or to an Elasticsearch cluster (the same API, 9.x):
the Hugging Face key stays with the service, the caller holds only its own credential.
Its clients (``client(id)``, and the adapters' ``from_endpoint``) are the package's
``EmbeddingClient`` and ``RerankClient`` speaking the ``_inference`` wire: the same
batching, concurrency, rate limit and retries (429 and 5xx from the service), with
chunking done here from the endpoint's own ``chunking_settings`` (its GET view)::

    endpoints = InferenceEndpoints.connect("http://127.0.0.1:9200", api_key="...")
    endpoints.inference("hugging-face-embeddings", ["some text"])
    HFEndpointEmbeddings.from_endpoint(endpoints, "hugging-face-embeddings")
"""

from __future__ import annotations

import base64
import re
import ssl
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, replace
from typing import Any
from urllib.parse import quote

import httpx
import orjson
from pydantic import SecretStr
from typing_extensions import Self, Unpack

from .client._base import BaseClient, RequestShape
from .client._embedding import EmbeddingClient
from .client._flows import Batch, ServerLimits, batch_flow, embed_flow, rerank_flow
from .client._options import ClientOptions
from .client._protocol import parse_embeddings, parse_scores
from .client.rerank import RerankClient
from .config._auth import clean_api_key, redact
from .errors import AuthenticationError, ConfigError, EndpointError, ResponseFormatError
from .registry import InferenceOptions, InferenceRequest

__all__ = [
    "INFERENCE_API_KEY_ENV",
    "InferenceAPIEmbeddingClient",
    "InferenceAPIRerankClient",
    "RemoteInferenceEndpoints",
    "Wire",
]

# The caller's API key for an _inference API, where a command line takes it from.
INFERENCE_API_KEY_ENV = "HF_ENDPOINT_INFERENCE_API_KEY"
# What the official clients send and accept (elasticsearch-py 9.x, _base.py).
VENDOR_JSON = "application/vnd.elasticsearch+json; compatible-with=9"
_NUMBERED = re.compile(r"\d+: (.*?);(?= \d+: |$)")


def parse_inference_embeddings(content: bytes, expected_rows: int) -> list[list[float]]:
    """Vectors from ``{"text_embedding": [{"embedding": [...]}, ...]}``, checked as TEI's are."""
    data = _load(content)
    rows = data.get("text_embedding") if isinstance(data, dict) else None
    if not isinstance(rows, list) or not all(isinstance(r, dict) for r in rows):
        raise ResponseFormatError(
            f'expected {{"text_embedding": [{{"embedding": [...]}}]}}, received {content[:80]!r}'
        )
    return parse_embeddings(orjson.dumps([r.get("embedding") for r in rows]), expected_rows)


def parse_inference_scores(content: bytes, expected: int) -> list[float]:
    """Scores from ``{"rerank": [{"index", "relevance_score"}, ...]}``, in the request's order."""
    data = _load(content)
    ranks = data.get("rerank") if isinstance(data, dict) else None
    if not isinstance(ranks, list):
        raise ResponseFormatError(f'expected {{"rerank": [...]}}, received {content[:80]!r}')
    return parse_scores(orjson.dumps(ranks), expected)


def _load(content: bytes) -> Any:
    try:
        return orjson.loads(content)
    except orjson.JSONDecodeError:
        from .client._protocol import UnparsableResponse

        raise UnparsableResponse(f"the response is not JSON: {content[:80]!r}") from None


def _inference_embed_flow(url: str, batch: Batch, *args: Any, **kwargs: Any) -> Any:
    return batch_flow(url, batch, *args, parse=parse_inference_embeddings, **kwargs)


def _inference_rerank_flow(url: str, batch: Batch, *args: Any, **kwargs: Any) -> Any:
    return batch_flow(url, batch, *args, parse=parse_inference_scores, **kwargs)


@dataclass(frozen=True)
class Wire:
    """How a client reaches an ``_inference`` API: the ``Authorization`` scheme of its
    credential (``ApiKey``, ``Basic``, or ``None`` for none)."""

    scheme: str | None = None

    def headers(self, credential: str | None) -> dict[str, str]:
        headers = {"Content-Type": VENDOR_JSON, "Accept": VENDOR_JSON}
        if credential and self.scheme:
            headers["Authorization"] = f"{self.scheme} {credential}"
        return headers

    def embedding_client(
        self, url: str, credential: SecretStr | str | None, **options: Any
    ) -> InferenceAPIEmbeddingClient:
        return InferenceAPIEmbeddingClient(url, credential, wire=self, **options)

    def rerank_client(
        self, url: str, credential: SecretStr | str | None, **options: Any
    ) -> InferenceAPIRerankClient:
        return InferenceAPIRerankClient(url, credential, wire=self, **options)


# The endpoint's own: an _inference request has no place for them.
_NOT_SENT = (
    "truncate",
    "normalize",
    "prompt_name",
    "truncation_direction",
    "raw_scores",
    "model",
)


class _InferenceAPIClient(BaseClient):
    """What both clients change: headers, no ``GET /info``, the body's ``input`` list."""

    _wire: Wire
    _credential: str | None

    def _prepare(
        self, credential: SecretStr | str | None, wire: Wire | None, options: dict[str, Any]
    ) -> dict[str, Any]:
        given = [name for name in _NOT_SENT if options.get(name) is not None]
        if options.get("protocol", "auto") != "auto":
            given.append("protocol")
        if given:
            raise ConfigError(
                f"{given} belong to the endpoint's configuration: an _inference request "
                "cannot carry them"
            )
        cleaned = clean_api_key(credential, "api_key")
        self._credential = cleaned.get_secret_value() if cleaned is not None else None
        self._wire = wire or Wire()
        options["discover_limits"] = False  # an _inference API has no GET /info to ask
        return options

    def _setup(
        self, options: Any, api_key: Any, limiter: Any, limits: Any, http_client: Any = None
    ) -> None:
        super()._setup(options, None, limiter, limits, http_client)
        self._connection.headers = self._wire.headers(self._credential)
        self._connection.secret = self._credential

    def __getstate__(self) -> dict[str, Any]:
        return {
            **super().__getstate__(),
            "wire": self._wire,
            "credential": self._credential,
        }

    def __setstate__(self, state: dict[str, Any]) -> None:
        self._wire = state["wire"]
        self._credential = state["credential"]
        super().__setstate__(state)


class InferenceAPIEmbeddingClient(_InferenceAPIClient, EmbeddingClient):
    """An ``EmbeddingClient`` for ``POST /_inference/text_embedding/{id}`` (``url``).

    ``credential`` is the caller's (an encoded API key, or ``user:password`` in base64
    for Basic), sent with ``wire``'s scheme; the Hugging Face key stays with the service.
    """

    def __init__(
        self,
        url: str,
        credential: SecretStr | str | None = None,
        *,
        wire: Wire | None = None,
        **options: Any,
    ) -> None:
        EmbeddingClient.__init__(self, url, None, **self._prepare(credential, wire, options))

    def _flows(self, batches: list[Batch], make: Any, target: str | None = None) -> Any:
        batches = [replace(b, key=b"input", tail=b"}") for b in batches]
        maker = _inference_embed_flow if make is embed_flow else make
        return super()._flows(batches, maker, target)


class InferenceAPIRerankClient(_InferenceAPIClient, RerankClient):
    """A ``RerankClient`` for ``POST /_inference/rerank/{id}`` (``url``); ranking and
    ``top_n`` are applied here, over every batch's scores."""

    def __init__(
        self,
        url: str,
        credential: SecretStr | str | None = None,
        *,
        wire: Wire | None = None,
        **options: Any,
    ) -> None:
        RerankClient.__init__(self, url, None, **self._prepare(credential, wire, options))

    def _shape(self, query: str, limits: ServerLimits) -> RequestShape:
        # Every score of the batch comes back: the ranking over all batches is made here.
        fields = {"query": query, "top_n": self.options.batch_size, "return_documents": False}
        return RequestShape(
            key=b"input",
            fields=fields,
            shared=query,
            remedy="split it into passages",
            name="documents",
        )

    def _flows(self, batches: list[Batch], make: Any, target: str | None = None) -> Any:
        maker = _inference_rerank_flow if make is rerank_flow else make
        return super()._flows(batches, maker, target)


def _reasons(reason: str) -> list[str]:
    """The problems of a ``Validation Failed: 1: ...; 2: ...;`` reason, or the reason."""
    if reason.startswith("Validation Failed: "):
        found = _NUMBERED.findall(reason[len("Validation Failed: ") :])
        if found:
            return list(found)
    return [reason]


class RemoteInferenceEndpoints:
    """The ``InferenceEndpoints`` methods over an ``_inference`` API at ``url``.

    ``api_key``: an encoded API key (what ``hf-endpoint inference-api keys create``
    prints, or Elasticsearch's ``encoded``) or an ``(id, api_key)`` pair;
    ``basic_auth``: ``(user, password)``. ``client_options`` go to every client
    (``timeout``, ``max_retries``, ``max_concurrency``, ``batch_size``, ...);
    ``verify`` (a CA bundle path, or ``False``) is httpx's, for HTTPS.
    Errors: a 400 or 404 answer is a ``ConfigError`` with the service's words,
    401/403 an ``AuthenticationError``, others an ``EndpointError``.
    """

    def __init__(
        self,
        url: str,
        *,
        api_key: str | tuple[str, str] | None = None,
        basic_auth: tuple[str, str] | None = None,
        timeout: float = ClientOptions.timeout,
        verify: bool | str | ssl.SSLContext = True,
        **client_options: Any,
    ) -> None:
        if api_key is not None and basic_auth is not None:
            raise ConfigError("give [api_key] or [basic_auth], not both")
        self.url = url.rstrip("/")
        if isinstance(api_key, (tuple, list)):
            api_key = base64.b64encode(":".join(api_key).encode()).decode("ascii")
        credential: str | None
        if basic_auth is not None:
            encoded = base64.b64encode(":".join(basic_auth).encode()).decode("ascii")
            self._wire, credential = Wire("Basic"), encoded
        else:
            self._wire, credential = Wire("ApiKey" if api_key else None), api_key
        cleaned = clean_api_key(credential, "api_key")
        self._credential = cleaned.get_secret_value() if cleaned is not None else None
        self._client_options = {"timeout": timeout, **client_options}
        headers = self._wire.headers(self._credential)
        # A CA bundle's path, as httpx takes it now: in an SSL context.
        self._verify = (
            ssl.create_default_context(cafile=verify) if isinstance(verify, str) else verify
        )
        self._http = httpx.Client(
            base_url=self.url, headers=headers, timeout=timeout, verify=self._verify
        )
        self._async_http: httpx.AsyncClient | None = None
        self._timeout = timeout

    def __repr__(self) -> str:
        return f"RemoteInferenceEndpoints({self.url!r})"

    # -- requests ------------------------------------------------------------------

    def _answer(self, response: httpx.Response) -> dict[str, Any]:
        content = response.content
        if response.status_code < 300:
            data = orjson.loads(content) if content else {}
            return data if isinstance(data, dict) else {"result": data}
        content = redact(content, self._credential)
        try:
            body = orjson.loads(content)
        except orjson.JSONDecodeError:
            body = None
        error = body.get("error") if isinstance(body, dict) else None
        if isinstance(error, dict):
            reason = str(error.get("reason", error.get("type", "")))
            kind = str(error.get("type")) if error.get("type") else None
        else:
            reason = str(error) if error else content[:200].decode(errors="replace")
            kind = None
        status = response.status_code
        if status in (401, 403):
            raise AuthenticationError(status, reason, kind)
        if status in (400, 404):
            raise ConfigError(_reasons(reason))
        raise EndpointError(status, reason, kind)

    def _request(self, method: str, path: str, body: Any = None) -> dict[str, Any]:
        content = orjson.dumps(body) if body is not None else None
        return self._answer(self._http.request(method, path, content=content))

    @staticmethod
    def _path(*parts: str | None) -> str:
        return "/_inference/" + "/".join(quote(p, safe="") for p in parts if p)

    # -- the registry's methods ------------------------------------------------------

    def put(
        self,
        task_type: str,
        inference_id: str,
        inference_config: Mapping[str, Any],
        *,
        validate: bool = True,
    ) -> dict[str, Any]:
        """Create an endpoint; its read view (the service always validates it)."""
        return self._request("PUT", self._path(task_type, inference_id), dict(inference_config))

    def get(self, inference_id: str | None = None) -> dict[str, Any]:
        """``{"endpoints": [...]}``: one endpoint's read view, or all of them."""
        return self._request("GET", self._path(inference_id or "_all"))

    def update(
        self, inference_id: str, inference_config: Mapping[str, Any], task_type: str | None = None
    ) -> dict[str, Any]:
        """Change an endpoint's key, rate limit or task settings; its new read view."""
        path = self._path(task_type, inference_id, "_update")
        return self._request("PUT", path, dict(inference_config))

    def delete(self, inference_id: str) -> dict[str, Any]:
        """Remove an endpoint."""
        return self._request("DELETE", self._path(inference_id))

    def _view(self, inference_id: str) -> dict[str, Any]:
        endpoints = self.get(inference_id).get("endpoints") or []
        if not endpoints:
            raise ConfigError(f"Inference endpoint not found [{inference_id}]")
        view: dict[str, Any] = endpoints[0]
        return view

    def inference(
        self, inference_id: str, input: str | Sequence[str], **options: Unpack[InferenceOptions]
    ) -> dict[str, Any]:
        """One ``POST /_inference/{id}``, answered as Elasticsearch answers (``chunk``:
        see ``InferenceEndpoints.inference``; only ``hf-endpoint inference-api`` takes it)."""
        body = InferenceRequest.of(input, options).body()
        return self._request("POST", self._path(inference_id), body)

    async def ainference(
        self, inference_id: str, input: str | Sequence[str], **options: Unpack[InferenceOptions]
    ) -> dict[str, Any]:
        """``inference`` for async callers."""
        if self._async_http is None:
            self._async_http = httpx.AsyncClient(
                base_url=self.url,
                headers=self._wire.headers(self._credential),
                timeout=self._timeout,
                verify=self._verify,
            )
        body = InferenceRequest.of(input, options).body()
        response = await self._async_http.post(self._path(inference_id), content=orjson.dumps(body))
        return self._answer(response)

    def adapter_source(self, inference_id: str, task_type: str) -> tuple[dict[str, Any], Wire]:
        """What an adapter of ``task_type`` takes from the endpoint's GET view, and the wire."""
        view = self._view(inference_id)
        if view.get("task_type") != task_type:
            raise ConfigError(
                f"Incompatible task_type, the requested type [{task_type}] does not match "
                f"the model type [{view.get('task_type')}]"
            )
        service = view.get("service_settings") or {}
        fields: dict[str, Any] = {
            "url": self.url + self._path(task_type, inference_id),
            "api_key": self._credential,
            "rate_limit": service.get("rate_limit"),
        }
        if task_type == "rerank":
            fields["top_n"] = (view.get("task_settings") or {}).get("top_n")
        else:
            fields["chunking_settings"] = view.get("chunking_settings")
        return fields, self._wire

    def client(self, inference_id: str) -> BaseClient:
        """A client for the endpoint: ``InferenceAPIEmbeddingClient`` or ``InferenceAPIRerankClient``."""
        view = self._view(inference_id)
        task = view.get("task_type")
        fields, wire = self.adapter_source(inference_id, str(task))
        url, credential = fields.pop("url"), fields.pop("api_key")
        options = {**self._client_options, **{k: v for k, v in fields.items() if v is not None}}
        if task == "rerank":
            return wire.rerank_client(url, credential, **options)
        return wire.embedding_client(url, credential, **options)

    def close(self) -> None:
        """Close the connection pools."""
        self._http.close()

    def __enter__(self) -> Self:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

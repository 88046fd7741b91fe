"""The service's Starlette app: Elasticsearch's ``_inference`` API for ``hugging_face``.

Routes (as Elasticsearch 9.5 has them)::

    GET     /                                        a version document
    PUT     /_inference[/{task_type}]/{id}           create  -> the read view
    GET     /_inference[/_all]                       list    -> {"endpoints": [...]}
    GET     /_inference/{id}, /{task_type}/{id|_all}
    DELETE  /_inference[/{task_type}]/{id}           -> {"acknowledged": true, ...}
    POST    /_inference[/{task_type}]/{id}           inference
    PUT     /_inference[/{task_type}]/{id}/_update   change the key, rate limit, task settings

Every answer carries ``X-Elastic-Product: Elasticsearch``: the official clients refuse
a server without it. Errors come in Elasticsearch's shape (``_errors``). Endpoints live
in the ``Store``; each worker keeps one client per endpoint, rebuilt when the stored row
changes, and every client of one url+key shares the machine-wide rate limit.
"""

from __future__ import annotations

import asyncio
import base64
import binascii
import contextlib
import ipaddress
import logging
import re
import socket
from collections.abc import AsyncIterator, Awaitable, Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

import orjson
from starlette.applications import Starlette
from starlette.concurrency import run_in_threadpool
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from .. import __version__
from ..config._auth import redact
from ..config.settings import ChunkingSettings, InferenceConfig, RerankTaskSettings
from ..errors import (
    ConfigError,
    EndpointConnectionError,
    EndpointError,
    HFEndpointError,
    ResponseFormatError,
)
from ..registry import InferenceEndpoints
from ._errors import ServiceError, bad_request, not_found, validation
from ._secrets import SealedKeyError
from .store import AlreadyExists, Store

__all__ = ["ELASTICSEARCH_VERSION", "ServiceConfig", "create_app"]

logger = logging.getLogger(__name__)

# The release whose _inference API this service follows.
ELASTICSEARCH_VERSION = "9.5.0"
PRODUCT_HEADER = {"X-Elastic-Product": "Elasticsearch"}
_VENDOR_JSON = "application/vnd.elasticsearch+json;compatible-with=9"
# Every task type Elasticsearch knows: a path may name one; only TASK_TYPES can be created.
_ES_TASK_TYPES = (
    "text_embedding", "rerank", "sparse_embedding", "completion", "chat_completion", "embedding",
)  # fmt: skip
_INFERENCE_FIELDS = (
    "input",
    "query",
    "input_type",
    "task_settings",
    "top_n",
    "return_documents",
    "chunk",
)
_INPUT_TYPES = ("search", "ingest", "classification", "clustering")
_UPDATE_FIELDS = ("service_settings", "task_settings", "task_type")
_UPDATABLE_SERVICE = ("api_key", "rate_limit")
_TIME = re.compile(r"(\d+)(nanos|micros|ms|s|m|h|d)?")
_UNITS = {"nanos": 1e-9, "micros": 1e-6, "ms": 1e-3, "s": 1.0, "m": 60.0, "h": 3600.0, "d": 86400.0}
_CHALLENGE = 'Basic realm="security", charset="UTF-8", ApiKey'


@dataclass
class ServiceConfig:
    """What the app serves from, and its bounds.

    ``max_body_bytes``: the largest request body (413 beyond); ``max_inputs``: texts per
    inference request (400 beyond); ``max_in_flight``: requests one worker handles at
    once (429 beyond, never a queue); ``validate``: one call to a new endpoint before it
    is stored, as Elasticsearch makes; ``client_options``: passed to every endpoint's
    client (``timeout``, ``max_retries``, ...).
    """

    store: Store
    max_body_bytes: int = 4 * 1024 * 1024
    max_inputs: int = 1024
    max_in_flight: int = 256
    validate: bool = True
    client_options: dict[str, Any] = field(default_factory=dict)


def _is_loopback(host: str | None) -> bool:
    if not host:
        return False
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return host == "localhost"


def _seconds(value: str | None, default: float) -> float | None:
    """An Elasticsearch time value (``30s``, ``500ms``, ``-1`` for none) in seconds."""
    if value is None:
        return default
    if value.strip() == "-1":
        return None
    match = _TIME.fullmatch(value.strip())
    if not match:
        raise ServiceError(
            400,
            "illegal_argument_exception",
            f"failed to parse setting [timeout] with value [{value[:40]}] as a time value: "
            "unit is missing or unrecognized",
        )
    return int(match.group(1)) * _UNITS[match.group(2) or "ms"]


class _Answer(Exception):
    """A finished answer, raised from deep in a handler."""

    def __init__(self, response: Response) -> None:
        self.response = response


class InferenceService:
    """The handlers, the endpoint clients of this worker, and the request bounds."""

    def __init__(self, config: ServiceConfig) -> None:
        self.config = config
        self.store = config.store
        self._registry = InferenceEndpoints(**config.client_options)
        self._versions: dict[str, int] = {}
        self._refresh = asyncio.Lock()
        self._in_flight = 0

    # -- answers ----------------------------------------------------------------------

    @staticmethod
    def _json(
        request: Request, body: Any, status: int = 200, headers: Mapping[str, str] | None = None
    ) -> Response:
        vendor = "vnd.elasticsearch" in request.headers.get("accept", "") + request.headers.get(
            "content-type", ""
        )
        return Response(
            orjson.dumps(body),
            status_code=status,
            media_type=_VENDOR_JSON if vendor else "application/json",
            headers={**PRODUCT_HEADER, **(headers or {})},
        )

    def _error(self, request: Request, error: ServiceError) -> Response:
        return self._json(request, error.body(), error.status, error.headers)

    # -- the way in ---------------------------------------------------------------------

    async def handle(self, request: Request) -> Response:
        """Every request: authenticate, bound, route; every error in Elasticsearch's shape."""
        try:
            header = request.headers.get("authorization", "")
            if header[:6].lower() == "basic ":
                # In a worker thread: a password's PBKDF2 must not hold the event loop.
                await run_in_threadpool(self._authenticate, request)
            else:
                self._authenticate(request)  # reads and one SHA-256: microseconds
            if self._in_flight >= self.config.max_in_flight:
                raise ServiceError(
                    429,
                    "es_rejected_execution_exception",
                    f"rejected execution: {self._in_flight} requests in flight, the most this "
                    f"worker takes at once (max_in_flight={self.config.max_in_flight})",
                )
            self._in_flight += 1
            try:
                return await self._route(request)
            finally:
                self._in_flight -= 1
        except ServiceError as exc:
            return self._error(request, exc)
        except _Answer as answer:
            return answer.response
        except Exception as exc:  # noqa: BLE001  (a defect: still an answer in ES shape)
            # The type only: an exception's text might quote a request, and with it a key.
            logger.error(
                "%s while serving %s %s", type(exc).__name__, request.method, request.url.path
            )
            error = ServiceError(500, "exception", f"internal error ({type(exc).__name__})")
            return self._error(request, error)

    def _authenticate(self, request: Request) -> None:
        header = request.headers.get("authorization")
        path = request.url.path
        if not self.store.has_credentials():
            peer = request.client.host if request.client else None
            if not _is_loopback(peer):
                raise ServiceError(
                    401,
                    "security_exception",
                    "this service has no credentials yet and answers loopback callers only: "
                    "create one with `hf-endpoint inference-api keys create NAME`",
                    {"WWW-Authenticate": _CHALLENGE},
                )
            return
        if not header:
            raise ServiceError(
                401,
                "security_exception",
                f"missing authentication credentials for REST request [{path}]",
                {"WWW-Authenticate": _CHALLENGE},
            )
        if self._verify(header) is None:
            raise ServiceError(
                401,
                "security_exception",
                "unable to authenticate with provided credentials and anonymous access is "
                "not allowed for this request",
                {"WWW-Authenticate": _CHALLENGE},
            )

    def _verify(self, header: str) -> str | None:
        scheme, _, value = header.strip().partition(" ")
        try:
            decoded = base64.b64decode(value.strip(), validate=True).decode("utf-8")
        except (binascii.Error, UnicodeDecodeError, ValueError):
            return None
        identifier, colon, secret = decoded.partition(":")
        if not colon:
            return None
        if scheme.lower() == "apikey":
            return self.store.verify("api_key", identifier, secret)
        if scheme.lower() == "basic":
            return self.store.verify("user", identifier, secret)
        return None

    async def _route(self, request: Request) -> Response:
        method = request.method
        parts = [p for p in request.url.path.split("/") if p]
        if not parts:
            return await self._dispatch(request, {"GET": self.root, "HEAD": self.root})
        if parts[0] != "_inference" or len(parts) > 4:
            raise _Answer(self._no_handler(request))
        rest = parts[1:]
        if not rest:
            return await self._dispatch(request, {"GET": self.list_all})
        if len(rest) == 1:
            (name,) = rest
            if name == "_all":
                return await self._dispatch(request, {"GET": self.list_all})
            if method == "GET" and name in _ES_TASK_TYPES:
                # Elasticsearch reads GET _inference/{task_type_or_id} as a task type first.
                return await self._dispatch(request, {"GET": self.list_task}, name)
            return await self._dispatch(
                request,
                {"GET": self.get, "PUT": self.put, "DELETE": self.delete, "POST": self.infer},
                None,
                name,
            )
        if len(rest) == 2 and rest[1] == "_update":
            return await self._dispatch(
                request, {"PUT": self.update, "POST": self.update}, None, rest[0]
            )
        if len(rest) == 3:
            if rest[2] != "_update":
                raise _Answer(self._no_handler(request))
            return await self._dispatch(
                request, {"PUT": self.update, "POST": self.update}, *rest[:2]
            )
        task, name = rest
        if method in ("PUT", "POST", "DELETE") or name != "_all":
            handlers = {"GET": self.get, "PUT": self.put, "DELETE": self.delete, "POST": self.infer}
            return await self._dispatch(request, handlers, task, name)
        return await self._dispatch(request, {"GET": self.list_task}, task)

    def _no_handler(self, request: Request) -> Response:
        # Elasticsearch's own words and shape (an error string) for a path it does not serve.
        body = {
            "error": f"no handler found for uri [{request.url.path}] and method [{request.method}]",
            "status": 400,
        }
        return self._json(request, body, 400)

    async def _dispatch(
        self,
        request: Request,
        handlers: Mapping[str, Callable[..., Awaitable[Response]]],
        *args: Any,
    ) -> Response:
        handler = handlers.get(request.method)
        if handler is None:
            allowed = ", ".join(handlers)
            body = {
                "error": f"Incorrect HTTP method for uri [{request.url.path}] and method "
                f"[{request.method}], allowed: [{allowed}]",
                "status": 405,
            }
            raise _Answer(self._json(request, body, 405, {"Allow": allowed}))
        return await handler(request, *args)

    # -- reading requests ------------------------------------------------------------------

    async def _body(self, request: Request, required: bool = True) -> Any:
        limit = self.config.max_body_bytes
        length = request.headers.get("content-length")
        too_long = ServiceError(
            413,
            "content_too_long_exception",
            f"the request body is over the [{limit}] bytes this service accepts (max_body_bytes)",
        )
        if length is not None and length.isdigit() and int(length) > limit:
            raise too_long
        chunks: list[bytes] = []
        size = 0
        async for chunk in request.stream():
            size += len(chunk)
            if size > limit:
                raise too_long
            chunks.append(chunk)
        raw = b"".join(chunks)
        if not raw.strip():
            if required:
                raise ServiceError(400, "parse_exception", "request body is required")
            return {}
        try:
            return orjson.loads(raw)
        except orjson.JSONDecodeError as exc:
            raise ServiceError(
                400, "parse_exception", f"Failed to parse content to map: {str(exc)[:200]}"
            ) from None

    @staticmethod
    def _task(value: str) -> str:
        task = value.strip().lower()
        if task not in _ES_TASK_TYPES:
            raise ServiceError(
                400, "illegal_argument_exception", f"Unknown task_type [{value[:80]}]"
            )
        return task

    def _stored(self, inference_id: str, task: str | None = None) -> Any:
        stored = self.store.get(inference_id)
        if stored is None:
            raise not_found(inference_id)
        if task is not None and self._task(task) != stored.task_type:
            raise bad_request(
                f"Requested task type [{self._task(task)}] does not match the inference "
                f"endpoint's task type [{stored.task_type}]"
            )
        return stored

    @staticmethod
    def _view(stored: Any) -> dict[str, Any]:
        view = {"inference_id": stored.inference_id, "task_type": stored.task_type, **stored.body}
        if stored.task_type == "text_embedding" and "chunking_settings" not in view:
            view["chunking_settings"] = ChunkingSettings().to_dict()
        return view

    # -- handlers ---------------------------------------------------------------------------

    async def root(self, request: Request) -> Response:
        return self._json(
            request,
            {
                "name": socket.gethostname(),
                "cluster_name": "hf-endpoint",
                "cluster_uuid": "_na_",
                "version": {
                    "number": ELASTICSEARCH_VERSION,
                    "build_flavor": "hf-endpoint",
                    "build_type": "hf-endpoint",
                    "build_hash": __version__,
                    "build_date": "",
                    "build_snapshot": False,
                    "lucene_version": "",
                    "minimum_wire_compatibility_version": "8.19.0",
                    "minimum_index_compatibility_version": "8.0.0",
                },
                "tagline": (
                    f"hf-endpoint {__version__} inference-api: Elasticsearch's _inference API "
                    "for the hugging_face service. Not Elasticsearch."
                ),
            },
        )

    async def list_all(self, request: Request) -> Response:
        endpoints = await run_in_threadpool(self.store.endpoints)
        return self._json(request, {"endpoints": [self._view(e) for e in endpoints]})

    async def list_task(self, request: Request, task: str) -> Response:
        task = self._task(task)
        endpoints = await run_in_threadpool(self.store.endpoints)
        return self._json(
            request, {"endpoints": [self._view(e) for e in endpoints if e.task_type == task]}
        )

    async def get(self, request: Request, task: str | None, inference_id: str) -> Response:
        stored = await run_in_threadpool(self._stored, inference_id, task)
        return self._json(request, {"endpoints": [self._view(stored)]})

    async def put(self, request: Request, task: str | None, inference_id: str) -> Response:
        body = await self._body(request)
        if not isinstance(body, dict):
            raise validation(
                [f"[inference_config] the request body must be a JSON object, not {_kind(body)}"]
            )
        in_body = body.pop("task_type", None)
        if task is not None and in_body is not None and self._task(task) != _lower(in_body):
            raise bad_request(
                "Cannot resolve conflicting task_type parameter in the request URL "
                f"[{self._task(task)}] and the request body [{str(in_body)[:40]}]"
            )
        task_type = task if task is not None else in_body
        if task_type is None:
            raise validation(["[task_type] is required: in the path or in the body"])
        if not isinstance(task_type, str):
            raise validation([f"[task_type] must be a string, not {_kind(task_type)}"])
        view, config = await self._checked(task_type, inference_id, body)
        try:
            await run_in_threadpool(self.store.create, inference_id, config)
        except AlreadyExists:
            raise ServiceError(
                400,
                "resource_already_exists_exception",
                f"Inference endpoint [{inference_id}] already exists",
            ) from None
        logger.info("created inference endpoint [%s] (%s)", inference_id, config.task_type)
        return self._json(request, view)

    async def _checked(
        self, task_type: str, inference_id: str, body: Mapping[str, Any]
    ) -> tuple[dict[str, Any], InferenceConfig]:
        """Validate a body as the in-process registry does (one call to the endpoint
        included); the read view and the configuration to store."""
        if self.store.get(inference_id) is not None:
            raise ServiceError(
                400,
                "resource_already_exists_exception",
                f"Inference endpoint [{inference_id}] already exists",
            )
        scratch = InferenceEndpoints(**self.config.client_options)
        try:
            view = await run_in_threadpool(
                scratch.put, task_type, inference_id, body, validate=self.config.validate
            )
            return view, scratch.config(inference_id)
        except ConfigError as exc:
            raise validation(exc.errors) from None
        except HFEndpointError as exc:
            raise _validation_call_failed(exc, inference_id, _key_of(body)) from None
        finally:
            scratch.close()

    async def delete(self, request: Request, task: str | None, inference_id: str) -> Response:
        await run_in_threadpool(self._stored, inference_id, task)
        if not await run_in_threadpool(self.store.delete, inference_id):
            raise not_found(inference_id)
        logger.info("deleted inference endpoint [%s]", inference_id)
        return self._json(request, {"acknowledged": True, "pipelines": [], "indexes": []})

    async def update(self, request: Request, task: str | None, inference_id: str) -> Response:
        body = await self._body(request)
        if not isinstance(body, dict):
            raise validation(
                [f"[inference_config] the request body must be a JSON object, not {_kind(body)}"]
            )
        config, version = await run_in_threadpool(self._config, inference_id, True)
        problems = [f"[{k}] cannot be updated" for k in body if k not in _UPDATE_FIELDS]
        in_body = body.get("task_type")
        for given in (task, in_body):
            if given is not None and (
                not isinstance(given, str) or _lower(given) != config.task_type
            ):
                raise bad_request("Task type must match the task type of the existing endpoint")
        service = body.get("service_settings")
        if service is not None and not isinstance(service, dict):
            problems.append(f"[service_settings] must be an object, not {_kind(service)}")
            service = None
        service = service or {}
        problems += [
            f"[service_settings.{k}] cannot be updated; delete the endpoint and create it "
            "again to change it"
            for k in service
            if k not in _UPDATABLE_SERVICE
        ]
        task_settings = body.get("task_settings")
        if task_settings is not None and config.task_type != "rerank" and task_settings != {}:
            problems.append(
                f"Model configuration contains settings {sorted(task_settings) if isinstance(task_settings, dict) else task_settings!r} "
                "unknown to the [hugging_face] service"
            )
        if problems:
            raise validation(problems)
        merged_body = dict(self._stored(inference_id).body)
        settings = {**merged_body["service_settings"]}
        settings["api_key"] = service.get(
            "api_key", config.service_settings.api_key.get_secret_value()
        )
        if "rate_limit" in service:
            settings["rate_limit"] = service["rate_limit"]
        merged_body["service_settings"] = settings
        if config.task_type == "rerank" and task_settings is not None:
            try:
                merged = config.task_settings.merged(RerankTaskSettings.from_dict(task_settings))
            except (ConfigError, TypeError) as exc:
                raise validation(getattr(exc, "errors", [str(exc)])) from None
            merged_body["task_settings"] = merged.to_dict()
        try:
            new = InferenceConfig.from_dict(merged_body, config.task_type)
        except ConfigError as exc:
            raise validation(exc.errors) from None
        except TypeError as exc:
            raise validation([str(exc)]) from None
        if "api_key" in service and self.config.validate:
            scratch = InferenceEndpoints(**self.config.client_options)
            try:
                await run_in_threadpool(scratch.put, config.task_type, inference_id, merged_body)
            except HFEndpointError as exc:
                raise _validation_call_failed(exc, inference_id, settings["api_key"]) from None
            finally:
                scratch.close()
        if not await run_in_threadpool(self.store.replace, inference_id, version, new):
            raise ServiceError(
                409,
                "version_conflict_engine_exception",
                f"[{inference_id}]: version conflict, the endpoint changed during this update",
            )
        logger.info("updated inference endpoint [%s]", inference_id)
        return self._json(
            request, {"inference_id": inference_id, "task_type": new.task_type, **new.to_dict()}
        )

    def _config(self, inference_id: str, for_update: bool = False) -> tuple[InferenceConfig, int]:
        try:
            loaded = self.store.config(inference_id)
        except SealedKeyError:
            raise ServiceError(
                500,
                "status_exception",
                f"the key of inference endpoint [{inference_id}] does not open with this "
                "service's master key",
            ) from None
        if loaded is None:
            if for_update:
                raise ServiceError(
                    404,
                    "resource_not_found_exception",
                    f"The inference endpoint [{inference_id}] does not exist and cannot be updated",
                )
            raise not_found(inference_id)
        return loaded

    async def _client_registry(self, inference_id: str) -> tuple[InferenceEndpoints, str]:
        """This worker's registry, holding ``inference_id`` as stored now; its task type."""
        stored = self._stored(inference_id)  # one indexed read on this thread's connection
        if self._versions.get(inference_id) == stored.version:
            return self._registry, stored.task_type
        async with self._refresh:
            if self._versions.get(inference_id) != stored.version:
                config, version = await run_in_threadpool(self._config, inference_id)
                if inference_id in self._versions:
                    self._registry.delete(inference_id)
                    del self._versions[inference_id]
                self._registry.put(
                    config.task_type, inference_id, _put_body(config), validate=False
                )
                self._versions[inference_id] = version
        return self._registry, stored.task_type

    async def infer(self, request: Request, task: str | None, inference_id: str) -> Response:
        body = await self._body(request)
        timeout = _seconds(request.query_params.get("timeout"), 30.0)
        if not isinstance(body, dict):
            raise validation(
                [f"[inference request] the body must be a JSON object, not {_kind(body)}"]
            )
        unknown = sorted(set(body) - set(_INFERENCE_FIELDS))
        if unknown:
            raise ServiceError(
                400,
                "x_content_parse_exception",
                f"[inference_request] unknown field [{unknown[0][:80]}]",
            )
        registry, task_type = await self._client_registry(inference_id)
        if task is not None and self._task(task) != task_type:
            raise bad_request(
                f"Incompatible task_type, the requested type [{self._task(task)}] does not "
                f"match the model type [{task_type}]"
            )
        texts = _inputs(body.get("input"), self.config.max_inputs)
        problems = []
        input_type = body.get("input_type")
        if input_type is not None and (
            not isinstance(input_type, str) or input_type.lower() not in _INPUT_TYPES
        ):
            problems.append(
                f"[input_type] must be one of [{', '.join(t.upper() for t in _INPUT_TYPES)}], "
                f"not [{str(input_type)[:40]}]"
            )
        for name, kind in (
            ("query", str),
            ("top_n", int),
            ("return_documents", bool),
            ("task_settings", dict),
            ("chunk", bool),
        ):
            value = body.get(name)
            if value is not None and (
                not isinstance(value, kind) or (kind is int and isinstance(value, bool))
            ):
                problems.append(f"[{name}] must be {_KIND_NAMES[kind]}, not {_kind(value)}")
        if problems:
            raise validation(problems)
        task_settings = dict(body.get("task_settings") or {})
        task_settings.pop("input_type", None)
        secret = registry.config(inference_id).service_settings.api_key.get_secret_value()
        try:
            work = registry.ainference(
                inference_id,
                texts,
                query=body.get("query"),
                task_settings=task_settings or None,
                top_n=body.get("top_n"),
                return_documents=body.get("return_documents"),
                chunk=body.get("chunk") or False,
            )
            result = await asyncio.wait_for(work, timeout)
        except asyncio.TimeoutError:
            raise ServiceError(
                408,
                "status_exception",
                f"Request timed out after [{request.query_params.get('timeout', '30s')}]",
            ) from None
        except HFEndpointError as exc:
            raise _endpoint_failure(exc, inference_id, secret) from None
        return self._json(request, result)

    def close(self) -> None:
        self._registry.close()


_KIND_NAMES: dict[type, str] = {
    str: "a string",
    int: "an integer",
    bool: "true or false",
    dict: "an object",
}


def _kind(value: object) -> str:
    if value is None:
        return "null"
    return {dict: "an object", list: "an array", str: "a string", bool: "a boolean"}.get(
        type(value), "a number"
    )


def _lower(value: object) -> str | None:
    return value.strip().lower() if isinstance(value, str) else None


def _inputs(value: object, most: int) -> list[str]:
    if value is None:
        raise validation(["Field [input] cannot be null"])
    texts = [value] if isinstance(value, str) else value
    if not isinstance(texts, list) or not all(isinstance(t, str) for t in texts):
        raise validation([f"[input] must be a string or an array of strings, not {_kind(value)}"])
    if not texts:
        raise validation(["Field [input] cannot be an empty array"])
    if len(texts) > most:
        raise validation(
            [
                f"[input] holds {len(texts)} texts, over the {most} one request may carry (max_inputs)"
            ]
        )
    return texts


def _key_of(body: Mapping[str, Any]) -> str | None:
    settings = body.get("service_settings")
    key = settings.get("api_key") if isinstance(settings, Mapping) else None
    return key if isinstance(key, str) else None


def _put_body(config: InferenceConfig) -> dict[str, Any]:
    """A PUT body for ``config``, key included (to rebuild a client from the store)."""
    body = config.to_dict()
    body["service_settings"]["api_key"] = config.service_settings.api_key.get_secret_value()
    if config.task_type == "text_embedding" and not config.explicit_chunking:
        del body["chunking_settings"]
    return body


def _endpoint_failure(exc: HFEndpointError, inference_id: str, secret: str | None) -> ServiceError:
    """An endpoint's failure as Elasticsearch reports it, the key never in it."""

    def clean(text: str) -> str:
        return redact(text.encode(), secret).decode(errors="replace")[:1000]

    if isinstance(exc, ConfigError):
        return validation([clean(e) for e in exc.errors])
    if isinstance(exc, EndpointError):
        return ServiceError(
            exc.status_code if 400 <= exc.status_code < 600 else 502,
            "status_exception",
            f"Received an unsuccessful status code for request from inference entity id "
            f"[{inference_id}] status [{exc.status_code}]. Error message: [{clean(exc.error)}]",
        )
    if isinstance(exc, (EndpointConnectionError, ResponseFormatError)):
        return ServiceError(
            502,
            "status_exception",
            f"Failed to send request from inference entity id [{inference_id}]: {clean(str(exc))}",
        )
    return ServiceError(502, "status_exception", clean(str(exc)))


def _validation_call_failed(
    exc: HFEndpointError, inference_id: str, secret: str | None
) -> ServiceError:
    """A new endpoint's (or new key's) first call failed: 400, the endpoint's words as the
    cause, as Elasticsearch's ModelValidator answers."""
    cause = _endpoint_failure(exc, inference_id, secret)
    error = ServiceError(
        400,
        "status_exception",
        "Could not complete inference endpoint creation as validation call to service threw "
        "an exception.",
    )
    error.caused_by = {"type": cause.type, "reason": cause.reason}
    return error


def create_app(config: ServiceConfig) -> Starlette:
    """The Starlette app serving ``config.store``."""
    service = InferenceService(config)
    methods = ["GET", "HEAD", "PUT", "POST", "DELETE", "PATCH", "OPTIONS"]

    @contextlib.asynccontextmanager
    async def lifespan(app: Starlette) -> AsyncIterator[None]:
        yield
        service.close()

    app = Starlette(
        routes=[Route("/{path:path}", service.handle, methods=methods)], lifespan=lifespan
    )
    app.state.service = service
    return app

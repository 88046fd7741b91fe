"""The ASGI app: Text Embeddings Inference's HTTP protocol over a backend.

Routes, as TEI v1.9.3's router serves them (router/src/http/server.rs); an input is a text
or a list of token ids:

* ``POST /`` and ``POST /embed``: ``{"inputs": input | [input], "normalize", "truncate",
  "truncation_direction", "prompt_name", "dimensions"}`` -> ``[[float, ...], ...]``;
* ``POST /v1/embeddings`` (and ``/embeddings``): OpenAI's ``{"input", "model",
  "encoding_format", "dimensions"}`` -> ``{"object": "list", "data": [...], "model", "usage"}``;
* ``POST /rerank``: ``{"query", "texts", "return_text", "raw_scores", "truncate"}`` ->
  ``[{"index", "text"?, "score"}]`` best first;
* ``POST /tokenize``: ``{"inputs", "add_special_tokens", "prompt_name"}`` -> per input its
  tokens ``{"id", "text", "special", "start", "stop"}``;
* ``GET /info``, ``GET /health`` (also ``GET /`` and ``GET /ping``).

Errors are TEI's: ``{"error", "error_type"}`` (``{"message", "code", "type"}`` on the
OpenAI route) with TEI's status codes, axum's plain-text rejections for bodies that are not
JSON of the right shape, and an empty 401 when an API key is set and not given.
``GET /stats`` (and ``POST /stats/reset``) expose what the server received.

Requests are batched together: see :mod:`hf_endpoint.server._engine`.
"""

from __future__ import annotations

import asyncio
import base64
import contextlib
import logging
import math
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import orjson
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route
from starlette.types import Receive, Scope, Send

from ._engine import Embedded, Engine, default_tokenization_workers
from ._protocol import (
    PAYLOAD_LIMIT,
    VALIDATION_STATUSES,
    EmbedRequest,
    ErrorType,
    Input,
    OpenAIRequest,
    RerankRequest,
    TEIError,
    TokenizeRequest,
    overloaded,
    parse_json_body,
)
from .backends import Backend, Rows, normalize_rows
from .faults import FaultPlan, Faults, Stats

__all__ = ["ServerConfig", "create_app"]

logger = logging.getLogger(__name__)

# /info's ``version``: the TEI release whose HTTP protocol the server speaks (TEI reports its
# CARGO_PKG_VERSION); a server answering Validation with 413 speaks the last release before 1.9.
TEI_VERSIONS = {422: "1.9.3", 413: "1.8.3"}


@dataclass(frozen=True)
class ServerConfig:
    """How the local endpoint behaves; the limits are TEI's options of the same names.

    The defaults are TEI v1.9.3's: ``auto_truncate`` is on (``--auto-truncate`` defaults to
    true since v1.9.0, PR #829: an input over ``max_input_length`` is cut unless the request
    says ``"truncate": false``) and a Validation error is answered 422. A server from before
    v1.9 is ``auto_truncate=False, validation_status=413``.
    """

    backend: Backend
    api_key: str | None = field(default=None, repr=False)
    max_client_batch_size: int = 32
    max_batch_tokens: int = 16384
    max_batch_requests: int | None = None
    max_concurrent_requests: int = 512
    auto_truncate: bool = True
    validation_status: int = 422
    tokenization_workers: int = field(default_factory=default_tokenization_workers)
    payload_limit: int = PAYLOAD_LIMIT
    faults: Faults = field(default_factory=Faults)

    def __post_init__(self) -> None:
        for name in (
            "max_client_batch_size",
            "max_batch_tokens",
            "max_concurrent_requests",
            "tokenization_workers",
            "payload_limit",
        ):
            if getattr(self, name) < 1:
                raise ValueError(f"{name} must be at least 1, not {getattr(self, name)}")
        if self.validation_status not in VALIDATION_STATUSES:
            raise ValueError(
                f"validation_status must be 422 (TEI 1.9 and later) or 413 (before 1.9), "
                f"not {self.validation_status}"
            )
        if self.max_batch_requests is not None and self.max_batch_requests < 1:
            raise ValueError(
                f"max_batch_requests must be at least 1, not {self.max_batch_requests}"
            )
        length = self.backend.max_input_length
        if length > self.max_batch_tokens and not self.auto_truncate:
            # router/src/lib.rs refuses to start in this case
            raise ValueError(
                f"The maximum input length is `{length}` which exceeds "
                f"`--max-batch-tokens={self.max_batch_tokens}`. Either increase "
                f"`--max-batch-tokens` to at least `{length}`, or set `--auto-truncate` so that "
                f"inputs are truncated to `{self.max_batch_tokens}` tokens."
            )

    @property
    def max_input_length(self) -> int:
        """The backend's limit, cut to ``max_batch_tokens`` with ``auto_truncate`` (as TEI)."""
        return min(self.backend.max_input_length, self.max_batch_tokens)


def _json(content: Any, status: int = 200, headers: dict[str, str] | None = None) -> Response:
    body = orjson.dumps(content, option=orjson.OPT_SERIALIZE_NUMPY)
    return Response(body, status_code=status, media_type="application/json", headers=headers)


def _error(exc: TEIError, *, openai: bool = False) -> Response:
    """The answer for ``exc``, already in the server's era (:meth:`TEIError.in_era`)."""
    return Response(
        exc.body(openai=openai),
        status_code=exc.status,
        media_type="text/plain" if exc.plain else "application/json",
        headers=exc.headers or None,
    )


def _finish(rows: Rows, normalize: bool, dimensions: int | None) -> Rows:
    """Matryoshka cut, then normalisation (core/src/infer.rs ``embed_pooled``, TEI PR #676)."""
    if dimensions is not None:
        if dimensions > rows.shape[1]:
            raise TEIError.core(
                ErrorType.VALIDATION,
                "`dimensions` should be smaller than the maximum embedding dimension.",
            )
        rows = rows[:, :dimensions]
    return normalize_rows(rows) if normalize else np.ascontiguousarray(rows)


def _metadata(
    start: float, chars: int, tokens: int, tokenization: float, embedded: Embedded
) -> dict[str, str]:
    """The response headers TEI adds (router/src/lib.rs ``From<ResponseMetadata> for
    HeaderMap``); TEI names every compute type ``gpu+optimized``."""
    total = str(int((time.monotonic() - start) * 1000))
    return {
        "x-compute-type": "gpu+optimized",
        "x-compute-time": total,
        "x-compute-characters": str(chars),
        "x-compute-tokens": str(tokens),
        "x-total-time": total,
        "x-tokenization-time": str(int(tokenization * 1000)),
        "x-queue-time": str(int(embedded.queue_seconds * 1000)),
        "x-inference-time": str(int(embedded.inference_seconds * 1000)),
    }


def _sigmoid(x: float) -> float:
    return 1.0 / (1.0 + math.exp(-x))


def _simple_tokens(text: str, encoding: Any) -> list[dict[str, Any]]:
    """TEI's ``SimpleToken`` list (core/src/tokenization.rs ``into_tokens``): ``start`` and
    ``stop`` are UTF-8 byte offsets into the text (prompt included); special tokens have
    none."""
    data = text.encode("utf-8")
    starts = [0]
    for char in text:
        starts.append(starts[-1] + len(char.encode("utf-8")))
    tokens = []
    for id_, token, (a, b), special in zip(
        encoding.ids, encoding.tokens, encoding.offsets, encoding.special_tokens_mask
    ):
        if special:
            tokens.append({"id": id_, "text": token, "special": True, "start": None, "stop": None})
        else:
            start, stop = starts[a], starts[b]
            tokens.append(
                {
                    "id": id_,
                    "text": data[start:stop].decode("utf-8", "replace"),
                    "special": False,
                    "start": start,
                    "stop": stop,
                }
            )
    return tokens


Handler = Callable[[dict[str, Any]], Awaitable[tuple[Response, int]]]


class _EndpointApp:
    def __init__(self, config: ServerConfig) -> None:
        self.config = config
        self.backend = config.backend
        self.stats = Stats()
        self.plan = FaultPlan(config.faults, time.monotonic())
        self.engine = Engine(
            config.backend,
            self.stats,
            max_input_length=config.max_input_length,
            max_batch_tokens=config.max_batch_tokens,
            max_batch_requests=config.max_batch_requests,
            max_concurrent_requests=config.max_concurrent_requests,
            tokenization_workers=config.tokenization_workers,
        )

    @contextlib.asynccontextmanager
    async def lifespan(self, app: Starlette) -> AsyncIterator[None]:
        await self.engine.start()
        self.plan = FaultPlan(self.config.faults, time.monotonic())
        try:
            yield
        finally:
            await self.engine.close()

    def _authorized(self, request: Request) -> bool:
        key = self.config.api_key
        return key is None or request.headers.get("authorization") == f"Bearer {key}"

    # -- plain routes ------------------------------------------------------------------

    async def info(self, request: Request) -> Response:
        self.stats.arrived(time.monotonic(), embed=False)
        if not self._authorized(request):
            self.stats.answered(401, "unauthorized")
            return Response(status_code=401)
        cold = self.plan.cold_for(time.monotonic())
        if cold > 0:
            self.stats.answered(503, "cold")
            return _error(self._cold(cold))
        b, c = self.backend, self.config
        self.stats.answered(200, "info")
        # router/src/lib.rs (v1.9.3): Info, every field in its order; no git sha or docker
        # label (TEI's come from its build)
        return _json(
            {
                "model_id": b.model_id,
                "model_sha": None,
                "model_dtype": b.dtype,
                "served_model_name": b.model_id,
                "model_type": {"embedding": {"pooling": b.pooling}},
                "max_concurrent_requests": c.max_concurrent_requests,
                "max_input_length": c.max_input_length,
                "max_batch_tokens": c.max_batch_tokens,
                "max_batch_requests": c.max_batch_requests,
                "max_client_batch_size": c.max_client_batch_size,
                "auto_truncate": c.auto_truncate,
                "tokenization_workers": c.tokenization_workers,
                "version": TEI_VERSIONS[c.validation_status],
                "sha": None,
                "docker_label": None,
            }
        )

    async def health(self, request: Request) -> Response:
        if self.plan.cold_for(time.monotonic()) > 0:
            return _error(TEIError.of(ErrorType.UNHEALTHY, "unhealthy"))
        return Response(status_code=200)

    async def stats_view(self, request: Request) -> Response:
        return _json({**self.stats.snapshot(), "faults": self.config.faults.to_dict()})

    async def stats_reset(self, request: Request) -> Response:
        self.stats.reset()
        return _json({"reset": True})

    # -- inference routes ----------------------------------------------------------------

    def _cold(self, seconds: float) -> TEIError:
        return TEIError(
            503,
            "Model is currently loading",
            ErrorType.UNHEALTHY,
            extra={"estimated_time": round(seconds, 3)},
        )

    def _fault(self, now: float) -> str:
        """Apply the fault plan to a request arriving at ``now``; ``"drop"`` or ``"serve"``."""
        decision = self.plan.decide(now)
        retry = {"Retry-After": str(math.ceil(decision.wait))}
        if decision.action == "cold":
            raise self._cold(decision.wait)
        if decision.action == "rate_limited":
            raise TEIError(
                429,
                "Rate limit reached: too many requests per minute",
                ErrorType.OVERLOADED,
                headers=retry,
            )
        if decision.action == "429":
            raise TEIError(429, "Model is overloaded", ErrorType.OVERLOADED, headers=retry)
        if decision.action == "502":
            raise TEIError(502, "Bad Gateway", ErrorType.BACKEND)
        if decision.action == "503":
            raise TEIError(503, "Service Unavailable", ErrorType.UNHEALTHY)
        return decision.action

    async def _body(self, request: Request) -> bytes:
        """The body within the payload limit (axum's ``DefaultBodyLimit``)."""
        too_large = TEIError(
            413, "Failed to buffer the request body: length limit exceeded", plain=True
        )
        length = request.headers.get("content-length")
        if length is not None and length.isdigit() and int(length) > self.config.payload_limit:
            raise too_large
        body = bytearray()
        async for part in request.stream():
            body += part
            if len(body) > self.config.payload_limit:
                raise too_large
        return bytes(body)

    def route(self, handler: Handler, struct: str, *, openai: bool = False) -> Any:
        """A raw ASGI endpoint (so that a dropped connection can really be dropped)."""

        async def endpoint(scope: Scope, receive: Receive, send: Send) -> None:
            request = Request(scope, receive)
            if not self._authorized(request):
                self.stats.arrived(time.monotonic())
                self.stats.answered(401, "unauthorized")
                await Response(status_code=401)(scope, receive, send)
                return
            self.stats.entered()
            try:
                await self._serve(request, handler, struct, openai, scope, receive, send)
            finally:
                self.stats.left()

        return _RawASGI(endpoint)

    async def _serve(
        self,
        request: Request,
        handler: Handler,
        struct: str,
        openai: bool,
        scope: Scope,
        receive: Receive,
        send: Send,
    ) -> None:
        now = time.monotonic()
        self.stats.arrived(now)
        hold = request.headers.get("x-scale-up-timeout")
        if hold is not None:
            self.stats.asked_to_hold(hold)
        inputs = 0
        try:
            action = self._fault(now)
            if self.config.faults.latency:
                await asyncio.sleep(self.config.faults.latency)
            if action == "drop":
                self.stats.answered(0, "drop")
                # Promise a body, then close without sending it: the client sees the
                # connection end mid-response.
                await send(
                    {
                        "type": "http.response.start",
                        "status": 200,
                        "headers": [(b"content-length", b"1000")],
                    }
                )
                return
            data = parse_json_body(
                request.headers.get("content-type"), await self._body(request), struct
            )
            response, inputs = await handler(data)
        except TEIError as exc:
            answer = exc.in_era(self.config.validation_status)
            response, action = _error(answer, openai=openai), exc.error_type.lower()
        except Exception as exc:  # never a 500 with a traceback
            logger.exception("a request failed")
            failure = TEIError.core(ErrorType.BACKEND, f"Inference error: {exc}")
            response, action = _error(failure, openai=openai), "backend"
        self.stats.answered(response.status_code, action, inputs)
        await response(scope, receive, send)

    def _check_batch(self, texts: list[Input] | list[str], field: str) -> None:
        """router/src/http/server.rs: a batch is not empty (400) and holds at most
        ``max_client_batch_size`` inputs (a Validation error)."""
        if not texts:
            raise TEIError.of(ErrorType.EMPTY, f"`{field}` cannot be empty")
        limit = self.config.max_client_batch_size
        if len(texts) > limit:
            raise TEIError.of(
                ErrorType.VALIDATION,
                f"batch size {len(texts)} > maximum allowed batch size {limit}",
            )

    async def _pooled(
        self,
        texts: list[Input],
        single: bool,
        *,
        truncate: bool | None,
        left: bool = False,
        prompt_name: str | None = None,
        normalize: bool = True,
        dimensions: int | None = None,
    ) -> tuple[Rows, int, dict[str, str]]:
        """TEI's ``embed_pooled`` for every input of a request: rows, prompt tokens and the
        response's metadata headers."""
        start = time.monotonic()
        c = self.config
        if not single:
            self._check_batch(texts, "inputs")
        if dimensions == 0:
            raise TEIError.core(ErrorType.VALIDATION, "`dimensions` should be positive")
        self.stats.received_inputs(len(texts))
        permits = self.engine.permits
        if single:
            if not permits.try_acquire(1):
                raise overloaded()
        else:
            await permits.acquire(len(texts))
        try:
            encodings = await self.engine.encode(
                texts,
                truncate=c.auto_truncate if truncate is None else truncate,
                left=left,
                prompt_name=prompt_name,
            )
            tokenized = time.monotonic()
            embedded = await self.engine.embed(encodings)
        finally:
            permits.release(len(texts))
        tokens = sum(len(e) for e in encodings)
        chars = sum(len(t) for t in texts)
        headers = _metadata(start, chars, tokens, tokenized - start, embedded)
        return _finish(embedded.rows, normalize, dimensions), tokens, headers

    async def embed(self, data: dict[str, Any]) -> tuple[Response, int]:
        request = EmbedRequest.parse(data)
        rows, _, headers = await self._pooled(
            request.inputs,
            request.single,
            truncate=request.truncate,
            left=request.left,
            prompt_name=request.prompt_name,
            normalize=request.normalize,
            dimensions=request.dimensions,
        )
        malformed = self.config.faults.malformed
        response = _malformed(malformed, rows) if malformed else _json(rows, headers=headers)
        return response, len(rows)

    async def openai_embed(self, data: dict[str, Any]) -> tuple[Response, int]:
        request = OpenAIRequest.parse(data)
        # router/src/http/server.rs openai_embed: truncate is the server's auto_truncate,
        # no prompt, always normalised.
        rows, tokens, headers = await self._pooled(
            request.inputs, request.single, truncate=None, dimensions=request.dimensions
        )
        items = [
            {
                "object": "embedding",
                "embedding": base64.b64encode(row.astype("<f4").tobytes()).decode()
                if request.base64
                else row,
                "index": i,
            }
            for i, row in enumerate(rows)
        ]
        content = {
            "object": "list",
            "data": items,
            "model": self.backend.model_id,
            "usage": {"prompt_tokens": tokens, "total_tokens": tokens},
        }
        return _json(content, headers=headers), len(rows)

    async def rerank(self, data: dict[str, Any]) -> tuple[Response, int]:
        """TEI's ``rerank`` with a bi-encoder standing in for the cross-encoder.

        TEI answers 424 ``model is not a re-ranker model`` for an embedding model; here the
        raw score of a text is the cosine similarity of its embedding with the query's (the
        hash backend's is deterministic too), and ``score`` is its sigmoid unless
        ``raw_scores`` (core/src/infer.rs ``predict``: a single-label model's logit goes
        through a sigmoid). The order, the limits and the errors are TEI's.
        """
        request = RerankRequest.parse(data)
        start = time.monotonic()
        c = self.config
        self._check_batch(request.texts, "texts")
        truncate = c.auto_truncate if request.truncate is None else request.truncate
        self.stats.received_inputs(len(request.texts))
        await self.engine.permits.acquire(len(request.texts))
        try:
            await self.engine.check_pairs(request.query, request.texts, truncate=truncate)
            encodings = await self.engine.encode(
                [request.query, *request.texts], truncate=True, left=request.left, allow_empty=True
            )
            tokenized = time.monotonic()
            embedded = await self.engine.embed(encodings)
        finally:
            self.engine.permits.release(len(request.texts))
        rows = normalize_rows(embedded.rows)
        raw = rows[1:] @ rows[0]
        ranks = []
        for index, value in enumerate(raw.tolist()):
            if math.isnan(value):
                raise TEIError.of(ErrorType.BACKEND, "score is NaN")
            rank: dict[str, Any] = {"index": index}
            if request.return_text:
                rank["text"] = request.texts[index]
            rank["score"] = np.float32(value if request.raw_scores else _sigmoid(value))
            ranks.append(rank)
        # TEI sorts ascending (a stable sort) and reverses: ties keep the later text first.
        ranks.sort(key=lambda r: r["score"])
        ranks.reverse()
        n = len(request.texts)
        chars = len(request.query) * n + sum(len(t) for t in request.texts)
        tokens = len(encodings[0]) * n + sum(len(e) for e in encodings[1:])
        headers = _metadata(start, chars, tokens, tokenized - start, embedded)
        return _json(ranks, headers=headers), len(ranks)

    async def tokenize(self, data: dict[str, Any]) -> tuple[Response, int]:
        request = TokenizeRequest.parse(data)
        if not request.single:
            self._check_batch(request.inputs, "inputs")
        tokenized = await self.engine.tokenize(
            request.inputs,
            add_special_tokens=request.add_special_tokens,
            prompt_name=request.prompt_name,
        )
        return _json([_simple_tokens(text, e) for text, e in tokenized]), len(tokenized)


def _malformed(kind: str, rows: Rows) -> Response:
    """A 200 answer that is wrong in the way ``kind`` names."""
    if kind == "html":
        return Response(b"<html><body>502 Bad Gateway</body></html>", media_type="text/html")
    listed = rows.tolist()
    if kind == "missing_row":
        return _json(listed[:-1])
    if kind == "ragged":
        return _json([row[: len(row) - i] for i, row in enumerate(listed)])
    if kind == "token_level":
        return _json([[row, row] for row in listed])
    if kind == "not_numbers":
        return _json([[str(v) for v in row] for row in listed])
    if kind == "object":
        return _json({"embeddings": listed})
    raise ValueError(f"unknown malformed answer {kind!r}")


class _RawASGI:
    """Makes Starlette route to a raw ASGI callable (a function would be wrapped)."""

    def __init__(self, app: Callable[[Scope, Receive, Send], Awaitable[None]]) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        await self.app(scope, receive, send)


def create_app(config: ServerConfig) -> Starlette:
    """The ASGI app of a local endpoint serving ``config.backend``."""
    endpoint = _EndpointApp(config)
    embed = endpoint.route(endpoint.embed, "EmbedRequest")
    openai = endpoint.route(endpoint.openai_embed, "OpenAICompatRequest", openai=True)
    routes = [
        Route("/", embed, methods=["POST"]),
        Route("/embed", embed, methods=["POST"]),
        Route("/v1/embeddings", openai, methods=["POST"]),
        Route("/embeddings", openai, methods=["POST"]),
        Route("/rerank", endpoint.route(endpoint.rerank, "RerankRequest"), methods=["POST"]),
        Route("/tokenize", endpoint.route(endpoint.tokenize, "TokenizeRequest"), methods=["POST"]),
        Route("/info", endpoint.info, methods=["GET"]),
        Route("/health", endpoint.health, methods=["GET"]),
        Route("/", endpoint.health, methods=["GET"]),
        Route("/ping", endpoint.health, methods=["GET"]),
        Route("/stats", endpoint.stats_view, methods=["GET"]),
        Route("/stats/reset", endpoint.stats_reset, methods=["POST"]),
    ]
    app = Starlette(routes=routes, lifespan=endpoint.lifespan)
    app.state.endpoint = endpoint
    return app

"""The ASGI app: Text Embeddings Inference's HTTP protocol over a backend.

``POST /`` and ``POST /embed`` take ``{"inputs": str | [str], "normalize",
"truncate", "truncation_direction", "prompt_name"}`` and answer
``[[float, ...], ...]``; ``GET /info`` and ``GET /health`` as TEI; errors are
TEI's JSON ``{"error": ..., "error_type": ...}`` with TEI's status codes.
``GET /stats`` (and ``POST /stats/reset``) expose what the server received.

Concurrent requests are batched together: each request waits in a queue and
one worker thread embeds everything queued at that moment (within the batch
token budget) in one backend call.
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
import logging
import math
import time
from collections.abc import AsyncIterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import orjson
from starlette.applications import Starlette
from starlette.concurrency import run_in_threadpool
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route
from starlette.types import Receive, Scope, Send

from .backends import Backend
from .faults import FaultPlan, Faults, Stats

__all__ = ["ServerConfig", "create_app"]

logger = logging.getLogger(__name__)

MAX_BODY_BYTES = 2_000_000


@dataclass(frozen=True)
class ServerConfig:
    """How the local endpoint behaves."""

    backend: Backend
    api_key: str | None = field(default=None, repr=False)
    max_client_batch_size: int = 32
    max_batch_tokens: int = 16384
    max_concurrent_requests: int = 512
    faults: Faults = field(default_factory=Faults)


class _Rejected(Exception):
    def __init__(self, status: int, error: str, error_type: str, **extra: Any) -> None:
        super().__init__(error)
        self.status, self.error, self.error_type, self.extra = status, error, error_type, extra


def _json(content: Any, status: int = 200, headers: dict[str, str] | None = None) -> Response:
    body = orjson.dumps(content, option=orjson.OPT_SERIALIZE_NUMPY)
    return Response(body, status_code=status, media_type="application/json", headers=headers)


def _error(
    status: int, error: str, error_type: str, headers: dict[str, str] | None = None, **extra: Any
) -> Response:
    return _json({"error": error, "error_type": error_type, **extra}, status, headers)


@dataclass(frozen=True)
class _Options:
    normalize: bool
    truncate: bool
    left: bool


@dataclass
class _Job:
    texts: list[str]
    tokens: int
    options: _Options
    done: asyncio.Future[np.ndarray[Any, Any]]


class _Batcher:
    """Joins concurrent requests into backend calls on one worker thread."""

    def __init__(self, backend: Backend, max_batch_tokens: int, stats: Stats) -> None:
        self.backend = backend
        self.max_batch_tokens = max_batch_tokens
        self.stats = stats
        self.queue: asyncio.Queue[_Job] = asyncio.Queue()
        self.worker = ThreadPoolExecutor(max_workers=1, thread_name_prefix="hf-endpoint-backend")

    async def embed(self, texts: list[str], tokens: int, options: _Options) -> np.ndarray[Any, Any]:
        job = _Job(texts, tokens, options, asyncio.get_running_loop().create_future())
        await self.queue.put(job)
        return await job.done

    async def run(self) -> None:
        loop = asyncio.get_running_loop()
        while True:
            batch = [await self.queue.get()]
            tokens = batch[0].tokens
            while not self.queue.empty():
                job = self.queue._queue[0]  # type: ignore[attr-defined]
                if job.options != batch[0].options or tokens + job.tokens > self.max_batch_tokens:
                    break
                batch.append(self.queue.get_nowait())
                tokens += job.tokens
            texts = [t for job in batch for t in job.texts]
            self.stats.batched(len(texts))
            o = batch[0].options
            call = functools.partial(
                self.backend.embed, texts, normalize=o.normalize, truncate=o.truncate, left=o.left
            )
            try:
                rows = await loop.run_in_executor(self.worker, call)
            except Exception as exc:  # the backend failed: every waiting request learns why
                logger.exception("backend failed on a batch of %d inputs", len(texts))
                for job in batch:
                    if not job.done.done():
                        job.done.set_exception(exc)
                continue
            start = 0
            for job in batch:
                if not job.done.done():
                    job.done.set_result(rows[start : start + len(job.texts)])
                start += len(job.texts)


class _EndpointApp:
    def __init__(self, config: ServerConfig) -> None:
        self.config = config
        self.backend = config.backend
        self.stats = Stats()
        self.plan = FaultPlan(config.faults, time.monotonic())
        self.batcher = _Batcher(self.backend, config.max_batch_tokens, self.stats)
        self.ready = False

    @contextlib.asynccontextmanager
    async def lifespan(self, app: Starlette) -> AsyncIterator[None]:
        await run_in_threadpool(self.backend.load)
        self.plan = FaultPlan(self.config.faults, time.monotonic())
        self.ready = True
        task = asyncio.create_task(self.batcher.run())
        try:
            yield
        finally:
            task.cancel()
            self.batcher.worker.shutdown(wait=False, cancel_futures=True)

    # -- routes ----------------------------------------------------------------

    async def info(self, request: Request) -> Response:
        self.stats.arrived(time.monotonic(), embed=False)
        if (
            self.config.api_key is not None
            and request.headers.get("authorization") != f"Bearer {self.config.api_key}"
        ):
            self.stats.answered(401, "unauthorized")
            return _error(
                401, "Authorization header is missing or the token is invalid", "unauthorized"
            )
        cold = self.plan.cold_for(time.monotonic())
        if cold > 0:
            self.stats.answered(503, "unhealthy")
            return _error(
                503, "Model is currently loading", "unhealthy", estimated_time=round(cold, 3)
            )
        b = self.backend
        self.stats.answered(200, "info")
        return _json(
            {
                "model_id": b.model_id,
                "model_sha": None,
                "model_dtype": "float32",
                "model_type": {"embedding": {"pooling": "mean"}},
                "max_concurrent_requests": self.config.max_concurrent_requests,
                "max_input_length": b.max_input_length,
                "max_batch_tokens": self.config.max_batch_tokens,
                "max_batch_requests": None,
                "max_client_batch_size": self.config.max_client_batch_size,
                "auto_truncate": False,
                "tokenization_workers": 1,
                "version": "hf-endpoint-local",
                "sha": None,
                "docker_label": None,
            }
        )

    async def health(self, request: Request) -> Response:
        if not self.ready or self.plan.cold_for(time.monotonic()) > 0:
            return _error(503, "Model is not ready", "unhealthy")
        return Response(status_code=200)

    async def stats_view(self, request: Request) -> Response:
        return _json({**self.stats.snapshot(), "faults": self.config.faults.to_dict()})

    async def stats_reset(self, request: Request) -> Response:
        self.stats.reset()
        return _json({"reset": True})

    async def embed(self, scope: Scope, receive: Receive, send: Send) -> None:
        """Raw ASGI, so that a dropped connection can really be dropped."""
        self.stats.entered()
        try:
            await self._answer(scope, receive, send)
        finally:
            self.stats.left()

    async def _answer(self, scope: Scope, receive: Receive, send: Send) -> None:
        request = Request(scope, receive)
        now = time.monotonic()
        self.stats.arrived(now)
        hold = request.headers.get("x-scale-up-timeout")
        if hold is not None:
            self.stats.asked_to_hold(hold)
        try:
            response, action, inputs = await self._embed(request, now)
        except _Rejected as exc:
            headers = (
                {"Retry-After": str(math.ceil(exc.extra["retry_after"]))}
                if "retry_after" in exc.extra
                else None
            )
            extra = {k: v for k, v in exc.extra.items() if k != "retry_after"}
            response, action, inputs = (
                _error(exc.status, exc.error, exc.error_type, headers, **extra),
                exc.error_type,
                0,
            )
        except Exception as exc:  # never a 500 with a traceback
            logger.exception("embedding failed")
            response, action, inputs = (
                _error(424, f"Inference failed: {exc}", "backend"),
                "backend",
                0,
            )
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
        self.stats.answered(response.status_code, action, inputs)
        await response(scope, receive, send)

    async def _embed(self, request: Request, now: float) -> tuple[Response, str, int]:
        config = self.config
        if (
            config.api_key is not None
            and request.headers.get("authorization") != f"Bearer {config.api_key}"
        ):
            raise _Rejected(
                401, "Authorization header is missing or the token is invalid", "unauthorized"
            )
        decision = self.plan.decide(now)
        if decision.action == "cold":
            raise _Rejected(
                503,
                "Model is currently loading",
                "unhealthy",
                estimated_time=round(decision.wait, 3),
            )
        if decision.action == "rate_limited":
            raise _Rejected(
                429,
                "Rate limit reached: too many requests per minute",
                "overloaded",
                retry_after=decision.wait,
            )
        if decision.action == "429":
            raise _Rejected(429, "Model is overloaded", "overloaded", retry_after=decision.wait)
        if decision.action == "502":
            raise _Rejected(502, "Bad Gateway", "backend")
        if decision.action == "503":
            raise _Rejected(503, "Service Unavailable", "unhealthy")
        if config.faults.latency:
            await asyncio.sleep(config.faults.latency)
        if decision.action == "drop":
            return Response(), "drop", 0
        texts, options = await self._read(request)
        self.stats.received_inputs(len(texts))
        counts = await run_in_threadpool(self.backend.count_tokens, texts)
        if not options.truncate:
            for count in counts:
                if count > self.backend.max_input_length:
                    raise _Rejected(
                        413,
                        f"Input validation error: `inputs` must have less than "
                        f"{self.backend.max_input_length} tokens. Given: {count}",
                        "validation",
                    )
        rows = await self.batcher.embed(texts, min(sum(counts), config.max_batch_tokens), options)
        if config.faults.malformed is not None:
            return _malformed(config.faults.malformed, rows), "malformed", len(texts)
        return _json(rows), "serve", len(texts)

    async def _read(self, request: Request) -> tuple[list[str], _Options]:
        body = bytearray()
        async for part in request.stream():
            body += part
            if len(body) > MAX_BODY_BYTES:
                raise _Rejected(
                    413, f"Request body is larger than {MAX_BODY_BYTES} bytes", "validation"
                )
        try:
            data = orjson.loads(bytes(body))
        except orjson.JSONDecodeError as exc:
            raise _Rejected(
                422, f"Failed to parse the request body as JSON: {exc}", "validation"
            ) from None
        if not isinstance(data, dict):
            raise _Rejected(
                422, "Failed to deserialize the JSON body: expected an object", "validation"
            )
        inputs = data.get("inputs")
        if isinstance(inputs, str):
            texts = [inputs]
        elif isinstance(inputs, list) and all(isinstance(t, str) for t in inputs):
            texts = inputs
        else:
            raise _Rejected(
                422,
                "Failed to deserialize the JSON body: `inputs` must be a string or a list of strings",
                "validation",
            )
        if not texts:
            raise _Rejected(400, "`inputs` cannot be empty", "empty")
        if len(texts) > self.config.max_client_batch_size:
            raise _Rejected(
                413,
                f"batch size {len(texts)} > maximum allowed batch size {self.config.max_client_batch_size}",
                "validation",
            )
        for key in ("normalize", "truncate"):
            if data.get(key) is not None and not isinstance(data[key], bool):
                raise _Rejected(
                    422,
                    f"Failed to deserialize the JSON body: `{key}` must be a boolean",
                    "validation",
                )
        direction = data.get("truncation_direction") or "Right"
        if direction not in ("Right", "Left"):
            raise _Rejected(
                422,
                "Failed to deserialize the JSON body: `truncation_direction` must be Right or Left",
                "validation",
            )
        prompt_name = data.get("prompt_name")
        if prompt_name is not None:
            prompt = self.backend.prompts.get(prompt_name) if isinstance(prompt_name, str) else None
            if prompt is None:
                raise _Rejected(
                    413, f"Prompt name `{prompt_name}` was not found in the prompts", "validation"
                )
            texts = [prompt + t for t in texts]
        options = _Options(
            normalize=data.get("normalize") is not False,
            truncate=bool(data.get("truncate")),
            left=direction == "Left",
        )
        return texts, options


def _malformed(kind: str, rows: np.ndarray[Any, Any]) -> Response:
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

    def __init__(self, app: Any) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        await self.app(scope, receive, send)


def create_app(config: ServerConfig) -> Starlette:
    """The ASGI app of a local endpoint serving ``config.backend``."""
    endpoint = _EndpointApp(config)
    embed = _RawASGI(endpoint.embed)
    routes = [
        Route("/", embed, methods=["POST"]),
        Route("/embed", embed, methods=["POST"]),
        Route("/info", endpoint.info, methods=["GET"]),
        Route("/health", endpoint.health, methods=["GET"]),
        Route("/stats", endpoint.stats_view, methods=["GET"]),
        Route("/stats/reset", endpoint.stats_reset, methods=["POST"]),
    ]
    app = Starlette(routes=routes, lifespan=endpoint.lifespan)
    app.state.endpoint = endpoint
    return app

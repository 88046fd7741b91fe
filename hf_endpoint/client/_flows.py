"""The client's flows: what to send and when, with no I/O (sans I/O).

A flow is a generator. It yields what it needs and receives the answers:

* ``Gate()``: pass the call's extra limiter (LlamaIndex's ``rate_limiter``);
* ``Slot()``: take a slot of the endpoint's rate limit;
* ``Wait(seconds, cold, reason)``: back off before the next attempt;
* ``Send(method, url, body, max_bytes)``: send one HTTP request; the driver
  answers with an ``Outcome``;
* ``Halved(inputs)``: a batch of ``inputs`` was split in two after a refusal for its
  size (413, or 422 naming the batch size or a token count).

``batch_flow`` is the one batch loop; ``embed_flow`` (vectors) and
``rerank_flow`` (scores) differ only in how they read a successful answer.

It returns its result or raises the error to report. Flows hold no clock, lock
or global: the sync and async drivers (``_drivers``) are the only code that
sleeps, sends or spawns, and the tests drive flows with scripted outcomes.
"""

from __future__ import annotations

import logging
from collections import deque
from collections.abc import Callable, Generator, Sequence
from dataclasses import dataclass
from typing import Any, Literal, TypeVar

import orjson

from ..errors import AuthenticationError, EndpointConnectionError
from ._protocol import (
    parse_embeddings,
    parse_error,
    parse_models,
    parse_openai_embeddings,
    parse_scores,
)
from .retry import Attempt, Fail, Outcome, Parser, Retry, RetryPolicy, Split, Success, decide, read

__all__ = [
    "Batch",
    "Gate",
    "Halved",
    "Send",
    "ServerLimits",
    "Slot",
    "Step",
    "Wait",
    "batch_flow",
    "discovery_flow",
    "embed_flow",
    "info_url",
    "models_url",
    "openai_embed_flow",
    "rerank_flow",
    "tei_root",
]

logger = logging.getLogger("hf_endpoint.client")

T = TypeVar("T")

# The most bytes a GET /info answer may have.
INFO_MAX_BYTES = 1 << 20


@dataclass(frozen=True)
class Gate:
    """Pass the call's extra limiter before the next attempt."""


@dataclass(frozen=True)
class Slot:
    """Take a slot of the endpoint's rate limit before the next attempt."""


@dataclass(frozen=True)
class Wait:
    """Wait ``seconds`` before the next attempt; ``cold`` for a starting endpoint."""

    seconds: float
    cold: bool = False
    reason: str = ""


@dataclass(frozen=True)
class Send:
    """One HTTP request; ``max_bytes`` bounds the answer the driver reads."""

    method: Literal["GET", "POST"]
    url: str
    body: bytes | None
    max_bytes: int


@dataclass(frozen=True)
class Halved:
    """A batch of ``inputs`` inputs was refused as too large and is sent in halves."""

    inputs: int


Step = Gate | Slot | Wait | Send | Halved
Flow = Generator[Step, Outcome | None, T]


@dataclass(frozen=True)
class ServerLimits:
    """What ``GET /info`` told about the endpoint (``None`` where it said nothing).

    ``tei``: the answer was Text Embeddings Inference's ``Info`` (it has
    ``max_client_batch_size`` and ``max_input_length``); ``auto_truncate``: whether
    that server cuts over-long inputs when a request does not say ``truncate``.
    """

    max_client_batch_size: int | None = None
    max_batch_tokens: int | None = None
    max_input_length: int | None = None
    model_id: str | None = None
    tei: bool = False
    auto_truncate: bool | None = None

    @classmethod
    def from_info(cls, info: Any) -> ServerLimits:
        def positive(key: str) -> int | None:
            value = info.get(key) if isinstance(info, dict) else None
            return (
                value
                if isinstance(value, int) and not isinstance(value, bool) and value > 0
                else None
            )

        model_id = info.get("model_id") if isinstance(info, dict) else None
        auto_truncate = info.get("auto_truncate") if isinstance(info, dict) else None
        return cls(
            positive("max_client_batch_size"),
            positive("max_batch_tokens"),
            positive("max_input_length"),
            model_id if isinstance(model_id, str) else None,
            tei=isinstance(info, dict)
            and {"max_client_batch_size", "max_input_length"} <= set(info),
            auto_truncate=auto_truncate if isinstance(auto_truncate, bool) else None,
        )


def info_url(url: str) -> str:
    """``GET /info`` beside the route (``/embed``, ``/rerank`` or the root); a query string stays."""
    base, sep, query = url.partition("?")
    base = base.rstrip("/")
    for route in ("/embed", "/rerank"):
        base = base.removesuffix(route)
    return base + "/info" + sep + query


def tei_root(url: str) -> str:
    """The root of a server whose OpenAI route is ``url`` (``.../v1/embeddings``); a query
    string stays. TEI serves ``/embed`` and ``/info`` there."""
    base, sep, query = url.partition("?")
    base = base.rstrip("/").removesuffix("/embeddings").removesuffix("/v1")
    return base + sep + query


def models_url(url: str) -> str:
    """``GET /v1/models`` beside an OpenAI-compatible route (``/embeddings``, ``/rerank``);
    a query string stays."""
    base, sep, query = url.partition("?")
    base = base.rstrip("/")
    for route in ("/embeddings", "/rerank"):
        base = base.removesuffix(route)
    return base + "/models" + sep + query


@dataclass(frozen=True)
class Batch:
    """Inputs ``indices`` of a call, JSON-encoded once (``encoded``), and the body's tail.

    ``key`` names the list the inputs go in: ``inputs`` (``/embed``) or ``texts``
    (``/rerank``, whose query is in the tail).
    """

    indices: Sequence[int]
    encoded: Sequence[bytes]
    tail: bytes
    response_bytes_per_input: int
    key: bytes = b"inputs"

    def body(self, indices: Sequence[int]) -> bytes:
        inputs = b",".join([self.encoded[i] for i in indices])
        return b'{"' + self.key + b'":[' + inputs + b"]" + self.tail

    def max_bytes(self, inputs: int) -> int:
        return 65_536 + inputs * self.response_bytes_per_input


def request_tail(fields: dict[str, Any]) -> bytes:
    """What follows the inputs in every body: ``,"normalize":true,...}``."""
    if not fields:
        return b"}"
    return b"," + orjson.dumps(fields)[1:]


def discovery_flow(
    url: str, *, first_contact: bool, openai: bool = False
) -> Flow[tuple[ServerLimits, bool]]:
    """Ask ``GET /info`` once (``GET /v1/models`` for the OpenAI API: the served model;
    where that is missing, as on TEI, ``GET /info`` at the root): the limits, and whether
    they are settled.

    An endpoint that is starting, overloaded or slow settles nothing: the
    configured values serve this call and the next call asks again. On the
    first contact, an address where nothing answers fails at once, naming it.
    """
    yield Gate()
    yield Slot()
    target = models_url(url) if openai else info_url(url)
    outcome = yield Send("GET", target, None, INFO_MAX_BYTES)
    assert outcome is not None
    if outcome.status in (401, 403):
        server = parse_error(outcome.content)
        raise AuthenticationError(outcome.status, server.error, server.error_type)
    if first_contact and outcome.connect_failed:
        raise EndpointConnectionError(
            f"cannot connect to {url}: {outcome.transport_error}"
            + (f" ({outcome.detail})" if outcome.detail else "")
        )
    limits = ServerLimits()
    if outcome.status == 404 and openai:
        # No GET /v1/models: TEI's OpenAI route (v1.9.3 has none) tells its limits at /info.
        yield Gate()
        yield Slot()
        target = info_url(tei_root(url))
        outcome = yield Send("GET", target, None, INFO_MAX_BYTES)
        assert outcome is not None
        openai = False
    if outcome.status == 200 and openai:
        limits = ServerLimits(model_id=parse_models(outcome.content))
    elif outcome.status == 200:
        try:
            limits = ServerLimits.from_info(orjson.loads(outcome.content))
        except orjson.JSONDecodeError:
            pass
    logger.debug(
        "endpoint limits from GET %s (%s): %s",
        target,
        outcome.transport_error or outcome.status,
        limits,
    )
    settled = outcome.transport_error is None and outcome.status not in (429, 502, 503, 504)
    return limits, settled


def embed_flow(
    url: str,
    batch: Batch,
    policy: RetryPolicy,
    draw: Callable[[], float],
    *,
    retry_connect: bool = True,
) -> Flow[list[list[float]]]:
    """``batch_flow`` for ``POST /embed``: one vector per input, in input order."""
    return batch_flow(url, batch, policy, draw, parse=parse_embeddings, retry_connect=retry_connect)


def openai_embed_flow(
    url: str,
    batch: Batch,
    policy: RetryPolicy,
    draw: Callable[[], float],
    *,
    retry_connect: bool = True,
) -> Flow[list[Any]]:
    """``batch_flow`` for ``POST /v1/embeddings``: one vector per input, in input order
    (float32 arrays for base64 answers, lists for JSON floats)."""
    return batch_flow(
        url, batch, policy, draw, parse=parse_openai_embeddings, retry_connect=retry_connect
    )


def rerank_flow(
    url: str,
    batch: Batch,
    policy: RetryPolicy,
    draw: Callable[[], float],
    *,
    retry_connect: bool = True,
) -> Flow[list[float]]:
    """``batch_flow`` for ``POST /rerank``: one score per text, in input order."""
    return batch_flow(url, batch, policy, draw, parse=parse_scores, retry_connect=retry_connect)


def batch_flow(
    url: str,
    batch: Batch,
    policy: RetryPolicy,
    draw: Callable[[], float],
    *,
    parse: Parser,
    retry_connect: bool = True,
) -> Flow[list[Any]]:
    """Send one planned batch until it succeeds or fails for good; ``parse``'s
    results (one per input: a vector, a score) in input order.

    Every attempt passes the gate and takes a rate-limit slot. HTTP 413 on
    several inputs sends the halves on their own; retries and cold-start waits
    are logged once each, with the status, the attempt and the delay.
    """
    rows: dict[int, Any] = {}
    pending: deque[Sequence[int]] = deque([batch.indices])
    while pending:
        indices = pending.popleft()
        body = batch.body(indices)
        max_bytes = batch.max_bytes(len(indices))
        attempt = Attempt(url, len(indices), indices[0], max_bytes, retry_connect=retry_connect)
        tries = 0
        while True:
            yield Gate()
            yield Slot()
            tries += 1
            outcome = yield Send("POST", url, body, max_bytes)
            assert outcome is not None
            logger.debug(
                "batch of %d inputs to %s, attempt %d: %s",
                len(indices),
                url,
                tries,
                outcome.transport_error or f"HTTP {outcome.status}",
            )
            decision = decide(policy, attempt, read(outcome, len(indices), parse), draw())
            if isinstance(decision, Success):
                rows.update(zip(indices, decision.rows))
                retry_connect = True
                break
            if isinstance(decision, Retry):
                attempt = attempt.after(decision, outcome)
                retry_connect = attempt.retry_connect
                if decision.cold:
                    logger.info(
                        "%s is starting (HTTP 503): waiting %.1f s (%.0f s of %.0f s waited)",
                        url,
                        decision.wait,
                        attempt.cold_waited,
                        policy.cold_start_timeout,
                    )
                else:
                    logger.warning(
                        "%s from %s on attempt %d of %d (%d inputs): retrying in %.2f s",
                        decision.reason,
                        url,
                        tries,
                        policy.max_retries + 1,
                        len(indices),
                        decision.wait,
                    )
                yield Wait(decision.wait, decision.cold, decision.reason)
                continue
            if isinstance(decision, Split):
                half = len(indices) // 2
                logger.info(
                    "%s from %s on %d inputs: sending halves of %d and %d",
                    decision.reason or "refused as too large",
                    url,
                    len(indices),
                    half,
                    len(indices) - half,
                )
                yield Halved(len(indices))
                pending.extendleft([indices[half:], indices[:half]])
                break
            assert isinstance(decision, Fail)
            raise decision.error
    return [rows[i] for i in batch.indices]

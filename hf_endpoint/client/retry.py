"""What to do with each answer of the endpoint (sans I/O).

Three value objects meet in ``decide(policy, attempt, reading, draw)``:

* ``Attempt``: what was sent and what came before it (the URL, the batch's size and
  first input, the retries used and the cold-start seconds waited so far);
  ``attempt.after(decision, outcome)`` is the next attempt of the same batch;
* ``Outcome``: what came back (status, headers and body, or the transport failure);
* ``Reading``: the outcome read once (``read``): a 2xx's results, or why its body
  could not be read; an error body's message and its wait hints.

``decide`` reads no bytes; it returns one of:

* ``Success(rows)``: one result per input (a vector, or a score), in input order;
* ``Retry(wait, cold)``: send the same batch again after ``wait`` seconds;
  cold-start waits (503 with ``estimated_time`` or ``Retry-After``) use their
  own, longer budget and do not count as retries;
* ``Split()``: a batch of several inputs refused for its size (see ``refusal``):
  send each half on its own;
* ``Fail(error)``: give up with this error.

A refusal is read the same before and after TEI 1.9 (``refusal``): TEI < 1.9
answers 413 for every validation error; TEI >= 1.9 answers 422 and says in the
message whether the batch has too many inputs or one input too many tokens.
Either way a batch is halved until the input at fault is alone, which then
fails with ``InputTooLargeError`` naming it; any other 400 or 422 fails with
``InputRejectedError`` naming the inputs of the request.

Retried: 429, 502, 503, 504, connection errors, timeouts and bodies that are
not JSON. Backoff doubles from ``initial_backoff`` up to ``max_backoff``, with
jitter, and never waits less than the server's ``Retry-After``.
"""

from __future__ import annotations

import email.utils
import re
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field, replace
from typing import Any, Literal

from .. import errors
from ..config._validation import is_number
from ._protocol import ServerError, UnparsableResponse, parse_embeddings, parse_error

__all__ = [
    "Attempt",
    "Fail",
    "Outcome",
    "Parser",
    "Reading",
    "Retry",
    "RetryPolicy",
    "Split",
    "Success",
    "decide",
    "read",
    "refusal",
    "retry_after_seconds",
]

RETRIED_STATUSES = frozenset({429, 502, 503, 504})


@dataclass(frozen=True)
class RetryPolicy:
    """How hard to try.

    * ``max_retries``: retries after the first attempt (cold-start waits not counted);
    * ``initial_backoff``, ``max_backoff``: the backoff doubles from one to the other;
    * ``jitter``: each backoff is scaled by a random factor in ``1 ± jitter``;
    * ``cold_start_timeout``: total seconds to wait for a scale-to-zero endpoint to wake up;
    * ``max_retry_after``: the longest single wait a ``Retry-After`` may ask for.
    """

    max_retries: int = 5
    initial_backoff: float = 1.0
    max_backoff: float = 5.0
    jitter: float = 0.25
    cold_start_timeout: float = 600.0
    max_retry_after: float = 60.0

    def __post_init__(self) -> None:
        problems = []
        if not _is_int(self.max_retries) or self.max_retries < 0:
            problems.append(f"[max_retries] must be an integer >= 0, not {self.max_retries!r}")
        for name in ("initial_backoff", "max_backoff", "cold_start_timeout", "max_retry_after"):
            value = getattr(self, name)
            if not is_number(value) or value < 0:
                problems.append(f"[{name}] must be a number of seconds >= 0, not {value!r}")
        if not is_number(self.jitter) or not 0 <= self.jitter < 1:
            problems.append(f"[jitter] must be a number in [0, 1), not {self.jitter!r}")
        if not problems and self.max_backoff < self.initial_backoff:
            problems.append(
                f"[max_backoff] must be >= initial_backoff ({self.initial_backoff}), "
                f"not {self.max_backoff!r}"
            )
        if problems:
            raise errors.ConfigError(problems)

    def backoff(self, retry: int, draw: float) -> float:
        """The wait before retry number ``retry`` (1-based); ``draw`` is uniform in [0, 1)."""
        base = min(self.max_backoff, self.initial_backoff * 2.0 ** (retry - 1))
        return base * (1 - self.jitter + 2 * self.jitter * draw)


def _is_int(value: object) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


@dataclass(frozen=True)
class Outcome:
    """One HTTP attempt: an answer, or ``transport_error`` naming what failed.

    ``detail`` says more about a transport error (never a key); ``oversize`` is
    set when the body was over the size the client accepts and was not read.
    """

    status: int = 0
    headers: Mapping[str, str] = field(default_factory=dict)
    content: bytes = b""
    transport_error: str | None = None
    detail: str = ""
    oversize: bool = False

    @property
    def connect_failed(self) -> bool:
        """Nothing answered at the address (refused, unknown host): no request reached it."""
        return self.transport_error in ("ConnectError", "ConnectTimeout")


@dataclass(frozen=True)
class Success:
    rows: list[Any]


@dataclass(frozen=True)
class Retry:
    wait: float
    cold: bool = False
    reason: str = ""


@dataclass(frozen=True)
class Split:
    reason: str = field(default="", compare=False)


@dataclass(frozen=True)
class Fail:
    error: errors.HFEndpointError


Decision = Success | Retry | Split | Fail
# Reads a 2xx body into one result per input, in input order; raises ResponseFormatError.
Parser = Callable[[bytes, int], list[Any]]


# TEI v1.9.3's validation messages: router/src/http/server.rs (the batch) and
# core/src/tokenization.rs (an input, in tokens or, before tokenizing, in characters).
_BATCH_TOO_LARGE = re.compile(r"batch size \d+ > maximum allowed batch size \d+")
_INPUT_TOO_LARGE = re.compile(
    r"must have less than \d+ (?:tokens|characters)"
    # vLLM's OpenAI server (400): "This model's maximum context length is 512 tokens. ..."
    r"|maximum context length is \d+ tokens"
    # pydantic's limit on a string (Infinity's FastAPI, 422): "String should have at most ..."
    r"|should have at most \d+ characters",
    re.IGNORECASE,
)

Refusal = Literal["batch", "input", "request"]


def refusal(status: int, server: ServerError) -> Refusal | None:
    """What a 4xx that refuses a request says about its inputs, or ``None`` for other statuses.

    * ``"batch"``: too many inputs in one request (TEI >= 1.9: 422 naming the batch size);
    * ``"input"``: an input too large (413 from TEI < 1.9 or a proxy, for the batch or an
      input alike; 422 or 400 naming a token or character count);
    * ``"request"``: any other 400 or 422 (a tokenizer error, an unknown prompt name).
    """
    if status == 413:
        return "input"
    if status not in (400, 422):
        return None
    if _BATCH_TOO_LARGE.search(server.error):
        return "batch"
    if _INPUT_TOO_LARGE.search(server.error):
        return "input"
    return "request"


def retry_after_seconds(value: str | None, now: float | None = None) -> float | None:
    """``Retry-After`` as seconds: a number, or an HTTP date; ``None`` when absent or unreadable."""
    if value is None:
        return None
    value = value.strip()
    try:
        return max(0.0, float(value))
    except ValueError:
        pass
    try:
        when = email.utils.parsedate_to_datetime(value)
    except (TypeError, ValueError):
        return None
    return max(0.0, when.timestamp() - (time.time() if now is None else now))


@dataclass(frozen=True)
class Attempt:
    """One attempt of one batch: where it went, what it carried, what came before it.

    ``retry_connect=False``: nothing has answered at the address yet, and a failed
    connection fails at once (a wrong URL should not take a minute of retries to report).
    """

    url: str = "the endpoint"
    batch_size: int = 1
    first_index: int = 0
    max_bytes: int | None = None
    retries_used: int = 0
    cold_waited: float = 0.0
    retry_connect: bool = True

    def after(self, decision: Retry, outcome: Outcome) -> Attempt:
        """The next attempt of this batch, once ``decision`` is waited out: a retry is
        counted, a cold-start wait added up; once anything answered, connections are retried."""
        answered = self.retry_connect or outcome.transport_error is None
        if decision.cold:
            return replace(
                self, cold_waited=self.cold_waited + decision.wait, retry_connect=answered
            )
        return replace(self, retries_used=self.retries_used + 1, retry_connect=answered)

    def attempts(self) -> str:
        return "1 attempt" if self.retries_used == 0 else f"{self.retries_used + 1} attempts"


@dataclass(frozen=True)
class Reading:
    """An ``Outcome`` read once: ``rows`` of a 2xx (or ``unreadable``: why not), and for
    any other status the ``server``'s error and the ``retry_after`` it asked for."""

    outcome: Outcome
    rows: list[Any] | None = None
    unreadable: errors.ResponseFormatError | None = None
    server: ServerError = field(default_factory=lambda: ServerError(""))
    retry_after: float | None = None

    @property
    def status(self) -> int:
        return self.outcome.status


def read(outcome: Outcome, batch_size: int, parse: Parser = parse_embeddings) -> Reading:
    """Read ``outcome``: ``parse`` a 2xx body (vectors by default; scores for rerank) into
    ``batch_size`` results; read an error body and its ``Retry-After``."""
    if outcome.transport_error is not None or outcome.oversize:
        return Reading(outcome)
    if 200 <= outcome.status < 300:
        try:
            return Reading(outcome, rows=parse(outcome.content, batch_size))
        except errors.ResponseFormatError as exc:
            return Reading(outcome, unreadable=exc)
    return Reading(
        outcome,
        server=parse_error(outcome.content),
        retry_after=retry_after_seconds(outcome.headers.get("retry-after")),
    )


def decide(policy: RetryPolicy, attempt: Attempt, reading: Reading, draw: float) -> Decision:
    """The next step after ``attempt`` was answered as ``reading``; see the module
    docstring. ``draw`` (uniform in [0, 1)) sets the backoff's jitter."""
    outcome, n = reading.outcome, attempt.batch_size
    retries_left = attempt.retries_used < policy.max_retries

    def retry(reason: str, server_wait: float | None = None) -> Retry:
        wait = policy.backoff(attempt.retries_used + 1, draw)
        if server_wait is not None:
            wait = max(wait, min(server_wait, policy.max_retry_after))
        return Retry(wait, reason=reason)

    if outcome.transport_error is not None:
        if retries_left and (attempt.retry_connect or not outcome.connect_failed):
            return retry(outcome.transport_error)
        detail = f" ({outcome.detail})" if outcome.detail else ""
        return Fail(
            errors.EndpointConnectionError(
                f"no answer from {attempt.url} after {attempt.attempts()}: "
                f"{outcome.transport_error}{detail}"
            )
        )
    if outcome.oversize:
        return Fail(
            errors.ResponseFormatError(
                f"the answer from {attempt.url} is larger than the {attempt.max_bytes or 0:,} "
                f"bytes accepted for {n} inputs (max_response_bytes)"
            )
        )
    if reading.rows is not None:
        return Success(reading.rows)
    if reading.unreadable is not None:
        if isinstance(reading.unreadable, UnparsableResponse) and retries_left:
            return retry("unparsable body")
        return Fail(reading.unreadable)

    status, server, server_wait = reading.status, reading.server, reading.retry_after
    if status in (401, 403):
        return Fail(errors.AuthenticationError(status, server.error, server.error_type))
    refused = refusal(status, server)
    if refused in ("batch", "input") and n > 1:
        return Split(f"HTTP {status}")
    if refused == "input":
        return Fail(
            errors.InputTooLargeError(
                attempt.first_index, f"was refused by the endpoint as too large: {server.error}"
            )
        )
    if refused is not None:
        inputs = range(attempt.first_index, attempt.first_index + n)
        return Fail(errors.InputRejectedError(status, server.error, server.error_type, inputs))
    if status == 503 and (server.estimated_time is not None or server_wait is not None):
        remaining = policy.cold_start_timeout - attempt.cold_waited
        if remaining > 0:
            hint = max(server.estimated_time or 0.0, server_wait or 0.0, 0.5)
            return Retry(
                min(hint, remaining, policy.max_retry_after),
                cold=True,
                reason="endpoint is starting",
            )
        return Fail(
            errors.EndpointOverloadedError(
                status,
                f"still starting after {attempt.cold_waited:.0f} s of waiting: {server.error}",
                server.error_type,
            )
        )
    if status in RETRIED_STATUSES:
        if retries_left:
            return retry(f"HTTP {status}", server_wait)
        return Fail(errors.EndpointOverloadedError(status, server.error, server.error_type))
    return Fail(errors.EndpointError(status, server.error, server.error_type))

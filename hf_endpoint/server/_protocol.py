"""Text Embeddings Inference's request bodies and error answers, without I/O.

Everything a client can see is mirrored from TEI's router (huggingface/text-embeddings-inference):

* error bodies ``{"error", "error_type"}`` with ``error_type`` spelled as TEI's Rust enum
  serialises it (``"Validation"``, ``"Empty"``, ...) and the status of each type as TEI
  v1.9.3 gives it (``router/src/http/server.rs``: ``impl From<&ErrorType> for StatusCode``;
  Validation is 422 since v1.9.0, PR #818, and was 413 before: :meth:`TEIError.in_era`);
* messages of core errors prefixed as ``TextEmbeddingsError`` displays them
  (``core/src/lib.rs``: ``"Input validation error: {0}"``);
* request bodies read as axum's ``Json`` extractor reads them: 415 without a JSON
  content type, 400 for a syntax error, 422 (plain text) for a body of the wrong shape,
  413 (plain text) for a body over the payload limit;
* the request structs and their defaults (``router/src/http/types.rs``: ``EmbedRequest``,
  ``RerankRequest``, ``TokenizeRequest``, ``OpenAICompatRequest``).

An input of ``/embed`` and ``/v1/embeddings`` is a string or a list of token ids, as TEI's
untagged ``Input`` reads it. Deviation: serde's `` at line L column C`` suffix is not
reproduced.
"""

from __future__ import annotations

from dataclasses import dataclass, field, replace
from typing import Any

import orjson

__all__ = [
    "PAYLOAD_LIMIT",
    "VALIDATION_STATUSES",
    "EmbedRequest",
    "ErrorType",
    "OpenAIRequest",
    "RerankRequest",
    "TEIError",
    "TokenizeRequest",
    "parse_json_body",
]

# One input: a text, or token ids (TEI's ``InputType``: ``String(String)`` | ``Ids(Vec<u32>)``).
Input = str | list[int]

# TEI's --payload-limit default (router/src/main.rs), enforced by axum's DefaultBodyLimit.
PAYLOAD_LIMIT = 2_000_000


class ErrorType:
    """TEI's ``ErrorType`` (router/src/lib.rs), serialised by variant name."""

    UNHEALTHY = "Unhealthy"
    BACKEND = "Backend"
    OVERLOADED = "Overloaded"
    VALIDATION = "Validation"
    TOKENIZER = "Tokenizer"
    EMPTY = "Empty"


# router/src/http/server.rs (v1.9.3): impl From<&ErrorType> for StatusCode
_STATUS = {
    ErrorType.UNHEALTHY: 503,
    ErrorType.BACKEND: 424,
    ErrorType.OVERLOADED: 429,
    ErrorType.TOKENIZER: 422,
    ErrorType.VALIDATION: 422,
    ErrorType.EMPTY: 400,
}

# The statuses a Validation error has had: 422 since TEI v1.9.0 (PR #818), 413
# (PAYLOAD_TOO_LARGE) in every release before it.
VALIDATION_STATUSES = (422, 413)


@dataclass
class TEIError(Exception):
    """An answer other than 200, as TEI gives it.

    ``plain`` errors are axum's extractor rejections: a ``text/plain`` body, no JSON.
    ``extra`` adds fields to the JSON body (``estimated_time`` of a cold start);
    ``headers`` adds response headers (``Retry-After``).
    """

    status: int
    error: str
    error_type: str = ErrorType.VALIDATION
    plain: bool = False
    extra: dict[str, Any] = field(default_factory=dict)
    headers: dict[str, str] = field(default_factory=dict)

    def __post_init__(self) -> None:
        super().__init__(self.error)

    @classmethod
    def of(cls, error_type: str, error: str) -> TEIError:
        """An error with the status TEI gives its type."""
        return cls(_STATUS[error_type], error, error_type)

    @classmethod
    def core(cls, error_type: str, error: str) -> TEIError:
        """A ``TextEmbeddingsError`` from TEI's core: its message carries the core's prefix."""
        prefix = {
            ErrorType.VALIDATION: "Input validation error: ",
            ErrorType.EMPTY: "Input validation error: ",
            ErrorType.BACKEND: "Backend error: ",
            ErrorType.TOKENIZER: "tokenizer error ",
        }.get(error_type, "")
        return cls.of(error_type, prefix + error)

    def in_era(self, validation_status: int) -> TEIError:
        """This error as a server answering Validation errors with ``validation_status``
        gives it (413 before TEI v1.9.0); other errors, and axum's plain rejections, are the
        same in every release."""
        if self.plain or self.error_type != ErrorType.VALIDATION:
            return self
        return replace(self, status=validation_status)

    def body(self, *, openai: bool = False) -> bytes:
        """The response body: TEI's ``ErrorResponse``, or ``OpenAICompatErrorResponse``."""
        if self.plain:
            return self.error.encode("utf-8")
        if openai:
            content: dict[str, Any] = {
                "message": self.error,
                "code": self.status,
                "type": self.error_type,
            }
        else:
            content = {"error": self.error, "error_type": self.error_type}
        return orjson.dumps({**content, **self.extra})


def overloaded() -> TEIError:
    """No permit left for a single input (core/src/lib.rs: ``Overloaded`` displays so)."""
    return TEIError.of(ErrorType.OVERLOADED, "Model is overloaded")


# -- reading a JSON body as axum's Json<T> extractor does --------------------------------


def _is_json(content_type: str | None) -> bool:
    """axum's ``json_content_type``: ``application/json`` or ``application/*+json``."""
    if not content_type:
        return False
    essence = content_type.split(";", 1)[0].strip().lower()
    kind, _, subtype = essence.partition("/")
    return kind == "application" and (subtype == "json" or subtype.endswith("+json"))


def parse_json_body(content_type: str | None, body: bytes, struct: str) -> dict[str, Any]:
    """The request's JSON object, or the rejection TEI's axum extractor gives."""
    if not _is_json(content_type):
        raise TEIError(415, "Expected request with `Content-Type: application/json`", plain=True)
    try:
        data = orjson.loads(body)
    except orjson.JSONDecodeError as exc:
        raise TEIError(
            400, f"Failed to parse the request body as JSON: {exc.msg}", plain=True
        ) from None
    if not isinstance(data, dict):
        raise _data_error("", f"invalid type: {_unexpected(data)}, expected struct {struct}")
    return data


def _data_error(path: str, message: str) -> TEIError:
    where = f"{path}: " if path else ""
    return TEIError(
        422,
        f"Failed to deserialize the JSON body into the target type: {where}{message}",
        plain=True,
    )


def _unexpected(value: Any) -> str:
    """serde_json's ``Unexpected`` as it displays a JSON value."""
    if value is None:
        return "null"
    if isinstance(value, bool):
        return f"boolean `{str(value).lower()}`"
    if isinstance(value, int):
        return f"integer `{value}`"
    if isinstance(value, float):
        return f"floating point `{value}`"
    if isinstance(value, str):
        return f"string {orjson.dumps(value).decode()}"
    if isinstance(value, list):
        return "sequence"
    return "map"


def _required(data: dict[str, Any], key: str) -> Any:
    if key not in data:
        raise _data_error("", f"missing field `{key}`")
    return data[key]


def _texts(value: Any, key: str, enum: str) -> tuple[list[str], bool]:
    """A string or a list of strings (TEI's untagged ``TokenizeInput``); ``True`` when a
    single string."""
    if isinstance(value, str):
        return [value], True
    if isinstance(value, list) and all(isinstance(t, str) for t in value):
        return value, False
    raise _data_error(key, f"data did not match any variant of untagged enum {enum}")


def _is_ids(value: Any) -> bool:
    """A ``Vec<u32>``: integers (not booleans) from 0 to 2**32 - 1."""
    return isinstance(value, list) and all(
        isinstance(v, int) and not isinstance(v, bool) and 0 <= v < 2**32 for v in value
    )


def _inputs(value: Any, key: str) -> tuple[list[Input], bool]:
    """TEI's untagged ``Input`` (router/src/http/types.rs): ``Single(InputType)`` is tried
    before ``Batch(Vec<InputType>)``, so a list of integers is one input of token ids and
    ``[]`` is one empty input (the router's empty-batch check never sees it; the core refuses
    it as Empty). ``True`` when a single input."""
    if isinstance(value, str) or _is_ids(value):
        return [value], True
    if isinstance(value, list) and all(isinstance(v, str) or _is_ids(v) for v in value):
        return value, False
    raise _data_error(key, "data did not match any variant of untagged enum Input")


def _bool(data: dict[str, Any], key: str, default: bool) -> bool:
    """A ``bool`` with a serde default: absent is the default, ``null`` is an error."""
    if key not in data:
        return default
    value = data[key]
    if not isinstance(value, bool):
        raise _data_error(key, f"invalid type: {_unexpected(value)}, expected a boolean")
    return value


def _optional_bool(data: dict[str, Any], key: str) -> bool | None:
    value = data.get(key)
    if value is not None and not isinstance(value, bool):
        raise _data_error(key, f"invalid type: {_unexpected(value)}, expected a boolean")
    return value


def _optional_str(data: dict[str, Any], key: str) -> str | None:
    value = data.get(key)
    if value is not None and not isinstance(value, str):
        raise _data_error(key, f"invalid type: {_unexpected(value)}, expected a string")
    return value


def _str(data: dict[str, Any], key: str) -> str:
    value = _required(data, key)
    if not isinstance(value, str):
        raise _data_error(key, f"invalid type: {_unexpected(value)}, expected a string")
    return value


def _optional_usize(data: dict[str, Any], key: str) -> int | None:
    value = data.get(key)
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, int):  # serde refuses 1.0 for a usize
        raise _data_error(key, f"invalid type: {_unexpected(value)}, expected usize")
    if value < 0:
        raise _data_error(key, f"invalid value: {_unexpected(value)}, expected usize")
    return value


def _left(data: dict[str, Any]) -> bool:
    """``truncation_direction``: TEI's enum takes ``Left``/``left`` and ``Right``/``right``."""
    if "truncation_direction" not in data:
        return False
    value = data["truncation_direction"]
    if not isinstance(value, str):
        raise _data_error(
            "truncation_direction",
            f"invalid type: {_unexpected(value)}, expected enum TruncationDirection",
        )
    if value not in ("Left", "left", "Right", "right"):
        raise _data_error(
            "truncation_direction",
            f"unknown variant `{value}`, expected one of `Left`, `left`, `Right`, `right`",
        )
    return value.lower() == "left"


@dataclass(frozen=True)
class EmbedRequest:
    """``POST /embed`` (and ``POST /``): router/src/http/types.rs ``EmbedRequest``."""

    inputs: list[Input]
    single: bool
    truncate: bool | None
    left: bool
    prompt_name: str | None
    normalize: bool
    dimensions: int | None

    @classmethod
    def parse(cls, data: dict[str, Any]) -> EmbedRequest:
        inputs, single = _inputs(_required(data, "inputs"), "inputs")
        return cls(
            inputs=inputs,
            single=single,
            truncate=_optional_bool(data, "truncate"),
            left=_left(data),
            prompt_name=_optional_str(data, "prompt_name"),
            normalize=_bool(data, "normalize", True),
            dimensions=_optional_usize(data, "dimensions"),
        )


@dataclass(frozen=True)
class OpenAIRequest:
    """``POST /v1/embeddings``: router/src/http/types.rs ``OpenAICompatRequest``.

    ``model`` and ``user`` are read and ignored, as TEI does; the answer names the served model.
    """

    inputs: list[Input]
    single: bool
    base64: bool
    dimensions: int | None

    @classmethod
    def parse(cls, data: dict[str, Any]) -> OpenAIRequest:
        inputs, single = _inputs(_required(data, "input"), "input")
        _optional_str(data, "model")
        _optional_str(data, "user")
        encoding = data.get("encoding_format", "float")
        if encoding not in ("float", "base64"):
            raise _data_error(
                "encoding_format",
                f"unknown variant `{encoding}`, expected `float` or `base64`"
                if isinstance(encoding, str)
                else f"invalid type: {_unexpected(encoding)}, expected enum EncodingFormat",
            )
        return cls(inputs, single, encoding == "base64", _optional_usize(data, "dimensions"))


@dataclass(frozen=True)
class RerankRequest:
    """``POST /rerank``: router/src/http/types.rs ``RerankRequest``."""

    query: str
    texts: list[str]
    truncate: bool | None
    left: bool
    raw_scores: bool
    return_text: bool

    @classmethod
    def parse(cls, data: dict[str, Any]) -> RerankRequest:
        texts = _required(data, "texts")
        if not isinstance(texts, list) or not all(isinstance(t, str) for t in texts):
            raise _data_error(
                "texts", f"invalid type: {_unexpected(texts)}, expected a sequence of strings"
            )
        return cls(
            query=_str(data, "query"),
            texts=texts,
            truncate=_optional_bool(data, "truncate"),
            left=_left(data),
            raw_scores=_bool(data, "raw_scores", False),
            return_text=_bool(data, "return_text", False),
        )


@dataclass(frozen=True)
class TokenizeRequest:
    """``POST /tokenize``: router/src/http/types.rs ``TokenizeRequest``."""

    inputs: list[str]
    single: bool
    add_special_tokens: bool
    prompt_name: str | None

    @classmethod
    def parse(cls, data: dict[str, Any]) -> TokenizeRequest:
        inputs, single = _texts(_required(data, "inputs"), "inputs", "TokenizeInput")
        return cls(
            inputs=inputs,
            single=single,
            add_special_tokens=_bool(data, "add_special_tokens", True),
            prompt_name=_optional_str(data, "prompt_name"),
        )

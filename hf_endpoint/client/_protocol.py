"""Request bodies and response parsing (sans I/O) for Text Embeddings Inference endpoints
(``/embed`` answers vectors, ``/rerank`` scores) and for the OpenAI embeddings API
(``/v1/embeddings``: ``{"data": [{"index", "embedding"}]}``, the vectors as JSON floats or
as base64 of little-endian float32)."""

from __future__ import annotations

import array
import binascii
import sys
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, Literal

import orjson

from ..errors import ResponseFormatError

__all__ = [
    "ServerError",
    "ServerOptions",
    "UnparsableResponse",
    "parse_embeddings",
    "parse_error",
    "parse_models",
    "parse_openai_embeddings",
    "parse_scores",
    "request_body",
]


@dataclass(frozen=True)
class ServerOptions:
    """TEI request options; each is sent only when set (``None`` = the server's default)."""

    truncate: bool | None = None
    normalize: bool | None = None
    prompt_name: str | None = None
    truncation_direction: Literal["Right", "Left"] | None = None

    def __post_init__(self) -> None:
        if self.truncation_direction not in (None, "Right", "Left"):
            raise ValueError(
                f"truncation_direction must be 'Right' or 'Left', not {self.truncation_direction!r}"
            )

    def body_fields(self) -> dict[str, Any]:
        return {k: v for k, v in self.__dict__.items() if v is not None}


def request_body(texts: Sequence[str], options: ServerOptions) -> bytes:
    """``{"inputs": [...], ...options}``: inputs are always a list."""
    return orjson.dumps({"inputs": list(texts), **options.body_fields()})


class UnparsableResponse(ResponseFormatError):
    """A body that is not JSON at all (cut short, or a proxy's HTML page): worth a retry."""


# JSON has no NaN or infinity, and orjson refuses them, so a float is finite.
_NUMBERS = {float, int}


def _describe(value: Any) -> str:
    """A parsed JSON value, shortened for a message."""
    return orjson.dumps(value).decode()[:80]


def parse_embeddings(content: bytes, expected_rows: int) -> list[list[float]]:
    """One vector per input, from ``[[...], ...]`` or ``{"embeddings": [[...], ...]}``.

    Raises ``ResponseFormatError`` naming what was received when the body is
    not JSON, the row count differs from ``expected_rows``, the rows have
    different lengths, a row is token-level (3-D output) or holds non-numbers.
    """
    try:
        data = orjson.loads(content)
    except orjson.JSONDecodeError:
        raise UnparsableResponse(f"the response is not JSON: {content[:80]!r}") from None
    if isinstance(data, dict) and "embeddings" in data:
        data = data["embeddings"]
    if not isinstance(data, list):
        raise ResponseFormatError(f"expected a list of vectors, received {_describe(data)}")
    if len(data) != expected_rows:
        raise ResponseFormatError(
            f"expected {expected_rows} vectors, one per input, received {len(data)}"
        )
    _check_vectors(data)
    return data


def _check_vectors(data: list[Any]) -> None:
    """Every row a non-empty list of numbers, all of one width; else ``ResponseFormatError``."""
    width = len(data[0]) if data and isinstance(data[0], list) else None
    for i, row in enumerate(data):
        if not isinstance(row, list) or not row:
            raise ResponseFormatError(
                f"vector [{i}] is not a non-empty list of numbers: {_describe(row)}"
            )
        kinds = set(map(type, row))  # in C: no Python per value
        if not kinds <= _NUMBERS:
            if list in kinds:
                raise ResponseFormatError(
                    f"vector [{i}] is a list of lists (token-level output, {len(row)} tokens): "
                    "the endpoint must pool to one vector per input"
                )
            bad = next(v for v in row if type(v) not in _NUMBERS)
            raise ResponseFormatError(
                f"vector [{i}] holds a value that is not a number: {_describe(bad)}"
            )
        if len(row) != width:
            raise ResponseFormatError(
                f"vectors have different lengths: [0] has {width}, [{i}] has {len(row)}"
            )


def _float32(i: int, encoded: str) -> array.array[float]:
    """A base64 vector of little-endian float32 as a float32 array: decoded in C, no Python
    float per value."""
    try:
        raw = binascii.a2b_base64(encoded, strict_mode=True)
    except (binascii.Error, ValueError):
        raise ResponseFormatError(f"vector [{i}] is not valid base64: {encoded[:40]!r}") from None
    if not raw or len(raw) % 4:
        raise ResponseFormatError(
            f"vector [{i}] is {len(raw)} bytes of base64: not a whole number of float32 values"
        )
    vector = array.array("f")
    vector.frombytes(raw)
    if sys.byteorder == "big":
        vector.byteswap()
    return vector


def parse_openai_embeddings(content: bytes, expected_rows: int) -> list[Any]:
    """One vector per input from an OpenAI embeddings answer, in input order.

    ``{"data": [{"index": i, "embedding": [...] | "<base64>"}, ...]}``: entries are put in
    the order of their ``index`` (each of ``0..expected_rows-1`` exactly once). A base64
    vector comes back as an ``array.array("f")`` (float32, decoded without a Python float
    per value), a JSON one as a list. Raises ``ResponseFormatError`` naming the problem.
    """
    try:
        data = orjson.loads(content)
    except orjson.JSONDecodeError:
        raise UnparsableResponse(f"the response is not JSON: {content[:80]!r}") from None
    entries = data.get("data") if isinstance(data, dict) else None
    if not isinstance(entries, list):
        raise ResponseFormatError(
            f'expected {{"data": [{{"index", "embedding"}}, ...]}}, received {_describe(data)}'
        )
    if len(entries) != expected_rows:
        raise ResponseFormatError(
            f"expected {expected_rows} vectors, one per input, received {len(entries)}"
        )
    rows: list[Any] = [None] * expected_rows
    for i, entry in enumerate(entries):
        index = entry.get("index", i) if isinstance(entry, dict) else None
        if type(index) is not int or not 0 <= index < expected_rows:
            raise ResponseFormatError(
                f"data [{i}] has no index in 0..{expected_rows - 1}: {_describe(entry)}"
            )
        if rows[index] is not None:
            raise ResponseFormatError(f"input [{index}] was answered twice")
        embedding = entry.get("embedding")
        rows[index] = _float32(index, embedding) if isinstance(embedding, str) else embedding
    floats = [row for row in rows if not isinstance(row, array.array)]
    if floats:
        _check_vectors(floats)
    width = len(rows[0])
    for i, row in enumerate(rows):
        if len(row) != width:
            raise ResponseFormatError(
                f"vectors have different lengths: [0] has {width}, [{i}] has {len(row)}"
            )
    return rows


def parse_models(content: bytes) -> str | None:
    """The first model of ``GET /v1/models`` (``{"data": [{"id"}, ...]}``), or ``None``."""
    try:
        data = orjson.loads(content)
    except orjson.JSONDecodeError:
        return None
    models = data.get("data") if isinstance(data, dict) else None
    if isinstance(models, list) and models and isinstance(models[0], dict):
        model = models[0].get("id")
        if isinstance(model, str) and model:
            return model
    return None


def parse_scores(content: bytes, expected: int) -> list[float]:
    """One score per text of a ``/rerank`` request, in the request's order.

    The answer is a list of ``{"index", "score"}`` objects in any order (TEI
    sorts them by score); ``relevance_score`` may stand for ``score``, as
    Elasticsearch accepts, and the list may be the ``results`` of an object
    (the Cohere/Jina-style answer of vLLM and Infinity). Other fields (``text``, ``document``) are ignored:
    the texts are the ones that were sent. Raises ``ResponseFormatError``
    naming the problem when the body is not JSON, an entry is not such an
    object, or the indices are not each of ``0..expected-1`` exactly once.
    """
    try:
        data = orjson.loads(content)
    except orjson.JSONDecodeError:
        raise UnparsableResponse(f"the response is not JSON: {content[:80]!r}") from None
    if isinstance(data, dict) and "results" in data:
        data = data["results"]
    if not isinstance(data, list):
        raise ResponseFormatError(
            f"expected a list of {{index, score}} objects, received {_describe(data)}"
        )
    if len(data) != expected:
        raise ResponseFormatError(f"expected {expected} scores, one per text, received {len(data)}")
    scores: list[float | None] = [None] * expected
    for i, rank in enumerate(data):
        if not isinstance(rank, dict):
            raise ResponseFormatError(f"rank [{i}] is not an object: {_describe(rank)}")
        index = rank.get("index")
        score = rank.get("score", rank.get("relevance_score"))
        if type(index) is not int or not 0 <= index < expected:
            raise ResponseFormatError(
                f"rank [{i}] has no index in 0..{expected - 1}: {_describe(rank)}"
            )
        if not isinstance(score, (int, float)) or isinstance(score, bool):
            raise ResponseFormatError(f"rank [{i}] has no numeric score: {_describe(rank)}")
        if scores[index] is not None:
            raise ResponseFormatError(f"text [{index}] was scored twice")
        scores[index] = float(score)
    # Every index was filled exactly once: as many ranks as texts, none twice.
    return scores  # type: ignore[return-value]


@dataclass(frozen=True)
class ServerError:
    """What an error body says: TEI's ``{"error", "error_type"}``, plus ``estimated_time``."""

    error: str
    error_type: str | None = None
    estimated_time: float | None = None


def _detail(detail: Any) -> str:
    """FastAPI's ``detail``: a string, or a list of ``{"loc", "msg"}`` validation errors."""
    if isinstance(detail, list):
        parts = []
        for item in detail:
            if isinstance(item, dict) and "msg" in item:
                loc = ".".join(str(p) for p in item.get("loc") or ())
                parts.append(f"{loc}: {item['msg']}" if loc else str(item["msg"]))
            else:
                parts.append(str(item))
        return "; ".join(parts)
    return str(detail)


def parse_error(content: bytes) -> ServerError:
    """Read an error body; anything that is not a known JSON shape is quoted (shortened).

    Known shapes: TEI's ``{"error", "error_type"}``; OpenAI's and vLLM's
    ``{"error": {"message", "type", "code"}}``; TEI's OpenAI route's flat
    ``{"message", "type", "code"}``; FastAPI's (Infinity's) ``{"detail": ...}``.
    """
    try:
        data = orjson.loads(content)
    except orjson.JSONDecodeError:
        data = None
    if isinstance(data, dict) and isinstance(data.get("error"), dict):
        data = data["error"]
    if isinstance(data, dict) and "error" not in data and "message" in data:
        data = {"error": data["message"], "error_type": data.get("type")}
    if isinstance(data, dict) and "error" not in data and "detail" in data:
        data = {"error": _detail(data["detail"])}
    if isinstance(data, dict) and "error" in data:
        error = data["error"]
        if isinstance(error, dict):
            # Elasticsearch's shape: {"error": {"type", "reason", ...}, "status"}.
            kind = error.get("type")
            error = error.get("reason", kind)
            data = {**data, "error_type": kind}
        if isinstance(error, list):
            error = "; ".join(str(e) for e in error)
        estimated = data.get("estimated_time")
        return ServerError(
            error=str(error),
            error_type=str(data["error_type"]) if data.get("error_type") is not None else None,
            estimated_time=float(estimated)
            if isinstance(estimated, (int, float)) and not isinstance(estimated, bool)
            else None,
        )
    text = content[:200].decode("utf-8", "replace").strip()
    return ServerError(error=text or "(empty body)")

"""Endpoint configuration: chunking settings, service settings, rerank task settings and
the PUT body.

Each value object validates on construction, reports every problem at once
(``ConfigError``) with Elasticsearch's wording, and renders back to
Elasticsearch's JSON with ``to_dict()``. The API key is a ``SecretStr``: no
``repr``, ``str``, ``to_dict`` or error message shows it.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field, fields
from typing import Any, Literal

import httpx
from pydantic import SecretStr

from ..chunking._recursive import MAX_SEPARATORS, SEPARATOR_GROUPS, separator_problem
from ..errors import ConfigError
from ._auth import clean_api_key
from ._validation import Problems, names, require_mapping, show

__all__ = [
    "SERVICE_NAME",
    "TASK_TYPES",
    "ChunkingSettings",
    "InferenceConfig",
    "RateLimit",
    "RerankTaskSettings",
    "ServiceSettings",
    "parse_task_type",
]

SERVICE_NAME = "hugging_face"
CHUNKING_SCOPE = "chunking_settings"
SERVICE_SCOPE = "service_settings"
TASK_SCOPE = "task_settings"
RATE_LIMIT_SCOPE = "rate_limit"
# The task types of the hugging_face service this package serves.
TASK_TYPES = ("text_embedding", "rerank")

Strategy = Literal["sentence", "word", "recursive", "none"]
Similarity = Literal["cosine", "dot_product", "l2_norm"]

# Lower bounds only: Elasticsearch 9.2 removed the upper bound of 300 words.
_SIZE_MINIMUM = {"sentence": 20, "word": 10, "recursive": 10}
_STRATEGY_KEYS = {
    "sentence": ("strategy", "max_chunk_size", "sentence_overlap"),
    "word": ("strategy", "max_chunk_size", "overlap"),
    "recursive": ("strategy", "max_chunk_size", "separator_group", "separators"),
    "none": ("strategy",),
}
_UNKNOWN_KEYS = {
    "sentence": "Sentence based chunking settings can not have the following settings: {keys}",
    "word": "Word based chunking settings can not have the following settings: {keys}",
    "recursive": "Recursive chunking settings can not have the following settings: {keys}",
    "none": "None chunking settings can not have the following settings: {keys}",
}
DEFAULT_MAX_CHUNK_SIZE = 250
DEFAULT_WORD_OVERLAP = 100
DEFAULT_SENTENCE_OVERLAP = 1


def _parse_chunking(data: Mapping[str, Any]) -> dict[str, Any]:
    """Validate a chunking settings map; return the normalised field values."""
    problems = Problems()
    data = dict(data)
    if "max_chunking_size" in data:
        # The published documentation names the key max_chunking_size.
        if "max_chunk_size" in data:
            problems.add(
                f"[{CHUNKING_SCOPE}] can not contain both [max_chunk_size] and its alias [max_chunking_size]"
            )
        data["max_chunk_size"] = data.pop("max_chunking_size")

    raw_strategy = data.get("strategy", "sentence")
    strategy = raw_strategy.strip().lower() if isinstance(raw_strategy, str) else None
    if strategy not in _STRATEGY_KEYS:
        problems.add(f"Invalid chunkingStrategy {show(raw_strategy)}")
        problems.raise_if_any()
    assert strategy is not None
    problems.unknown_keys(data, _STRATEGY_KEYS[strategy], _UNKNOWN_KEYS[strategy])

    result: dict[str, Any] = {"strategy": strategy}
    if strategy == "none":
        problems.raise_if_any()
        return result

    if strategy == "recursive" and "max_chunk_size" not in data:
        problems.add(f"[{CHUNKING_SCOPE}] does not contain the required setting [max_chunk_size]")
    before = len(problems.messages)
    size = problems.integer(
        data,
        "max_chunk_size",
        CHUNKING_SCOPE,
        minimum=_SIZE_MINIMUM[strategy],
        default=DEFAULT_MAX_CHUNK_SIZE,
    )
    too_small = size is None and len(problems.messages) > before
    if too_small and "strategy" not in data and "greater than" in problems.messages[-1]:
        # Without a strategy the bound is the default strategy's: say so, or 20 looks arbitrary.
        problems.messages[-1] += (
            " (the minimum of the sentence strategy, the default when no strategy is given; "
            "the word and recursive strategies take 10)"
        )
    result["max_chunk_size"] = size
    if strategy == "recursive":
        result.update(_parse_separators(data, problems))
    elif strategy == "word":
        if size is not None:
            result["overlap"] = problems.integer(
                data,
                "overlap",
                CHUNKING_SCOPE,
                minimum=1,
                maximum=size // 2,
                default=min(DEFAULT_WORD_OVERLAP, size // 2),
            )
    else:
        overlap = data.get("sentence_overlap", DEFAULT_SENTENCE_OVERLAP)
        if isinstance(overlap, int) and not isinstance(overlap, bool) and overlap not in (0, 1):
            problems.add(f"sentence_overlap[{overlap}] must be either 0 or 1")
        else:
            result["sentence_overlap"] = problems.integer(
                data, "sentence_overlap", CHUNKING_SCOPE, default=DEFAULT_SENTENCE_OVERLAP
            )
    problems.raise_if_any()
    return result


# Java's String.trim(): every character up to U+0020.
_JAVA_TRIM = "".join(chr(c) for c in range(0x21))
_GROUP_NAMES = {name.upper(): name for name in SEPARATOR_GROUPS}


def _parse_separator_group(data: Mapping[str, Any], problems: Problems) -> str | None:
    value = data.get("separator_group")
    if value is None:
        return None
    if not isinstance(value, str):
        problems.add(
            "field [separator_group] is not of the expected type. "
            f"The value [{show(value)}] cannot be converted to a [String]"
        )
        return None
    if not value:
        problems.add(
            f"[{CHUNKING_SCOPE}] Invalid value empty string. [separator_group] must be a non-empty string"
        )
        return None
    # SeparatorGroup.fromString: valueOf(name.trim().toUpperCase(Locale.ROOT)).
    group = _GROUP_NAMES.get(value.strip(_JAVA_TRIM).upper())
    if group is None:
        problems.add(
            f"[{CHUNKING_SCOPE}] Invalid value [{value}] received. "
            f"[separator_group] must be one of [{', '.join(sorted(SEPARATOR_GROUPS))}]"
        )
        return None
    return group


def _parse_separator_list(data: Mapping[str, Any], problems: Problems) -> list[str] | None:
    value = data.get("separators")
    if value is None:
        return None
    if not isinstance(value, (list, tuple)):
        problems.add(
            "field [separators] is not of the expected type. "
            f"The value [{show(value)}] cannot be converted to a [List]"
        )
        return None
    wrong = [item for item in value if not isinstance(item, str)]
    for item in wrong:
        problems.add(
            "field [separators] is not of the expected type. "
            f"The value [{show(item)}] cannot be converted to a [String]"
        )
    return None if wrong else list(value)


def _parse_separators(data: Mapping[str, Any], problems: Problems) -> dict[str, Any]:
    """``separator_group`` and ``separators`` of the recursive strategy, as Elasticsearch checks them.

    The result holds the separators in effect and, when they are a group's,
    that group's name, so equal settings compare equal however they were written.
    """
    group = _parse_separator_group(data, problems)
    separators = _parse_separator_list(data, problems)
    if separators is not None and group is not None:
        # Elasticsearch's message names the key's old name, separator_set.
        problems.add("Recursive chunking settings can not have both separators and separator_group")
    if group is not None:
        separators = list(SEPARATOR_GROUPS[group])
    elif separators is not None:
        if not separators:
            problems.add("Recursive chunking settings can not have an empty list of separators")
        if len(separators) > MAX_SEPARATORS:
            problems.add(
                f"separators list size [{len(separators)}] must not exceed [{MAX_SEPARATORS}]"
            )
        for separator in dict.fromkeys(separators):
            problem = separator_problem(separator)
            if problem is not None:
                problems.add(problem)
    else:
        separators = list(SEPARATOR_GROUPS["plaintext"])
    chosen = tuple(separators)
    named = next(
        (name for name, group_separators in SEPARATOR_GROUPS.items() if group_separators == chosen),
        None,
    )
    return {"separator_group": named, "separators": chosen}


@dataclass(frozen=True)
class ChunkingSettings:
    r"""How texts are cut into chunks before they are embedded.

    The rules are Elasticsearch's ``chunking_settings``:

    * ``sentence`` (default): ``max_chunk_size`` at least 20 words (default
      250), ``sentence_overlap`` 0 or 1 (default 1);
    * ``word``: ``max_chunk_size`` at least 10 (default 250), ``overlap``
      1..max_chunk_size/2 (default ``min(100, max_chunk_size // 2)``);
    * ``recursive``: ``max_chunk_size`` at least 10 (required), and either
      ``separator_group`` (``plaintext``, the default, or ``markdown``) or
      ``separators``, 1 to 50 Java regular expressions; the text is split at
      the start of each match of the first separator, neighbouring pieces are
      merged while they fit, a piece still too long is split with the next
      separator, and with none left by the sentence strategy. Separators are
      matched with Java's meaning; one that cannot be is refused, naming it
      (see ``hf_endpoint/chunking/_java_regex.py`` for where Java and Python differ).
      ``separator_group`` holds the group's name whenever ``separators`` are a
      group's; ``to_dict()`` lists the separators, as Elasticsearch shows them;
    * ``none``: every text is one chunk.

    There is no upper bound on ``max_chunk_size`` (Elasticsearch 9.2 removed
    the old cap of 300).

    >>> ChunkingSettings(strategy="word", max_chunk_size=50).to_dict()
    {'strategy': 'word', 'max_chunk_size': 50, 'overlap': 25}
    >>> ChunkingSettings(strategy="recursive", max_chunk_size=100, separators=["\n\n"]).to_dict()
    {'strategy': 'recursive', 'max_chunk_size': 100, 'separators': ['\n\n']}
    """

    strategy: Strategy = "sentence"
    max_chunk_size: int | None = None
    overlap: int | None = None
    sentence_overlap: int | None = None
    separator_group: str | None = None
    separators: Sequence[str] | None = None  # kept as a tuple

    def __post_init__(self) -> None:
        given = {f.name: getattr(self, f.name) for f in fields(self)}
        group, separators = given["separator_group"], given["separators"]
        if (
            isinstance(group, str)
            and isinstance(separators, (list, tuple))
            and tuple(separators) == SEPARATOR_GROUPS.get(group)
        ):
            del given["separators"]  # the canonical form of a group, as built here
        parsed = _parse_chunking({k: v for k, v in given.items() if v is not None})
        for f in fields(self):
            object.__setattr__(self, f.name, parsed.get(f.name))

    def __repr__(self) -> str:
        shown = {f.name: getattr(self, f.name) for f in fields(self)}
        if self.separator_group is not None:
            del shown["separators"]  # the group's, by definition
        text = ", ".join(f"{name}={value!r}" for name, value in shown.items() if value is not None)
        return f"ChunkingSettings({text})"

    @classmethod
    def from_dict(cls, data: Mapping[str, Any] | None) -> ChunkingSettings:
        """Build from Elasticsearch's ``chunking_settings`` JSON; ``None`` or ``{}`` give the default."""
        if data is None:
            return cls()
        return cls(**_parse_chunking(require_mapping(data, "chunking_settings")))

    @classmethod
    def coerce(cls, value: ChunkingSettings | Mapping[str, Any] | None) -> ChunkingSettings:
        """Accept settings, a JSON map or ``None`` (the default) wherever settings are taken."""
        if isinstance(value, cls):
            return value
        return cls.from_dict(value)  # type: ignore[arg-type]

    def to_dict(self) -> dict[str, Any]:
        """Elasticsearch's JSON, keys in its order (the recursive strategy lists its separators)."""
        view = {
            f.name: getattr(self, f.name)
            for f in fields(self)
            if getattr(self, f.name) is not None and f.name != "separator_group"
        }
        if self.separators is not None:
            view["separators"] = list(self.separators)
        return view


@dataclass(frozen=True)
class RateLimit:
    """Client-side request rate: ``requests_per_minute`` (default 3000), no burst."""

    requests_per_minute: int = 3000

    def __post_init__(self) -> None:
        problems = Problems()
        value = problems.positive_integer(
            {"requests_per_minute": self.requests_per_minute},
            "requests_per_minute",
            RATE_LIMIT_SCOPE,
        )
        problems.raise_if_any()
        object.__setattr__(self, "requests_per_minute", value)

    @classmethod
    def from_dict(cls, data: Mapping[str, Any] | None) -> RateLimit:
        """Build from ``{"requests_per_minute": N}``; ``None`` gives the default."""
        if data is None:
            return cls()
        data = require_mapping(data, "rate_limit")
        problems = Problems()
        problems.unknown_keys(
            data,
            ("requests_per_minute",),
            "Model configuration contains settings {keys} unknown to the [rate_limit] settings",
        )
        rpm = problems.positive_integer(data, "requests_per_minute", RATE_LIMIT_SCOPE)
        problems.raise_if_any()
        return cls() if rpm is None else cls(rpm)

    @classmethod
    def coerce(cls, value: RateLimit | Mapping[str, Any] | int | None) -> RateLimit:
        """Accept a ``RateLimit``, ``{"requests_per_minute": N}``, a bare ``N`` or ``None``."""
        if isinstance(value, cls):
            return value
        if isinstance(value, int) and not isinstance(value, bool):
            return cls(value)
        return cls.from_dict(value)  # type: ignore[arg-type]

    def to_dict(self) -> dict[str, int]:
        return {"requests_per_minute": self.requests_per_minute}


def check_url(url: str, problems: Problems) -> None:
    """Report ``url`` unless it is an absolute http or https URL."""
    try:
        parsed = httpx.URL(url)
    except (httpx.InvalidURL, TypeError) as exc:
        problems.add(
            f"[{SERVICE_SCOPE}] Invalid url [{url}] received for field [url]. Error: {exc}"
        )
        return
    if parsed.scheme not in ("http", "https") or not parsed.host:
        problems.add(
            f"[{SERVICE_SCOPE}] Invalid url [{url}] received for field [url]. "
            "Error: an absolute http or https URL is required"
        )


_SERVICE_KEYS = ("url", "api_key", "rate_limit", "similarity", "dimensions", "max_input_tokens")
# Elasticsearch's HuggingFaceRerankServiceSettings reads the url and the rate limit only.
_RERANK_SERVICE_KEYS = ("url", "api_key", "rate_limit")
_SIMILARITIES = ("cosine", "dot_product", "l2_norm")


@dataclass(frozen=True)
class ServiceSettings:
    """The ``service_settings`` of a ``hugging_face`` endpoint.

    ``api_key`` is write-only: ``repr`` shows ``SecretStr('**********')`` and
    ``to_dict()`` (the read view) leaves it out.
    """

    url: str
    api_key: SecretStr = field(repr=False)
    rate_limit: RateLimit = field(default_factory=RateLimit)
    similarity: Similarity = "cosine"
    dimensions: int | None = None
    max_input_tokens: int | None = None

    def __post_init__(self) -> None:
        key = (
            self.api_key.get_secret_value() if isinstance(self.api_key, SecretStr) else self.api_key
        )
        data = {f.name: getattr(self, f.name) for f in fields(self)}
        data["api_key"] = key
        data["rate_limit"] = self.rate_limit
        parsed = _parse_service(data)
        for name, value in parsed.items():
            object.__setattr__(self, name, value)

    def __repr__(self) -> str:
        shown = ", ".join(f"{f.name}={getattr(self, f.name)!r}" for f in fields(self))
        return f"ServiceSettings({shown})"

    @classmethod
    def from_dict(
        cls, data: Mapping[str, Any], task_type: str = "text_embedding"
    ) -> ServiceSettings:
        """Build from the ``service_settings`` JSON of a PUT body; a ``rerank`` endpoint
        takes ``url``, ``api_key`` and ``rate_limit`` only, as Elasticsearch's does."""
        allowed = _RERANK_SERVICE_KEYS if task_type == "rerank" else _SERVICE_KEYS
        parsed = _parse_service(require_mapping(data, "service_settings"), allowed)
        return cls(**parsed)

    def to_dict(self) -> dict[str, Any]:
        """The read view, in Elasticsearch's key order; never the API key."""
        view: dict[str, Any] = {"url": self.url, "similarity": self.similarity}
        if self.dimensions is not None:
            view["dimensions"] = self.dimensions
        if self.max_input_tokens is not None:
            view["max_input_tokens"] = self.max_input_tokens
        view["rate_limit"] = self.rate_limit.to_dict()
        return view


def _parse_service(
    data: Mapping[str, Any], allowed: tuple[str, ...] = _SERVICE_KEYS
) -> dict[str, Any]:
    problems = Problems()
    problems.unknown_keys(
        data,
        allowed,
        f"Model configuration contains settings {{keys}} unknown to the [{SERVICE_NAME}] service",
    )
    url = problems.string(data, "url", SERVICE_SCOPE, required=True)
    if url is not None:
        check_url(url, problems)
    raw_key = data.get("api_key")
    if isinstance(raw_key, SecretStr):
        raw_key = raw_key.get_secret_value()
    api_key = None
    if raw_key is None:
        problems.add(f"[{SERVICE_SCOPE}] does not contain the required setting [api_key]")
    elif not isinstance(raw_key, str):
        # Never echo it: a key in the wrong shape is still a key.
        problems.add(
            "field [api_key] is not of the expected type. The value (not shown) cannot be "
            "converted to a [String]"
        )
    else:
        try:
            cleaned = clean_api_key(raw_key)
        except ConfigError as exc:
            problems.messages.extend(f"[{SERVICE_SCOPE}] {e}" for e in exc.errors)
        else:
            if cleaned is None:
                problems.add(
                    f"[{SERVICE_SCOPE}] Invalid value empty string. [api_key] must be a non-empty string"
                )
            else:
                api_key = cleaned.get_secret_value()
    rate_limit = _collect(problems, RateLimit.coerce, data.get("rate_limit"))
    # Settings the task does not take were reported as unknown: their values are not read.
    data = {k: v for k, v in data.items() if k in allowed}
    similarity = data.get("similarity") or "cosine"
    if similarity not in _SIMILARITIES:
        problems.add(
            f"[{SERVICE_SCOPE}] Invalid value [{show(similarity)}] received. "
            f"[similarity] must be one of [{', '.join(_SIMILARITIES)}]"
        )
    dimensions = problems.positive_integer(data, "dimensions", SERVICE_SCOPE)
    max_input_tokens = problems.positive_integer(data, "max_input_tokens", SERVICE_SCOPE)
    problems.raise_if_any()
    return {
        "url": url,
        "api_key": SecretStr(api_key or ""),
        "rate_limit": rate_limit,
        "similarity": similarity,
        "dimensions": dimensions,
        "max_input_tokens": max_input_tokens,
    }


_RERANK_TASK_KEYS = ("top_n", "return_documents")


def _parse_rerank_task(data: Mapping[str, Any]) -> dict[str, Any]:
    problems = Problems()
    problems.unknown_keys(
        data,
        _RERANK_TASK_KEYS,
        f"Model configuration contains settings {{keys}} unknown to the [{SERVICE_NAME}] service",
    )
    result = {
        "top_n": problems.positive_integer(data, "top_n", TASK_SCOPE),
        "return_documents": problems.boolean(data, "return_documents"),
    }
    problems.raise_if_any()
    return result


@dataclass(frozen=True)
class RerankTaskSettings:
    """The ``task_settings`` of a ``rerank`` endpoint, as Elasticsearch reads them.

    * ``top_n``: keep the ``top_n`` best documents (a positive integer; default all);
    * ``return_documents``: put each document's text in the results (default no).

    Settings given with a request override the endpoint's, field by field (``merged``).

    >>> RerankTaskSettings(top_n=3).to_dict()
    {'top_n': 3}
    """

    top_n: int | None = None
    return_documents: bool | None = None

    def __post_init__(self) -> None:
        _parse_rerank_task({f.name: getattr(self, f.name) for f in fields(self)})

    @classmethod
    def from_dict(cls, data: Mapping[str, Any] | None) -> RerankTaskSettings:
        """Build from Elasticsearch's ``task_settings`` JSON; ``None`` or ``{}`` set nothing."""
        if data is None:
            return cls()
        return cls(**_parse_rerank_task(require_mapping(data, TASK_SCOPE)))

    @classmethod
    def coerce(cls, value: RerankTaskSettings | Mapping[str, Any] | None) -> RerankTaskSettings:
        """Accept settings, a JSON map or ``None``."""
        if isinstance(value, cls):
            return value
        return cls.from_dict(value)  # type: ignore[arg-type]

    def merged(self, override: RerankTaskSettings) -> RerankTaskSettings:
        """These settings with every field ``override`` sets taking its place."""
        return RerankTaskSettings(
            self.top_n if override.top_n is None else override.top_n,
            self.return_documents
            if override.return_documents is None
            else override.return_documents,
        )

    def to_dict(self) -> dict[str, Any]:
        """Elasticsearch's JSON: the fields that are set, ``top_n`` first."""
        return {
            f.name: getattr(self, f.name) for f in fields(self) if getattr(self, f.name) is not None
        }


def parse_task_type(value: object) -> str:
    """A task type as Elasticsearch reads it (trimmed, any case), or ``ConfigError``."""
    task = value.strip().lower() if isinstance(value, str) else None
    if task not in TASK_TYPES:
        raise ConfigError(
            f"The [{SERVICE_NAME}] service does not support task type [{show(value)}]"
        )
    return task


_BODY_KEYS = {
    "text_embedding": ("service", "service_settings", "chunking_settings", "task_settings"),
    # Elasticsearch reads chunking_settings for text_embedding only: a rerank body with
    # them is refused as holding an unknown setting.
    "rerank": ("service", "service_settings", "task_settings"),
}


@dataclass(frozen=True)
class InferenceConfig:
    """An Elasticsearch ``PUT _inference/<task_type>`` body for the ``hugging_face`` service.

    ``task_type`` is ``text_embedding`` (the default) or ``rerank``; only a
    ``rerank`` endpoint has ``task_settings`` (``top_n``, ``return_documents``),
    only a ``text_embedding`` one ``chunking_settings``.

    >>> cfg = InferenceConfig.from_dict({
    ...     "service": "hugging_face",
    ...     "service_settings": {"api_key": "hf_x", "url": "http://127.0.0.1:8080"},
    ... })
    >>> cfg.to_dict()["service_settings"]
    {'url': 'http://127.0.0.1:8080', 'similarity': 'cosine', 'rate_limit': {'requests_per_minute': 3000}}
    """

    service_settings: ServiceSettings
    chunking_settings: ChunkingSettings = field(default_factory=ChunkingSettings)
    service: str = SERVICE_NAME
    # Whether the body gave chunking settings: without them, clients fit
    # Elasticsearch's default to the endpoint's input limit.
    explicit_chunking: bool = True
    task_type: str = "text_embedding"
    task_settings: RerankTaskSettings = field(default_factory=RerankTaskSettings)

    @classmethod
    def from_dict(
        cls, body: Mapping[str, Any], task_type: str = "text_embedding"
    ) -> InferenceConfig:
        """Validate a PUT body for ``task_type``; every problem is reported in one ``ConfigError``."""
        task_type = parse_task_type(task_type)
        body = require_mapping(body, "inference_config")
        problems = Problems()
        problems.unknown_keys(
            body,
            _BODY_KEYS[task_type],
            f"Model configuration contains settings {{keys}} unknown to the [{SERVICE_NAME}] service",
        )
        service = body.get("service")
        if service is None:
            problems.add("Inference endpoint configuration is missing the [service] setting")
        elif service != SERVICE_NAME:
            problems.add(f"Unknown service [{show(service)}]")
        task_settings = body.get("task_settings")
        rerank_settings = RerankTaskSettings()
        if task_settings is not None and not isinstance(task_settings, Mapping):
            problems.add(
                f"field [task_settings] is not of the expected type. The value "
                f"[{show(task_settings)}] cannot be converted to a [Map]"
            )
        elif task_type == "rerank":
            rerank_settings = _collect(problems, RerankTaskSettings.from_dict, task_settings)
        elif task_settings:
            problems.add(
                f"Model configuration contains settings {names(task_settings)} "
                f"unknown to the [{SERVICE_NAME}] service"
            )
        service_settings = None
        if "service_settings" not in body:
            problems.add(
                f"[{SERVICE_SCOPE}] does not contain the required setting [service_settings]"
            )
        else:
            service_settings = _collect(
                problems, ServiceSettings.from_dict, body["service_settings"], task_type
            )
        chunking = ChunkingSettings()
        if task_type == "text_embedding":
            chunking = _collect(problems, ChunkingSettings.from_dict, body.get("chunking_settings"))
        problems.raise_if_any()
        assert service_settings is not None and chunking is not None
        return cls(
            service_settings=service_settings,
            chunking_settings=chunking,
            explicit_chunking=bool(body.get("chunking_settings")),
            task_type=task_type,
            task_settings=rerank_settings,
        )

    @classmethod
    def coerce(
        cls, value: InferenceConfig | Mapping[str, Any], task_type: str = "text_embedding"
    ) -> InferenceConfig:
        """Accept a parsed configuration of ``task_type`` or a PUT body for one."""
        if isinstance(value, InferenceConfig):
            if value.task_type != task_type:
                raise ConfigError(
                    f"Incompatible task_type, the requested type [{task_type}] does not match "
                    f"the model type [{value.task_type}]"
                )
            return value
        return cls.from_dict(value, task_type)

    def adapter_fields(self) -> dict[str, Any]:
        """What the LangChain and LlamaIndex adapters take from a PUT body."""
        s = self.service_settings
        fields = {"url": s.url, "api_key": s.api_key, "rate_limit": s.rate_limit.to_dict()}
        if self.task_type == "rerank":
            return {**fields, "top_n": self.task_settings.top_n}
        # {} asks for Elasticsearch's default fitted to the endpoint.
        chunking = self.chunking_settings.to_dict() if self.explicit_chunking else {}
        return {**fields, "chunking_settings": chunking}

    def to_dict(self) -> dict[str, Any]:
        """The read view: service, service_settings (no API key), then chunking_settings
        (``text_embedding``) or task_settings (``rerank``)."""
        if self.task_type == "rerank":
            s = self.service_settings
            return {
                "service": self.service,
                "service_settings": {"url": s.url, "rate_limit": s.rate_limit.to_dict()},
                "task_settings": self.task_settings.to_dict(),
            }
        return {
            "service": self.service,
            "service_settings": self.service_settings.to_dict(),
            "chunking_settings": self.chunking_settings.to_dict(),
        }


def _collect(problems: Problems, parse: Any, value: Any, *args: Any) -> Any:
    """Run ``parse(value, *args)`` and move its problems into ``problems``."""
    try:
        return parse(value, *args)
    except ConfigError as exc:
        problems.messages.extend(exc.errors)
    except TypeError as exc:
        problems.add(str(exc))
    return None

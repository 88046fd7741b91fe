"""Every option of the clients, declared once: the fields of ``ClientOptions``.

Each field is one option, declared with ``option()``: its name, its type, its
default, the check of its value (which names the field, the value and what is
allowed) and its docstring. Everything else is made from that declaration:

* ``ClientOptions(...)`` runs every check and reports every problem at once;
* the keyword arguments of ``EmbeddingClient`` and ``RerankClient`` and the adapters'
  pydantic fields: type checkers and IDEs read them from the source, so they are
  written there from this declaration by ``python -m hf_endpoint.client._keywords``
  (``make options``), between marker lines, and the test suite fails when what is
  written no longer matches (``_keywords.stale``); the adapters' defaults and
  descriptions are read from here at import;
* the client flags of ``hf-endpoint embed`` (``add_flags``).

Adding an option is one ``option()`` line here, ``make options``, and its test.
"""

from __future__ import annotations

import argparse
import math
import typing
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field, fields, replace
from typing import Any, Literal

from ..config._validation import Problems, is_number
from ..config.settings import ChunkingSettings, RateLimit, RerankTaskSettings, check_url
from ..errors import ConfigError
from ._protocol import ServerOptions
from .retry import RetryPolicy

__all__ = [
    "ClientOptions",
    "Declared",
    "Flag",
    "add_flags",
    "declared",
    "flagged",
    "option",
]

EMBED = "embed"
RERANK = "rerank"
BOTH = (EMBED, RERANK)
# TEI's default max_client_batch_size: a reranker's requests are planned against it.
RERANK_BATCH_SIZE = 32


# -- the checks: each reads one value, reports what is wrong, returns it canonical ----------


class Check:
    """Reads the value of option ``name``; adds a problem when it is wrong."""

    optional = False

    def __call__(self, name: str, value: Any, problems: Problems) -> Any:
        raise NotImplementedError

    def _also(self) -> str:
        return " (or None)" if self.optional else ""


@dataclass(frozen=True)
class Integer(Check):
    """A whole number ``>= low`` (booleans are not numbers)."""

    low: int
    optional: bool = False

    def __call__(self, name: str, value: Any, problems: Problems) -> Any:
        if self.optional and value is None:
            return value
        if isinstance(value, bool) or not isinstance(value, int) or value < self.low:
            problems.add(f"[{name}] must be an integer >= {self.low}{self._also()}, not {value!r}")
        return value


@dataclass(frozen=True)
class Seconds(Check):
    """A positive, finite number of seconds, kept as a float."""

    optional: bool = False

    def __call__(self, name: str, value: Any, problems: Problems) -> Any:
        if self.optional and value is None:
            return value
        if not is_number(value) or not math.isfinite(value) or value <= 0:
            problems.add(
                f"[{name}] must be a positive number of seconds{self._also()}, not {value!r}"
            )
            return value
        return float(value)


@dataclass(frozen=True)
class Boolean(Check):
    """``True`` or ``False``, or ``None`` (the endpoint's default) when optional."""

    optional: bool = True

    def __call__(self, name: str, value: Any, problems: Problems) -> Any:
        if value is None and not self.optional:
            problems.add(f"[{name}] must be true or false, not None")
        elif value is not None and not isinstance(value, bool):
            problems.add(f"[{name}] must be true, false or None, not {value!r}")
        return value


@dataclass(frozen=True)
class Text(Check):
    """A string, or ``None``; ``blank=False``: one with more than white space."""

    blank: bool = True
    optional: bool = True

    def __call__(self, name: str, value: Any, problems: Problems) -> Any:
        if value is None:
            return value
        if self.blank and not isinstance(value, str):
            problems.add(f"[{name}] must be a string (or None), not {value!r}")
        elif not self.blank and (not isinstance(value, str) or not value.strip()):
            problems.add(f"[{name}] must be a non-empty string (or None), not {value!r}")
        return value


@dataclass(frozen=True)
class OneOf(Check):
    """One of ``choices`` (or ``None`` when optional)."""

    choices: tuple[str, ...]
    optional: bool = False

    def __call__(self, name: str, value: Any, problems: Problems) -> Any:
        if (value is not None or not self.optional) and value not in self.choices:
            shown = "[" + ", ".join(self.choices) + "]"
            problems.add(f"[{name}] must be one of {shown}{self._also()}, not {value!r}")
        return value


@dataclass(frozen=True)
class Coerced(Check):
    """What ``coerce(value)`` makes of the value; its ``ConfigError`` problems are
    reported as they are, a ``TypeError`` as ``[name]`` then ``wrong`` (or the error)."""

    coerce: Callable[[Any], Any]
    wrong: str = ""
    optional: bool = True

    def __call__(self, name: str, value: Any, problems: Problems) -> Any:
        if self.optional and value is None:
            return value
        try:
            return self.coerce(value)
        except ConfigError as exc:
            problems.messages.extend(exc.errors)
        except TypeError as exc:
            problems.add(f"[{name}] {self.wrong.format(value=value) or exc}")
        return value


def _url(name: str, value: Any, problems: Problems) -> Any:
    if not isinstance(value, str) or not value.strip():
        problems.add(f"[{name}] must be a non-empty http or https URL, not {value!r}")
    else:
        check_url(value, problems)
    return value


def _retry_policy(name: str, value: Any, problems: Problems) -> Any:
    if value is not None and not isinstance(value, RetryPolicy):
        problems.add(f"[{name}] must be a RetryPolicy, not {value!r}")
    return value


def _chunking(name: str, value: Any, problems: Problems) -> Any:
    if not value:  # {} asks for the default fitted to the endpoint, as None does
        return None
    return Coerced(ChunkingSettings.coerce)(name, value, problems)


def _task_setting(name: str, value: Any, problems: Problems) -> Any:
    try:
        RerankTaskSettings(**{name: value})
    except ConfigError as exc:
        problems.messages.extend(exc.errors)
    return value


# -- the declaration ---------------------------------------------------------------------------


@dataclass(frozen=True)
class Flag:
    """How an option is given to ``hf-endpoint embed``: ``--name-with-dashes``.

    ``negatable``: a ``--no-...`` flag too; ``exclusive``: flags that share this
    group name exclude each other.
    """

    help: str
    metavar: str | None = None
    negatable: bool = False
    exclusive: str | None = None


@dataclass(frozen=True)
class Declared:
    """One option as ``option()`` declared it, with its name, type and default filled in.

    ``takes``: the type a client accepts (the stored ``type`` unless the check
    widens it), ``adapter_takes`` the adapters' where it differs (JSON-shaped);
    ``clients``: which clients take it (``"embed"``, ``"rerank"``) and
    ``client_defaults`` where one has a default of its own; ``adapter``: whether
    the adapters of those clients have it as a field of the same name.
    """

    doc: str
    check: Callable[[str, Any, Problems], Any]
    clients: tuple[str, ...] = BOTH
    adapter: bool = True
    flag: Flag | None = None
    takes: Any = None
    adapter_takes: Any = None
    client_defaults: tuple[tuple[str, Any], ...] = ()
    name: str = ""
    default: Any = None
    type: Any = None

    def accepts(self) -> Any:
        """The type of the clients' keyword argument."""
        return self.type if self.takes is None else self.takes

    def default_for(self, client: str) -> Any:
        """The default of ``client`` (``"embed"`` or ``"rerank"``)."""
        return dict(self.client_defaults).get(client, self.default)


def option(
    default: Any,
    doc: str,
    check: Callable[[str, Any, Problems], Any],
    *,
    clients: tuple[str, ...] = BOTH,
    adapter: bool = True,
    flag: Flag | None = None,
    takes: Any = None,
    adapter_takes: Any = None,
    client_defaults: Mapping[str, Any] | None = None,
) -> Any:
    """Declare a field of ``ClientOptions`` as an option (see ``Declared``)."""
    own = tuple((client_defaults or {}).items())
    spec = Declared(doc, check, clients, adapter, flag, takes, adapter_takes, own)
    return field(default=default, metadata={"option": spec})


@dataclass(frozen=True)
class ClientOptions:
    """What a client is built from, except the key, the limiter and the HTTP client.

    Construction validates every field and raises one ``ConfigError`` listing
    every problem, each naming the field, the value and the allowed range.
    """

    url: str = option(
        None,
        "The endpoint URL; requests go to it as given (see ``protocol``).",
        _url,
        adapter=False,
    )
    rate_limit: RateLimit = option(
        None,
        'Requests per minute: N or {"requests_per_minute": N}; default 3000, '
        "shared by every client of this URL and key on this machine.",
        Coerced(
            RateLimit.coerce,
            'must be a positive integer or {{"requests_per_minute": N}}, not {value!r}',
            optional=False,
        ),
        takes=RateLimit | Mapping[str, Any] | int | None,
        adapter_takes=int | dict[str, int] | None,
    )
    batch_size: int = option(
        20,
        "Inputs per request (rerank: documents, default 32), lowered to the endpoint's "
        "max_client_batch_size when GET /info tells it.",
        Integer(1),
        adapter=False,
        flag=Flag("chunks per request", "N"),
        client_defaults={RERANK: RERANK_BATCH_SIZE},
    )
    max_concurrency: int = option(
        4, "Requests in flight at once.", Integer(1), flag=Flag("requests in flight at once", "N")
    )
    timeout: float = option(60.0, "Seconds per HTTP attempt, the whole answer included.", Seconds())
    max_retries: int | None = option(
        None, "Retries after the first attempt (default 5).", Integer(0, optional=True)
    )
    retry_policy: RetryPolicy | None = option(
        None, "The whole retry policy, instead of max_retries.", _retry_policy
    )
    truncate: bool | None = option(
        None,
        "Ask the endpoint to truncate long inputs; unset, an over-long input is refused "
        "(and chunked again, or reported).",
        Boolean(),
        flag=Flag("let the endpoint cut chunks longer than the model takes (default: refuse them)"),
    )
    normalize: bool | None = option(
        None,
        "Ask the endpoint to L2-normalise vectors (sent only when set).",
        Boolean(),
        clients=(EMBED,),
        flag=Flag(
            "ask for unit-length vectors, or not (default: the endpoint's, usually yes)",
            negatable=True,
        ),
    )
    prompt_name: str | None = option(
        None,
        "The endpoint's prompt for documents (a prompt its model folder defines).",
        Text(blank=False),
        clients=(EMBED,),
    )
    truncation_direction: Literal["Right", "Left"] | None = option(
        None, "Which end truncate cuts.", OneOf(("Right", "Left"), optional=True)
    )
    max_input_tokens: int | None = option(
        None,
        "Inputs longer than max_input_tokens * 3 characters are cut to that before "
        "sending, as Elasticsearch does.",
        Integer(1, optional=True),
        clients=(EMBED,),
    )
    chunking_settings: ChunkingSettings | None = option(
        None,
        "The chunking of embed_chunks; default (None, or {}): Elasticsearch's, fitted to "
        "the endpoint.",
        _chunking,
        clients=(EMBED,),
        adapter=False,
        takes=ChunkingSettings | Mapping[str, Any] | None,
    )
    scale_up_timeout: float | None = option(
        None,
        "Sent as X-Scale-Up-Timeout: a scale-to-zero endpoint holds the request while it starts.",
        Seconds(optional=True),
    )
    discover_limits: bool = option(
        True,
        "Ask GET /info for the endpoint's limits (max_client_batch_size, max_batch_tokens).",
        Boolean(optional=False),
    )
    max_body_bytes: int = option(
        2_000_000, "The most bytes one request body may have.", Integer(1024)
    )
    max_response_bytes: int | None = option(
        None,
        "The most bytes one answer may have (default 1 MiB per input).",
        Integer(1024, optional=True),
    )
    dimensions: int | None = option(
        None,
        "The width every vector must have (sent as dimensions on the OpenAI route).",
        Integer(1, optional=True),
        clients=(EMBED,),
    )
    protocol: Literal["auto", "tei", "openai"] = option(
        "auto",
        "tei: Text Embeddings Inference (POST /embed, /rerank); openai: the OpenAI-compatible "
        "servers' API (vLLM, Infinity, TEI's /v1/embeddings; Cohere-style /v1/rerank); "
        "auto: openai when the URL ends in /embeddings (/v1/rerank for rerank), else tei.",
        OneOf(("auto", "tei", "openai")),
        flag=Flag(
            "tei: POST /embed; openai: POST /v1/embeddings (vLLM, Infinity, TEI's OpenAI "
            "route); auto: openai when the URL ends in /embeddings"
        ),
    )
    model: str | None = option(
        None,
        "The model the openai protocol asks for; default: the first of GET /v1/models.",
        Text(blank=False),
        flag=Flag("the model the OpenAI route asks for (default: the first of GET /v1/models)"),
    )
    encoding_format: Literal["base64", "float"] = option(
        "base64",
        "How the OpenAI route sends vectors: base64 (float32, decoded in C) or float (JSON).",
        OneOf(("base64", "float")),
        clients=(EMBED,),
    )
    document_prefix: str | None = option(
        None,
        'Put before every document (each chunk, when chunking) sent, e.g. "passage: " for '
        "e5 models; offsets still point into the original text.",
        Text(),
        clients=(EMBED,),
        flag=Flag(
            "sent before each chunk, e.g. 'passage: ' for e5 models (offsets unchanged)",
            "TEXT",
            exclusive="prefix",
        ),
    )
    query_prefix: str | None = option(
        None,
        'Put before every query sent, e.g. "query: " for e5 models, or bge\'s "Represent '
        'this sentence for searching relevant passages: ".',
        Text(),
        clients=(EMBED,),
        flag=Flag(
            "the records are queries: sent before each chunk, e.g. 'query: ' for e5 models",
            "TEXT",
            exclusive="prefix",
        ),
    )
    raw_scores: bool | None = option(
        None, "Ask the endpoint for raw scores (no sigmoid).", Boolean(), clients=(RERANK,)
    )
    top_n: int | None = option(
        None,
        "Keep the top_n most relevant documents (a positive integer); None keeps them all, "
        "reordered. Elasticsearch's rerank task_settings.top_n.",
        _task_setting,
        clients=(RERANK,),
    )
    return_documents: bool | None = option(
        None,
        "Put each document's text in the results. Elasticsearch's rerank "
        "task_settings.return_documents.",
        _task_setting,
        clients=(RERANK,),
    )

    def __post_init__(self) -> None:
        problems = Problems()
        for spec in declared(of=type(self)):
            value = getattr(self, spec.name)
            checked = spec.check(spec.name, value, problems)
            if checked is not value:
                object.__setattr__(self, spec.name, checked)
        if self.max_retries is not None and self.retry_policy is not None:
            problems.add("[max_retries] give max_retries or retry_policy, not both")
        problems.raise_if_any()

    @classmethod
    def from_arguments(cls, client: str, arguments: Mapping[str, Any]) -> ClientOptions:
        """The options of ``client`` (``"embed"``, ``"rerank"``) among ``arguments`` (the
        keyword arguments of its constructor, ``locals()``); the others keep their default."""
        return cls(**{s.name: arguments[s.name] for s in declared(client) if s.name in arguments})

    @property
    def policy(self) -> RetryPolicy:
        """The retry policy: ``retry_policy``, else the default with ``max_retries``."""
        if self.retry_policy is not None:
            return self.retry_policy
        if self.max_retries is None:
            return RetryPolicy()
        return RetryPolicy(max_retries=self.max_retries)

    @property
    def openai(self) -> bool:
        """Whether requests speak the OpenAI embeddings API: ``protocol="openai"``, or
        ``"auto"`` and a URL whose path ends in ``/embeddings`` (``/v1/embeddings``)."""
        if self.protocol == "auto":
            return self.url.partition("?")[0].rstrip("/").endswith("/embeddings")
        return self.protocol == "openai"

    def openai_fields(self, served_model: str | None) -> dict[str, Any]:
        """What every OpenAI embeddings request carries beside ``input``."""
        fields: dict[str, Any] = {}
        model = self.model or served_model
        if model is not None:
            fields["model"] = model
        fields["encoding_format"] = self.encoding_format
        if self.dimensions is not None:
            fields["dimensions"] = self.dimensions
        return fields

    @property
    def server_options(self) -> ServerOptions:
        """The TEI options every request carries.

        ``truncate`` unset is sent as ``false``, unlike the other options: TEI >= 1.9
        truncates by default (``--auto-truncate``), so a request that says nothing
        would have an over-long input cut without the caller knowing. ``false``
        makes the endpoint refuse it instead, and the client reports it or chunks
        it again, smaller, as it does against TEI < 1.9 (where ``false`` is the default).
        """
        truncate = False if self.truncate is None else self.truncate
        return ServerOptions(truncate, self.normalize, self.prompt_name, self.truncation_direction)

    def prefixed(self, texts: list[str], query: bool = False) -> list[str]:
        """What is sent for ``texts``: each with ``query_prefix`` (queries) or
        ``document_prefix`` (documents, each chunk of them) before it, when set."""
        prefix = self.query_prefix if query else self.document_prefix
        return [prefix + text for text in texts] if prefix else texts

    def headers(self, api_key: str | None) -> dict[str, str]:
        """The headers of every request."""
        headers = {"Content-Type": "application/json"}
        if api_key:
            headers["Authorization"] = f"Bearer {api_key}"
        if self.scale_up_timeout is not None:
            headers["X-Scale-Up-Timeout"] = str(math.ceil(self.scale_up_timeout))
        return headers


def declared(client: str | None = None, of: type[ClientOptions] | None = None) -> list[Declared]:
    """Every option, in declaration order; ``client``: only those that client takes.

    ``of``: a subclass of ``ClientOptions`` that declares more (tests use one to see a new
    option reach every place made from the declaration)."""
    return [s for s in _read(of or ClientOptions) if client is None or client in s.clients]


_READ: dict[type[ClientOptions], tuple[Declared, ...]] = {}


def _read(of: type[ClientOptions]) -> tuple[Declared, ...]:
    found = _READ.get(of)
    if found is None:  # once per class: every client's construction reads it
        hints = typing.get_type_hints(of)
        found = _READ[of] = tuple(
            replace(f.metadata["option"], name=f.name, default=f.default, type=hints[f.name])
            for f in fields(of)
        )
    return found


def _at_least(low: int) -> Callable[[str], int]:
    def whole_number(value: str) -> int:
        try:
            number = int(value)
        except ValueError:
            number = low - 1
        if number < low:
            raise argparse.ArgumentTypeError(
                f"must be a whole number >= {low}, not {value!r}"
            ) from None
        return number

    return whole_number


def flagged(options: Iterable[Declared] | None = None) -> list[Declared]:
    """The options (of ``options``, default every option ``EmbeddingClient`` takes) that
    have a flag on ``hf-endpoint embed``."""
    return [s for s in (declared(EMBED) if options is None else options) if s.flag is not None]


def add_flags(group: argparse._ActionsContainer, options: Iterable[Declared] | None = None) -> None:
    """Add to ``group`` the flag of every option that has one (see ``flagged``):
    ``--name-with-dashes``, whose ``dest`` is the option's name."""
    exclusive: dict[str, argparse._ActionsContainer] = {}
    for spec in flagged(options):
        flag = spec.flag
        assert flag is not None
        where = group
        if flag.exclusive is not None:
            if flag.exclusive not in exclusive:
                exclusive[flag.exclusive] = group.add_mutually_exclusive_group()
            where = exclusive[flag.exclusive]
        extra: dict[str, Any] = {}
        check = spec.check
        if isinstance(check, Boolean):
            extra["action"] = argparse.BooleanOptionalAction if flag.negatable else "store_true"
        elif isinstance(check, Integer):
            extra["type"] = _at_least(check.low)
        elif isinstance(check, OneOf):
            extra["choices"] = list(check.choices)
        if flag.metavar is not None:
            extra["metavar"] = flag.metavar
        where.add_argument(
            "--" + spec.name.replace("_", "-"), default=spec.default, help=flag.help, **extra
        )


def openai_route(url: str) -> str:
    """The embeddings route of an OpenAI-compatible server: a URL ending in ``/embeddings``
    as given; ``.../v1`` gets ``/embeddings``, any other base ``/v1/embeddings``."""
    base, sep, query = url.partition("?")
    base = base.rstrip("/")
    if not base.endswith("/embeddings"):
        base += "/embeddings" if base.endswith("/v1") else "/v1/embeddings"
    return base + sep + query

"""``ClientOptions``: every option of the client, validated once, every problem reported.

The client, both adapters, the registry and the command line build their
clients through this one object, so an option means the same everywhere and a
bad value gets the same message: the field, the value and what is allowed.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass, field, fields
from typing import Any, Literal

from ..config._validation import Problems
from ..config.settings import ChunkingSettings, RateLimit, check_url
from ..errors import ConfigError
from ._protocol import ServerOptions
from .retry import RetryPolicy

__all__ = ["ClientOptions"]

TRUNCATION_DIRECTIONS = ("Right", "Left")
PROTOCOLS = ("auto", "tei", "openai")
ENCODING_FORMATS = ("base64", "float")


def _is_int(value: object) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


def _is_number(value: object) -> bool:
    return (
        isinstance(value, (int, float))
        and not isinstance(value, bool)
        and math.isfinite(float(value))
    )


@dataclass(frozen=True)
class ClientOptions:
    """What an ``EmbeddingClient`` is built from, except the key (see ``EmbeddingClient``).

    Construction validates every field and raises one ``ConfigError`` listing
    every problem, each naming the field, the value and the allowed range.
    """

    url: str
    rate_limit: RateLimit = field(default_factory=RateLimit)
    batch_size: int = 20
    max_concurrency: int = 4
    timeout: float = 60.0
    max_retries: int | None = None
    retry_policy: RetryPolicy | None = None
    truncate: bool | None = None
    normalize: bool | None = None
    prompt_name: str | None = None
    truncation_direction: Literal["Right", "Left"] | None = None
    max_input_tokens: int | None = None
    chunking_settings: ChunkingSettings | None = None
    scale_up_timeout: float | None = None
    discover_limits: bool = True
    max_body_bytes: int = 2_000_000
    max_response_bytes: int | None = None
    dimensions: int | None = None
    protocol: Literal["auto", "tei", "openai"] = "auto"
    model: str | None = None
    encoding_format: Literal["base64", "float"] = "base64"
    query_prefix: str | None = None
    document_prefix: str | None = None

    def __post_init__(self) -> None:
        problems = Problems()
        set_ = object.__setattr__

        if not isinstance(self.url, str) or not self.url.strip():
            problems.add(f"[url] must be a non-empty http or https URL, not {self.url!r}")
        else:
            check_url(self.url, problems)
        try:
            set_(self, "rate_limit", RateLimit.coerce(self.rate_limit))
        except ConfigError as exc:
            problems.messages.extend(exc.errors)
        except TypeError:
            problems.add(
                '[rate_limit] must be a positive integer or {"requests_per_minute": N}, '
                f"not {self.rate_limit!r}"
            )
        for name, low in (("batch_size", 1), ("max_concurrency", 1), ("max_body_bytes", 1024)):
            self._integer(problems, name, low)
        self._integer(problems, "max_response_bytes", 1024, optional=True)
        self._integer(problems, "max_input_tokens", 1, optional=True)
        self._integer(problems, "dimensions", 1, optional=True)
        if not _is_number(self.timeout) or self.timeout <= 0:
            problems.add(f"[timeout] must be a positive number of seconds, not {self.timeout!r}")
        else:
            set_(self, "timeout", float(self.timeout))
        if self.scale_up_timeout is not None and (
            not _is_number(self.scale_up_timeout) or self.scale_up_timeout <= 0
        ):
            problems.add(
                "[scale_up_timeout] must be a positive number of seconds (or None), "
                f"not {self.scale_up_timeout!r}"
            )
        self._integer(problems, "max_retries", 0, optional=True)
        if self.max_retries is not None and self.retry_policy is not None:
            problems.add("[max_retries] give max_retries or retry_policy, not both")
        if self.retry_policy is not None and not isinstance(self.retry_policy, RetryPolicy):
            problems.add(f"[retry_policy] must be a RetryPolicy, not {self.retry_policy!r}")
        for name in ("truncate", "normalize", "discover_limits"):
            value = getattr(self, name)
            if value is not None and not isinstance(value, bool):
                problems.add(f"[{name}] must be true, false or None, not {value!r}")
        if self.discover_limits is None:
            problems.add("[discover_limits] must be true or false, not None")
        if self.prompt_name is not None and (
            not isinstance(self.prompt_name, str) or not self.prompt_name.strip()
        ):
            problems.add(
                f"[prompt_name] must be a non-empty string (or None), not {self.prompt_name!r}"
            )
        for name in ("query_prefix", "document_prefix"):
            value = getattr(self, name)
            if value is not None and not isinstance(value, str):
                problems.add(f"[{name}] must be a string (or None), not {value!r}")
        if self.truncation_direction not in (None, *TRUNCATION_DIRECTIONS):
            problems.add(
                "[truncation_direction] must be one of [Right, Left] (or None), "
                f"not {self.truncation_direction!r}"
            )
        if self.protocol not in PROTOCOLS:
            problems.add(f"[protocol] must be one of [auto, tei, openai], not {self.protocol!r}")
        if self.model is not None and (not isinstance(self.model, str) or not self.model.strip()):
            problems.add(f"[model] must be a non-empty string (or None), not {self.model!r}")
        if self.encoding_format not in ENCODING_FORMATS:
            problems.add(
                f"[encoding_format] must be one of [base64, float], not {self.encoding_format!r}"
            )
        if self.chunking_settings is not None:
            try:
                set_(self, "chunking_settings", ChunkingSettings.coerce(self.chunking_settings))
            except ConfigError as exc:
                problems.messages.extend(exc.errors)
            except TypeError as exc:
                problems.add(f"[chunking_settings] {exc}")
        problems.raise_if_any()

    def _integer(self, problems: Problems, name: str, low: int, optional: bool = False) -> None:
        value = getattr(self, name)
        if optional and value is None:
            return
        if not _is_int(value) or value < low:
            also = " (or None)" if optional else ""
            problems.add(f"[{name}] must be an integer >= {low}{also}, not {value!r}")

    @classmethod
    def from_mapping(cls, values: Mapping[str, Any]) -> ClientOptions:
        """Build from keyword arguments; unknown names are reported with the rest."""
        known = {f.name for f in fields(cls)}
        unknown = sorted(set(values) - known)
        if unknown:
            raise ConfigError(
                f"unknown client options {unknown}; known options are {sorted(known)}"
            )
        return cls(**values)

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


def openai_route(url: str) -> str:
    """The embeddings route of an OpenAI-compatible server: a URL ending in ``/embeddings``
    as given; ``.../v1`` gets ``/embeddings``, any other base ``/v1/embeddings``."""
    base, sep, query = url.partition("?")
    base = base.rstrip("/")
    if not base.endswith("/embeddings"):
        base += "/embeddings" if base.endswith("/v1") else "/v1/embeddings"
    return base + sep + query

"""Every error this package raises.

The hierarchy::

    HFEndpointError
    ├── ConfigError (also a ValueError)      invalid settings, configuration or input
    │   └── InputTooLargeError               one input cannot be sent (names its index)
    ├── EndpointError                        the endpoint answered with an error status
    │   ├── AuthenticationError              401 or 403: the token is missing or wrong
    │   ├── InputRejectedError               400 or 422 on these inputs, not for their size
    │   └── EndpointOverloadedError          429/502/503/504 still, after every retry
    ├── EndpointConnectionError (also a ConnectionError)
    │                                        no answer: connection refused, dropped, timed out
    └── ResponseFormatError                  an answer that is not one vector (or score) per input

Messages never contain an API key: settings hold it as a ``SecretStr`` and no
code path formats it into text. Messages never contain input texts either.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

__all__ = [
    "AuthenticationError",
    "ConfigError",
    "EndpointConnectionError",
    "EndpointError",
    "EndpointOverloadedError",
    "HFEndpointError",
    "InputRejectedError",
    "InputTooLargeError",
    "ResponseFormatError",
]


class HFEndpointError(Exception):
    """Base class of every error raised by ``hf_endpoint`` and its adapters.

    Every one pickles and comes back with its message and attributes (errors cross
    processes: Ray tasks, multiprocessing, a framework's event log pickled with an
    adapter), though their constructors take other arguments than the message.
    """

    def __reduce__(self) -> tuple[Any, ...]:
        return _rebuilt, (type(self), self.args, self.__dict__)


def _rebuilt(cls: type[HFEndpointError], args: tuple[Any, ...], state: dict[str, Any]) -> Any:
    error = cls.__new__(cls)
    error.args = args
    error.__dict__.update(state)
    return error


class ConfigError(HFEndpointError, ValueError):
    """A setting, configuration body or input is invalid.

    ``errors`` lists every problem found; the message numbers them the way
    Elasticsearch's validation errors do::

        Validation Failed: 1: [chunking_settings] Invalid value [5]. ...;
    """

    def __init__(self, errors: str | Iterable[str]) -> None:
        self.errors: list[str] = [errors] if isinstance(errors, str) else list(errors)
        numbered = "".join(f"{i}: {e};" for i, e in enumerate(self.errors, 1))
        super().__init__(f"Validation Failed: {numbered}")


class InputTooLargeError(ConfigError):
    """Input ``index`` is too large to send, or the endpoint refused it as too large."""

    def __init__(self, index: int, reason: str) -> None:
        self.index = index
        super().__init__(f"input [{index}] {reason}")


class EndpointError(HFEndpointError):
    """The endpoint answered with an error status.

    ``status_code`` is the HTTP status, ``error`` the endpoint's own message
    (the ``error`` field of its JSON body, or the start of its body) and
    ``error_type`` its ``error_type`` field when it has one.
    """

    def __init__(self, status_code: int, error: str, error_type: str | None = None) -> None:
        self.status_code = status_code
        self.error = error
        self.error_type = error_type
        kind = f" ({error_type})" if error_type else ""
        super().__init__(f"HTTP {status_code}{kind} from the endpoint: {error}")


class AuthenticationError(EndpointError):
    """401 or 403: the API key is missing, wrong, or not allowed on this endpoint.

    ``token`` says where the token came from (``HF_TOKEN``, the login token file, an
    argument, a PUT body) or that none was sent, never any part of it; the message
    says so and what to do::

        HTTP 401: the endpoint refused the token from HF_TOKEN; check that ...
    """

    def __init__(
        self,
        status_code: int,
        error: str,
        error_type: str | None = None,
        *,
        token: str | None = None,
    ) -> None:
        super().__init__(status_code, error, error_type)
        self.token = token
        if token is None:
            return
        said = f" (it said: {error})" if error and error != "(empty body)" else ""
        if token.startswith("no token"):
            what = f"the endpoint needs a token and {token}"
            fix = "set HF_TOKEN, run `hf auth login`, or give api_key"
        else:
            what = f"the endpoint refused {token}"
            where = (
                "put another in service_settings.api_key"
                if "service_settings" in token
                else "set HF_TOKEN, run `hf auth login`, or give api_key"
            )
            fix = (
                "check that the token is current and allowed to call this endpoint (an "
                f"endpoint of an organisation needs a token of that organisation), or {where}"
            )
        self.args = (f"HTTP {status_code}: {what}{said}; {fix}",)


class InputRejectedError(EndpointError):
    """The endpoint refused the request holding inputs ``indices`` (400 or 422), not for their
    size: a tokenizer error, an unknown ``prompt_name`` or model, a value it does not take."""

    def __init__(
        self, status_code: int, error: str, error_type: str | None, indices: range
    ) -> None:
        super().__init__(status_code, error, error_type)
        self.indices = indices
        which = (
            f"input [{indices[0]}]"
            if len(indices) == 1
            else f"inputs [{indices[0]}..{indices[-1]}]"
        )
        kind = f" ({error_type})" if error_type else ""
        self.args = (f"HTTP {status_code}{kind} from the endpoint for {which}: {error}",)


class EndpointOverloadedError(EndpointError):
    """The endpoint still answered 429, 502, 503 or 504 after every retry."""


class EndpointConnectionError(HFEndpointError, ConnectionError):
    """No usable answer: the connection failed, was dropped, or timed out, after every retry."""


class ResponseFormatError(HFEndpointError):
    """The endpoint's answer is not one vector of numbers (or, for rerank, one score) per input."""

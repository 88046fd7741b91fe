"""Every error this package raises.

The hierarchy::

    HFEndpointError
    └── ConfigError (also a ValueError)   invalid settings, endpoint configuration or input

Messages never contain an API key: settings hold it as a ``SecretStr`` and no
code path formats it into text.
"""

from __future__ import annotations

from collections.abc import Iterable

__all__ = ["ConfigError", "HFEndpointError"]


class HFEndpointError(Exception):
    """Base class of every error raised by ``hf_endpoint`` and its adapters."""


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

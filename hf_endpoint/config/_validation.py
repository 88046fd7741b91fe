"""Helpers that read values out of configuration maps and collect every problem.

Messages follow Elasticsearch's wording (``ServiceUtils`` and the chunking
settings classes) so a message seen in one system is recognised in the other.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping
from typing import Any

from ..errors import ConfigError

__all__ = ["Problems", "is_number", "require_mapping", "show"]


def show(value: object) -> str:
    """Render a value the way Elasticsearch prints it inside ``[...]``."""
    if value is True:
        return "true"
    if value is False:
        return "false"
    if value is None:
        return "null"
    return str(value)


def is_number(value: object) -> bool:
    """Whether ``value`` is a real number: an int or a float, not a bool, not NaN
    (infinity is one: a check that wants a finite number says so)."""
    return isinstance(value, (int, float)) and not isinstance(value, bool) and not math.isnan(value)


def names(keys: Iterable[object]) -> str:
    """``[a, b]``: the key list format of Elasticsearch's messages."""
    return "[" + ", ".join(str(k) for k in keys) + "]"


def require_mapping(value: object, argument: str) -> Mapping[str, Any]:
    """Return ``value`` if it is a mapping, else raise ``TypeError`` naming ``argument``."""
    if not isinstance(value, Mapping):
        raise TypeError(f"{argument} must be a mapping (a JSON object), not {type(value).__name__}")
    return value


class Problems:
    """Collects validation problems so that all of them are reported at once."""

    def __init__(self) -> None:
        self.messages: list[str] = []

    def add(self, message: str) -> None:
        self.messages.append(message)

    def raise_if_any(self) -> None:
        if self.messages:
            raise ConfigError(self.messages)

    def integer(
        self,
        data: Mapping[str, Any],
        key: str,
        scope: str,
        *,
        minimum: int | None = None,
        maximum: int | None = None,
        default: int | None = None,
    ) -> int | None:
        """Read ``data[key]`` as an integer in ``[minimum, maximum]``.

        A missing key gives ``default``; an explicit ``null`` is reported as a
        missing required setting, as Elasticsearch does. Booleans and floats
        are not integers.
        """
        if key not in data:
            return default
        value = data[key]
        if value is None:
            self.add(f"[{scope}] does not contain the required setting [{key}]")
            return None
        if isinstance(value, bool) or not isinstance(value, int):
            self.add(
                f"field [{key}] is not of the expected type. "
                f"The value [{show(value)}] cannot be converted to a [Integer]"
            )
            return None
        if minimum is not None and value < minimum:
            self.add(
                f"[{scope}] Invalid value [{value}]. [{key}] must be greater than or equal to [{minimum}]"
            )
            return None
        if maximum is not None and value > maximum:
            self.add(
                f"[{scope}] Invalid value [{value}]. [{key}] must be less than or equal to [{maximum}]"
            )
            return None
        return value

    def positive_integer(self, data: Mapping[str, Any], key: str, scope: str) -> int | None:
        """Read an optional positive integer (``dimensions``, ``max_input_tokens``, ...)."""
        if data.get(key) is None:
            return None
        value = data[key]
        if isinstance(value, bool) or not isinstance(value, int):
            return self.integer(data, key, scope)
        if value <= 0:
            self.add(f"[{scope}] Invalid value [{value}]. [{key}] must be a positive integer")
            return None
        return value

    def boolean(self, data: Mapping[str, Any], key: str) -> bool | None:
        """Read an optional boolean; ``null`` counts as absent, as Elasticsearch reads it."""
        value = data.get(key)
        if value is None or isinstance(value, bool):
            return value
        self.add(
            f"field [{key}] is not of the expected type. "
            f"The value [{show(value)}] cannot be converted to a [Boolean]"
        )
        return None

    def string(
        self, data: Mapping[str, Any], key: str, scope: str, *, required: bool
    ) -> str | None:
        """Read a string setting; a required one must be present and non-empty."""
        value = data.get(key)
        if value is None:
            if required:
                self.add(f"[{scope}] does not contain the required setting [{key}]")
            return None
        if not isinstance(value, str):
            self.add(
                f"field [{key}] is not of the expected type. "
                f"The value [{show(value)}] cannot be converted to a [String]"
            )
            return None
        if not value.strip():
            self.add(f"[{scope}] Invalid value empty string. [{key}] must be a non-empty string")
            return None
        return value

    def unknown_keys(self, data: Mapping[str, Any], allowed: Iterable[str], template: str) -> None:
        """Report keys of ``data`` outside ``allowed``; ``template`` takes ``{keys}``."""
        allowed_set = set(allowed)
        unknown = [k for k in data if k not in allowed_set]
        if unknown:
            self.add(template.format(keys=names(unknown)))

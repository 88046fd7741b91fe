"""The API key: where it comes from, what it may hold, and keeping it out of text.

The key is looked up the way ``huggingface_hub`` does: the argument, then
``HF_TOKEN``, then ``HUGGINGFACEHUB_API_TOKEN``, then the file that
``hf auth login`` writes (``$HF_TOKEN_PATH``, else ``$HF_HOME/token``, else
``~/.cache/huggingface/token``). Surrounding white space (a newline pasted with
the key) is dropped; a key with white space or control characters inside is
refused without being shown.
"""

from __future__ import annotations

import os
import re
from pathlib import Path

from pydantic import SecretStr

from ..errors import ConfigError

__all__ = ["clean_api_key", "find_api_key", "key_source", "redact", "token_path"]

_ENV_NAMES = ("HF_TOKEN", "HUGGINGFACEHUB_API_TOKEN")
# What an HTTP header value may carry: visible ASCII, no spaces.
_HEADER_SAFE = re.compile(r"[\x21-\x7e]+")
# Anything that looks like a bearer token or a Hugging Face token, whoever's it is.
_TOKEN_LIKE = re.compile(rb"(?i)(bearer\s+)[^\s\"',;]+|hf_[A-Za-z0-9]{8,}")


def token_path() -> Path:
    """Where ``hf auth login`` keeps the token."""
    explicit = os.environ.get("HF_TOKEN_PATH")
    if explicit:
        return Path(explicit).expanduser()
    home = os.environ.get("HF_HOME")
    if home:
        return Path(home).expanduser() / "token"
    cache = os.environ.get("XDG_CACHE_HOME") or str(Path.home() / ".cache")
    return Path(cache).expanduser() / "huggingface" / "token"


def clean_api_key(key: str | SecretStr | None, field: str = "api_key") -> SecretStr | None:
    """The key as a ``SecretStr``, stripped; ``None`` for no key.

    Raises ``ConfigError`` naming ``field`` (never the value) when the key is not
    a string or holds characters an HTTP header cannot carry.
    """
    if key is None:
        return None
    raw = key.get_secret_value() if isinstance(key, SecretStr) else key
    if not isinstance(raw, str):
        raise ConfigError(f"[{field}] must be a string, not {type(raw).__name__} (value not shown)")
    raw = raw.strip()
    if not raw:
        return None
    if not _HEADER_SAFE.fullmatch(raw):
        raise ConfigError(
            f"[{field}] holds white space, control or non-ASCII characters, which an "
            "Authorization header cannot carry (value not shown)"
        )
    return SecretStr(raw)


def find_api_key(explicit: str | SecretStr | None = None) -> SecretStr | None:
    """The key to use: ``explicit``, else the environment, else the login token file."""
    if explicit is not None:
        return clean_api_key(explicit)
    for name in _ENV_NAMES:
        value = os.environ.get(name)
        if value and value.strip():
            return clean_api_key(value, name)
    path = token_path()
    try:
        stored = path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError):
        return None
    return clean_api_key(stored, str(path)) if stored.strip() else None


def key_source(key: SecretStr | None) -> str:
    """Where ``key`` came from, in words, for the message of a refused token; never any
    part of the key. A key equal to ``HF_TOKEN``'s (and so on, in lookup order) is said to
    come from there; any other from an argument or a PUT body."""
    if key is None:
        return (
            "no token was sent (none given, HF_TOKEN and HUGGINGFACEHUB_API_TOKEN unset, "
            f"no login token file at {token_path()})"
        )
    value = key.get_secret_value()
    for name in _ENV_NAMES:
        if (os.environ.get(name) or "").strip() == value:
            return f"the token from {name}"
    path = token_path()
    try:
        stored = path.read_text(encoding="utf-8").strip()
    except (OSError, UnicodeDecodeError):
        stored = ""
    if stored == value:
        return f"the token from the login token file {path}"
    return "the token given as api_key (an argument, or a PUT body's service_settings)"


def redact(content: bytes, secret: str | None) -> bytes:
    """``content`` with ``secret`` and anything token-like replaced by ``[REDACTED]``."""
    if secret:
        content = content.replace(secret.encode(), b"[REDACTED]")
    return _TOKEN_LIKE.sub(
        lambda m: (m.group(1) or b"") + b"[REDACTED]" if m.group(1) else b"[REDACTED]", content
    )

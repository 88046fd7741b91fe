"""The master key, and the Hugging Face keys encrypted with it (AES-256-GCM).

The master key comes from ``HF_ENDPOINT_MASTER_KEY`` (32 bytes, URL-safe base64)
or from a key file beside the store, created 0600 on first start. Each key is
sealed with the endpoint's id as associated data: a ciphertext moved to another
row does not open. A store copied without its master key yields no key.
"""

from __future__ import annotations

import base64
import binascii
import os
import secrets
from pathlib import Path

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives.ciphers.aead import AESGCM

from ..errors import ConfigError

__all__ = ["MASTER_KEY_ENV", "MasterKey", "SealedKeyError", "create_private_file"]

MASTER_KEY_ENV = "HF_ENDPOINT_MASTER_KEY"
_NONCE_BYTES = 12


class SealedKeyError(Exception):
    """A ciphertext that does not open with this master key (another key, or altered)."""


def create_private_file(path: Path, content: bytes = b"") -> bool:
    """Create ``path`` readable by its owner only; ``False`` when it already exists."""
    path.parent.mkdir(parents=True, exist_ok=True)
    try:
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    except FileExistsError:
        return False
    with os.fdopen(fd, "wb") as handle:
        handle.write(content)
    return True


def _decode(text: str, where: str) -> bytes:
    try:
        raw = base64.urlsafe_b64decode(text.strip().encode("ascii"))
    except (binascii.Error, UnicodeEncodeError, ValueError):
        raw = b""
    if len(raw) != 32:
        raise ConfigError(
            f"[{where}] must hold 32 bytes in URL-safe base64 (44 characters), "
            "as `python -c 'import base64, os; print(base64.urlsafe_b64encode(os.urandom(32)).decode())'` "
            "prints (value not shown)"
        )
    return raw


class MasterKey:
    """The AES-256-GCM key the store's Hugging Face keys are sealed with."""

    def __init__(self, key: bytes) -> None:
        self._aead = AESGCM(key)

    def __repr__(self) -> str:
        return "MasterKey(**********)"

    @classmethod
    def load(cls, key_file: Path) -> MasterKey:
        """From ``HF_ENDPOINT_MASTER_KEY``, else ``key_file`` (created 0600 when absent)."""
        from_env = os.environ.get(MASTER_KEY_ENV)
        if from_env:
            return cls(_decode(from_env, MASTER_KEY_ENV))
        fresh = base64.urlsafe_b64encode(secrets.token_bytes(32)) + b"\n"
        create_private_file(key_file, fresh)
        return cls(_decode(key_file.read_text(encoding="ascii"), str(key_file)))

    def seal(self, secret: str, context: str) -> bytes:
        """``secret`` encrypted and bound to ``context`` (the endpoint's id)."""
        nonce = secrets.token_bytes(_NONCE_BYTES)
        return nonce + self._aead.encrypt(nonce, secret.encode(), context.encode())

    def open(self, sealed: bytes, context: str) -> str:
        """The secret ``seal`` encrypted, or ``SealedKeyError``."""
        try:
            plain = self._aead.decrypt(
                sealed[:_NONCE_BYTES], sealed[_NONCE_BYTES:], context.encode()
            )
        except (InvalidTag, ValueError):
            raise SealedKeyError(context) from None
        return plain.decode()

"""``Store``: the service's endpoints and callers' credentials in one SQLite file.

Standard library ``sqlite3`` in WAL mode, ``synchronous=FULL``, one transaction per
change: a process killed at any moment leaves each endpoint wholly there or wholly
absent. The database file is created 0600. An endpoint's row holds its read view's
settings (never the key) and the Hugging Face key sealed with the master key
(``_secrets``); a caller's row holds only a hash of its secret.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import os
import secrets
import sqlite3
import sys
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from ..config.settings import InferenceConfig
from ..errors import ConfigError
from ._secrets import MasterKey, SealedKeyError, create_private_file

__all__ = [
    "AlreadyExists",
    "Credential",
    "Store",
    "StoredEndpoint",
    "default_store_path",
]

_SCHEMA = """
CREATE TABLE IF NOT EXISTS endpoints (
    inference_id TEXT PRIMARY KEY,
    task_type TEXT NOT NULL,
    body TEXT NOT NULL,
    sealed_key BLOB NOT NULL,
    version INTEGER NOT NULL
);
CREATE TABLE IF NOT EXISTS credentials (
    name TEXT PRIMARY KEY,
    kind TEXT NOT NULL,
    key_id TEXT UNIQUE,
    salt BLOB NOT NULL,
    hash BLOB NOT NULL,
    created REAL NOT NULL
);
CREATE TABLE IF NOT EXISTS meta (name TEXT PRIMARY KEY, value BLOB NOT NULL);
"""
# Sealed at first start: a master key that cannot open it is not this store's.
_CHECK = "hf-endpoint inference-api store"
_PBKDF2_ROUNDS = 200_000
_NAME_CHARS = frozenset("abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789_-.@")


def default_store_path() -> Path:
    """``inference-api.sqlite3`` in the user's data directory for ``hf-endpoint``."""
    if sys.platform == "win32":
        base = Path(os.environ.get("LOCALAPPDATA") or Path.home() / "AppData" / "Local")
    elif sys.platform == "darwin":
        base = Path.home() / "Library" / "Application Support"
    else:
        base = Path(os.environ.get("XDG_DATA_HOME") or Path.home() / ".local" / "share")
    return base / "hf-endpoint" / "inference-api.sqlite3"


class AlreadyExists(Exception):
    """An endpoint or a credential of that name exists."""


@dataclass(frozen=True)
class StoredEndpoint:
    """One endpoint as stored: its id, task type, read-view settings and version.

    A version is drawn at random at each change, never counted: an endpoint deleted and
    created again under its id does not come back with a version a worker has cached.
    """

    inference_id: str
    task_type: str
    body: dict[str, Any]
    version: int


@dataclass(frozen=True)
class Credential:
    """A caller's credential as ``keys list`` shows it: no secret, no hash."""

    name: str
    kind: str
    key_id: str | None
    created: float


def _version() -> int:
    return secrets.randbits(62)


def _hash(secret: str, salt: bytes, kind: str) -> bytes:
    if kind == "api_key":
        # 192 random bits: a fast hash cannot be searched; passwords get a slow one.
        return hashlib.sha256(salt + secret.encode()).digest()
    return hashlib.pbkdf2_hmac("sha256", secret.encode(), salt, _PBKDF2_ROUNDS)


def _check_name(name: object) -> str:
    if not isinstance(name, str) or not name or len(name) > 64 or set(name) - _NAME_CHARS:
        raise ConfigError(
            f"[name] must be 1 to 64 letters, digits, '_', '-', '.' or '@' (received {name!r})"
        )
    return name


class Store:
    """Endpoints and credentials in the SQLite file at ``path``, keys sealed with ``master``.

    Reads use a connection kept per thread, each change a connection and transaction of
    its own: threads, workers and processes share the file with SQLite's locks only.
    """

    def __init__(self, path: str | Path, master: MasterKey | None = None) -> None:
        self.path = Path(path).expanduser()
        create_private_file(self.path)
        os.chmod(self.path, 0o600)
        self._master = master
        self._verified: dict[tuple[str, bytes], bytes] = {}
        self._lock = threading.Lock()
        self._local = threading.local()
        with self._connect() as db:
            db.execute("PRAGMA journal_mode=WAL")
            db.executescript(_SCHEMA)
        if master is not None:
            self._check_master(master)

    def __repr__(self) -> str:
        return f"Store({str(self.path)!r})"

    @contextmanager
    def _connect(self) -> Iterator[sqlite3.Connection]:
        db = sqlite3.connect(self.path, timeout=30.0, isolation_level=None)
        try:
            db.execute("PRAGMA synchronous=FULL")
            db.execute("PRAGMA busy_timeout=30000")
            yield db
        finally:
            db.close()

    def _reader(self) -> sqlite3.Connection:
        """This thread's connection for reads, kept open: each read is its own snapshot
        (autocommit), so it sees every change committed before it, by any process."""
        db: sqlite3.Connection | None = getattr(self._local, "db", None)
        if db is None:
            db = sqlite3.connect(self.path, timeout=30.0, isolation_level=None)
            db.execute("PRAGMA busy_timeout=30000")
            self._local.db = db
        return db

    @contextmanager
    def _transaction(self) -> Iterator[sqlite3.Connection]:
        with self._connect() as db:
            db.execute("BEGIN IMMEDIATE")
            try:
                yield db
            except BaseException:
                db.execute("ROLLBACK")
                raise
            db.execute("COMMIT")

    def _check_master(self, master: MasterKey) -> None:
        with self._transaction() as db:
            row = db.execute("SELECT value FROM meta WHERE name = 'check'").fetchone()
            if row is None:
                db.execute("INSERT INTO meta VALUES ('check', ?)", (master.seal(_CHECK, "check"),))
                return
        try:
            master.open(row[0], "check")
        except SealedKeyError:
            raise ConfigError(
                f"[master key] the store [{self.path}] was sealed with another master key: "
                "set HF_ENDPOINT_MASTER_KEY, or restore the key file it was created with"
            ) from None

    @property
    def master(self) -> MasterKey:
        if self._master is None:
            raise RuntimeError("this Store was opened without a master key")
        return self._master

    # -- endpoints ---------------------------------------------------------------------

    @staticmethod
    def _body(config: InferenceConfig) -> str:
        body = config.to_dict()
        if config.task_type == "text_embedding" and not config.explicit_chunking:
            del body["chunking_settings"]
        return json.dumps(body)

    def create(self, inference_id: str, config: InferenceConfig) -> None:
        """Add an endpoint in one transaction; ``AlreadyExists`` when the id is taken."""
        sealed = self.master.seal(config.service_settings.api_key.get_secret_value(), inference_id)
        try:
            with self._transaction() as db:
                db.execute(
                    "INSERT INTO endpoints VALUES (?, ?, ?, ?, ?)",
                    (inference_id, config.task_type, self._body(config), sealed, _version()),
                )
        except sqlite3.IntegrityError:
            raise AlreadyExists(inference_id) from None

    def replace(self, inference_id: str, version: int, config: InferenceConfig) -> bool:
        """Change an endpoint that is still at ``version``; ``False`` when it is gone or
        another change came first."""
        sealed = self.master.seal(config.service_settings.api_key.get_secret_value(), inference_id)
        with self._transaction() as db:
            changed = db.execute(
                "UPDATE endpoints SET body = ?, sealed_key = ?, version = ? "
                "WHERE inference_id = ? AND version = ?",
                (self._body(config), sealed, _version(), inference_id, version),
            ).rowcount
        return bool(changed)

    def delete(self, inference_id: str) -> bool:
        """Remove an endpoint; ``False`` when there was none."""
        with self._transaction() as db:
            gone = db.execute(
                "DELETE FROM endpoints WHERE inference_id = ?", (inference_id,)
            ).rowcount
        return bool(gone)

    def get(self, inference_id: str) -> StoredEndpoint | None:
        """One endpoint's stored settings (no key), or ``None``."""
        db = self._reader()
        row = db.execute(
            "SELECT inference_id, task_type, body, version FROM endpoints WHERE inference_id = ?",
            (inference_id,),
        ).fetchone()
        return None if row is None else StoredEndpoint(row[0], row[1], json.loads(row[2]), row[3])

    def endpoints(self) -> list[StoredEndpoint]:
        """Every endpoint, by id."""
        db = self._reader()
        rows = db.execute(
            "SELECT inference_id, task_type, body, version FROM endpoints ORDER BY inference_id"
        ).fetchall()
        return [StoredEndpoint(r[0], r[1], json.loads(r[2]), r[3]) for r in rows]

    def config(self, inference_id: str) -> tuple[InferenceConfig, int] | None:
        """An endpoint's configuration with its key opened, and its row version."""
        db = self._reader()
        row = db.execute(
            "SELECT task_type, body, sealed_key, version FROM endpoints WHERE inference_id = ?",
            (inference_id,),
        ).fetchone()
        if row is None:
            return None
        body = json.loads(row[1])
        key = self.master.open(row[2], inference_id)
        body["service_settings"] = {**body["service_settings"], "api_key": key}
        return InferenceConfig.from_dict(body, row[0]), row[3]

    # -- credentials --------------------------------------------------------------------

    def has_credentials(self) -> bool:
        """Whether any API key or user exists (then every request must carry one)."""
        db = self._reader()
        return db.execute("SELECT 1 FROM credentials LIMIT 1").fetchone() is not None

    def _add_credential(self, name: str, kind: str, key_id: str | None, secret: str) -> None:
        salt = secrets.token_bytes(16)
        try:
            with self._transaction() as db:
                db.execute(
                    "INSERT INTO credentials VALUES (?, ?, ?, ?, ?, ?)",
                    (name, kind, key_id, salt, _hash(secret, salt, kind), time.time()),
                )
        except sqlite3.IntegrityError:
            raise AlreadyExists(name) from None

    def create_api_key(self, name: str) -> str:
        """A new API key named ``name``, encoded as clients take it (``api_key=``).

        Only a hash is stored: the returned value is the only copy.
        """
        key_id = secrets.token_urlsafe(15)
        secret = secrets.token_urlsafe(24)
        self._add_credential(_check_name(name), "api_key", key_id, secret)
        return base64.b64encode(f"{key_id}:{secret}".encode()).decode("ascii")

    def add_user(self, name: str, password: str) -> None:
        """A user for HTTP Basic; only a salted PBKDF2 hash of the password is stored."""
        if ":" in name:
            raise ConfigError("[name] of a Basic user cannot hold ':'")
        if not isinstance(password, str) or len(password) < 8:
            raise ConfigError("[password] must be at least 8 characters (value not shown)")
        self._add_credential(_check_name(name), "user", None, password)

    def delete_credential(self, name: str) -> bool:
        """Remove an API key or a user; ``False`` when there was none of that name."""
        with self._transaction() as db:
            gone = db.execute("DELETE FROM credentials WHERE name = ?", (name,)).rowcount
        return bool(gone)

    def credentials(self) -> list[Credential]:
        """Every credential's name, kind, key id and creation time."""
        db = self._reader()
        rows = db.execute(
            "SELECT name, kind, key_id, created FROM credentials ORDER BY name"
        ).fetchall()
        return [Credential(*row) for row in rows]

    def verify(self, kind: str, identifier: str, secret: str) -> str | None:
        """The credential's name when ``secret`` matches (compared in constant time), else ``None``.

        ``kind`` is ``api_key`` (``identifier`` is the key id) or ``user`` (the name).
        """
        column = "key_id" if kind == "api_key" else "name"
        db = self._reader()
        row = db.execute(
            f"SELECT name, salt, hash FROM credentials WHERE kind = ? AND {column} = ?",
            (kind, identifier),
        ).fetchone()
        if row is None:
            # The same work as a match: the answer's timing does not tell which ids exist.
            hmac.compare_digest(_hash(secret, b"\0" * 16, "api_key"), b"\0" * 32)
            return None
        name, salt, stored = row
        fingerprint = hashlib.sha256(salt + secret.encode()).digest()
        with self._lock:
            known = self._verified.get((name, fingerprint))
        if known is not None and hmac.compare_digest(known, stored):
            return str(name)
        if not hmac.compare_digest(_hash(secret, salt, kind), stored):
            return None
        with self._lock:
            # PBKDF2 once per password and process: later requests check the fingerprint.
            self._verified[(name, fingerprint)] = stored
        return str(name)

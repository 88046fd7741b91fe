"""``hf-endpoint inference-api``: run the service, and manage its callers' credentials.

hf-endpoint inference-api [--host 127.0.0.1] [--port 9200] [--store PATH]
                          [--tls-cert FILE --tls-key FILE] [--workers N]
hf-endpoint inference-api keys create NAME [--store PATH]   (the key: last line)
hf-endpoint inference-api keys list|delete NAME [--store PATH]
hf-endpoint inference-api users add NAME [--store PATH]      (password from stdin)
"""

from __future__ import annotations

import argparse
import datetime
import getpass
import os
import sys
from collections.abc import Sequence

from ..errors import ConfigError
from ._serve import READY_LINE, open_store, serve, serve_workers
from .app import ServiceConfig
from .store import AlreadyExists, default_store_path

__all__ = ["main"]


def _store_option(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--store",
        metavar="PATH",
        help=f"the SQLite file of endpoints and credentials (default: {default_store_path()})",
    )


def build_parser(prog: str = "hf-endpoint inference-api") -> argparse.ArgumentParser:
    """The command's parser: serving options, and the ``keys`` and ``users`` commands."""
    parser = argparse.ArgumentParser(
        prog=prog,
        description=(
            "Serve Elasticsearch's _inference API for the hugging_face service (not "
            "Elasticsearch): endpoints in a SQLite store, Hugging Face keys encrypted "
            "(master key: HF_ENDPOINT_MASTER_KEY, else <store>.key, created 0600)."
        ),
    )
    parser.add_argument("--host", default="127.0.0.1", help="address to listen on")
    parser.add_argument("--port", type=int, default=9200, help="port (0: any free one)")
    _store_option(parser)
    parser.add_argument("--tls-cert", metavar="FILE", help="serve HTTPS with this certificate")
    parser.add_argument("--tls-key", metavar="FILE", help="the certificate's private key")
    parser.add_argument("--workers", type=int, default=1, help="uvicorn worker processes")
    parser.add_argument("--max-body-bytes", type=int, default=4 * 1024 * 1024)
    parser.add_argument("--max-inputs", type=int, default=1024, help="texts per request")
    parser.add_argument(
        "--max-in-flight", type=int, default=256, help="requests per worker at once (429 beyond)"
    )
    commands = parser.add_subparsers(dest="command", metavar="COMMAND")
    keys = commands.add_parser("keys", help="API keys for Authorization: ApiKey")
    key_commands = keys.add_subparsers(dest="action", required=True, metavar="ACTION")
    for action, text in (
        ("create", "a new API key, printed once as the last line"),
        ("delete", "remove an API key or a user"),
    ):
        sub = key_commands.add_parser(action, help=text)
        sub.add_argument("name")
        _store_option(sub)
    _store_option(key_commands.add_parser("list", help="every API key and user (no secrets)"))
    users = commands.add_parser("users", help="users for HTTP Basic")
    user_commands = users.add_subparsers(dest="action", required=True, metavar="ACTION")
    add = user_commands.add_parser("add", help="a user; the password is read from stdin")
    add.add_argument("name")
    _store_option(add)
    return parser


def _credentials(args: argparse.Namespace) -> int:
    store = open_store(args.store)
    if args.action == "create":
        try:
            encoded = store.create_api_key(args.name)
        except AlreadyExists:
            raise ConfigError(f"[name] an API key or user [{args.name}] exists already") from None
        print(f"API key [{args.name}] created; it is shown this once. Use it as api_key=:")
        print(encoded)
    elif args.action == "add":
        password = (
            getpass.getpass(f"password for [{args.name}]: ")
            if sys.stdin.isatty()
            else sys.stdin.readline().rstrip("\n")
        )
        try:
            store.add_user(args.name, password)
        except AlreadyExists:
            raise ConfigError(f"[name] an API key or user [{args.name}] exists already") from None
        print(f"user [{args.name}] added")
    elif args.action == "delete":
        if not store.delete_credential(args.name):
            raise ConfigError(f"[name] no API key or user is named [{args.name}]")
        print(f"[{args.name}] deleted")
    else:
        for credential in store.credentials():
            created = datetime.datetime.fromtimestamp(credential.created, datetime.timezone.utc)
            key_id = f" id={credential.key_id}" if credential.key_id else ""
            print(
                f"{credential.name}\t{credential.kind}{key_id}\tcreated {created:%Y-%m-%d %H:%M}Z"
            )
    return 0


def _serve(args: argparse.Namespace) -> int:
    store = open_store(args.store)
    if args.workers > 1:
        os.environ["HF_ENDPOINT_INFERENCE_API_STORE"] = str(store.path)
        for name in ("max_body_bytes", "max_inputs", "max_in_flight"):
            os.environ[f"HF_ENDPOINT_INFERENCE_API_{name.upper()}"] = str(getattr(args, name))
        serve_workers(
            store,
            args.host,
            args.port,
            args.workers,
            tls_cert=args.tls_cert,
            tls_key=args.tls_key,
            on_ready=lambda url: print(READY_LINE + url, flush=True),
        )
        return 0
    config = ServiceConfig(
        store=store,
        max_body_bytes=args.max_body_bytes,
        max_inputs=args.max_inputs,
        max_in_flight=args.max_in_flight,
    )
    serve(
        config,
        args.host,
        args.port,
        tls_cert=args.tls_cert,
        tls_key=args.tls_key,
        on_ready=lambda url: print(READY_LINE + url, flush=True),
    )
    return 0


def main(argv: Sequence[str] | None = None, prog: str = "hf-endpoint inference-api") -> int:
    """Run the command; the exit status (0, or 2 for a bad option or setting)."""
    args = build_parser(prog).parse_args(argv)
    try:
        if args.command in ("keys", "users"):
            return _credentials(args)
        return _serve(args)
    except ConfigError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        return 130

"""``hf-endpoint serve`` and ``python -m hf_endpoint.server``: the server's command line.

The general command line (:mod:`hf_endpoint.cli`) hands ``serve`` and its arguments over to
:func:`main` and imports nothing of the server otherwise; this module never imports the
general command line.
"""

from __future__ import annotations

import argparse
import os
import sys
from collections.abc import Sequence

from ._local import READY_LINE, serve
from ._protocol import VALIDATION_STATUSES
from .app import ServerConfig
from .backends import create_backend
from .faults import Faults

__all__ = ["add_arguments", "config_from_arguments", "main"]


def _boolean(value: str) -> bool:
    """``true`` or ``false``, as TEI's clap parses a boolean option."""
    if value not in ("true", "false"):
        raise argparse.ArgumentTypeError(f"expected true or false, not {value!r}")
    return value == "true"


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """The server's command-line options."""
    model = parser.add_argument_group("model")
    model.add_argument(
        "--backend",
        choices=["hash", "minilm"],
        help="minilm: the bundled all-MiniLM-L6-v2 (default); hash: hashed vectors, no model",
    )
    model.add_argument(
        "--model",
        metavar="PATH",
        help="serve this local sentence-transformers model folder instead (never downloaded)",
    )
    model.add_argument(
        "--device",
        choices=["auto", "cpu", "cuda"],
        default="auto",
        help="auto: CUDA when torch sees a device, else the CPU",
    )
    model.add_argument("--dtype", choices=["float32", "float16"], default="float32")
    model.add_argument(
        "--threads",
        type=int,
        default=max((os.cpu_count() or 1) - 1, 1),
        metavar="N",
        help="torch's CPU threads (default: one less than the CPUs, at least 1)",
    )
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=8080, help="0 picks a free port")
    parser.add_argument(
        "--api-key", help="require 'Authorization: Bearer KEY' (default: no token needed)"
    )
    limits = parser.add_argument_group("limits (Text Embeddings Inference's options)")
    limits.add_argument("--max-client-batch-size", type=int, default=32, metavar="N")
    limits.add_argument("--max-batch-tokens", type=int, default=16384, metavar="N")
    limits.add_argument("--max-batch-requests", type=int, metavar="N")
    limits.add_argument("--max-concurrent-requests", type=int, default=512, metavar="N")
    limits.add_argument("--tokenization-workers", type=int, metavar="N")
    limits.add_argument(
        "--auto-truncate",
        type=_boolean,
        nargs="?",
        const=True,
        default=True,
        metavar="true|false",
        help="cut inputs over the model's limit unless a request says truncate=false, "
        "as TEI 1.9 does; false refuses them",
    )
    limits.add_argument(
        "--validation-status",
        type=int,
        choices=VALIDATION_STATUSES,
        default=422,
        help="the status of a validation error (input too long, batch too large): "
        "422 as TEI 1.9 and later, 413 as TEI before 1.9",
    )
    faults = parser.add_argument_group("fault injection (off by default)")
    faults.add_argument("--cold-start", type=float, default=0.0, metavar="SECONDS")
    faults.add_argument("--fault-429", type=float, default=0.0, metavar="RATE")
    faults.add_argument("--fault-502", type=float, default=0.0, metavar="RATE")
    faults.add_argument("--fault-503", type=float, default=0.0, metavar="RATE")
    faults.add_argument("--fault-drop", type=float, default=0.0, metavar="RATE")
    faults.add_argument("--latency", type=float, default=0.0, metavar="SECONDS")
    faults.add_argument(
        "--requests-per-minute", type=int, metavar="N", help="server-side limit, answered 429"
    )
    faults.add_argument("--retry-after", type=float, default=1.0, metavar="SECONDS")
    faults.add_argument(
        "--malformed",
        choices=["missing_row", "ragged", "token_level", "not_numbers", "html", "object"],
    )
    faults.add_argument("--seed", type=int, default=0)


def config_from_arguments(args: argparse.Namespace) -> ServerConfig:
    """The server configuration the options describe; ``ValueError`` names a bad one."""
    if args.model is not None and args.backend == "hash":
        raise ValueError("--model serves a sentence-transformers model: drop --backend hash")
    faults = Faults(
        cold_start=args.cold_start,
        rate_429=args.fault_429,
        rate_502=args.fault_502,
        rate_503=args.fault_503,
        rate_drop=args.fault_drop,
        latency=args.latency,
        requests_per_minute=args.requests_per_minute,
        retry_after=args.retry_after,
        malformed=args.malformed,
        seed=args.seed,
    )
    backend = create_backend(
        args.backend or "minilm",
        model=args.model,
        device=args.device,
        dtype=args.dtype,
        threads=args.threads,
    )
    workers = (
        {}
        if args.tokenization_workers is None
        else {"tokenization_workers": args.tokenization_workers}
    )
    return ServerConfig(
        backend=backend,
        api_key=args.api_key,
        max_client_batch_size=args.max_client_batch_size,
        max_batch_tokens=args.max_batch_tokens,
        max_batch_requests=args.max_batch_requests,
        max_concurrent_requests=args.max_concurrent_requests,
        auto_truncate=args.auto_truncate,
        validation_status=args.validation_status,
        faults=faults,
        **workers,
    )


def main(argv: Sequence[str] | None = None, prog: str = "hf-endpoint serve") -> int:
    """Run the server until interrupted; a bad option or model folder is one line, status 2."""
    parser = argparse.ArgumentParser(prog=prog, description="Run a local embedding endpoint.")
    add_arguments(parser)
    args = parser.parse_args(argv)
    # This process serves local files only: nothing may be fetched from a hub.
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")
    try:
        config = config_from_arguments(args)
        config.backend.load()
    except (ValueError, ImportError, RuntimeError, OSError) as exc:
        print(f"hf-endpoint: error: {exc}", file=sys.stderr)
        return 2

    def announce(url: str) -> None:
        print(READY_LINE + url, flush=True)

    serve(config, host=args.host, port=args.port, on_ready=announce)
    return 0

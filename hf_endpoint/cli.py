"""The ``hf-endpoint`` command line.

``hf-endpoint chunk`` cuts files or JSONL records into chunks with offsets;
``hf-endpoint embed`` embeds JSONL records, chunk by chunk, and can resume;
``hf-endpoint serve`` runs a local embedding endpoint; ``hf-endpoint demo``
runs the whole pipeline on a bundled corpus.
Errors are one line on stderr and a non-zero exit, never a traceback.
"""

from __future__ import annotations

import argparse
import json
import logging
import os
import sys
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any, TextIO

from tqdm import tqdm

from .chunking import chunk_offsets
from .client import EmbeddingClient, lone_surrogate
from .errors import HFEndpointError
from .settings import ChunkingSettings, InferenceConfig

logger = logging.getLogger(__name__)

__all__ = ["main"]


class CLIError(Exception):
    """A problem to report as one line, exit status 2."""


def _settings(args: argparse.Namespace, base: ChunkingSettings | None = None) -> ChunkingSettings:
    data: dict[str, Any] = base.to_dict() if base is not None else {}
    if args.chunking_settings:
        try:
            data = json.loads(args.chunking_settings)
        except json.JSONDecodeError as exc:
            raise CLIError(f"--chunking-settings is not valid JSON: {exc}") from None
    if args.separator_group is not None or args.separators is not None:
        data.pop("separators", None)  # given on the command line, they replace the configured ones
    for key in (
        "strategy",
        "max_chunk_size",
        "overlap",
        "sentence_overlap",
        "separator_group",
        "separators",
    ):
        if getattr(args, key) is not None:
            data[key] = getattr(args, key)
    try:
        return ChunkingSettings.from_dict(data)
    except TypeError as exc:
        raise CLIError(str(exc)) from None


def _records(path: str, stream: TextIO, jsonl: bool = False) -> Iterator[tuple[str, str]]:
    """``(id, text)`` pairs: one per JSONL line, or the whole file as one text."""
    if jsonl or path.endswith(".jsonl") or path == "-":
        for number, line in enumerate(stream, 1):
            if not line.strip():
                continue
            try:
                record = json.loads(line)
            except json.JSONDecodeError as exc:
                raise CLIError(f"{path}:{number}: not valid JSON ({exc.msg})") from None
            if not isinstance(record, dict) or not isinstance(record.get("text"), str):
                raise CLIError(f'{path}:{number}: a record must be an object with a string "text"')
            yield str(record.get("id", f"{path}:{number}")), record["text"]
    else:
        yield path, stream.read()


def _open(path: str) -> TextIO:
    if path == "-":
        return sys.stdin
    try:
        return open(path, encoding="utf-8", errors="surrogateescape")
    except OSError as exc:
        raise CLIError(f"cannot read {path}: {exc.strerror}") from None


def _chunk(args: argparse.Namespace) -> None:
    settings = _settings(args)
    out = sys.stdout
    for path in args.inputs:
        with _open(path) as stream:
            for doc_id, text in _records(path, stream):
                for i, (start, end) in enumerate(chunk_offsets(text, settings)):
                    row = {
                        "id": doc_id,
                        "chunk": i,
                        "start": start,
                        "end": end,
                        "text": text[start:end],
                    }
                    out.write(_json_line(row))


def _json_line(row: dict[str, Any]) -> str:
    line = json.dumps(row, ensure_ascii=False)
    try:
        line.encode("utf-8")
    except UnicodeEncodeError:  # lone surrogates: escape them so the line stays valid JSON
        line = json.dumps(row)
    return line + "\n"


def _endpoint_client(args: argparse.Namespace) -> tuple[EmbeddingClient, ChunkingSettings | None]:
    """The client from --inference-config, or --url / HF_ENDPOINT_URL and HF_TOKEN."""
    if args.inference_config:
        try:
            with open(args.inference_config, encoding="utf-8") as f:
                body = json.load(f)
        except OSError as exc:
            raise CLIError(f"cannot read {args.inference_config}: {exc.strerror}") from None
        except json.JSONDecodeError as exc:
            raise CLIError(f"{args.inference_config} is not valid JSON: {exc}") from None
        config = InferenceConfig.from_dict(body)
        return EmbeddingClient.from_config(config), config.chunking_settings
    url = args.url or os.environ.get("HF_ENDPOINT_URL")
    if not url:
        raise CLIError(
            "no endpoint: give --url, set HF_ENDPOINT_URL, or give --inference-config FILE"
        )
    token = os.environ.get("HF_TOKEN") or os.environ.get("HUGGINGFACEHUB_API_TOKEN")
    return EmbeddingClient(url, token), None


def _finished_ids(path: Path) -> set[str]:
    """Ids already in an output file; a last line cut short by an interruption is removed."""
    done: set[str] = set()
    with path.open("r+b") as f:
        data = f.read()
        keep = data.rfind(b"\n") + 1
        if keep < len(data):
            f.truncate(keep)
    for line in data[:keep].splitlines():
        done.add(str(json.loads(line)["id"]))
    return done


def _embed(args: argparse.Namespace) -> None:
    client, configured = _endpoint_client(args)
    settings = _settings(args, configured)
    if args.engine == "ray":
        _embed_ray(args, client, settings)
        return
    output = Path(args.output)
    if output.exists() and not args.resume:
        raise CLIError(f"{output} exists: give --resume to continue it, or remove it")
    done = _finished_ids(output) if output.exists() else set()
    total = None
    if args.input != "-":
        with _open(args.input) as stream:
            total = sum(1 for line in stream if line.strip())
    written = 0
    with client, _open(args.input) as stream, output.open("a", encoding="utf-8") as out:
        progress = tqdm(
            total=total, initial=len(done), unit="record", file=sys.stderr, disable=args.quiet
        )
        pending: list[tuple[str, str]] = []

        def flush() -> None:
            nonlocal written
            if not pending:
                return
            results = client.embed_chunks([text for _, text in pending], settings)
            for (doc_id, _), chunks in zip(pending, results):
                row = {
                    "id": doc_id,
                    "chunks": [
                        {"start": c.start, "end": c.end, "embedding": c.embedding} for c in chunks
                    ],
                }
                out.write(json.dumps(row) + "\n")
            out.flush()
            written += len(pending)
            progress.update(len(pending))
            pending.clear()

        try:
            for doc_id, text in _records(args.input, stream, jsonl=True):
                if doc_id in done:
                    continue
                if lone_surrogate(text) is not None:
                    raise CLIError(
                        f"record {doc_id}: the text holds a lone surrogate and cannot be sent as UTF-8"
                    )
                pending.append((doc_id, text))
                if len(pending) >= args.batch_records:
                    flush()
        except CLIError:
            flush()  # what was read before the bad line is kept
            raise
        flush()
        progress.close()
    logger.info("embedded %d records into %s", written, output)


def _embed_ray(
    args: argparse.Namespace, client: EmbeddingClient, settings: ChunkingSettings
) -> None:
    """Records through Ray Data, chunks into one Parquet file."""
    try:
        from .ray import embed_jsonl
    except ImportError as exc:
        raise CLIError(
            f"--engine ray needs the ray extra: pip install 'hf-endpoint[ray]' ({exc})"
        ) from None
    if args.input == "-" or args.resume:
        raise CLIError("--engine ray reads a file (not -) and writes Parquet anew (no --resume)")
    if Path(args.output).exists():
        raise CLIError(f"{args.output} exists: remove it first")
    chunks = embed_jsonl(
        args.input, args.output, client, settings, address=args.address, progress=not args.quiet
    )
    logger.info("embedded %d chunks into %s", chunks, args.output)


def _demo(args: argparse.Namespace) -> None:
    def say(line: str) -> None:
        print(line, flush=True)

    try:
        from .demo import run_demo

        run_demo(say)
    except ImportError as exc:  # pragma: no cover - the extras are missing
        raise CLIError(
            f"the demo needs the langchain, llama-index and minilm extras ({exc})"
        ) from None


def _serve(argv: list[str]) -> int:
    # Only `serve` imports the server (Starlette, numpy, a model); its own parser reads the rest.
    try:
        from .server._command import main as serve_main
    except ImportError as exc:
        print(
            "hf-endpoint: error: the local server needs the server extra: "
            f"pip install 'hf-endpoint[server]' ({exc})",
            file=sys.stderr,
        )
        return 2
    return serve_main(argv, prog="hf-endpoint serve")


def _add_chunking_options(parser: argparse.ArgumentParser, **defaults: Any) -> None:
    group = parser.add_argument_group("chunking settings (Elasticsearch's chunking_settings)")
    group.add_argument("--strategy", choices=["sentence", "word", "recursive", "none"])
    group.add_argument("--max-chunk-size", type=int, metavar="WORDS")
    group.add_argument("--overlap", type=int, metavar="WORDS", help="word strategy only")
    group.add_argument(
        "--sentence-overlap", type=int, choices=[0, 1], help="sentence strategy only"
    )
    group.add_argument(
        "--separator-group", metavar="NAME", help="recursive strategy only: plaintext or markdown"
    )
    group.add_argument(
        "--separator",
        "--separators",
        dest="separators",
        action="append",
        metavar="REGEX",
        help="recursive strategy only: a Java regex; repeat for each, in order",
    )
    group.add_argument("--chunking-settings", metavar="JSON", help='e.g. \'{"strategy": "word"}\'')
    parser.set_defaults(**defaults)


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="hf-endpoint", description=__doc__.splitlines()[0])
    commands = parser.add_subparsers(dest="command", required=True)

    chunk = commands.add_parser(
        "chunk", help="chunk files or JSONL records; JSONL chunks with offsets out"
    )
    chunk.add_argument(
        "inputs", nargs="+", metavar="FILE", help='text files, .jsonl files with "text", or -'
    )
    _add_chunking_options(chunk, run=_chunk)

    commands.add_parser(
        "serve",
        help="run a local embedding endpoint (needs the server extra; see serve --help)",
        add_help=False,
    )

    embed = commands.add_parser(
        "embed",
        help="embed JSONL records (chunked); JSONL out with each chunk's offsets and vector",
    )
    embed.add_argument(
        "input", metavar="FILE", help='JSONL with a "text" (and an "id") per line, or -'
    )
    embed.add_argument(
        "-o", "--output", required=True, metavar="FILE", help="JSONL out: one line per record"
    )
    embed.add_argument(
        "--url", help="the endpoint URL (default: HF_ENDPOINT_URL); the token comes from HF_TOKEN"
    )
    embed.add_argument(
        "--inference-config", metavar="FILE", help="an Elasticsearch PUT _inference body (JSON)"
    )
    embed.add_argument(
        "--resume", action="store_true", help="continue an interrupted run: skip finished records"
    )
    embed.add_argument(
        "--batch-records", type=int, default=64, metavar="N", help="records per round trip"
    )
    embed.add_argument("--quiet", action="store_true", help="no progress bar")
    embed.add_argument(
        "--engine",
        choices=["local", "ray"],
        default="local",
        help="ray: Ray Data workers, Parquet out (one row per chunk; needs the ray extra)",
    )
    embed.add_argument(
        "--address", help="the Ray cluster to join (default: RAY_ADDRESS, else a local Ray)"
    )
    _add_chunking_options(embed, run=_embed)

    demo = commands.add_parser(
        "demo",
        help="chunk, embed and search a bundled corpus through both adapters (local endpoint by default)",
    )
    demo.set_defaults(run=_demo)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of ``hf-endpoint``; returns the exit status."""
    argv = list(sys.argv[1:] if argv is None else argv)
    if argv[:1] == ["serve"]:
        return _serve(argv[1:])
    parser = _parser()
    args = parser.parse_args(argv)
    try:
        args.run(args)
    except (CLIError, HFEndpointError) as exc:
        print(f"hf-endpoint: error: {exc}", file=sys.stderr)
        return 2
    except BrokenPipeError:
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())

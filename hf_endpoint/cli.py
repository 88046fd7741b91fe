"""The ``hf-endpoint`` command line.

``hf-endpoint chunk`` cuts files or JSONL records into chunks with offsets;
``hf-endpoint serve`` runs a local embedding endpoint; ``hf-endpoint demo``
chunks the bundled sample corpus and prints the chunks.
Errors are one line on stderr and a non-zero exit, never a traceback.
"""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Iterator, Sequence
from importlib import resources
from typing import Any, TextIO

from .chunking import chunk_offsets
from .errors import HFEndpointError
from .settings import ChunkingSettings

__all__ = ["main"]


class CLIError(Exception):
    """A problem to report as one line, exit status 2."""


def _settings(args: argparse.Namespace) -> ChunkingSettings:
    data: dict[str, Any] = {}
    if args.chunking_settings:
        try:
            data = json.loads(args.chunking_settings)
        except json.JSONDecodeError as exc:
            raise CLIError(f"--chunking-settings is not valid JSON: {exc}") from None
    for key in ("strategy", "max_chunk_size", "overlap", "sentence_overlap"):
        if getattr(args, key) is not None:
            data[key] = getattr(args, key)
    try:
        return ChunkingSettings.from_dict(data)
    except TypeError as exc:
        raise CLIError(str(exc)) from None


def _records(path: str, stream: TextIO) -> Iterator[tuple[str, str]]:
    """``(id, text)`` pairs: one per JSONL line, or the whole file as one text."""
    if path.endswith(".jsonl") or path == "-":
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


def _sample_records() -> list[dict[str, str]]:
    data = resources.files("hf_endpoint").joinpath("data/sample_docs.jsonl").read_text("utf-8")
    return [json.loads(line) for line in data.splitlines() if line.strip()]


def _demo(args: argparse.Namespace) -> None:
    settings = _settings(args)
    docs = _sample_records()
    print(f"Chunking {len(docs)} sample documents with {json.dumps(settings.to_dict())}\n")
    for doc in docs:
        offsets = chunk_offsets(doc["text"], settings)
        print(f"{doc['id']}: {len(offsets)} chunk(s)")
        for start, end in offsets:
            print(f"  [{start}:{end}] {doc['text'][start:end]!r}")


def _missing_server_extra(args: argparse.Namespace) -> None:
    raise CLIError("the local server needs the server extra: pip install 'hf-endpoint[server]'")


def _serve(args: argparse.Namespace) -> None:
    from .server import config_from_arguments, serve
    from .server._local import READY_LINE

    def announce(url: str) -> None:
        print(READY_LINE + url, flush=True)

    serve(config_from_arguments(args), host=args.host, port=args.port, on_ready=announce)


def _add_chunking_options(parser: argparse.ArgumentParser, **defaults: Any) -> None:
    group = parser.add_argument_group("chunking settings (Elasticsearch's chunking_settings)")
    group.add_argument("--strategy", choices=["sentence", "word", "none"])
    group.add_argument("--max-chunk-size", type=int, metavar="WORDS")
    group.add_argument("--overlap", type=int, metavar="WORDS", help="word strategy only")
    group.add_argument(
        "--sentence-overlap", type=int, choices=[0, 1], help="sentence strategy only"
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

    serve = commands.add_parser(
        "serve", help="run a local embedding endpoint (needs the server extra)"
    )
    try:
        from .server import add_arguments
    except ImportError:
        serve.set_defaults(run=_missing_server_extra)
    else:
        add_arguments(serve)
        serve.set_defaults(run=_serve)

    demo = commands.add_parser("demo", help="chunk the bundled sample corpus and print the chunks")
    _add_chunking_options(demo, run=_demo, strategy="sentence", max_chunk_size=20)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of ``hf-endpoint``; returns the exit status."""
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

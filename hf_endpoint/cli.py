"""The ``hf-endpoint`` command line: ``chunk``, ``embed``, ``serve`` and ``demo``.

Every error is one line on stderr and an exit status from ``EXIT_STATUSES``,
never a traceback; what was written before an error or an interruption stays
written. ``hf-endpoint embed`` records what produced its output in a sidecar
file (``OUTPUT.meta.json``) so that ``--resume`` can refuse to mix the vectors
of two models or two chunking settings in one file.
"""

from __future__ import annotations

import argparse
import functools
import json
import logging
import os
import sys
import textwrap
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from pydantic import SecretStr
from tqdm import tqdm

from . import __version__
from .client import EmbeddingClient, fitted_chunking
from .client._options import add_flags, flagged
from .config._auth import find_api_key
from .config.settings import ChunkingSettings, InferenceConfig
from .errors import ConfigError, HFEndpointError
from .ingest import local
from .ingest.errors import IngestError, Interrupted, OutputError
from .ingest.output import Output, Writer, provenance
from .ingest.records import Skipped, checked, count_records, open_input, read_records
from .ingest.work import Plan, chunk_lines
from .remote import INFERENCE_API_KEY_ENV, RemoteInferenceEndpoints, Wire

logger = logging.getLogger(__name__)

__all__ = ["EXIT_STATUSES", "main"]

EXIT_OK = 0
EXIT_ENDPOINT = 1
EXIT_USAGE = 2
EXIT_OUTPUT = 3
EXIT_INTERRUPTED = 130
EXIT_BROKEN_PIPE = 141

EXIT_STATUSES = {
    EXIT_OK: "done",
    EXIT_ENDPOINT: "the endpoint failed (an HTTP error after the retries, a wrong token, no connection)",
    EXIT_USAGE: "bad usage or input (an option, a setting, an input line, a duplicate id, "
    "an empty text, an output that --resume cannot continue, a port in use)",
    EXIT_OUTPUT: "the output cannot be written (no such folder, no permission, disk full)",
    EXIT_INTERRUPTED: "interrupted (Ctrl-C)",
    EXIT_BROKEN_PIPE: "standard output was closed early (e.g. piped into head)",
}

# The chunking options; given on the command line, they replace the chunking
# settings of an --inference-config file as a whole.
CHUNKING_OPTIONS = (
    "strategy",
    "max_chunk_size",
    "overlap",
    "sentence_overlap",
    "separator_group",
    "separators",
)


class CLIError(Exception):
    """A problem to report as one line, with the exit status that goes with it."""

    def __init__(self, message: str, status: int = EXIT_USAGE) -> None:
        super().__init__(message)
        self.status = status


# -- chunking settings ----------------------------------------------------------


def _chunking_settings(
    args: argparse.Namespace, configured: ChunkingSettings | None = None
) -> ChunkingSettings | None:
    """The chunking settings the options give; without any chunking option, ``configured``.

    Options replace an ``--inference-config`` file's settings as a whole, so
    ``--strategy word`` never meets the file's ``sentence_overlap``.
    """
    data: dict[str, Any] = {}
    if args.chunking_settings:
        try:
            data = json.loads(args.chunking_settings)
        except json.JSONDecodeError as exc:
            raise CLIError(f"--chunking-settings is not valid JSON: {exc}") from None
        if not isinstance(data, dict):
            raise CLIError("--chunking-settings must be a JSON object")
    given = {k: getattr(args, k) for k in CHUNKING_OPTIONS if getattr(args, k) is not None}
    if not data and not given:
        return configured
    if "separator_group" in given or "separators" in given:
        data.pop("separators", None)  # given on the command line, they replace those in the JSON
    return ChunkingSettings.from_dict({**data, **given})


# -- hf-endpoint chunk ---------------------------------------------------------------


def _chunk(args: argparse.Namespace) -> None:
    settings = _chunking_settings(args) or ChunkingSettings()
    out = sys.stdout.buffer
    skipped = Skipped() if args.skip_empty else None
    for path in args.inputs:
        with open_input(path) as stream:
            for record in checked(path, read_records(path, stream, args.format), skipped):
                for line in chunk_lines(record, settings):
                    out.write(line)
    out.flush()
    if skipped is not None and skipped.count:
        _say(str(skipped))


# -- hf-endpoint embed --------------------------------------------------------------


@dataclass
class Endpoint:
    """Where ``embed`` sends its requests, from the options or an ``--inference-config``."""

    url: str
    api_key: SecretStr | None
    rate_limit: int | None = None
    max_input_tokens: int | None = None
    chunking_settings: ChunkingSettings | None = None
    # Set for --inference-api: requests go to the service's _inference endpoint.
    wire: Wire | None = None
    key_source: str | None = None  # where the key came from, for a refused token


def _inference_api_endpoint(args: argparse.Namespace) -> Endpoint:
    if args.url or args.inference_config:
        raise CLIError("give --inference-api, or --url / --inference-config, not both")
    if not args.inference_id:
        raise CLIError("--inference-api needs --inference-id: the endpoint to embed with")
    credential = os.environ.get(INFERENCE_API_KEY_ENV) or None
    with RemoteInferenceEndpoints(args.inference_api, api_key=credential) as remote:
        fields, wire = remote.adapter_source(args.inference_id, "text_embedding")
    chunking = fields.get("chunking_settings")
    rate = (fields.get("rate_limit") or {}).get("requests_per_minute")
    return Endpoint(
        fields["url"],
        SecretStr(credential) if credential else None,
        rate,
        None,
        ChunkingSettings.coerce(chunking) if chunking else None,
        wire=wire,
    )


def _endpoint(args: argparse.Namespace) -> Endpoint:
    if args.inference_api:
        return _inference_api_endpoint(args)
    if args.inference_config:
        try:
            with open(args.inference_config, encoding="utf-8") as f:
                body = json.load(f)
        except OSError as exc:
            raise CLIError(f"cannot read {args.inference_config}: {exc.strerror}") from None
        except json.JSONDecodeError as exc:
            raise CLIError(f"{args.inference_config} is not valid JSON: {exc}") from None
        config = InferenceConfig.from_dict(body)
        s = config.service_settings
        return Endpoint(
            s.url,
            s.api_key,
            s.rate_limit.requests_per_minute,
            s.max_input_tokens,
            config.chunking_settings,
            key_source=f"the token in {args.inference_config} (service_settings.api_key)",
        )
    url = args.url or os.environ.get("HF_ENDPOINT_URL")
    if not url:
        raise CLIError(
            "no endpoint: give --url, set HF_ENDPOINT_URL, or give --inference-config FILE"
        )
    return Endpoint(url, find_api_key())  # HF_TOKEN, HUGGINGFACEHUB_API_TOKEN, `hf auth login`


def _client(args: argparse.Namespace, endpoint: Endpoint) -> EmbeddingClient:
    options: dict[str, Any] = {s.name: getattr(args, s.name) for s in flagged()}
    options["rate_limit"] = args.rate_limit or endpoint.rate_limit
    if endpoint.wire is not None:
        return endpoint.wire.embedding_client(endpoint.url, endpoint.api_key, **options)
    client = EmbeddingClient(
        endpoint.url, endpoint.api_key, max_input_tokens=endpoint.max_input_tokens, **options
    )
    client._key_source = endpoint.key_source
    return client


def _embed(args: argparse.Namespace) -> None:
    endpoint = _endpoint(args)
    settings = _chunking_settings(args, endpoint.chunking_settings)
    if args.engine == "ray" and args.output.endswith(".parquet"):
        with _client(args, endpoint) as client:
            # without settings, the client's default fitted to the endpoint, as on JSONL
            fitted = fitted_chunking(client.server_limits().max_input_length)
            _embed_parquet(args, client, settings or fitted)
        return
    engine = _engine(args)
    path = Path(args.output)
    if path.exists() and not args.resume:
        raise CLIError(f"{path} exists: give --resume to continue it, or remove it")
    started = time.monotonic()
    total = count_records(args.input)
    skipped = Skipped() if args.skip_empty else None
    plan = Plan(
        settings,
        query=args.query_prefix is not None,
        with_text=args.with_text,
        batch_records=args.batch_records,
    )
    with _client(args, endpoint) as client:
        recorded = provenance(
            url=endpoint.url,
            model_id=client.server_limits().model_id,
            plan=plan,
            truncate=args.truncate,
            normalize=args.normalize,
            document_prefix=args.document_prefix,
            query_prefix=args.query_prefix,
            input=args.input,
            batch_size=args.batch_size,
            max_concurrency=args.max_concurrency,
            rate_limit=client.rate_limit.requests_per_minute,
        )
        output = Output(path, recorded, total or 0)
        writer = engine(
            args.input,
            output,
            client,
            plan,
            total=total,
            skipped=skipped,
            quiet=args.quiet,
            on_interrupt=_mute_warnings,
        )
    if not args.quiet:
        also = f"; {skipped}" if skipped is not None and skipped.count else ""
        _say(
            f"{writer.records} records ({writer.chunks} chunks) written to {path} "
            f"in {time.monotonic() - started:.1f} s{also}"
        )
        if args.engine == "local":  # Ray's workers count their requests in their own clients
            _say(f"client: {client.stats}")


def _engine(args: argparse.Namespace) -> Callable[..., Writer]:
    """The engine's ``embed_file``: this process's, or Ray's (joining ``--address``)."""
    if args.engine == "local":
        return local.embed_file
    ray_engine = _ray_engine()
    return functools.partial(ray_engine.embed_file, address=args.address)


def _ray_engine() -> Any:
    try:
        from .ingest import ray as ray_engine
    except ImportError as exc:
        raise CLIError(
            f"--engine ray needs the ray extra: pip install 'hf-endpoint[ray]' ({exc})"
        ) from None
    return ray_engine


def _embed_parquet(
    args: argparse.Namespace, client: EmbeddingClient, settings: ChunkingSettings
) -> None:
    """Records through Ray Data, chunks into one Parquet file, written whole at the end."""
    ray_engine = _ray_engine()
    if args.input == "-" or args.resume:
        raise CLIError(
            "--engine ray writes a .parquet output from a file (not -), anew (no --resume): "
            "write a JSONL output to resume"
        )
    if Path(args.output).exists():
        raise CLIError(f"{args.output} exists: remove it first")
    chunks = ray_engine.embed_jsonl(
        args.input, args.output, client, settings, address=args.address, progress=not args.quiet
    )
    logger.info("embedded %d chunks into %s", chunks, args.output)


def _say(line: str) -> None:
    print(f"hf-endpoint: {line}", file=sys.stderr, flush=True)


# -- serve, demo --------------------------------------------------------------------


def _demo(args: argparse.Namespace) -> None:
    def say(line: str) -> None:
        print(line, flush=True)

    try:
        from .demo import run_demo

        run_demo(say)
    except ImportError as exc:  # pragma: no cover - the extras are missing
        raise CLIError(
            f"the demo needs the demo extra: pip install 'hf-endpoint[demo]' ({exc})"
        ) from None


def _inference_api(argv: list[str]) -> int:
    """``hf-endpoint inference-api``: the service's own command line."""
    try:
        from .inference_api._command import main as service_main
    except ImportError as exc:
        _say(
            "error: the inference API service needs the inference-api extra: "
            f"pip install 'hf-endpoint[inference-api]' ({exc})"
        )
        return EXIT_USAGE
    return service_main(argv, prog="hf-endpoint inference-api")


def _serve(argv: list[str]) -> int:
    """``hf-endpoint serve``: the server's own command line, with this one's help."""
    # Only `serve` imports the server (Starlette, a model).
    try:
        from .server._command import add_arguments
        from .server._command import main as serve_main
    except ImportError as exc:
        _say(
            f"error: the local server needs the server extra: pip install 'hf-endpoint[server]' ({exc})"
        )
        return EXIT_USAGE
    parser = argparse.ArgumentParser(
        prog="hf-endpoint serve",
        description=_SERVE_SUMMARY[0].upper() + _SERVE_SUMMARY[1:] + ".",
        epilog=_SERVE_EXAMPLES + "\n" + _EXIT_HELP,
        formatter_class=_HelpFormatter,
    )
    add_arguments(parser)
    _show_every_default(parser)
    parser.parse_args(argv)  # --help and a bad option are answered here
    return serve_main(argv, prog="hf-endpoint serve")


# -- the parser ---------------------------------------------------------------------


class _HelpFormatter(argparse.RawDescriptionHelpFormatter):
    """Examples shown as written, and every option's default after its help."""

    def _get_help_string(self, action: argparse.Action) -> str:
        text = action.help or ""
        if (
            action.option_strings
            and "%(default)" not in text
            and "(default:" not in text  # the help says its default in words
            and action.default not in (None, False, argparse.SUPPRESS)
        ):
            text += " (default: %(default)s)"
        return text


def _show_every_default(parser: argparse.ArgumentParser) -> None:
    """Give options without help a help line, so that their default is shown too."""
    for action in parser._actions:
        if action.help is None and action.default not in (None, False, argparse.SUPPRESS):
            action.help = "(default: %(default)s)"


def _whole_number(value: str) -> int:
    try:
        number = int(value)
    except ValueError:
        raise argparse.ArgumentTypeError(f"must be a whole number >= 1, not {value!r}") from None
    if number < 1:
        raise argparse.ArgumentTypeError(f"must be a whole number >= 1, not {value!r}")
    return number


def _add_chunking_options(parser: argparse.ArgumentParser, replaces_config: bool) -> None:
    title = "chunking settings (Elasticsearch's chunking_settings)"
    description = "default: Elasticsearch's: sentence strategy, 250 words, sentence_overlap 1"
    if replaces_config:
        description = (
            "default: the --inference-config file's chunking_settings, else the client's\n"
            "default for the endpoint; any option here replaces the file's chunking_settings\n"
            "as a whole"
        )
    group = parser.add_argument_group(title, description)
    group.add_argument("--strategy", choices=["sentence", "word", "recursive", "none"])
    group.add_argument("--max-chunk-size", type=int, metavar="WORDS", help="words per chunk")
    group.add_argument(
        "--overlap", type=int, metavar="WORDS", help="words shared by neighbours (word strategy)"
    )
    group.add_argument(
        "--sentence-overlap", type=int, choices=[0, 1], help="sentence strategy: 0 or 1"
    )
    group.add_argument(
        "--separator-group", metavar="NAME", help="recursive strategy: plaintext or markdown"
    )
    group.add_argument(
        "--separator",
        "--separators",
        dest="separators",
        action="append",
        metavar="REGEX",
        help="recursive strategy: a Java regex; repeat for each, in order",
    )
    group.add_argument(
        "--chunking-settings",
        metavar="JSON",
        help='all of them as JSON, e.g. \'{"strategy": "word", "max_chunk_size": 100}\'',
    )


_SKIP_EMPTY_HELP = (
    'leave out records whose "text" is empty, counted in the summary (default: such a '
    "record is an error naming its line and id)"
)

_EXIT_HELP = "exit status:\n" + "\n".join(
    textwrap.fill(meaning, 88, initial_indent=f"  {status:<4} ", subsequent_indent=" " * 7)
    for status, meaning in EXIT_STATUSES.items()
)

_CHUNK_EXAMPLES = """\
examples:
  hf-endpoint chunk --strategy word --max-chunk-size 50 notes.txt
  hf-endpoint chunk records.jsonl > chunks.jsonl
  echo "Some text. Another sentence." | hf-endpoint chunk -

Writes one JSON line per chunk: {"id", "chunk", "start", "end", "text"}; text[start:end]
is the chunk. A .jsonl file holds records {"id", "text"} (a record without "id" gets
FILE:LINE; ids unique, texts not empty: either is an error naming the line, unless
--skip-empty); any other file is one document whose id is its path. Standard input is
read as records when its first line is a JSON object with a string "text", else as
one text; --format says which.
"""

_EMBED_EXAMPLES = """\
examples:
  hf-endpoint embed records.jsonl -o vectors.jsonl --url https://xyz.endpoints.huggingface.cloud
  hf-endpoint embed records.jsonl -o vectors.jsonl --inference-config endpoint.json --resume
  hf-endpoint embed records.jsonl -o vectors.jsonl --url http://127.0.0.1:8080 \\
      --strategy word --max-chunk-size 100 --overlap 20 --rate-limit 600 --with-text

Reads JSONL records {"id", "text"} (ids unique: a repeated id is an error naming both
lines; a record without "id" gets FILE:LINE) and writes one line per record, in input
order: {"id", "chunks": [{"start", "end", "embedding"}, ...]}. The token comes from
HF_TOKEN or `hf auth login` (or the --inference-config file). OUTPUT.meta.json beside the output records
what made it: the endpoint URL (without credentials), the model id from GET /info, the
vectors' dimensions, the chunking settings and the options that change the vectors;
--resume refuses an output made otherwise, naming what differs.
"""

_SERVE_SUMMARY = "run a local embedding endpoint (needs the server extra)"

_SERVE_EXAMPLES = """\
examples:
  hf-endpoint serve --port 8080
  hf-endpoint serve --backend hash --fault-429 0.1 --cold-start 30 --seed 7
  hf-endpoint serve --model ./my-sentence-transformers-model --device auto
"""

_DEMO_EXAMPLES = """\
examples:
  hf-endpoint demo
  HF_ENDPOINT_URL=https://xyz.endpoints.huggingface.cloud HF_TOKEN=hf_... hf-endpoint demo
"""


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="hf-endpoint",
        description="Chunk and embed text with a Hugging Face Inference Endpoint (Text "
        "Embeddings Inference), the way Elasticsearch's hugging_face service does.",
        epilog=_EXIT_HELP,
        formatter_class=_HelpFormatter,
    )
    parser.add_argument("--version", action="version", version=f"%(prog)s {__version__}")
    commands = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")

    def command(name: str, summary: str, examples: str) -> argparse.ArgumentParser:
        sub = commands.add_parser(
            name,
            help=summary,
            description=summary[0].upper() + summary[1:] + ".",
            epilog=examples + "\n" + _EXIT_HELP,
            formatter_class=_HelpFormatter,
        )
        return sub

    chunk = command(
        "chunk", "cut files or JSONL records into chunks with their offsets", _CHUNK_EXAMPLES
    )
    chunk.add_argument(
        "inputs", nargs="+", metavar="FILE", help="text files, .jsonl records, or - (stdin)"
    )
    chunk.add_argument(
        "--format",
        choices=["auto", "text", "jsonl"],
        default="auto",
        help="how to read the inputs: auto is by extension, and by content for -",
    )
    chunk.add_argument("--skip-empty", action="store_true", help=_SKIP_EMPTY_HELP)
    _add_chunking_options(chunk, replaces_config=False)
    chunk.set_defaults(run=_chunk)

    embed = command(
        "embed", "embed JSONL records chunk by chunk, resumably, into JSONL", _EMBED_EXAMPLES
    )
    embed.add_argument("input", metavar="FILE", help='JSONL records with a "text", or - (stdin)')
    embed.add_argument(
        "-o", "--output", required=True, metavar="OUTPUT", help="the JSONL file to write"
    )
    endpoint = embed.add_argument_group("endpoint")
    endpoint.add_argument("--url", help="the endpoint URL (default: HF_ENDPOINT_URL)")
    endpoint.add_argument(
        "--inference-config",
        metavar="FILE",
        help="an Elasticsearch PUT _inference body (JSON): URL, key, rate limit, chunking",
    )
    endpoint.add_argument(
        "--inference-api",
        metavar="URL",
        help=(
            "an _inference API (hf-endpoint inference-api, or Elasticsearch) that holds the "
            f"endpoint and its key; the caller's API key from {INFERENCE_API_KEY_ENV}"
        ),
    )
    endpoint.add_argument(
        "--inference-id", metavar="ID", help="the endpoint of --inference-api to embed with"
    )
    endpoint.add_argument(
        "--rate-limit",
        type=_whole_number,
        metavar="RPM",
        help="requests per minute (default: the config file's, else 3000)",
    )
    # The client's options that have a flag, as declared (hf_endpoint.client._options).
    add_flags(endpoint)
    run = embed.add_argument_group("the run")
    run.add_argument(
        "--resume",
        action="store_true",
        help="continue an interrupted run: records already in OUTPUT are skipped",
    )
    run.add_argument(
        "--batch-records",
        type=_whole_number,
        default=64,
        metavar="N",
        help="records chunked and embedded per step",
    )
    run.add_argument("--with-text", action="store_true", help='write each chunk\'s "text" too')
    run.add_argument("--skip-empty", action="store_true", help=_SKIP_EMPTY_HELP)
    run.add_argument("--quiet", action="store_true", help="no progress bar and no summary")
    run.add_argument(
        "--engine",
        choices=["local", "ray"],
        default="local",
        help="ray: the same batches on Ray Data workers (needs the ray extra); "
        "an OUTPUT ending in .parquet gets one row per chunk instead, written at the end",
    )
    run.add_argument(
        "--address", help="the Ray cluster to join (default: RAY_ADDRESS, else a local Ray)"
    )
    _add_chunking_options(embed, replaces_config=True)
    embed.set_defaults(run=_embed)

    # hf-endpoint serve is answered by _serve before this parser runs; listed here for --help.
    commands.add_parser("serve", help=_SERVE_SUMMARY, add_help=False)
    # So is inference-api, by _inference_api.
    commands.add_parser(
        "inference-api",
        help="serve Elasticsearch's _inference API for hugging_face endpoints; manage its keys",
        add_help=False,
    )

    demo = command(
        "demo",
        "chunk, embed and search a bundled corpus through both adapters (local endpoint by default)",
        _DEMO_EXAMPLES,
    )
    demo.set_defaults(run=_demo)
    return parser


def _silence_stdout() -> None:
    """After a broken pipe: nothing more may reach stdout, not even the exit flush."""
    devnull = os.open(os.devnull, os.O_WRONLY)
    os.dup2(devnull, sys.stdout.fileno())


class _Warnings(logging.Handler):
    """The package's warnings (a retry, a wait) on stderr in the command's own format,
    above the progress bar."""

    def emit(self, record: logging.LogRecord) -> None:
        tqdm.write(f"hf-endpoint: {record.levelname.lower()}: {record.getMessage()}", sys.stderr)


_WARNINGS = _Warnings()


def _log_warnings() -> None:
    _WARNINGS.setLevel(logging.WARNING)
    package = logging.getLogger("hf_endpoint")
    if _WARNINGS not in package.handlers:
        package.addHandler(_WARNINGS)


def _mute_warnings() -> None:
    """After an interruption, requests cut short must not report themselves."""
    _WARNINGS.setLevel(logging.CRITICAL + 1)


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of ``hf-endpoint``; returns the exit status (see ``EXIT_STATUSES``)."""
    argv = list(sys.argv[1:] if argv is None else argv)
    if argv[:1] == ["serve"]:
        return _serve(argv[1:])
    if argv[:1] == ["inference-api"]:
        return _inference_api(argv[1:])
    args = _parser().parse_args(argv)
    _log_warnings()
    run: Callable[[argparse.Namespace], None] = args.run
    try:
        run(args)
    except CLIError as exc:
        _say(f"error: {exc}")
        return exc.status
    except Interrupted as exc:
        _say(str(exc))
        return EXIT_INTERRUPTED
    except IngestError as exc:
        _say(f"error: {exc}")
        return EXIT_OUTPUT if isinstance(exc, OutputError) else EXIT_USAGE
    except ConfigError as exc:
        _say(f"error: {exc}")
        return EXIT_USAGE
    except HFEndpointError as exc:
        _say(f"error: {exc}")
        return EXIT_ENDPOINT
    except BrokenPipeError:
        _silence_stdout()
        return EXIT_BROKEN_PIPE
    except KeyboardInterrupt:
        _say("interrupted")
        return EXIT_INTERRUPTED
    return EXIT_OK


if __name__ == "__main__":
    sys.exit(main())

"""The ``hf-endpoint`` command line: ``chunk``, ``embed``, ``serve`` and ``demo``.

Every error is one line on stderr and an exit status from ``EXIT_STATUSES``,
never a traceback; what was written before an error or an interruption stays
written. ``hf-endpoint embed`` records what produced its output in a sidecar
file (``OUTPUT.meta.json``) so that ``--resume`` can refuse to mix the vectors
of two models or two chunking settings in one file.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import logging
import os
import queue
import signal
import sys
import textwrap
import threading
import time
from array import array
from collections.abc import Callable, Iterable, Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import IO, Any

import httpx
import orjson
from pydantic import SecretStr
from tqdm import tqdm

from . import __version__
from .chunking import chunk_offsets
from .client import EmbeddedChunk, EmbeddingClient
from .client._base import lone_surrogate
from .client._options import add_flags, flagged
from .config._auth import find_api_key
from .config.settings import ChunkingSettings, InferenceConfig
from .errors import ConfigError, HFEndpointError
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

SIDECAR_SUFFIX = ".meta.json"
SIDECAR_FORMAT = "hf-endpoint embed 1"


class CLIError(Exception):
    """A problem to report as one line, with the exit status that goes with it."""

    def __init__(self, message: str, status: int = EXIT_USAGE) -> None:
        super().__init__(message)
        self.status = status


def _cannot_write(path: Path | str, exc: OSError) -> CLIError:
    return CLIError(f"cannot write {path}: {exc.strerror or exc}", EXIT_OUTPUT)


# -- input ----------------------------------------------------------------------


@dataclass(frozen=True)
class Record:
    """One input document: where it came from, its id and its text."""

    line: int
    id: str | int
    text: str


def _open_input(path: str) -> IO[str]:
    if path == "-":
        return sys.stdin
    try:
        return open(path, encoding="utf-8", errors="surrogateescape")
    except OSError as exc:
        raise CLIError(f"cannot read {path}: {exc.strerror}") from None


def _parse_record(path: str, number: int, line: str) -> Record:
    try:
        record = json.loads(line)
    except json.JSONDecodeError as exc:
        raise CLIError(f"{path}:{number}: not valid JSON ({exc.msg})") from None
    if not isinstance(record, dict) or not isinstance(record.get("text"), str):
        raise CLIError(f'{path}:{number}: a record must be an object with a string "text"')
    doc_id = record.get("id", f"{path}:{number}")
    if isinstance(doc_id, bool) or not isinstance(doc_id, (str, int)):
        raise CLIError(f'{path}:{number}: "id" must be a string or an integer, not {doc_id!r}')
    return Record(number, doc_id, record["text"])


def _jsonl_records(path: str, lines: Iterable[tuple[int, str]]) -> Iterator[Record]:
    for number, line in lines:
        if line.strip():
            yield _parse_record(path, number, line)


def _looks_like_a_record(line: str) -> bool:
    try:
        record = json.loads(line)
    except json.JSONDecodeError:
        return False
    return isinstance(record, dict) and isinstance(record.get("text"), str)


def _records(path: str, stream: IO[str], form: str) -> Iterator[Record]:
    """The documents of one input: JSONL records, or the whole input as one text.

    ``form`` is ``jsonl``, ``text`` or ``auto``: ``.jsonl`` files are records,
    other files text; standard input is records when its first non-blank line
    is a JSON object with a string ``"text"``, else text.
    """
    lines: Iterator[tuple[int, str]] = enumerate(stream, 1)
    if form == "auto" and path == "-":
        peeked: list[tuple[int, str]] = []
        for number, line in lines:
            peeked.append((number, line))
            if line.strip():
                break
        form = "jsonl" if peeked and _looks_like_a_record(peeked[-1][1]) else "text"
        lines = iter([*peeked, *lines])
    elif form == "auto":
        form = "jsonl" if path.endswith(".jsonl") else "text"
    if form == "jsonl":
        yield from _jsonl_records(path, lines)
    else:
        yield Record(1, path, "".join(line for _, line in lines))


class IdIndex:
    """Ids seen so far and the line of each, in flat arrays of 128-bit hashes.

    About 40 bytes an id where a dict of strings takes 120: a run over millions of
    records keeps its memory small. Two different ids share a hash with a
    probability of about n**2 / 2**129 (1e-27 for a million ids).
    """

    def __init__(self, expected: int = 0) -> None:
        """``expected``: about how many ids will come, so that the arrays are made once."""
        self._count = 0
        self._allocate(max(1 << 12, 1 << (3 * expected // 2).bit_length()))

    def _allocate(self, slots: int) -> None:
        self._high = array("Q", bytes(8 * slots))  # 0: an empty slot
        self._low = array("Q", bytes(8 * slots))
        self._lines = array("Q", bytes(8 * slots))
        self._mask = slots - 1

    @staticmethod
    def _key(doc_id: str | int) -> tuple[int, int]:
        raw = doc_id.encode("utf-8", "surrogatepass") if isinstance(doc_id, str) else b"%d" % doc_id
        digest = hashlib.blake2b(
            raw, digest_size=16, person=b"s" if isinstance(doc_id, str) else b"i"
        )
        value = int.from_bytes(digest.digest(), "little")
        return (value >> 64) | 1, value & 0xFFFF_FFFF_FFFF_FFFF

    def _slot(self, high: int, low: int) -> int:
        i = low & self._mask
        while self._high[i] and (self._high[i] != high or self._low[i] != low):
            i = (i + 1) & self._mask
        return i

    def setdefault(self, doc_id: str | int, line: int) -> int:
        """The line ``doc_id`` was first seen on; ``line`` when it is new (and now known)."""
        high, low = self._key(doc_id)
        i = self._slot(high, low)
        if self._high[i]:
            return self._lines[i]
        self._high[i], self._low[i], self._lines[i] = high, low, line
        self._count += 1
        if self._count * 3 > 2 * len(self._high):
            old = self._high, self._low, self._lines
            self._allocate(2 * len(self._high))
            for h, lo, n in zip(*old):
                if h:
                    j = self._slot(h, lo)
                    self._high[j], self._low[j], self._lines[j] = h, lo, n
        return line

    def __contains__(self, doc_id: str | int) -> bool:
        return bool(self._high[self._slot(*self._key(doc_id))])

    def __len__(self) -> int:
        return self._count


def _unique(path: str, records: Iterable[Record], expected: int = 0) -> Iterator[Record]:
    """The records, refusing a second record with the id of an earlier one."""
    first_line = IdIndex(expected)
    for record in records:
        first = first_line.setdefault(record.id, record.line)
        if first != record.line:
            raise CLIError(
                f"{path}:{record.line}: duplicate id {json.dumps(record.id, ensure_ascii=False)}, "
                f"first on line {first}: ids must be unique"
            )
        yield record


class Skipped:
    """The records ``--skip-empty`` left out, for the summary."""

    def __init__(self) -> None:
        self.count = 0
        self._first: list[str] = []

    def add(self, path: str, record: Record) -> None:
        self.count += 1
        if len(self._first) < 3:
            self._first.append(f"{path}:{record.line}")

    def __str__(self) -> str:
        more = ", ..." if self.count > len(self._first) else ""
        return (
            f"{self.count} record{'s' if self.count != 1 else ''} with an empty text skipped "
            f"({', '.join(self._first)}{more})"
        )


def _checked(
    path: str, records: Iterable[Record], skipped: Skipped | None, expected: int = 0
) -> Iterator[Record]:
    """The records both ``chunk`` and ``embed`` accept, checked as they are read: unique ids
    and a text that is not empty (an endpoint refuses an empty input, so its one empty chunk
    could never be embedded). ``skipped``: leave empty texts out and count them instead."""
    for record in _unique(path, records, expected):
        if not record.text:
            if skipped is not None:
                skipped.add(path, record)
                continue
            raise CLIError(
                f"{path}:{record.line}: id {json.dumps(record.id, ensure_ascii=False)}: the text "
                "is empty, which an endpoint refuses: give it some text, remove the record, "
                "or pass --skip-empty to leave such records out"
            )
        yield record


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


# -- output -----------------------------------------------------------------------


def _dumps_line(row: dict[str, Any]) -> bytes:
    try:
        return orjson.dumps(row, option=orjson.OPT_APPEND_NEWLINE)
    except TypeError:  # a lone surrogate from undecodable input bytes: escape it
        return json.dumps(row).encode("ascii") + b"\n"


def _chunk(args: argparse.Namespace) -> None:
    settings = _chunking_settings(args) or ChunkingSettings()
    out = sys.stdout.buffer
    skipped = Skipped() if args.skip_empty else None
    for path in args.inputs:
        with _open_input(path) as stream:
            for record in _checked(path, _records(path, stream, args.format), skipped):
                text = record.text
                for i, (start, end) in enumerate(chunk_offsets(text, settings)):
                    out.write(
                        _dumps_line(
                            {
                                "id": record.id,
                                "chunk": i,
                                "start": start,
                                "end": end,
                                "text": text[start:end],
                            }
                        )
                    )
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


def _public_url(url: str) -> str:
    """The URL without user, password, query or fragment: what the sidecar may hold."""
    try:
        parsed = httpx.URL(url)
    except httpx.InvalidURL:
        return "<invalid URL>"
    return str(parsed.copy_with(userinfo=b"", query=None, fragment=None))


# What must agree between an output file and a run that resumes it.
_COMPARED = (
    "url",
    "model_id",
    "dimensions",
    "chunking_settings",
    "truncate",
    "normalize",
    "text",
    "document_prefix",
    "query_prefix",
)


def _provenance(
    args: argparse.Namespace,
    endpoint: Endpoint,
    settings: ChunkingSettings | None,
    model_id: str | None,
    rate_limit: int,
) -> dict[str, Any]:
    return {
        "format": SIDECAR_FORMAT,
        "hf_endpoint": __version__,
        "url": _public_url(endpoint.url),
        "model_id": model_id,
        "dimensions": None,
        "chunking_settings": None if settings is None else settings.to_dict(),
        "truncate": args.truncate,
        "normalize": args.normalize,
        "text": args.with_text,
        "document_prefix": args.document_prefix,
        "query_prefix": args.query_prefix,
        "input": args.input,
        "batch_records": args.batch_records,
        "batch_size": args.batch_size,
        "max_concurrency": args.max_concurrency,
        "rate_limit": rate_limit,  # what applied: the option's, the config file's or 3000
    }


def _differences(recorded: dict[str, Any], now: dict[str, Any]) -> list[str]:
    """What differs between two provenances; an unknown model id or width differs from nothing."""
    out = []
    for key in _COMPARED:
        there, here = recorded.get(key), now.get(key)
        if key in ("model_id", "dimensions") and (there is None or here is None):
            continue
        if there != here:
            out.append(
                f"{key} {json.dumps(there, ensure_ascii=False)} there, "
                f"{json.dumps(here, ensure_ascii=False)} now"
            )
    return out


class Output:
    """The JSONL output of ``embed`` and its sidecar ``OUTPUT.meta.json``."""

    def __init__(self, path: Path, provenance: dict[str, Any], expected: int = 0) -> None:
        self.path = path
        self.sidecar = path.with_name(path.name + SIDECAR_SUFFIX)
        self.provenance = provenance
        self.done = IdIndex(expected)
        self.file: IO[bytes] | None = None
        self.size = 0  # bytes of whole records in the file
        self.created = False  # by this run: removed again if no record reaches it

    def open(self) -> None:
        """Check what an existing output holds and open it for appending."""
        self.created = not self.path.exists()
        if not self.created and self.path.stat().st_size > 0:
            self._check_sidecar()
            self._read_done()
        self.write_sidecar()
        try:
            self.file = self.path.open("ab")
        except OSError as exc:
            raise _cannot_write(self.path, exc) from None
        self.size = self.file.tell()

    def _check_sidecar(self) -> None:
        try:
            recorded = json.loads(self.sidecar.read_text("utf-8"))
        except FileNotFoundError:
            raise CLIError(
                f"{self.path} has no {self.sidecar.name} beside it, so nothing tells what made it: "
                "write to a new file"
            ) from None
        except (OSError, ValueError) as exc:
            raise CLIError(f"cannot read {self.sidecar}: {exc}") from None
        if not isinstance(recorded, dict) or recorded.get("format") != SIDECAR_FORMAT:
            raise CLIError(f"{self.sidecar} is not an hf-endpoint embed sidecar")
        differences = _differences(recorded, self.provenance)
        if differences:
            raise CLIError(
                f"{self.path} was written with other settings ({'; '.join(differences)}): "
                "resume with the same ones, or write to a new file"
            )
        for key in ("model_id", "dimensions"):
            if self.provenance[key] is None:
                self.provenance[key] = recorded.get(key)

    def _read_done(self) -> None:
        """The ids already written; a last line cut short by an interruption is removed."""
        try:
            with self.path.open("r+b") as f:
                end = f.seek(0, os.SEEK_END)
                keep = end
                while keep > 0:
                    f.seek(max(0, keep - 65536))
                    block = f.read(keep - f.tell())
                    newline = block.rfind(b"\n")
                    if newline >= 0:
                        keep = keep - len(block) + newline + 1
                        break
                    keep -= len(block)
                if keep < end:
                    f.truncate(keep)
                f.seek(0)
                for number, line in enumerate(f, 1):
                    self.done.setdefault(self._written_id(number, line), number)
        except OSError as exc:
            raise _cannot_write(self.path, exc) from None

    def _written_id(self, number: int, line: bytes) -> str | int:
        try:
            row = orjson.loads(line)
        except orjson.JSONDecodeError as exc:
            raise CLIError(
                f"{self.path}:{number}: not valid JSON ({exc}): --resume continues only files "
                "that hf-endpoint embed wrote"
            ) from None
        doc_id = row.get("id") if isinstance(row, dict) else None
        if isinstance(doc_id, bool) or not isinstance(doc_id, (str, int)):
            raise CLIError(
                f'{self.path}:{number}: no "id": --resume continues only files that '
                "hf-endpoint embed wrote"
            )
        return doc_id

    def write_sidecar(self) -> None:
        partial = self.sidecar.with_name(self.sidecar.name + ".partial")
        try:
            partial.write_text(json.dumps(self.provenance, indent=2, ensure_ascii=False) + "\n")
            os.replace(partial, self.sidecar)
        except OSError as exc:
            raise _cannot_write(self.sidecar, exc) from None

    def check_dimensions(self, results: list[list[EmbeddedChunk]]) -> None:
        """Record the vectors' width on the first answer; refuse a different one later."""
        width = next((len(chunks[0].embedding) for chunks in results if chunks), None)
        if width is None:
            return
        recorded = self.provenance["dimensions"]
        if recorded is None:
            self.provenance["dimensions"] = width
            self.write_sidecar()
        elif recorded != width:
            raise CLIError(
                f"the endpoint answers vectors of {width} dimensions, {self.path} holds {recorded}: "
                "resume against the same model, or write to a new file"
            )

    def write(self, data: bytes) -> None:
        """Append whole records; on failure, cut the file back to the records before them."""
        assert self.file is not None
        try:
            self.file.write(data)
            self.file.flush()
        except OSError:
            try:
                self.file.truncate(self.size)
            except OSError:
                pass
            raise
        self.size += len(data)

    def close(self) -> None:
        if self.file is not None:
            try:
                self.file.close()
            except OSError:
                pass  # what could not be flushed was reported by write()
            self.file = None

    def discard_if_empty(self) -> bool:
        """Remove the output and its sidecar when this run made them and wrote no record,
        so that a failed first run does not stand in the way of the next."""
        if not self.created or self.size > 0:
            return False
        for path in (self.path, self.sidecar):
            try:
                path.unlink(missing_ok=True)
            except OSError:
                return False
        return True


def _rows(batch: list[Record], results: list[list[EmbeddedChunk]], with_text: bool) -> bytes:
    lines = []
    for record, chunks in zip(batch, results):
        if with_text:
            rendered = [
                {"start": c.start, "end": c.end, "text": c.text, "embedding": c.embedding}
                for c in chunks
            ]
        else:
            rendered = [{"start": c.start, "end": c.end, "embedding": c.embedding} for c in chunks]
        lines.append(orjson.dumps({"id": record.id, "chunks": rendered}))
    lines.append(b"")
    return b"\n".join(lines)


class WriteFailed(Exception):
    """The writer thread could not write; its error says why."""


class Writer:
    """Serialises and appends batches in a thread of its own, in order, so that the next
    batch's requests are in flight while this one is written. At most one batch waits."""

    def __init__(self, output: Output, with_text: bool, progress: tqdm[Any]) -> None:
        self.output = output
        self.with_text = with_text
        self.progress = progress
        self.records = 0
        self.chunks = 0
        self.error: OSError | None = None
        self._queue: queue.Queue[tuple[list[Record], list[list[EmbeddedChunk]]] | None] = (
            queue.Queue(maxsize=1)
        )
        self._thread = threading.Thread(target=self._run, name="hf-endpoint-writer", daemon=True)
        self._thread.start()

    def put(self, batch: list[Record], results: list[list[EmbeddedChunk]]) -> None:
        if self.error is not None:
            raise WriteFailed
        self._queue.put((batch, results))

    def _run(self) -> None:
        while (item := self._queue.get()) is not None:
            if self.error is not None:
                continue  # drain: nothing more is written after a failed write
            batch, results = item
            try:
                self.output.write(_rows(batch, results, self.with_text))
            except OSError as exc:
                self.error = exc
                continue
            self.records += len(batch)
            self.chunks += sum(len(chunks) for chunks in results)
            self.progress.update(len(batch))

    def close(self) -> None:
        """Write what is queued, then stop."""
        self._queue.put(None)
        self._thread.join()


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
    if args.engine == "ray":
        with _client(args, endpoint) as client:
            _embed_ray(args, client, settings or ChunkingSettings())
        return
    path = Path(args.output)
    if path.exists() and not args.resume:
        raise CLIError(f"{path} exists: give --resume to continue it, or remove it")
    started = time.monotonic()
    total = None
    if args.input != "-":
        with _open_input(args.input) as stream:
            total = sum(1 for line in stream if line.strip())
    skipped = Skipped() if args.skip_empty else None
    with _client(args, endpoint) as client:
        model_id = client.server_limits().model_id
        rate = client.rate_limit.requests_per_minute
        output = Output(path, _provenance(args, endpoint, settings, model_id, rate), total or 0)
        writer = _write_embeddings(args, client, settings, output, total, skipped)
    if not args.quiet:
        also = f"; {skipped}" if skipped is not None and skipped.count else ""
        _say(
            f"{writer.records} records ({writer.chunks} chunks) written to {path} "
            f"in {time.monotonic() - started:.1f} s{also}"
        )
        _say(f"client: {client.stats}")


def _write_embeddings(
    args: argparse.Namespace,
    client: EmbeddingClient,
    settings: ChunkingSettings | None,
    output: Output,
    total: int | None,
    skipped: Skipped | None = None,
) -> Writer:
    """Embed the input into ``output``; whatever stops the run, what was embedded is written,
    and an output this run made stays only if a record reached it.

    ``total``: the input's records when known (not on standard input); ``skipped``: counts
    the empty texts left out (``--skip-empty``)."""
    progress = tqdm(  # disable=None: shown on a terminal only
        total=total,
        unit="record",
        file=sys.stderr,
        disable=True if args.quiet else None,
    )
    writer = Writer(output, args.with_text, progress)
    interrupted = discarded = False
    try:
        # Opened here, so that a Ctrl-C at any moment after the output exists is the one
        # handled below, which removes an output that got no record.
        output.open()
        progress.n = len(output.done)  # the records a resumed run finds written
        progress.refresh()
        with _open_input(args.input) as stream:
            lines = enumerate(stream, 1)
            records = _checked(args.input, _jsonl_records(args.input, lines), skipped, total or 0)
            _embed_records(args, client, settings, output, writer, records)
    except KeyboardInterrupt:
        interrupted = True
        _mute_warnings()
        # Stopping is under way: a second Ctrl-C must not cut it short, here or while the
        # interpreter joins the client's threads at exit (its noise: `Exception ignored in
        # <module 'threading'>`), so Ctrl-C stays ignored until the process ends.
        _ignore_interrupts()
    except WriteFailed:
        pass
    finally:
        previous = _ignore_interrupts()
        try:
            writer.close()
            progress.close()
            output.close()
            discarded = output.discard_if_empty()
        finally:
            if not interrupted:
                _restore_interrupts(previous)
    kept = f"{writer.records} records written to {output.path} are kept"
    if discarded:
        kept = f"no record was written, so {output.path} is not left behind"
    if writer.error is not None:
        raise CLIError(
            f"cannot write {output.path}: {writer.error.strerror or writer.error}; {kept}",
            EXIT_OUTPUT,
        )
    if interrupted:
        resume = "" if discarded else "; --resume continues from there"
        raise CLIError(f"interrupted: {kept}{resume}", EXIT_INTERRUPTED)
    return writer


def _embed_records(
    args: argparse.Namespace,
    client: EmbeddingClient,
    settings: ChunkingSettings | None,
    output: Output,
    writer: Writer,
    records: Iterable[Record],
) -> None:
    """Embed records in batches of ``--batch-records``; the writer writes them behind.

    A bad input line stops the run after the records read before it are written.
    """
    pending: list[Record] = []

    queries = args.query_prefix is not None

    def send() -> None:
        if pending:
            results = client.embed_chunks([r.text for r in pending], settings, query=queries)
            output.check_dimensions(results)
            writer.put(list(pending), results)
            pending.clear()

    try:
        for record in records:
            if record.id in output.done:
                continue
            if lone_surrogate(record.text) is not None:
                raise CLIError(
                    f"{args.input}:{record.line}: id {json.dumps(record.id)}: the text holds a "
                    "lone surrogate and cannot be sent as UTF-8"
                )
            pending.append(record)
            if len(pending) >= args.batch_records:
                send()
    except CLIError:
        send()
        raise
    send()


def _ignore_interrupts() -> Any:
    """While the output is closed, a second Ctrl-C must not cut it short."""
    if threading.current_thread() is not threading.main_thread():
        return None
    return signal.signal(signal.SIGINT, signal.SIG_IGN)


def _restore_interrupts(previous: Any) -> None:
    if previous is not None:
        signal.signal(signal.SIGINT, previous)


def _say(line: str) -> None:
    print(f"hf-endpoint: {line}", file=sys.stderr, flush=True)


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
    # Only `serve` imports the server (Starlette, numpy, a model).
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
        help="ray: Ray Data workers, Parquet out (one row per chunk; needs the ray extra)",
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
        _say(f"error: {exc}" if exc.status != EXIT_INTERRUPTED else str(exc))
        return exc.status
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

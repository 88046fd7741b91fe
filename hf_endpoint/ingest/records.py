"""Reading records: JSONL lines or whole texts, their ids, and the checks every engine makes.

A record is a JSON object with a string ``"text"`` and an optional ``"id"`` (a
string or an integer); without one, its id is ``FILE:LINE``. Ids are unique
within a run: a second record with an earlier one's id stops the run, naming
both lines. ``hf-endpoint chunk`` and both engines of ``hf-endpoint embed``
read their input here, so they give the same ids and refuse the same records
with the same message.
"""

from __future__ import annotations

import hashlib
import json
import sys
from array import array
from collections.abc import Iterable, Iterator, Mapping
from dataclasses import dataclass
from typing import IO, Any

from ..client._base import lone_surrogate
from .errors import IngestError

__all__ = [
    "IdIndex",
    "Record",
    "Skipped",
    "checked",
    "count_records",
    "jsonl_records",
    "open_input",
    "read_records",
    "to_embed",
]


@dataclass(frozen=True)
class Record:
    """One input document: the line it starts on, its id and its text.

    ``fields``: the record's other keys, kept only when asked (to carry them into
    a Parquet output)."""

    line: int
    id: str | int
    text: str
    fields: Mapping[str, Any] | None = None


def open_input(path: str) -> IO[str]:
    """The input ``path`` (``-``: standard input); bytes that are not UTF-8 read as surrogates."""
    if path == "-":
        return sys.stdin
    try:
        return open(path, encoding="utf-8", errors="surrogateescape")
    except OSError as exc:
        raise IngestError(f"cannot read {path}: {exc.strerror}") from None


def count_records(path: str) -> int | None:
    """How many records ``path`` holds (its non-blank lines); None for standard input."""
    if path == "-":
        return None
    with open_input(path) as stream:
        return sum(1 for line in stream if line.strip())


def _parse_record(path: str, number: int, line: str, keep_fields: bool) -> Record:
    try:
        record = json.loads(line)
    except json.JSONDecodeError as exc:
        raise IngestError(f"{path}:{number}: not valid JSON ({exc.msg})") from None
    if not isinstance(record, dict) or not isinstance(record.get("text"), str):
        raise IngestError(f'{path}:{number}: a record must be an object with a string "text"')
    doc_id = record.get("id", f"{path}:{number}")
    if isinstance(doc_id, bool) or not isinstance(doc_id, (str, int)):
        raise IngestError(f'{path}:{number}: "id" must be a string or an integer, not {doc_id!r}')
    if isinstance(doc_id, int) and not -(2**63) <= doc_id < 2**64:
        raise IngestError(f'{path}:{number}: "id" {doc_id} is not an integer of 64 bits')
    if isinstance(doc_id, str) and lone_surrogate(doc_id) is not None:
        raise IngestError(
            f'{path}:{number}: "id" holds a lone surrogate, which UTF-8 output cannot carry'
        )
    fields = None
    if keep_fields:
        fields = {k: v for k, v in record.items() if k not in ("id", "text")}
    return Record(number, doc_id, record["text"], fields)


def jsonl_records(
    path: str, lines: Iterable[tuple[int, str]], keep_fields: bool = False
) -> Iterator[Record]:
    """The records of numbered JSONL ``lines`` read from ``path``; blank lines are skipped."""
    for number, line in lines:
        if line.strip():
            yield _parse_record(path, number, line, keep_fields)


def _looks_like_a_record(line: str) -> bool:
    try:
        record = json.loads(line)
    except json.JSONDecodeError:
        return False
    return isinstance(record, dict) and isinstance(record.get("text"), str)


def read_records(path: str, stream: IO[str], form: str) -> Iterator[Record]:
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
        yield from jsonl_records(path, lines)
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
            raise IngestError(
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


def checked(
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
            raise IngestError(
                f"{path}:{record.line}: id {json.dumps(record.id, ensure_ascii=False)}: the text "
                "is empty, which an endpoint refuses: give it some text, remove the record, "
                "or pass --skip-empty to leave such records out"
            )
        yield record


def to_embed(path: str, records: Iterable[Record], done: IdIndex) -> Iterator[Record]:
    """The checked records still to embed: those not ``done`` (already in the output), each
    refused when its text cannot be sent as UTF-8."""
    for record in records:
        if record.id in done:
            continue
        if lone_surrogate(record.text) is not None:
            raise IngestError(
                f"{path}:{record.line}: id {json.dumps(record.id)}: the text holds a "
                "lone surrogate and cannot be sent as UTF-8"
            )
        yield record

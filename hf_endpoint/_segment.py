"""ICU word and sentence segmentation, as Elasticsearch's chunkers see it.

ICU reports UTF-16 offsets; everything returned here is in Python ``str``
indices (code points). Elasticsearch runs ICU over Java strings, so lone
surrogates are legal input there; Python's ICU binding refuses them, so they
are replaced by U+FFFD (one code point and one UTF-16 unit, the same break
class) before segmenting, which keeps every offset unchanged.

Speed: asking ICU for the rule status of every boundary costs one Python call
per boundary, which dominates on long texts. A segment's status follows from
its first character for all but a few character classes, so the word flags
are computed from a per-character class table with C-level operations
(``bytes.translate``, ``operator.itemgetter``, ``itertools.compress``), and
ICU is asked only where the first character leaves it open (``_`` alone is
not a word, ``__`` is). ``tests/test_segment.py`` checks the table against
ICU for every code point.
"""

from __future__ import annotations

import re
import threading
from itertools import compress
from operator import itemgetter

import icu

__all__ = ["WordSegmentation", "sentence_ends", "word_ends", "word_segmentation", "word_status"]

# Segments that start with one of these are words whatever follows.
WORD_START_PATTERN = (
    r"[[\p{Word_Break=ALetter}\p{Word_Break=Hebrew_Letter}\p{Word_Break=Numeric}"
    r"\p{Word_Break=Katakana}[:Hiragana:][:Han:]\p{Ideographic}[:LineBreak=Complex_Context:]]"
    r"-[\p{Word_Break=Extend}\p{Word_Break=Format}\p{Word_Break=ZWJ}]]"
)
# Segments that start with one of these may or may not be words: ICU is asked.
ASK_PATTERN = r"[\p{Word_Break=ExtendNumLet}\p{Word_Break=Extend}\p{Word_Break=Format}\p{Word_Break=ZWJ}]"

NOT_WORD, WORD, ASK = 0, 1, 2

_WORD_START = icu.UnicodeSet(WORD_START_PATTERN)
_ASK = icu.UnicodeSet(ASK_PATTERN)


def char_class(ch: str) -> int:
    """``WORD``, ``NOT_WORD`` or ``ASK`` for a segment that starts with ``ch``."""
    if ch in _ASK:
        return ASK
    return WORD if ch in _WORD_START else NOT_WORD


class _ClassTable(dict[int, str]):
    """``str.translate`` table: code point -> one-byte class, filled on first sight."""

    def __missing__(self, code: int) -> str:
        value = chr(char_class(chr(code)))
        self[code] = value
        return value


_CLASS_TABLE = _ClassTable()
_ASCII_CLASSES = bytes(char_class(chr(c)) for c in range(128)) + bytes(128)
_NON_ASCII_RUN = re.compile(r"[^\x00-\x7f]+")
_LONE_SURROGATE = re.compile(r"[\ud800-\udfff]")
_ASTRAL = re.compile(r"[\U00010000-\U0010ffff]")

_local = threading.local()


def _iterators() -> tuple[icu.BreakIterator, icu.BreakIterator]:
    """Per-thread word and sentence iterators (ICU iterators are not thread-safe)."""
    its = getattr(_local, "iterators", None)
    if its is None:
        root = icu.Locale.getRoot()
        its = (icu.BreakIterator.createWordInstance(root), icu.BreakIterator.createSentenceInstance(root))
        _local.iterators = its
    return its


def _for_icu(text: str) -> str:
    if text.isascii() or not _LONE_SURROGATE.search(text):
        return text
    return _LONE_SURROGATE.sub("\ufffd", text)


def _to_code_points(units: list[int], text: str) -> list[int]:
    """Map sorted UTF-16 offsets to code point offsets."""
    if text.isascii():
        return units
    astral = [m.start() for m in _ASTRAL.finditer(text)]
    if not astral:
        return units
    # Astral character j (code point index p) ends at UTF-16 offset p + j + 2.
    astral_ends = [p + j + 2 for j, p in enumerate(astral)]
    out = []
    passed = 0
    n = len(astral_ends)
    for u in units:
        while passed < n and astral_ends[passed] <= u:
            passed += 1
        out.append(u - passed)
    return out


def _char_classes(text: str) -> bytes | bytearray:
    """One class byte per code point of ``text``."""
    if text.isascii():
        return text.encode("ascii").translate(_ASCII_CLASSES)
    # 'replace' keeps one byte per code point, so indices stay aligned.
    classes = bytearray(text.encode("ascii", "replace").translate(_ASCII_CLASSES))
    for m in _NON_ASCII_RUN.finditer(text):
        classes[m.start() : m.end()] = m.group().translate(_CLASS_TABLE).encode("latin-1")
    return classes


class WordSegmentation:
    """The word segments of one text.

    ``boundaries[k]`` (code point offsets, ``boundaries[0] == 0``, the last is
    ``len(text)``) and ``is_word[k]``: 1 when the segment ending at
    ``boundaries[k]`` has an ICU rule status other than ``WORD_NONE``.
    """

    __slots__ = ("boundaries", "is_word")

    def __init__(self, boundaries: list[int], is_word: bytes) -> None:
        self.boundaries = boundaries
        self.is_word = is_word

    def word_ends(self) -> list[int]:
        return list(compress(self.boundaries, self.is_word))


def word_segmentation(text: str) -> WordSegmentation:
    """Segment ``text`` into ICU words (root locale)."""
    if not text:
        return WordSegmentation([0], b"\x00")
    word_it, _ = _iterators()
    word_it.setText(_for_icu(text))
    units: list[int] = list(word_it)
    ends = _to_code_points(units, text)
    classes = _char_classes(text)
    if len(ends) == 1:
        flags: bytes | bytearray = bytes((classes[0],))
    else:
        flags = bytes(itemgetter(0, *ends[:-1])(classes))
    if ASK in flags:
        flags = bytearray(flags)
        k = flags.find(ASK)
        while k != -1:
            word_it.following(units[k - 1] if k else 0)
            flags[k] = WORD if word_it.getRuleStatus() != 0 else NOT_WORD
            k = flags.find(ASK, k + 1)
    return WordSegmentation([0, *ends], b"\x00" + bytes(flags))


def word_ends(text: str) -> list[int]:
    """Offsets where the words of ``text`` end, in order."""
    return word_segmentation(text).word_ends()


def word_status(text: str) -> list[tuple[int, int]]:
    """``(end, rule_status)`` for every word-iterator segment, asked of ICU one by one.

    The slow reference the fast path is tested against.
    """
    word_it, _ = _iterators()
    word_it.setText(_for_icu(text))
    units = []
    statuses = []
    for unit in word_it:
        units.append(unit)
        statuses.append(word_it.getRuleStatus())
    return list(zip(_to_code_points(units, text), statuses))


def sentence_ends(text: str) -> list[int]:
    """Offsets where the ICU sentences of ``text`` end (root locale), in order."""
    if not text:
        return []
    _, sentence_it = _iterators()
    sentence_it.setText(_for_icu(text))
    return _to_code_points(list(sentence_it), text)

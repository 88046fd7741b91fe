"""ICU word and sentence segmentation, as Elasticsearch's chunkers see it.

ICU reports UTF-16 offsets; everything returned here is in Python ``str``
indices (code points). Lone surrogates reach ICU as they would from a Java
string (one UTF-16 unit each), so they too keep offsets exact.

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
from bisect import bisect_right
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
ASK_PATTERN = (
    r"[\p{Word_Break=ExtendNumLet}\p{Word_Break=Extend}\p{Word_Break=Format}\p{Word_Break=ZWJ}"
    r"[[:Han:]-\p{Ideographic}]]"
)
# Han characters that are not ideographs (radicals, iteration marks) take part
# in ICU's dictionary runs unpredictably, and U+16FE4 (an Extend character)
# makes the segment it joins a word: the segment holding one, and its
# neighbours, are asked.
ANYWHERE_PATTERN = r"[[[:Han:]-\p{Ideographic}]\U00016FE4]"

NOT_WORD, WORD, ASK = 0, 1, 2

_WORD_START = icu.UnicodeSet(WORD_START_PATTERN)
_ASK = icu.UnicodeSet(ASK_PATTERN)


_ANYWHERE_RANGES = list(icu.UnicodeSet(ANYWHERE_PATTERN).ranges())
_ASK_ANYWHERE = re.compile("[" + "".join(f"{a}-{b}" for a, b in _ANYWHERE_RANGES) + "]")
# One range spanning them all: a quick test before the exact search.
_MAYBE_ODD = re.compile(f"[{_ANYWHERE_RANGES[0][0]}-{_ANYWHERE_RANGES[-1][1]}]")


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


def _boundaries(iterator: icu.BreakIterator, text: str) -> tuple[list[int], list[int]]:
    """Boundaries after 0 as ``(utf16_offsets, code_point_offsets)``."""
    iterator.setText(text)
    units: list[int] = list(iterator)
    if units[-1] == len(text):
        return units, units  # no character outside the BMP: the offsets agree
    # Astral character j (at code point index p) ends at UTF-16 offset p + j + 2.
    astral_ends = [m.start() + j + 2 for j, m in enumerate(_ASTRAL.finditer(text))]
    points = []
    passed = 0
    n = len(astral_ends)
    for u in units:
        while passed < n and astral_ends[passed] <= u:
            passed += 1
        points.append(u - passed)
    return units, points


def _classify(firsts: str) -> bytes | bytearray:
    """One class byte per character of ``firsts``."""
    if firsts.isascii():
        return firsts.encode("ascii").translate(_ASCII_CLASSES)
    # 'replace' keeps one byte per character, so indices stay aligned.
    classes = bytearray(firsts.encode("ascii", "replace").translate(_ASCII_CLASSES))
    for m in _NON_ASCII_RUN.finditer(firsts):
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
    units, ends = _boundaries(word_it, text)
    # The first character of every segment; itemgetter and join run in C.
    flags = _classify("".join(itemgetter(0, *ends[:-1])(text)))
    if not text.isascii() and _MAYBE_ODD.search(text):
        flags = bytearray(flags)
        last = len(flags) - 1
        for m in _ASK_ANYWHERE.finditer(text):
            k = bisect_right(ends, m.start())
            for j in range(max(k - 1, 0), min(k + 1, last) + 1):
                flags[j] = ASK
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
    if not text:
        return []
    word_it, _ = _iterators()
    _, ends = _boundaries(word_it, text)
    word_it.first()
    statuses = []
    for _ in word_it:
        statuses.append(word_it.getRuleStatus())
    return list(zip(ends, statuses))


def sentence_ends(text: str) -> list[int]:
    """Offsets where the ICU sentences of ``text`` end (root locale), in order."""
    if not text:
        return []
    _, sentence_it = _iterators()
    return _boundaries(sentence_it, text)[1]

"""ICU word and sentence segmentation, as Elasticsearch's chunkers see it.

ICU reports UTF-16 offsets; everything returned here is in Python ``str``
indices (code points). Lone surrogates reach ICU as they would from a Java
string (one UTF-16 unit each), so they too keep offsets exact.

Speed: asking ICU for the rule status of every boundary costs one Python call
per boundary, which dominates on long texts. A segment's status follows from
its first character except at a few spots the word-break rules name (listed
at ``ODD_PATTERN``), so the word flags are looked up in a table of every
code point's class (numpy: one indexing of the text's code points by the
segments' starts), and ICU is asked only where the first character
leaves it open (``_`` alone is not a word, ``__`` is) and around the spots
(``ten\u200d🙂`` is not a word). ``tests/test_segment.py`` checks the table
against ICU for every code point, alone and next to zero width joiners.
"""

from __future__ import annotations

import re
import sys
import threading
from bisect import bisect_left, bisect_right
from functools import cache
from typing import TYPE_CHECKING, NamedTuple

import icu

if TYPE_CHECKING:
    import numpy as np
    import numpy.typing as npt

__all__ = [
    "NonAscii",
    "WordBoundaries",
    "WordMarks",
    "WordSegmentation",
    "icu_sentence_ends",
    "marked_words",
    "non_ascii_runs",
    "word_ends",
    "word_segmentation",
    "word_status",
]

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
# ICU gives a segment the status of the last rule in its chain (the largest,
# where several end there), and every segment of a dictionary run (CJK,
# Hangul, Thai, ...) the status of the run as a whole. The first character
# decides the status unless a later rule in the chain can change it, which
# happens at a few spots, and each changes the segments around it:
# * Han characters that are not ideographs (radicals, iteration marks such as
#   々) and U+16FE4, whose status depends on the run they are in;
# * an Extend or Format character that does not follow a letter, digit or
#   another such character (after _, after a quote, after a Hangul syllable,
#   after a space, ...), which may start a segment or join it to the next;
# * a ZERO WIDTH JOINER before an Extended_Pictographic character: rule WB3c
#   (``$ZWJ $Extended_Pict``, no status) chains onto whatever the ZWJ ended,
#   so ``ten\u200d🙂`` and ``中\u200d🙂`` are not words, nor is the rest of a
#   dictionary run that ends that way. It is the only rule without a status
#   that can follow a word's rule in a chain: every other such rule starts
#   with a character no word rule ends with (CR, a space, a regional
#   indicator), or ends with a word character whose own rule has a status.
# For each spot, every segment of the run around it, and one neighbour on each
# side, is asked. The run is the dictionary characters and all that ICU's rules
# can chain onto them without a break: letters, digits, ``_`` and the characters
# that join letters or digits (``กแดภพ0\u200d🆎`` and ``㐀一ァ_\u200c`` are one
# chain each, and no segment of either is a word).
ODD_PATTERN = r"[[[:Han:]-\p{Ideographic}]\U00016FE4]"
JOINER_PATTERN = r"[\p{Word_Break=ZWJ}]"
PICTOGRAPHIC_PATTERN = r"[\p{Extended_Pictographic}]"
EXTEND_FORMAT_PATTERN = r"[\p{Word_Break=Extend}\p{Word_Break=Format}\p{Word_Break=ZWJ}]"
PLAIN_BEFORE_EXTEND_PATTERN = (
    r"[[\p{Word_Break=ALetter}\p{Word_Break=Hebrew_Letter}\p{Word_Break=Numeric}"
    r"\p{Word_Break=Katakana}[:Hiragana:]\p{Ideographic}[:LineBreak=Complex_Context:]"
    r"\p{Word_Break=Extend}\p{Word_Break=Format}\p{Word_Break=ZWJ}]-[\uac00-\ud7a3]]"
)
DICTIONARY_RUN_PATTERN = (
    r"[[:Han:][:Hiragana:][:Katakana:]\p{Word_Break=Katakana}[\uac00-\ud7a3]"
    r"[:LineBreak=Complex_Context:]\p{Word_Break=Extend}\p{Word_Break=Format}\p{Word_Break=ZWJ}"
    r"\p{Word_Break=ALetter}\p{Word_Break=Hebrew_Letter}\p{Word_Break=Numeric}"
    r"\p{Word_Break=ExtendNumLet}\p{Word_Break=MidLetter}\p{Word_Break=MidNum}"
    r"\p{Word_Break=MidNumLet}\p{Word_Break=Single_Quote}\p{Word_Break=Double_Quote}]"
)

NOT_WORD, WORD, ASK = 0, 1, 2

_WORD_START = icu.UnicodeSet(WORD_START_PATTERN)
_ASK = icu.UnicodeSet(ASK_PATTERN)


def _regex_class(pattern: str) -> str:
    return "[" + "".join(f"{a}-{b}" for a, b in icu.UnicodeSet(pattern).ranges()) + "]"


_SPOTS = re.compile(
    f"{_regex_class(ODD_PATTERN)}"
    f"|(?<!{_regex_class(PLAIN_BEFORE_EXTEND_PATTERN)}){_regex_class(EXTEND_FORMAT_PATTERN)}"
    f"|{_regex_class(JOINER_PATTERN)}(?={_regex_class(PICTOGRAPHIC_PATTERN)})"
)
# Any character that can make a spot: one quick scan in ICU before the exact search.
_MAYBE_SPOT = icu.UnicodeSet(f"[{ODD_PATTERN}{EXTEND_FORMAT_PATTERN}]")
_MAYBE_SPOT.freeze()
_NOT_CONTAINED = icu.USetSpanCondition.SPAN_NOT_CONTAINED
_DICTIONARY_RUN = re.compile(_regex_class(DICTIONARY_RUN_PATTERN) + "+")


_ASTRAL = re.compile(r"[\U00010000-\U0010ffff]")

_local = threading.local()


def _iterators() -> tuple[icu.BreakIterator, icu.BreakIterator]:
    """Per-thread word and sentence iterators (ICU iterators are not thread-safe)."""
    its = getattr(_local, "iterators", None)
    if its is None:
        root = icu.Locale.getRoot()
        its = (
            icu.BreakIterator.createWordInstance(root),
            icu.BreakIterator.createSentenceInstance(root),
        )
        _local.iterators = its
    return its


def _astral_ends(text: str) -> list[int]:
    """The UTF-16 offsets where the characters of ``text`` beyond the BMP end, in order."""
    # Astral character j (at code point index p) ends at UTF-16 offset p + j + 2.
    return [m.start() + j + 2 for j, m in enumerate(_ASTRAL.finditer(text))]


def _boundaries(iterator: icu.BreakIterator, text: str) -> tuple[list[int], list[int]]:
    """Boundaries after 0 as ``(utf16_offsets, code_point_offsets)``."""
    iterator.setText(text)
    return _points(list(iterator), text)


def _points(units: list[int], text: str) -> tuple[list[int], list[int]]:
    """UTF-16 boundaries ``units`` of ``text`` as ``(units, code_point_offsets)``."""
    if units[-1] == len(text):
        return units, units  # no character outside the BMP: the offsets agree
    astral_ends = _astral_ends(text)
    points = []
    passed = 0
    n = len(astral_ends)
    for u in units:
        while passed < n and astral_ends[passed] <= u:
            passed += 1
        points.append(u - passed)
    return units, points


@cache
def _segment_classes() -> npt.NDArray[np.uint8]:
    """``WORD``, ``NOT_WORD`` or ``ASK`` for a segment that starts with each code point,
    indexed by code point (made on first use): ASK where ``_ASK`` holds it, else
    WORD where ``_WORD_START`` does."""
    import numpy as np

    classes = np.full(sys.maxunicode + 1, NOT_WORD, np.uint8)
    for chars, value in ((_WORD_START, WORD), (_ASK, ASK)):
        for first, last in chars.ranges():
            classes[ord(first) : ord(last) + 1] = value
    classes.flags.writeable = False  # shared by every thread
    return classes


def _word_boundaries(
    iterator: icu.BreakIterator, text: str
) -> tuple[npt.NDArray[np.int64], npt.NDArray[np.int64]]:
    """Word boundaries, 0 first, as ``(utf16_offsets, code_point_offsets)``."""
    import numpy as np

    iterator.setText(text)
    units = np.concatenate(([0], np.fromiter(iterator, np.int64)))
    if units[-1] == len(text):
        return units, units
    astral_ends = _astral_ends(text)
    return units, units - np.searchsorted(np.array(astral_ends, np.int64), units, "right")


class WordSegmentation:
    """The word segments of one text.

    ``array[k]`` (numpy; code point offsets, ``array[0] == 0``, the last is
    ``len(text)``) and ``is_word[k]``: 1 when the segment ending at
    ``array[k]`` has an ICU rule status other than ``WORD_NONE``;
    ``boundaries``: ``array`` as a list, made on first use.
    """

    __slots__ = ("_boundaries", "array", "is_word")

    def __init__(self, array: npt.NDArray[np.int64], is_word: bytes) -> None:
        self.array = array
        self.is_word = is_word
        self._boundaries: list[int] | None = None

    @property
    def boundaries(self) -> list[int]:
        if self._boundaries is None:
            self._boundaries = self.array.tolist()
        return self._boundaries

    def word_end_array(self) -> npt.NDArray[np.int64]:
        import numpy as np

        return self.array[np.frombuffer(self.is_word, np.bool_)]

    def word_ends(self) -> list[int]:
        ends: list[int] = self.word_end_array().tolist()
        return ends


def _ask_runs(flags: bytearray, boundaries: list[int], text: str, spots: list[int]) -> None:
    """Mark ASK every segment of the dictionary run around each spot, and its neighbours.

    ``flags[k]`` belongs to the segment that ends at ``boundaries[k]`` (``k >= 1``).

    Spots come in text order, so each flag is marked once however many spots
    share a run: linear in the text, not in spots times run length.
    """
    runs = [m.span() for m in _DICTIONARY_RUN.finditer(text)]
    run_starts = [start for start, _ in runs]
    last = len(flags) - 1
    marked = -1  # flags up to here are ASK already
    for spot in spots:
        i = bisect_right(run_starts, spot) - 1
        low, high = runs[i] if i >= 0 and runs[i][1] > spot else (spot, spot + 1)
        first = max(bisect_right(boundaries, low) - 1, 1, marked + 1)
        final = min(bisect_left(boundaries, high) + 1, last)
        if first <= final:
            flags[first : final + 1] = bytes((ASK,)) * (final + 1 - first)
            marked = final


def word_segmentation(text: str) -> WordSegmentation:
    """Segment ``text`` into ICU words (root locale)."""
    import numpy as np

    if not text:
        return WordSegmentation(np.zeros(1, np.int64), b"\x00")

    word_it, _ = _iterators()
    units, bounds = _word_boundaries(word_it, text)
    # The class of the first character of every segment: one table lookup in numpy.
    code_points = np.frombuffer(text.encode("utf-32-le", "surrogatepass"), "<u4")
    flags = bytearray(1) + _segment_classes()[code_points[bounds[:-1]]].tobytes()
    if not text.isascii() and _MAYBE_SPOT.span(text, _NOT_CONTAINED) < units[-1]:
        spots = [m.start() for m in _SPOTS.finditer(text)]
        if spots:
            _ask_runs(flags, bounds.tolist(), text, spots)
    k = flags.find(ASK)
    while k != -1:
        word_it.following(int(units[k - 1]))
        flags[k] = WORD if word_it.getRuleStatus() != 0 else NOT_WORD
        k = flags.find(ASK, k + 1)
    return WordSegmentation(bounds, bytes(flags))


# ASCII text: the word-break rules (UAX #29 as ICU's root rules apply them) reduce
# to "a run of [A-Za-z0-9_] is a word", where a run continues through one of .':
# between two letters (WB6/7) or one of .,;' between two digits (WB11/12), and a
# lone _ is no word (ExtendNumLet alone has status WORD_NONE). That is done with bytes.translate and bytes.replace, in C, with no
# per-boundary Python. tests/test_segment.py checks it against ICU on every
# sequence of five ASCII break classes and on random ASCII text.
_LETTERS = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz"
# Letter, Number, Underscore, MidNumLet and Single_Quote, MidNum, MidLetter (K); and,
# for the segments that are not words, space, CR, LF and other (o).
_ASCII_CLASS_NAMES = bytes.maketrans(
    _LETTERS + b"0123456789_.',;: \r\n", b"L" * 52 + b"N" * 10 + b"UMMCCKsrn"
).translate(bytes(b if b in b"LNUMCKsrn" else ord("o") for b in range(256)))
_ASCII_JOINS = ((b"LML", b"LLL"), (b"LKL", b"LLL"), (b"NMN", b"NNN"), (b"NCN", b"NNN"))
_LONE_UNDERSCORE = re.compile(rb"(?<![LNU])U(?![LNU])")
_ASCII_MARKS = bytes.maketrans(b"LNUMCKsrno", b"www" + b" " * 7)


def ascii_word_classes(raw: bytes) -> bytes:
    """One class byte per byte of ASCII ``raw``: ``L``, ``N`` or ``U`` inside a word, else
    ``s`` (space), ``r`` (CR), ``n`` (LF) or another (``M``, ``C``, ``K``, ``o``)."""
    classes = raw.translate(_ASCII_CLASS_NAMES)
    for pattern, joined in _ASCII_JOINS:
        if pattern in classes:
            # A joining character's neighbours are letters or digits, never another
            # joiner, so two passes catch the ones the first pass stepped over.
            classes = classes.replace(pattern, joined).replace(pattern, joined)
    if b"U" in classes:
        classes = _LONE_UNDERSCORE.sub(b"o", classes)
    return classes


def _is_cut_after_space(text: str, i: int) -> bool:
    """ICU always breaks at ``i``, and no rule looks across it."""
    return text[i - 1] == " " and text[i] != " " and text[i].isascii()


# The first cut at or after a position: after a line feed, or after a space
# that an ASCII character other than a space follows.
_NEXT_CUT = re.compile(r"\n| (?=[\x00-\x1f\x21-\x7f])")


class NonAscii(NamedTuple):
    """A text encoded with ``?`` for every character that is not ASCII, and their spans."""

    replaced: bytes
    runs: list[tuple[int, int]]


def non_ascii_runs(text: str, replaced: bytes) -> list[tuple[int, int]]:
    """Spans of consecutive non-ASCII characters; ``replaced`` is ``text`` encoded with ``?``.

    ``bytes.find`` (memchr) jumps over ASCII several times faster than a regex scan.
    """
    runs: list[tuple[int, int]] = []
    i = replaced.find(b"?")
    while i != -1:
        if text[i] != "?":
            if runs and runs[-1][1] == i:
                runs[-1] = (runs[-1][0], i + 1)
            else:
                runs.append((i, i + 1))
        i = replaced.find(b"?", i + 1)
    return runs


def _islands(text: str, runs: list[tuple[int, int]]) -> list[tuple[int, int]]:
    """Spans of ``text`` around its non-ASCII ``runs`` that ICU must segment.

    Outside them the ASCII rules apply. Every span starts and ends at a cut:
    the start or end of the text, right after a line feed (WB3a), or between
    a space and an ASCII character other than a space (no rule joins them, and
    no rule's context reaches across a space). Each search stops at the cut
    it looks for and never goes back past the previous span, so the whole
    takes time linear in the text, however long its lines.
    """
    islands: list[tuple[int, int]] = []
    n = len(text)
    for start, end in runs:
        if islands and end <= islands[-1][1]:
            continue  # inside the previous span already
        if islands and start < islands[-1][1]:
            start = islands.pop()[0]
        else:
            # The previous span ends at a cut, so no search needs to look before it.
            low = islands[-1][1] if islands else 0
            floor = max(text.rfind("\n", low, start) + 1, low)
            p = text.rfind(" ", floor, max(start - 1, floor))
            while p != -1 and not _is_cut_after_space(text, p + 1):
                p = text.rfind(" ", floor, p)
            start = p + 1 if p != -1 else floor
        cut = _NEXT_CUT.search(text, end)
        islands.append((start, n if cut is None else cut.end()))
    return islands


_MARKED_WORD = re.compile(rb"w++|e")

# Joins the spans ICU segments into one text: a paragraph separator breaks on
# both sides whatever stands next to it (WB3a, WB3b) and is no word.
_SEPARATOR = "\u2029"


class WordMarks:
    """``word_marks`` of a text, with the spans that ICU segmented (sorted, disjoint).

    ``classes``: ``ascii_word_classes`` of the text with ``?`` for every
    character that is not ASCII; they hold only outside the islands.
    ``non_ascii``: the text encoded with ``?`` for every character that is not
    ASCII, and the spans of those characters; ``None`` for ASCII text.
    """

    __slots__ = ("classes", "islands", "marks", "non_ascii")

    def __init__(
        self,
        marks: bytes,
        classes: bytes,
        islands: list[tuple[int, int]],
        non_ascii: NonAscii | None = None,
    ) -> None:
        self.marks = marks
        self.classes = classes
        self.islands = islands
        self.non_ascii = non_ascii


def word_marks(text: str) -> bytes | None:
    """One byte per code point of ``text`` that marks where its words are.

    Outside the spans ICU segments, a word is a run of ``w``; inside them,
    where words may touch (日本語|の), each word is one ``e`` on its last
    character. Everything else is a space, and every span begins and ends
    with a space or a line feed, so a ``w`` run never touches an ``e``.
    ``None`` when most of the text needs ICU anyway (then use ``word_ends``).
    ASCII stretches take the ASCII rules, done in C with no per-boundary
    Python; only the spans around non-ASCII characters go to ICU, in one pass.
    tests/test_segment.py checks the ASCII rules against ICU on every sequence
    of five ASCII break classes, and the whole against ICU on random text.
    """
    found = marked_words(text)
    return None if found is None else found.marks


def marked_words(text: str) -> WordMarks | None:
    """``word_marks`` of ``text`` and the spans ICU segmented, or ``None``."""
    if text.isascii():
        classes = ascii_word_classes(text.encode("ascii"))
        return WordMarks(classes.translate(_ASCII_MARKS), classes, [])
    if len(text.encode("utf-8", "surrogatepass")) > len(text) * 5 // 4:
        return None  # mostly not ASCII: not worth splitting
    # "replace" keeps one byte per code point; the islands are redone below.
    replaced = text.encode("ascii", "replace")
    runs = non_ascii_runs(text, replaced)
    islands = _islands(text, runs)
    if sum(end - start for start, end in islands) * 2 > len(text):
        return None
    classes = ascii_word_classes(replaced)
    marks = bytearray(classes.translate(_ASCII_MARKS))
    joined = _SEPARATOR.join(text[start:end] for start, end in islands)
    shifts = []  # (offset in joined, offset in text) where each island starts
    position = 0
    for start, end in islands:
        shifts.append((position, start))
        marks[start:end] = b" " * (end - start)
        position += end - start + 1
    island_starts = [joined_start for joined_start, _ in shifts]
    for word_end in word_segmentation(joined).word_ends():
        joined_start, start = shifts[bisect_right(island_starts, word_end - 1) - 1]
        marks[start + word_end - 1 - joined_start] = ord("e")
    return WordMarks(bytes(marks), classes, islands, NonAscii(replaced, runs))


class WordBoundaries:
    """ICU's word boundaries of one text next to given offsets, asked one at a time.

    Offsets are code points. The iterator is made on first use and is this
    object's own: segmenting another text meanwhile does not disturb it.
    """

    __slots__ = ("_astral", "_astral_ends", "_iterator", "text")

    def __init__(self, text: str) -> None:
        self.text = text
        self._iterator: icu.BreakIterator | None = None
        self._astral: list[int] = []
        self._astral_ends: list[int] = []

    def _ready(self) -> icu.BreakIterator:
        if self._iterator is None:
            self._iterator = icu.BreakIterator.createWordInstance(icu.Locale.getRoot())
            self._iterator.setText(self.text)
            self._astral = [m.start() for m in _ASTRAL.finditer(self.text)]
            # Astral character j (at code point index p) ends at UTF-16 offset p + j + 2.
            self._astral_ends = [p + j + 2 for j, p in enumerate(self._astral)]
        return self._iterator

    def _unit(self, point: int) -> int:
        return point + bisect_left(self._astral, point)

    def _point(self, unit: int) -> int:
        return unit - bisect_right(self._astral_ends, unit)

    def preceding(self, point: int) -> int:
        """The last boundary before ``point``, 0 if none."""
        unit = self._ready().preceding(self._unit(point))
        return 0 if unit == icu.BreakIterator.DONE else self._point(unit)

    def following(self, point: int) -> int:
        """The first boundary after ``point``, the text's end if none."""
        unit = self._ready().following(self._unit(point))
        return len(self.text) if unit == icu.BreakIterator.DONE else self._point(unit)


def word_ends(text: str) -> list[int]:
    """Offsets where the words of ``text`` end, in order."""
    marks = word_marks(text)
    if marks is None:
        return word_segmentation(text).word_ends()
    return [m.end() for m in _MARKED_WORD.finditer(marks)]


def word_status(text: str) -> list[tuple[int, int]]:
    """``(end, rule_status)`` for every word-iterator segment, asked of ICU one by one.

    The slow reference the fast path is tested against.
    """
    if not text:
        return []
    word_it, _ = _iterators()
    word_it.setText(text)
    units, statuses = [], []
    # One pass: ICU 77 can find other boundaries when asked again after first() (dictionary
    # text with joiners), so each status is read at the boundary it belongs to.
    for unit in word_it:
        units.append(unit)
        statuses.append(word_it.getRuleStatus())
    return list(zip(_points(units, text)[1], statuses, strict=True))


def icu_sentence_ends(text: str) -> list[int]:
    """Offsets where the ICU sentences of ``text`` end (root locale), in order, from ICU."""
    if not text:
        return []
    _, sentence_it = _iterators()
    return _boundaries(sentence_it, text)[1]

"""Elasticsearch's ``word``, ``sentence`` and ``recursive`` chunking strategies, offset-exact.

Chunks are exact substrings: ``text[c.start:c.end] == c.text``. Offsets are
Python ``str`` indices (Elasticsearch reports UTF-16 offsets; the chunks are
the same).

>>> [c.text for c in chunk_text("Won't you chunk", {"strategy": "word", "max_chunk_size": 10, "overlap": 5})]
["Won't you chunk"]
"""

from __future__ import annotations

import re
from bisect import bisect_left, bisect_right
from collections.abc import Mapping, Sequence
from functools import cache, lru_cache
from itertools import accumulate
from typing import TYPE_CHECKING, Any, NamedTuple

from ..config.settings import ChunkingSettings
from ._recursive import TextSplits, compile_separator
from ._segment import (
    NonAscii,
    WordBoundaries,
    WordMarks,
    WordSegmentation,
    marked_words,
    word_marks,
    word_segmentation,
)
from ._sentences import sentence_end_array

if TYPE_CHECKING:
    from typing import TypeAlias

    import numpy as np
    import numpy.typing as npt

    # Offsets in order, as a list or a numpy array.
    _Offsets: TypeAlias = Sequence[int] | npt.NDArray[np.int64]

__all__ = ["Chunk", "chunk_offsets", "chunk_text"]


class Chunk(NamedTuple):
    """One chunk of a text: ``text == source[start:end]``."""

    text: str
    start: int
    end: int


class _Span(NamedTuple):
    start: int
    end: int
    words: int


def _word_spans(text: str, size: int, overlap: int) -> list[_Span]:
    """Word strategy: chunk k holds words ``k*(size-overlap) .. k*(size-overlap)+size-1``.

    A chunk ends where its last word ends; the next starts where the word
    before its first word ends. The final partial chunk runs to the end of the
    text; when the last full chunk ends on the last word, trailing non-word
    text belongs to no chunk (Elasticsearch does the same).
    """
    marks = word_marks(text)
    if marks is not None:
        return _marked_word_spans(marks, not text.isascii(), size, overlap)
    ends = word_segmentation(text).word_end_array()
    n = len(ends)
    if n < size:
        return [_Span(0, len(text), n)]
    step = size - overlap
    full = (n - size) // step + 1
    chunk_ends = ends[size - 1 :: step].tolist()
    chunk_starts = [0, *ends[step - 1 :: step][: full - 1].tolist()]
    spans = [_Span(s, e, size) for s, e in zip(chunk_starts, chunk_ends)]
    carried = overlap + n - ((full - 1) * step + size)
    if carried > overlap:
        spans.append(_Span(int(ends[full * step - 1]), len(text), carried))
    return spans


@lru_cache(maxsize=128)
def _words_pattern(n: int, mixed: bool) -> re.Pattern[bytes]:
    """Matches ``n`` words of ``word_marks`` output, ending where the last one ends.

    A word is a run of ``w``, or (only in ``mixed`` marks, of text that is
    not all ASCII) a single ``e``.
    """
    if mixed:
        return re.compile(rb"(?:[ ]*+(?:w++|e)){%d}" % n)
    return re.compile(rb"(?:[ ]*+w++){%d}" % n)


def _count_words(marks: bytes, pos: int, mixed: bool) -> int:
    runs = marks.count(b" w", pos) + int(marks[pos : pos + 1] == b"w")
    return runs + marks.count(b"e", pos) if mixed else runs


def _marked_word_spans(marks: bytes, mixed: bool, size: int, overlap: int) -> list[_Span]:
    """``_word_spans`` from word marks, stepping over words with a regex (in C).

    Only the ends of the words that start or end a chunk are located: word
    ``(k+1)*step - 1`` (where chunk k+1 starts) and word ``k*step + size - 1``
    (where chunk k ends), which alternate along the text.
    """
    step = size - overlap
    spans: list[_Span] = []
    chunk_start = pos = consumed = 0
    while True:
        ahead = step if not spans else step - overlap
        found = _words_pattern(ahead, mixed).match(marks, pos)
        if found is None:
            break
        consumed, pos = consumed + ahead, found.end()
        next_start = pos
        found = _words_pattern(overlap, mixed).match(marks, pos)
        if found is None:
            break
        consumed, pos = consumed + overlap, found.end()
        spans.append(_Span(chunk_start, pos, size))
        chunk_start = next_start
    total = consumed + _count_words(marks, pos, mixed)
    if not spans:
        return [_Span(0, len(marks), total)]
    carried = overlap + total - ((len(spans) - 1) * step + size)
    if carried > overlap:
        spans.append(_Span(chunk_start, len(marks), carried))
    return spans


@lru_cache(maxsize=128)
def _flags_pattern(n: int) -> re.Pattern[bytes]:
    """Matches ``n`` word flags (``\\x01``) of ``WordSegmentation.is_word``, ending after the last."""
    return re.compile(rb"(?:\x00*+\x01){%d}" % n)


class _WordCounter:
    """``count_words`` and ``skip_words`` of Elasticsearch's sentence chunker, on ICU's segments.

    Both start from the word boundary strictly before ``start`` and look at
    the segment ending there too; see SPEC A5 for the parity quirk this keeps.
    A count is one ``bytes.count`` of the word flags of the boundaries in
    between, found by bisect; ``counts`` does the same for many spans at once
    in numpy.
    """

    def __init__(self, seg: WordSegmentation, length: int) -> None:
        self.seg = seg
        self.array = seg.array
        self.is_word = seg.is_word
        self.length = length
        # flags_before[k]: the word flags among the first k; made on first use.
        self.flags_before: npt.NDArray[np.int64] | None = None

    @property
    def bounds(self) -> list[int]:
        """The boundaries as a list, for bisect (made on first use: ``counts`` needs none)."""
        return self.seg.boundaries

    def _preceding(self, start: int) -> int:
        return max(bisect_left(self.bounds, start) - 1, 0)

    def count(self, start: int, end: int) -> int:
        return self.is_word.count(1, self._preceding(start), bisect_right(self.bounds, end))

    def exceeds(self, n: int) -> bool:
        """Whether the whole text holds more than ``n`` words."""
        return self.is_word.count(1) > n

    def counts(self, ends: _Offsets, start: int = 0) -> list[int]:
        """``count`` of each span from one end to the next, the first from ``start``.

        In numpy: the boundaries found by ``searchsorted``, the words between
        them by prefix sums of the flags.
        """
        if len(ends) == 0:
            return []
        import numpy as np

        if self.flags_before is None:
            flags = np.frombuffer(self.is_word, np.uint8)
            self.flags_before = np.concatenate(([0], np.cumsum(flags, dtype=np.int64)))
        found = np.array(ends, np.int64)
        lows = np.searchsorted(self.array, found)
        lows[1:] = lows[:-1]
        lows[0] = self.array.searchsorted(start)
        np.maximum(lows - 1, 0, out=lows)
        # No fewer than none where a span ends before it starts, as bytes.count gives.
        highs = np.maximum(np.searchsorted(self.array, found, "right"), lows)
        counted: list[int] = (self.flags_before[highs] - self.flags_before[lows]).tolist()
        return counted

    def words_before(self, ends: _Offsets) -> list[int]:
        """The words of the sentences before each sentence, and of all of them, as
        ``counts`` gives them (sentence ``j`` ends at ``ends[j]``)."""
        return [0, *accumulate(self.counts(ends))]

    def within(self, start: int, end: int) -> _WordCounter:
        """The counter of ``text[start:end]``, where both are ``_edge`` offsets."""
        if start == 0 and end == self.length:
            return self
        low, high = self.array.searchsorted((start, end)).tolist()
        seg = WordSegmentation(
            self.array[low : high + 1] - start, b"\0" + self.is_word[low + 1 : high + 1]
        )
        return _WordCounter(seg, end - start)

    def skip(self, start: int, n: int) -> int:
        i = self._preceding(start)
        if n == 0:
            return self.bounds[i]
        found = _flags_pattern(n).match(self.is_word, i)
        if found is None:
            return self.length
        return self.bounds[found.end()] if found.end() < len(self.bounds) else self.length


_W, _E = ord("w"), ord("e")
_SPACES = re.compile(" +")


def _class_bits(values: dict[bytes, int]) -> bytes:
    """A ``bytes.translate`` table: each byte of a key becomes its value, any other 0."""
    return bytes(next((v for keys, v in values.items() if b in keys), 0) for b in range(256))


# The class (``ascii_word_classes``, ``i`` in the islands) of the character before a
# start, and of the one before that, as bits: 1 where ICU must be asked or a word may end
# at the start (an island's or a word's character before it, an island's before that),
# 2 and 4 for the ends of a run that joins (spaces, CR LF), 8 for a segment of one
# character before the start, 16 for a word's character before that.
_LAST_BITS = _class_bits({b"LNUi": 1, b"sn": 2 | 8, b"MCKor": 8})
_SECOND_BITS = _class_bits({b"i": 1, b"sr": 4, b"LNU": 16})
# Their union: where the extra is worked out one by one, and where it is the quirk alone.
_ASKED = bytes(int(bool(b & 1) or b & 6 == 6) for b in range(256))
_QUIRK = bytes(int(b & 24 == 24 and not _ASKED[b]) for b in range(256))

# Up to this many starts, _MarkedCounter counts their extras one by one: cheaper than
# the lookup in numpy (the recursive strategy's few cuts a span).
_FEW_STARTS = 8


QUIRK, ASK_ICU = 1, 2


@cache
def _extra_by_pair() -> npt.NDArray[np.uint8]:
    """The extra of a start from the classes of the two characters before it, read as
    one little-endian ``uint16`` (the one before that low): ``QUIRK`` where it is the
    quirk, ``ASK_ICU`` where it is worked out one by one, else 0."""
    import numpy as np

    pair = np.arange(1 << 16)
    either = np.frombuffer(_LAST_BITS, np.uint8)[pair >> 8]
    either |= np.frombuffer(_SECOND_BITS, np.uint8)[pair & 255]
    asked, quirk = (np.frombuffer(t, np.bool_)[either] for t in (_ASKED, _QUIRK))
    extra = np.where(asked, ASK_ICU, np.where(quirk, QUIRK, 0)).astype(np.uint8)
    extra.flags.writeable = False  # shared by every thread
    return extra


class _MarkedCounter:
    """``_WordCounter`` from word marks: the word count of a span is a lookup, no ICU walk.

    A count is the words ending in ``[start, end]`` (two places in
    ``word_end_array``) plus the one ending at the boundary before ``start`` if
    any (the quirk).
    Outside the spans ICU segmented (``WordMarks.islands``) a segment that is
    not a word is a run of spaces, a CR LF, or one character: a word is never
    next to another, a space run joins (WB3d), CR LF joins (WB3), and nothing
    else joins two ASCII characters that are not a word's (WB999). Inside
    them, ICU is asked.
    """

    def __init__(self, text: str, found: WordMarks) -> None:
        self.text = text
        self.found = found
        # A space after the last mark: every word end is a ``w`` before a space or an ``e``.
        self.marks = found.marks + b" "
        self.classes = found.classes
        self.non_ascii = found.non_ascii
        self.mixed = not text.isascii()
        self.island_starts = [start for start, _ in found.islands]
        self.island_ends = [end for _, end in found.islands]
        self.icu = WordBoundaries(text)
        self.ends: npt.NDArray[np.int64] | None = None
        self.kinds: npt.NDArray[np.uint16] | None = None

    def _in_island(self, i: int) -> bool:
        k = bisect_right(self.island_starts, i) - 1
        return k >= 0 and i < self.island_ends[k]

    def _segment_start(self, start: int) -> int:
        """The last word boundary before ``start``, 0 if none."""
        if start <= 0:
            return 0
        i = start - 1
        if self.marks[i] == _W:
            return self.marks.rfind(b" ", 0, i) + 1
        if self.island_starts and self._in_island(i):
            return self.icu.preceding(start)
        text = self.text
        if text[i] == " ":
            while i > 0 and text[i - 1] == " ":
                i -= 1
        elif text[i] == "\n" and i > 0 and text[i - 1] == "\r":
            i -= 1
        return i

    def _segment_end(self, word_end: int) -> int:
        """The first word boundary after the end of a word, the text's end if none."""
        text = self.text
        if word_end >= len(text):
            return len(text)
        if self.marks[word_end - 1] == _E:
            return self.icu.following(word_end)
        if text[word_end] == " ":
            found = _SPACES.match(text, word_end)
            assert found is not None
            return found.end()
        if text.startswith("\r\n", word_end):
            return word_end + 2
        return word_end + 1

    def _ends_word(self, boundary: int) -> int:
        if boundary == 0:
            return 0
        mark = self.marks[boundary - 1]
        return int(mark == _E or (mark == _W and self.marks[boundary] != _W))

    def _words(self, low: int, end: int) -> int:
        """The words whose last character lies in ``[low, end)``: one or two ``bytes.count``."""
        words = self.marks.count(b"w ", low, end + 1)
        return words + self.marks.count(b"e", low, end) if self.mixed else words

    def _extra(self, start: int) -> int:
        """The words a span from ``start`` counts beyond those ending after ``start``.

        The word ending at ``start`` itself, if any, and the quirk: the one
        ending at the boundary before ``start``, if any.
        """
        return self._ends_word(start) + self._ends_word(self._segment_start(start))

    def count(self, start: int, end: int) -> int:
        return self._words(start, end) + self._extra(start)

    def exceeds(self, n: int) -> bool:
        """Whether the whole text holds more than ``n`` words (the counts that follow
        need ``word_end_array`` anyway)."""
        return len(self.word_end_array()) > n

    def word_end_array(self) -> npt.NDArray[np.int64]:
        """Where the words of the text end, in order (numpy; made on first use)."""
        if self.ends is None:
            import numpy as np

            marks = np.frombuffer(self.marks, np.uint8)
            in_word = marks == _W
            # A word ends after a ``w`` that no ``w`` follows (the marks end with a
            # space), and after each ``e``.
            last = in_word[:-1] > in_word[1:]
            if self.mixed:
                last |= marks[:-1] == _E
            self.ends = np.flatnonzero(last) + 1
        return self.ends

    def _kinds(self) -> npt.NDArray[np.uint16]:
        """The classes (``ascii_word_classes``, ``i`` in the islands) of characters
        ``s - 2`` and ``s - 1`` at index ``s``, as one little-endian ``uint16`` (the
        first low); made on first use."""
        if self.kinds is None:
            import numpy as np

            kinds = bytearray(b"oo" + self.classes)
            for start, end in zip(self.island_starts, self.island_ends):
                kinds[start + 2 : end + 2] = b"i" * (end - start)
            # Each element overlaps the next: two bytes from every offset.
            self.kinds = np.ndarray((len(kinds) - 1,), "<u2", bytes(kinds), strides=(1,))
        return self.kinds

    def counts(self, ends: _Offsets, start: int = 0) -> list[int]:
        """``count`` of each span from one end to the next, the first from ``start``.

        The words ending in each span are a difference of two places in
        ``word_end_array`` (``searchsorted``). Outside the islands a word is never
        next to another and a segment that is not a word is one character, a
        space run or a CR LF. So where the character before a start ``s`` is
        neither a word's nor in a run that joins, no word ends at ``s`` and the
        extra is the quirk alone: 1 when the character before that is a word's.
        Those are looked up in numpy; the other starts, and the islands', are
        worked out one by one.
        """
        if len(ends) > _FEW_STARTS:
            counted: list[int] = self._count_array(ends, start).tolist()
            return counted
        # Few spans (the recursive strategy's cuts): numpy's fixed cost per call
        # outweighs its speed, so only the word ends are looked up there.
        bounds = [start, *ends]
        ended: list[int] = self.word_end_array().searchsorted(bounds, "right").tolist()
        return [b - a + self._extra(s) for a, b, s in zip(ended, ended[1:], bounds)]

    def _count_array(self, ends: _Offsets, start: int) -> npt.NDArray[np.int64]:
        import numpy as np

        bounds = np.empty(len(ends) + 1, np.int64)
        bounds[0], bounds[1:] = start, ends
        ended = self.word_end_array().searchsorted(bounds, "right")
        counts = ended[1:] - ended[:-1]
        starts = bounds[:-1]
        extra = _extra_by_pair()[self._kinds()[starts]]
        counts += extra & QUIRK
        for k in np.flatnonzero(extra & ASK_ICU).tolist():
            counts[k] += self._extra(int(starts[k]))
        return counts

    def within(self, start: int, end: int) -> _MarkedCounter:
        """The counter of ``text[start:end]``, where both are ``_edge`` offsets: the
        text's marks, classes and islands cut there."""
        if start == 0 and end == len(self.text):
            return self

        def cut(spans: list[tuple[int, int]]) -> list[tuple[int, int]]:
            return [
                (max(a, start) - start, min(b, end) - start)
                for a, b in spans
                if a < end and b > start
            ]

        found, non_ascii = self.found, self.found.non_ascii
        if non_ascii is not None:
            non_ascii = NonAscii(non_ascii.replaced[start:end], cut(non_ascii.runs))
        part = WordMarks(
            found.marks[start:end], found.classes[start:end], cut(found.islands), non_ascii
        )
        return _MarkedCounter(self.text[start:end], part)

    def words_before(self, ends: _Offsets) -> list[int]:
        """The words of the sentences before each sentence, and of all of them, as
        ``counts`` gives them (sentence ``j`` ends at ``ends[j]``)."""
        import numpy as np

        before = np.zeros(len(ends) + 1, np.int64)
        if len(ends):
            np.cumsum(self._count_array(ends, 0), out=before[1:])
        listed: list[int] = before.tolist()
        return listed

    def skip(self, start: int, n: int) -> int:
        boundary = self._segment_start(start)
        if n == 0:
            return boundary
        ahead = n - self._ends_word(boundary)
        if ahead == 0:
            return self._segment_end(boundary)
        found = _words_pattern(ahead, self.mixed).match(self.marks, boundary)
        return len(self.text) if found is None else self._segment_end(found.end())


def _counter(text: str) -> _WordCounter | _MarkedCounter:
    """The word counter of ``text``: from word marks where they apply, else from ICU's segments."""
    found = marked_words(text)
    if found is None:
        return _WordCounter(word_segmentation(text), len(text))
    return _MarkedCounter(text, found)


def _sentence_spans(
    text: str,
    max_words: int,
    overlap: bool,
    counter: _WordCounter | _MarkedCounter | None = None,
) -> list[_Span]:
    """Sentence strategy: whole sentences packed greedily up to ``max_words`` words.

    ``counter``: the word counter of ``text``, when the caller has it already.
    """
    if counter is None:
        counter = _counter(text)
    long_overlap = min(20, (max_words - 1) // 2)
    max_overlap_words = min(max_words // 2, 20)
    ends = sentence_end_array(
        text, counter.non_ascii if isinstance(counter, _MarkedCounter) else None
    )
    # Only the ends where chunks end are read: as Python ints, one at a time.
    end_at, count = ends.item, len(ends)
    # The sentences that still fit in a chunk are found by one bisect of the words
    # before each: a chunk costs a few calls, not one per sentence.
    before = counter.words_before(ends)
    spans: list[_Span] = []
    chunk_start = chunk_words = k = 0
    while True:
        fit = bisect_right(before, max_words - chunk_words + before[k]) - 1
        chunk_words += before[fit] - before[k]
        k = fit
        if k >= count:
            break
        chunk_end = end_at(k - 1) if k else 0
        sentence_end, words = end_at(k), before[k + 1] - before[k]
        next_words = words
        if chunk_words > 0:
            spans.append(_Span(chunk_start, chunk_end, chunk_words))
            if overlap:
                prev_start, prev_words = (end_at(k - 2) if k > 1 else 0), before[k] - before[k - 1]
                if prev_words + words > max_words:
                    skip = prev_words - max_overlap_words if prev_words > max_overlap_words else 0
                    chunk_start = counter.skip(prev_start, skip)
                    chunk_words = prev_words - skip + words
                else:
                    chunk_start = prev_start
                    chunk_words = prev_words + words
                next_words = chunk_words
            else:
                chunk_start = chunk_end
                chunk_words = words
        if next_words > max_words:
            pieces = _word_spans(text[chunk_start:sentence_end], max_words, long_overlap)
            spans.extend(
                _Span(chunk_start + p.start, chunk_start + p.end, p.words) for p in pieces[:-1]
            )
            chunk_start += pieces[-1].start
            chunk_words = pieces[-1].words
        k += 1
    if chunk_words > 0:
        spans.append(_Span(chunk_start, len(text), chunk_words))
    if not spans:
        spans.append(_Span(0, len(text), 0))
    return spans


def _edge(text: str, i: int) -> bool:
    """Whether ``i`` is a word boundary of ``text`` that no word-break rule looks across:
    the text's ends, after a line feed, before one that no CR comes before (WB3a, WB3b).
    ICU segments ``text[start:end]`` between two of them as it segments that span of
    ``text``."""
    return (
        i == 0 or i == len(text) or text[i - 1] == "\n" or (text[i] == "\n" and text[i - 1] != "\r")
    )


def _recursive_spans(text: str, max_words: int, separators: Sequence[str]) -> list[_Span]:
    """Recursive strategy (Elasticsearch's ``RecursiveChunker``).

    A span of at most ``max_words`` words (counted as the sentence strategy
    counts them, in the whole text) is kept whole. A longer one is split at
    the start of every match of the current separator, neighbouring pieces
    are merged while their summed counts fit, and each piece that does not
    fit goes through the same steps with the next separator; with none left,
    the sentence strategy (overlap 0) cuts it.
    """
    if not text:
        return [_Span(0, 0, 0)]
    counter = _counter(text)
    compiled = [compile_separator(s) for s in separators]
    splits = TextSplits(text)
    spans: list[_Span] = []

    def chunk(start: int, end: int, level: int) -> None:
        # The span holds more than ``max_words`` words.
        cuts: list[int] = []
        while level < len(compiled):
            # A level with no cut inside the span leaves it whole: go on to the next.
            cuts = [
                *dict.fromkeys(
                    c for c in splits.split_starts(start, end, compiled[level]) if c > start
                ),
                end,
            ]
            if len(cuts) > 1:
                break
            level += 1
        if level == len(compiled):
            # The words of a span between edges are the text's words there.
            part = counter.within(start, end) if _edge(text, start) and _edge(text, end) else None
            pieces = _sentence_spans(text[start:end], max_words, overlap=False, counter=part)
            spans.extend(_Span(start + s.start, start + s.end, s.words) for s in pieces)
            return
        # Neighbouring pieces merge while their summed counts fit: with the counts
        # summed up front, each merged piece is found by one bisect.
        counts = counter.counts(cuts, start)
        before = [0, *accumulate(counts)]
        piece_starts = [start, *cuts]
        i = 0
        while i < len(cuts):
            if counts[i] > max_words:
                chunk(piece_starts[i], cuts[i], level + 1)
                i += 1
            else:
                j = bisect_right(before, max_words + before[i]) - 1
                spans.append(_Span(piece_starts[i], cuts[j - 1], before[j] - before[i]))
                i = j

    if not counter.exceeds(max_words):
        return [_Span(0, len(text), counter.count(0, len(text)))]
    chunk(0, len(text), 0)
    return spans


def chunk_offsets(
    text: str, settings: ChunkingSettings | Mapping[str, Any] | None = None
) -> list[tuple[int, int]]:
    """The ``(start, end)`` offsets of :func:`chunk_text`, without building substrings."""
    if not isinstance(text, str):
        raise TypeError(f"text must be a str, not {type(text).__name__}")
    if settings is not None and not isinstance(settings, (ChunkingSettings, Mapping)):
        raise TypeError(
            f"settings must be a ChunkingSettings, a mapping or None, not {type(settings).__name__}"
        )
    cs = ChunkingSettings.coerce(settings)
    if cs.strategy == "none":
        return [(0, len(text))]
    assert cs.max_chunk_size is not None
    if cs.strategy == "word":
        assert cs.overlap is not None
        spans = _word_spans(text, cs.max_chunk_size, cs.overlap)
    elif cs.strategy == "recursive":
        assert cs.separators is not None
        spans = _recursive_spans(text, cs.max_chunk_size, cs.separators)
    else:
        spans = _sentence_spans(text, cs.max_chunk_size, bool(cs.sentence_overlap))
    return [(s.start, s.end) for s in spans]


def chunk_text(
    text: str, settings: ChunkingSettings | Mapping[str, Any] | None = None
) -> list[Chunk]:
    """Cut ``text`` into chunks exactly as Elasticsearch's chunker with ``settings`` does.

    ``settings`` is a :class:`ChunkingSettings`, its JSON map, or ``None``
    (sentence strategy, 250 words, overlap 1).
    """
    return [Chunk(text[s:e], s, e) for s, e in chunk_offsets(text, settings)]

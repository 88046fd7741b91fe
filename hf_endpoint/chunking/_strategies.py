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
from collections.abc import Iterable, Mapping, Sequence
from functools import lru_cache
from itertools import accumulate, repeat
from operator import add, itemgetter, sub
from typing import Any, NamedTuple

from ..config.settings import ChunkingSettings
from ._recursive import compile_separator, split_starts
from ._segment import (
    WordBoundaries,
    WordMarks,
    WordSegmentation,
    marked_words,
    sentence_ends,
    word_ends,
    word_marks,
    word_segmentation,
)

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
    ends = word_ends(text)
    n = len(ends)
    if n < size:
        return [_Span(0, len(text), n)]
    step = size - overlap
    full = (n - size) // step + 1
    chunk_ends = ends[size - 1 :: step]
    chunk_starts = [0, *ends[step - 1 :: step][: full - 1]]
    spans = [_Span(s, e, size) for s, e in zip(chunk_starts, chunk_ends)]
    carried = overlap + n - ((full - 1) * step + size)
    if carried > overlap:
        spans.append(_Span(ends[full * step - 1], len(text), carried))
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


def _values_at(values: list[int], indices: list[int]) -> list[int]:
    """``values[i]`` for each of ``indices`` (not empty, each in range), in C."""
    if len(indices) == 1:
        return [values[indices[0]]]
    return list(itemgetter(*indices)(values))


def _less_one(values: list[int]) -> list[int]:
    """``max(v - 1, 0)`` of each of the non-decreasing ``values``, in C but for the leading zeros."""
    lowered = list(map(sub, values, repeat(1)))
    k = 0
    while k < len(lowered) and lowered[k] < 0:
        lowered[k] = 0
        k += 1
    return lowered


@lru_cache(maxsize=128)
def _flags_pattern(n: int) -> re.Pattern[bytes]:
    """Matches ``n`` word flags (``\\x01``) of ``WordSegmentation.is_word``, ending after the last."""
    return re.compile(rb"(?:\x00*+\x01){%d}" % n)


class _WordCounter:
    """``count_words`` and ``skip_words`` of Elasticsearch's sentence chunker, on ICU's segments.

    Both start from the word boundary strictly before ``start`` and look at
    the segment ending there too; see SPEC A5 for the parity quirk this keeps.
    A count is one ``bytes.count`` of the word flags of the boundaries in
    between, found by bisect.
    """

    def __init__(self, seg: WordSegmentation, length: int) -> None:
        self.bounds = seg.boundaries
        self.is_word = seg.is_word
        self.length = length

    def _preceding(self, start: int) -> int:
        return max(bisect_left(self.bounds, start) - 1, 0)

    def count(self, start: int, end: int) -> int:
        return self.is_word.count(1, self._preceding(start), bisect_right(self.bounds, end))

    def exceeds(self, n: int) -> bool:
        """Whether the whole text holds more than ``n`` words."""
        return self.is_word.count(1) > n

    def counts(self, ends: list[int], start: int = 0) -> list[int]:
        """``count`` of each span from one end to the next, the first from ``start``."""
        if not ends:
            return []
        at = list(map(bisect_left, repeat(self.bounds), ends))
        lows = _less_one([bisect_left(self.bounds, start), *at[:-1]])
        if at[-1] < len(self.bounds) and _values_at(self.bounds, at) == ends:
            # Every end is a word boundary (as sentence ends are): it is found once.
            highs: Iterable[int] = map(add, at, repeat(1))
        else:
            highs = map(bisect_right, repeat(self.bounds), ends)
        return list(map(self.is_word.count, repeat(1), lows, highs))

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
# For _MarkedCounter.quirks: word characters become w, the other ASCII classes o but
# space (s), CR (r) and LF (n); the islands are i. Each table gives 1 where its kind is.
_KINDS = bytes.maketrans(b"LNUMCK", b"wwwooo")


def _kind_table(kinds: bytes) -> bytes:
    return bytes(1 if b in kinds else 0 for b in range(256))


_IS_WORD, _IS_NOT_WORD, _IS_ISLAND = _kind_table(b"w"), _kind_table(b"osrn"), _kind_table(b"i")
_JOINS_BEFORE, _JOINS_AFTER = _kind_table(b"sn"), _kind_table(b"sr")


# Up to this many starts, _MarkedCounter.quirks looks at each on its own: cheaper
# than the bulk lookup's dozen C calls (the recursive strategy's few cuts a span).
_FEW_STARTS = 8


def _bytes_at(data: bytes, positions: list[int]) -> bytes:
    """``data[p]`` for each of ``positions`` (not empty), in C."""
    if len(positions) == 1:
        return data[positions[0] : positions[0] + 1]
    return bytes(itemgetter(*positions)(data))


def _bits(data: bytes, table: bytes) -> int:
    """``data`` through a 0/1 ``table``, one byte per flag, as an int for ``&`` and ``|``."""
    return int.from_bytes(data.translate(table), "big")


class _MarkedCounter:
    """``_WordCounter`` from word marks: the word count of a span is a lookup, no ICU walk.

    A count is the words ending in ``[start, end]`` (one ``bytes.count`` in C)
    plus the one ending at the boundary before ``start`` if any (the quirk).
    Outside the spans ICU segmented (``WordMarks.islands``) a segment that is
    not a word is a run of spaces, a CR LF, or one character: a word is never
    next to another, a space run joins (WB3d), CR LF joins (WB3), and nothing
    else joins two ASCII characters that are not a word's (WB999). Inside
    them, ICU is asked.
    """

    def __init__(self, text: str, found: WordMarks) -> None:
        self.text = text
        # A space after the last mark: every word end is a ``w`` before a space or an ``e``.
        self.marks = found.marks + b" "
        self.classes = found.classes
        self.mixed = not text.isascii()
        self.island_starts = [start for start, _ in found.islands]
        self.island_ends = [end for _, end in found.islands]
        self.icu = WordBoundaries(text)
        self.kinds: tuple[bytes, bytes] | None = None  # for quirks, made on first use

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

    def count(self, start: int, end: int) -> int:
        low = start - 1 if start else 0
        return self._words(low, end) + self._ends_word(self._segment_start(start))

    def exceeds(self, n: int) -> bool:
        """Whether the whole text holds more than ``n`` words: read up to word ``n + 1`` only."""
        return _words_pattern(n + 1, self.mixed).match(self.marks) is not None

    def quirks(self, starts: list[int]) -> list[int]:
        """``_ends_word(_segment_start(s))`` for each of ``starts``: the quirk of ``count``.

        Outside the islands the segment before ``s`` is one character, so a
        word ends at its start when the character before it is a word's, unless
        that segment is a space run or a CR LF: those, and the islands, are
        worked out one by one. The rest is done with C-level calls.
        """
        if len(starts) <= _FEW_STARTS:
            return [self._ends_word(self._segment_start(s)) for s in starts]
        if self.kinds is None:
            kinds = bytearray(self.classes.translate(_KINDS))
            for start, end in zip(self.island_starts, self.island_ends):
                kinds[start:end] = b"i" * (end - start)
            self.kinds = (b"o" + kinds, b"oo" + kinds)
        before, two_before = self.kinds  # the kinds of s - 1 and s - 2 at index s
        last, second = _bytes_at(before, starts), _bytes_at(two_before, starts)
        size = len(starts)
        found = list((_bits(last, _IS_NOT_WORD) & _bits(second, _IS_WORD)).to_bytes(size, "big"))
        ask = _bits(last, _IS_ISLAND) | _bits(second, _IS_ISLAND)
        ask |= _bits(last, _JOINS_BEFORE) & _bits(second, _JOINS_AFTER)
        if ask:
            flags = ask.to_bytes(size, "big")
            k = flags.find(1)
            while k != -1:
                found[k] = self._ends_word(self._segment_start(starts[k]))
                k = flags.find(1, k + 1)
        return found

    def counts(self, ends: list[int], start: int = 0) -> list[int]:
        """``count`` of each span from one end to the next, the first from ``start``.

        The same sums as ``count``, for all spans at once with C-level calls.
        """
        if not ends:
            return []
        starts = [start, *ends[:-1]]
        lows = _less_one(starts)
        words = map(self.marks.count, repeat(b"w "), lows, map(add, ends, repeat(1)))
        if self.mixed:
            words = map(add, words, map(self.marks.count, repeat(b"e"), lows, ends))
        return list(map(add, words, self.quirks(starts)))

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
    ends = sentence_ends(text)
    counts = counter.counts(ends)
    # before[k]: the words of the sentences before sentence k. The sentences that
    # still fit are found by one bisect: the loop runs once per chunk, not per sentence.
    before = [0, *accumulate(counts)]
    spans: list[_Span] = []
    chunk_start = chunk_words = k = 0
    while True:
        fit = bisect_right(before, max_words - chunk_words + before[k]) - 1
        chunk_words += before[min(fit, len(ends))] - before[k]
        k = fit
        if k >= len(ends):
            break
        chunk_end = ends[k - 1] if k else 0
        sentence_end, words = ends[k], counts[k]
        prev_start, prev_words = (ends[k - 2] if k > 1 else 0, counts[k - 1]) if k else (0, 0)
        next_words = words
        if chunk_words > 0:
            spans.append(_Span(chunk_start, chunk_end, chunk_words))
            if overlap:
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
    spans: list[_Span] = []

    def chunk(start: int, end: int, level: int) -> None:
        # The span holds more than ``max_words`` words.
        cuts: list[int] = []
        while level < len(compiled):
            # A level with no cut inside the span leaves it whole: go on to the next.
            cuts = [
                *dict.fromkeys(
                    c for c in split_starts(text, start, end, compiled[level]) if c > start
                ),
                end,
            ]
            if len(cuts) > 1:
                break
            level += 1
        if level == len(compiled):
            whole = start == 0 and end == len(text)  # no separator matched at all
            pieces = _sentence_spans(
                text[start:end], max_words, overlap=False, counter=counter if whole else None
            )
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

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
from collections.abc import Mapping
from functools import lru_cache
from itertools import accumulate
from typing import Any, NamedTuple

from ._recursive import compile_separator, split_starts
from ._segment import (
    WordSegmentation,
    sentence_ends,
    word_ends,
    word_marks,
    word_segmentation,
)
from .settings import ChunkingSettings

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


class _WordCounter:
    """``count_words`` and ``skip_words`` of Elasticsearch's sentence chunker.

    Both start from the word boundary strictly before ``start`` and look at
    the segment ending there too; see SPEC A5 for the parity quirk this keeps.
    """

    def __init__(self, seg: WordSegmentation, length: int) -> None:
        self.bounds = seg.boundaries
        self.is_word = seg.is_word
        self.before = list(accumulate(seg.is_word))  # words ending at or before boundary k
        self.length = length

    def _preceding(self, start: int) -> int:
        return max(bisect_left(self.bounds, start) - 1, 0)

    def count(self, start: int, end: int) -> int:
        i = self._preceding(start)
        j = bisect_right(self.bounds, end) - 1
        return self.before[j] - self.before[i] + self.is_word[i]

    def skip(self, start: int, n: int) -> int:
        i = self._preceding(start)
        if n == 0:
            return self.bounds[i]
        k = bisect_left(self.before, n + self.before[i] - self.is_word[i], i)
        return self.bounds[k + 1] if k + 1 < len(self.bounds) else self.length


def _sentence_spans(
    text: str, max_words: int, overlap: bool, counter: _WordCounter | None = None
) -> list[_Span]:
    """Sentence strategy: whole sentences packed greedily up to ``max_words`` words.

    ``counter``: the word counter of ``text``, when the caller has it already.
    """
    if counter is None:
        counter = _WordCounter(word_segmentation(text), len(text))
    long_overlap = min(20, (max_words - 1) // 2)
    max_overlap_words = min(max_words // 2, 20)
    spans: list[_Span] = []
    chunk_start = chunk_end = sentence_start = chunk_words = 0
    prev_start = prev_words = 0
    for sentence_end in sentence_ends(text):
        words = counter.count(sentence_start, sentence_end)
        if chunk_words + words > max_words:
            next_words = words
            if chunk_words > 0:
                spans.append(_Span(chunk_start, chunk_end, chunk_words))
                if overlap:
                    if prev_words + words > max_words:
                        skip = (
                            prev_words - max_overlap_words if prev_words > max_overlap_words else 0
                        )
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
        else:
            chunk_words += words
        if overlap:
            prev_start, prev_words = sentence_start, words
        sentence_start = chunk_end = sentence_end
    if chunk_words > 0:
        spans.append(_Span(chunk_start, len(text), chunk_words))
    if not spans:
        spans.append(_Span(0, len(text), 0))
    return spans


def _recursive_spans(text: str, max_words: int, separators: tuple[str, ...]) -> list[_Span]:
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
    counter = _WordCounter(word_segmentation(text), len(text))
    compiled = [compile_separator(s) for s in separators]
    spans: list[_Span] = []

    def chunk(start: int, end: int, level: int) -> None:
        words = counter.count(start, end)
        if words <= max_words:
            spans.append(_Span(start, end, words))
            return
        if level == len(compiled):
            whole = start == 0 and end == len(text)  # no separator matched at all
            pieces = _sentence_spans(
                text[start:end], max_words, overlap=False, counter=counter if whole else None
            )
            spans.extend(_Span(start + s.start, start + s.end, s.words) for s in pieces)
            return
        cuts = [
            *dict.fromkeys(c for c in split_starts(text, start, end, compiled[level]) if c > start),
            end,
        ]
        merged: list[_Span] = []
        piece_start = start
        for cut in cuts:
            piece = _Span(piece_start, cut, counter.count(piece_start, cut))
            if merged and merged[-1].words + piece.words <= max_words:
                last = merged.pop()
                piece = _Span(last.start, cut, last.words + piece.words)
            merged.append(piece)
            piece_start = cut
        for piece in merged:
            if piece.words <= max_words:
                spans.append(piece)
            else:
                chunk(piece.start, piece.end, level + 1)

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

"""SPEC A4, A5 and Elasticsearch's RecursiveChunker written out literally, for the property tests.

Every word is found the plain way: one step per ICU word boundary, its rule status asked
of ICU (``word_status``). The chunker's fast paths (ASCII rules, character classes, word
counts looked up rather than walked) must give the same chunks.
"""

import dataclasses

from hf_endpoint.chunking._recursive import compile_separator, split_starts
from hf_endpoint.chunking._segment import icu_sentence_ends, word_status


def reference_word_chunks(text, size, overlap):
    """SPEC A4: ``(start, end, words)`` of each chunk."""
    out = []
    count = since = window_start = next_start = 0
    for b, status in word_status(text):
        if status != 0:
            count += 1
            since += 1
            if count >= size:
                out.append((window_start, b, size))
                count = overlap
                if overlap == 0:
                    next_start = b
                window_start = next_start
            if since == size - overlap:
                next_start = b
                since = 0
    if count > overlap or not out:
        out.append((window_start, len(text), count))
    return out


class ReferenceWords:
    """SPEC A5's ``count_words`` and ``skip_words``, walking ICU boundaries one by one."""

    def __init__(self, text):
        self.length = len(text)
        statuses = word_status(text)
        self.bounds = [0, *(b for b, _ in statuses)]
        self.is_word = [False, *(s != 0 for _, s in statuses)]

    def _preceding(self, start):
        k = 0
        while k + 1 < len(self.bounds) and self.bounds[k + 1] < start:
            k += 1
        return k

    def count(self, start, end):
        k = self._preceding(start)
        words = 0
        while k < len(self.bounds) and self.bounds[k] <= end:
            words += self.is_word[k]
            k += 1
        return words

    def skip(self, start, n):
        k = self._preceding(start)
        passed = 0
        while k < len(self.bounds):
            if passed == n:
                return self.bounds[k]
            passed += self.is_word[k]
            k += 1
            if passed == n:
                return self.bounds[k] if k < len(self.bounds) else self.length
        return self.length


def reference_sentence_chunks(text, max_words, overlap):
    """SPEC A5: ``(start, end, words)`` of each chunk."""
    words_of = ReferenceWords(text)
    long_overlap = min(20, (max_words - 1) // 2)
    max_overlap_words = min(max_words // 2, 20)
    out = []
    chunk_start = chunk_end = sent_start = chunk_words = 0
    prev_start = prev_words = 0
    for e in icu_sentence_ends(text):
        w = words_of.count(sent_start, e)
        if chunk_words + w > max_words:
            next_words = w
            if chunk_words > 0:
                out.append((chunk_start, chunk_end, chunk_words))
                if overlap:
                    if prev_words + w > max_words:
                        skip = (
                            prev_words - max_overlap_words if prev_words > max_overlap_words else 0
                        )
                        chunk_start = words_of.skip(prev_start, skip)
                        chunk_words = prev_words - skip + w
                    else:
                        chunk_start = prev_start
                        chunk_words = prev_words + w
                    next_words = chunk_words
                else:
                    chunk_start = chunk_end
                    chunk_words = w
            if next_words > max_words:
                pieces = reference_word_chunks(text[chunk_start:e], max_words, long_overlap)
                out.extend((chunk_start + s, chunk_start + t, n) for s, t, n in pieces[:-1])
                chunk_start += pieces[-1][0]
                chunk_words = pieces[-1][2]
        else:
            chunk_words += w
        if overlap:
            prev_start, prev_words = sent_start, w
        sent_start = chunk_end = e
    if chunk_words > 0:
        out.append((chunk_start, len(text), chunk_words))
    if not out:
        out.append((0, len(text), 0))
    return out


def reference_recursive_chunks(text, max_words, separators):
    """Elasticsearch's RecursiveChunker: split at a separator, merge neighbours, recurse."""
    if not text:
        return [(0, 0)]
    words_of = ReferenceWords(text)
    # Every separator searched by its regex over the span: no setext heading tried only
    # before its underlines.
    compiled = [dataclasses.replace(compile_separator(s), underline=None) for s in separators]
    out = []

    def chunk(start, end, level):
        if words_of.count(start, end) <= max_words:
            out.append((start, end))
            return
        if level == len(compiled):
            pieces = reference_sentence_chunks(text[start:end], max_words, overlap=False)
            out.extend((start + s, start + t) for s, t, _ in pieces)
            return
        cuts = sorted({c for c in split_starts(text, start, end, compiled[level]) if c > start})
        merged = []  # [start, end, words]
        for piece_start, piece_end in zip([start, *cuts], [*cuts, end]):
            words = words_of.count(piece_start, piece_end)
            if merged and merged[-1][2] + words <= max_words:
                merged[-1][1] = piece_end
                merged[-1][2] += words
            else:
                merged.append([piece_start, piece_end, words])
        for piece_start, piece_end, words in merged:
            if words <= max_words:
                out.append((piece_start, piece_end))
            else:
                chunk(piece_start, piece_end, level + 1)

    chunk(0, len(text), 0)
    return out

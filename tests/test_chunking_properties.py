"""Invariants of the chunker over random multilingual text and settings."""

from bisect import bisect_left, bisect_right
from itertools import accumulate, pairwise

from hypothesis import assume, given
from hypothesis import strategies as st

from hf_endpoint import chunk_offsets, chunk_text
from hf_endpoint.chunking._segment import (
    NonAscii,
    icu_sentence_ends,
    marked_words,
    non_ascii_runs,
    word_segmentation,
    word_status,
)
from hf_endpoint.chunking._sentences import sentence_end_array, sentence_ends
from hf_endpoint.chunking._strategies import (
    _counter,
    _edge,
    _MarkedCounter,
    _sentence_spans,
    _word_spans,
    _WordCounter,
)

from .reference import (
    ReferenceWords,
    reference_recursive_chunks,
    reference_sentence_chunks,
    reference_word_chunks,
)
from .strategies import (
    any_text,
    ascii_text,
    chunking_settings,
    long_ascii_text,
    long_text,
    mixed_text,
    multilingual_text,
    recursive_settings,
    structured_text,
)


def word_spans(text):
    seg = word_segmentation(text)
    return [(a, b) for a, b, w in zip(seg.boundaries, seg.boundaries[1:], seg.is_word[1:]) if w]


def words_inside(spans, start, end):
    starts = [a for a, _ in spans]
    return [s for s in spans[bisect_left(starts, start) : bisect_right(starts, end)] if s[1] <= end]


@given(any_text)
def test_fast_word_flags_equal_icu_rule_statuses(text):
    seg = word_segmentation(text)
    assert list(zip(seg.boundaries[1:], seg.is_word[1:])) == [
        (end, int(status != 0)) for end, status in word_status(text)
    ]


@given(st.one_of(any_text, ascii_text, mixed_text, long_text), chunking_settings())
def test_chunks_are_exact_substrings_with_non_decreasing_starts(text, settings):
    chunks = chunk_text(text, settings)
    assert chunks
    for c in chunks:
        assert 0 <= c.start <= c.end <= len(text)
        assert text[c.start : c.end] == c.text
    assert [c.start for c in chunks] == sorted(c.start for c in chunks)


@given(st.one_of(multilingual_text, long_text), chunking_settings())
def test_every_word_lies_in_some_chunk(text, settings):
    chunks = chunk_text(text, settings)
    for a, b in word_spans(text):
        assert any(c.start <= a and b <= c.end for c in chunks), (text[a:b], a, b)


@given(st.one_of(multilingual_text, long_text), chunking_settings())
def test_no_chunk_holds_more_than_max_words(text, settings):
    spans = word_spans(text)
    for c in chunk_text(text, settings):
        assert len(words_inside(spans, c.start, c.end)) <= settings.max_chunk_size


@given(st.one_of(multilingual_text, long_text), st.integers(10, 40), st.data())
def test_word_chunks_but_the_last_hold_exactly_max_words(text, size, data):
    overlap = data.draw(st.integers(1, size // 2))
    spans = word_spans(text)
    chunks = chunk_text(text, {"strategy": "word", "max_chunk_size": size, "overlap": overlap})
    for c in chunks[:-1]:
        assert len(words_inside(spans, c.start, c.end)) == size


@given(st.one_of(any_text, ascii_text, mixed_text, long_text), st.integers(1, 40), st.data())
def test_word_strategy_equals_the_boundary_walk(text, size, data):
    overlap = data.draw(st.integers(0, size // 2))
    assert _word_spans(text, size, overlap) == reference_word_chunks(text, size, overlap)


@given(
    st.one_of(long_text, any_text, mixed_text, multilingual_text, structured_text),
    st.integers(10, 40),
    st.booleans(),
)
def test_sentence_strategy_equals_the_boundary_walk(text, max_words, overlap):
    # Word counts too: the recursive strategy carries them on.
    assert _sentence_spans(text, max_words, overlap) == reference_sentence_chunks(
        text, max_words, overlap
    )


@given(long_ascii_text, st.integers(10, 40), st.booleans())
def test_sentence_strategy_from_word_marks_equals_the_boundary_walk(text, max_words, overlap):
    assume(marked_words(text) is not None)
    assert _sentence_spans(text, max_words, overlap) == reference_sentence_chunks(
        text, max_words, overlap
    )


@given(st.one_of(long_ascii_text, mixed_text, structured_text, long_text))
def test_words_before_each_sentence_are_those_the_boundary_walk_counts(text):
    # The sentence strategy packs sentences by one bisect of these sums; on word marks
    # every sentence is counted up front, from where the words end and the quirk of
    # each start looked up in bulk.
    ends = sentence_ends(text)
    words = ReferenceWords(text)
    expected = [0, *accumulate(words.count(s, e) for s, e in zip([0, *ends[:-1]], ends))]
    assert _counter(text).words_before(ends) == expected
    assert _WordCounter(word_segmentation(text), len(text)).words_before(ends) == expected


@given(
    st.one_of(any_text, ascii_text, mixed_text, long_text, structured_text, multilingual_text),
    st.data(),
)
def test_counts_of_consecutive_spans_equal_the_boundary_walk(text, data):
    # The sentence and recursive strategies count all their spans in one call: word
    # ends and the quirk of each span's start are looked up in bulk, the rare
    # ambiguous spots one at a time. On ICU's segments (the counter of mostly non-ASCII
    # text, taken here for any text) the counts are prefix sums of the word flags.
    cuts = sorted(data.draw(st.lists(st.integers(0, len(text)), min_size=1, max_size=30)))
    start, ends = cuts[0], cuts[1:]
    words = ReferenceWords(text)
    expected = [words.count(s, e) for s, e in zip([start, *ends], ends)]
    assert _counter(text).counts(ends, start) == expected
    assert _WordCounter(word_segmentation(text), len(text)).counts(ends, start) == expected


@given(st.one_of(structured_text, multilingual_text, any_text, mixed_text), st.data())
def test_icu_segments_a_span_between_edges_as_it_segments_the_text_there(text, data):
    edges = [i for i in range(len(text) + 1) if _edge(text, i)]
    start, end = sorted(data.draw(st.lists(st.sampled_from(edges), min_size=2, max_size=2)))
    whole = [(b - start, s) for b, s in word_status(text) if start < b <= end]
    assert word_status(text[start:end]) == whole


@given(st.one_of(structured_text, long_text, multilingual_text, mixed_text), st.data())
def test_a_counter_cut_at_edges_counts_as_the_counter_of_that_span(text, data):
    # The recursive strategy's last resort chunks a span between two edges (line
    # feeds, the text's ends) with the words of the whole text's marks or segments,
    # not segmenting the span again.
    edges = [i for i in range(len(text) + 1) if _edge(text, i)]
    start, end = sorted(data.draw(st.lists(st.sampled_from(edges), min_size=2, max_size=2)))
    assume(start < end)
    part = text[start:end]
    cuts = sorted(data.draw(st.lists(st.integers(0, len(part)), min_size=1, max_size=20)))
    words = ReferenceWords(part)
    expected = [words.count(s, e) for s, e in zip([0, *cuts], cuts)]
    for counter in [_counter(text), _WordCounter(word_segmentation(text), len(text))]:
        within = counter.within(start, end)
        assert within.counts(cuts) == expected
        assert _sentence_spans(part, 10, False, within) == _sentence_spans(part, 10, False)


@given(
    long_ascii_text,
    st.lists(st.tuples(st.integers(0), st.sampled_from("\u2014é中。\u201d\u2029🙂")), max_size=3),
    st.data(),
)
def test_a_counter_cut_at_edges_gives_the_span_its_characters_beyond_ascii(text, wide, data):
    # Few enough of them that the span's sentences are found without ICU, from the
    # characters beyond ASCII the counter hands on: where they are in the span.
    for at, char in wide:
        at %= len(text) + 1
        text = text[:at] + char + text[at:]
    counter = _counter(text)
    assume(isinstance(counter, _MarkedCounter))
    edges = [i for i in range(len(text) + 1) if _edge(text, i)]
    start, end = sorted(data.draw(st.lists(st.sampled_from(edges), min_size=2, max_size=2)))
    part = text[start:end]
    within = counter.within(start, end)
    if within.non_ascii is not None:
        replaced = part.encode("ascii", "replace")
        assert within.non_ascii == NonAscii(replaced, non_ascii_runs(part, replaced))
    assert sentence_end_array(part, within.non_ascii).tolist() == icu_sentence_ends(part)
    assert _sentence_spans(part, 10, False, within) == _sentence_spans(part, 10, False)


# --- the recursive strategy (invariants of Elasticsearch's RecursiveChunker) -----------


@given(st.one_of(long_text, structured_text, any_text, mixed_text), recursive_settings())
def test_recursive_strategy_equals_the_boundary_walk(text, settings):
    assert chunk_offsets(text, settings) == reference_recursive_chunks(
        text, settings.max_chunk_size, settings.separators
    )


@given(st.one_of(long_text, structured_text, multilingual_text, any_text), recursive_settings())
def test_recursive_chunks_cover_the_text_in_document_order(text, settings):
    # Splitting tiles a span; merging joins neighbours; the sentence strategy, last
    # resort, covers its span from start to end with increasing starts.
    chunks = chunk_offsets(text, settings)
    assert chunks[0][0] == 0 and chunks[-1][1] == len(text)
    for (start, end), (next_start, next_end) in pairwise(chunks):
        assert start < next_start <= end <= next_end


@given(st.one_of(long_text, structured_text, multilingual_text), recursive_settings())
def test_no_recursive_chunk_holds_more_than_max_words(text, settings):
    spans = word_spans(text)
    for c in chunk_text(text, settings):
        assert len(words_inside(spans, c.start, c.end)) <= settings.max_chunk_size


@given(st.one_of(long_text, structured_text, multilingual_text), recursive_settings())
def test_a_text_of_at_most_max_words_is_one_recursive_chunk(text, settings):
    if len(word_spans(text)) <= settings.max_chunk_size:
        assert chunk_offsets(text, settings) == [(0, len(text))]


@given(st.one_of(long_text, structured_text, multilingual_text), st.integers(20, 40))
def test_with_no_separator_match_the_recursive_strategy_is_the_sentence_strategy(text, size):
    recursive = {"strategy": "recursive", "max_chunk_size": size, "separators": ["(?!)"]}
    sentence = {"strategy": "sentence", "max_chunk_size": size, "sentence_overlap": 0}
    if len(word_spans(text)) > size:
        assert chunk_offsets(text, recursive) == chunk_offsets(text, sentence)

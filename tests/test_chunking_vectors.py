"""Golden vectors: the chunks Elasticsearch's chunkers give (SPEC A6, and Elasticsearch 9.4's own)."""

import json
from itertools import accumulate
from pathlib import Path

import pytest

from hf_endpoint import Chunk, chunk_offsets, chunk_text
from hf_endpoint.chunking._strategies import _word_spans


def word(text, size, overlap):
    return [(s.start, s.end) for s in _word_spans(text, size, overlap)]


def numbers(n, sep=" "):
    return sep.join(str(i) for i in range(n))


def sentence_of(n, i):
    return f"SStart{i} " + " ".join(str(k) for k in range(1, n)) + ". "


def sentences(*lengths):
    return "".join(sentence_of(n, i) for i, n in enumerate(lengths))


def sentence(text, max_words, overlap):
    return chunk_offsets(
        text, {"strategy": "sentence", "max_chunk_size": max_words, "sentence_overlap": overlap}
    )


def test_word_size_one_splits_at_every_word():
    assert word("Comma, separated", 1, 0) == [(0, 5), (5, 16)]
    text = "Won't you chunk"
    assert [text[s:e] for s, e in word(text, 1, 0)] == ["Won't", " you", " chunk"]


def test_word_size_larger_than_text_gives_one_chunk():
    assert chunk_text(
        "Won't you chunk", {"strategy": "word", "max_chunk_size": 10, "overlap": 5}
    ) == [Chunk("Won't you chunk", 0, 15)]


def test_word_overlap_windows_over_numbers():
    assert word(numbers(25), 10, 4) == [(0, 19), (11, 37), (25, 55), (43, 64)]


def test_word_trailing_text_after_last_full_chunk_is_in_no_chunk():
    text = "".join(f"{i} " for i in range(20))
    assert len(text) == 50
    assert word(text, 10, 0) == [(0, 19), (19, 49)]


def test_word_partial_last_chunk_runs_to_end():
    text = "".join(f"{i} " for i in range(11))
    assert word(text, 10, 5) == [(0, 19), (9, 23)]


def test_word_small_examples():
    assert word("one two three four.", 3, 1) == [(0, 13), (7, 19)]
    assert word("Hello, world! How are you?", 2, 1) == [(0, 12), (5, 17), (12, 21), (17, 25)]


@pytest.mark.parametrize("size,overlap", [(20, 10), (10, 4), (15, 3)])
@pytest.mark.parametrize("n", range(4, 121))
def test_word_chunks_of_numbers_hold_the_expected_numbers(n, size, overlap):
    text = numbers(n)
    step = size - overlap
    expected = []
    k = 0
    while True:
        first, last = k * step, min(k * step + size, n) - 1
        expected.append((" " if k else "") + " ".join(str(i) for i in range(first, last + 1)))
        if last == n - 1:
            break
        k += 1
    assert [
        c.text
        for c in chunk_text(text, {"strategy": "word", "max_chunk_size": size, "overlap": overlap})
    ] == expected


def test_sentence_packing_with_and_without_overlap():
    text = sentences(15, 30, 20, 5)
    assert sentence(text, 40, 1) == [(0, 42), (0, 112), (59, 129), (68, 186), (129, 203)]
    assert sentence(text, 40, 0) == [(0, 42), (42, 129), (129, 203)]


@pytest.mark.parametrize("max_words", [25, 20])
def test_sentence_three_equal_sentences(max_words):
    text = sentences(10, 10, 10)
    assert sentence(text, max_words, 0) == [(0, 54), (54, 81)]
    assert sentence(text, max_words, 1) == [(0, 54), (27, 81)]


def test_sentence_longer_than_max_is_split_on_words():
    text = sentences(5, 30)
    assert sentence(text, 20, 0) == [(0, 17), (17, 72), (45, 104)]
    assert sentence(text, 20, 1) == [(0, 17), (0, 57), (34, 90), (63, 104)]


def test_sentence_overlap_cut_when_previous_sentence_is_long():
    assert sentence(sentences(10, 5, 30), 20, 1) == [(0, 44), (26, 84), (61, 117), (90, 131)]
    assert sentence(sentences(10, 15), 20, 1) == [(0, 27), (0, 52), (34, 69)]


@pytest.mark.parametrize("text", ["   ", ". ", " , ", "b", "   b"])
def test_sentence_text_without_enough_words_is_one_chunk(text):
    assert sentence(text, 20, 1) == [(0, len(text))]


@pytest.mark.parametrize("strategy", ["sentence", "word", "none"])
def test_empty_text_is_one_empty_chunk(strategy):
    assert chunk_text("", {"strategy": strategy}) == [Chunk("", 0, 0)]


def test_default_settings_are_sentence_250_with_overlap():
    text = sentences(*([100] * 4))
    assert chunk_offsets(text) == sentence(text, 250, 1)
    assert chunk_offsets(text, None) == chunk_offsets(text, {})


def test_none_strategy_is_the_whole_text():
    text = sentences(300, 300)
    assert chunk_text(text, {"strategy": "none"}) == [Chunk(text, 0, len(text))]


def test_count_words_counts_previous_word_after_bare_line_feed():
    # "Hello world\nNext line here." counts 2 then 4 words (SPEC A5 parity quirk).
    from hf_endpoint.chunking._segment import word_segmentation
    from hf_endpoint.chunking._strategies import _WordCounter

    text = "Hello world\nNext line here."
    counter = _WordCounter(word_segmentation(text), len(text))
    assert counter.count(0, 12) == 2
    assert counter.count(12, len(text)) == 4


def test_a_word_joined_to_an_emoji_is_no_word():
    # ICU gives ``ten\u200d🙂`` the rule status 0 (rule WB3c), so Elasticsearch counts 10 words.
    text = "one two three four five six seven eight nine ten\u200d🙂 eleven"
    assert word(text, 10, 1) == [(0, 57)]
    text = "a b c d e f g h i j k l m n o p q r s t\u200d🙂. End."
    assert sentence(text, 20, 0) == [(0, 47)]
    assert sentence(text, 20, 1) == [(0, 47)]


# Offsets from Elasticsearch 9.4's RecursiveChunker, WordBoundaryChunker and
# SentenceBoundaryChunker run unchanged (tests/data/README.md).
def golden_rows(name):
    # Split on line feeds only: JSON strings may hold U+2028 and other line breaks raw.
    lines = (Path(__file__).parent / "data" / name).read_text("utf-8").split("\n")
    return [json.loads(line) for line in lines if line]


ES94 = golden_rows("es94_public.jsonl")
ES_WORD_SENTENCE = golden_rows("es_word_sentence_public.jsonl")


def test_the_elasticsearch_9_4_vectors_are_all_there():
    strategies = [row["chunking_settings"]["strategy"] for row in ES94]
    assert len(ES94) == 125 and strategies.count("recursive") == 120


@pytest.mark.parametrize("row", ES94, ids=[f"es94-{i}" for i in range(len(ES94))])
def test_elasticsearch_9_4_vectors(row):
    expected = [tuple(chunk) for chunk in row["chunks"]]
    assert chunk_offsets(row["text"], row["chunking_settings"]) == expected


def test_the_word_and_sentence_vectors_are_all_there():
    strategies = [row["chunking_settings"]["strategy"] for row in ES_WORD_SENTENCE]
    assert strategies.count("word") == 180 and strategies.count("sentence") == 180
    assert sum(len(row["chunks"]) > 1 for row in ES_WORD_SENTENCE) == 300


@pytest.mark.parametrize(
    "row", ES_WORD_SENTENCE, ids=[f"es-word-sentence-{i}" for i in range(len(ES_WORD_SENTENCE))]
)
def test_elasticsearch_word_and_sentence_vectors(row):
    expected = [tuple(chunk) for chunk in row["chunks"]]
    assert chunk_offsets(row["text"], row["chunking_settings"]) == expected


MARKDOWN = (
    "# Title\n\nIntro paragraph with some words in it. Another sentence here.\n\n"
    "## Section A\n\nText of section A goes on for a while with many words to fill the chunk.\n"
    "A second line.\n\n## Section B\n\nShort.\n"
)


@pytest.mark.parametrize(
    "settings,expected",
    [
        (
            {"strategy": "recursive", "max_chunk_size": 10, "separator_group": "markdown"},
            [(0, 48), (48, 71), (71, 86), (86, 128), (111, 159), (159, 174), (174, 196)],
        ),
        (
            {"strategy": "recursive", "max_chunk_size": 10},
            [(0, 7), (7, 70), (70, 84), (84, 128), (111, 158), (158, 173), (173, 196)],
        ),
        (
            {"strategy": "recursive", "max_chunk_size": 20, "separators": ["\n\n", "\n"]},
            [(0, 84), (84, 173), (173, 196)],
        ),
        ({"strategy": "none"}, [(0, 196)]),
    ],
)
def test_recursive_strategy_on_a_markdown_document(settings, expected):
    assert len(MARKDOWN) == 196
    assert chunk_offsets(MARKDOWN, settings) == expected


@pytest.mark.parametrize("group", ["plaintext", "markdown"])
def test_recursive_empty_text_is_one_empty_chunk(group):
    settings = {"strategy": "recursive", "max_chunk_size": 10, "separator_group": group}
    assert chunk_text("", settings) == [Chunk("", 0, 0)]


def test_recursive_text_that_fits_is_one_chunk():
    text = "one two three\n\nfour five six seven eight nine ten"
    assert chunk_offsets(text, {"strategy": "recursive", "max_chunk_size": 10}) == [(0, len(text))]


# Elasticsearch's RecursiveChunkerTests, with their random choices fixed.
TEN = "This is a test sentence that has ten total words. "


def joined(*separators):
    return TEN + "".join(separator + TEN for separator in separators)


def recursive(text, size, separators):
    return chunk_offsets(
        text, {"strategy": "recursive", "max_chunk_size": size, "separators": separators}
    )


@pytest.mark.parametrize("separators", [["\n", "\f"], ["\t", "#", "\n"], ["#", "\t"]])
def test_recursive_chunker_cases_of_elasticsearch(separators):
    first, second = separators[0], separators[1]
    n = len(TEN)
    assert recursive("", 10, separators) == [(0, 0)]
    assert recursive("x", 10, separators) == [(0, 1)]
    text = joined(first)  # one split, no merge
    assert recursive(text, 10, separators) == [(0, n), (n, len(text))]
    text = joined(first, first)  # one split, two pieces merged
    assert recursive(text, 20, separators) == [
        (0, 2 * n + len(first)),
        (2 * n + len(first), len(text)),
    ]
    text = joined(second, first, second)  # several splits without merges
    ends = [n, 2 * n + len(second), 3 * n + len(first) + len(second)]
    assert recursive(text, 15, separators) == list(zip([0, *ends], [*ends, len(text)]))
    assert recursive(text, 25, separators) == [(0, ends[1]), (ends[1], len(text))]
    text = joined("", first, "")  # no separator left: the sentence strategy
    ends = [n, 2 * n, 3 * n + len(first)]
    assert recursive(text, 10, separators) == list(zip([0, *ends], [*ends, len(text)]))


def test_recursive_stops_splitting_a_piece_that_fits():
    separators = ["\n", "\f", "\t"]
    text = joined("\f", "\n", "\t", "\f")
    n = len(TEN)
    first_end, second_end = 2 * n + 1, 4 * n + 3
    assert recursive(text, 25, separators) == [
        (0, first_end),
        (first_end, second_end),
        (second_end, len(text)),
    ]


def test_recursive_with_regex_separators():
    text = joined("\n", "\n", "\n\n")
    n = len(TEN)
    ends = [n, 2 * n + 1, 3 * n + 2]
    separators = ["(?<!\\n)\\n(?!\\n)", "(?<!\\n)\\n\\n(?!\\n)"]
    assert recursive(text, 10, separators) == list(zip([0, *ends], [*ends, len(text)]))


def test_recursive_markdown_headers_each_start_a_chunk():
    headers = ["# Header\n", "## Header\n", "### Header\n", "#### Header\n", "##### Header\n"]
    headers += ["###### Header\n", "Header\n-\n", "Header\n=\n"]
    pieces = [headers[0] + TEN] + ["\n" + header + TEN for header in headers[1:] * 3]
    text = "".join(pieces)
    ends = list(accumulate(len(piece) for piece in pieces))
    assert chunk_offsets(
        text, {"strategy": "recursive", "max_chunk_size": 15, "separator_group": "markdown"}
    ) == list(zip([0, *ends[:-1]], ends))


def test_recursive_with_fifty_separators_that_never_match():
    text = joined("")
    separators = [f"NON_MATCHING_SEPARATOR_{i}" for i in range(50)]
    assert recursive(text, 10, separators) == [(0, len(TEN)), (len(TEN), len(text))]


def test_recursive_chunks_keep_document_order_across_depths():
    separators = [f"NON_MATCHING_A_{i}" for i in range(10)] + ["\n"]
    separators += [f"NON_MATCHING_B_{i}" for i in range(10)] + ["\t"]
    separators += [f"NON_MATCHING_C_{i}" for i in range(10)]
    text = joined("\t", "\n")
    n = len(TEN)
    assert recursive(text, 10, separators) == [(0, n), (n, 2 * n + 1), (2 * n + 1, len(text))]

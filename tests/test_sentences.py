"""ICU's sentence boundaries without ICU: the rule table equals ICU 77's sentence iterator."""

from itertools import product

import pytest
from hypothesis import given
from hypothesis import strategies as st

from hf_endpoint.chunking import _sentences
from hf_endpoint.chunking._segment import icu_sentence_ends
from hf_endpoint.chunking._sentences import sentence_end_array, sentence_ends

from .strategies import any_text, ascii_text, long_text, mixed_text, structured_text

# One ASCII character of each sentence-break class ASCII has: CR, LF, Sp, Lower,
# Upper, Numeric, ATerm, STerm, Close, SContinue, and the rest (Other).
ASCII_CLASSES = "\r\n bB5.!),#"
# One character of each class beyond ASCII that the table answers: Sep (two of them),
# Lower, Upper, Numeric, ATerm, STerm, Close, SContinue, OLetter, and Other (astral).
WIDE_CLASSES = "\u0085\u2029ñÑ٣\u2024。\u201d\u2014中🙂"
# And what the table leaves to ICU: Extend, Format, a joiner, a lone surrogate.
ICU_ONLY = "\u00ad\u0301\u200d\ud800"


def padded(text):
    """``text`` after a line of ASCII long enough that the table answers for it."""
    wide = sum(not c.isascii() for c in text)
    return "y" * (64 * wide) + "\n" + text


def test_every_sequence_of_six_ascii_classes_breaks_where_icu_breaks():
    # 11**6 sequences, each between line feeds, in one text: a line feed breaks after
    # itself and no rule looks across it, so each is segmented as if alone. The
    # text's end is the other neighbour a sequence can have: up to four, alone.
    text = "\n".join("".join(chars) for chars in product(ASCII_CLASSES, repeat=6))
    assert _sentences._codes(text) is not None  # not handed to ICU
    assert sentence_ends(text) == icu_sentence_ends(text)
    for length in range(1, 5):
        for chars in product(ASCII_CLASSES, repeat=length):
            alone = "".join(chars)
            assert sentence_ends(alone) == icu_sentence_ends(alone), alone


def test_every_sequence_of_four_classes_beyond_ascii_too_breaks_where_icu_breaks():
    text = padded("\n".join("".join(c) for c in product(ASCII_CLASSES + WIDE_CLASSES, repeat=4)))
    assert _sentences._codes(text) is not None
    assert sentence_ends(text) == icu_sentence_ends(text)
    for chars in product(ASCII_CLASSES + WIDE_CLASSES, repeat=3):
        alone = padded("".join(chars))
        assert sentence_ends(alone) == icu_sentence_ends(alone), alone


@given(st.text(ASCII_CLASSES + WIDE_CLASSES + ICU_ONLY, max_size=40))
def test_text_of_every_class_breaks_where_icu_breaks(text):
    text = padded(text)
    if not any(c in ICU_ONLY for c in text):
        assert _sentences._codes(text) is not None
    assert sentence_ends(text) == icu_sentence_ends(text)


@given(st.one_of(any_text, ascii_text, mixed_text, long_text, structured_text))
def test_any_text_breaks_where_icu_breaks(text):
    assert sentence_ends(text) == icu_sentence_ends(text)


@pytest.mark.parametrize(
    ("text", "sentences"),
    [
        ("Mr. Smith went. Then\nhe left.  ", ["Mr. ", "Smith went. ", "Then\n", "he left.  "]),
        ("It is 3.5 m. Fine.", ["It is 3.5 m. ", "Fine."]),  # SB6, then a break
        ("U.S. Army. etc. and so", ["U.S. ", "Army. etc. and so"]),  # SB7, SB8
        ("U.S.A. is. e.g. this", ["U.S.A. is. e.g. this"]),  # a lower case letter next
        ('"Stop!" she said. "Go?"\r\nYes', ['"Stop!" ', "she said. ", '"Go?"\r\n', "Yes"]),
        ("Wait... (really?) No.)  Then", ["Wait... (really?) ", "No.)  ", "Then"]),
        (
            "One. \u2014 two; three! \u201cFour.\u201d Five",
            ["One. \u2014 two; three! ", "\u201cFour.\u201d ", "Five"],
        ),
        ("a.\u2029b. \u0085c. 中文。Next", ["a.\u2029", "b. \u0085", "c. ", "中文。", "Next"]),
    ],
)
def test_sentences_of_plain_examples(text, sentences):
    # Each on a line of its own after enough ASCII that the table answers for it.
    text = padded(text)
    start = text.index("\n") + 1
    assert _sentences._codes(text) is not None
    ends = sentence_ends(text)
    assert ends == icu_sentence_ends(text)
    assert [text[a:b] for a, b in zip([start, *ends[1:]], ends[1:])] == sentences


def test_text_with_extend_or_format_characters_or_surrogates_is_left_to_icu(monkeypatch):
    asked = []

    def icu(text):
        asked.append(text)
        return icu_sentence_ends(text)

    monkeypatch.setattr(_sentences, "icu_sentence_ends", icu)
    for text in ["Ok. So\u00ad it. Is", "Cafe\u0301. Yes", "A. \ud83d. B", "中文。很好。" * 3]:
        assert sentence_end_array(text).tolist() == icu_sentence_ends(text)
    assert len(asked) == 4
    mixed = "With \u2014 dashes. " + "Plain words. " * 20 + "And \u201cquotes.\u201d Yes"
    for text in ["Plain. Text", mixed]:
        assert sentence_end_array(text).tolist() == icu_sentence_ends(text)
    assert len(asked) == 4  # the table answered those


def test_empty_text_has_no_sentence():
    assert sentence_ends("") == []

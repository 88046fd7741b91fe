"""ICU word segmentation: the fast word flags equal ICU's rule statuses."""

import sys
from itertools import product

import pytest
from hypothesis import given
from hypothesis import strategies as st

from hf_endpoint.chunking._segment import (
    word_ends,
    word_segmentation,
    word_status,
)
from hf_endpoint.chunking._sentences import sentence_ends

from .strategies import any_text, ascii_text, mixed_text, zwj_text


def words(text):
    ends = set(word_ends(text))
    seg = word_segmentation(text)
    return [text[a:b] for a, b in zip(seg.boundaries, seg.boundaries[1:]) if b in ends]


def flags_agree_with_icu(text):
    seg = word_segmentation(text)
    fast = list(zip(seg.boundaries[1:], seg.is_word[1:]))
    slow = [(end, int(status != 0)) for end, status in word_status(text)]
    return fast == slow


@pytest.mark.parametrize(
    "text,expected",
    [
        ("Won't 3.14 1,000 U.S.A", ["Won't", "3.14", "1,000", "U.S.A"]),
        ("ice-box m&s", ["ice", "box", "m", "s"]),
        ("日本語の", ["日本語", "の"]),
        ("hello 👍🏽 world!", ["hello", "world"]),
        ("_ __ _a", ["__", "_a"]),
        ("   ...   ", []),
        ("ten\u200d🙂 eleven", ["eleven"]),
        ("2\u200d❤ x", ["x"]),
        ("中\u200d🙂文字", ["文字"]),
        ("a\u200dx 🙂\u200dⓂ", ["a\u200dx", "🙂\u200dⓂ"]),
    ],
)
def test_what_icu_counts_as_a_word(text, expected):
    assert words(text) == expected


CONTEXTS = [
    lambda c: " " + c + " ",
    lambda c: " " + c + "a",
    lambda c: " " + c + c + " ",
    lambda c: "." + c + "1",
    lambda c: "x" + c + "\u3042",
    lambda c: "\u3042 " + c + "\u4e00",
    lambda c: " " + c + "\u3005 ",
    lambda c: c + "\u30fc" + c,
    # Zero width joiners (rule WB3c) after and before letters, digits, CJK and emoji.
    lambda c: " a\u200d" + c + " 7\u200d" + c + " ",
    lambda c: "\u6771\u4eac\u200d" + c + "\u90fd ",
    lambda c: " \U0001f642\u200d" + c + " ",
    lambda c: " " + c + "\u200d\U0001f642 \u3042" + c + "\u200d\u2764\u3044 ",
]


@pytest.mark.parametrize("context", range(len(CONTEXTS)))
def test_word_flags_match_icu_for_every_code_point(context):
    wrap = CONTEXTS[context]
    code_points = [c for c in range(sys.maxunicode + 1) if not 0xD800 <= c <= 0xDFFF]
    for lo in range(0, len(code_points), 100_000):
        text = "".join(wrap(chr(c)) for c in code_points[lo : lo + 100_000])
        assert flags_agree_with_icu(text), f"code points from U+{code_points[lo]:04X}"


def test_a_dictionary_run_ending_in_a_joined_emoji_is_no_word():
    # ICU gives the whole run the status of its last rule, WB3c's (none).
    text = "東京都日本語\u200d🙂の中文字"
    assert words(text) == ["の", "中", "文字"]
    assert flags_agree_with_icu(text)


@pytest.mark.parametrize("text", ["กแดภพ0\u200d🆎", "㐀一ァ_\u200c", "คน1.5\u200d🙂"])
def test_a_chain_of_dictionary_letters_digits_and_underscore_before_a_spot_is_asked(text):
    # ICU's rules chain Thai or Han onto a digit or a Katakana _ and on to the joiner
    # (or the lone Extend) at the end: no segment of the chain is a word.
    assert flags_agree_with_icu(text)


@given(zwj_text)
def test_word_flags_of_zero_width_joiner_sequences_equal_icu(text):
    assert flags_agree_with_icu(text)
    assert word_ends(text) == word_segmentation(text).word_ends()


def test_offsets_are_code_points_beyond_the_bmp():
    text = "😀 héllo 𝒳y 😀"
    seg = word_segmentation(text)
    assert [text[a:b] for a, b in zip(seg.boundaries, seg.boundaries[1:])] == [
        "😀",
        " ",
        "héllo",
        " ",
        "𝒳y",
        " ",
        "😀",
    ]
    assert flags_agree_with_icu(text)


def test_lone_surrogates_and_nul_keep_offsets():
    text = "ab\ud800cd\x00ef \udfff"
    seg = word_segmentation(text)
    assert seg.boundaries[-1] == len(text)
    assert flags_agree_with_icu(text)


def test_sentence_ends_include_trailing_spaces_and_line_feeds():
    text = "Mr. Smith went. Then\nhe left.  "
    assert [text[a:b] for a, b in zip([0, *sentence_ends(text)], sentence_ends(text))] == [
        "Mr. ",
        "Smith went. ",
        "Then\n",
        "he left.  ",
    ]


# --- the ASCII path -----------------------------------------------------------

# One ASCII character of every word-break class, and the classes of the joins.
ASCII_CLASSES = ["a", "7", "_", ".", "'", ",", ";", ":", " ", "\n", "\r", "-", '"', "\x0b", "\x00"]


def test_ascii_word_ends_equal_icu_on_every_five_class_sequence():
    sequences = ["".join(p) for p in product(ASCII_CLASSES, repeat=5)]
    for lo in range(0, len(sequences), 50_000):
        # A NUL between sequences is a break on both sides, so each is seen alone.
        text = "\x00".join(sequences[lo : lo + 50_000])
        assert word_ends(text) == word_segmentation(text).word_ends()


@given(ascii_text)
def test_ascii_word_ends_equal_icu(text):
    assert text.isascii()
    assert word_ends(text) == word_segmentation(text).word_ends()


@given(st.one_of(mixed_text, any_text))
def test_word_ends_of_mixed_text_equal_icu(text):
    """ASCII stretches by the ASCII rules, the spans around other characters by ICU."""
    assert word_ends(text) == word_segmentation(text).word_ends()

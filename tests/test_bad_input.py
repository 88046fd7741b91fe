"""Bad and extreme input: clear errors naming the argument, exact offsets, no blow-up."""

import pytest

from hf_endpoint import ChunkingSettings, ConfigError, chunk_offsets, chunk_text


@pytest.mark.parametrize("text", [None, 42, b"bytes", ["a list"]])
def test_non_string_text_is_a_type_error_naming_text(text):
    with pytest.raises(TypeError, match=r"^text must be a str, not "):
        chunk_text(text)


@pytest.mark.parametrize("settings", ["word", 250, ["word"]])
def test_settings_of_the_wrong_type_are_a_type_error_naming_settings(settings):
    with pytest.raises(TypeError, match=r"^settings must be a ChunkingSettings, a mapping or None"):
        chunk_text("text", settings)


def test_invalid_settings_map_is_a_config_error():
    with pytest.raises(
        ConfigError, match=r"\[max_chunk_size\] must be greater than or equal to \[10\]"
    ):
        chunk_text("text", {"strategy": "word", "max_chunk_size": 1})


@pytest.mark.parametrize("strategy", ["word", "sentence"])
def test_lone_surrogates_and_nul_are_chunked_with_exact_offsets(strategy):
    text = ("alpha \ud800 beta\x00gamma. \udfff delta " * 40) + "\ud83d"
    chunks = chunk_text(text, {"strategy": strategy, "max_chunk_size": 20})
    assert len(chunks) > 1
    assert all(text[c.start : c.end] == c.text for c in chunks)


@pytest.mark.parametrize("strategy", ["word", "sentence"])
def test_one_megabyte_word(strategy):
    text = "start " + "x" * 1_000_000 + " end."
    chunks = chunk_text(text, ChunkingSettings(strategy=strategy, max_chunk_size=20))
    assert [c.text for c in chunks] == [text]


def test_fifty_megabytes_of_text():
    text = "lorem ipsum dolor sit amet. " * (50_000_000 // 28)
    offsets = chunk_offsets(text, {"strategy": "word", "max_chunk_size": 250, "overlap": 50})
    words = 5 * (50_000_000 // 28)
    assert len(offsets) == -(-(words - 250) // 200) + 1
    assert offsets[0][0] == 0 and offsets[-1][1] == len(text)


def test_one_sentence_of_a_hundred_thousand_words():
    text = "word " * 100_000
    offsets = chunk_offsets(text, {"strategy": "sentence", "max_chunk_size": 300})
    assert len(offsets) > 300
    assert offsets[-1][1] == len(text)

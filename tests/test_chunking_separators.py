"""Separators of the recursive strategy: Java's regex meaning, Java's find loop, the read limit.

The expected matches follow java.util.regex's documented rules (Pattern and
Matcher, compiled with MULTILINE as Elasticsearch compiles separators); the
comments say where Python's ``re`` would answer differently.
"""

import dataclasses
import itertools
import re
import time
import types
from concurrent.futures import ThreadPoolExecutor

import pytest
from hypothesis import given
from hypothesis import strategies as st

from hf_endpoint import ConfigError, EmbeddingClient, chunk_offsets
from hf_endpoint.chunking._java_regex import JavaRegexError, translate
from hf_endpoint.chunking._recursive import (
    SEPARATOR_GROUPS,
    TextSplits,
    compile_separator,
    split_starts,
)
from hf_endpoint.server import LocalEndpoint


def starts(separator, text, start=0, end=None):
    end = len(text) if end is None else end
    return split_starts(text, start, end, compile_separator(separator))


@pytest.mark.parametrize(
    "separator,text,expected",
    [
        # . stops at every Java line terminator (re: only at \n).
        ("a.b", "a\rb a\u2028b a\x85b axb", [12]),
        ("(?s)a.", "a\n", [0]),
        ("(?d)a.", "a\r", [0]),
        # ^ after any line terminator, \r\n as one, never at the very end (re: after \n, and at the end).
        ("^x", "x\rx\r\nx\u2028x\x85x", [0, 2, 5, 7, 9]),
        ("^", "a\r\nb\n", [0, 3]),
        ("(?d)^x", "x\rx\nx", [0, 4]),
        ("(?-m)^x", "x\nx", [0]),
        # $ before any line terminator, not between \r and \n.
        ("$", "a\r\nb\n", [1, 4, 5]),
        ("\\Z", "ab\r\n", [2, 4]),
        ("\\z", "ab\n", [3]),
        # \d, \s, \w are ASCII (re: Unicode); \h and \v as Java defines them.
        ("\\d+", "7 \u0663 \uff17", [0]),
        ("\\s", "a\u00a0b c", [3]),
        ("\\h", "a\u00a0b c", [1, 3]),
        ("\\v", "a\x85b\u2028", [1, 3]),
        ("\\w+", "h\u00e9llo", [0, 2]),
        ("\\R", "a\r\nb\u2028c\rd", [1, 4, 6]),
        # Escapes read as Java reads them.
        ("\\0101\\x42\\u0043\\x{44}", "xxABCD", [2]),
        ("\\uD83D\\uDE00", "a\U0001f600", [1]),
        ("\\Q.*\\E", "a.*b", [1]),
        ("\\cJ", "a\nb", [1]),
        ("\\e\\a", "x\x1b\x07", [1]),
        ("\\N{EM DASH}", "a\u2014b", [1]),
        # Java takes a second digit only while it names a group: \10 is \1 then 0.
        ("(a)\\10", "aa0 a0", [0]),
        ("(?<q>[\"'])x\\k<q>", '\'x" "x"', [4]),
        # Properties: categories, scripts, and POSIX classes that are ASCII in Java.
        ("\\p{IsLatin}", "\u03a9a", [1]),
        ("\\p{Lu}", "a\u00c9", [1]),
        ("\\p{IsLu}\\p{gc=Ll}", "\u00c9\u00e9", [0]),
        ("\\p{sc=Han}", "a\u4e2d", [1]),
        ("\\p{Alpha}", "\u00e9a", [1]),
        ("\\pL", "1\u00e9", [1]),
        ("[^\\p{L}\\s]", "ab c!", [4]),
        ("[\\w&]", "\u00e9&", [1]),
        ("[]a]", "x]", [1]),
        ("[a-]", "x-", [1]),
        # Lookbehind of bounded length, possessive and lazy quantifiers, atomic groups.
        ("(?<=ab|c)d", "abd cd xd", [2, 5]),
        ("a++b", "aab", [0]),
        ("(?>a|ab)c", "abc ac", [4]),
        ("a{2,3}?", "aaaa", [0, 2]),
    ],
)
def test_java_meaning(separator, text, expected):
    assert starts(separator, text) == expected


def test_python_would_answer_differently():
    # The table above is not what re says: the translation matters.
    assert [m.start() for m in re.finditer("^", "a\r\nb\n", re.MULTILINE)] != [0, 3]
    assert [m.start() for m in re.finditer(r"\d+", "7 \u0663 \uff17")] != [0]


def test_after_an_empty_match_the_search_moves_on_one_character():
    # Matcher.find: the empty alternative wins at every position. re.finditer would
    # take "bc" at 1 after the empty match there and never look at 2.
    assert starts("|bc", "abc") == [0, 1, 2, 3]
    assert [m.start() for m in re.finditer("|bc", "abc")] == [0, 1, 1, 3]


def test_a_region_has_anchoring_opaque_bounds():
    assert starts("^b", "ab", 1) == [1]  # ^ matches at the region's start
    assert starts("(?<=a)b", "ab", 1) == []  # lookbehind does not see before it
    assert starts("a(?=b)", "ab", 0, 1) == []  # nor lookahead past its end
    assert starts("a$", "ab", 0, 1) == [0]


def test_dollar_looks_before_the_region_for_a_carriage_return():
    # Java tests the character before a \n with no regard to the region: no match
    # at the \n of a \r\n when the region starts between them.
    assert starts("$", "x\r\nabc", 2) == [6]
    assert starts("$", "x\n\nabc", 2) == [2, 6]


@pytest.mark.parametrize(
    "separator",
    ["(a", "a)", "a{", "*a", "a**", "[a", "\\y", "(?<=a+)b", "x{2,1}", "\\x4", "\\u12", "\\0"]
    + ["\\k<n>", "(?<1a>x)", "(?z)", "a{1", "[b-a]", "\\p{Foo}", "\\p{sc=Foo}", "[\\1]"],
)
def test_what_java_rejects_is_rejected(separator):
    with pytest.raises(JavaRegexError) as info:
        translate(separator)
    assert not info.value.unsupported


@pytest.mark.parametrize(
    "separator",
    ["(?i)a", "(?x)a b", "(?U)\\w", "\\bword", "\\Bx", "\\G", "\\X", "[a[b]]", "[a&&b]"]
    + ["\\p{InGreek}", "\\p{javaLowerCase}", "\\p{IsAlphabetic}", "(?=a)*", "\\2(a)(b)"]
    + ["(a\\1)", "[\\d-z]", "[\\Qa\\E]"],
)
def test_what_cannot_be_matched_as_java_does_is_refused(separator):
    with pytest.raises(JavaRegexError) as info:
        translate(separator)
    assert info.value.unsupported


def test_flags_that_are_off_may_be_turned_off():
    assert starts("(?-iux)a", "ba") == [1]


def test_the_groups_separators_compile():
    for separators in SEPARATOR_GROUPS.values():
        for separator in separators:
            compile_separator(separator)


def test_setext_headings_need_a_non_blank_line():
    underline = SEPARATOR_GROUPS["markdown"][6]
    assert starts(underline, "intro\nTitle\n---\nbody") == [5]
    assert starts(underline, "intro\n   \n---\nbody") == []


def test_a_separator_that_reads_too_much_fails_with_elasticsearchs_message():
    settings = {"strategy": "recursive", "max_chunk_size": 10, "separators": ["(a|aa)+$"]}
    text = "a" * 100 + "b " + "word " * 20
    with pytest.raises(ConfigError) as info:
        chunk_offsets(text, settings)
    assert info.value.errors == [
        "Chunk separator regex [(a|aa)+$] has exceeded the character read limit"
    ]


def test_a_split_over_its_budget_in_wall_time_only_is_timed_again_in_cpu_time(monkeypatch):
    # A search descheduled on a busy machine: wall time runs on, this thread's CPU time
    # does not. Here the wall clock jumps a minute at each reading; the split is then
    # timed again in the thread's CPU time, and gives its matches.
    from hf_endpoint.chunking import _recursive

    minutes = itertools.count(0.0, 60.0)
    clock = types.SimpleNamespace(perf_counter=lambda: next(minutes), thread_time=time.thread_time)
    monkeypatch.setattr(_recursive, "time", clock)
    text = "x1 " * 200
    assert starts("x[0-9]", text) == list(range(0, len(text), 3))
    assert next(minutes) > 60.0  # the wall clock was read


def test_threads_chunking_at_once_get_the_chunks_of_one_thread():
    # Compiled separators are shared, ICU iterators are per thread, and a separator's
    # time budget counts only its own searching, not the wait for the GIL.
    sections = [
        f"\n## Part {i}\n\n" + f"Words of part {i} go on here. " * (i % 40) for i in range(400)
    ]
    texts = ["# Title\n" + "".join(sections[k:]) for k in range(0, 400, 25)]
    settings = {"strategy": "recursive", "max_chunk_size": 30, "separator_group": "markdown"}
    expected = [chunk_offsets(t, settings) for t in texts]
    with ThreadPoolExecutor(max_workers=16) as pool:
        for _ in range(3):
            assert list(pool.map(lambda t: chunk_offsets(t, settings), texts)) == expected


def test_embed_chunks_takes_the_recursive_strategy():
    text = "# Title\n\nIntro words here.\n\n## Part\n\n" + "Many words in this part. " * 6
    settings = {"strategy": "recursive", "max_chunk_size": 10, "separator_group": "markdown"}
    with LocalEndpoint("hash") as endpoint, EmbeddingClient(endpoint.url) as client:
        (chunks,) = client.embed_chunks([text], settings)
    assert [(c.start, c.end) for c in chunks] == chunk_offsets(text, settings)
    assert all(c.text == text[c.start : c.end] and len(c.embedding) > 0 for c in chunks)


@given(
    st.text(alphabet="\n#-= a\r", max_size=80),
    st.text(alphabet="\n#-= a", min_size=1, max_size=4),
    st.data(),
)
def test_a_literal_separator_is_found_where_the_regex_finds_it(text, literal, data):
    # "\n## " and the like are searched with str.find: the same starts as Java's find loop.
    start = data.draw(st.integers(0, len(text)))
    end = data.draw(st.integers(start, len(text)))
    separator = compile_separator(literal)
    assert separator.literal == literal
    as_regex = dataclasses.replace(separator, literal=None)
    assert split_starts(text, start, end, separator) == split_starts(text, start, end, as_regex)


def test_a_separator_with_regex_syntax_is_no_literal():
    assert [compile_separator(s).literal for s in ("a.b", "\n#+ ", "a|b", "(a)", "a\\n")] == [
        None
    ] * 5


# Lines of a markdown text: headings, underlines, blank lines and lines with other terminators.
_LINES = st.lists(
    st.sampled_from(["a", "-", "-", "--", "=", "=", "", " ", "a-"])
    | st.text(alphabet="-= a\t\r\x85", max_size=3),
    min_size=4,
    max_size=30,
)


@given(_LINES, st.sampled_from(["\n", "\r\n", "\n\n"]), st.data())
def test_a_setext_heading_is_found_where_the_regex_finds_it(lines, line_feed, data):
    # The setext separators try their regex only before underlines: the same starts as a scan.
    text = line_feed.join(lines)
    start = data.draw(st.integers(0, len(text)) | st.just(0))
    end = data.draw(st.integers(start, len(text)) | st.just(len(text)))
    for source in SEPARATOR_GROUPS["markdown"][6:]:
        separator = compile_separator(source)
        assert separator.underline is not None
        scanned = dataclasses.replace(separator, underline=None)
        assert split_starts(text, start, end, separator) == split_starts(text, start, end, scanned)


@given(
    st.lists(st.sampled_from(["\n", "#", " ", "a", "\n# ", "\n## ", "\n### "]), max_size=30),
    st.data(),
)
def test_a_heading_is_found_where_a_search_of_the_span_finds_it(pieces, data):
    # The heading separators are looked for where the text holds "\n#", found once for
    # all the spans of the text.
    text = "".join(pieces)
    splits = TextSplits(text)
    for _ in range(3):
        start = data.draw(st.integers(0, len(text)) | st.just(0))
        end = data.draw(st.integers(start, len(text)) | st.just(len(text)))
        for source in SEPARATOR_GROUPS["markdown"][:6]:
            separator = compile_separator(source)
            assert separator.heading
            assert splits.split_starts(start, end, separator) == split_starts(
                text, start, end, separator
            )

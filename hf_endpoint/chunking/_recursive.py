"""The separators of Elasticsearch's ``recursive`` strategy: groups, compiling, bounded search.

A separator is a Java regular expression (see :mod:`._java_regex` for how it
is matched with Java's meaning). Elasticsearch splits a span of the text at
the start of every match of a separator found in that span, searched with
``Matcher.find`` over a region (anchoring, opaque bounds).

A pathological separator (catastrophic backtracking) must not hang
ingestion. Elasticsearch caps the characters a separator may read in one
split at a multiple of the text's length (``ReadLimitedCharSequence``) and
fails with "Chunk separator regex [R] has exceeded the character read
limit". No Python regex engine counts the characters it reads, and Python's
``re`` cannot be interrupted; the ``regex`` module can, with a timeout. So the
bound here is of the same kind, in time: the searches of a split may take
``_FIXED_SECONDS`` plus ``_SECONDS_PER_CHARACTER`` for every character of the
span they search, tens of times what the built-in separators need, and fail
with Elasticsearch's message beyond that. Unlike a count of characters, time
depends on the machine: on one so loaded that this process gets a small share
of a CPU, a search near the budget could fail where it would pass on an idle one.
"""

from __future__ import annotations

import time
from bisect import bisect_left, bisect_right
from dataclasses import dataclass
from functools import lru_cache

import regex

from ..errors import ConfigError
from ._java_regex import JavaRegexError, translate

__all__ = [
    "MAX_SEPARATORS",
    "SEPARATOR_GROUPS",
    "Separator",
    "TextSplits",
    "compile_separator",
    "separator_problem",
    "split_starts",
]

# Elasticsearch's SeparatorGroup, in its order; the strings are Java regexes.
SEPARATOR_GROUPS: dict[str, tuple[str, ...]] = {
    "plaintext": ("(?<!\\n)\\n\\n(?!\\n)", "(?<!\\n)\\n(?!\\n)"),
    "markdown": (
        "\n# ",
        "\n## ",
        "\n### ",
        "\n#### ",
        "\n##### ",
        "\n###### ",
        "\n^(?!\\s*$).*\\n-{1,}\\n",
        "\n^(?!\\s*$).*\\n={1,}\\n",
    ),
}
MAX_SEPARATORS = 50
_BUILT_IN = frozenset(source for group in SEPARATOR_GROUPS.values() for source in group)
# The setext headings of the markdown group, and the character each underlines with.
_UNDERLINES = {SEPARATOR_GROUPS["markdown"][6]: "-", SEPARATOR_GROUPS["markdown"][7]: "="}
# What the other headings of the markdown group ("\n# ", "\n## ", ...) begin with.
_HEADING = "\n#"

# The time budget of one split: see the module docstring. The built-in
# separators search the benchmark's markdown at 50+ million characters a second
# (under 0.02 microseconds a character), so the budget is 50 times what they need.
_FIXED_SECONDS = 0.25
_SECONDS_PER_CHARACTER = 1e-6


# Characters that stand for themselves in a Java regex wherever they are (outside a
# character class, without the COMMENTS flag, which Elasticsearch does not set).
_LITERAL = frozenset("\n\t #-,:;=!@%&'\"<>/~`_") | frozenset(
    "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789"
)


@dataclass(frozen=True)
class Separator:
    """A separator compiled with Java's meaning; ``after_cr`` for spans that start after a ``\\r``.

    ``literal``: the source itself when every character of it stands for itself
    (``"\\n## "``); its matches are then found with ``str.find``. ``timed``: whether
    its searches run under the time budget; all do but those of the built-in groups,
    which read each character a bounded number of times (the regex module checks
    its clock as it goes, which makes a search several times slower). ``underline``:
    for the setext headings of the markdown group, the character of their underline
    (their matches are then looked for only before underlines). ``heading``: for the
    other headings of the markdown group (see :class:`TextSplits`).
    """

    source: str
    pattern: regex.Pattern[str]
    after_cr: regex.Pattern[str]
    literal: str | None = None
    timed: bool = True
    underline: str | None = None
    heading: bool = False


@lru_cache(maxsize=256)
def compile_separator(source: str) -> Separator:
    """Compile a Java separator regex; raises :class:`JavaRegexError`."""
    text, depends = translate(source)
    try:
        pattern = regex.compile(text, regex.V0)
        after_cr = (
            regex.compile(translate(source, after_cr=True)[0], regex.V0) if depends else pattern
        )
    except regex.error as exc:  # a translation the engine refuses: a gap here, not the user's
        raise JavaRegexError(f"the regex engine refused it ({exc})", unsupported=True) from None
    literal = source if source and _LITERAL.issuperset(source) else None
    return Separator(
        source,
        pattern,
        after_cr,
        literal,
        timed=source not in _BUILT_IN,
        underline=_UNDERLINES.get(source),
        heading=literal is not None and source in _BUILT_IN and source.startswith(_HEADING),
    )


def separator_problem(source: str) -> str | None:
    """The settings error for a separator that cannot be used, else None."""
    try:
        compile_separator(source)
    except JavaRegexError as exc:
        if exc.unsupported:
            return (
                f"Chunk separator regex [{source}] cannot be matched as Elasticsearch matches it: "
                f"{exc.reason} is not supported"
            )
        return (
            f"Chunk separator regex [{source}] is not a valid Java regular expression: {exc.reason}"
        )
    return None


def split_starts(text: str, start: int, end: int, separator: Separator) -> list[int]:
    """Where matches of ``separator`` start in ``text[start:end]``, as Java's ``find`` loop sees them.

    Offsets are in ``text``. After an empty match the search goes on one
    character later, as in ``Matcher.find``. Without empty matches that loop
    and ``finditer`` agree (both go on where the last match ended), so the
    matches are listed in one call, and searched one by one only when an
    empty match shows up.
    """
    if separator.literal is not None:
        # Non-overlapping occurrences, left to right: the find loop of a literal.
        literal, starts = separator.literal, []
        found = text.find(literal, start, end)
        while found != -1:
            starts.append(found)
            found = text.find(literal, found + len(literal), end)
        return starts
    span = text[start:end]
    pattern = separator.after_cr if start > 0 and text[start - 1] == "\r" else separator.pattern
    if separator.underline is not None:
        return [start + s for s in _underlined_starts(span, pattern, separator.underline)]
    if not separator.timed:
        untimed = list(pattern.finditer(span, concurrent=False))
        if all(m.end() > m.start() for m in untimed):
            return [start + m.start() for m in untimed]
    # The budget is spent in this thread's CPU time, so that threads waiting for the
    # GIL do not use it up. A search holds the GIL (concurrent=False), so the regex
    # module's own timeout, in wall time from inside the search, measures the same.
    # ``finditer`` lets other threads run between its matches: when its timeout (in
    # wall time) runs out, the searches go on one at a time, with the CPU time left.
    budget = _FIXED_SECONDS + _SECONDS_PER_CHARACTER * len(span)
    # A thread's CPU time never exceeds the wall time it took, so a split done within the
    # budget in wall time is within it in CPU time, and time.thread_time (a system call,
    # many times the cost of perf_counter) is needed only for a split that is not.
    began = time.perf_counter()
    matches = _all_matches(pattern, span, budget)
    if (
        matches is not None
        and time.perf_counter() - began < budget
        and all(m.end() > m.start() for m in matches)
    ):
        return [start + m.start() for m in matches]
    return _timed_split_starts(span, start, pattern, separator.source, budget)


class TextSplits:
    """``split_starts`` of the spans of one text, with what their searches share found once.

    The heading separators of the markdown group all begin with a line feed
    and a number sign, a pair that prose rarely holds: where it occurs in the
    text is found once, and each heading separator is looked for only there,
    not by a search of every span it splits.
    """

    __slots__ = ("_headings", "text")

    def __init__(self, text: str) -> None:
        self.text = text
        self._headings: list[int] | None = None

    def split_starts(self, start: int, end: int, separator: Separator) -> list[int]:
        """``split_starts(self.text, start, end, separator)``."""
        if not separator.heading:
            return split_starts(self.text, start, end, separator)
        text, literal = self.text, separator.source
        if self._headings is None:
            self._headings = split_starts(text, 0, len(text), compile_separator(_HEADING))
        headings = self._headings
        # A heading separator holds a line feed only first, so no two of its occurrences
        # overlap: the find loop finds each one that lies in the span.
        low, high = bisect_left(headings, start), bisect_right(headings, end - len(literal))
        return [found for found in headings[low:high] if text.startswith(literal, found)]


def _underlined_starts(span: str, pattern: regex.Pattern[str], underline: str) -> list[int]:
    """The find loop of a setext heading separator over ``span``, tried only before underlines.

    A match is a line feed, a line (no line terminator in it), a line feed, a
    run of ``underline`` and a line feed. So it starts at the second line feed
    before an ``underline`` that ends a line, which ``str.find`` finds many
    times faster than the regex scans the span. Matches start in the order of
    the underlines they end with, so trying the regex there, from where the
    last match ended, meets them as the find loop does.
    """
    starts: list[int] = []
    searched_from = 0
    line_end = underline + "\n"
    last = span.find(line_end)
    while last != -1:
        before = span.rfind("\n", 0, last)
        start = span.rfind("\n", 0, before) if before > 0 else -1
        if start >= searched_from:
            found = pattern.match(span, start, concurrent=False)
            if found is not None:
                starts.append(start)
                searched_from = found.end()
        last = span.find(line_end, last + 1)
    return starts


def _all_matches(
    pattern: regex.Pattern[str], span: str, timeout: float
) -> list[regex.Match[str]] | None:
    """``finditer``'s matches, or None when ``timeout`` (wall time) runs out first."""
    try:
        return list(pattern.finditer(span, concurrent=False, timeout=timeout))
    except TimeoutError:
        return None


def _timed_split_starts(
    span: str, start: int, pattern: regex.Pattern[str], source: str, budget: float
) -> list[int]:
    """``split_starts`` of a regex separator, its searches timed in this thread's CPU time."""
    began = time.thread_time()
    matches = _all_matches(pattern, span, budget)
    budget -= time.thread_time() - began
    starts = []
    try:
        if budget <= 0:
            raise TimeoutError
        if matches is not None and all(m.end() > m.start() for m in matches):
            return [start + m.start() for m in matches]
        position = 0
        while position <= len(span):
            began = time.thread_time()
            match = pattern.search(span, position, concurrent=False, timeout=max(budget, 0))
            budget -= time.thread_time() - began
            if match is None:
                break
            starts.append(start + match.start())
            position = match.end() + (match.end() == match.start())
    except TimeoutError:
        raise ConfigError(
            f"Chunk separator regex [{source}] has exceeded the character read limit"
        ) from None
    return starts

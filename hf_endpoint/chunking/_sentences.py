"""ICU's sentence boundaries (root locale), found without ICU where the text allows.

ICU's sentence iterator took a quarter of the sentence strategy's time on
English text, most of it one Python call per boundary. On text
whose characters have no ``Extend`` or ``Format`` sentence-break class and no
surrogates, and where at most one in 64 is beyond ASCII (those are classified
one by one), the rules (UAX #29 as ICU 77 applies them) come down to:

* a break after a paragraph separator (LF, CR, a Sep) but inside CR LF (SB3, SB4);
* after each ``STerm`` or ``ATerm``, its run of ``Close`` then ``Sp`` characters
  (SB9, SB10), and a break at the run's end (SB11) unless what follows is a
  paragraph separator (which breaks after itself), an ``SContinue``, ``STerm``
  or ``ATerm`` (SB8a), or, after an ``ATerm``: a ``Lower`` after any number of
  characters that are not letters, terminators or separators (SB8), a
  ``Numeric`` right after it (SB6), an ``Upper`` right after it where a letter
  comes before it (SB7).

That is a handful of numpy operations on the terminators and separators, one
table lookup deciding each, and a regex only for the rare ones the table
leaves open (a run of more than one ``Close`` or ``Sp``, the lookahead of SB8).
``tests/test_sentences.py`` checks it against ICU on every sequence of six
ASCII sentence-break classes, of four with the classes beyond ASCII, and on
random text of every class.
"""

from __future__ import annotations

import re
from functools import cache
from typing import TYPE_CHECKING

import icu

from ._segment import NonAscii, icu_sentence_ends, non_ascii_runs

if TYPE_CHECKING:
    import numpy as np
    import numpy.typing as npt

__all__ = ["sentence_end_array", "sentence_ends"]

# Sentence-break classes, one code each: the terminators and separators above TERM,
# which marks the text's end.
OTHER, LOWER, UPPER, NUMERIC, CLOSE, SP, SCONTINUE, OLETTER = range(8)
TERM, ATERM, STERM, LF, CR, SEP = 8, 9, 10, 11, 12, 13
UNHANDLED = 255  # Extend, Format, surrogates: ICU is asked
CLASSES = {
    "Lower": LOWER,
    "Upper": UPPER,
    "Numeric": NUMERIC,
    "Close": CLOSE,
    "Sp": SP,
    "SContinue": SCONTINUE,
    "OLetter": OLETTER,
    "ATerm": ATERM,
    "STerm": STERM,
    "LF": LF,
    "Sep": SEP,
    "CR": CR,
    "Extend": UNHANDLED,
    "Format": UNHANDLED,
}
_SETS = [
    (icu.UnicodeSet(rf"[\p{{Sentence_Break={name}}}]"), code) for name, code in CLASSES.items()
]


@cache
def _code(char: str) -> int:
    """The class code of one character (surrogates: ``UNHANDLED``)."""
    if "\ud800" <= char <= "\udfff":
        return UNHANDLED
    return next((code for chars, code in _SETS if chars.contains(char)), OTHER)


_ASCII_CODES = bytes(_code(chr(b)) if b < 128 else OTHER for b in range(256))

# The decision for a terminator or separator at ``p`` from ``index``: its kind in
# bits 6-7 (ATERM, STERM, LF or SEP, CR less 9), bit 5 when its Close/Sp run is empty, bit
# 4 when a letter comes before it, and the class of the character after the run
# (after it, for separators) in bits 0-3.
NO, BREAK, ASK = 0, 1, 2
_NEVER_AFTER_TERM = {LF, CR, SEP, SCONTINUE, ATERM, STERM}


def _decide(index: int) -> int:
    kind, empty, after_letter, following = (
        (index >> 6) + ATERM,
        index >> 5 & 1,
        index >> 4 & 1,
        index & 15,
    )
    if following == TERM:  # the text's end, a boundary anyway
        return NO
    if kind == LF:
        return BREAK
    if kind == CR:
        return NO if following == LF else BREAK
    if following in _NEVER_AFTER_TERM:
        return NO
    if kind == STERM:
        return BREAK
    if following == LOWER:  # SB8 with nothing in between
        return NO
    if empty and (following == NUMERIC or (following == UPPER and after_letter)):
        return NO  # SB6, SB7
    return ASK if following in (SP, CLOSE, SCONTINUE, NUMERIC, OTHER) else BREAK


_DECISIONS = bytes(_decide(i) for i in range(256))
# The same for a terminator stepped over one Close and one Sp at most: where more
# follow, the run goes on and its end is found one by one.
_FIRST = bytes(ASK if i < 128 and i & 15 in (CLOSE, SP) else d for i, d in enumerate(_DECISIONS))
# A terminator's run of Close then Sp, and SB8's lookahead: a regex each.
_RUN = re.compile(rb"[\x04]*+[\x05]*+")
_SB8 = re.compile(rb"[\x00\x03\x04\x05\x06]*+\x01")


@cache
def _tables() -> tuple[npt.NDArray[np.uint8], ...]:
    import numpy as np

    kind_bits = np.zeros(256, np.uint8)
    kind_bits[ATERM : CR + 1] = np.arange(4, dtype=np.uint8) << 6
    kind_bits[SEP] = kind_bits[LF]  # both break after themselves
    letter_bit = np.zeros(256, np.uint8)
    letter_bit[[LOWER, UPPER]] = 16
    # The run after a terminator is empty unless a Close or an Sp comes next.
    empty_bit = np.full(256, 32, np.uint8)
    empty_bit[[CLOSE, SP]] = 0
    for table in (kind_bits, letter_bit, empty_bit):
        table.flags.writeable = False  # shared by every thread
    return kind_bits, letter_bit, empty_bit, np.frombuffer(_FIRST, np.uint8)


def _sentence_end(codes: bytes, at: int) -> int | None:
    """Where the sentence ends that the terminator at ``at`` may end; ``None`` if not there."""
    found = _RUN.match(codes, at + 1)
    assert found is not None
    end = found.end()
    following = codes[end] if end < len(codes) else TERM
    letter = at > 0 and codes[at - 1] in (LOWER, UPPER)
    index = (codes[at] - ATERM) << 6 | (end == at + 1) << 5 | letter << 4 | following
    decision = _DECISIONS[index]
    if decision == ASK:
        decision = NO if _SB8.match(codes, end) else BREAK
    return end if decision == BREAK else None


def _codes(text: str, non_ascii: NonAscii | None = None) -> bytes | None:
    """The class code of every character of ``text``; ``None`` where ICU must be asked.

    ``non_ascii``: the text's characters beyond ASCII, where the caller has them.
    """
    if text.isascii():
        return text.encode("ascii").translate(_ASCII_CODES)
    # Looked up one at a time, more than that would cost more than ICU's pass.
    most = len(text) // 64
    if non_ascii is None:
        replaced = text.encode("ascii", "replace")
        if replaced.count(b"?") > most:  # the question marks too, at most
            return None
        non_ascii = NonAscii(replaced, non_ascii_runs(text, replaced))
    if sum(end - start for start, end in non_ascii.runs) > most:
        return None
    codes = bytearray(non_ascii.replaced.translate(_ASCII_CODES))
    for start, end in non_ascii.runs:
        for i in range(start, end):
            code = _code(text[i])
            if code == UNHANDLED:
                return None
            codes[i] = code
    return bytes(codes)


def sentence_end_array(text: str, non_ascii: NonAscii | None = None) -> npt.NDArray[np.int64]:
    """Offsets where the ICU sentences of ``text`` end, in order (numpy).

    ``non_ascii``: the text's characters beyond ASCII (``WordMarks.non_ascii``),
    where the caller has them.
    """
    import numpy as np

    codes = _codes(text, non_ascii)
    if codes is None:
        return np.array(icu_sentence_ends(text), np.int64)
    n = len(text)
    kind_bits, letter_bit, empty_bit, first = _tables()
    # TERM after the end marks the text's end; the other before the start, none.
    padded = np.frombuffer(codes + bytes((TERM, TERM, OTHER)), np.uint8)
    at = np.flatnonzero(padded[:n] > TERM)
    kinds = padded[at]
    is_term = kinds <= STERM
    # Step over one Close and one Sp after a terminator: the run's end, mostly.
    end = at + 1
    after = padded[end]
    end += (after == CLOSE) & is_term
    end += (padded[end] == SP) & is_term
    index = kind_bits[kinds] | letter_bit[padded[at - 1]] | empty_bit[after] | padded[end]
    decided = first[index]
    for k in np.flatnonzero(decided == ASK).tolist():
        found = _sentence_end(codes, int(at[k]))
        decided[k] = NO if found is None else BREAK
        end[k] = end[k] if found is None else found
    ends = end[decided == BREAK]
    return np.append(ends, n) if n else ends


def sentence_ends(text: str) -> list[int]:
    """Offsets where the ICU sentences of ``text`` end (root locale), in order."""
    ends: list[int] = sentence_end_array(text).tolist()
    return ends

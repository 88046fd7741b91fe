"""Java regular expressions, matched with Java's meaning by the ``regex`` module.

Elasticsearch compiles every separator of the recursive strategy with
``Pattern.compile(separator, Pattern.MULTILINE)`` (``java.util.regex``) and
searches it inside a region of the text. Python reads the same pattern text
differently in many places, so a separator is never handed to Python as it
is: :func:`translate` parses it the way Java does and writes each construct
out in the ``regex`` module's syntax with Java's meaning, or refuses it with a
:class:`JavaRegexError` that names the construct. Nothing is matched
"approximately".

Where Java and Python's ``re`` differ, and what this module does:

* ``.`` -- Java: any character but a line terminator (``\\n``, ``\\r``,
  U+0085, U+2028, U+2029); Python: any but ``\\n``. Written as Java's class.
* ``^`` and ``$`` with MULTILINE -- Java: after / before any line terminator,
  ``\\r\\n`` counted as one, and ``^`` never at the very end of the input;
  Python: only ``\\n``, and ``^`` also at the end. Written out as lookarounds
  with Java's rules (also ``\\Z``, and the ``(?d)`` UNIX_LINES variants).
* ``\\d``, ``\\s``, ``\\w`` -- Java: ASCII only; Python: Unicode. Written as
  Java's ASCII classes; ``\\h``, ``\\v``, ``\\R`` as Java defines them.
* ``\\p{...}`` -- general categories (``\\p{Lu}``, ``\\p{IsL}``,
  ``\\p{gc=Nd}``), scripts (``\\p{IsLatin}``, ``\\p{sc=Han}``) and the POSIX
  classes (ASCII in Java: ``\\p{Alpha}`` is ``[a-zA-Z]``) are written out as
  code point ranges from ICU (Unicode 16, as current Java). Blocks, binary
  properties and ``java*`` classes are refused.
* Octal ``\\0mnn``, ``\\x{h..h}``, ``\\uhhhh`` (surrogate pairs joined),
  ``\\cX``, ``\\e``, ``\\a``, ``\\N{name}``, ``\\Q..\\E`` and Java's rule for
  multi-digit back references are read as Java reads them; Python would
  read several of them differently or not at all.
* ``{`` that does not start a repetition, ``\\`` before an ASCII letter that
  is no escape, an unclosed group: errors, as in Java (Python takes some as
  literals).
* Lookbehind -- Java needs a bounded length, ``re`` a fixed one; the ``regex``
  module takes any, so a bounded one is kept and an unbounded one refused as
  Java refuses it.
* Possessive quantifiers and atomic groups -- the same in both.
* Refused, because their Java meaning cannot be reproduced exactly: the
  inline flags ``i``, ``u``, ``U``, ``x`` and ``c`` (case folding and
  Unicode classes follow Java-specific tables), ``\\b`` and ``\\B`` (Java's
  word boundary has its own rules for combining marks, changed in JDK 19),
  ``\\G``, ``\\X``, class union and intersection (``[a[b]]``, ``[a&&b]``),
  quantified assertions, and back references to a group that is still open
  or not yet opened.
* Region bounds -- Java searches a region with anchoring, opaque bounds:
  ``^`` and ``\\A`` match at its start, lookarounds do not see past it. The
  caller searches a slice of the text, which behaves the same. The one read
  past the region start Java makes (``$`` before the ``\\n`` of a ``\\r\\n``
  split by the region start) is kept by :func:`translate`'s ``after_cr``.
* Matching -- both engines backtrack in the same order (leftmost, greedy or
  lazy as written, alternatives in order), so a faithful translation finds
  the same matches. The caller steps from match to match as Java's
  ``Matcher.find`` does (after an empty match, one character on).

Offsets are code points here and UTF-16 units in Java; a separator that Java
would let match in the middle of a surrogate pair cannot exist here.
"""

from __future__ import annotations

import unicodedata
from typing import NoReturn

import icu

__all__ = ["JavaRegexError", "translate"]

_MAX_CODE_POINT = 0x10FFFF
Ranges = list[tuple[int, int]]


class JavaRegexError(ValueError):
    """A separator Java would reject (``unsupported`` false) or that cannot be matched as Java matches it."""

    def __init__(self, reason: str, *, unsupported: bool) -> None:
        super().__init__(reason)
        self.reason = reason
        self.unsupported = unsupported


def _normalised(ranges: Ranges) -> Ranges:
    merged: Ranges = []
    for lo, hi in sorted(ranges):
        if merged and lo <= merged[-1][1] + 1:
            if hi > merged[-1][1]:
                merged[-1] = (merged[-1][0], hi)
        else:
            merged.append((lo, hi))
    return merged


def _complement(ranges: Ranges) -> Ranges:
    out: Ranges = []
    next_lo = 0
    for lo, hi in _normalised(ranges):
        if lo > next_lo:
            out.append((next_lo, lo - 1))
        next_lo = hi + 1
    if next_lo <= _MAX_CODE_POINT:
        out.append((next_lo, _MAX_CODE_POINT))
    return out


def _icu_ranges(pattern: str) -> Ranges:
    return [(ord(lo), ord(hi)) for lo, hi in icu.UnicodeSet(pattern).ranges()]


def _escape(code: int) -> str:
    if code < 0x100:
        return f"\\x{code:02x}"
    if code < 0x10000:
        return f"\\u{code:04x}"
    return f"\\U{code:08x}"


def _class_text(ranges: Ranges) -> str:
    ranges = _normalised(ranges)
    if not ranges:
        return f"[^\\x00-{_escape(_MAX_CODE_POINT)}]"  # matches nothing
    parts = (_escape(lo) if lo == hi else f"{_escape(lo)}-{_escape(hi)}" for lo, hi in ranges)
    return "[" + "".join(parts) + "]"


_DIGIT: Ranges = [(0x30, 0x39)]
_SPACE: Ranges = [(0x09, 0x0D), (0x20, 0x20)]  # [ \t\n\x0B\f\r]
_WORD: Ranges = [(0x30, 0x39), (0x41, 0x5A), (0x5F, 0x5F), (0x61, 0x7A)]
_HORIZONTAL: Ranges = [
    (0x09, 0x09),
    (0x20, 0x20),
    (0xA0, 0xA0),
    (0x1680, 0x1680),
    (0x180E, 0x180E),
    (0x2000, 0x200A),
    (0x202F, 0x202F),
    (0x205F, 0x205F),
    (0x3000, 0x3000),
]
_VERTICAL: Ranges = [(0x0A, 0x0D), (0x85, 0x85), (0x2028, 0x2029)]
_PREDEFINED = {"d": _DIGIT, "s": _SPACE, "w": _WORD, "h": _HORIZONTAL, "v": _VERTICAL}
_LINE_TERMINATORS: Ranges = [(0x0A, 0x0A), (0x0D, 0x0D), (0x85, 0x85), (0x2028, 0x2029)]
_ALL: Ranges = [(0, _MAX_CODE_POINT)]

# java.util.regex's POSIX classes: US-ASCII only.
_POSIX: dict[str, Ranges] = {
    "Lower": [(0x61, 0x7A)],
    "Upper": [(0x41, 0x5A)],
    "ASCII": [(0x00, 0x7F)],
    "Alpha": [(0x41, 0x5A), (0x61, 0x7A)],
    "Digit": _DIGIT,
    "Alnum": [(0x30, 0x39), (0x41, 0x5A), (0x61, 0x7A)],
    "Punct": [(0x21, 0x2F), (0x3A, 0x40), (0x5B, 0x60), (0x7B, 0x7E)],
    "Graph": [(0x21, 0x7E)],
    "Print": [(0x20, 0x7E)],
    "Blank": [(0x09, 0x09), (0x20, 0x20)],
    "Cntrl": [(0x00, 0x1F), (0x7F, 0x7F)],
    "XDigit": [(0x30, 0x39), (0x41, 0x46), (0x61, 0x66)],
    "Space": _SPACE,
    "L1": [(0x00, 0xFF)],
    "all": _ALL,
}
_CATEGORIES = frozenset(
    ("L", "Lu", "Ll", "Lt", "Lm", "Lo", "LC", "M", "Mn", "Me", "Mc", "N", "Nd", "Nl", "No")
    + ("Z", "Zs", "Zl", "Zp", "C", "Cc", "Cf", "Co", "Cs", "Cn")
    + ("P", "Pd", "Ps", "Pe", "Pc", "Po", "Pi", "Pf", "S", "Sm", "Sc", "Sk", "So")
)


def _category(name: str) -> Ranges:
    return _icu_ranges(f"[\\p{{gc={name}}}]")


def _script_names() -> dict[str, str]:
    """Java's script names (the long name or the ISO 15924 code, any case) -> ICU's name."""
    names: dict[str, str] = {}
    long_name = icu.UPropertyNameChoice.LONG_PROPERTY_NAME
    short_name = icu.UPropertyNameChoice.SHORT_PROPERTY_NAME
    for code in range(icu.Char.getIntPropertyMaxValue(icu.UProperty.SCRIPT) + 1):
        full = icu.Char.getPropertyValueName(icu.UProperty.SCRIPT, code, long_name)
        if full is None:
            continue
        names[full.upper()] = full
        short = icu.Char.getPropertyValueName(icu.UProperty.SCRIPT, code, short_name)
        if short is not None:
            names[short.upper()] = full
    return names


_SCRIPTS = _script_names()


def _script(name: str) -> Ranges | None:
    full = _SCRIPTS.get(name.upper())
    if full is None:
        return None
    ranges = _icu_ranges(f"[\\p{{sc={full}}}]")
    return ranges or None  # scripts with no characters are not Java's


class _Parser:
    """Recursive descent over Java's pattern grammar, writing ``regex`` syntax."""

    def __init__(self, pattern: str, after_cr: bool) -> None:
        self.src = pattern
        self.i = 0
        self.after_cr = after_cr
        self.multiline = True  # Elasticsearch compiles with Pattern.MULTILINE
        self.dotall = False
        self.unix_lines = False
        self.opened = 0
        self.closed: set[int] = set()
        self.names: dict[str, int] = {}
        self.reads_before_region = False

    # --- errors -------------------------------------------------------------

    def invalid(self, message: str) -> NoReturn:
        raise JavaRegexError(f"{message} near index {self.i}", unsupported=False)

    def unsupported(self, message: str) -> NoReturn:
        raise JavaRegexError(message, unsupported=True)

    # --- reading ------------------------------------------------------------

    def peek(self, offset: int = 0) -> str:
        j = self.i + offset
        return self.src[j] if j < len(self.src) else ""

    def take(self) -> str:
        c = self.peek()
        if not c:
            self.invalid("Unexpected end of pattern")
        self.i += 1
        return c

    # --- grammar ------------------------------------------------------------

    def pattern(self) -> str:
        text, _ = self.alternation()
        if self.i < len(self.src):
            self.invalid("Unmatched closing ')'")
        return text

    def alternation(self) -> tuple[str, int | None]:
        branches = [self.sequence()]
        while self.peek() == "|":
            self.i += 1
            branches.append(self.sequence())
        widths = [w for _, w in branches]
        width = None if None in widths else max(w for w in widths if w is not None)
        return "|".join(t for t, _ in branches), width

    def sequence(self) -> tuple[str, int | None]:
        parts: list[str] = []
        width: int | None = 0
        while self.peek() not in ("", "|", ")"):
            atoms = self.atom()
            if not atoms:
                continue  # (?m) and friends, or an empty \Q\E
            for text, atom_width in atoms[:-1]:
                parts.append(text)
                width = None if width is None or atom_width is None else width + atom_width
            text, atom_width = self.quantified(*atoms[-1])
            parts.append(text)
            width = None if width is None or atom_width is None else width + atom_width
        return "".join(parts), width

    def quantified(self, text: str, width: int | None) -> tuple[str, int | None]:
        c = self.peek()
        if c not in ("?", "*", "+", "{"):
            return text, width
        if width == 0:
            self.unsupported(f"a quantifier on an assertion or an empty group ({text[:40]}{c})")
        self.i += 1
        if c == "?":
            low, high = 0, 1
        elif c == "*":
            low, high = 0, None
        elif c == "+":
            low, high = 1, None
        else:
            if not self.peek().isdigit() or not self.peek().isascii():
                self.invalid("Illegal repetition")
            low = self.number()
            high = low
            if self.peek() == ",":
                self.i += 1
                high = self.number() if self.peek().isdigit() and self.peek().isascii() else None
            if self.peek() != "}":
                self.invalid("Unclosed counted closure")
            self.i += 1
            if high is not None and high < low:
                self.invalid("Illegal repetition range")
            c = f"{{{low}}}" if high == low else f"{{{low},{'' if high is None else high}}}"
        if self.peek() in ("?", "+"):
            c += self.take()
        if self.peek() in ("?", "*", "+", "{"):
            self.invalid(f"Dangling meta character '{self.peek()}'")
        total = None if high is None or width is None else width * high
        return text + c, total

    def number(self) -> int:
        start = self.i
        while self.peek().isdigit() and self.peek().isascii():
            self.i += 1
        value = int(self.src[start : self.i])
        if value > 0x7FFFFFFF:
            self.invalid("Illegal repetition range")
        return value

    def atom(self) -> list[tuple[str, int | None]]:
        c = self.peek()
        if c == "(":
            group = self.group()
            return [] if group is None else [group]
        if c == "[":
            self.i += 1
            return [(_class_text(self.char_class()), 1)]
        if c in ("*", "+", "?", "{"):
            self.invalid(f"Dangling meta character '{c}'")
        self.i += 1
        if c == ".":
            return [(self.dot(), 1)]
        if c == "^":
            return [(self.caret(), 0)]
        if c == "$":
            return [(self.dollar(multiline=self.multiline), 0)]
        if c == "\\":
            return self.escape()
        return [(_escape(ord(c)), 1)]

    # --- groups and flags -----------------------------------------------------

    def group(self) -> tuple[str, int | None] | None:
        self.i += 1  # (
        saved = (self.multiline, self.dotall, self.unix_lines)
        number = None
        behind = False
        width_of_body = True
        if self.peek() != "?":
            self.opened += 1
            number = self.opened
            head = "("
        else:
            self.i += 1
            c = self.take()
            if c == ":":
                head = "(?:"
            elif c in ("=", "!"):
                head, width_of_body = f"(?{c}", False
            elif c == ">":
                head = "(?>"
            elif c == "<" and self.peek() in ("=", "!"):
                head, behind, width_of_body = f"(?<{self.take()}", True, False
            elif c == "<":
                name = self.group_name()
                if name in self.names:
                    self.invalid(f"Named capturing group <{name}> is already defined")
                self.opened += 1
                number = self.opened
                self.names[name] = number
                head = f"(?P<{name}>"
            else:
                self.i -= 1
                if self.flags():  # (?flags) alone: they hold to the end of the enclosing group
                    return None
                head = "(?:"
        body, width = self.alternation()
        if self.peek() != ")":
            self.invalid("Unclosed group")
        self.i += 1
        self.multiline, self.dotall, self.unix_lines = saved
        if number is not None:
            self.closed.add(number)
        if behind and width is None:
            self.invalid("Look-behind group does not have an obvious maximum length")
        return head + body + ")", (width if width_of_body else 0)

    def group_name(self) -> str:
        start = self.i
        if not (self.peek().isascii() and self.peek().isalpha()):
            self.invalid("capturing group name does not start with a Latin letter")
        while self.peek().isascii() and self.peek().isalnum():
            self.i += 1
        name = self.src[start : self.i]
        if self.peek() != ">":
            self.invalid("named capturing group is missing trailing '>'")
        self.i += 1
        return name

    def flags(self) -> bool:
        """Read ``idmsuxUc-...`` then ``)`` (True: flags alone) or ``:`` (False)."""
        on = True
        while True:
            c = self.take()
            if c == ")":
                return True
            if c == ":":
                return False
            if c == "-":
                on = False
            elif c == "m":
                self.multiline = on
            elif c == "s":
                self.dotall = on
            elif c == "d":
                self.unix_lines = on
            elif c in "iuUxc":
                if on:
                    what = {
                        "i": "case-insensitive matching",
                        "u": "Unicode case folding",
                        "U": "Unicode character classes",
                        "x": "comments mode",
                        "c": "canonical equivalence",
                    }[c]
                    self.unsupported(f"the inline flag (?{c}) ({what})")
            else:
                self.i -= 1
                self.invalid("Unknown inline modifier")

    # --- anchors and the dot --------------------------------------------------

    def dot(self) -> str:
        if self.dotall:
            return _class_text(_ALL)
        if self.unix_lines:
            return _class_text(_complement([(0x0A, 0x0A)]))
        return _class_text(_complement(_LINE_TERMINATORS))

    def caret(self) -> str:
        if not self.multiline:
            return r"\A"
        if self.unix_lines:
            return r"(?:\A|(?<=\n))(?!\Z)"
        return r"(?:\A|(?<=[\n\x85\u2028\u2029])|(?<=\r)(?!\n))(?!\Z)"

    def not_after_cr(self) -> str:
        # Java looks at the character before the region for this one test.
        self.reads_before_region = True
        return r"(?<=[^\r])" if self.after_cr else r"(?<!\r)"

    def dollar(self, *, multiline: bool) -> str:
        if self.unix_lines:
            return r"(?:(?=\n)|\Z)" if multiline else r"(?:(?=\n\Z)|\Z)"
        if multiline:
            return rf"(?:(?=\n){self.not_after_cr()}|(?=[\r\x85\u2028\u2029])|\Z)"
        return rf"(?:\Z|(?=\r\n\Z)|(?=[\r\x85\u2028\u2029]\Z)|{self.not_after_cr()}(?=\n\Z))"

    # --- escapes --------------------------------------------------------------

    def escape(self) -> list[tuple[str, int | None]]:
        c = self.take()
        if c == "Q":
            end = self.src.find("\\E", self.i)
            quoted = self.src[self.i :] if end == -1 else self.src[self.i : end]
            self.i = len(self.src) if end == -1 else end + 2
            return [(_escape(ord(q)), 1) for q in quoted]
        if c.isdigit() and c.isascii() and c != "0":
            return [(self.back_reference(int(c)), None)]
        if c == "k":
            if self.take() != "<":
                self.invalid("\\k is not followed by '<' for named capturing group")
            name = self.group_name()
            if name not in self.names:
                self.invalid(f"named capturing group <{name}> does not exist")
            self.check_closed(self.names[name])
            return [(f"(?P={name})", None)]
        if c == "A":
            return [(r"\A", 0)]
        if c == "z":
            return [(r"\Z", 0)]
        if c == "Z":
            return [(self.dollar(multiline=False), 0)]
        if c == "R":
            return [(r"(?:\r\n|[\n\x0b\x0c\r\x85\u2028\u2029])", 2)]
        if c in ("b", "B"):
            self.unsupported(
                f"\\{c} (Java's word boundary has its own rules for combining marks); "
                "write the boundary as lookarounds, e.g. (?<![A-Za-z0-9_])(?=[A-Za-z0-9_])"
            )
        if c == "G":
            self.unsupported("\\G (the end of the previous match)")
        if c == "X":
            self.unsupported("\\X (a grapheme cluster)")
        ranges = self.class_escape(c)
        if ranges is not None:
            return [(_class_text(ranges), 1)]
        return [(_escape(self.character_escape(c)), 1)]

    def check_closed(self, number: int) -> None:
        if number not in self.closed:
            self.unsupported(f"a back reference to group {number} from inside it")

    def back_reference(self, number: int) -> str:
        # Java takes further digits only while the number names a group opened so far.
        while self.peek().isdigit() and self.peek().isascii():
            longer = number * 10 + int(self.peek())
            if longer > self.opened:
                break
            number = longer
            self.i += 1
        if number > self.opened:
            self.unsupported(f"a back reference to group {number}, which does not exist before it")
        self.check_closed(number)
        return f"(?:\\{number})"

    def class_escape(self, c: str) -> Ranges | None:
        """Ranges for ``\\d``, ``\\S``, ``\\p{..}``, ... (``c`` follows the backslash), else None."""
        if c.lower() in _PREDEFINED:
            ranges = _PREDEFINED[c.lower()]
            return _complement(ranges) if c.isupper() else ranges
        if c in ("p", "P"):
            if self.peek() == "{":
                end = self.src.find("}", self.i)
                if end == -1:
                    self.invalid("Unclosed character family")
                name = self.src[self.i + 1 : end]
                self.i = end + 1
            else:
                name = self.take()
            ranges = self.property(name)
            return _complement(ranges) if c == "P" else ranges
        return None

    def property(self, name: str) -> Ranges:
        key, _, value = name.partition("=")
        if value:
            if key in ("script", "sc"):
                ranges = _script(value)
                if ranges is None:
                    self.invalid(f"Unknown character script name {{{value}}}")
                return ranges
            if key in ("general_category", "gc"):
                if value not in _CATEGORIES:
                    self.invalid(f"Unknown Unicode property {{name=<{key}>, value=<{value}>}}")
                return _category(value)
            if key in ("block", "blk"):
                self.unsupported(f"the Unicode block \\p{{{name}}}")
            self.invalid(f"Unknown Unicode property {{name=<{key}>, value=<{value}>}}")
        if name.startswith("In"):
            self.unsupported(f"the Unicode block \\p{{{name}}}")
        if name.startswith("Is"):
            short = name[2:]
            if short in _CATEGORIES:
                return _category(short)
            ranges = _script(short)
            if ranges is None:
                self.unsupported(
                    f"\\p{{{name}}} (after Is, only general categories and scripts are supported)"
                )
            return ranges
        if name in _POSIX:
            return _POSIX[name]
        if name in _CATEGORIES:
            return _category(name)
        if name.startswith("java"):
            self.unsupported(f"the java.lang.Character class \\p{{{name}}}")
        self.invalid(f"Unknown character property name {{{name}}}")

    def character_escape(self, c: str) -> int:
        """The code point of a one-character escape (``c`` follows the backslash)."""
        simple = {"t": 0x09, "n": 0x0A, "r": 0x0D, "f": 0x0C, "a": 0x07, "e": 0x1B}
        if c in simple:
            return simple[c]
        if c == "0":
            return self.octal()
        if c == "x":
            return self.hex_escape()
        if c == "u":
            return self.unicode_escape()
        if c == "c":
            return ord(self.take()) ^ 64
        if c == "N":
            if self.take() != "{":
                self.invalid("Unknown character name")
            end = self.src.find("}", self.i)
            if end == -1:
                self.invalid("Unclosed character name escape sequence")
            name = self.src[self.i : end].strip()
            self.i = end + 1
            try:
                found = unicodedata.lookup(name.upper())
            except KeyError:
                found = ""
            if len(found) != 1:
                self.invalid(f"Unknown character name [{name}]")
            return ord(found)
        if c.isascii() and c.isalpha():
            self.invalid("Illegal/unsupported escape sequence")
        return ord(c)

    def octal(self) -> int:
        digits = ""
        while len(digits) < 3 and self.peek() in tuple("01234567") and self.peek():
            if len(digits) == 2 and digits[0] > "3":
                break
            digits += self.take()
        if not digits:
            self.invalid("Illegal octal escape sequence")
        return int(digits, 8)

    def hex_escape(self) -> int:
        hexdigits = "0123456789abcdefABCDEF"
        if self.peek() == "{":
            self.i += 1
            start = self.i
            while self.peek() and self.peek() in hexdigits:
                self.i += 1
            if self.i == start or self.peek() != "}":
                self.invalid("Unclosed hexadecimal escape sequence")
            value = int(self.src[start : self.i], 16)
            self.i += 1
            if value > _MAX_CODE_POINT:
                self.invalid("Hexadecimal codepoint is too big")
            return value
        pair = self.src[self.i : self.i + 2]
        if len(pair) != 2 or any(d not in hexdigits for d in pair):
            self.invalid("Illegal hexadecimal escape sequence")
        self.i += 2
        return int(pair, 16)

    def unicode_escape(self) -> int:
        def four() -> int:
            digits = self.src[self.i : self.i + 4]
            if len(digits) != 4 or any(d not in "0123456789abcdefABCDEF" for d in digits):
                self.invalid("Illegal Unicode escape sequence")
            self.i += 4
            return int(digits, 16)

        high = four()
        if 0xD800 <= high <= 0xDBFF and self.src.startswith("\\u", self.i):
            saved = self.i
            self.i += 2
            low = four()
            if 0xDC00 <= low <= 0xDFFF:
                return 0x10000 + ((high - 0xD800) << 10) + (low - 0xDC00)
            self.i = saved
        return high

    # --- character classes ------------------------------------------------------

    def char_class(self) -> Ranges:
        negate = self.peek() == "^"
        if negate:
            self.i += 1
        ranges: Ranges = []
        first = True
        while True:
            c = self.peek()
            if not c:
                self.invalid("Unclosed character class")
            if c == "]" and not first:
                self.i += 1
                break
            first = False
            if c == "[":
                self.unsupported("a class inside a class (union such as [a[b]])")
            if c == "&" and self.peek(1) == "&":
                self.unsupported("class intersection (&&)")
            element = self.class_element()
            if isinstance(element, list):
                if self.peek() == "-" and self.peek(1) not in ("]", ""):
                    self.unsupported("a range that starts or ends with a class such as \\d")
                ranges.extend(element)
                continue
            low = element
            if self.peek() == "-" and self.peek(1) not in ("]", ""):
                self.i += 1
                high = self.class_element()
                if isinstance(high, list) or high < low:
                    self.invalid("Illegal character range")
                ranges.append((low, high))
            else:
                ranges.append((low, low))
        return _complement(ranges) if negate else _normalised(ranges)

    def class_element(self) -> int | Ranges:
        c = self.take()
        if c != "\\":
            return ord(c)
        c = self.take()
        ranges = self.class_escape(c)
        if ranges is not None:
            return ranges
        if c == "Q":
            self.unsupported("\\Q...\\E inside a class")
        if c in "123456789bBAzZGRXk":
            self.invalid("Illegal/unsupported escape sequence")
        return self.character_escape(c)


def translate(pattern: str, *, after_cr: bool = False) -> tuple[str, bool]:
    """``pattern`` (Java syntax, MULTILINE) in ``regex`` syntax with the same meaning.

    Returns the translation and whether it depends on ``after_cr``: true when
    the pattern holds a ``$`` that, in Java, looks at the character before the
    searched region; then the caller translates again with ``after_cr=True``
    for regions that start right after a ``\\r``. Raises
    :class:`JavaRegexError`.
    """
    parser = _Parser(pattern, after_cr)
    return parser.pattern(), parser.reads_before_region

"""The declared options, written where type checkers and IDEs need them written.

Type checkers read signatures and fields from the source, so the options that
``EmbeddingClient`` and ``RerankClient`` take as keywords, and the adapters' fields,
are written out in their modules. They are written from the declaration
(``_options.ClientOptions``), never by hand, between two marker lines::

    # -- from the declaration: embed keywords --
    ...
    # -- end: embed keywords --

After adding or changing an option, write them again (``make options``)::

    python -m hf_endpoint.client._keywords      # rewrites the regions, then ruff format
    python -m hf_endpoint.client._keywords --check

``--check`` (and the test suite) fails when a region no longer says what the
declaration says. Regions are compared as code, not as text, so ``ruff format``
may wrap them as it likes.
"""

from __future__ import annotations

import ast
import json
import sys
import types
import typing
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal, Union

from . import _options
from ._options import BOTH, EMBED, RERANK, Declared, declared

PACKAGE = Path(__file__).resolve().parent.parent


def source_of(kind: Any) -> str:
    """A type as it is written in our modules: ``int | None``, ``Literal["a", "b"]``,
    ``Mapping[str, Any]`` (names as imported, never module paths)."""
    if kind is None or kind is type(None):
        return "None"
    if kind is Any:
        return "Any"
    origin = typing.get_origin(kind)
    args = typing.get_args(kind)
    if origin in (Union, types.UnionType):
        return " | ".join(source_of(a) for a in args)
    if origin is Literal:
        return "Literal[" + ", ".join(json.dumps(a) for a in args) + "]"
    if origin is not None:
        return f"{origin.__name__}[{', '.join(source_of(a) for a in args)}]"
    return str(kind.__name__)


def _default_of(spec: Declared, client: str) -> str:
    """The default of a client's keyword, as a name: the declaration's field, or the
    constant in ``_options`` that holds the client's own default."""
    value = spec.default_for(client)
    if value is spec.default:
        return f"ClientOptions.{spec.name}"
    for name, constant in vars(_options).items():
        if name.isupper() and constant == value and type(constant) is type(value):
            return name
    raise LookupError(
        f"{spec.name}: the {client} client's default {value!r} needs a constant in _options"
    )


@dataclass(frozen=True)
class Region:
    """One written region: which module, the marker's name, and what it holds."""

    path: str
    name: str

    def lines(self, options: list[Declared] | None = None) -> list[str]:
        """The region's lines, without indentation (``options``: the declaration's)."""
        every = declared() if options is None else options
        if self.keywords:
            client = EMBED if self.name.startswith(EMBED) else RERANK
            return [
                f"{s.name}: {source_of(s.accepts())} = {_default_of(s, client)},"
                for s in every
                if client in s.clients and s.name != "url"
            ]
        clients = {"both": BOTH, EMBED: (EMBED,), RERANK: (RERANK,)}[self.name.split()[-1]]
        return [
            f'{s.name}: {source_of(s.adapter_takes or s.accepts())} = declared_field("{s.name}")'
            for s in every
            if s.adapter and s.clients == clients
        ]

    @property
    def keywords(self) -> bool:
        """Whether the region holds a signature's keywords (else a class's fields)."""
        return self.name.endswith("keywords")

    def says(self, written: list[str], options: list[Declared] | None = None) -> bool:
        """Whether ``written``, the region's lines in its file, is the declaration's code."""
        return _as_code(written, self.keywords) == _as_code(self.lines(options), self.keywords)

    @property
    def begin(self) -> str:
        return f"# -- from the declaration: {self.name} --"

    @property
    def end(self) -> str:
        return f"# -- end: {self.name} --"


REGIONS = (
    Region("client/_embedding.py", "embed keywords"),
    Region("client/rerank.py", "rerank keywords"),
    Region("_adapter.py", "adapter fields both"),
    Region("_adapter.py", "adapter fields embed"),
    Region("_adapter.py", "adapter fields rerank"),
)


def _find(text: list[str], region: Region, path: Path) -> tuple[int, int, str]:
    """The lines of ``region`` in ``text``: first and last (exclusive) line, indentation."""
    starts = [i for i, line in enumerate(text) if line.strip() == region.begin]
    ends = [i for i, line in enumerate(text) if line.strip() == region.end]
    if len(starts) != 1 or len(ends) != 1 or ends[0] < starts[0]:
        raise LookupError(f"{path}: one {region.begin!r} and one {region.end!r} line, in order")
    begin = text[starts[0]]
    return starts[0] + 1, ends[0], begin[: len(begin) - len(begin.lstrip())]


def _as_code(lines: list[str], keywords: bool) -> str:
    """The region parsed and printed back: the same code compares equal however wrapped."""
    body = "\n".join(" " + line.strip() for line in lines if line.strip())
    wrapped = f"def f(\n{body}\n): pass" if keywords else f"class C:\n pass\n{body}\n"
    return ast.dump(ast.parse(wrapped))


def stale(root: Path = PACKAGE, options: list[Declared] | None = None) -> list[str]:
    """The regions under ``root`` that no longer say what the declaration says."""
    found = []
    for region in REGIONS:
        path = root / region.path
        text = path.read_text(encoding="utf-8").splitlines()
        first, last, _ = _find(text, region, path)
        if not region.says(text[first:last], options):
            found.append(f"{region.path}: {region.name}")
    return found


def write(root: Path = PACKAGE, options: list[Declared] | None = None) -> list[Path]:
    """Write every region under ``root`` from the declaration; the files written."""
    written = []
    for region in REGIONS:
        path = root / region.path
        text = path.read_text(encoding="utf-8").splitlines(keepends=True)
        first, last, indent = _find([line.rstrip("\n") for line in text], region, path)
        if not region.says(text[first:last], options):
            new = [indent + line + "\n" for line in region.lines(options)]
            path.write_text("".join(text[:first] + new + text[last:]), encoding="utf-8")
            written.append(path)
    return written


def main(argv: list[str] | None = None) -> int:
    args = sys.argv[1:] if argv is None else argv
    if args == ["--check"]:
        found = stale()
        for region in found:
            print(f"written by hand or out of date: {region}", file=sys.stderr)
        if found:
            print("write them again: python -m hf_endpoint.client._keywords", file=sys.stderr)
        return 1 if found else 0
    if args:
        print("usage: python -m hf_endpoint.client._keywords [--check]", file=sys.stderr)
        return 2
    for path in write():
        print(f"wrote {path.relative_to(PACKAGE.parent)}")
    return 0


if __name__ == "__main__":
    sys.exit(main())

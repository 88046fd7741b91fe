"""Chunking throughput: our strategies beside other splitters, and how time grows with length.

Run: ``make bench`` (or ``.venv/bin/python benchmarks/bench_chunking.py``); ``--section``
picks some of the three tables.

Corpora, generated with a fixed seed so every run sees the same text:
English and Chinese prose from Faker's ``en_US`` and ``zh_CN`` word lists (and
the English once more with an em dash in every paragraph, which takes text off
the ASCII fast path), at least 4 MB of UTF-8 each, cut into documents of about 10 kB (what an ingestion
pipeline hands a splitter); for the recursive strategy, the English documents as plain
text and as markdown (headings of three levels, setext headings, lists).
Every splitter gets the same documents and a
comparable chunk size: 250 words, or the number of characters / tokens that 250
ICU words take on average in that corpus. Throughput is UTF-8 megabytes per
second, the best of ``--repeat`` runs, the splitters taking turns (in reverse order
every other turn) so that a busy machine slows them alike. Ratios are to our word
strategy on the same documents. ICU's own word iterator, walked from Python and asked
the rule status of every boundary (counting words, as a chunker needs them), is the
plain way to find ICU words.

``--baseline REV`` adds the word, sentence and recursive strategies as they are at git
revision ``REV`` (imported from a copy of that revision's ``hf_endpoint``), measured in
the same turns, to compare a change with what came before in the same machine state.

The scaling tables chunk one document of 0.5 to 8 MB, the English with an em dash per
paragraph, laid out twice: all on one line (paragraphs joined by a space) and on many
short lines (a sentence a line, a blank line between paragraphs), where a cost that
grows faster than the text would show. They give seconds per MB, and the largest
÷ the smallest of them.
"""

from __future__ import annotations

import argparse
import atexit
import gc
import importlib
import io
import os
import platform
import shutil
import subprocess
import sys
import tarfile
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from types import ModuleType

MB = 1_000_000
DOC_BYTES = 10_000
CORPUS_BYTES = 4 * MB + 200_000
WORDS = 250


def _tiktoken_cache() -> None:
    """tiktoken downloads its encodings on first use; use the copy llama-index-core ships."""
    if "TIKTOKEN_CACHE_DIR" not in os.environ:
        import llama_index.core

        os.environ["TIKTOKEN_CACHE_DIR"] = str(
            Path(llama_index.core.__file__).parent / "_static" / "tiktoken_cache"
        )


def corpus(locale: str, typographic: bool = False) -> list[str]:
    from faker import Faker

    fake = Faker(locale)
    fake.seed_instance(20261125)
    docs: list[str] = []
    size = 0
    while size < CORPUS_BYTES:
        paragraphs = []
        doc_size = 0
        while doc_size < DOC_BYTES:
            p = fake.paragraph(nb_sentences=8)
            if locale == "zh_CN":
                p = p.replace(".", "。")
            elif typographic:
                p = p.replace(" ", " — ", 1)
            paragraphs.append(p)
            doc_size += len(p.encode())
        doc = "\n\n".join(paragraphs)
        docs.append(doc)
        size += len(doc.encode())
    return docs


def markdown_corpus() -> list[str]:
    """The English prose as markdown documents of about 10 kB."""
    from faker import Faker

    fake = Faker("en_US")
    fake.seed_instance(20261125)
    docs: list[str] = []
    size = 0
    while size < CORPUS_BYTES:
        parts = [f"# {fake.sentence(nb_words=5).rstrip('.')}"]
        doc_size = 0
        section = 0
        while doc_size < DOC_BYTES:
            section += 1
            title = fake.sentence(nb_words=4).rstrip(".")
            if section % 4 == 0:
                parts.append(f"{title}\n{'-' * len(title)}")  # a setext heading
            else:
                parts.append(f"{'#' * (2 + section % 2)} {title}")
            for _ in range(3):
                parts.append(fake.paragraph(nb_sentences=6))
            parts.append("\n".join(f"- {fake.sentence(nb_words=8)}" for _ in range(4)))
            doc_size = sum(len(p.encode()) for p in parts)
        doc = "\n\n".join(parts) + "\n"
        docs.append(doc)
        size += len(doc.encode())
    return docs


def long_document(megabytes: float, lines: bool) -> str:
    """One document of ``megabytes`` MB: English with an em dash per paragraph.

    All on one line, or (``lines``) a sentence a line with a blank line between paragraphs.
    """
    from faker import Faker

    fake = Faker("en_US")
    fake.seed_instance(20261125)
    paragraphs = []
    size = 0
    while size < megabytes * MB:
        sentences = [fake.sentence() for _ in range(8)]
        sentences[0] = sentences[0].replace(" ", " — ", 1)
        p = ("\n" if lines else " ").join(sentences)
        paragraphs.append(p)
        size += len(p.encode()) + 2
    text = ("\n\n" if lines else " ").join(paragraphs)
    return text.encode()[: int(megabytes * MB)].decode(errors="ignore")


def baseline(revision: str) -> ModuleType:
    """``hf_endpoint`` as it is at git ``revision``, imported as ``hf_endpoint_baseline``."""
    root = Path(__file__).resolve().parent.parent
    archive = subprocess.run(
        ["git", "archive", revision, "hf_endpoint"], cwd=root, capture_output=True, check=True
    ).stdout
    folder = Path(tempfile.mkdtemp(prefix="hf_endpoint_baseline_"))
    atexit.register(shutil.rmtree, folder, ignore_errors=True)
    with tarfile.open(fileobj=io.BytesIO(archive)) as tar:
        tar.extractall(folder, filter="data")
    (folder / "hf_endpoint").rename(folder / "hf_endpoint_baseline")
    sys.path.insert(0, str(folder))
    module = importlib.import_module("hf_endpoint_baseline")
    module.__revision__ = revision
    return module


def measure_all(
    split: dict[str, Callable[[str], object]], docs: list[str], repeat: int
) -> dict[str, float]:
    """MB/s of each splitter, best of ``repeat`` turns (LlamaIndex's: one).

    The splitters take turns, in reverse order every other turn: one that runs
    right after another on the same text finds the CPU caches warm.
    """
    total = sum(len(d.encode()) for d in docs)
    best = dict.fromkeys(split, float("inf"))
    for turn in range(repeat):
        order = list(split.items())
        for label, splitter in order[::-1] if turn % 2 else order:
            if turn and label.startswith("LlamaIndex"):
                continue
            gc.collect()  # start every splitter with the same heap
            start = time.perf_counter()
            for doc in docs:
                splitter(doc)
            best[label] = min(best[label], time.perf_counter() - start)
    return {label: total / MB / seconds for label, seconds in best.items()}


def _size_settings() -> tuple[dict[str, object], dict[str, object]]:
    word = {"strategy": "word", "max_chunk_size": WORDS, "overlap": 100}
    sentence = {"strategy": "sentence", "max_chunk_size": WORDS, "sentence_overlap": 1}
    return word, sentence


def _recursive_settings(group: str) -> dict[str, object]:
    return {"strategy": "recursive", "max_chunk_size": WORDS, "separator_group": group}


def ours(
    group: str, old: ModuleType | None, strategies: tuple[str, ...] = ("word", "sentence")
) -> dict[str, Callable[[str], object]]:
    """Our strategies (and those at the baseline revision) with 250-word chunks.

    The settings are built once, as the README does, so that each call measures the chunking.
    """
    from hf_endpoint import ChunkingSettings, chunk_offsets

    word, sentence = _size_settings()
    settings = {
        f"word ({WORDS} words, overlap 100)": word,
        f"sentence ({WORDS} words)": sentence,
        f"recursive, {group} ({WORDS} words)": _recursive_settings(group),
        "none": {"strategy": "none"},
    }
    split: dict[str, Callable[[str], object]] = {}
    for label, chosen in settings.items():
        if label.split()[0].rstrip(",") not in strategies:
            continue
        built = ChunkingSettings.from_dict(chosen)
        split[f"hf_endpoint {label}"] = lambda d, s=built: chunk_offsets(d, s)
        if old is not None and chosen["strategy"] != "none":
            built_then = old.ChunkingSettings.from_dict(chosen)
            split[f"hf_endpoint {label.split()[0].rstrip(',')} at {old.__revision__}"] = (
                lambda d, s=built_then: old.chunk_offsets(d, s)
            )
    return split


def icu_word_count() -> Callable[[str], int]:
    """ICU's word iterator walked from Python, counting the words (status not WORD_NONE)."""
    import icu

    iterator = icu.BreakIterator.createWordInstance(icu.Locale.getRoot())

    def count(text: str) -> int:
        iterator.setText(text)
        words = 0
        for _ in iterator:
            if iterator.getRuleStatus() != 0:
                words += 1
        return words

    return count


def splitters(docs: list[str], old: ModuleType | None = None) -> dict[str, Callable[[str], object]]:
    """Every splitter, configured for ``docs`` at a comparable chunk size."""
    import semchunk
    import tiktoken
    from langchain_text_splitters import RecursiveCharacterTextSplitter
    from llama_index.core.node_parser import SentenceSplitter
    from semantic_text_splitter import TextSplitter

    from hf_endpoint.chunking._segment import word_ends

    sample = docs[: max(1, len(docs) // 10)]
    words = sum(len(word_ends(d)) for d in sample)
    chars_per_chunk = round(sum(len(d) for d in sample) / words * WORDS)
    encoding = tiktoken.get_encoding("cl100k_base")
    tokens_per_chunk = round(sum(len(encoding.encode(d)) for d in sample) / words * WORDS)

    lc = RecursiveCharacterTextSplitter(chunk_size=chars_per_chunk, chunk_overlap=0)
    li = SentenceSplitter(chunk_size=tokens_per_chunk, chunk_overlap=0)
    sem_words = semchunk.chunkerify(lambda text: len(text.split()), WORDS)
    sem_chars = semchunk.chunkerify(len, chars_per_chunk)
    sts = TextSplitter(chars_per_chunk)
    spaced = " " in sample[0][:2000]
    split = ours("plaintext", old, ("word", "sentence", "recursive"))
    split["ICU word iterator from Python, counting words"] = icu_word_count()
    split[f"semchunk ({'250 words by split()' if spaced else f'{chars_per_chunk} characters'})"] = (
        sem_words if spaced else sem_chars
    )
    split[f"semantic-text-splitter ({chars_per_chunk} characters)"] = sts.chunks
    split[f"LangChain RecursiveCharacterTextSplitter ({chars_per_chunk} characters)"] = (
        lc.split_text
    )
    split[f"LlamaIndex SentenceSplitter ({tokens_per_chunk} tokens)"] = li.split_text
    return split


def recursive_splitters(
    docs: list[str], markdown: bool, old: ModuleType | None = None
) -> dict[str, Callable[[str], object]]:
    """Our strategies beside LangChain's recursive and markdown splitters."""
    from langchain_text_splitters import (
        Language,
        MarkdownHeaderTextSplitter,
        RecursiveCharacterTextSplitter,
    )

    from hf_endpoint.chunking._segment import word_ends

    sample = docs[: max(1, len(docs) // 10)]
    words = sum(len(word_ends(d)) for d in sample)
    chars_per_chunk = round(sum(len(d) for d in sample) / words * WORDS)
    group = "markdown" if markdown else "plaintext"
    split = ours(group, old, ("word", "sentence", "recursive"))
    split["ICU word iterator from Python, counting words"] = icu_word_count()
    if markdown:
        lc_md = RecursiveCharacterTextSplitter.from_language(
            Language.MARKDOWN, chunk_size=chars_per_chunk, chunk_overlap=0
        )
        headers = MarkdownHeaderTextSplitter([("#", "h1"), ("##", "h2"), ("###", "h3")])
        split[
            f"LangChain RecursiveCharacterTextSplitter, markdown ({chars_per_chunk} characters)"
        ] = lc_md.split_text
        split["LangChain MarkdownHeaderTextSplitter (at headings, no size bound)"] = (
            headers.split_text
        )
    else:
        lc = RecursiveCharacterTextSplitter(chunk_size=chars_per_chunk, chunk_overlap=0)
        split[f"LangChain RecursiveCharacterTextSplitter ({chars_per_chunk} characters)"] = (
            lc.split_text
        )
    return split


def scaling_splitters(old: ModuleType | None = None) -> dict[str, Callable[[str], object]]:
    import semchunk

    split = ours("plaintext", old, ("word", "sentence", "recursive", "none"))
    split["semchunk (250 words by split())"] = semchunk.chunkerify(lambda t: len(t.split()), WORDS)
    return split


def print_table(name: str, rows: list[tuple[str, float]]) -> None:
    word = rows[0][1]
    print(f"### {name}\n")
    print("| splitter | MB/s | this ÷ hf_endpoint word |")
    print("|---|---:|---:|")
    for label, rate in rows:
        print(f"| {label} | {rate:.1f} | {rate / word:.2f}× |")
    print()


def print_scaling(lines: bool, split: dict[str, Callable[[str], object]], repeat: int) -> None:
    layout = "many short lines" if lines else "one line"
    print(f"### One document on {layout}: English with an em dash per paragraph\n")
    print("Seconds per MB:\n")
    print("| MB | " + " | ".join(split) + " |")
    print("|---:|" + "---:|" * len(split))
    per_mb: dict[str, list[float]] = {label: [] for label in split}
    for megabytes in (0.5, 1, 2, 4, 8):
        rates = measure_all(split, [long_document(megabytes, lines)], repeat)
        for label, rate in rates.items():
            print(f"  {layout}, {megabytes} MB, {label}: {rate:.1f} MB/s", file=sys.stderr)
            per_mb[label].append(1 / rate)
        print(f"| {megabytes} | " + " | ".join(f"{1 / r:.4f}" for r in rates.values()) + " |")
    cells = [f"{max(costs) / min(costs):.2f}" for costs in per_mb.values()]
    print("| largest ÷ smallest | " + " | ".join(cells) + " |")
    print()


def run_corpus(
    name: str, docs: list[str], split: dict[str, Callable[[str], object]], repeat: int
) -> list[tuple[str, float]]:
    size = sum(len(d.encode()) for d in docs) / MB
    print(f"{name}: {len(docs)} documents, {size:.1f} MB", file=sys.stderr)
    rows = list(measure_all(split, docs, repeat).items())
    for label, rate in rows:
        print(f"  {label}: {rate:.1f} MB/s", file=sys.stderr)
    return rows


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument(
        "--section",
        nargs="+",
        choices=["throughput", "recursive", "scaling"],
        default=["throughput", "recursive", "scaling"],
    )
    parser.add_argument("--baseline", metavar="REV", help="also measure git revision REV")
    args = parser.parse_args()
    _tiktoken_cache()
    old = baseline(args.baseline) if args.baseline else None
    print(
        f"\nMachine: {platform.processor() or platform.machine()}, {os.cpu_count()} cores, "
        f"Python {platform.python_version()}\n"
    )

    if "throughput" in args.section:
        corpora = (
            ("English", "en_US", False),
            ("English with an em dash in every paragraph (not ASCII)", "en_US", True),
            ("Chinese", "zh_CN", False),
        )
        for name, locale, typographic in corpora:
            docs = corpus(locale, typographic)
            print_table(name, run_corpus(name, docs, splitters(docs, old), args.repeat))

    if "recursive" in args.section:
        for name, docs, markdown in (
            ("Recursive strategy: English plain text", corpus("en_US"), False),
            ("Recursive strategy: English markdown", markdown_corpus(), True),
        ):
            rows = run_corpus(name, docs, recursive_splitters(docs, markdown, old), args.repeat)
            print_table(name, rows)

    if "scaling" in args.section:
        split = scaling_splitters(old)
        for lines in (False, True):
            print_scaling(lines, split, args.repeat)


if __name__ == "__main__":
    main()

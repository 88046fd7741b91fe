"""Chunking throughput: our word and sentence strategies beside other splitters.

Run: ``make bench`` (or ``.venv/bin/python benchmarks/bench_chunking.py``).

Corpora, generated with a fixed seed so every run sees the same text:
English and Chinese prose from Faker's ``en_US`` and ``zh_CN`` word lists (and
the English once more with an em dash in every paragraph, which takes text off
the ASCII fast path), at least 4 MB of UTF-8 each, cut into documents of about 10 kB (what an ingestion
pipeline hands a splitter). Every splitter gets the same documents and a
comparable chunk size: 250 words, or the number of characters / tokens that 250
ICU words take on average in that corpus. Throughput is UTF-8 megabytes per
second, the best of ``--repeat`` runs.
"""

from __future__ import annotations

import argparse
import gc
import os
import platform
import sys
import time
from collections.abc import Callable
from pathlib import Path

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


def measure(split: Callable[[str], object], docs: list[str], repeat: int) -> float:
    total = sum(len(d.encode()) for d in docs)
    best = float("inf")
    gc.collect()  # start every splitter with the same heap
    for _ in range(repeat):
        start = time.perf_counter()
        for doc in docs:
            split(doc)
        best = min(best, time.perf_counter() - start)
    return total / MB / best


def splitters(docs: list[str]) -> dict[str, Callable[[str], object]]:
    """Every splitter, configured for ``docs`` at a comparable chunk size."""
    import semchunk
    import tiktoken
    from langchain_text_splitters import RecursiveCharacterTextSplitter
    from llama_index.core.node_parser import SentenceSplitter
    from semantic_text_splitter import TextSplitter

    from hf_endpoint import chunk_offsets
    from hf_endpoint._segment import word_ends

    sample = docs[: max(1, len(docs) // 10)]
    words = sum(len(word_ends(d)) for d in sample)
    chars_per_chunk = round(sum(len(d) for d in sample) / words * WORDS)
    encoding = tiktoken.get_encoding("cl100k_base")
    tokens_per_chunk = round(sum(len(encoding.encode(d)) for d in sample) / words * WORDS)

    word = {"strategy": "word", "max_chunk_size": WORDS, "overlap": 100}
    sentence = {"strategy": "sentence", "max_chunk_size": WORDS, "sentence_overlap": 1}
    lc = RecursiveCharacterTextSplitter(chunk_size=chars_per_chunk, chunk_overlap=0)
    li = SentenceSplitter(chunk_size=tokens_per_chunk, chunk_overlap=0)
    sem_words = semchunk.chunkerify(lambda text: len(text.split()), WORDS)
    sem_chars = semchunk.chunkerify(len, chars_per_chunk)
    sts = TextSplitter(chars_per_chunk)
    spaced = " " in sample[0][:2000]
    return {
        f"hf_endpoint word ({WORDS} words, overlap 100)": lambda d: chunk_offsets(d, word),
        f"hf_endpoint sentence ({WORDS} words)": lambda d: chunk_offsets(d, sentence),
        f"semchunk ({'250 words by split()' if spaced else f'{chars_per_chunk} characters'})": (
            sem_words if spaced else sem_chars
        ),
        f"semantic-text-splitter ({chars_per_chunk} characters)": sts.chunks,
        f"LangChain RecursiveCharacterTextSplitter ({chars_per_chunk} characters)": lc.split_text,
        f"LlamaIndex SentenceSplitter ({tokens_per_chunk} tokens)": li.split_text,
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeat", type=int, default=3)
    args = parser.parse_args()
    _tiktoken_cache()

    results: dict[str, list[tuple[str, float]]] = {}
    corpora = (
        ("English", "en_US", False),
        ("English with an em dash in every paragraph (not ASCII)", "en_US", True),
        ("Chinese", "zh_CN", False),
    )
    for name, locale, typographic in corpora:
        docs = corpus(locale, typographic)
        size = sum(len(d.encode()) for d in docs) / MB
        print(f"{name}: {len(docs)} documents, {size:.1f} MB", file=sys.stderr)
        rows = []
        for label, split in splitters(docs).items():
            slow = label.startswith("LlamaIndex")
            rate = measure(split, docs, 1 if slow else args.repeat)
            print(f"  {label}: {rate:.1f} MB/s", file=sys.stderr)
            rows.append((label, rate))
        results[name] = rows

    print(
        f"\nMachine: {platform.processor() or platform.machine()}, {os.cpu_count()} cores, "
        f"Python {platform.python_version()}\n"
    )
    for name, rows in results.items():
        ours = rows[0][1]
        print(f"### {name}\n")
        print("| splitter | MB/s | hf_endpoint word ÷ this |")
        print("|---|---:|---:|")
        for label, rate in rows:
            print(f"| {label} | {rate:.1f} | {ours / rate:.2f}× |")
        print()


if __name__ == "__main__":
    main()

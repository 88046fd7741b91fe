"""``hf-endpoint demo``: the whole pipeline on a bundled corpus, offline by default.

With no ``HF_ENDPOINT_URL`` set, it starts a local endpoint serving
all-MiniLM-L6-v2 (no token, no internet); with one (and ``HF_TOKEN``), it uses
that endpoint. It chunks a few dozen short English and Chinese documents with
Elasticsearch's sentence strategy, embeds them through the LangChain adapter
into an ``InMemoryVectorStore`` and through the LlamaIndex adapter into a
``VectorStoreIndex``, and prints the chunks and the top hits for a few queries.
Then it retrieves eight chunks per query and reranks them through the endpoint's
``/rerank`` (``HF_RERANK_URL`` when set; with ``HF_ENDPOINT_URL`` alone, that step
is skipped, as an embedding endpoint does not rerank).

all-MiniLM-L6-v2 is an English model: it matches the Chinese queries to the
Chinese documents through the few tokens they share, not through their
meaning. For Chinese and other languages, deploy a multilingual model on the
endpoint, such as intfloat/multilingual-e5-small or BAAI/bge-m3.

This command is the one place in ``hf_endpoint`` that uses the adapters, and
only when it runs; it needs the ``langchain``, ``llama-index`` and (for the
local endpoint) ``server`` extras.
"""

from __future__ import annotations

import contextlib
import json
import os
import time
from collections.abc import Callable, Iterator, Sequence
from importlib import resources
from typing import Any

from pydantic import SecretStr

from .chunking._strategies import chunk_offsets
from .config._auth import find_api_key
from .config.settings import ChunkingSettings

__all__ = ["draw_chunks", "run_demo", "sample_documents"]

QUERIES = [
    "How do I repair a puncture on my bicycle?",
    "Which tea is oxidised before drying?",
    "大熊猫每天吃多少竹子？",
    "从北京到上海坐高铁要多久？",
]
SETTINGS = ChunkingSettings(strategy="sentence", max_chunk_size=20, sentence_overlap=1)


def sample_documents() -> list[dict[str, str]]:
    """The bundled corpus: ``{"id", "lang", "text"}`` records."""
    data = resources.files("hf_endpoint").joinpath("data/sample_docs.jsonl").read_text("utf-8")
    return [json.loads(line) for line in data.splitlines() if line.strip()]


def _wrap(text: str, width: int) -> list[tuple[int, int]]:
    """``(start, end)`` of each display line: at most ``width`` characters, broken after
    a space where one is near, and at line feeds."""
    lines = []
    start = 0
    while start < len(text):
        end = min(start + width, len(text))
        feed = text.find("\n", start, end)
        if feed >= 0:
            end = feed + 1
        elif end < len(text):
            space = text.rfind(" ", start + width // 2, end)
            end = space + 1 if space >= 0 else end
        lines.append((start, end))
        start = end
    return lines or [(0, 0)]


def _lanes(spans: Sequence[tuple[int, int]]) -> list[int]:
    """A lane per span, so that spans sharing characters never share a lane."""
    ends: list[int] = []
    lanes = []
    for start, end in spans:
        lane = next((i for i, e in enumerate(ends) if e <= start), len(ends))
        if lane == len(ends):
            ends.append(end)
        ends[lane] = end
        lanes.append(lane)
    return lanes


def draw_chunks(
    text: str, spans: Sequence[tuple[int, int]], *, width: int = 80, title: str | None = None
) -> Any:
    """A matplotlib ``Figure``: ``text`` in a monospace font, each chunk ``(start, end)``
    a numbered coloured bar under the characters it covers; chunks that overlap take
    separate lanes. Needs matplotlib (the ``docs`` extra); meant for text without
    double-width characters, whose columns would not line up.
    """
    from matplotlib.figure import Figure
    from matplotlib.patches import Rectangle

    lines = _wrap(text, width)
    lanes = _lanes(spans)
    lane_count = max(lanes, default=0) + 1
    row = 1.0 + 0.4 * lane_count + 0.35
    font = 10
    column = 0.6 * font / 72  # inches per character of a monospace font
    figure = Figure(figsize=(width * column / 0.96, (len(lines) * row + 0.8) * 0.2))
    axes = figure.add_axes((0.02, 0.0, 0.96, 1.0))
    axes.set_xlim(0, width)
    axes.set_ylim(len(lines) * row + 0.2, -0.6 if title is None else -1.6)
    axes.axis("off")
    if title is not None:
        axes.text(0, -1.1, title, fontsize=font + 1, fontweight="bold", va="center")
    colours = [f"C{i % 10}" for i in range(len(spans))]
    for i, (line_start, line_end) in enumerate(lines):
        top = i * row
        shown = text[line_start:line_end].replace("\n", " ").replace("\t", " ")
        axes.text(0, top + 0.45, shown, family="monospace", fontsize=font, va="center")
        for k, ((start, end), lane) in enumerate(zip(spans, lanes)):
            left, right = max(start, line_start), min(end, line_end)
            if left >= right:
                continue
            y = top + 1.0 + 0.4 * lane
            axes.add_patch(
                Rectangle((left - line_start, y), right - left, 0.32, color=colours[k], alpha=0.85)
            )
            if left == start:
                axes.text(
                    left - line_start + 0.3, y + 0.16, f"chunk {k}", fontsize=6.5,
                    color="white", fontweight="bold", va="center",
                )  # fmt: skip
    return figure


@contextlib.contextmanager
def _endpoint(say: Callable[[str], None]) -> Iterator[tuple[str, SecretStr | None]]:
    url = os.environ.get("HF_ENDPOINT_URL")
    if url:
        say(f"Using the endpoint at {url}")
        yield url, find_api_key()  # HF_TOKEN, HUGGINGFACEHUB_API_TOKEN, `hf auth login`
        return
    from .server import LocalEndpoint

    say(
        "No HF_ENDPOINT_URL set: starting a local endpoint with all-MiniLM-L6-v2 (offline, no token)..."
    )
    with LocalEndpoint("minilm") as endpoint:
        say(f"Local endpoint listening on {endpoint.url}")
        say(
            "all-MiniLM-L6-v2 is an English model: for Chinese and other languages, deploy a "
            "multilingual model such as intfloat/multilingual-e5-small or BAAI/bge-m3 on your endpoint."
        )
        yield endpoint.url, None


def _snippet(text: str, width: int = 70) -> str:
    text = " ".join(text.split())
    return text if len(text) <= width else text[: width - 1] + "…"


def run_demo(say: Callable[[str], None]) -> dict[str, Any]:
    """Run the demo, reporting through ``say``; return the top hit ids per adapter and query.

    Its last line says what ran, how long it took and where to go next."""
    started = time.monotonic()
    from langchain_core.vectorstores import InMemoryVectorStore
    from llama_index.core import Document, VectorStoreIndex
    from llama_index.core.ingestion import IngestionPipeline

    from langchain_hf_endpoint import HFEndpointEmbeddings, HFEndpointRerank, HFEndpointTextSplitter
    from llama_index_hf_endpoint import HFEndpointEmbedding, HFEndpointNodeParser

    docs = sample_documents()
    say(f"\n{len(docs)} sample documents, chunked with {json.dumps(SETTINGS.to_dict())}:")
    for doc in docs[:2] + docs[12:13]:
        for start, end in chunk_offsets(doc["text"], SETTINGS):
            say(f"  {doc['id']} [{start}:{end}] {_snippet(doc['text'][start:end])}")
    hits: dict[str, Any] = {"langchain": {}, "llama_index": {}, "rerank": {}}
    with _endpoint(say) as (url, token):
        say("\nLangChain: HFEndpointTextSplitter -> HFEndpointEmbeddings -> InMemoryVectorStore")
        splitter = HFEndpointTextSplitter(**{k: v for k, v in SETTINGS.to_dict().items()})
        chunks = splitter.create_documents(
            [d["text"] for d in docs], [{"id": d["id"]} for d in docs]
        )
        store = InMemoryVectorStore(HFEndpointEmbeddings(url=url, api_key=token))
        store.add_documents(chunks)
        say(f"  {len(chunks)} chunks embedded")
        for query in QUERIES:
            top = store.similarity_search(query, k=1)[0]
            hits["langchain"][query] = top.metadata["id"]
            say(f"  {query}\n    -> {top.metadata['id']}: {_snippet(top.page_content)}")

        rerank_url = os.environ.get("HF_RERANK_URL") or (
            None if os.environ.get("HF_ENDPOINT_URL") else url + "/rerank"
        )
        if rerank_url is None:
            say("\nRerank: skipped (set HF_RERANK_URL to an endpoint serving a reranker)")
        else:
            say(f"\nRerank: 8 retrieved chunks per query -> HFEndpointRerank ({rerank_url})")
            reranker = HFEndpointRerank(url=rerank_url, api_key=token, top_n=2)
            for query in QUERIES:
                best = reranker.compress_documents(store.similarity_search(query, k=8), query)
                hits["rerank"][query] = best[0].metadata["id"]
                say(f"  {query}")
                for hit in best:
                    score, hit_id = hit.metadata["relevance_score"], hit.metadata["id"]
                    say(f"    {score:.3f} {hit_id}: {_snippet(hit.page_content, 60)}")

        say(
            "\nLlamaIndex: IngestionPipeline(HFEndpointNodeParser, HFEndpointEmbedding) -> VectorStoreIndex"
        )
        parser = HFEndpointNodeParser(**SETTINGS.to_dict())
        embedding = HFEndpointEmbedding(url=url, api_key=token)
        nodes = IngestionPipeline(transformations=[parser, embedding]).run(
            documents=[Document(text=d["text"], id_=d["id"]) for d in docs]
        )
        say(f"  {len(nodes)} nodes embedded")
        retriever = VectorStoreIndex(nodes, embed_model=embedding).as_retriever(similarity_top_k=1)
        for query in QUERIES:
            node = retriever.retrieve(query)[0].node
            hits["llama_index"][query] = node.ref_doc_id
            say(f"  {query}\n    -> {node.ref_doc_id}: {_snippet(node.get_content())}")
    reranked = ", reranked" if hits["rerank"] else ""
    say(
        f"\nDone in {time.monotonic() - started:.1f} s: {len(docs)} documents chunked, embedded "
        f"through LangChain and LlamaIndex, searched{reranked}. Next: your own endpoint "
        "(HF_ENDPOINT_URL=... HF_TOKEN=... hf-endpoint demo), your own files "
        "(hf-endpoint embed --help), and the notebooks in notebooks/."
    )
    return hits

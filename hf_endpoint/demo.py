"""``hf-endpoint demo``: the whole pipeline on a bundled corpus, offline by default.

With no ``HF_ENDPOINT_URL`` set, it starts a local endpoint serving
all-MiniLM-L6-v2 (no token, no internet); with one (and ``HF_TOKEN``), it uses
that endpoint. It chunks a few dozen short English and Chinese documents with
Elasticsearch's sentence strategy, embeds them through the LangChain adapter
into an ``InMemoryVectorStore`` and through the LlamaIndex adapter into a
``VectorStoreIndex``, and prints the chunks and the top hits for a few queries.

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
from collections.abc import Callable, Iterator
from importlib import resources
from typing import Any

from pydantic import SecretStr

from .chunking import chunk_offsets
from .settings import ChunkingSettings

__all__ = ["run_demo", "sample_documents"]

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


@contextlib.contextmanager
def _endpoint(say: Callable[[str], None]) -> Iterator[tuple[str, SecretStr | None]]:
    url = os.environ.get("HF_ENDPOINT_URL")
    if url:
        say(f"Using the endpoint at {url}")
        token = os.environ.get("HF_TOKEN") or os.environ.get("HUGGINGFACEHUB_API_TOKEN")
        yield url, SecretStr(token) if token else None
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
    """Run the demo, reporting through ``say``; return the top hit ids per adapter and query."""
    from langchain_core.vectorstores import InMemoryVectorStore
    from llama_index.core import Document, VectorStoreIndex
    from llama_index.core.ingestion import IngestionPipeline

    from langchain_hf_endpoint import HFEndpointEmbeddings, HFEndpointTextSplitter
    from llama_index_hf_endpoint import HFEndpointEmbedding, HFEndpointNodeParser

    docs = sample_documents()
    say(f"\n{len(docs)} sample documents, chunked with {json.dumps(SETTINGS.to_dict())}:")
    for doc in docs[:2] + docs[12:13]:
        for start, end in chunk_offsets(doc["text"], SETTINGS):
            say(f"  {doc['id']} [{start}:{end}] {_snippet(doc['text'][start:end])}")
    hits: dict[str, Any] = {"langchain": {}, "llama_index": {}}
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
    return hits

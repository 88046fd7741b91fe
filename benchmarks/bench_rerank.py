"""Rerank throughput and client CPU against the local endpoint's /rerank, beside a raw loop.

Run: ``.venv/bin/python benchmarks/bench_rerank.py`` (``--minilm-docs 300 --hash-docs 10000
--repeat 3``).

The local endpoint runs in a subprocess with TEI's default ``max_client_batch_size``
of 32, once with the ``minilm`` backend (the real model: the endpoint is the
bottleneck; its /rerank embeds the query and the texts of every request) and once
with ``hash`` (no model: the client is). The documents are 24-word English sentences
(fixed seed), ranked in two workloads:

* one call: one query against every document;
* per query: what a RAG pipeline does, one call per query with 50 retrieved
  candidates (two requests each, 32 + 18).

Clients, each built once and reused, 32 documents per request:

* raw httpx loop: one ``httpx.Client``, ``post`` one request after another,
  ``response.json()``, scores put back by index, one sort per call: the baseline;
* hf_endpoint ``RerankClient.rerank`` (4 requests in flight) and ``arerank`` (one event
  loop for the whole run, calls awaited one after another);
* the adapters on top of it: LangChain ``HFEndpointRerank.compress_documents`` and
  LlamaIndex ``HFEndpointRerank.postprocess_nodes`` (documents and nodes built beforehand);
* LlamaIndex ``TextEmbeddingInference`` (llama-index-postprocessor-tei-rerank), which sends
  every node of a call in one request: TEI refuses more than 32, so it is called per 32
  nodes and the parts merged, as a user of it must.

Throughput is documents per second of wall time; CPU is the client process's CPU
seconds (``time.process_time``) per 10,000 documents; the server's CPU is not counted
(it is another process). Each is the best of ``--repeat`` runs (the machines are
shared). Every client's ranking of the first call is checked against the raw loop's.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import platform
import sys
import time
from collections.abc import Callable

import httpx

from hf_endpoint import RerankClient
from hf_endpoint.server import LocalEndpoint

BATCH = 32
CANDIDATES = 50
QUERY = "Which of these sentences talks about time, money and the weather?"
Job = tuple[str, range]  # a query and the documents it ranks
Run = Callable[[list[Job]], list[list[int]]]  # per job, document indices by decreasing score


def documents(n: int) -> list[str]:
    from faker import Faker

    fake = Faker("en_US")
    fake.seed_instance(13)
    return [" ".join(fake.words(24)) + "." for _ in range(n)]


def workloads(n: int) -> dict[str, list[Job]]:
    per_query = [
        (f"question {k} about time, money and the weather", range(start, start + CANDIDATES))
        for k, start in enumerate(range(0, n - CANDIDATES + 1, CANDIDATES))
    ]
    return {"one call": [(QUERY, range(n))], f"per query, {CANDIDATES} candidates": per_query}


def raw_loop(url: str, docs: list[str]) -> Run:
    client = httpx.Client(timeout=300)

    def one(query: str, picked: range) -> list[int]:
        scores: dict[int, float] = {}
        for start in range(picked.start, picked.stop, BATCH):
            texts = docs[start : min(start + BATCH, picked.stop)]
            response = client.post(url, json={"query": query, "texts": texts})
            response.raise_for_status()
            for rank in response.json():
                scores[start + rank["index"]] = rank["score"]
        return sorted(scores, key=lambda i: (-scores[i], i))

    return lambda jobs: [one(q, r) for q, r in jobs]


def ours_sync(url: str, docs: list[str]) -> Run:
    client = RerankClient(url, None, rate_limit=1_000_000, timeout=300)

    def one(query: str, picked: range) -> list[int]:
        return [
            picked.start + r.index for r in client.rerank(query, docs[picked.start : picked.stop])
        ]

    return lambda jobs: [one(q, r) for q, r in jobs]


def ours_async(url: str, docs: list[str]) -> Run:
    client = RerankClient(url, None, rate_limit=1_000_000, timeout=300)
    loop = asyncio.new_event_loop()  # one for the whole run, as in an async app

    async def go(jobs: list[Job]) -> list[list[int]]:
        out = []
        for query, picked in jobs:
            result = await client.arerank(query, docs[picked.start : picked.stop])
            out.append([picked.start + r.index for r in result])
        return out

    return lambda jobs: loop.run_until_complete(go(jobs))


def langchain(url: str, docs: list[str]) -> Run:
    from langchain_core.documents import Document

    from langchain_hf_endpoint import HFEndpointRerank

    prepared = [Document(page_content=d, id=str(i)) for i, d in enumerate(docs)]
    reranker = HFEndpointRerank(url=url, api_key=None, rate_limit=1_000_000, timeout=300)

    def one(query: str, picked: range) -> list[int]:
        out = reranker.compress_documents(prepared[picked.start : picked.stop], query)
        return [int(d.id or -1) for d in out]

    return lambda jobs: [one(q, r) for q, r in jobs]


def llama_index(url: str, docs: list[str]) -> Run:
    from llama_index.core.schema import NodeWithScore, TextNode

    from llama_index_hf_endpoint import HFEndpointRerank

    prepared = [NodeWithScore(node=TextNode(text=d, id_=str(i))) for i, d in enumerate(docs)]
    reranker = HFEndpointRerank(url=url, api_key=None, rate_limit=1_000_000, timeout=300)

    def one(query: str, picked: range) -> list[int]:
        out = reranker.postprocess_nodes(prepared[picked.start : picked.stop], query_str=query)
        return [int(n.node.node_id) for n in out]

    return lambda jobs: [one(q, r) for q, r in jobs]


def llama_tei_rerank(url: str, docs: list[str]) -> Run:
    from llama_index.core.schema import NodeWithScore, TextNode
    from llama_index.postprocessor.tei_rerank import TextEmbeddingInference

    prepared = [NodeWithScore(node=TextNode(text=d, id_=str(i))) for i, d in enumerate(docs)]
    reranker = TextEmbeddingInference(
        base_url=url.removesuffix("/rerank"), top_n=BATCH, timeout=300
    )

    def one(query: str, picked: range) -> list[int]:
        scored: list[NodeWithScore] = []
        for start in range(picked.start, picked.stop, BATCH):
            part = prepared[start : min(start + BATCH, picked.stop)]
            scored += reranker.postprocess_nodes(part, query_str=query)
        scored.sort(key=lambda n: (-(n.score or 0.0), int(n.node.node_id)))
        return [int(n.node.node_id) for n in scored]

    return lambda jobs: [one(q, r) for q, r in jobs]


CLIENTS: dict[str, Callable[[str, list[str]], Run]] = {
    "raw httpx loop (32 per request, one at a time)": raw_loop,
    "hf_endpoint RerankClient.rerank": ours_sync,
    "hf_endpoint RerankClient.arerank": ours_async,
    "LangChain HFEndpointRerank.compress_documents": langchain,
    "LlamaIndex HFEndpointRerank.postprocess_nodes": llama_index,
    "LlamaIndex TextEmbeddingInference (tei-rerank), per 32 nodes": llama_tei_rerank,
}


def measure(run: Run, jobs: list[Job], repeat: int) -> tuple[float, float, list[int]]:
    run([(QUERY, range(BATCH))])  # warm up: imports, connections, GET /info
    n = sum(len(r) for _, r in jobs)
    rates, cpus = [], []
    for _ in range(repeat):
        wall, cpu = time.perf_counter(), time.process_time()
        orders = run(jobs)
        wall, cpu = time.perf_counter() - wall, time.process_time() - cpu
        for order, (_, picked) in zip(orders, jobs, strict=True):
            assert sorted(order) == list(picked)  # every document, once
        rates.append(n / wall)
        cpus.append(cpu / n * 10_000)
    return max(rates), min(cpus), orders[0]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--minilm-docs", type=int, default=300)
    parser.add_argument("--hash-docs", type=int, default=10_000)
    parser.add_argument("--repeat", type=int, default=3)
    args = parser.parse_args()
    tables = []
    for backend, n in (("minilm", args.minilm_docs), ("hash", args.hash_docs)):
        docs = documents(n)
        results: dict[str, list[tuple[str, float, float]]] = {w: [] for w in workloads(n)}
        with LocalEndpoint(backend, in_process=False, max_client_batch_size=BATCH) as endpoint:
            url = endpoint.url + "/rerank"
            check = raw_loop(url, docs)
            expected = {w: check(jobs[:1])[0] for w, jobs in workloads(n).items()}
            for name, make in CLIENTS.items():
                run = make(url, docs)
                for workload, jobs in workloads(n).items():
                    rate, cpu, first = measure(run, jobs, args.repeat)
                    assert first == expected[workload], f"{name} ranks differently"
                    print(
                        f"{backend}, {workload}: {name}: {rate:.0f} docs/s, {cpu:.2f} CPU s / 10k",
                        file=sys.stderr,
                        flush=True,
                    )
                    results[workload].append((name, rate, cpu))
        tables.append((backend, n, results))

    print(
        f"\nMachine: {platform.machine()}, {os.cpu_count()} cores, Python {platform.python_version()}\n"
    )
    for backend, n, results in tables:
        for workload, rows in results.items():
            raw_rate, raw_cpu = rows[0][1], rows[0][2]
            print(f"#### `{backend}` backend, {n} documents, {workload}\n")
            print("| client | docs/s | ÷ raw loop | client CPU s / 10k | ÷ raw loop |")
            print("|---|---:|---:|---:|---:|")
            for name, rate, cpu in rows:
                print(
                    f"| {name} | {rate:.0f} | {rate / raw_rate:.2f} | {cpu:.2f} | {cpu / raw_cpu:.2f} |"
                )
            print()


if __name__ == "__main__":
    main()

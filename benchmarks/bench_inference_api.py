"""Embeddings through ``hf-endpoint inference-api`` beside calling the endpoint directly.

Run: ``.venv/bin/python benchmarks/bench_inference_api.py`` (``--texts 10000 --latency-calls
200 --repeat 3 --backend hash``).

The local endpoint (the Hugging Face side, requiring a key) and the service each run in a
subprocess; the endpoint is registered once with ``requests_per_minute`` high enough never
to wait. In one run, turn about:

* direct: ``EmbeddingClient`` on the endpoint (32 texts per request, 4 in flight);
* through the service: ``InferenceEndpoints.connect(...).client(id)``, the same client on
  ``POST /_inference/text_embedding/{id}`` (32 per request, 4 in flight), the service's own
  client then calling the endpoint.

Reported: embeddings per second of wall time and their ratio; the latency of one
single-text call (median and 90th percentile of ``--latency-calls`` calls one after another)
and what the service adds; and the service process's CPU seconds per 10,000 embeddings
(read from the process, ``psutil``). Each figure is the best of ``--repeat`` runs; vectors
through the service are checked against the direct ones.
"""

from __future__ import annotations

import argparse
import os
import platform
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import psutil

from hf_endpoint import EmbeddingClient, InferenceEndpoints
from hf_endpoint.server import LocalEndpoint

KEY = "hf_benchmark_key_0000000000"
READY = "hf-endpoint inference-api listening on "
RPM = 1_000_000


def texts(n: int) -> list[str]:
    words = [
        "time",
        "money",
        "weather",
        "river",
        "stone",
        "light",
        "paper",
        "music",
        "garden",
        "window",
    ]
    return [
        " ".join(words[(i * 7 + j) % len(words)] for j in range(16)) + f" {i}" for i in range(n)
    ]


def start_service(store: Path) -> tuple[subprocess.Popen[str], str]:
    root = Path(__file__).resolve().parent.parent
    process = subprocess.Popen(
        [sys.executable, "-m", "hf_endpoint.cli", "inference-api", "--port", "0",
         "--store", str(store)],
        stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True,
        env={**os.environ, "PYTHONPATH": str(root)},
    )  # fmt: skip
    assert process.stdout is not None
    line = process.stdout.readline()
    if not line.startswith(READY):
        raise RuntimeError(f"the service did not start: {line!r}")
    return process, line[len(READY) :].strip()


def throughput(client: EmbeddingClient, inputs: list[str]) -> tuple[float, list[list[float]]]:
    started = time.perf_counter()
    vectors = list(client.embed(inputs))
    return len(inputs) / (time.perf_counter() - started), vectors


def latencies(client: EmbeddingClient, calls: int) -> list[float]:
    seconds = []
    for i in range(calls):
        started = time.perf_counter()
        client.embed([f"one short text {i}"])
        seconds.append(time.perf_counter() - started)
    return seconds


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--texts", type=int, default=10_000)
    parser.add_argument("--latency-calls", type=int, default=200)
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--backend", default="hash", choices=["hash", "minilm"])
    args = parser.parse_args()
    inputs = texts(args.texts)
    with (
        tempfile.TemporaryDirectory() as tmp,
        LocalEndpoint(args.backend, api_key=KEY, in_process=False) as hf,
    ):
        service, url = start_service(Path(tmp) / "store.sqlite3")
        try:
            endpoints = InferenceEndpoints.connect(url, max_concurrency=4, batch_size=32)
            body = {
                "service": "hugging_face",
                "service_settings": {
                    "api_key": KEY,
                    "url": hf.url,
                    "rate_limit": {"requests_per_minute": RPM},
                },
            }
            endpoints.put("text_embedding", "bench", body)
            options = {"max_concurrency": 4, "batch_size": 32, "rate_limit": RPM}
            direct = EmbeddingClient(hf.url, KEY, **options)  # type: ignore[arg-type]
            through = endpoints.client("bench")
            assert isinstance(through, EmbeddingClient)
            throughput(direct, inputs[:64])  # connections, GET /info and the token counter
            throughput(through, inputs[:64])
            process = psutil.Process(service.pid)
            best: dict[str, float] = {}
            for _ in range(args.repeat):
                rate, expected = throughput(direct, inputs)
                best["direct"] = max(best.get("direct", 0.0), rate)
                cpu = process.cpu_times()
                rate, got = throughput(through, inputs)
                spent = sum(process.cpu_times()[:2]) - sum(cpu[:2])
                assert got == expected, "vectors through the service differ"
                best["through"] = max(best.get("through", 0.0), rate)
                per_10k = spent * 10_000 / len(inputs)
                best["cpu"] = min(best.get("cpu", float("inf")), per_10k)
                for name, client in (("direct", direct), ("through", through)):
                    seconds = latencies(client, args.latency_calls)
                    p50 = statistics.median(seconds)
                    p90 = statistics.quantiles(seconds, n=10)[-1]
                    best[f"{name}_p50"] = min(best.get(f"{name}_p50", float("inf")), p50)
                    best[f"{name}_p90"] = min(best.get(f"{name}_p90", float("inf")), p90)
            direct.close()
            through.close()
        finally:
            service.terminate()
            service.wait(timeout=30)
    load = os.getloadavg()[0]
    print(f"{platform.processor() or platform.machine()}, {os.cpu_count()} CPUs, load {load:.1f}, "
          f"Python {platform.python_version()}, {args.backend} backend, {args.texts} texts, "
          f"best of {args.repeat}")  # fmt: skip
    print()
    print("| | direct | through the service | ratio |")
    print("|---|---:|---:|---:|")
    print(f"| embeddings/s (32 per request, 4 in flight) | {best['direct']:.0f} | "
          f"{best['through']:.0f} | {best['through'] / best['direct']:.2f} |")  # fmt: skip
    for q in ("p50", "p90"):
        d, t = best[f"direct_{q}"] * 1000, best[f"through_{q}"] * 1000
        print(f"| one-text call, {q} (ms) | {d:.2f} | {t:.2f} | +{t - d:.2f} ms |")
    print()
    print(f"service CPU per 10,000 embeddings: {best['cpu']:.2f} s")


if __name__ == "__main__":
    main()

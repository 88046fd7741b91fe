"""Memory of results: 200,000 vectors of 384 dimensions as lists and as a float32 array.

Run: ``.venv/bin/python benchmarks/bench_memory.py [--texts 200000]``.

Each mode runs in a fresh Python process against a local ``hash`` endpoint (in
another process), so that one mode's garbage does not count against the other;
the figure is the growth of the process's peak RSS over its state just before
the call.
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys

CHILD = """
import json, resource, sys
from hf_endpoint import EmbeddingClient
url, n, mode = sys.argv[1], int(sys.argv[2]), sys.argv[3]
texts = [f"text number {i} with a few words" for i in range(n)]
with EmbeddingClient(url, None, rate_limit=10_000_000, batch_size=64) as client:
    client.embed(texts[:64], dtype="float32" if mode == "float32" else None)
    before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    result = client.embed(texts, dtype="float32" if mode == "float32" else None)
    after = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
print(json.dumps({"rows": len(result), "growth_mib": (after - before) / 1024}))
"""


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--texts", type=int, default=200_000)
    args = parser.parse_args()
    from hf_endpoint.server import LocalEndpoint

    with LocalEndpoint("hash", in_process=False, max_client_batch_size=64) as endpoint:
        results = {}
        for mode in ("lists", "float32"):
            out = subprocess.run(
                [sys.executable, "-c", CHILD, endpoint.url, str(args.texts), mode],
                capture_output=True,
                text=True,
                check=True,
            )
            results[mode] = json.loads(out.stdout)
    array_mib = args.texts * 384 * 4 / 2**20
    print(f"| result | RSS growth (MiB) | ÷ a float32 array's {array_mib:.0f} MiB |")
    print("|---|---:|---:|")
    for mode, r in results.items():
        print(f"| {mode} | {r['growth_mib']:.0f} | {r['growth_mib'] / array_mib:.1f} |")


if __name__ == "__main__":
    main()

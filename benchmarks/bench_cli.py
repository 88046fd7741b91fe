"""``hf-endpoint embed`` end to end: wall time, CPU and peak memory of the command.

Run: ``.venv/bin/python benchmarks/bench_cli.py [--records 200000] [--tree OTHER_CHECKOUT]``.

The local endpoint (``hash`` backend, 384 dimensions) runs in a subprocess; the
command runs in another (its endpoint from ``--inference-config``, with a rate
limit of a million requests per minute so that the command is what is measured), reading ``--records`` JSONL records of 46 words each,
chunked with the word strategy (10 words, overlap 1: 5 chunks per record, so
200,000 records are 1,000,000 chunks) and writing every chunk's vector. Peak
memory is the command's maximum resident set size (``wait4``), CPU its user +
system seconds; the endpoint's CPU is not counted.

With ``--tree``, the same job also runs with another checkout of the package
first on ``PYTHONPATH`` (say, the previous release), alternating with this one,
and the table gives this checkout's ratio to it.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import random
import subprocess
import sys
import time
from pathlib import Path

from hf_endpoint.server import LocalEndpoint

ROOT = Path(__file__).resolve().parent.parent
WORDS = [
    "alpha",
    "bravo",
    "charlie",
    "delta",
    "echo",
    "foxtrot",
    "golf",
    "hotel",
    "india",
    "juliet",
    "kilo",
    "lima",
    "mike",
]


def write_records(path: Path, n: int) -> None:
    rng = random.Random(5)
    with path.open("w", encoding="utf-8") as f:
        for i in range(n):
            text = " ".join(rng.choice(WORDS) for _ in range(46))
            f.write(f'{{"id": "r{i}", "text": "{text}."}}\n')


def run(tree: Path, source: Path, output: Path, config: Path) -> dict[str, float]:
    output.unlink(missing_ok=True)
    for sidecar in output.parent.glob(output.name + ".*"):
        sidecar.unlink()
    command = [
        sys.executable, "-m", "hf_endpoint.cli", "embed", str(source), "-o", str(output),
        "--inference-config", str(config), "--quiet",
    ]  # fmt: skip
    env = {**os.environ, "PYTHONPATH": str(tree), "HF_TOKEN": ""}
    start = time.perf_counter()
    process = subprocess.Popen(command, env=env, cwd=tree)
    _, status, usage = os.wait4(process.pid, 0)
    wall = time.perf_counter() - start
    if os.waitstatus_to_exitcode(status) != 0:
        raise SystemExit(f"{command} failed in {tree}")
    return {
        "wall": wall,
        "cpu": usage.ru_utime + usage.ru_stime,
        "rss": usage.ru_maxrss / 1024,
        "bytes": output.stat().st_size,
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--records", type=int, default=200_000)
    parser.add_argument("--tree", type=Path, help="another checkout to compare with")
    parser.add_argument("--repeat", type=int, default=1)
    parser.add_argument("--workdir", type=Path, default=ROOT / "benchmarks" / "data")
    args = parser.parse_args()
    args.workdir.mkdir(parents=True, exist_ok=True)
    source, output = args.workdir / "cli_records.jsonl", args.workdir / "cli_vectors.jsonl"
    write_records(source, args.records)
    trees = [("this checkout", ROOT)] + ([("--tree", args.tree.resolve())] if args.tree else [])
    results: dict[str, list[dict[str, float]]] = {name: [] for name, _ in trees}
    config = args.workdir / "cli_endpoint.json"
    with LocalEndpoint("hash", in_process=False) as endpoint:
        # A rate limit far above what one machine sends: the command is measured, not the limit.
        config.write_text(json.dumps({
            "service": "hugging_face",
            "service_settings": {"url": endpoint.url, "api_key": "unused",
                                 "rate_limit": {"requests_per_minute": 1_000_000}},
            "chunking_settings": {"strategy": "word", "max_chunk_size": 10, "overlap": 1},
        }))  # fmt: skip
        for _ in range(args.repeat):
            for name, tree in trees:
                results[name].append(run(tree, source, output, config))
    output.unlink(missing_ok=True)
    print(
        f"{args.records:,} records, {args.records * 5:,} chunks of 384 dimensions; "
        f"Python {platform.python_version()}, {os.cpu_count()} CPUs; best of {args.repeat}"
    )
    print("| code | wall s | chunks/s | CPU s | peak RSS MiB | output MB | wall ratio |")
    print("|---|---:|---:|---:|---:|---:|---:|")
    base = min(r["wall"] for r in results[trees[-1][0]])
    for name, _ in trees:
        best = min(results[name], key=lambda r: r["wall"])
        print(
            f"| {name} | {best['wall']:.1f} | {args.records * 5 / best['wall']:,.0f} | "
            f"{best['cpu']:.1f} | {max(r['rss'] for r in results[name]):.0f} | "
            f"{best['bytes'] / 1e6:,.0f} | {best['wall'] / base:.2f} |"
        )


if __name__ == "__main__":
    main()

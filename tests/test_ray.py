"""hf_endpoint.ray on a local Ray (2 CPUs) against the local endpoint: faults, a killed
worker, and one rate limit shared by Ray workers and a process outside Ray."""

import base64
import contextlib
import json
import logging
import multiprocessing
import os
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

import numpy as np
import pytest

ray = pytest.importorskip("ray")
pq = pytest.importorskip("pyarrow.parquet")

from hf_endpoint import ConfigError, EmbeddingClient, chunk_offsets
from hf_endpoint.client.ratelimit import limit_key
from hf_endpoint.client.retry import RetryPolicy
from hf_endpoint.config.settings import ChunkingSettings
from hf_endpoint.ingest.limiter import _SlotActor
from hf_endpoint.ray import HORIZON, ClusterLimiter, cluster_limiter, embed_dataset
from hf_endpoint.server import Faults, HashBackend, LocalEndpoint

from .endpoints import raw_endpoint, reply
from .windows import TEST_RPM, assert_within_limit

pytestmark = pytest.mark.ray

KEY = "hf_ray_test_key"
FAST = RetryPolicy(max_retries=25, initial_backoff=0.005, max_backoff=0.05)
WORDS = {"strategy": "word", "max_chunk_size": 12, "overlap": 3}
HASH = HashBackend()


@pytest.fixture(scope="module")
def cluster():
    ray.init(
        num_cpus=2,
        include_dashboard=False,
        object_store_memory=200 * 1024 * 1024,
        logging_level=logging.WARNING,
    )
    context = ray.data.DataContext.get_current()
    context.enable_progress_bars = False
    yield ray.get_runtime_context().gcs_address
    ray.shutdown()


def records(n, prefix="record"):
    """Records of 1 to 9 sentences, some without an id, each with a column to carry."""
    return [
        {
            "id": None if i % 5 == 0 else f"{prefix}-{i}",
            "text": " ".join(f"Sentence {j} of {prefix} {i} has a few words." for j in range(i % 9 + 1)),
            "source": f"file-{i % 3}",
        }
        for i in range(n)
    ]  # fmt: skip


def assert_every_chunk_once(rows, given, settings=WORDS):
    """The rows are exactly the chunks of ``given``, each once, with the hash backend's vector."""
    settings = ChunkingSettings.coerce(settings)
    keys = [(r["id"], r["chunk"]) for r in rows]
    assert len(keys) == len(set(keys)), "a chunk came out twice"
    by_key = dict(zip(keys, rows))
    expected_keys = set()
    for record in given:
        text = record["text"]
        rid = record["id"]
        for k, (start, end) in enumerate(chunk_offsets(text, settings)):
            if rid is None:  # without an id: the text's hash, the same every run
                matches = [key for key in by_key if key[1] == k and by_key[key]["start"] == start
                           and by_key[key]["text"] == text[start:end] and key[0].isalnum()]  # fmt: skip
                assert matches, (text, k)
                key = matches[0]
            else:
                key = (rid, k)
            expected_keys.add(key)
            row = by_key[key]
            assert (row["start"], row["end"], row["text"]) == (start, end, text[start:end])
            assert row["source"] == record["source"]
            np.testing.assert_allclose(row["embedding"], HASH.vector(text[start:end]), rtol=1e-6)
    assert set(keys) == expected_keys


def test_every_chunk_exactly_once_with_the_right_vector_despite_faults(cluster):
    faults = Faults(rate_429=0.1, rate_503=0.1, rate_drop=0.05, retry_after=0, seed=5)
    given = records(400)
    with LocalEndpoint("hash", api_key=KEY, faults=faults) as ep:
        chunks = embed_dataset(
            ray.data.from_items(given),
            ep.url,
            api_key=KEY,
            rate_limit=1_000_000,
            retry_policy=FAST,
            chunking_settings=WORDS,
            concurrency=2,
            records_per_batch=25,
        )
        rows = chunks.take_all()
        statuses = ep.stats()["status"]
    assert {"429", "503", "0"} <= set(statuses)  # the faults did happen
    assert_every_chunk_once(rows, given)
    assert all(len(r["embedding"]) == 384 for r in rows)


def test_the_put_body_configures_the_workers_and_the_embedding_is_float32(cluster):
    given = records(30)
    with LocalEndpoint("hash", api_key=KEY) as ep:
        body = {
            "service": "hugging_face",
            "service_settings": {"url": ep.url, "api_key": KEY, "rate_limit": {"requests_per_minute": 100_000}},
            "chunking_settings": WORDS,
        }  # fmt: skip
        chunks = embed_dataset(ray.data.from_items(given), body, concurrency=1)
        table = chunks.to_arrow_refs()
        table = ray.get(table)
    import pyarrow as pa

    embedding_type = table[0].schema.field("embedding").type
    assert embedding_type == pa.list_(pa.float32(), 384)
    rows = [row for t in table for row in t.to_pylist()]
    assert_every_chunk_once(rows, given)


def openai_only(handler, body):
    """Only ``POST /v1/embeddings`` (base64 of the hash backend's vectors), as vLLM answers."""
    if handler.command != "POST" or handler.path != "/v1/embeddings":
        return reply(handler, 404, b'{"detail": "Not Found"}')
    request = json.loads(body)
    assert request["encoding_format"] == "base64"
    data = [
        {"index": i, "embedding": base64.b64encode(HASH.vector(t).astype("<f4").tobytes()).decode()}
        for i, t in enumerate(request["input"])
    ]
    reply(handler, 200, json.dumps({"data": data}).encode())


def test_the_workers_speak_the_openai_route_with_base64(cluster):
    given = records(40)
    with raw_endpoint(openai_only) as url:
        chunks = embed_dataset(
            ray.data.from_items(given),
            url,
            api_key=None,
            protocol="openai",
            rate_limit=1_000_000,
            chunking_settings=WORDS,
            concurrency=1,
        )
        rows = chunks.take_all()
    assert_every_chunk_once(rows, given)


def test_bad_arguments_are_refused_before_anything_runs(cluster):
    items = ray.data.from_items([{"body": "no text column"}])
    with pytest.raises(ConfigError, match=r"no \[text\] column"):
        embed_dataset(items, "http://127.0.0.1:9", limiter=object())
    clash = ray.data.from_items([{"text": "a", "start": 3}])
    with pytest.raises(ConfigError, match=r"\['start'\] would clash"):
        embed_dataset(clash, "http://127.0.0.1:9", limiter=object())
    with pytest.raises(ConfigError, match=r"\[concurrency\] must be an integer >= 1, not 0"):
        embed_dataset(items, "http://127.0.0.1:9", concurrency=0, limiter=object())
    with pytest.raises(ConfigError, match="batch_size"):
        embed_dataset(items, "http://127.0.0.1:9", batch_size=0, limiter=object())


def test_a_record_whose_text_is_not_a_string_fails_naming_it(cluster):
    items = ray.data.from_items([{"id": "fine", "text": "ok"}, {"id": "broken", "text": None}])
    with LocalEndpoint("hash") as ep:
        chunks = embed_dataset(items, ep.url, rate_limit=100_000, concurrency=1)
        with pytest.raises(
            Exception, match=r"record broken: \[text\] must be a string, not NoneType"
        ):
            chunks.take_all()


def _embedder_pids():
    pids = []
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                command = (entry / "cmdline").read_bytes()
            except OSError:
                continue
            if b"_Embedder" in command:
                pids.append(int(entry.name))
    return pids


def _sockets(server_port):
    """``{inode: client port}`` of the loopback connections to ``server_port``."""
    found = {}
    for table in ("/proc/net/tcp", "/proc/net/tcp6"):
        with open(table) as f:
            for line in f.readlines()[1:]:
                fields = line.split()
                local, remote = (int(a.rsplit(":", 1)[1], 16) for a in fields[1:3])
                if remote == server_port:
                    found[fields[9]] = local
    return found


def _worker_mid_batch(endpoint, at_least, at_most):
    """An embedding worker with a request being answered by ``endpoint`` now, which was
    served between ``at_least`` and ``at_most`` inputs so far; or None."""
    stats = endpoint.stats()
    sockets = _sockets(int(endpoint.url.rsplit(":", 1)[1]))
    for pid in _embedder_pids():
        ports = set()
        with contextlib.suppress(OSError):
            for fd in Path(f"/proc/{pid}/fd").iterdir():
                with contextlib.suppress(OSError):
                    inode = os.readlink(fd).removeprefix("socket:[").rstrip("]")
                    if inode in sockets:
                        ports.add(sockets[inode])
        served = sum(stats["served_by_port"].get(str(p), 0) for p in ports)
        if ports & set(stats["in_flight_ports"]) and at_least <= served <= at_most:
            return pid
    return None


@pytest.mark.skipif(not Path("/proc").is_dir(), reason="finds the worker through /proc")
def test_a_killed_worker_neither_loses_nor_repeats_chunks(cluster):
    given = records(96, prefix="kill")  # about 480 chunks
    # Slow answers and one batch of records per worker; the worker killed is one the endpoint
    # is answering a request of, that was already served part of its batch: the kill
    # interrupts a batch with work done, which must be done again. Beside two CPU burners a
    # worker embeds about 10 chunks a second and a killed one takes about 30 s to come back:
    # the work is sized to end well within the join's 300 s on such a machine.
    with LocalEndpoint("hash", faults=Faults(latency=0.1)) as ep:
        chunks = embed_dataset(
            ray.data.from_items(given),
            ep.url,
            rate_limit=1_000_000,
            chunking_settings=WORDS,
            concurrency=2,
            records_per_batch=48,
            batch_size=4,
            max_concurrency=2,
        )
        result = {}
        runner = threading.Thread(target=lambda: result.update(rows=chunks.take_all()))
        runner.start()
        deadline = time.monotonic() + 120
        victim = None
        while victim is None and runner.is_alive() and time.monotonic() < deadline:
            time.sleep(0.02)
            victim = _worker_mid_batch(ep, at_least=16, at_most=150)
        assert victim is not None, "no worker was seen in the middle of a batch"
        os.kill(victim, signal.SIGKILL)
        runner.join(timeout=300)
        assert not runner.is_alive()
        served = ep.stats()["served_inputs"]
    rows = result["rows"]
    assert_every_chunk_once(rows, given)
    assert served >= len(rows) + 16  # the killed worker's batch was embedded again


def _embed_beside_ray(url, rpm, texts):
    with EmbeddingClient(url, KEY, rate_limit=rpm, batch_size=1, max_concurrency=2) as client:
        client.embed(texts)


def test_ray_workers_and_another_process_share_one_limit(cluster):
    rpm = TEST_RPM
    given = records(24, prefix="shared")
    with LocalEndpoint("hash", api_key=KEY, in_process=False) as ep:
        try:  # the endpoint stamps arrivals: first in line for a core
            os.setpriority(os.PRIO_PROCESS, ep._process.pid, -10)
        except OSError:
            pass
        chunks = embed_dataset(
            ray.data.from_items(given),
            ep.url,
            api_key=KEY,
            rate_limit=rpm,
            chunking_settings=WORDS,
            concurrency=2,
            records_per_batch=10,
            batch_size=2,
            max_concurrency=2,
        )
        outside = multiprocessing.get_context("spawn").Process(
            target=_embed_beside_ray, args=(ep.url, rpm, [f"outside {i}" for i in range(44)])
        )
        outside.start()
        rows = chunks.take_all()
        outside.join(timeout=300)
        assert outside.exitcode == 0
        arrivals = ep.stats()["arrivals"]
    chunk_count = sum(len(chunk_offsets(r["text"], ChunkingSettings.coerce(WORDS))) for r in given)
    assert len(rows) == chunk_count
    assert_within_limit(arrivals, rpm, 44 + chunk_count // 2)


def test_a_cluster_limiter_pickles_without_its_slots(cluster):
    import pickle

    limiter = cluster_limiter("http://127.0.0.1:9/pickle", KEY, 60)
    wait_for_slot(limiter)
    copy = pickle.loads(pickle.dumps(limiter))
    assert isinstance(copy, ClusterLimiter) and copy.name == limiter.name
    assert KEY not in repr(copy) and KEY.encode() not in pickle.dumps(limiter)
    assert copy.try_acquire() > 0  # the copy has no slot of its own: the actor says wait


def test_a_slow_lease_answer_makes_the_next_lease_longer():
    # One slot per waiting caller, unless leases take long to come: then enough slots to
    # last a round trip (up to 64), so that asking does not become the limit.
    limiter = ClusterLimiter("not-started", 6000)  # a slot every 10 ms
    caller = (1, 0)
    assert limiter._demand(0.0, caller) == 2
    limiter._round_trip = 0.25
    assert limiter._demand(0.0, caller) == 27
    limiter._round_trip = 5.0
    assert limiter._demand(0.0, caller) == 64


def wait_for_slot(limiter):
    deadline = time.monotonic() + 60
    while (wait := limiter.try_acquire()) > 0 and time.monotonic() < deadline:
        time.sleep(wait)
    assert wait == 0.0


def first_slot_after_start(name, rpm):
    """When the first slot of a limiter actor started now opens, and when it started."""
    started = time.monotonic()
    actor = _SlotActor(name, rpm)  # as Ray runs it, at its first start or after a crash
    while True:
        _, _, given_ = actor.lease(1)
        if given_.slots:
            return given_.first, started
        time.sleep(given_.wait)


def test_a_limiter_actor_that_starts_again_opens_no_slot_for_a_while(cluster):
    """An earlier life may have handed out slots up to HORIZON ahead: it waits them out."""
    name = limit_key("http://127.0.0.1:9/restart", KEY, 6000)
    for _ in range(2):
        opens, started = first_slot_after_start(name, 6000)
        assert opens >= started + HORIZON


def test_hf_endpoint_embed_with_ray_writes_parquet(cluster, tmp_path):
    given = [r for r in records(50, prefix="cli") if r["id"] is not None]
    source = tmp_path / "records.jsonl"
    import json

    source.write_text("".join(json.dumps(r) + "\n" for r in given))
    output = tmp_path / "chunks.parquet"
    with LocalEndpoint("hash") as ep:
        done = subprocess.run(  # noqa: PLW1510 (the status is checked below)
            [sys.executable, "-m", "hf_endpoint.cli", "embed", str(source), "-o", str(output),
             "--url", ep.url, "--engine", "ray", "--address", cluster,
             "--strategy", "word", "--max-chunk-size", "12", "--overlap", "3"],
            capture_output=True, text=True, timeout=300,
            env={**os.environ, "HF_TOKEN": ""},
        )  # fmt: skip
    assert done.returncode == 0, done.stderr
    assert "record" in done.stderr  # the progress bar
    rows = pq.read_table(output).to_pylist()
    assert_every_chunk_once(rows, given)


# -- hf-endpoint embed --engine ray: the local engine's ids, output, sidecar and --resume --------


def write_jsonl(path, given):
    path.write_text(
        "".join(json.dumps({k: v for k, v in r.items() if v is not None}) + "\n" for r in given)
    )


def embed_command(source, output, url, engine, address, *more):
    return [sys.executable, "-m", "hf_endpoint.cli", "embed", str(source), "-o", str(output),
            "--url", url, "--engine", engine, "--address", address, "--batch-records", "10",
            "--strategy", "word", "--max-chunk-size", "12", "--overlap", "3", *more]  # fmt: skip


def embed(source, output, url, engine, address, *more):
    return subprocess.run(  # noqa: PLW1510 (the status is checked by the callers)
        embed_command(source, output, url, engine, address, *more),
        capture_output=True, text=True, timeout=300, env={**os.environ, "HF_TOKEN": ""},
    )  # fmt: skip


def error_line(stderr):
    """The command's own error line, among Ray's log lines."""
    return [line for line in stderr.splitlines() if line.startswith("hf-endpoint: ")][-1]


def mixed_records(n):
    """Records with string ids, integer ids and no id (``FILE:LINE``)."""
    given = records(n, prefix="engines")
    for i, record in enumerate(given):
        if i % 7 == 3:
            record["id"] = i
    return given


def test_both_engines_write_the_same_lines_and_sidecar(cluster, tmp_path):
    source = tmp_path / "records.jsonl"
    write_jsonl(source, mixed_records(120))
    with LocalEndpoint("hash") as ep:
        for engine in ("local", "ray"):
            done = embed(
                source, tmp_path / f"{engine}.jsonl", ep.url, engine, cluster, "--with-text"
            )
            assert done.returncode == 0, done.stderr
    local = (tmp_path / "local.jsonl").read_bytes()
    assert (tmp_path / "ray.jsonl").read_bytes() == local
    sidecars = [(tmp_path / f"{e}.jsonl.meta.json").read_text() for e in ("local", "ray")]
    assert sidecars[0] == sidecars[1]
    rows = [json.loads(line) for line in local.splitlines()]
    assert [r["id"] for r in rows][:6] == [
        f"{source}:1",
        "engines-1",
        "engines-2",
        3,
        "engines-4",
        f"{source}:6",
    ]
    for row in rows:
        for chunk in row["chunks"]:
            np.testing.assert_allclose(chunk["embedding"], HASH.vector(chunk["text"]), rtol=1e-6)


def test_the_parquet_rows_are_the_jsonl_rows_one_per_chunk(cluster, tmp_path):
    given = mixed_records(60)
    for i, record in enumerate(given):
        record["id"] = f"parquet-{i}"  # one type of id: a Parquet column holds one
    source = tmp_path / "records.jsonl"
    write_jsonl(source, given)
    with LocalEndpoint("hash") as ep:
        for output in ("local.jsonl", "ray.parquet"):
            engine = "ray" if output.endswith("parquet") else "local"
            done = embed(source, tmp_path / output, ep.url, engine, cluster, "--with-text")
            assert done.returncode == 0, done.stderr
    local = [
        (row["id"], k, c["start"], c["end"], c["text"], c["embedding"])
        for row in map(json.loads, (tmp_path / "local.jsonl").read_text().splitlines())
        for k, c in enumerate(row["chunks"])
    ]
    table = pq.read_table(tmp_path / "ray.parquet").to_pylist()
    parquet = [
        (r["id"], r["chunk"], r["start"], r["end"], r["text"], r["embedding"]) for r in table
    ]
    assert [row[:5] for row in parquet] == [row[:5] for row in local]
    np.testing.assert_allclose([r[5] for r in parquet], [r[5] for r in local], rtol=1e-6)


@pytest.mark.parametrize(
    ("bad", "message"),
    [
        (
            '{"id": "engines-2", "text": "a repeated id"}',
            'duplicate id "engines-2", first on line 3',
        ),
        ('{"id": "x", "text": ""}', "the text is empty"),
        ('{"id": "x" "text": "no comma"}', "not valid JSON"),
        ('{"id": [1], "text": "a list id"}', '"id" must be a string or an integer'),
    ],
)
def test_both_engines_refuse_a_bad_record_alike_after_writing_those_before_it(
    cluster, tmp_path, bad, message
):
    source = tmp_path / "records.jsonl"
    write_jsonl(source, mixed_records(40))
    lines = source.read_text().splitlines(keepends=True)
    source.write_text("".join(lines[:25]) + bad + "\n" + "".join(lines[25:]))
    with LocalEndpoint("hash") as ep:
        done = {
            e: embed(source, tmp_path / f"{e}.jsonl", ep.url, e, cluster) for e in ("local", "ray")
        }
    assert done["local"].returncode == done["ray"].returncode == 2
    assert error_line(done["local"].stderr) == error_line(done["ray"].stderr)
    assert f"{source}:26: " in error_line(done["ray"].stderr) and message in error_line(
        done["ray"].stderr
    )
    written = (tmp_path / "ray.jsonl").read_bytes()
    assert written == (tmp_path / "local.jsonl").read_bytes()
    assert len(written.splitlines()) == 25


def whole_lines(path):
    data = path.read_bytes() if path.exists() else b""
    return data.count(b"\n")


@pytest.mark.parametrize("stop", [signal.SIGKILL, signal.SIGINT], ids=["SIGKILL", "SIGINT"])
def test_embed_with_ray_stopped_and_resumed_writes_every_record_exactly_once(
    cluster, tmp_path, stop
):
    given = mixed_records(300)
    source = tmp_path / "records.jsonl"
    write_jsonl(source, given)
    output = tmp_path / "ray.jsonl"
    with LocalEndpoint("hash", faults=Faults(latency=0.1)) as ep:
        command = embed_command(source, output, ep.url, "ray", cluster)
        process = subprocess.Popen(
            command, stderr=subprocess.PIPE, text=True, env={**os.environ, "HF_TOKEN": ""}
        )
        deadline = time.monotonic() + 180
        while whole_lines(output) < 20 and process.poll() is None and time.monotonic() < deadline:
            time.sleep(0.01)
        assert process.poll() is None, "the run ended before it could be stopped"
        process.send_signal(stop)
        _, stderr = process.communicate(timeout=120)
        if stop == signal.SIGINT:
            assert process.returncode == 130, stderr
            assert "--resume continues from there" in error_line(stderr)
        else:
            assert process.returncode == -signal.SIGKILL
        kept = whole_lines(output)
        assert 20 <= kept < len(given)
        resumed = embed(source, output, ep.url, "ray", cluster, "--resume")
        assert resumed.returncode == 0, resumed.stderr
        assert f"hf-endpoint: {len(given) - kept} records (" in resumed.stderr
        fresh = embed(source, tmp_path / "local.jsonl", ep.url, "local", cluster)
        assert fresh.returncode == 0, fresh.stderr
    # In input order, each record once: the same bytes as one uninterrupted local run.
    assert output.read_bytes() == (tmp_path / "local.jsonl").read_bytes()

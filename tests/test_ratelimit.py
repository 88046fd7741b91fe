"""The rate limit: slot arithmetic with a fake clock, then threads, tasks, clients and
processes against the local endpoint, checked on the endpoint's arrival times."""

import asyncio
import json
import logging
import math
import multiprocessing
import os
import pickle
import subprocess
import sys
import time
from functools import partial

import httpx
import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st

from hf_endpoint import EmbeddingClient
from hf_endpoint.client import ratelimit
from hf_endpoint.client.ratelimit import (
    IDLE,
    JITTER,
    TOLERANCE,
    Grant,
    Pace,
    RateLimiter,
    grant,
    lease_of,
    limit_key,
    shared_limiter,
    take,
    take_leased,
)
from hf_endpoint.server import HashBackend

from .endpoints import stamping_endpoint
from .threads import run_together
from .windows import TEST_RPM, assert_within_limit, busiest_window

PACE = Pace.for_rate(600)  # slots about 0.1 s apart


# --- the arithmetic ------------------------------------------------------------------


def test_the_first_request_goes_at_once_and_the_next_one_interval_later():
    wait, due = take(IDLE, 100.0, PACE)
    assert wait == 0.0 and due == 100.0 + PACE.interval
    wait, still = take(due, 100.05, PACE)
    assert wait == pytest.approx(due - 100.05) and still == due  # nothing was taken


def test_the_interval_is_the_rate_with_a_margin_for_jitter_and_lateness():
    assert PACE.interval == pytest.approx(0.1 * (1 + TOLERANCE + JITTER))
    assert Pace.for_rate(3000).interval == pytest.approx(0.02 * 1.02)


def test_a_caller_slightly_late_keeps_the_schedule_a_later_one_restarts_it():
    _, due = take(IDLE, 0.0, PACE)
    _, next_due = take(due, due + TOLERANCE / 2, PACE)
    assert next_due == pytest.approx(due + PACE.interval)
    _, next_due = take(due, due + 5.0, PACE)  # idle for a while: no burst is saved up
    assert next_due == pytest.approx(due + 5.0 + PACE.interval)


@pytest.mark.parametrize("rpm", [0, -5])
def test_the_rate_must_be_positive(rpm):
    with pytest.raises(ValueError, match="requests_per_minute must be positive"):
        Pace.for_rate(rpm)


def test_the_rate_must_be_an_integer():
    with pytest.raises(TypeError, match="requests_per_minute must be an int, not float"):
        Pace.for_rate(60.5)


def test_a_grant_hands_out_consecutive_slots_within_the_horizon():
    given_, due = grant(IDLE, 10.0, PACE, count=3, horizon=1.0)
    assert (given_.first, given_.slots) == (10.0, 3)
    assert due == pytest.approx(10.0 + 3 * PACE.interval)
    later, due2 = grant(due, 10.0, PACE, count=100, horizon=1.0)
    assert later.first == due and later.slots == int((1.0 - 3 * PACE.interval) / PACE.interval) + 1
    assert due2 <= 11.0 + PACE.interval
    refused, same = grant(due2, 10.0, PACE, count=1, horizon=1.0)
    assert refused.slots == 0 and same == due2
    assert refused.wait == pytest.approx(due2 - 11.0)


def assert_spaced(sent, pace):
    """The limiter's own promise: any n requests span at least (n-1) intervals less the
    tolerance (from which the endpoint's follows, jitter included)."""
    worst, top = 0.0, math.inf
    for j, t in enumerate(sorted(sent)):
        g = t - j * pace.interval
        worst = max(worst, top - g) if j else 0.0
        top = max(top, g) if j else g
    assert worst <= pace.tolerance + 1e-9, worst


def schedule(lateness, rpm):
    """The times at which callers polling ``lateness`` seconds after each slot opens get one."""
    pace = Pace.for_rate(rpm)
    due, now, taken = IDLE, 0.0, []
    for late in lateness:
        now = max(now, (due if due > IDLE else 0.0) + late)
        wait, due = take(due, now, pace)
        if wait == 0:
            taken.append(now)
    return taken


LATENESS = st.one_of(
    st.sampled_from([0.0, TOLERANCE, TOLERANCE * 1.01, TOLERANCE * 2, -0.001]),
    st.floats(-1, 3),
)


@given(
    st.lists(LATENESS, min_size=1, max_size=400),
    st.sampled_from([60, 600, 3000, 20_000]),
    st.randoms(use_true_random=False),
)
def test_with_any_polls_and_jitter_up_to_its_margin_no_window_exceeds_the_limit(lateness, rpm, rnd):
    """Each poll comes some seconds after the next slot opens (before, when negative)."""
    taken = schedule(lateness, rpm)
    assert_spaced(taken, Pace.for_rate(rpm))
    arrivals = [t + rnd.uniform(0, JITTER) for t in taken]
    assert busiest_window(arrivals, rpm).excess <= 1e-9


@given(
    st.lists(
        st.tuples(st.floats(0, 0.05), st.integers(0, 4), st.floats(0, 1)), min_size=1, max_size=200
    ),
    st.sampled_from([60, 600, 3000, 20_000]),
    st.randoms(use_true_random=False),
)
def test_grants_and_takes_on_one_state_keep_the_promise(steps, rpm, rnd):
    """Takes (count 0) and grants mixed; each granted slot used at a random moment of its
    tolerance, or not at all; then jitter on the way to the endpoint."""
    pace = Pace.for_rate(rpm)
    due, now, sent = IDLE, 0.0, []
    for advance, count, use in steps:
        now += advance * 60 / rpm * 4
        if count == 0:
            wait, due = take(due, now, pace)
            if wait == 0:
                sent.append(now)
            continue
        given_, due = grant(due, now, pace, count, horizon=1.0)
        for k in range(given_.slots):
            if use > 0.3:
                sent.append(given_.first + k * given_.interval + use * given_.tolerance)
    assert_spaced(sent, pace)
    arrivals = [t + rnd.uniform(0, JITTER) for t in sent]
    assert busiest_window(arrivals, rpm).excess <= 1e-9


@given(
    st.lists(
        st.tuples(
            st.integers(0, 3),
            st.sampled_from([0.0, 0.1, 1.0]),
            st.sampled_from([0.0, 0.1, 1.0]),
            st.integers(1, 6),
            st.floats(0, 1),
        ),
        min_size=1,
        max_size=80,
    ),
    st.sampled_from([600, 3000, 20_000]),
    st.floats(-50, 50),
    st.randoms(use_true_random=False),
)
def test_leases_on_clocks_of_other_machines_keep_the_promise(steps, rpm, skew, rnd):
    """Four workers, each on a clock ``skew * worker`` seconds ahead of the granter's,
    lease slots over exchanges of random length and take them at random moments."""
    pace = Pace.for_rate(rpm)
    due, now, sent = IDLE, 0.0, []
    for worker, there, back, count, lateness in steps:
        offset = skew * worker
        asked = now + offset  # on the worker's clock
        now += there * pace.interval  # the granter answers a little later...
        given_, due = grant(due, now, pace, count, horizon=1.0)
        answered = now
        now += back * pace.interval  # ...and the answer takes a while to come back
        received = now + offset
        if not given_.slots:
            continue
        low, high = asked - answered, received - answered
        lease = lease_of(given_, low, high)
        local_due, clock = lease.first, received
        while True:
            if lateness < 0.5:  # at the last moment the tolerance allows
                clock = max(clock, local_due + lease.tolerance)
            else:
                clock += rnd.uniform(0, 2) * lateness * lease.interval
            wait, local_due = take_leased(lease, local_due, clock)
            if wait is None:
                break
            if wait == 0:
                sent.append(clock - offset)  # back on the granter's clock
            else:
                clock += wait
    assert_spaced(sent, pace)
    arrivals = [t + rnd.uniform(0, JITTER) for t in sent]
    assert busiest_window(arrivals, rpm).excess <= 1e-9


def test_a_lease_on_the_granters_machine_keeps_its_slots():
    given_ = Grant(first=10.0, slots=3, interval=0.1, tolerance=TOLERANCE)
    lease = lease_of(given_, 0.0, 0.0)
    assert lease == (10.0, pytest.approx(10.2), 0.1, TOLERANCE)
    assert take_leased(lease, lease.first, 9.95) == (pytest.approx(0.05), 10.0)
    wait, due = take_leased(lease, lease.first, 10.0)
    assert wait == 0.0 and due == pytest.approx(10.1)


def test_doubt_about_the_clock_narrows_a_lease():
    given_ = Grant(first=10.0, slots=5, interval=0.1, tolerance=0.002)
    close = lease_of(given_, 0.5, 0.501)  # known to within 1 ms
    assert close.first == pytest.approx(10.501) and close.tolerance == pytest.approx(0.001)
    far = lease_of(given_, 0.5, 0.52)  # 20 ms of doubt: wider spacing, an earlier end
    assert far.tolerance == 0.0 and far.interval == pytest.approx(0.118)
    assert far.last == pytest.approx(10.4 + 0.52 - 0.018)


def brute_force(times, rpm, shortest=1.0):
    a = sorted(times)
    best = -math.inf
    for i in range(len(a)):
        for j in range(i, len(a)):
            length = max(a[j] - a[i], shortest)
            best = max(best, (j - i + 1) - (1 + rpm / 60 * length))
    return best


@given(st.lists(st.floats(0, 10), min_size=1, max_size=60), st.sampled_from([30, 600, 3000]))
def test_busiest_window_finds_the_worst_window(times, rpm):
    assert busiest_window(times, rpm).excess == pytest.approx(brute_force(times, rpm), abs=1e-9)


def test_busiest_window_reports_where_and_by_how_much():
    times = [0.0, 0.1, 0.2, 5.0]  # three requests in 0.2 s: 1 s at 60 rpm allows 2
    window = busiest_window(times, 60)
    assert (window.start, window.length, window.requests, window.allowed) == (0.0, 1.0, 3, 2.0)
    assert window.excess == 1.0


# --- the limiter with a fake clock ------------------------------------------------------


def test_try_acquire_takes_now_or_says_how_long_to_wait():
    now = [50.0]
    limiter = RateLimiter(600, clock=lambda: now[0])
    assert limiter.try_acquire() == 0.0
    assert limiter.try_acquire() == pytest.approx(limiter.interval)
    assert limiter.try_acquire() == pytest.approx(limiter.interval)  # asking again takes nothing
    now[0] += limiter.interval
    assert limiter.try_acquire() == 0.0


def test_a_pickled_process_limiter_is_a_fresh_one():
    limiter = RateLimiter(600)
    assert limiter.try_acquire() == 0.0
    copy = pickle.loads(pickle.dumps(limiter))
    assert copy.requests_per_minute == 600 and copy.path is None
    assert copy.try_acquire() == 0.0


def test_hold_opens_no_slot_for_a_while():
    now = [0.0]
    limiter = RateLimiter(600, clock=lambda: now[0])
    limiter.hold(2.0)
    assert limiter.try_acquire() == pytest.approx(2.0)
    with pytest.raises(ValueError, match="seconds must be within"):
        limiter.hold(3600)


# --- one limit per machine --------------------------------------------------------------


def test_shared_limiters_are_one_per_url_key_and_rate():
    a = shared_limiter("http://127.0.0.1:1/a", "hf_secret_1", 600)
    assert shared_limiter("http://127.0.0.1:1/a", "hf_secret_1", 600) is a
    assert shared_limiter("http://127.0.0.1:1/a", "hf_secret_2", 600) is not a
    assert shared_limiter("http://127.0.0.1:1/a", "hf_secret_1", 601) is not a


def test_the_state_file_is_private_and_named_without_the_key():
    limiter = shared_limiter("http://127.0.0.1:1/private", "hf_secret_key_xyz", 600)
    limiter.try_acquire()
    path = limiter.path
    assert (
        path is not None
        and path.name == limit_key("http://127.0.0.1:1/private", "hf_secret_key_xyz", 600) + ".rate"
    )
    assert "hf_secret" not in str(path) and b"hf_secret" not in path.read_bytes()
    assert path.parent.stat().st_mode & 0o077 == 0
    assert "hf_secret" not in repr(limiter)


def test_a_pickled_shared_limiter_shares_the_same_state():
    limiter = shared_limiter("http://127.0.0.1:1/pickled", None, 60)
    copy = pickle.loads(pickle.dumps(limiter))
    assert copy is limiter  # in this process: the same object
    limiter.try_acquire()
    assert copy.try_acquire() > 0


def test_two_limiters_on_one_file_share_the_slots(tmp_path):
    path = tmp_path / "state.rate"
    a = RateLimiter(60, path=path)
    b = RateLimiter(60, path=path)
    assert a.try_acquire() == 0.0
    assert 0 < b.try_acquire() <= b.interval


def test_a_state_from_before_a_reboot_is_forgotten(tmp_path):
    path = tmp_path / "state.rate"
    path.write_bytes(ratelimit._RECORD.pack(time.monotonic() + 10 * 86400))
    assert RateLimiter(60, path=path).try_acquire() == 0.0


def test_without_file_locks_the_limit_is_per_process_with_a_warning(monkeypatch, caplog):
    monkeypatch.setattr(ratelimit, "fcntl", None)
    monkeypatch.setattr(ratelimit, "_warned", False)
    with caplog.at_level(logging.WARNING, logger="hf_endpoint.client.ratelimit"):
        limiter = shared_limiter("http://127.0.0.1:1/nolock", None, 60)
    assert limiter.path is None
    assert "this process only" in caplog.text


def test_a_directory_others_can_write_is_not_used(monkeypatch, tmp_path, caplog):
    shared = tmp_path / "run"
    shared.mkdir()
    (shared / "hf-endpoint").mkdir(mode=0o777)
    os.chmod(shared / "hf-endpoint", 0o777)
    monkeypatch.setenv("XDG_RUNTIME_DIR", str(shared))
    with caplog.at_level(logging.WARNING, logger="hf_endpoint.client.ratelimit"):
        assert ratelimit.runtime_dir() is None
    assert "writable by others" in caplog.text


def _take_in_child(path, queue):
    queue.put(RateLimiter(60, path=path).try_acquire())


def test_a_forked_child_shares_its_parents_limit(tmp_path):
    limiter = RateLimiter(60, path=tmp_path / "fork.rate")
    assert limiter.try_acquire() == 0.0
    context = multiprocessing.get_context("fork")
    queue = context.Queue()
    child = context.Process(target=_take_in_child, args=(limiter.path, queue))
    child.start()
    wait = queue.get(timeout=60)
    child.join(timeout=60)
    assert 0 < wait <= limiter.interval


# --- at the endpoint --------------------------------------------------------------------

RPM = TEST_RPM


@pytest.fixture(scope="module")
def endpoint():
    with stamping_endpoint("hf_rate_test") as ep:
        yield ep


def arrivals_within_limit(endpoint, rpm, expected):
    assert_within_limit(endpoint.stats()["arrivals"], rpm, expected)


def texts(prefix, n):
    return [f"{prefix} text {i}" for i in range(n)]


def test_threads_and_several_clients_share_one_limit(endpoint):
    endpoint.reset_stats()
    clients = [
        EmbeddingClient(endpoint.url, "hf_rate_test", rate_limit=RPM, batch_size=1)
        for _ in range(3)
    ]
    given = [texts(f"thread {k}", 17) for k in range(6)]
    # every client used by two threads, each call with up to 4 requests in flight
    got = run_together([partial(clients[k % 3].embed, given[k]) for k in range(6)])
    for client in clients:
        client.close()
    for batch, vectors in zip(given, got, strict=True):
        np.testing.assert_allclose(vectors, [HashBackend().vector(t) for t in batch], rtol=1e-6)
    arrivals_within_limit(endpoint, RPM, 102)


def test_asyncio_tasks_on_two_event_loops_share_one_limit(endpoint):
    """Tasks poll as the async client does: ``await asyncio.sleep(wait)`` between tries."""
    endpoint.reset_stats()
    limiter = shared_limiter(endpoint.url, "hf_rate_test", RPM)
    headers = {"Authorization": "Bearer hf_rate_test"}

    async def send(http, text):
        while (wait := limiter.try_acquire()) > 0:
            await asyncio.sleep(wait)
        response = await http.post(endpoint.url, json={"inputs": [text]})
        return response.status_code

    def loop(k):
        async def run():
            async with httpx.AsyncClient(headers=headers) as http:
                return await asyncio.gather(*(send(http, t) for t in texts(f"loop {k}", 50)))

        return asyncio.run(run())

    codes = run_together([partial(loop, k) for k in range(2)])
    assert codes == [[200] * 50] * 2
    arrivals_within_limit(endpoint, RPM, 100)


def _embed_in_process(url, prefix, n):
    with EmbeddingClient(url, "hf_rate_test", rate_limit=RPM, batch_size=1) as client:
        client.embed(texts(prefix, n))


def test_processes_and_threads_on_one_machine_share_one_limit(endpoint):
    endpoint.reset_stats()
    context = multiprocessing.get_context("spawn")
    children = [
        context.Process(target=_embed_in_process, args=(endpoint.url, f"process {k}", 34))
        for k in range(2)
    ]
    for child in children:
        child.start()
    _embed_in_process(endpoint.url, "parent", 34)
    for child in children:
        child.join(timeout=120)
        assert child.exitcode == 0
    arrivals_within_limit(endpoint, RPM, 102)


def write_records(path, prefix, n):
    sentence = "A record of the {p} run, number {i}, with enough words for a few chunks."
    lines = [
        json.dumps({"id": f"{prefix}-{i}", "text": " ".join([sentence.format(p=prefix, i=i)] * 4)})
        for i in range(n)
    ]
    path.write_text("\n".join(lines) + "\n")


def test_two_hf_endpoint_embed_runs_share_one_limit(endpoint, tmp_path):
    rpm = RPM
    body = {
        "service": "hugging_face",
        "service_settings": {
            "url": endpoint.url,
            "api_key": "hf_rate_test",
            "rate_limit": {"requests_per_minute": rpm},
        },
        "chunking_settings": {"strategy": "word", "max_chunk_size": 10, "overlap": 2},
    }
    config = tmp_path / "endpoint.json"
    config.write_text(json.dumps(body))
    endpoint.reset_stats()
    runs = []
    for name in ("first", "second"):
        write_records(tmp_path / f"{name}.jsonl", name, 125)
        command = [sys.executable, "-m", "hf_endpoint.cli", "embed", str(tmp_path / f"{name}.jsonl"),
                   "-o", str(tmp_path / f"{name}.out.jsonl"), "--inference-config", str(config),
                   "--batch-records", "8", "--quiet"]  # fmt: skip
        runs.append(subprocess.Popen(command, stderr=subprocess.PIPE, text=True))
    for run in runs:
        _, errors = run.communicate(timeout=300)
        assert run.returncode == 0, errors
    arrivals_within_limit(endpoint, rpm, 2 * 125 * 5 // 20)


def test_an_ingestion_pipeline_with_two_worker_processes_shares_one_limit(endpoint):
    from llama_index.core import Document
    from llama_index.core.ingestion import IngestionPipeline

    from llama_index_hf_endpoint import HFEndpointEmbedding

    rpm = RPM
    embedding = HFEndpointEmbedding(
        url=endpoint.url, api_key="hf_rate_test", rate_limit=rpm, embed_batch_size=2
    )
    documents = [Document(text=f"document number {i}", id_=f"doc-{i}") for i in range(200)]
    endpoint.reset_stats()
    nodes = IngestionPipeline(transformations=[embedding]).run(documents=documents, num_workers=2)
    assert sorted(n.id_ for n in nodes) == sorted(d.id_ for d in documents)
    assert all(len(n.embedding) == 384 for n in nodes)
    arrivals_within_limit(endpoint, rpm, 100)

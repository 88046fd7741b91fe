"""``hf-endpoint inference-api``: Elasticsearch 9.5's ``_inference`` API for ``hugging_face``,
checked with the official clients (elasticsearch-py 9.x, @elastic/elasticsearch 9.x), httpx
and curl-like raw requests, against the local endpoint as the Hugging Face side.

Every service here is real (uvicorn on a loopback port), every store a real SQLite file.
"""

import json
import logging
import os
import shutil
import subprocess
import sys
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import httpx
import pytest
from elasticsearch import (
    AuthenticationException,
    BadRequestError,
    Elasticsearch,
    NotFoundError,
)

from hf_endpoint import ConfigError, InferenceEndpoints
from hf_endpoint.inference_api import InferenceAPI, MasterKey, Store, open_store
from hf_endpoint.server import Faults, LocalEndpoint
from tests.endpoints import raw_endpoint, reply, stamping_endpoint
from tests.windows import TEST_RPM, assert_within_limit

HF_KEY = "hf_CanaryKeyThatMustNeverLeak0123"
REPO = Path(__file__).resolve().parent.parent


@pytest.fixture(scope="module")
def hf():
    """The Hugging Face side: the local endpoint, hash backend, requiring HF_KEY."""
    with LocalEndpoint("hash", api_key=HF_KEY) as endpoint:
        yield endpoint


@pytest.fixture
def service(tmp_path):
    with InferenceAPI(tmp_path / "store.sqlite3") as running:
        yield running


def hf_body(url, **extra):
    return {"service": "hugging_face", "service_settings": {"api_key": HF_KEY, "url": url}, **extra}


def es(service, **kwargs):
    return Elasticsearch(service.url, **kwargs)


# -- the original request's three examples --------------------------------------------


def test_the_python_example_runs_as_written_and_embeds_through_its_endpoint(hf, service):
    client = es(service)
    resp = client.inference.put(
        task_type="text_embedding",
        inference_id="hugging-face-embeddings",
        inference_config={
            "service": "hugging_face",
            "service_settings": {"api_key": HF_KEY, "url": hf.url},
        },
    )
    assert resp["inference_id"] == "hugging-face-embeddings"
    assert resp["service_settings"]["dimensions"] == 384
    assert "api_key" not in json.dumps(resp.body)
    embedded = client.inference.text_embedding(
        inference_id="hugging-face-embeddings", input=["first", "second"]
    )
    direct = InferenceEndpoints()
    direct.put("text_embedding", "direct", hf_body(hf.url))
    expected = direct.inference("direct", ["first", "second"])
    assert embedded.body == expected


def test_the_console_request_runs_as_written_and_embeds_through_its_endpoint(hf, service):
    console = (
        "PUT _inference/text_embedding/hugging-face-embeddings\n"
        '{ "service": "hugging_face", "service_settings": '
        f'{{ "api_key": "{HF_KEY}", "url": "{hf.url}" }} }}'
    )
    request_line, body = console.split("\n", 1)
    method, path = request_line.split(" ")
    answer = httpx.request(method, f"{service.url}/{path}", content=body.encode(),
                           headers={"Content-Type": "application/json"})  # fmt: skip
    assert answer.status_code == 200, answer.text
    assert answer.headers["x-elastic-product"] == "Elasticsearch"
    embedded = httpx.post(
        f"{service.url}/_inference/hugging-face-embeddings", json={"input": "some text"}
    )
    assert len(embedded.json()["text_embedding"][0]["embedding"]) == 384


def _node_ready():
    missing = None
    if shutil.which("node") is None:
        missing = "node is not installed"
    elif not (REPO / "tests/js/node_modules/@elastic/elasticsearch").exists():
        missing = "run `make js` (npm ci --prefix tests/js) to install @elastic/elasticsearch"
    if missing and os.environ.get("CI"):
        pytest.fail(f"CI runs the JavaScript example: {missing}")
    if missing:
        pytest.skip(missing)


def test_the_javascript_example_runs_as_written_with_the_official_client(hf, service):
    _node_ready()
    env = {
        **os.environ,
        "ES_URL": service.url,
        "HF_ACCESS_TOKEN": HF_KEY,
        "HF_ENDPOINT_URL": hf.url,
    }
    run = subprocess.run(
        ["node", "example.mjs"], check=False, cwd=REPO / "tests/js", env=env, capture_output=True,
        text=True, timeout=120,
    )  # fmt: skip
    assert run.returncode == 0, run.stderr
    created, embedded, missing = (json.loads(line) for line in run.stdout.splitlines())
    assert created["inference_id"] == "hugging-face-embeddings"
    assert [len(e["embedding"]) for e in embedded["text_embedding"]] == [384, 384]
    assert missing == {"name": "ResponseError", "status": 404}
    assert HF_KEY not in run.stdout + run.stderr


# -- the official Python client's calls and error classes ---------------------------------


def test_every_inference_call_of_the_official_client_succeeds(hf, service):
    client = es(service)
    client.inference.put_hugging_face(
        task_type="text_embedding",
        huggingface_inference_id="emb",
        service="hugging_face",
        service_settings={"api_key": HF_KEY, "url": hf.url},
        chunking_settings={"strategy": "word", "max_chunk_size": 40, "overlap": 10},
    )
    client.inference.put(
        task_type="rerank",
        inference_id="rr",
        inference_config=hf_body(hf.url + "/rerank", task_settings={"top_n": 2}),
    )
    listed = client.inference.get()
    assert [e["inference_id"] for e in listed["endpoints"]] == ["emb", "rr"]
    assert client.inference.get(task_type="rerank", inference_id="_all")["endpoints"][0][
        "task_settings"
    ] == {"top_n": 2}
    assert len(client.inference.inference(inference_id="emb", input="x")["text_embedding"]) == 1
    ranked = client.inference.rerank(
        inference_id="rr", query="fox", input=["a fox", "a dog", "a cat"]
    )
    assert len(ranked["rerank"]) == 2
    assert ranked["rerank"][0]["relevance_score"] >= ranked["rerank"][1]["relevance_score"]
    updated = client.inference.update(
        inference_id="emb",
        task_type="text_embedding",
        inference_config={"service_settings": {"rate_limit": {"requests_per_minute": 1200}}},
    )
    assert updated["service_settings"]["rate_limit"] == {"requests_per_minute": 1200}
    assert updated["chunking_settings"]["strategy"] == "word"
    assert client.inference.delete(inference_id="emb")["acknowledged"] is True
    assert client.inference.delete(task_type="rerank", inference_id="rr")["acknowledged"]
    assert client.inference.get()["endpoints"] == []


def test_errors_come_out_as_the_official_clients_classes_where_elasticsearch_s_would(hf, service):
    client = es(service)
    with pytest.raises(NotFoundError) as missing:
        client.inference.get(inference_id="nope")
    assert missing.value.body["error"]["reason"] == "Inference endpoint not found [nope]"
    with pytest.raises(BadRequestError) as invalid:
        client.inference.put(
            task_type="text_embedding",
            inference_id="bad",
            inference_config=hf_body(
                hf.url, chunking_settings={"strategy": "word", "max_chunk_size": 5}
            ),
        )
    assert invalid.value.error == "validation_exception"
    assert invalid.value.body["error"]["reason"].startswith("Validation Failed: 1: ")
    client.inference.put(
        task_type="text_embedding", inference_id="once", inference_config=hf_body(hf.url)
    )
    with pytest.raises(BadRequestError) as exists:  # Elasticsearch answers 400 here, not 409
        client.inference.put(
            task_type="text_embedding", inference_id="once", inference_config=hf_body(hf.url)
        )
    assert exists.value.error == "resource_already_exists_exception"
    with pytest.raises(BadRequestError):
        client.inference.update(
            inference_id="once", task_type="rerank", inference_config={"task_settings": {}}
        )
    with pytest.raises(NotFoundError):
        client.inference.update(inference_id="ghost", inference_config={"service_settings": {}})


def test_update_replaces_the_key_only_when_given_and_refuses_settings_elasticsearch_keeps(
    hf, service
):
    client = es(service)
    client.inference.put(
        task_type="text_embedding", inference_id="e", inference_config=hf_body(hf.url)
    )
    client.inference.update(
        inference_id="e",
        inference_config={"service_settings": {"rate_limit": {"requests_per_minute": 600}}},
    )
    assert client.inference.text_embedding(inference_id="e", input="still works")["text_embedding"]
    with pytest.raises(BadRequestError) as url_change:
        client.inference.update(
            inference_id="e", inference_config={"service_settings": {"url": hf.url + "/x"}}
        )
    assert "[service_settings.url] cannot be updated" in url_change.value.body["error"]["reason"]
    with pytest.raises(BadRequestError) as refused:  # the new key is tried: the endpoint refuses it
        client.inference.update(
            inference_id="e",
            inference_config={"service_settings": {"api_key": "hf_wrongwrongwrong"}},
        )
    assert "status [401]" in refused.value.body["error"]["caused_by"]["reason"]
    assert client.inference.text_embedding(inference_id="e", input="old key kept")["text_embedding"]


# -- state that survives ------------------------------------------------------------------


def test_a_restarted_service_serves_its_endpoints_without_the_key_given_again(hf, tmp_path):
    path = tmp_path / "store.sqlite3"
    with InferenceAPI(path) as first:
        es(first).inference.put(
            task_type="text_embedding", inference_id="kept", inference_config=hf_body(hf.url)
        )
    with InferenceAPI(path) as second:
        assert es(second).inference.text_embedding(inference_id="kept", input="a")["text_embedding"]


def test_a_store_copied_without_its_master_key_yields_no_key(hf, tmp_path):
    path = tmp_path / "store.sqlite3"
    with InferenceAPI(path) as running:
        es(running).inference.put(
            task_type="text_embedding", inference_id="k", inference_config=hf_body(hf.url)
        )
    copy = tmp_path / "elsewhere" / "copy.sqlite3"
    copy.parent.mkdir()
    shutil.copy(path, copy)
    with pytest.raises(ConfigError, match="sealed with another master key"):
        open_store(copy)  # a fresh key file is made beside the copy: it cannot open the store
    with pytest.raises(ConfigError, match="sealed with another master key"):
        Store(copy, MasterKey(os.urandom(32)))


def test_the_store_its_journal_and_its_key_file_are_private(hf, service):
    es(service).inference.put(
        task_type="text_embedding", inference_id="p", inference_config=hf_body(hf.url)
    )
    files = sorted(service.store.path.parent.iterdir())
    assert {f.name for f in files} >= {"store.sqlite3", "store.sqlite3.key", "store.sqlite3-wal"}
    for path in files:
        assert path.stat().st_mode & 0o777 == 0o600, path.name


SIGKILL_WRITER = r"""
import sys, httpx
url, hf_url, hf_key, log = sys.argv[1:5]
with httpx.Client(base_url=url, timeout=30) as http, open(log, "a") as out:
    for i in range(10_000):
        name = f"e{i % 12}"
        body = {"service": "hugging_face", "service_settings": {"api_key": hf_key, "url": hf_url}}
        for method, path, payload in (
            ("PUT", f"/_inference/text_embedding/{name}", body),
            ("PUT", f"/_inference/text_embedding/{name}/_update",
             {"service_settings": {"rate_limit": {"requests_per_minute": 1000 + i}}}),
            ("DELETE", f"/_inference/{name}", None) if i % 3 else ("GET", "/", None),
        ):
            out.write(f"start {method} {name}\n"); out.flush()
            r = http.request(method, path, json=payload)
            out.write(f"done {method} {name} {r.status_code}\n"); out.flush()
"""


def _start_service(store, *options):
    process = subprocess.Popen(
        [sys.executable, "-m", "hf_endpoint.cli", "inference-api", "--port", "0", "--store", str(store), *options],
        stdout=subprocess.PIPE, text=True, cwd=REPO, env={**os.environ, "PYTHONPATH": str(REPO)},
    )  # fmt: skip
    line = process.stdout.readline()
    assert line.startswith("hf-endpoint inference-api listening on "), line
    url = line.rsplit(" ", 1)[1].strip()
    for _ in range(600):  # workers start after the socket is bound: wait for an answer
        try:
            httpx.get(url + "/", timeout=5)
            break
        except httpx.TransportError:
            process.poll()
            assert process.returncode is None, "the service exited"
            time.sleep(0.05)
    return process, url


@pytest.mark.parametrize("round", range(4))
def test_sigkill_during_writes_leaves_each_endpoint_wholly_there_or_absent(hf, tmp_path, round):
    import random
    import signal

    store = tmp_path / "store.sqlite3"
    log = tmp_path / "writes.log"
    log.touch()
    service, url = _start_service(store)
    writer = subprocess.Popen([sys.executable, "-c", SIGKILL_WRITER, url, hf.url, HF_KEY, str(log)])
    try:
        # Kill once some writes are done, at a moment that differs each round.
        while log.read_text().count("done") < 5 + round * 7:
            time.sleep(0.01)
        time.sleep(random.Random(round).uniform(0, 0.3))
        service.send_signal(signal.SIGKILL)
        service.wait(timeout=30)
    finally:
        writer.kill()
        writer.wait()
        service.stdout.close()
    acknowledged = {}
    for line in log.read_text().splitlines():
        parts = line.split()
        if parts[0] == "done" and parts[3] == "200":
            acknowledged[parts[2]] = parts[1]
    assert acknowledged, "the service was killed before any write"
    import sqlite3

    with sqlite3.connect(store) as db:
        assert db.execute("PRAGMA integrity_check").fetchone() == ("ok",)
    restarted, url = _start_service(store)
    try:
        client = Elasticsearch(url)
        present = {e["inference_id"]: e for e in client.inference.get()["endpoints"]}
        for name, method in acknowledged.items():
            # The last acknowledged write of a name holds unless a later one was cut short.
            last_started = [l for l in log.read_text().splitlines() if l.split()[2] == name][-1]
            if last_started.startswith("done"):
                assert (name in present) == (method != "DELETE"), (name, method)
        for name in present:
            # Every endpoint there is whole: its settings read and its key opens.
            assert client.inference.text_embedding(inference_id=name, input="x")["text_embedding"]
    finally:
        restarted.kill()
        restarted.wait()
        restarted.stdout.close()


def test_sixteen_concurrent_puts_of_one_id_give_exactly_one_success(hf, service):
    def put(_):
        return httpx.put(
            f"{service.url}/_inference/text_embedding/raced", json=hf_body(hf.url), timeout=60
        )

    with ThreadPoolExecutor(16) as pool:
        answers = list(pool.map(put, range(16)))
    statuses = sorted(a.status_code for a in answers)
    assert statuses == [200] + [400] * 15
    assert {a.json()["error"]["type"] for a in answers if a.status_code == 400} == {
        "resource_already_exists_exception"
    }


@pytest.mark.parametrize("workers", [1, 2], ids=["one-worker", "two-uvicorn-workers"])
def test_fifty_concurrent_callers_stay_within_the_endpoints_rate_limit(tmp_path, workers):
    """One rate limit per url+key, however many callers and uvicorn workers. The service runs
    in a process of its own, as it is deployed: in the test's, the fifty callers' threads
    would hold the GIL between its limiter and its socket."""
    rpm = TEST_RPM
    with stamping_endpoint(HF_KEY) as limited:
        process, url = _start_service(tmp_path / "s.db", "--workers", str(workers))
        try:
            body = hf_body(limited.url)
            body["service_settings"]["rate_limit"] = {"requests_per_minute": rpm}
            Elasticsearch(url).inference.put(
                task_type="text_embedding", inference_id="slow", inference_config=body
            )
            limited.reset_stats()

            def call(i):
                return httpx.post(
                    f"{url}/_inference/slow",
                    params={"timeout": "120s"},  # 100 requests at 300 a minute take 20 s
                    json={"input": [f"text {i}"]},
                    timeout=150,
                ).status_code

            with ThreadPoolExecutor(50) as pool:  # fifty callers, two requests each
                assert set(pool.map(call, range(100))) == {200}
            stats = limited.stats()
        finally:
            process.terminate()
            process.wait(timeout=30)
            process.stdout.close()
    # Every request that reached the endpoint (GET /info included) counts against the limit.
    assert stats["requests"] == 100
    assert_within_limit(stats["arrivals"], rpm, 100)


# -- keys stay secret -----------------------------------------------------------------


def test_the_key_is_in_no_response_log_line_or_database_byte(hf, service, caplog, capfd):
    caplog.set_level(logging.DEBUG)
    seen = []
    with httpx.Client(base_url=service.url, timeout=60) as http:
        with raw_endpoint(
            lambda h, body: reply(
                h, 401, json.dumps({"error": f"bad token {h.headers['authorization']}"}).encode()
            )
        ) as echoing:
            for method, path, payload in [
                ("PUT", "/_inference/text_embedding/leak", hf_body(hf.url)),
                ("GET", "/_inference/leak", None),
                ("GET", "/_inference", None),
                ("POST", "/_inference/leak", {"input": ["a"]}),
                ("PUT", "/_inference/text_embedding/leak", hf_body(hf.url)),
                ("PUT", "/_inference/text_embedding/echo", hf_body(echoing)),
                ("PUT", "/_inference/text_embedding/leak/_update", {"service_settings": {"api_key": HF_KEY}}),
                ("PUT", "/_inference/text_embedding/bad", {"service": "hugging_face", "service_settings": {"api_key": [HF_KEY]}}),
            ]:  # fmt: skip
                answer = http.request(method, path, json=payload)
                seen.append(answer.content + str(answer.headers).encode())
    assert b"[REDACTED]" in seen[5]  # the endpoint's own message, its key redacted
    assert all(HF_KEY.encode() not in s for s in seen)
    assert HF_KEY not in caplog.text
    out, err = capfd.readouterr()  # uvicorn's own loggers write to stderr, not to caplog
    assert HF_KEY not in out + err
    for file in service.store.path.parent.iterdir():
        assert HF_KEY.encode() not in file.read_bytes(), file.name


# -- callers authenticate -------------------------------------------------------------------


def _cli(*args, stdin=""):
    return subprocess.run(
        [sys.executable, "-m", "hf_endpoint.cli", "inference-api", *args],
        input=stdin, check=False, capture_output=True, text=True, cwd=REPO,
        env={**os.environ, "PYTHONPATH": str(REPO)},
    )  # fmt: skip


def test_a_created_api_key_is_the_last_line_and_the_official_client_takes_it(hf, tmp_path):
    store = tmp_path / "s.db"
    created = _cli("keys", "create", "app", "--store", str(store))
    assert created.returncode == 0, created.stderr
    api_key = created.stdout.strip().splitlines()[-1]
    assert api_key.encode() not in store.read_bytes()
    assert "app" in _cli("keys", "list", "--store", str(store)).stdout
    with InferenceAPI(store) as svc:
        client = Elasticsearch(svc.url, api_key=api_key)
        client.inference.put(
            task_type="text_embedding", inference_id="a", inference_config=hf_body(hf.url)
        )
        assert client.inference.get(inference_id="a")["endpoints"]
        for wrong in (
            Elasticsearch(svc.url),
            Elasticsearch(svc.url, api_key=api_key[:-4] + "AAA="),
        ):
            with pytest.raises(AuthenticationException) as refused:
                wrong.inference.get()
            assert refused.value.error == "security_exception"
        assert httpx.get(svc.url + "/").status_code == 401
        assert httpx.get(svc.url + "/", headers={"Authorization": "ApiKey !!!"}).status_code == 401
    assert _cli("keys", "delete", "app", "--store", str(store)).returncode == 0
    assert _cli("keys", "delete", "app", "--store", str(store)).returncode == 2


def test_basic_users_authenticate_and_wrong_passwords_do_not(hf, tmp_path):
    store = open_store(tmp_path / "s.db")
    store.add_user("alice", "correct horse battery")
    with InferenceAPI(store) as svc:
        assert Elasticsearch(svc.url, basic_auth=("alice", "correct horse battery")).info()[
            "version"
        ]
        with pytest.raises(AuthenticationException):
            Elasticsearch(svc.url, basic_auth=("alice", "wrong password!")).info()


def test_users_are_added_from_stdin_and_only_a_hash_is_stored(tmp_path):
    store = tmp_path / "s.db"
    added = _cli("users", "add", "bob", "--store", str(store), stdin="a long passphrase\n")
    assert added.returncode == 0, added.stderr
    assert b"a long passphrase" not in store.read_bytes()
    assert open_store(store).verify("user", "bob", "a long passphrase") == "bob"
    assert open_store(store).verify("user", "bob", "a wrong passphrase") is None
    short = _cli("users", "add", "carol", "--store", str(store), stdin="short\n")
    assert short.returncode == 2 and "[password]" in short.stderr


async def test_without_credentials_only_loopback_peers_are_answered(tmp_path):
    from hf_endpoint.inference_api import ServiceConfig, create_app

    app = create_app(ServiceConfig(store=open_store(tmp_path / "s.db")))
    for peer, status in (("127.0.0.1", 200), ("10.1.2.3", 401)):
        transport = httpx.ASGITransport(app=app, client=(peer, 40000))
        async with httpx.AsyncClient(transport=transport, base_url="http://service") as http:
            answer = await http.get("/_inference")
        assert answer.status_code == status
    assert "answers loopback callers only" in answer.json()["error"]["reason"]


def test_without_credentials_the_service_refuses_to_listen_beyond_loopback(tmp_path):
    refused = _cli("--host", "0.0.0.0", "--port", "0", "--store", str(tmp_path / "s.db"))
    assert refused.returncode == 2
    assert "not a loopback address and no credential exists" in refused.stderr


# -- bounded and clear answers ---------------------------------------------------------


def test_bad_requests_get_their_documented_answers(hf, tmp_path):
    with InferenceAPI(tmp_path / "s.db", max_body_bytes=10_000, max_inputs=4) as svc:
        url = svc.url
        es(svc).inference.put(
            task_type="text_embedding", inference_id="e", inference_config=hf_body(hf.url)
        )
        big = httpx.post(f"{url}/_inference/e", json={"input": "x" * 20_000})
        assert (big.status_code, big.json()["error"]["type"]) == (413, "content_too_long_exception")
        many = httpx.post(f"{url}/_inference/e", json={"input": ["a"] * 5})
        assert many.status_code == 400 and "[input] holds 5 texts" in many.json()["error"]["reason"]
        broken = httpx.put(f"{url}/_inference/text_embedding/x", content=b'{"service": ')
        assert (broken.status_code, broken.json()["error"]["type"]) == (400, "parse_exception")
        null = httpx.put(f"{url}/_inference/text_embedding/x", content=b"null")
        assert null.status_code == 400 and "[inference_config]" in null.json()["error"]["reason"]
        empty_list = httpx.put(
            f"{url}/_inference/text_embedding/x", json=hf_body(hf.url, chunking_settings=[])
        )
        assert empty_list.status_code == 400
        assert "chunking_settings" in empty_list.json()["error"]["reason"]
        wrong = httpx.patch(f"{url}/_inference/e")
        assert (
            wrong.status_code == 405
            and "allowed: [GET, PUT, DELETE, POST]" in wrong.json()["error"]
        )
        assert all(
            r.headers["x-elastic-product"] == "Elasticsearch"
            for r in (big, many, broken, null, empty_list, wrong)
        )


def test_requests_beyond_capacity_get_429_not_a_queue(tmp_path):
    with LocalEndpoint("hash", faults=Faults(latency=0.5)) as slow:
        with InferenceAPI(tmp_path / "s.db", max_in_flight=1, validate=False) as svc:
            body = {
                "service": "hugging_face",
                "service_settings": {"api_key": "k", "url": slow.url},
            }
            es(svc).inference.put(
                task_type="text_embedding", inference_id="s", inference_config=body
            )
            with ThreadPoolExecutor(4) as pool:
                answers = list(pool.map(
                    lambda _: httpx.post(f"{svc.url}/_inference/s", json={"input": "a"}, timeout=30),
                    range(4),
                ))  # fmt: skip
    statuses = sorted(a.status_code for a in answers)
    assert statuses[0] == 200 and statuses[-1] == 429
    rejected = next(a for a in answers if a.status_code == 429)
    assert rejected.json()["error"]["type"] == "es_rejected_execution_exception"


# -- fuzzed bodies ------------------------------------------------------------------------

from hypothesis import example, given
from hypothesis import strategies as st

_KEYS = st.sampled_from(
    [
        "service", "service_settings", "chunking_settings", "task_settings", "task_type",
        "url", "api_key", "rate_limit", "requests_per_minute", "strategy", "max_chunk_size",
        "overlap", "sentence_overlap", "similarity", "dimensions", "max_input_tokens",
        "separator_group", "separators", "input", "query", "top_n", "return_documents",
        "input_type", "x",
    ]
)  # fmt: skip
_SCALARS = (
    st.none()
    | st.booleans()
    | st.integers(-(2**70), 2**70)
    | st.floats(allow_nan=False, allow_infinity=False)
    | st.text(max_size=12)
    | st.sampled_from(["hugging_face", "sentence", "word", "recursive", "cosine", "SEARCH"])
)
_JSON = st.recursive(
    _SCALARS,
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(_KEYS | st.text(max_size=6), inner, max_size=5),
    max_leaves=16,
)  # fmt: skip


@pytest.fixture(scope="module")
def fuzzed(hf, tmp_path_factory):
    with InferenceAPI(tmp_path_factory.mktemp("fuzz") / "s.db") as svc:
        es(svc).inference.put(
            task_type="text_embedding", inference_id="fz", inference_config=hf_body(hf.url)
        )
        with httpx.Client(base_url=svc.url, timeout=60) as http:
            yield http, hf.url


def _service_settings(url):
    return st.fixed_dictionaries(
        {"api_key": st.just(HF_KEY) | _SCALARS, "url": st.just(url) | _SCALARS},
        optional={"rate_limit": _JSON, "similarity": _JSON, "dimensions": _JSON, "x": _JSON},
    )


@given(data=st.data())
@example(data=None)
def test_fuzzed_bodies_never_get_a_5xx(fuzzed, data):
    http, hf_url = fuzzed
    if data is None:  # the two named cases: a body of null, chunking_settings of []
        null = http.put("/_inference/text_embedding/n", content=b"null")
        assert null.status_code == 400 and "[inference_config]" in null.text
        listed = http.put(
            "/_inference/text_embedding/n", json=hf_body(hf_url, chunking_settings=[])
        )
        assert listed.status_code == 400 and "chunking_settings" in listed.text
        return
    put_body = data.draw(
        _JSON
        | st.fixed_dictionaries(
            {"service": st.just("hugging_face") | _SCALARS, "service_settings": _service_settings(hf_url)},
            optional={"chunking_settings": _JSON, "task_settings": _JSON, "task_type": _JSON},
        )
    )  # fmt: skip
    task = data.draw(st.sampled_from(["text_embedding", "rerank", "completion", "x"]))
    answer = http.put(f"/_inference/{task}/fuzzed", json=put_body)
    assert answer.status_code < 500, answer.text
    assert answer.headers["x-elastic-product"] == "Elasticsearch"
    if answer.status_code == 200:
        http.delete("/_inference/fuzzed")
    else:
        assert answer.json()["error"]["reason"]
    post_body = data.draw(
        _JSON | st.fixed_dictionaries({"input": _JSON}, optional={"query": _JSON, "task_settings": _JSON})
    )  # fmt: skip
    answer = http.post("/_inference/fz", json=post_body)
    assert answer.status_code < 500, answer.text
    update = data.draw(_JSON | st.fixed_dictionaries({"service_settings": _JSON}))
    assert http.put("/_inference/text_embedding/fz/_update", json=update).status_code < 500


# -- our clients of an _inference API -----------------------------------------------------


@pytest.fixture
def remote(hf, service, monkeypatch):
    """A registry over the service, in a process holding no Hugging Face token."""
    for name in ("HF_TOKEN", "HUGGINGFACEHUB_API_TOKEN"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("HF_TOKEN_PATH", str(service.store.path.parent / "no-token"))
    api_key = service.store.create_api_key("app")
    endpoints = InferenceEndpoints.connect(service.url, api_key=api_key)
    endpoints.put(
        "text_embedding",
        "emb",
        hf_body(hf.url, chunking_settings={"strategy": "word", "max_chunk_size": 20, "overlap": 5}),
    )
    endpoints.put("rerank", "rr", hf_body(hf.url + "/rerank", task_settings={"top_n": 2}))
    yield endpoints
    endpoints.close()


def test_connect_gives_the_registry_methods_over_http(hf, remote):
    assert [e["inference_id"] for e in remote.get()["endpoints"]] == ["emb", "rr"]
    direct = InferenceEndpoints()
    direct.put("text_embedding", "d", hf_body(hf.url))
    assert remote.inference("emb", ["a", "b"]) == direct.inference("d", ["a", "b"])
    ranked = remote.inference("rr", ["a fox", "a dog", "fox fox"], query="fox")
    assert len(ranked["rerank"]) == 2
    with pytest.raises(ConfigError, match=r"Inference endpoint not found \[nope\]"):
        remote.get("nope")
    with pytest.raises(ConfigError, match="already exists"):
        remote.put("text_embedding", "emb", hf_body(hf.url))
    assert remote.delete("rr")["acknowledged"]


async def test_ainference_and_the_async_client_go_through_the_service(hf, remote):
    answer = await remote.ainference("emb", "a")
    client = remote.client("emb")
    vectors = await client.aembed(["a", "b", "c"])
    assert vectors[0] == answer["text_embedding"][0]["embedding"]
    await client.aclose()


def test_the_adapters_embed_through_the_service_with_its_chunking(hf, remote):
    from hf_endpoint import chunk_text
    from langchain_hf_endpoint import HFEndpointEmbeddings
    from llama_index_hf_endpoint import HFEndpointEmbedding

    text = " ".join(f"word{i}" for i in range(50))
    lc = HFEndpointEmbeddings.from_endpoint(remote, "emb", batch_size=3)
    chunks = lc.embed_chunks([text])[0]
    expected = chunk_text(text, {"strategy": "word", "max_chunk_size": 20, "overlap": 5})
    assert [(c.start, c.end) for c in chunks] == [(c.start, c.end) for c in expected]
    direct = InferenceEndpoints()
    direct.put("text_embedding", "d", hf_body(hf.url))
    assert (
        chunks[0].embedding
        == direct.inference("d", expected[0].text)["text_embedding"][0]["embedding"]
    )
    assert len(lc.embed_documents([text, "short"])) == 2
    li = HFEndpointEmbedding.from_endpoint(remote, "emb")
    assert li.get_query_embedding("short") == lc.embed_query("short")
    assert lc.api_key is not None and lc.api_key.get_secret_value() != HF_KEY


def test_adapters_on_the_service_send_only_inference_requests(remote):
    from langchain_hf_endpoint import HFEndpointEmbeddings

    lc = HFEndpointEmbeddings.from_endpoint(remote, "emb")
    lc.embed_documents(["a", "b"])
    lc.embed_query("c")
    # one POST each (the two clients count together), no GET .../info: the service has none,
    # and asking would only cost a slot of its rate limit
    assert (lc.clients[0].stats.requests, lc.clients[0].stats.inputs) == (2, 3)


async def test_the_adapters_async_paths_go_through_the_service(remote):
    from langchain_hf_endpoint import HFEndpointEmbeddings

    lc = HFEndpointEmbeddings.from_endpoint(remote, "emb")
    assert len(await lc.aembed_documents(["a", "b"])) == 2


def test_both_rerank_adapters_rank_through_the_service(remote):
    from langchain_core.documents import Document
    from llama_index.core.schema import NodeWithScore, QueryBundle, TextNode

    from langchain_hf_endpoint import HFEndpointRerank
    from llama_index_hf_endpoint import HFEndpointRerank as LlamaIndexRerank

    docs = ["a fox", "a dog", "the fox and the fox"]
    lc = HFEndpointRerank.from_endpoint(remote, "rr")
    kept = lc.compress_documents([Document(page_content=d) for d in docs], "fox")
    assert len(kept) == 2
    li = LlamaIndexRerank.from_endpoint(remote, "rr")
    nodes = [NodeWithScore(node=TextNode(text=d)) for d in docs]
    ranked = li.postprocess_nodes(nodes, QueryBundle("fox"))
    assert [n.node.get_content() for n in ranked] == [d.page_content for d in kept]


def test_the_inference_api_client_under_the_adapters_retries_429_and_5xx_from_the_service():
    answers = iter([429, 503, 200])
    requests = []

    def answer(handler, body):
        requests.append(json.loads(body or b"{}"))
        status = next(answers, 200)
        if status != 200:
            error = {"error": {"root_cause": [], "type": "x", "reason": "busy"}, "status": status}
            return reply(handler, status, json.dumps(error).encode(), [("Retry-After", "0")])
        rows = {"text_embedding": [{"embedding": [1.0, 0.0]} for _ in requests[-1]["input"]]}
        return reply(handler, 200, json.dumps(rows).encode())

    from hf_endpoint.client.retry import RetryPolicy
    from hf_endpoint.remote import InferenceAPIEmbeddingClient

    with raw_endpoint(answer) as url:
        client = InferenceAPIEmbeddingClient(
            url + "/_inference/text_embedding/e",
            retry_policy=RetryPolicy(initial_backoff=0.0, max_backoff=0.0),
        )
        assert client.embed(["a", "b"]) == [[1.0, 0.0], [1.0, 0.0]]
    assert [r["input"] for r in requests] == [["a", "b"]] * 3


def test_the_embed_command_embeds_a_jsonl_file_through_the_service(hf, service, tmp_path):
    api_key = service.store.create_api_key("batch")
    Elasticsearch(service.url, api_key=api_key).inference.put(
        task_type="text_embedding",
        inference_id="emb",
        inference_config=hf_body(
            hf.url, chunking_settings={"strategy": "word", "max_chunk_size": 10, "overlap": 2}
        ),
    )
    source, output = tmp_path / "in.jsonl", tmp_path / "out.jsonl"
    texts = [" ".join(f"w{i}x{j}" for j in range(25)) for i in range(5)]
    source.write_text(
        "".join(json.dumps({"id": f"r{i}", "text": t}) + "\n" for i, t in enumerate(texts))
    )
    env = {k: v for k, v in os.environ.items() if k not in ("HF_TOKEN", "HUGGINGFACEHUB_API_TOKEN")}
    run = subprocess.run(
        [sys.executable, "-m", "hf_endpoint.cli", "embed", str(source), "-o", str(output),
         "--inference-api", service.url, "--inference-id", "emb", "--quiet"],
        check=False, capture_output=True, text=True, cwd=REPO,
        env={**env, "PYTHONPATH": str(REPO), "HF_ENDPOINT_INFERENCE_API_KEY": api_key,
             "HF_TOKEN_PATH": str(tmp_path / "none")},
    )  # fmt: skip
    assert run.returncode == 0, run.stderr
    rows = [json.loads(line) for line in output.read_text().splitlines()]
    from hf_endpoint import chunk_offsets

    words = {"strategy": "word", "max_chunk_size": 10, "overlap": 2}
    for row, text in zip(rows, texts):
        assert [(c["start"], c["end"]) for c in row["chunks"]] == chunk_offsets(text, words)
        assert len(row["chunks"][0]["embedding"]) == 384


def test_concurrent_updates_of_one_endpoint_give_one_success_and_a_conflict(tmp_path):
    from elasticsearch import ConflictError

    holding = threading.Event()
    both_validating = threading.Barrier(2, timeout=30)

    def answer(handler, body):
        if handler.command == "GET":  # GET /info: nothing to tell
            return reply(handler, 404, b'{"error": "no info"}')
        if holding.is_set():  # both new keys are being checked: let them go together
            both_validating.wait()
        return reply(handler, 200, json.dumps([[0.5, 0.5]]).encode())

    with raw_endpoint(answer) as url, InferenceAPI(tmp_path / "s.db") as svc:
        client = es(svc)
        client.inference.put(
            task_type="text_embedding", inference_id="u", inference_config=hf_body(url)
        )
        holding.set()

        def update(key):
            try:
                client.inference.update(
                    inference_id="u", inference_config={"service_settings": {"api_key": key}}
                )
                return "updated"
            except ConflictError as exc:
                return exc.error

        with ThreadPoolExecutor(2) as pool:
            outcomes = sorted(pool.map(update, ["hf_first_key_000", "hf_second_key_00"]))
    assert outcomes == ["updated", "version_conflict_engine_exception"]


def test_get_of_a_task_type_lists_its_endpoints_as_elasticsearch_reads_it(hf, service):
    client = es(service)
    client.inference.put(
        task_type="text_embedding", inference_id="t", inference_config=hf_body(hf.url)
    )
    assert (
        httpx.get(f"{service.url}/_inference/text_embedding").json()["endpoints"][0]["inference_id"]
        == "t"
    )
    assert httpx.get(f"{service.url}/_inference/rerank").json() == {"endpoints": []}


def test_tls_files_serve_https_to_the_official_client(hf, tmp_path):
    import datetime
    import ipaddress

    from cryptography import x509
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import ec
    from cryptography.x509.oid import NameOID

    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "127.0.0.1")])
    now = datetime.datetime.now(datetime.timezone.utc)
    cert = (
        x509.CertificateBuilder().subject_name(name).issuer_name(name).public_key(key.public_key())
        .serial_number(x509.random_serial_number()).not_valid_before(now - datetime.timedelta(days=1))
        .not_valid_after(now + datetime.timedelta(days=1))
        .add_extension(x509.SubjectAlternativeName([x509.IPAddress(ipaddress.ip_address("127.0.0.1"))]), critical=False)
        .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
        .sign(key, hashes.SHA256())
    )  # fmt: skip
    cert_file, key_file = tmp_path / "cert.pem", tmp_path / "key.pem"
    cert_file.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    key_file.write_bytes(
        key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        )
    )
    with InferenceAPI(tmp_path / "s.db", tls_cert=cert_file, tls_key=key_file) as svc:
        assert svc.url.startswith("https://")
        client = Elasticsearch(svc.url, ca_certs=str(cert_file))
        client.inference.put(
            task_type="text_embedding", inference_id="t", inference_config=hf_body(hf.url)
        )
        remote = InferenceEndpoints.connect(svc.url, verify=str(cert_file))
        assert remote.inference("t", "x")["text_embedding"]
        with pytest.raises(httpx.ConnectError):
            httpx.get(svc.url + "/")  # not trusted without the certificate

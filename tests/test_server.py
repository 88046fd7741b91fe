"""The local endpoint speaks Text Embeddings Inference's protocol, faults included."""

import subprocess
import sys
import time

import httpx
import numpy as np
import pytest

from hf_endpoint.server import Faults, HashBackend, LocalEndpoint

KEY = "hf_server_test_key"
AUTH = {"Authorization": f"Bearer {KEY}"}


@pytest.fixture(scope="module")
def endpoint():
    with LocalEndpoint("hash", api_key=KEY) as ep:
        yield ep


@pytest.fixture
def client(endpoint):
    with httpx.Client(base_url=endpoint.url, headers=AUTH, timeout=30) as c:
        yield c


def error_of(response):
    body = response.json()
    assert set(body) >= {"error", "error_type"}
    return body["error_type"]


@pytest.mark.parametrize("path", ["/", "/embed"])
def test_embed_returns_one_vector_per_input_in_order(client, path):
    texts = ["first", "second", "third"]
    response = client.post(path, json={"inputs": texts})
    assert response.status_code == 200
    vectors = np.array(response.json())
    assert vectors.shape == (3, 384)
    for text, vector in zip(texts, vectors):
        np.testing.assert_allclose(vector, HashBackend().vector(text), rtol=1e-6)


def test_a_single_string_gives_one_row(client):
    assert len(client.post("/", json={"inputs": "alone"}).json()) == 1


def test_normalize_false_leaves_vectors_unnormalised(client):
    raw = np.array(client.post("/", json={"inputs": ["x"], "normalize": False}).json()[0])
    unit = np.array(client.post("/", json={"inputs": ["x"]}).json()[0])
    assert abs(np.linalg.norm(unit) - 1) < 1e-5
    assert np.linalg.norm(raw) > 2


def test_prompt_name_prefixes_the_prompt(client):
    with_prompt = client.post("/", json={"inputs": ["x"], "prompt_name": "query"}).json()[0]
    np.testing.assert_allclose(with_prompt, HashBackend().vector("query: x"), rtol=1e-6)


def test_missing_or_wrong_token_is_401(endpoint):
    assert httpx.post(endpoint.url, json={"inputs": "x"}).status_code == 401
    response = httpx.post(
        endpoint.url, json={"inputs": "x"}, headers={"Authorization": "Bearer nope"}
    )
    assert response.status_code == 401 and error_of(response) == "unauthorized"


@pytest.mark.parametrize(
    "body,status,error_type",
    [
        (b"{not json", 422, "validation"),
        (b"[1, 2]", 422, "validation"),
        (b'{"inputs": [1, 2]}', 422, "validation"),
        (b'{"inputs": {"a": 1}}', 422, "validation"),
        (b'{"inputs": null}', 422, "validation"),
        (b'{"inputs": ["a"], "normalize": "yes"}', 422, "validation"),
        (b'{"inputs": ["a"], "truncation_direction": "Up"}', 422, "validation"),
        (b'{"inputs": []}', 400, "empty"),
        (b'{"inputs": ["a"], "prompt_name": "unknown"}', 413, "validation"),
    ],
)
def test_bad_requests_get_tei_errors_and_the_server_keeps_serving(client, body, status, error_type):
    response = client.post("/", content=body, headers={"Content-Type": "application/json"})
    assert response.status_code == status
    assert error_of(response) == error_type
    assert client.post("/", json={"inputs": ["still here"]}).status_code == 200


def test_more_inputs_than_max_client_batch_size_is_413(client):
    response = client.post("/", json={"inputs": ["a"] * 33})
    assert response.status_code == 413
    assert response.json()["error"] == "batch size 33 > maximum allowed batch size 32"
    assert client.post("/", json={"inputs": ["a"] * 32}).status_code == 200


def test_input_over_max_input_length_is_413_unless_truncated(client):
    long = "word " * 600  # 602 tokens with the two special ones
    response = client.post("/", json={"inputs": ["short", long]})
    assert response.status_code == 413
    assert response.json()["error"].endswith("must have less than 512 tokens. Given: 602")
    right = client.post("/", json={"inputs": [long], "truncate": True}).json()[0]
    left = client.post(
        "/", json={"inputs": [long + "end"], "truncate": True, "truncation_direction": "Left"}
    )
    assert left.status_code == 200
    np.testing.assert_allclose(right, HashBackend().vector(" ".join(["word"] * 510)), rtol=1e-6)


def test_body_over_two_megabytes_is_413(client):
    response = client.post("/", json={"inputs": ["x" * 2_100_000]})
    assert response.status_code == 413 and error_of(response) == "validation"


def test_info_and_health(client):
    info = client.get("/info").json()
    assert info["max_client_batch_size"] == 32
    assert info["max_input_length"] == 512
    assert info["max_batch_tokens"] == 16384
    assert info["model_id"] == "hf-endpoint/hash"
    assert client.get("/health").status_code == 200


def test_stats_count_requests_inputs_and_statuses(endpoint, client):
    endpoint.reset_stats()
    client.post("/", json={"inputs": ["a", "b"]})
    client.post("/", json={"inputs": []})
    stats = endpoint.stats()
    assert stats["requests"] == 2
    assert stats["served_inputs"] == 2
    assert stats["status"] == {"200": 1, "400": 1}
    assert len(stats["arrivals"]) == 2


def test_concurrent_requests_are_batched_together():
    import asyncio

    async def burst(url):
        async with httpx.AsyncClient(base_url=url, timeout=30) as c:
            responses = await asyncio.gather(
                *(c.post("/", json={"inputs": [f"t{i}"]}) for i in range(64))
            )
        return [r.json()[0] for r in responses]

    with LocalEndpoint("hash") as ep:
        rows = asyncio.run(burst(ep.url))
        stats = ep.stats()
    for i, row in enumerate(rows):
        np.testing.assert_allclose(row, HashBackend().vector(f"t{i}"), rtol=1e-6)
    assert max(int(size) for size in stats["batch_sizes"]) > 1


# --- faults ---------------------------------------------------------------------


def statuses(url, n):
    out = []
    with httpx.Client(base_url=url, timeout=30) as c:
        for i in range(n):
            try:
                out.append(c.post("/", json={"inputs": [f"x{i}"]}).status_code)
            except httpx.TransportError:
                out.append("dropped")
    return out


def test_random_faults_are_deterministic_under_a_seed():
    faults = Faults(rate_429=0.2, rate_502=0.1, rate_503=0.1, rate_drop=0.1, seed=42)
    runs = []
    for _ in range(2):
        with LocalEndpoint("hash", faults=faults) as ep:
            runs.append(statuses(ep.url, 60))
            stats = ep.stats()
    assert runs[0] == runs[1]
    assert {200, 429, 502, 503, "dropped"} <= set(runs[0])
    assert stats["actions"]["drop"] == runs[0].count("dropped")
    assert stats["status"]["429"] == runs[0].count(429)
    with LocalEndpoint(
        "hash", faults=Faults(rate_429=0.2, rate_502=0.1, rate_503=0.1, rate_drop=0.1, seed=7)
    ) as ep:
        assert statuses(ep.url, 60) != runs[0]


def test_429_carries_retry_after():
    with LocalEndpoint("hash", faults=Faults(rate_429=1.0, retry_after=3)) as ep:
        response = httpx.post(ep.url, json={"inputs": "x"})
    assert response.status_code == 429 and response.headers["Retry-After"] == "3"
    assert error_of(response) == "overloaded"


def test_cold_start_answers_503_with_estimated_time_then_serves():
    with LocalEndpoint("hash", faults=Faults(cold_start=1.0)) as ep:
        first = httpx.post(ep.url, json={"inputs": "x"})
        assert first.status_code == 503
        assert 0 < first.json()["estimated_time"] <= 1.0
        assert httpx.get(ep.url + "/health").status_code == 503
        time.sleep(first.json()["estimated_time"] + 0.05)
        assert httpx.post(ep.url, json={"inputs": "x"}).status_code == 200
        assert httpx.get(ep.url + "/health").status_code == 200


def test_server_side_requests_per_minute_limit():
    with LocalEndpoint("hash", faults=Faults(requests_per_minute=3)) as ep:
        codes = statuses(ep.url, 5)
        limited = httpx.post(ep.url, json={"inputs": "x"})
    assert codes == [200, 200, 200, 429, 429]
    assert 1 <= int(limited.headers["Retry-After"]) <= 60


def test_dropped_connection_is_a_transport_error():
    with LocalEndpoint("hash", faults=Faults(rate_drop=1.0)) as ep:
        with pytest.raises(httpx.TransportError):
            httpx.post(ep.url, json={"inputs": "x"})
        assert ep.stats()["actions"] == {"drop": 1}


def test_runs_as_a_subprocess():
    with LocalEndpoint("hash", in_process=False, api_key=KEY) as ep:
        assert httpx.post(ep.url, json={"inputs": "x"}, headers=AUTH).status_code == 200


def test_command_line_serves_and_announces_its_url():
    process = subprocess.Popen(
        [sys.executable, "-m", "hf_endpoint.cli", "serve", "--backend", "hash", "--port", "0"],
        stdout=subprocess.PIPE,
        text=True,
    )
    try:
        line = process.stdout.readline()
        assert line.startswith("hf-endpoint server listening on http://127.0.0.1:")
        url = line.rsplit(" ", 1)[1].strip()
        assert httpx.post(url, json={"inputs": "x"}).status_code == 200
    finally:
        process.terminate()
        process.wait(timeout=10)
        process.stdout.close()

"""The client against a real third-party server: Infinity (``infinity-emb`` 0.0.78) serving the
bundled all-MiniLM-L6-v2 on its OpenAI route, beside the local ``minilm`` endpoint."""

import asyncio
import json

import httpx
import numpy as np
import pytest

from hf_endpoint import (
    AuthenticationError,
    EmbeddingClient,
    EndpointError,
    EndpointOverloadedError,
    InputRejectedError,
    InputTooLargeError,
    RetryPolicy,
)
from hf_endpoint.client._protocol import parse_error
from langchain_hf_endpoint import HFEndpointEmbeddings
from llama_index_hf_endpoint import HFEndpointEmbedding

from .endpoints import local_url, raw_endpoint
from .infinity import infinity_url
from .test_cli import hf_endpoint, no_endpoint_env, rows_of, write_records

TEXTS = [
    "The river flooded the valley after a week of rain.",
    "Engines need oil to run smoothly.",
    "A panda eats bamboo for most of the day.",
    "Stock markets fell sharply on Monday.",
    "She plays the violin in the city orchestra.",
] * 5 + [f"sentence number {i} about trains and weather" for i in range(20)]
WITHIN = 1e-5
KEY = "hf_infinity_test_key_3f1c"  # Infinity started with --api-key: the key travels as Bearer


@pytest.fixture(scope="module")
def infinity():
    return infinity_url(KEY)


@pytest.fixture(scope="module")
def minilm_vectors():
    with EmbeddingClient(local_url("minilm"), None) as client:
        return np.array(client.embed(TEXTS))


def client(url, **kwargs):
    return EmbeddingClient(url, KEY, rate_limit=100_000, **kwargs)


def test_embed_gives_the_local_minilm_endpoints_vectors(infinity, minilm_vectors):
    with client(infinity + "/embeddings", batch_size=8) as c:
        rows = c.embed(TEXTS)
        stats = c.stats
    np.testing.assert_allclose(np.array(rows), minilm_vectors, atol=WITHIN)
    assert stats.requests == 1 + 6  # GET /v1/models, then 45 inputs in batches of 8


def test_the_protocol_option_on_the_base_url_reaches_the_same_route(infinity, minilm_vectors):
    with client(infinity.removesuffix("/v1"), protocol="openai") as c:
        np.testing.assert_allclose(np.array(c.embed(TEXTS)), minilm_vectors, atol=WITHIN)


def test_aembed_gives_the_local_minilm_endpoints_vectors(infinity, minilm_vectors):
    async def run():
        async with client(infinity + "/embeddings", batch_size=4, max_concurrency=4) as c:
            return await c.aembed(TEXTS)

    np.testing.assert_allclose(np.array(asyncio.run(run())), minilm_vectors, atol=WITHIN)


def test_base64_and_float_answers_agree(infinity):
    with client(infinity + "/embeddings") as packed:
        with client(infinity + "/embeddings", encoding_format="float") as floats:
            a = packed.embed(TEXTS, dtype="float32")
            b = floats.embed(TEXTS, dtype="float32")
            lists = floats.embed(TEXTS)
    assert a.dtype == np.float32
    np.testing.assert_allclose(a, b, atol=1e-6)
    np.testing.assert_allclose(np.array(lists), a, atol=1e-6)


def test_both_adapters_give_the_local_minilm_endpoints_vectors(infinity, minilm_vectors):
    langchain = HFEndpointEmbeddings(url=infinity + "/embeddings", api_key=KEY)
    llama = HFEndpointEmbedding(url=infinity, api_key=KEY, protocol="openai")
    np.testing.assert_allclose(
        np.array(langchain.embed_documents(TEXTS)), minilm_vectors, atol=WITHIN
    )
    np.testing.assert_allclose(
        np.array(llama.get_text_embedding_batch(TEXTS)), minilm_vectors, atol=WITHIN
    )
    np.testing.assert_allclose(langchain.embed_query(TEXTS[2]), minilm_vectors[2], atol=WITHIN)


def test_the_command_line_gives_the_local_minilm_endpoints_vectors(infinity, tmp_path):
    source = tmp_path / "in.jsonl"
    write_records(source, 6)
    ours, theirs = tmp_path / "minilm.jsonl", tmp_path / "infinity.jsonl"
    done = hf_endpoint("embed", source, "-o", ours, "--url", local_url("minilm"))
    assert done.returncode == 0, done.stderr
    done = hf_endpoint(
        "embed", source, "-o", theirs, "--url", infinity, "--protocol", "openai", "--quiet",
        env={**no_endpoint_env(), "HF_TOKEN": KEY},
    )  # fmt: skip
    assert done.returncode == 0, done.stderr
    for a, b in zip(rows_of(ours), rows_of(theirs), strict=True):
        assert [(c["start"], c["end"]) for c in a["chunks"]] == [
            (c["start"], c["end"]) for c in b["chunks"]
        ]
        np.testing.assert_allclose(
            [c["embedding"] for c in a["chunks"]],
            [c["embedding"] for c in b["chunks"]],
            atol=WITHIN,
        )


def test_infinitys_400_is_an_error_naming_the_inputs_with_its_message(infinity):
    # Infinity 0.0.78: MatryoshkaDimError, {"error": {"message", "type": null, "code": 400}}
    with client(infinity + "/embeddings", dimensions=1000) as c:
        with pytest.raises(InputRejectedError) as info:
            c.embed(TEXTS[:3])
    assert info.value.status_code == 400 and info.value.indices == range(3)
    assert "matryoshka_dim=1000 is not in a valid range. Select between 1 and 384." in str(
        info.value
    )


def test_infinitys_422_for_a_long_string_names_the_input(infinity):
    # Infinity 0.0.78 (FastAPI): a string over 122,880 characters is a 422 {"detail": [...]}.
    texts = ["short", "x" * 130_000, "short too"]
    with client(infinity + "/embeddings") as c:
        with pytest.raises(InputTooLargeError) as info:
            c.embed(texts)
        splits = c.stats.splits
    assert info.value.index == 1 and splits >= 1
    assert "String should have at most 122880 characters" in str(info.value)


def test_infinitys_fastapi_detail_is_read_as_its_message(infinity):
    answer = httpx.post(
        infinity + "/embeddings",
        json={"input": ["x"], "encoding_format": "int8"},
        headers={"Authorization": f"Bearer {KEY}"},
    )
    assert answer.status_code == 422 and "detail" in json.loads(answer.content)
    assert "Input should be 'float' or 'base64'" in parse_error(answer.content).error


def test_a_wrong_key_is_an_authentication_error_after_one_request(infinity):
    with EmbeddingClient(infinity + "/embeddings", "hf_wrong_key") as c:
        with pytest.raises(AuthenticationError) as info:
            c.embed(TEXTS[:2])
        assert c.stats.requests == 1  # GET /v1/models refused: no retry, no embedding request
    assert info.value.status_code in (401, 403)
    assert "hf_wrong_key" not in str(info.value)


# -- Infinity's own faults: 429 when its queue is full, 500 for what it cannot answer -----------

BUSY_TEXTS = [
    f"{i}: " + "The river flooded the valley after a week of rain. " * 8 for i in range(256)
]
PATIENT = RetryPolicy(max_retries=40, initial_backoff=0.1, max_backoff=1.0, jitter=0.5)


@pytest.fixture(scope="module")
def overloaded():
    """Infinity with a queue of one text (INFINITY_QUEUE_SIZE=1): a request that arrives while
    another's texts wait is answered 429 "model ... is currently overloaded"."""
    return infinity_url(KEY, queue_size=1)


def test_infinitys_429_when_overloaded_is_retried_until_every_vector_is_right(overloaded):
    with client(
        overloaded + "/embeddings", batch_size=32, max_concurrency=8, retry_policy=PATIENT
    ) as c:
        vectors = np.array(c.embed(BUSY_TEXTS))
        retries = c.stats.retries
    with EmbeddingClient(local_url("minilm"), None) as local:
        expected = np.array(local.embed(BUSY_TEXTS))
    np.testing.assert_allclose(vectors, expected, atol=WITHIN)
    assert retries.get("HTTP 429", 0) >= 1, retries


def test_infinitys_429_after_the_last_retry_is_an_overloaded_error_with_its_message(overloaded):
    with client(overloaded + "/embeddings", batch_size=32, max_concurrency=8, max_retries=0) as c:
        with pytest.raises(EndpointOverloadedError) as info:
            c.embed(BUSY_TEXTS)
    assert info.value.status_code == 429
    assert "is currently overloaded" in str(info.value)


def test_infinitys_500_is_an_endpoint_error_sent_once(infinity):
    """Infinity 0.0.78 answers a bare 500 "Internal Server Error" (text/plain) when its own
    422 cannot be encoded: the request carried a lone surrogate, which this client never
    sends. A relay on loopback adds one to what the client sends, so that Infinity's real
    500 reaches the client."""

    def relay(handler, body):
        if handler.command == "GET":
            answer = httpx.get(infinity + "/models", headers={"Authorization": f"Bearer {KEY}"})
        else:
            request = json.loads(body)
            request["input"][0] += "\ud800"
            answer = httpx.post(
                infinity + "/embeddings",
                content=json.dumps(request).encode(),
                headers={"Authorization": f"Bearer {KEY}", "Content-Type": "application/json"},
            )
        handler.send_response(answer.status_code)
        handler.send_header("Content-Type", answer.headers["content-type"])
        handler.send_header("Content-Length", str(len(answer.content)))
        handler.end_headers()
        handler.wfile.write(answer.content)

    with raw_endpoint(relay) as url:
        with client(url + "/v1/embeddings") as c:
            with pytest.raises(EndpointError) as info:
                c.embed(TEXTS[:2])
            stats = c.stats
    assert type(info.value) is EndpointError and info.value.status_code == 500
    assert "Internal Server Error" in str(info.value)
    assert stats.requests == 2 and stats.total_retries == 0  # GET /v1/models, one POST

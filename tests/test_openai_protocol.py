"""The OpenAI embeddings API (``POST /v1/embeddings``), as vLLM, Infinity and TEI's own OpenAI
route serve it (TEI v1.9.3 router/src/http/server.rs ``openai_embed``): the local endpoint's
route, and raw servers for what it does not show."""

import asyncio
import base64
import json
import threading

import numpy as np
import pytest

from hf_endpoint import (
    EmbeddingClient,
    EndpointOverloadedError,
    InputRejectedError,
    InputTooLargeError,
    ResponseFormatError,
)
from hf_endpoint.client._protocol import parse_openai_embeddings
from hf_endpoint.client.retry import RetryPolicy
from hf_endpoint.server import LocalEndpoint
from langchain_hf_endpoint import HFEndpointEmbeddings
from llama_index_hf_endpoint import HFEndpointEmbedding

from .endpoints import local_url, raw_endpoint, reply
from .test_cli import hf_endpoint, rows_of, write_records

FAST = RetryPolicy(max_retries=5, initial_backoff=0.001, max_backoff=0.01)
TEXTS = [f"text number {i} about rivers and engines" for i in range(45)]


def client(url, **kwargs):
    return EmbeddingClient(url, None, rate_limit=10_000_000, retry_policy=FAST, **kwargs)


@pytest.fixture(scope="module")
def tei_vectors():
    with client(local_url("hash")) as c:
        return np.array(c.embed(TEXTS))


def b64(vector):
    return base64.b64encode(np.asarray(vector, dtype="<f4").tobytes()).decode()


class OpenAIServer:
    """Records each request (method, path, body) and answers as an OpenAI server would."""

    def __init__(self, model="served/model", fail=None):
        self.model = model
        self.fail = fail or {}
        self.seen = []
        self.lock = threading.Lock()

    def __call__(self, handler, body):
        with self.lock:
            self.seen.append((handler.command, handler.path, json.loads(body) if body else None))
            attempt = len(self.seen)
        if handler.command == "GET":
            models = {"object": "list", "data": [{"id": self.model, "object": "model"}]}
            return reply(handler, 200, json.dumps(models).encode())
        if attempt in self.fail:
            status, error = self.fail[attempt]
            return reply(handler, status, json.dumps(error).encode())
        request = json.loads(body)
        data = [
            {"object": "embedding", "index": i, "embedding": b64([i, len(t), 0.5])}
            if request.get("encoding_format") == "base64"
            else {"object": "embedding", "index": i, "embedding": [float(i), float(len(t)), 0.5]}
            for i, t in enumerate(request["input"])
        ]
        answer = {"object": "list", "data": data[::-1], "model": request.get("model")}
        reply(handler, 200, json.dumps(answer).encode())


# -- selecting the protocol ---------------------------------------------------------------


@pytest.mark.parametrize(
    "given, protocol, posted",
    [
        ("/v1/embeddings", "auto", "/v1/embeddings"),
        ("/embeddings", "auto", "/embeddings"),
        ("", "openai", "/v1/embeddings"),
        ("/v1", "openai", "/v1/embeddings"),
    ],
)
def test_the_openai_route_is_chosen_by_the_url_or_the_option(given, protocol, posted):
    server = OpenAIServer()
    with raw_endpoint(server) as url, client(url + given, protocol=protocol) as c:
        c.embed(["a", "bb"])
    models = posted.removesuffix("/embeddings") + "/models"
    assert [(m, p) for m, p, _ in server.seen] == [("GET", models), ("POST", posted)]
    assert server.seen[1][2] == {
        "input": ["a", "bb"],
        "model": "served/model",
        "encoding_format": "base64",
    }


def test_a_given_model_and_dimensions_are_sent_and_float_can_be_asked_for():
    server = OpenAIServer()
    with raw_endpoint(server) as url:
        with client(
            url, protocol="openai", model="mine", dimensions=3, encoding_format="float"
        ) as c:
            rows = c.embed(["a", "bb"])
    assert server.seen[1][2] == {
        "input": ["a", "bb"], "model": "mine", "encoding_format": "float", "dimensions": 3,
    }  # fmt: skip
    assert rows == [[0.0, 1.0, 0.5], [1.0, 2.0, 0.5]]  # put back in input order


def test_a_server_without_models_gets_no_model_field():
    def no_models(handler, body):
        if handler.command == "GET":
            return reply(handler, 404, b'{"detail": "Not Found"}')
        request = json.loads(body)
        assert "model" not in request
        data = [{"index": i, "embedding": [1.0, 2.0]} for i in range(len(request["input"]))]
        reply(handler, 200, json.dumps({"data": data}).encode())

    with raw_endpoint(no_models) as url, client(url + "/v1/embeddings") as c:
        assert c.embed(["a"]) == [[1.0, 2.0]]


def test_a_tei_url_keeps_the_tei_protocol_and_asks_not_to_truncate():
    seen = []

    def tei(handler, body):
        if handler.command == "GET":
            return reply(handler, 404, b"")
        seen.append(json.loads(body))
        reply(handler, 200, json.dumps([[1.0]] * len(seen[-1]["inputs"])).encode())

    with raw_endpoint(tei) as url, client(url + "/embed") as c:
        c.embed(["a"])
    assert seen == [{"inputs": ["a"], "truncate": False}]


# -- against the local endpoint's /v1/embeddings --------------------------------------------


@pytest.mark.parametrize("encoding_format", ["base64", "float"])
def test_the_openai_route_gives_the_vectors_of_the_tei_route(tei_vectors, encoding_format):
    with client(
        local_url("hash"), protocol="openai", encoding_format=encoding_format, batch_size=8
    ) as c:
        rows = c.embed(TEXTS)
        array = c.embed(TEXTS, dtype="float32")
        stats = c.stats
    assert type(rows[0]) is list and type(rows[0][0]) is float
    np.testing.assert_allclose(np.array(rows), tei_vectors, atol=1e-7)
    assert array.dtype == np.float32 and array.shape == tei_vectors.shape
    np.testing.assert_allclose(array, tei_vectors, atol=1e-7)
    # 45 inputs in batches of 8, twice; GET /v1/models (404: TEI has none), then GET /info
    assert stats.requests == 2 * 6 + 2


def test_base64_and_float_answers_agree_exactly_in_float32():
    with client(local_url("hash"), protocol="openai") as packed:
        with client(local_url("hash"), protocol="openai", encoding_format="float") as floats:
            a = packed.embed(TEXTS, dtype="float32")
            b = floats.embed(TEXTS, dtype="float32")
    np.testing.assert_array_equal(a, b)


def test_aembed_on_the_openai_route(tei_vectors):
    async def run():
        async with client(local_url("hash"), protocol="openai", batch_size=4) as c:
            return await c.aembed(TEXTS)

    np.testing.assert_allclose(np.array(asyncio.run(run())), tei_vectors, atol=1e-7)


@pytest.mark.parametrize("validation_status", [413, 422])
def test_a_batch_over_the_servers_limit_is_split_on_the_openai_route(
    validation_status, tei_vectors
):
    with LocalEndpoint("hash", max_client_batch_size=8, validation_status=validation_status) as ep:
        with client(ep.url, protocol="openai", batch_size=20, discover_limits=False) as c:
            rows = c.embed(TEXTS)
            splits = c.stats.splits
        assert str(validation_status) in ep.stats()["status"]
    np.testing.assert_allclose(np.array(rows), tei_vectors, atol=1e-7)
    assert splits >= 1


def test_both_adapters_on_the_openai_route(tei_vectors):
    url = local_url("hash")
    langchain = HFEndpointEmbeddings(url=url, api_key=None, protocol="openai", rate_limit=10**7)
    llama = HFEndpointEmbedding(
        url=url + "/v1/embeddings", api_key=None, protocol="openai", rate_limit=10**7
    )
    np.testing.assert_allclose(np.array(langchain.embed_documents(TEXTS)), tei_vectors, atol=1e-7)
    np.testing.assert_allclose(
        np.array(llama.get_text_embedding_batch(TEXTS)), tei_vectors, atol=1e-7
    )
    np.testing.assert_allclose(langchain.embed_query(TEXTS[3]), tei_vectors[3], atol=1e-7)


def test_the_command_line_embeds_over_the_openai_route(tmp_path):
    source, tei_out, openai_out = (
        tmp_path / "in.jsonl",
        tmp_path / "tei.jsonl",
        tmp_path / "o.jsonl",
    )
    write_records(source, 12)
    url = local_url("hash")
    assert hf_endpoint("embed", source, "-o", tei_out, "--url", url).returncode == 0
    done = hf_endpoint("embed", source, "-o", openai_out, "--url", url, "--protocol", "openai")
    assert done.returncode == 0, done.stderr
    for a, b in zip(rows_of(tei_out), rows_of(openai_out), strict=True):
        assert [c["start"] for c in a["chunks"]] == [c["start"] for c in b["chunks"]]
        np.testing.assert_allclose(
            [c["embedding"] for c in a["chunks"]], [c["embedding"] for c in b["chunks"]], atol=1e-7
        )


# -- TEI's own OpenAI route: it auto-truncates, and the OpenAI API cannot ask it not to ----------


def test_an_auto_url_that_turns_out_to_be_tei_uses_its_embed_which_refuses_long_inputs():
    texts = ["short", "word " * 600]  # over the hash backend's 512 tokens
    with LocalEndpoint("hash", auto_truncate=True) as ep:
        with client(ep.url + "/v1/embeddings") as c:
            with pytest.raises(InputTooLargeError) as info:
                c.embed(texts)
            assert len(c.embed(texts[:1])) == 1
        seen = ep.stats()
    # Refused, not cut: the request went to /embed with "truncate": false (the OpenAI route
    # would have cut it and answered 200), after GET /v1/models (404: TEI 1.9.3 has none)
    # and one GET /info.
    assert info.value.index == 1
    assert seen["info_requests"] == 1


def test_tei_behind_an_openai_url_is_found_at_its_info_and_sent_to_embed():
    paths = []

    def tei(handler, body):
        paths.append((handler.command, handler.path))
        if handler.path == "/info":
            info = {"model_id": "m", "max_client_batch_size": 4, "max_input_length": 512,
                    "auto_truncate": True}  # fmt: skip
            return reply(handler, 200, json.dumps(info).encode())
        if handler.path == "/embed":
            n = len(json.loads(body)["inputs"])
            return reply(handler, 200, json.dumps([[1.0, 0.0]] * n).encode())
        reply(handler, 404, b"")

    with raw_endpoint(tei) as url, client(url + "/v1/embeddings") as c:
        assert len(c.embed(["t"] * 6)) == 6
    assert paths == [
        ("GET", "/v1/models"),
        ("GET", "/info"),
        ("POST", "/embed"),
        ("POST", "/embed"),
    ]


def test_the_openai_route_of_an_auto_truncating_tei_is_used_when_asked_and_warned_about(caplog):
    texts = ["short", "word " * 600]
    with LocalEndpoint("hash", auto_truncate=True) as ep:
        with client(ep.url + "/v1/embeddings", protocol="openai") as c:
            rows = c.embed(texts)
            c.embed(texts)
    assert len(rows) == 2  # the server cut the long one: the API has no way to refuse
    warnings = [r.getMessage() for r in caplog.records if r.levelname == "WARNING"]
    assert len(warnings) == 1 and "cuts inputs over 512 tokens without saying so" in warnings[0]


# -- errors ----------------------------------------------------------------------------------

VLLM_TOO_LONG = {
    "error": {
        "message": "This model's maximum context length is 512 tokens. However, you requested "
        "900 tokens in the input for embedding generation. Please reduce the length of the input.",
        "type": "BadRequestError",
        "code": 400,
    }
}


def test_an_openai_error_body_is_an_error_naming_the_inputs_with_its_message():
    error = {"error": {"message": "unknown field xyz", "type": "BadRequestError", "code": 400}}
    server = OpenAIServer(fail={2: (400, error)})
    with raw_endpoint(server) as url, client(url + "/v1/embeddings") as c:
        with pytest.raises(InputRejectedError) as info:
            c.embed(["a", "b"])
    assert str(info.value) == (
        "HTTP 400 (BadRequestError) from the endpoint for inputs [0..1]: unknown field xyz"
    )


def test_a_fastapi_detail_is_read():
    detail = {"detail": [{"loc": ["body", "input"], "msg": "Field required", "type": "missing"}]}
    server = OpenAIServer(fail={2: (422, detail)})
    with raw_endpoint(server) as url, client(url + "/v1/embeddings") as c:
        with pytest.raises(InputRejectedError, match=r"input \[0\]: body.input: Field required"):
            c.embed(["a"])


def test_vllms_context_length_refusal_splits_and_names_the_long_input():
    too_long = "word " * 900

    def vllm(handler, body):
        if handler.command == "GET":
            return reply(handler, 200, b'{"data": [{"id": "m"}]}')
        inputs = json.loads(body)["input"]
        if too_long in inputs:
            return reply(handler, 400, json.dumps(VLLM_TOO_LONG).encode())
        data = [{"index": i, "embedding": b64([1.0, 2.0])} for i in range(len(inputs))]
        reply(handler, 200, json.dumps({"data": data}).encode())

    with raw_endpoint(vllm) as url, client(url + "/v1/embeddings") as c:
        with pytest.raises(InputTooLargeError) as info:
            c.embed(["a", "b", too_long, "c"])
        assert info.value.index == 2
        chunks = c.embed_chunks(["a", too_long])  # chunked again, smaller, until it fits
    assert len(chunks[1]) > 1


def test_a_429_is_retried_and_a_lasting_one_is_an_overloaded_error():
    busy = {"error": {"message": "slow down", "type": "RateLimitError", "code": 429}}
    server = OpenAIServer(fail={2: (429, busy)})
    with raw_endpoint(server) as url, client(url + "/v1/embeddings") as c:
        assert len(c.embed(["a"])) == 1
        assert c.stats.retries == {"HTTP 429": 1}
    always = OpenAIServer(fail={n: (429, busy) for n in range(2, 20)})
    with raw_endpoint(always) as url, client(url + "/v1/embeddings") as c:
        with pytest.raises(EndpointOverloadedError, match="slow down"):
            c.embed(["a"])


# -- parsing -------------------------------------------------------------------------------


def test_base64_vectors_are_decoded_to_float32_in_input_order():
    vectors = np.random.default_rng(1).standard_normal((3, 5)).astype(np.float32)
    body = {"data": [{"index": i, "embedding": b64(v)} for i, v in enumerate(vectors)][::-1]}
    rows = parse_openai_embeddings(json.dumps(body).encode(), 3)
    assert [row.typecode for row in rows] == ["f"] * 3
    np.testing.assert_array_equal(np.array(rows, dtype=np.float32), vectors)


@pytest.mark.parametrize(
    "body, message",
    [
        ({"data": [{"index": 0, "embedding": "abc"}]}, "vector [0] is not valid base64"),
        ({"data": [{"index": 0, "embedding": "AAAA AA=="}]}, "vector [0] is not valid base64"),
        ({"data": [{"index": 0, "embedding": base64.b64encode(b"12345").decode()}]}, "5 bytes"),
        ({"data": [{"index": 1, "embedding": [1.0]}]}, "data [0] has no index in 0..0"),
        ({"data": []}, "expected 1 vectors, one per input, received 0"),
        ([[1.0]], 'expected {"data"'),
    ],
)
def test_a_wrong_openai_answer_is_a_format_error_naming_it(body, message):
    with pytest.raises(ResponseFormatError, match=message.replace("[", r"\[").replace("{", r"\{")):
        parse_openai_embeddings(json.dumps(body).encode(), 1)

"""The local endpoint speaks Text Embeddings Inference's protocol, faults included.

Each TEI behaviour names the file of TEI's router it mirrors
(huggingface/text-embeddings-inference).
"""

import asyncio
import base64
import subprocess
import sys
import threading
import time
from dataclasses import dataclass

import httpx
import numpy as np
import pytest

from hf_endpoint.server import Faults, HashBackend, LocalEndpoint, ServerConfig
from hf_endpoint.server.backends import normalize_rows

KEY = "hf_server_test_key"
AUTH = {"Authorization": f"Bearer {KEY}"}
HASH = HashBackend()


@pytest.fixture(scope="module")
def endpoint():
    with LocalEndpoint("hash", api_key=KEY) as ep:
        yield ep


@pytest.fixture
def client(endpoint):
    with httpx.Client(base_url=endpoint.url, headers=AUTH, timeout=30) as c:
        yield c


# A server from before TEI 1.9: --auto-truncate was off by default (router/src/main.rs) and a
# Validation error was 413 PAYLOAD_TOO_LARGE (router/src/http/server.rs, changed by PR #818).
TEI_1_8 = {"auto_truncate": False, "validation_status": 413}


@pytest.fixture(scope="module")
def endpoint_1_8():
    with LocalEndpoint("hash", api_key=KEY, **TEI_1_8) as ep:
        yield ep


@dataclass
class Era:
    client: httpx.Client
    validation_status: int


@pytest.fixture(params=["1.9.3", "1.8"])
def era(request, endpoint, endpoint_1_8):
    """A client of a server as TEI v1.9.3 (Validation 422) and as TEI before 1.9 (413)."""
    server, status = (endpoint, 422) if request.param == "1.9.3" else (endpoint_1_8, 413)
    with httpx.Client(base_url=server.url, headers=AUTH, timeout=30) as c:
        yield Era(c, status)


def tei_error(response, status, error_type, error=None):
    """TEI's ``ErrorResponse`` (router/src/lib.rs): ``error_type`` is the enum variant's name."""
    assert response.status_code == status, response.text
    assert response.headers["content-type"] == "application/json"
    body = response.json()
    assert set(body) == {"error", "error_type"}
    assert body["error_type"] == error_type
    if error is not None:
        assert body["error"] == error
    return body["error"]


def plain_error(response, status, prefix):
    """axum's extractor rejections: plain text, no JSON."""
    assert response.status_code == status, response.text
    assert response.headers["content-type"].startswith("text/plain")
    assert response.text.startswith(prefix), response.text


def post_raw(client, path, body, content_type="application/json"):
    return client.post(path, content=body, headers={"Content-Type": content_type})


# --- POST /embed -------------------------------------------------------------------


@pytest.mark.parametrize("path", ["/", "/embed"])
def test_embed_returns_one_vector_per_input_in_order(client, path):
    texts = ["first", "second", "third"]
    response = client.post(path, json={"inputs": texts})
    assert response.status_code == 200
    vectors = np.array(response.json())
    assert vectors.shape == (3, 384)
    for text, vector in zip(texts, vectors):
        np.testing.assert_allclose(vector, HASH.vector(text), rtol=1e-6)


def test_token_ids_need_a_vocabulary_the_hash_backend_lacks(client):
    """router/src/http/types.rs ``InputType::Ids``: a list of integers is one input of token
    ids, read back with the model's tokenizer (the minilm tests embed them); the hash
    backend's word ids are hashes, so it answers TEI's Tokenizer error (422)."""
    for body in ({"inputs": [101, 7592, 102]}, {"inputs": ["text", [7592]]}):
        error = tei_error(client.post("/", json=body), 422, "Tokenizer")
        assert (
            error
            == "tokenizer error the hash backend has no vocabulary: token ids cannot be decoded"
        )


def test_a_single_string_gives_one_row(client):
    assert len(client.post("/", json={"inputs": "alone"}).json()) == 1


def test_normalize_false_returns_the_pooled_vector(client):
    raw = np.array(client.post("/", json={"inputs": ["x"], "normalize": False}).json()[0])
    unit = np.array(client.post("/", json={"inputs": ["x"]}).json()[0])
    assert abs(np.linalg.norm(unit) - 1) < 1e-5
    np.testing.assert_allclose(raw, HASH.vector("x", normalize=False), rtol=1e-6)


def test_prompt_name_prefixes_the_prompt(client):
    with_prompt = client.post("/", json={"inputs": ["x"], "prompt_name": "query"}).json()[0]
    np.testing.assert_allclose(with_prompt, HASH.vector("query: x"), rtol=1e-6)


def test_unknown_prompt_name_is_refused_as_tei_words_it(era):
    """core/src/tokenization.rs ``prepare_pre_prompt``."""
    response = era.client.post("/", json={"inputs": ["a"], "prompt_name": "unknown"})
    error = tei_error(response, era.validation_status, "Validation")
    assert error == (
        "Input validation error: `default-prompt-name` is set to `unknown` but it was not "
        'found in the Sentence Transformers prompts. Available prompts: ["query", "passage"]'
    )


def test_missing_or_wrong_token_is_an_empty_401(endpoint):
    """router/src/http/server.rs: the api-key middleware answers a bare 401."""
    for headers in ({}, {"Authorization": "Bearer nope"}):
        for path in ("/", "/info", "/rerank", "/tokenize", "/v1/embeddings"):
            method = httpx.get if path == "/info" else httpx.post
            response = method(endpoint.url + path, headers=headers)
            assert response.status_code == 401 and response.content == b""
    assert httpx.get(endpoint.url + "/health").status_code == 200  # health is public


@pytest.mark.parametrize(
    "body,status,prefix",
    [
        (b"{not json", 400, "Failed to parse the request body as JSON: "),
        (b"", 400, "Failed to parse the request body as JSON: "),
        (b"[1, 2]", 422, "Failed to deserialize the JSON body into the target type: "),
        (b'{"inputs": [1, -2]}', 422, "Failed to deserialize the JSON body into the target type: inputs: data did not match any variant of untagged enum Input"),
        (b'{"inputs": [1, 4294967296]}', 422, "Failed to deserialize the JSON body into the target type: inputs: "),
        (b'{"inputs": [true]}', 422, "Failed to deserialize the JSON body into the target type: inputs: "),
        (b'{"inputs": ["a", [1, "b"]]}', 422, "Failed to deserialize the JSON body into the target type: inputs: "),
        (b'{"inputs": {"a": 1}}', 422, "Failed to deserialize the JSON body into the target type: inputs: "),
        (b'{"inputs": null}', 422, "Failed to deserialize the JSON body into the target type: inputs: "),
        (b'{"texts": ["a"]}', 422, "Failed to deserialize the JSON body into the target type: missing field `inputs`"),
        (b'{"inputs": ["a"], "normalize": "yes"}', 422, "Failed to deserialize the JSON body into the target type: normalize: invalid type: string \"yes\", expected a boolean"),
        (b'{"inputs": ["a"], "normalize": null}', 422, "Failed to deserialize the JSON body into the target type: normalize: "),
        (b'{"inputs": ["a"], "truncate": 1}', 422, "Failed to deserialize the JSON body into the target type: truncate: "),
        (b'{"inputs": ["a"], "truncation_direction": "Up"}', 422, "Failed to deserialize the JSON body into the target type: truncation_direction: unknown variant `Up`"),
        (b'{"inputs": ["a"], "dimensions": -1}', 422, "Failed to deserialize the JSON body into the target type: dimensions: invalid value: integer `-1`, expected usize"),
        (b'{"inputs": ["a"], "dimensions": 1.5}', 422, "Failed to deserialize the JSON body into the target type: dimensions: "),
    ],
)  # fmt: skip
def test_bodies_that_are_not_the_request_get_axums_rejection(client, body, status, prefix):
    """router/src/http/server.rs takes ``Json<EmbedRequest>``: axum's ``JsonRejection``
    answers a syntax error 400 and a body of the wrong shape 422, in plain text."""
    plain_error(post_raw(client, "/", body), status, prefix)
    assert client.post("/", json={"inputs": ["still here"]}).status_code == 200


def test_a_body_without_a_json_content_type_is_415(client):
    """axum's ``Json`` extractor: ``MissingJsonContentType``."""
    plain_error(post_raw(client, "/", b'{"inputs": "x"}', "text/plain"), 415, "Expected request")
    assert post_raw(client, "/", b'{"inputs": "x"}', "application/json; charset=utf-8").is_success


def test_unknown_fields_are_ignored(client):
    """types.rs: TEI's request structs do not deny unknown fields."""
    assert client.post("/", json={"inputs": "x", "model": "whatever"}).status_code == 200


def test_truncation_direction_takes_either_case(client):
    """router/src/http/types.rs: ``TruncationDirection`` has ``left`` and ``right`` aliases."""
    long = " ".join(f"w{i}" for i in range(600))
    for left in ("Left", "left"):
        body = {"inputs": [long], "truncate": True, "truncation_direction": left}
        row = client.post("/", json=body).json()[0]
        np.testing.assert_allclose(row, HASH.vector(" ".join(long.split()[-510:])), rtol=1e-6)


def test_an_empty_list_is_400_empty(client):
    """router/src/http/types.rs: the untagged ``Input`` tries ``Single(InputType)`` first, and
    ``[]`` is an empty ``Vec<u32>``: one input of no token ids, refused by the core's
    ``encode`` as Empty with its prefix (the router's empty-batch check never sees it)."""
    tei_error(
        client.post("/", json={"inputs": []}),
        400,
        "Empty",
        "Input validation error: `inputs` cannot be empty",
    )


@pytest.mark.parametrize("inputs", ["", ["fine", "", "fine"]])
def test_an_empty_text_is_refused(client, inputs):
    """core/src/tokenization.rs: ``encode`` refuses an empty input with
    ``TextEmbeddingsError::Empty``, whose message carries the validation prefix (core/src/lib.rs)."""
    response = client.post("/", json={"inputs": inputs})
    tei_error(response, 400, "Empty", "Input validation error: `inputs` cannot be empty")


def test_the_first_refused_input_names_the_error(era):
    """router/src/http/server.rs ``embed`` joins the inputs' results in order: the first
    error in input order is the answer, whichever check found it."""
    too_many_tokens = "word " * 600
    body = {"inputs": ["ok", too_many_tokens, ""], "truncate": False}
    response = era.client.post("/", json=body)
    tei_error(response, era.validation_status, "Validation")
    assert "must have less than 512 tokens" in response.json()["error"]
    body = {"inputs": ["ok", "", too_many_tokens], "truncate": False}
    tei_error(era.client.post("/", json=body), 400, "Empty")


def test_more_inputs_than_max_client_batch_size_is_a_validation_error(era):
    """router/src/http/server.rs: ``batch size {n} > maximum allowed batch size {max}``,
    422 since TEI 1.9 and 413 before."""
    response = era.client.post("/", json={"inputs": ["a"] * 33})
    tei_error(
        response,
        era.validation_status,
        "Validation",
        "batch size 33 > maximum allowed batch size 32",
    )
    assert era.client.post("/", json={"inputs": ["a"] * 32}).status_code == 200


def test_validation_errors_are_422_as_tei_1_9_3_and_413_before(endpoint, endpoint_1_8):
    """router/src/http/server.rs ``impl From<&ErrorType> for StatusCode``: v1.9.3 answers
    Validation with UNPROCESSABLE_ENTITY, v1.8.3 with PAYLOAD_TOO_LARGE (PR #818)."""
    body = {"inputs": ["a"] * 33}
    assert httpx.post(endpoint.url, json=body, headers=AUTH).status_code == 422
    assert httpx.post(endpoint_1_8.url, json=body, headers=AUTH).status_code == 413
    for server in (endpoint, endpoint_1_8):  # the other types are the same in both
        assert httpx.post(server.url, json={"inputs": []}, headers=AUTH).status_code == 400


def test_input_over_max_input_length_is_refused_unless_truncated(era):
    """core/src/tokenization.rs ``encode_input``: more tokens than ``max_input_length``
    without truncation is a validation error; with it, the input is cut on the side
    ``truncation_direction`` names."""
    long = "word " * 600  # 602 tokens with the two special ones
    client = era.client
    tei_error(
        client.post("/", json={"inputs": ["short", long], "truncate": False}),
        era.validation_status,
        "Validation",
        "Input validation error: `inputs` must have less than 512 tokens. Given: 602",
    )
    right = client.post("/", json={"inputs": [long], "truncate": True}).json()[0]
    np.testing.assert_allclose(right, HASH.vector(" ".join(["word"] * 510)), rtol=1e-6)
    numbered = " ".join(str(i) for i in range(600))
    left = client.post(
        "/", json={"inputs": [numbered], "truncate": True, "truncation_direction": "Left"}
    ).json()[0]
    np.testing.assert_allclose(left, HASH.vector(" ".join(numbered.split()[90:])), rtol=1e-6)


def test_truncate_unset_follows_the_servers_auto_truncate(client, endpoint_1_8):
    """router/src/http/server.rs ``embed``: ``req.truncate.unwrap_or(info.auto_truncate)``;
    ``--auto-truncate`` defaults to true since TEI 1.9.0 (router/src/main.rs, PR #829)."""
    long = "word " * 600
    cut = client.post("/", json={"inputs": [long]})
    assert cut.status_code == 200
    np.testing.assert_allclose(cut.json()[0], HASH.vector(" ".join(["word"] * 510)), rtol=1e-6)
    assert cut.headers["x-compute-tokens"] == "512"
    old = httpx.post(endpoint_1_8.url, json={"inputs": [long]}, headers=AUTH)
    message = "Input validation error: `inputs` must have less than 512 tokens. Given: 602"
    tei_error(old, 413, "Validation", message)


def test_inputs_over_250_characters_per_token_are_refused_before_tokenizing(era):
    """core/src/tokenization.rs ``tokenize_input``: more than ``max_input_length * 250``
    characters is refused without ``truncate`` and cut to that many bytes with it."""
    huge = "x" * (512 * 250 + 1)
    client = era.client
    tei_error(
        client.post("/", json={"inputs": huge, "truncate": False}),
        era.validation_status,
        "Validation",
        f"Input validation error: `inputs` must have less than 128000 characters. Given: {len(huge)}",
    )
    cut = client.post("/", json={"inputs": huge, "truncate": True}).json()[0]
    np.testing.assert_allclose(cut, HASH.vector("x" * 128000), rtol=1e-6)


def test_body_over_the_payload_limit_is_413(client):
    """router/src/http/server.rs: ``DefaultBodyLimit::max(payload_limit)``, 2 MB by default."""
    response = client.post("/", json={"inputs": ["x" * 2_100_000]})
    plain_error(response, 413, "Failed to buffer the request body: length limit exceeded")


def test_answers_carry_teis_metadata_headers(client):
    """router/src/lib.rs ``From<ResponseMetadata> for HeaderMap``."""
    response = client.post("/", json={"inputs": ["a b", "cde"], "prompt_name": "query"})
    assert response.headers["x-compute-characters"] == "6"  # the inputs, not the prompt
    assert response.headers["x-compute-tokens"] == str(5 + 4)
    assert response.headers["x-compute-type"] == "gpu+optimized"
    for name in ("x-compute-time", "x-total-time", "x-tokenization-time", "x-queue-time"):
        assert response.headers[name].isdigit()
    ranked = client.post("/rerank", json={"query": "q", "texts": ["a", "b c"]})
    assert ranked.headers["x-compute-characters"] == str(1 * 2 + 1 + 3)
    assert "x-compute-tokens" not in client.post("/tokenize", json={"inputs": "a"}).headers


# --- dimensions (Matryoshka, TEI PR #676) --------------------------------------------------


def test_dimensions_cut_the_vector_then_normalise_it(client):
    """core/src/infer.rs ``embed_pooled``: truncate to ``dimensions``, then normalise."""
    row = np.array(client.post("/", json={"inputs": ["x"], "dimensions": 64}).json()[0])
    assert row.shape == (64,)
    expected = normalize_rows(HASH.vector("x", normalize=False)[None, :64])[0]
    np.testing.assert_allclose(row, expected, rtol=1e-6)
    raw = client.post("/", json={"inputs": ["x"], "dimensions": 8, "normalize": False}).json()[0]
    np.testing.assert_allclose(raw, HASH.vector("x", normalize=False)[:8], rtol=1e-6)
    full = client.post("/", json={"inputs": ["x"], "dimensions": 384}).json()[0]
    np.testing.assert_allclose(full, HASH.vector("x"), rtol=1e-6)


def test_dimensions_out_of_range_are_refused(era):
    """core/src/infer.rs ``embed_pooled``: 0 and more than the model's width are validation
    errors."""
    tei_error(
        era.client.post("/", json={"inputs": ["x"], "dimensions": 0}),
        era.validation_status,
        "Validation",
        "Input validation error: `dimensions` should be positive",
    )
    tei_error(
        era.client.post("/", json={"inputs": ["x"], "dimensions": 385}),
        era.validation_status,
        "Validation",
        "Input validation error: `dimensions` should be smaller than the maximum embedding dimension.",
    )


# --- POST /v1/embeddings -----------------------------------------------------------------------


@pytest.mark.parametrize("path", ["/v1/embeddings", "/embeddings"])
def test_openai_route_answers_in_openais_shape(client, path):
    """router/src/http/server.rs ``openai_embed`` and types.rs ``OpenAICompatResponse``."""
    body = client.post(path, json={"input": ["a b", "c"], "model": "any"}).json()
    assert body["object"] == "list" and body["model"] == "hf-endpoint/hash"
    assert [(d["object"], d["index"]) for d in body["data"]] == [("embedding", 0), ("embedding", 1)]
    np.testing.assert_allclose(body["data"][0]["embedding"], HASH.vector("a b"), rtol=1e-6)
    assert body["usage"] == {"prompt_tokens": 4 + 3, "total_tokens": 7}
    single = client.post(path, json={"input": "c"}).json()
    assert len(single["data"]) == 1
    np.testing.assert_allclose(single["data"][0]["embedding"], HASH.vector("c"), rtol=1e-6)


def test_openai_route_takes_dimensions_and_base64(client):
    """types.rs ``OpenAICompatRequest``: ``dimensions`` and ``encoding_format``; base64 is the
    little-endian float32 bytes."""
    body = {"input": "c", "dimensions": 16, "encoding_format": "base64"}
    encoded = client.post("/v1/embeddings", json=body).json()["data"][0]["embedding"]
    row = np.frombuffer(base64.b64decode(encoded), dtype="<f4")
    expected = normalize_rows(HASH.vector("c", normalize=False)[None, :16])[0]
    np.testing.assert_allclose(row, expected, rtol=1e-6)


def test_openai_base64_is_the_float_answer_bit_for_bit(client):
    """router/src/http/server.rs ``openai_embed``: ``encode_embedding`` writes the f32 vector's
    bytes (little-endian on every platform TEI ships for) as standard base64; the float answer
    is the same f32 values."""
    texts = ["one", "two words", "three words here"]
    floats = client.post("/v1/embeddings", json={"input": texts}).json()
    packed = client.post("/v1/embeddings", json={"input": texts, "encoding_format": "base64"})
    for f, b in zip(floats["data"], packed.json()["data"]):
        assert isinstance(b["embedding"], str) and b["index"] == f["index"]
        row = np.frombuffer(base64.b64decode(b["embedding"], validate=True), dtype="<f4")
        assert row.tobytes() == np.array(f["embedding"], dtype="<f4").tobytes()
    assert packed.json()["usage"] == floats["usage"]


def test_openai_request_fields_are_teis(client):
    """types.rs ``OpenAICompatRequest``: ``model`` and ``user`` are optional strings, read and
    ignored (the answer names the served model); ``encoding_format`` is ``float`` or
    ``base64`` (serde's ``rename_all = "snake_case"``), anything else is axum's 422."""
    body = {"input": ["a"], "model": "some/other-model", "user": "u-1", "encoding_format": "float"}
    answer = client.post("/v1/embeddings", json=body).json()
    assert answer["model"] == "hf-endpoint/hash"
    assert client.post("/v1/embeddings", json={"input": "a", "model": None}).status_code == 200
    for bad in ({"encoding_format": "int8"}, {"encoding_format": "Base64"}, {"model": 5}):
        response = client.post("/v1/embeddings", json={"input": "a", **bad})
        plain_error(response, 422, "Failed to deserialize the JSON body into the target type: ")


def test_there_is_no_models_route_as_in_tei(client):
    """router/src/http/server.rs (v1.9.3) routes ``/embeddings`` and ``/v1/embeddings`` only:
    no ``GET /v1/models``; OpenAI clients that list models get 404 from TEI too."""
    assert client.get("/v1/models").status_code == 404


def test_openai_route_errors_are_openais_shape(era):
    """router/src/http/server.rs: ``OpenAICompatErrorResponse`` ``{message, code, type}``,
    ``code`` being the answer's status."""
    client = era.client
    response = client.post("/v1/embeddings", json={"input": []})
    assert response.status_code == 400
    assert response.json() == {
        "message": "Input validation error: `inputs` cannot be empty",
        "code": 400,
        "type": "Empty",
    }
    response = client.post("/v1/embeddings", json={"input": ["a"] * 33})
    assert response.status_code == era.validation_status
    assert response.json() == {
        "message": "batch size 33 > maximum allowed batch size 32",
        "code": era.validation_status,
        "type": "Validation",
    }
    plain_error(
        post_raw(client, "/v1/embeddings", b'{"inputs": "x"}'), 422, "Failed to deserialize"
    )


def test_openai_route_truncates_as_the_server_does(client, endpoint_1_8):
    """router/src/http/server.rs ``openai_embed``: ``truncate = info.auto_truncate`` (a request
    cannot ask otherwise), so a 1.9 server cuts a long input and an older one refuses it."""
    long = "word " * 600
    cut = client.post("/v1/embeddings", json={"input": long}).json()
    np.testing.assert_allclose(
        cut["data"][0]["embedding"], HASH.vector(" ".join(["word"] * 510)), rtol=1e-6
    )
    assert cut["usage"]["prompt_tokens"] == 512
    old = httpx.post(endpoint_1_8.url + "/v1/embeddings", json={"input": long}, headers=AUTH)
    assert old.status_code == 413
    assert old.json() == {
        "message": "Input validation error: `inputs` must have less than 512 tokens. Given: 602",
        "code": 413,
        "type": "Validation",
    }


# --- POST /rerank ------------------------------------------------------------------------------


def test_rerank_sorts_by_score_best_first(client):
    """router/src/http/server.rs ``rerank``: ``[{index, text?, score}]`` sorted descending."""
    texts = ["alpha", "beta", "gamma", "delta"]
    ranks = client.post("/rerank", json={"query": "q", "texts": texts, "raw_scores": True}).json()
    assert sorted(r["index"] for r in ranks) == [0, 1, 2, 3]
    assert all(set(r) == {"index", "score"} for r in ranks)
    scores = [r["score"] for r in ranks]
    assert scores == sorted(scores, reverse=True)
    # hash's stand-in score: the cosine of the two hashed vectors
    for r in ranks:
        expected = float(HASH.vector(texts[r["index"]]) @ HASH.vector("q"))
        assert r["score"] == pytest.approx(expected, abs=1e-6)


def test_rerank_scores_are_a_sigmoid_unless_raw_and_text_on_request(client):
    """core/src/infer.rs ``predict``: one label's logit goes through a sigmoid unless
    ``raw_scores``; types.rs ``Rank`` has ``text`` only with ``return_text``."""
    body = {"query": "q", "texts": ["alpha", "beta"], "return_text": True}
    ranks = client.post("/rerank", json=body).json()
    raw = client.post("/rerank", json={**body, "raw_scores": True}).json()
    for r, s in zip(ranks, raw):
        assert r["index"] == s["index"] and r["text"] == body["texts"][r["index"]]
        assert r["score"] == pytest.approx(1 / (1 + np.exp(-s["score"])), abs=1e-6)
        assert 0 < r["score"] < 1


def test_rerank_ties_keep_the_later_text_first(client):
    """router/src/http/server.rs: a stable ascending sort, then reversed."""
    ranks = client.post("/rerank", json={"query": "q", "texts": ["same", "same", "same"]}).json()
    assert [r["index"] for r in ranks] == [2, 1, 0]


def test_rerank_is_deterministic(client):
    body = {"query": "which one", "texts": ["one", "two", "three"]}
    assert client.post("/rerank", json=body).json() == client.post("/rerank", json=body).json()


def test_rerank_refuses_what_tei_refuses(era):
    """router/src/http/server.rs ``rerank`` and core/src/tokenization.rs for the pair."""
    client = era.client
    tei_error(
        client.post("/rerank", json={"query": "q", "texts": []}),
        400,
        "Empty",
        "`texts` cannot be empty",
    )
    tei_error(
        client.post("/rerank", json={"query": "q", "texts": ["t"] * 33}),
        era.validation_status,
        "Validation",
        "batch size 33 > maximum allowed batch size 32",
    )
    tei_error(
        client.post("/rerank", json={"query": "", "texts": ["t", ""]}),
        400,
        "Empty",
        "Input validation error: `inputs` cannot be empty",
    )
    long = "word " * 300
    body = {"query": long, "texts": [long], "truncate": False}
    error = tei_error(client.post("/rerank", json=body), era.validation_status, "Validation")
    assert error == "Input validation error: `inputs` must have less than 512 tokens. Given: 603"
    body = {"query": long, "texts": [long], "truncate": True}
    assert client.post("/rerank", json=body).status_code == 200
    assert client.post("/rerank", json={"query": "", "texts": ["t"]}).status_code == 200
    plain_error(post_raw(client, "/rerank", b'{"query": "q"}'), 422, "Failed to deserialize")


# --- POST /tokenize ----------------------------------------------------------------------------


def test_tokenize_lists_each_inputs_tokens(client):
    """router/src/http/server.rs ``tokenize`` and core/src/tokenization.rs ``into_tokens``:
    special tokens have no offsets; ``start``/``stop`` are UTF-8 byte offsets."""
    tokens = client.post("/tokenize", json={"inputs": "héllo wörld"}).json()
    assert len(tokens) == 1
    assert [(t["text"], t["special"], t["start"], t["stop"]) for t in tokens[0]] == [
        ("[CLS]", True, None, None),
        ("héllo", False, 0, 6),
        ("wörld", False, 7, 13),
        ("[SEP]", True, None, None),
    ]
    assert all(set(t) == {"id", "text", "special", "start", "stop"} for t in tokens[0])


def test_tokenize_options(client):
    """types.rs ``TokenizeRequest``: ``add_special_tokens`` (default true) and
    ``prompt_name`` (the prompt is part of the tokenized text)."""
    bare = client.post("/tokenize", json={"inputs": ["a b"], "add_special_tokens": False}).json()
    assert [t["text"] for t in bare[0]] == ["a", "b"]
    prompted = client.post("/tokenize", json={"inputs": ["a"], "prompt_name": "query"}).json()
    assert [(t["text"], t["start"]) for t in prompted[0][1:-1]] == [("query:", 0), ("a", 7)]


def test_tokenize_does_not_cut_long_inputs(client):
    """core/src/tokenization.rs ``tokenize``: no token limit (only the character limit)."""
    tokens = client.post("/tokenize", json={"inputs": "word " * 600}).json()[0]
    assert len(tokens) == 602


def test_tokenize_refuses_what_tei_refuses(era):
    client = era.client
    tei_error(
        client.post("/tokenize", json={"inputs": []}), 400, "Empty", "`inputs` cannot be empty"
    )
    tei_error(
        client.post("/tokenize", json={"inputs": ""}),
        400,
        "Empty",
        "Input validation error: `inputs` cannot be empty",
    )
    tei_error(
        client.post("/tokenize", json={"inputs": ["a"] * 33}), era.validation_status, "Validation"
    )


# --- GET /info, /health ----------------------------------------------------------------------


# router/src/lib.rs (v1.9.3) ``Info``: its fields in order, with their JSON types.
INFO_FIELDS = {
    "model_id": str,
    "model_sha": type(None),  # Option<String>: a hub revision; a local folder has none
    "model_dtype": str,
    "served_model_name": str,
    "model_type": dict,
    "max_concurrent_requests": int,
    "max_input_length": int,
    "max_batch_tokens": int,
    "max_batch_requests": type(None),  # Option<usize>, null unless --max-batch-requests
    "max_client_batch_size": int,
    "auto_truncate": bool,
    "tokenization_workers": int,
    "version": str,
    "sha": type(None),  # option_env!("VERGEN_GIT_SHA"): set by TEI's build only
    "docker_label": type(None),  # option_env!("DOCKER_LABEL"): likewise
}


def test_info_has_every_field_of_teis_info_struct(client, endpoint_1_8):
    """router/src/lib.rs ``Info`` and ``ModelType`` (``#[serde(rename_all = "lowercase")]``,
    an externally tagged enum: ``{"embedding": {"pooling": ...}}``); ``version`` is the TEI
    release the server follows (CARGO_PKG_VERSION, 1.9.3)."""
    info = client.get("/info").json()
    assert list(info) == list(INFO_FIELDS)
    for name, kind in INFO_FIELDS.items():
        assert type(info[name]) is kind, (name, info[name])
    assert info["model_type"] == {"embedding": {"pooling": "mean"}}
    assert info["model_dtype"] == "float32"
    assert info["tokenization_workers"] >= 1
    assert (info["version"], info["auto_truncate"]) == ("1.9.3", True)
    old = httpx.get(endpoint_1_8.url + "/info", headers=AUTH).json()
    assert (old["version"], old["auto_truncate"]) == ("1.8.3", False)


def test_info_and_health(client):
    """router/src/lib.rs ``Info``; router/src/http/server.rs public health routes."""
    info = client.get("/info").json()
    assert info["model_id"] == info["served_model_name"] == "hf-endpoint/hash"
    assert info["max_client_batch_size"] == 32
    assert info["max_input_length"] == 512
    assert info["max_batch_tokens"] == 16384
    assert info["max_concurrent_requests"] == 512
    assert info["model_type"] == {"embedding": {"pooling": "mean"}}
    assert info["auto_truncate"] is True
    for path in ("/health", "/", "/ping"):
        assert client.get(path).status_code == 200


def test_max_input_length_over_max_batch_tokens_needs_auto_truncate():
    """router/src/lib.rs: the router refuses to start, unless ``--auto-truncate`` cuts the
    limit to ``max_batch_tokens``."""
    with pytest.raises(ValueError, match=r"The maximum input length is `512` which exceeds"):
        ServerConfig(backend=HashBackend(), max_batch_tokens=64, auto_truncate=False)
    assert (
        ServerConfig(HashBackend(), max_batch_tokens=64, auto_truncate=True).max_input_length == 64
    )


# --- batching ------------------------------------------------------------------------------


def test_concurrent_requests_are_batched_together():
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
        np.testing.assert_allclose(row, HASH.vector(f"t{i}"), rtol=1e-6)
    assert max(int(size) for size in stats["batch_sizes"]) > 1


def test_batches_stay_within_max_batch_tokens_and_results_keep_their_order():
    """core/src/queue.rs ``next_batch``: a padded batch (longest x inputs) never exceeds
    ``max_batch_tokens``; a request larger than that is split over several batches."""
    texts = [" ".join(f"w{i}-{j}" for j in range(10)) for i in range(16)]  # 12 tokens each

    async def burst(url):
        async with httpx.AsyncClient(base_url=url, timeout=30) as c:
            return await asyncio.gather(
                *(c.post("/", json={"inputs": texts, "truncate": False}) for _ in range(4))
            )

    with LocalEndpoint("hash", max_batch_tokens=64, auto_truncate=True) as ep:
        assert httpx.get(ep.url + "/info").json()["max_input_length"] == 64
        responses = asyncio.run(burst(ep.url))
        stats = ep.stats()
    expected = np.stack([HASH.vector(t) for t in texts])
    for response in responses:
        np.testing.assert_allclose(np.array(response.json()), expected, rtol=1e-6)
    sizes = [int(size) for size in stats["batch_sizes"]]
    assert max(sizes) == 5  # 5 x 12 = 60 <= 64 < 6 x 12
    assert sum(int(s) * n for s, n in stats["batch_sizes"].items()) == 64


async def test_permits_are_teis_max_concurrent_requests():
    """core/src/infer.rs: a single input takes a permit or is refused (429), a batch waits
    for its inputs' permits; the waiting are served in arrival order and none leak."""
    from hf_endpoint.server._engine import _Permits

    permits = _Permits(4)
    assert permits.try_acquire(3)
    assert not permits.try_acquire(2)
    first = asyncio.create_task(permits.acquire(2))
    second = asyncio.create_task(permits.acquire(1))
    gone = asyncio.create_task(permits.acquire(4))
    await asyncio.sleep(0)
    assert not permits.try_acquire(1)  # the waiting come first
    gone.cancel()
    permits.release(3)
    await asyncio.wait_for(asyncio.gather(first, second), 5)
    with pytest.raises(asyncio.CancelledError):
        await gone
    assert permits.free == 1
    permits.release(3)
    assert permits.free == 4 and permits.try_acquire(4)


class _WatchedTokenizer:
    def __init__(self, inner, log):
        self.inner, self.log = inner, log

    def encode(self, texts, **options):
        self.log.append((id(self), threading.get_ident()))
        return self.inner.encode(texts, **options)

    def pair_length(self, first, second):
        self.log.append((id(self), threading.get_ident()))
        return self.inner.pair_length(first, second)


class _WatchedBackend(HashBackend):
    """The hash backend, noting which thread uses which tokenizer and the model."""

    def __init__(self):
        super().__init__()
        self.tokenizer_uses, self.embed_threads = [], set()

    def tokenizer(self):
        return _WatchedTokenizer(super().tokenizer(), self.tokenizer_uses)

    def embed(self, batch):
        self.embed_threads.add(threading.get_ident())
        return super().embed(batch)


def test_a_tokenizer_is_only_ever_used_by_one_thread_and_the_model_by_another():
    """The race behind HTTP 424 ``Unable to create tensor``: a tokenizer instance shared by
    request threads and the model thread. Under 16 concurrent clients, every instance stays
    on one thread, the model runs on one thread, and no tokenizer runs on it."""
    backend = _WatchedBackend()

    codes = []

    def client_loop(url, n):
        with httpx.Client(base_url=url, timeout=30) as c:
            for i in range(n):
                path, body = [
                    ("/", {"inputs": [f"a {i}", "b " * (i % 7 + 1)]}),
                    ("/tokenize", {"inputs": f"t {i}"}),
                    ("/rerank", {"query": "q", "texts": [f"r {i}", "s"]}),
                    ("/v1/embeddings", {"input": f"o {i}"}),
                ][i % 4]
                codes.append(c.post(path, json=body).status_code)

    with LocalEndpoint(backend) as ep:
        threads = [threading.Thread(target=client_loop, args=(ep.url, 20)) for _ in range(16)]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
    assert codes == [200] * 16 * 20
    owners = {}
    for instance, thread in backend.tokenizer_uses:
        assert owners.setdefault(instance, thread) == thread
    assert len(backend.embed_threads) == 1
    assert not backend.embed_threads & set(owners.values())


class _FailingTokenizer:
    def encode(self, texts, **options):
        raise RuntimeError("no such token")

    def pair_length(self, first, second):
        raise RuntimeError("no such token")


class _FailingBackend(HashBackend):
    """Fails where told: the tokenizer on texts starting with "!", the model on "?"."""

    def tokenizer(self):
        inner = super().tokenizer()
        failing = _FailingTokenizer()

        class Either:
            def encode(self, texts, **options):
                chosen = failing if any(t.startswith("!") for t in texts) else inner
                return chosen.encode(texts, **options)

            def pair_length(self, first, second):
                return inner.pair_length(first, second)

        return Either()

    def embed(self, batch):
        if any(e.text.startswith("?") for e in batch.encodings):
            raise RuntimeError("device lost")
        return super().embed(batch)


def test_a_failing_tokenizer_is_422_and_a_failing_model_424():
    """core/src/lib.rs ``TextEmbeddingsError``: a tokenizer error is ``Tokenizer`` (422),
    a backend error ``Backend`` (424); the server goes on serving."""
    with LocalEndpoint(_FailingBackend()) as ep:
        tei_error(
            httpx.post(ep.url, json={"inputs": "!x"}),
            422,
            "Tokenizer",
            "tokenizer error no such token",
        )
        tei_error(
            httpx.post(ep.url, json={"inputs": "?x"}),
            424,
            "Backend",
            "Backend error: Inference error: device lost",
        )
        assert httpx.post(ep.url, json={"inputs": "x"}).status_code == 200


# --- stats -------------------------------------------------------------------------------


def test_stats_count_requests_inputs_and_statuses(endpoint, client):
    endpoint.reset_stats()
    client.post("/", json={"inputs": ["a", "b"]})
    client.post("/", json={"inputs": []})
    stats = endpoint.stats()
    assert stats["requests"] == 2
    assert stats["served_inputs"] == 2
    assert stats["status"] == {"200": 1, "400": 1}
    assert len(stats["arrivals"]) == 2


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
    assert response.headers["Retry-After"] == "3"
    tei_error(response, 429, "Overloaded", "Model is overloaded")


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


# --- running it ----------------------------------------------------------------------------


def test_runs_as_a_subprocess():
    with LocalEndpoint("hash", in_process=False, api_key=KEY) as ep:
        assert httpx.post(ep.url, json={"inputs": "x"}, headers=AUTH).status_code == 200


def test_a_subprocess_serves_either_era():
    """The options travel to ``python -m hf_endpoint.server``: TEI 1.9.3's defaults, or a
    server from before 1.9."""
    with LocalEndpoint("hash", in_process=False) as new:
        info = httpx.get(new.url + "/info").json()
        assert info["auto_truncate"] is True
        assert httpx.post(new.url, json={"inputs": ["a"] * 33}).status_code == 422
    with LocalEndpoint("hash", in_process=False, **TEI_1_8) as old:
        assert httpx.get(old.url + "/info").json()["auto_truncate"] is False
        assert httpx.post(old.url, json={"inputs": ["a"] * 33}).status_code == 413
        assert httpx.post(old.url, json={"inputs": "word " * 600}).status_code == 413


@pytest.mark.parametrize(
    "argv,auto_truncate,validation_status",
    [
        ([], True, 422),
        (["--auto-truncate"], True, 422),
        (["--auto-truncate", "true"], True, 422),
        (["--auto-truncate", "false"], False, 422),
        (["--auto-truncate", "false", "--validation-status", "413"], False, 413),
    ],
)
def test_auto_truncate_and_validation_status_options(argv, auto_truncate, validation_status):
    """router/src/main.rs: ``--auto-truncate`` takes an optional ``true``/``false`` and
    defaults to true; ``--validation-status 413`` is the status TEI gave before 1.9."""
    import argparse

    from hf_endpoint.server import add_arguments, config_from_arguments

    parser = argparse.ArgumentParser()
    add_arguments(parser)
    config = config_from_arguments(parser.parse_args(["--backend", "hash", *argv]))
    assert (config.auto_truncate, config.validation_status) == (auto_truncate, validation_status)


@pytest.mark.parametrize("argv", [["--auto-truncate", "no"], ["--validation-status", "400"]])
def test_bad_era_options_are_refused(argv, capsys):
    import argparse

    from hf_endpoint.server import add_arguments

    parser = argparse.ArgumentParser()
    add_arguments(parser)
    with pytest.raises(SystemExit):
        parser.parse_args(argv)
    assert argv[0] in capsys.readouterr().err
    with pytest.raises(ValueError, match="validation_status must be 422 .* or 413 .*, not 400"):
        ServerConfig(HashBackend(), validation_status=400)


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


@pytest.mark.parametrize(
    "args,message",
    [
        (["--model", "/nonexistent/model"], "model folder /nonexistent/model does not exist"),
        (["--backend", "hash", "--model", "/tmp"], "--model serves a sentence-transformers model"),
        (
            ["--backend", "hash", "--max-batch-tokens", "100", "--auto-truncate", "false"],
            "The maximum input length is `512`",
        ),
    ],
)
def test_bad_server_options_are_one_line_errors(args, message):
    result = subprocess.run(
        [sys.executable, "-m", "hf_endpoint.cli", "serve", "--port", "0", *args],
        check=False,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert result.returncode == 2
    assert result.stderr.startswith("hf-endpoint: error: ") and message in result.stderr
    assert result.stderr.count("\n") == 1


def test_serve_help_lists_the_server_options():
    result = subprocess.run(
        [sys.executable, "-m", "hf_endpoint.cli", "serve", "--help"],
        check=False,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert result.returncode == 0
    for option in (
        "--model",
        "--device",
        "--dtype",
        "--max-batch-tokens",
        "--auto-truncate",
        "--validation-status",
        "--fault-429",
    ):
        assert option in result.stdout

"""RerankClient against the local endpoint's /rerank on loopback, faults included; the
rerank task of InferenceEndpoints with Elasticsearch's settings, messages and answers."""

import asyncio
import math
import pickle
from concurrent.futures import ThreadPoolExecutor

import numpy as np
import orjson
import pytest

from hf_endpoint import (
    ConfigError,
    EndpointError,
    InferenceConfig,
    InferenceEndpoints,
    InputTooLargeError,
    RerankClient,
    RerankTaskSettings,
    ResponseFormatError,
)
from hf_endpoint.client.rerank import rank
from hf_endpoint.client.retry import RetryPolicy
from hf_endpoint.server import Faults, HashBackend, LocalEndpoint

from .endpoints import TEI_1_8, raw_endpoint, reply

CANARY = "hf_CANARY_rerank_3a9e61"
FAST = RetryPolicy(max_retries=25, initial_backoff=0.002, max_backoff=0.02)
UNLIMITED = 10_000_000
HASH = HashBackend()
FAULTS = Faults(rate_429=0.08, rate_502=0.04, rate_503=0.04, rate_drop=0.04, retry_after=0, seed=5)
QUERY = "how do pandas spend their day"
UNKNOWN = "Model configuration contains settings [{}] unknown to the [hugging_face] service"
NOT_OF_TYPE = "field [{}] is not of the expected type. The value [{}] cannot be converted to a [{}]"
DOCS = [f"document {i} on pandas, trains and tea" for i in range(3000)]


def expected_scores(query, docs):
    """What the hash endpoint scores: the sigmoid of the cosine of query and document."""
    q = HASH.vector(query)
    return [1 / (1 + math.exp(-float(HASH.vector(d) @ q))) for d in docs]


def assert_scores_of(docs, scores, query=QUERY):
    assert len(scores) == len(docs)
    np.testing.assert_allclose(scores, expected_scores(query, docs), rtol=1e-6)


def assert_ranked(result):
    """Decreasing scores, ties in input order, each index once, scores as in ``result.scores``."""
    keys = [(-r.relevance_score, r.index) for r in result]
    assert keys == sorted(keys)
    assert len({r.index for r in result}) == len(result)
    assert all(result.scores[r.index] == r.relevance_score for r in result)


@pytest.fixture(scope="module")
def faulty():
    """20% of requests fail: 429, 502, 503, or a dropped connection."""
    with LocalEndpoint("hash", api_key=CANARY, faults=FAULTS) as ep:
        yield ep


@pytest.fixture(scope="module")
def clean():
    with LocalEndpoint("hash", api_key=CANARY, max_client_batch_size=8, **TEI_1_8) as ep:
        yield ep


def client_for(ep, **kwargs):
    kwargs.setdefault("retry_policy", FAST)
    kwargs.setdefault("rate_limit", UNLIMITED)
    return RerankClient(ep.url + "/rerank", CANARY, **kwargs)


# --- the client --------------------------------------------------------------------------


def test_every_document_gets_its_score_once_in_order_through_faults_sync(faulty):
    with client_for(faulty, max_concurrency=4) as client:
        result = client.rerank(QUERY, DOCS)
    assert_scores_of(DOCS, result.scores)
    assert sorted(r.index for r in result) == list(range(len(DOCS)))
    assert_ranked(result)
    assert set(faulty.stats()["status"]) >= {"429", "502", "503", "0"}  # the faults did happen


def test_every_document_gets_its_score_once_in_order_through_faults_async(faulty):
    async def run():
        async with client_for(faulty, max_concurrency=8) as client:
            return await client.arerank(QUERY, DOCS, top_n=50, return_documents=True)

    result = asyncio.run(run())
    assert_scores_of(DOCS, result.scores)
    assert len(result) == 50
    assert_ranked(result)
    assert all(r.text == DOCS[r.index] for r in result)
    assert [r.index for r in result] == sorted(
        range(len(DOCS)), key=lambda i: (-result.scores[i], i)
    )[:50]


def test_threads_and_tasks_sharing_one_client_each_get_their_own_ranking(faulty):
    client = client_for(faulty, max_concurrency=4)
    queries = [f"question {k} about trains" for k in range(6)]

    async def tasks():
        return await asyncio.gather(*(client.arerank(q, DOCS[:400]) for q in queries[3:]))

    pool = ThreadPoolExecutor(3)
    in_threads = [pool.submit(client.rerank, query, DOCS[:400]) for query in queries[:3]]
    in_tasks = asyncio.run(tasks())
    results = [future.result(timeout=120) for future in in_threads] + in_tasks
    pool.shutdown()
    for k, query in enumerate(queries):
        assert_scores_of(DOCS[:400], results[k].scores, query)
        assert_ranked(results[k])
    client.close()


def test_the_best_document_comes_first_and_top_n_keeps_the_best():
    docs = ["about trains", QUERY, "about tea", "about bread"]
    with LocalEndpoint("hash") as ep:
        with client_for(ep) as client:
            top = client.rerank(QUERY, docs, top_n=1)
            everything = client.rerank(QUERY, docs)
    assert [r.index for r in top] == [1]  # the query itself: cosine 1
    assert top[0].relevance_score == pytest.approx(1 / (1 + math.exp(-1)), rel=1e-6)
    assert top[0].text is None
    assert everything[0].index == 1 and len(everything) == 4


def test_equal_scores_keep_input_order():
    docs = ["same text", "other text", "same text", "same text"]
    with LocalEndpoint("hash") as ep:
        with client_for(ep) as client:
            result = client.rerank(QUERY, docs)
    same = [r.index for r in result if r.index != 1]
    assert same == [0, 2, 3]
    assert_ranked(result)


def test_client_task_settings_are_defaults_a_call_overrides():
    docs = DOCS[:10]
    with LocalEndpoint("hash") as ep:
        with client_for(ep, top_n=3, return_documents=True) as client:
            default = client.rerank(QUERY, docs)
            override = client.rerank(QUERY, docs, top_n=5, return_documents=False)
    assert len(default) == 3 and all(r.text == docs[r.index] for r in default)
    assert len(override) == 5 and all(r.text is None for r in override)
    assert [r.index for r in override[:3]] == [r.index for r in default]


def test_documents_are_split_within_the_endpoints_max_client_batch_size(clean):
    clean.reset_stats()
    with client_for(clean, batch_size=100) as client:  # /info says 8
        result = client.rerank(QUERY, DOCS[:50])
    assert_scores_of(DOCS[:50], result.scores)
    stats = clean.stats()
    assert stats["status"] == {"200": 8}  # GET /info, then 50 documents in 7 requests: no 413
    assert stats["info_requests"] == 1


def test_a_batch_refused_as_too_large_is_halved_until_it_fits(clean):
    clean.reset_stats()
    with client_for(clean, batch_size=8, discover_limits=False) as client:
        big = [" ".join(["word"] * 150) + f" {i}" for i in range(8)]  # 8 x 151 words: fits
        result = client.rerank(QUERY, big)
        assert_scores_of(big, result.scores)
        assert client.stats.splits == 0
    with LocalEndpoint("hash", max_client_batch_size=4, **TEI_1_8) as small:
        with client_for(small, batch_size=16, discover_limits=False) as client:
            result = client.rerank(QUERY, DOCS[:16])
            assert client.stats.splits == 3  # 16 -> 8+8 -> 4+4+4+4
    assert_scores_of(DOCS[:16], result.scores)


def test_a_document_too_long_for_the_model_is_named_or_truncated_when_asked(clean):
    docs = ["short one", " ".join(["word"] * 600), "short two"]  # 600 words > 512 tokens
    with client_for(clean) as client:
        with pytest.raises(InputTooLargeError) as info:
            client.rerank(QUERY, docs)
    assert info.value.index == 1
    assert "input [1]" in str(info.value) and CANARY not in str(info.value)
    with client_for(clean, truncate=True) as client:
        result = client.rerank(QUERY, docs)
    assert len(result.scores) == 3


def test_a_document_larger_than_a_request_is_named_before_sending(clean):
    docs = ["fine", "x" * 5000]
    with client_for(clean, max_body_bytes=4096) as client:
        with pytest.raises(InputTooLargeError, match=r"input \[1\] is 5002 bytes as JSON"):
            client.rerank(QUERY, docs)
        assert client.stats.requests == 1  # GET /info only
    with client_for(clean, max_body_bytes=4096, truncate=True) as client:
        result = client.rerank(QUERY, docs)
    assert result.truncated == [1] and len(result.scores) == 2


def test_no_documents_no_request(clean):
    with client_for(clean) as client:
        result = client.rerank(QUERY, [])
        assert list(result) == [] and result.scores == []
        assert client.stats.requests == 0


def test_the_query_and_documents_are_checked_like_elasticsearch(clean):
    with client_for(clean) as client:
        with pytest.raises(ConfigError, match=r"Field \[query\] cannot be null for task type"):
            client.rerank(None, ["a"])
        with pytest.raises(ConfigError, match=r"Field \[query\] cannot be empty for task type"):
            client.rerank("", ["a"])
        with pytest.raises(TypeError, match=r"documents must be a list of str, not str"):
            client.rerank("q", "a single string")
        with pytest.raises(TypeError, match=r"documents\[1\] must be a str, not int"):
            client.rerank("q", ["a", 2])
        with pytest.raises(ConfigError, match=r"\[top_n\] must be a positive integer"):
            client.rerank("q", ["a"], top_n=0)
        assert client.stats.requests == 0
        with pytest.raises(ConfigError, match=r"documents\[0\] holds a lone surrogate"):
            client.rerank("q", ["\ud800"])


def test_every_bad_option_is_reported_at_once():
    with pytest.raises(ConfigError) as info:
        RerankClient("ftp://x", None, batch_size=0, raw_scores="yes", top_n=-1, return_documents=1)
    text = str(info.value)
    for part in (
        "Invalid url [ftp://x]",
        "[batch_size] must be an integer >= 1, not 0",
        "[raw_scores] must be true, false or None, not 'yes'",
        "[task_settings] Invalid value [-1]. [top_n] must be a positive integer",
        NOT_OF_TYPE.format("return_documents", 1, "Boolean"),
    ):
        assert part in text


def test_the_request_is_teis_rerank_and_top_n_is_applied_after_merging():
    bodies = []

    def answer(handler, body):
        if handler.command == "GET":
            return reply(handler, 404, b"{}")
        data = orjson.loads(body)
        bodies.append(data)
        ranks = [{"index": i, "score": 1.0 - len(t) / 100} for i, t in enumerate(data["texts"])]
        reply(handler, 200, orjson.dumps(ranks[::-1]))

    docs = ["a" * n for n in range(1, 8)]
    with raw_endpoint(answer) as url:
        with RerankClient(
            url, None, batch_size=3, truncate=True, raw_scores=True, retry_policy=FAST
        ) as client:
            result = client.rerank("q?", docs, top_n=2, return_documents=True)
    bodies.sort(key=lambda b: len(b["texts"][0]))  # they went out concurrently
    assert bodies[0] == {"texts": docs[:3], "query": "q?", "truncate": True, "raw_scores": True}
    assert [b["texts"] for b in bodies] == [docs[:3], docs[3:6], docs[6:]]
    assert [(r.index, r.text) for r in result] == [(0, "a"), (1, "aa")]  # across requests


@pytest.mark.parametrize(
    ("ranks", "message"),
    [
        ([{"index": 0, "score": 0.5}], "expected 2 scores, one per text, received 1"),
        ([{"index": 0, "score": 0.5}, {"index": 0, "score": 0.1}], r"text \[0\] was scored twice"),
        ([{"index": 0, "score": 0.5}, {"index": 2, "score": 0.1}], r"has no index in 0..1"),
        ([{"index": 0, "score": "high"}, {"index": 1, "score": 0.1}], "has no numeric score"),
        ({"results": []}, "expected 2 scores, one per text, received 0"),  # Cohere-style, empty
        ({"rankings": []}, "expected a list of"),
    ],
)
def test_answers_that_lose_or_repeat_a_document_are_refused(ranks, message):
    def answer(handler, body):
        reply(handler, 200, orjson.dumps(ranks))

    with raw_endpoint(answer) as url:
        with RerankClient(url, None, discover_limits=False, retry_policy=FAST) as client:
            with pytest.raises(ResponseFormatError, match=message):
                client.rerank("q", ["a", "b"])


def test_relevance_score_and_document_text_answers_are_read_as_elasticsearch_reads_them():
    ranks = [
        {"index": 1, "relevance_score": 0.9, "document": {"text": "b"}},
        {"index": 0, "relevance_score": 0.2, "text": "a"},
    ]

    def answer(handler, body):
        reply(handler, 200, orjson.dumps(ranks))

    with raw_endpoint(answer) as url:
        with RerankClient(url, None, discover_limits=False, retry_policy=FAST) as client:
            result = client.rerank("q", ["a", "b"], return_documents=True)
    assert result.to_dict() == {
        "rerank": [
            {"index": 1, "relevance_score": 0.9, "text": "b"},
            {"index": 0, "relevance_score": 0.2, "text": "a"},
        ]
    }


def test_rank_sorts_by_score_then_input_order_and_cuts():
    scores = [0.1, 0.9, 0.5, 0.9, 0.5]
    result = rank(scores, list("abcde"), RerankTaskSettings(top_n=4, return_documents=True))
    assert [(r.index, r.text) for r in result] == [(1, "b"), (3, "d"), (2, "c"), (4, "e")]
    assert result.scores == scores


def test_pickles_into_a_working_client_with_its_settings(clean):
    client = client_for(clean, top_n=2, raw_scores=True)
    clone = pickle.loads(pickle.dumps(client))
    assert clone.task_settings == RerankTaskSettings(top_n=2) and clone.raw_scores is True
    result = clone.rerank(QUERY, DOCS[:5])
    assert len(result) == 2 and len(result.scores) == 5
    client.close()
    clone.close()


def test_the_key_never_shows(clean):
    client = client_for(clean)
    assert CANARY not in repr(client) + str(client.stats)
    with RerankClient(clean.url + "/rerank", "hf_wrong_key_1234", retry_policy=FAST) as wrong:
        with pytest.raises(EndpointError) as info:
            wrong.rerank(QUERY, ["a"])
    assert info.value.status_code == 401 and "hf_wrong_key_1234" not in str(info.value)
    client.close()


# --- Elasticsearch's rerank task --------------------------------------------------------------


def rerank_body(url, **task):
    body = {"service": "hugging_face", "service_settings": {"api_key": CANARY, "url": url}}
    return {**body, "task_settings": task} if task else body


def errors_of(call, *args, **kwargs):
    with pytest.raises(ConfigError) as info:
        call(*args, **kwargs)
    return info.value.errors


def test_put_rerank_validates_with_a_test_query_and_reads_back_without_the_key(clean):
    clean.reset_stats()
    endpoints = InferenceEndpoints(retry_policy=FAST)
    view = endpoints.put(
        " ReRank", "hf-rerank", rerank_body(clean.url + "/rerank", top_n=2, return_documents=True)
    )
    assert view == {
        "inference_id": "hf-rerank",
        "task_type": "rerank",
        "service": "hugging_face",
        "service_settings": {
            "url": clean.url + "/rerank",
            "rate_limit": {"requests_per_minute": 3000},
        },
        "task_settings": {"top_n": 2, "return_documents": True},
    }
    assert endpoints.get("hf-rerank") == {"endpoints": [view]}
    assert clean.stats()["served_inputs"] == 1  # "how big", against "test query"
    assert CANARY not in repr(endpoints) + str(endpoints.get())
    endpoints.close()


def test_rerank_settings_errors_read_like_elasticsearchs_and_all_come_at_once():
    body = {
        "service": "hugging_face",
        "service_settings": {"api_key": CANARY, "url": "http://127.0.0.1:9", "similarity": "x"},
        "task_settings": {"top_n": 0, "return_documents": "yes", "max_chunks_per_doc": 2},
        "chunking_settings": {"strategy": "word"},
    }
    errors = errors_of(InferenceEndpoints().put, "rerank", "bad", body)
    assert errors == [
        UNKNOWN.format("chunking_settings"),
        UNKNOWN.format("max_chunks_per_doc"),
        "[task_settings] Invalid value [0]. [top_n] must be a positive integer",
        NOT_OF_TYPE.format("return_documents", "yes", "Boolean"),
        UNKNOWN.format("similarity"),
    ]
    assert all(CANARY not in e for e in errors)


@pytest.mark.parametrize(
    ("task", "message"),
    [
        (
            {"top_n": "3"},
            NOT_OF_TYPE.format("top_n", 3, "Integer"),
        ),
        ({"top_n": 2.0}, "field [top_n] is not of the expected type"),
        ({"top_n": True}, "field [top_n] is not of the expected type"),
        ({"top_n": -4}, "[task_settings] Invalid value [-4]. [top_n] must be a positive integer"),
        ({"return_documents": 1}, "field [return_documents] is not of the expected type"),
    ],
)
def test_each_bad_task_setting_is_named(task, message):
    errors = errors_of(
        InferenceConfig.from_dict, rerank_body("http://127.0.0.1:9", **task), "rerank"
    )
    assert errors[0].startswith(message)


def test_text_embedding_still_refuses_task_settings_and_rerank_is_not_an_embedding_config():
    body = rerank_body("http://127.0.0.1:9", top_n=3)
    assert errors_of(InferenceConfig.from_dict, body) == [UNKNOWN.format("top_n")]
    config = InferenceConfig.from_dict(body, "rerank")
    with pytest.raises(ConfigError, match=r"requested type \[text_embedding\] does not match"):
        InferenceConfig.coerce(config)
    assert errors_of(InferenceConfig.from_dict, body, "completion") == [
        "The [hugging_face] service does not support task type [completion]"
    ]


def test_inference_returns_elasticsearchs_rerank_answer(clean):
    endpoints = InferenceEndpoints(retry_policy=FAST)
    endpoints.put("rerank", "r", rerank_body(clean.url + "/rerank", top_n=3), validate=False)
    docs = DOCS[:20]
    answer = endpoints.inference("r", docs, query=QUERY)
    assert list(answer) == ["rerank"]
    ranks = answer["rerank"]
    assert len(ranks) == 3 and all(list(r) == ["index", "relevance_score"] for r in ranks)
    scores = expected_scores(QUERY, docs)
    best = sorted(range(20), key=lambda i: -scores[i])[:3]
    assert [r["index"] for r in ranks] == best
    np.testing.assert_allclose([r["relevance_score"] for r in ranks], [scores[i] for i in best])

    # request task_settings override the endpoint's; top_n beside them overrides both
    more = endpoints.inference(
        "r", docs, query=QUERY, task_settings={"top_n": 5, "return_documents": True}
    )["rerank"]
    assert len(more) == 5 and [r["text"] for r in more] == [docs[r["index"]] for r in more]
    assert (
        len(
            endpoints.inference("r", docs, query=QUERY, task_settings={"top_n": 5}, top_n=1)[
                "rerank"
            ]
        )
        == 1
    )
    assert endpoints.inference("r", "one text", query=QUERY)["rerank"][0]["index"] == 0
    endpoints.close()


async def test_async_inference_equals_sync(clean):
    endpoints = InferenceEndpoints(retry_policy=FAST)
    endpoints.put("rerank", "r", rerank_body(clean.url + "/rerank"), validate=False)
    sync = endpoints.inference("r", DOCS[:30], query=QUERY, return_documents=True)
    assert await endpoints.ainference("r", DOCS[:30], query=QUERY, return_documents=True) == sync
    assert len(sync["rerank"]) == 30
    await endpoints.client("r").aclose()


def test_inference_requests_are_checked_like_elasticsearchs(clean):
    endpoints = InferenceEndpoints(retry_policy=FAST)
    endpoints.put("rerank", "r", rerank_body(clean.url + "/rerank"), validate=False)
    endpoints.put(
        "text_embedding",
        "e",
        {"service": "hugging_face", "service_settings": {"api_key": CANARY, "url": clean.url}},
        validate=False,
    )
    assert errors_of(endpoints.inference, "r", ["a"]) == [
        "Field [query] cannot be null for task type [rerank]"
    ]
    assert errors_of(endpoints.inference, "r", ["a"], query="") == [
        "Field [query] cannot be empty for task type [rerank]"
    ]
    assert errors_of(endpoints.inference, "r", [], query="q") == [
        "Field [input] cannot be an empty array"
    ]
    assert errors_of(endpoints.inference, "r", ["a"], query="q", task_settings={"top_n": 0}) == [
        "[task_settings] Invalid value [0]. [top_n] must be a positive integer"
    ]
    assert errors_of(endpoints.inference, "e", ["a"], top_n=2) == [
        "Field [top_n] cannot be specified for task type [text_embedding]"
    ]
    assert errors_of(endpoints.inference, "e", ["a"], return_documents=True) == [
        "Field [return_documents] cannot be specified for task type [text_embedding]"
    ]
    assert errors_of(endpoints.inference, "e", ["a"], query="q") == [
        "Field [query] cannot be specified for task type [text_embedding]"
    ]
    # the text_embedding path is unchanged
    assert len(endpoints.inference("e", ["a", "b"])["text_embedding"]) == 2
    endpoints.close()

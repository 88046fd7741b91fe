"""The rerank adapters against the local endpoint's /rerank, faults included: LangChain's
HFEndpointRerank (a document compressor) and LlamaIndex's (a node postprocessor)."""

import asyncio
import json
import math
import os
import pickle
from unittest import mock

import numpy as np
import pytest
from langchain_core.documents import BaseDocumentCompressor, Document
from langchain_core.load import dumpd, dumps
from llama_index.core.callbacks import CallbackManager, CBEventType
from llama_index.core.postprocessor.types import BaseNodePostprocessor
from llama_index.core.schema import NodeWithScore, QueryBundle, TextNode

from hf_endpoint import ConfigError, EndpointError, InferenceEndpoints, RerankClient
from hf_endpoint.client.retry import RetryPolicy
from hf_endpoint.server import Faults, HashBackend, LocalEndpoint
from langchain_hf_endpoint import HFEndpointRerank as LangChainRerank
from llama_index_hf_endpoint import HFEndpointRerank as LlamaIndexRerank

from .endpoints import raw_endpoint, reply

CANARY = "hf_CANARY_rerank_adapters_8d21f0"
FAST = RetryPolicy(max_retries=25, initial_backoff=0.002, max_backoff=0.02)
UNLIMITED = 10_000_000
HASH = HashBackend()
FAULTS = Faults(rate_429=0.08, rate_502=0.04, rate_503=0.04, rate_drop=0.04, retry_after=0, seed=9)
QUERY = "which tea is oxidised before drying"
TEXTS = [f"passage {i}: tea, trains and bread, in that order" for i in range(1500)]


def expected(texts, query=QUERY):
    q = HASH.vector(query)
    return [1 / (1 + math.exp(-float(HASH.vector(t) @ q))) for t in texts]


def expected_order(texts, query=QUERY):
    scores = expected(texts, query)
    return sorted(range(len(texts)), key=lambda i: (-scores[i], i))


@pytest.fixture(scope="module")
def faulty():
    with LocalEndpoint("hash", api_key=CANARY, faults=FAULTS) as ep:
        yield ep


@pytest.fixture(scope="module")
def clean():
    with LocalEndpoint("hash", api_key=CANARY) as ep:
        yield ep


def make(cls, ep, **kwargs):
    kwargs.setdefault("retry_policy", FAST)
    kwargs.setdefault("rate_limit", UNLIMITED)
    return cls(url=ep.url + "/rerank", api_key=CANARY, **kwargs)


def documents(texts):
    return [
        Document(page_content=t, metadata={"source": f"doc-{i}", "nested": {"i": i}}, id=f"id-{i}")
        for i, t in enumerate(texts)
    ]


def nodes(texts):
    return [
        NodeWithScore(node=TextNode(text=t, id_=f"node-{i}"), score=0.1)
        for i, t in enumerate(texts)
    ]


def check_documents(texts, out, top_n=None):
    """Every document once (or the best top_n), by decreasing score, metadata kept."""
    order = expected_order(texts)[:top_n]
    assert [d.id for d in out] == [f"id-{i}" for i in order]
    scores = expected(texts)
    for d, i in zip(out, order):
        assert d.page_content == texts[i]
        assert d.metadata["source"] == f"doc-{i}" and d.metadata["nested"] == {"i": i}
        assert d.metadata["relevance_score"] == pytest.approx(scores[i], rel=1e-6)


def check_nodes(texts, out, top_n=None):
    order = expected_order(texts)[:top_n]
    assert [n.node.node_id for n in out] == [f"node-{i}" for i in order]
    scores = expected(texts)
    np.testing.assert_allclose([n.score for n in out], [scores[i] for i in order], rtol=1e-6)


# --- LangChain ------------------------------------------------------------------------------


def test_langchain_is_a_document_compressor_that_ranks_every_document_once_through_faults(faulty):
    reranker = make(LangChainRerank, faulty)
    assert isinstance(reranker, BaseDocumentCompressor)
    docs = documents(TEXTS)
    check_documents(TEXTS, reranker.compress_documents(docs, QUERY))
    assert "relevance_score" not in docs[0].metadata  # the inputs are left alone
    assert set(faulty.stats()["status"]) >= {"429", "502", "503", "0"}


def test_langchain_async_is_native_and_honours_top_n(faulty, monkeypatch):
    # LangChain's default acompress_documents runs the sync one in a thread: with every sync
    # path switched off, only a native implementation still answers.
    def sync_is_off(*args, **kwargs):
        raise AssertionError("the async method went through a sync one")

    monkeypatch.setattr(LangChainRerank, "compress_documents", sync_is_off)
    monkeypatch.setattr(RerankClient, "rerank", sync_is_off)
    reranker = make(LangChainRerank, faulty, top_n=7)
    out = asyncio.run(reranker.acompress_documents(documents(TEXTS), QUERY))
    check_documents(TEXTS, out, top_n=7)


def test_langchain_no_documents_no_request(clean):
    reranker = make(LangChainRerank, clean)
    assert reranker.compress_documents([], QUERY) == []
    assert asyncio.run(reranker.acompress_documents([], QUERY)) == []
    assert reranker.client.stats.requests == 0


def test_langchain_from_an_elasticsearch_rerank_body(clean):
    body = {
        "service": "hugging_face",
        "service_settings": {"api_key": CANARY, "url": clean.url + "/rerank"},
        "task_settings": {"top_n": 2, "return_documents": True},
    }
    reranker = LangChainRerank.from_inference_config(body, retry_policy=FAST)
    assert reranker.top_n == 2 and reranker.api_key.get_secret_value() == CANARY
    check_documents(TEXTS[:20], reranker.compress_documents(documents(TEXTS[:20]), QUERY), 2)
    with pytest.raises(ConfigError, match=r"unknown to the \[hugging_face\] service"):
        LangChainRerank.from_inference_config({**body, "chunking_settings": {}})


# --- LlamaIndex -----------------------------------------------------------------------------


def test_llama_index_is_a_node_postprocessor_returning_nodes_in_score_order_through_faults(faulty):
    reranker = make(LlamaIndexRerank, faulty)
    assert isinstance(reranker, BaseNodePostprocessor)
    assert LlamaIndexRerank.class_name() == "HFEndpointRerank"
    given = nodes(TEXTS)
    out = reranker.postprocess_nodes(given, query_str=QUERY)
    check_nodes(TEXTS, out)
    assert all(isinstance(n, NodeWithScore) for n in out)
    assert given[0].score == 0.1  # the inputs are left alone


def test_llama_index_async_and_top_n(faulty):
    reranker = make(LlamaIndexRerank, faulty, top_n=5)
    out = asyncio.run(reranker.apostprocess_nodes(nodes(TEXTS), QueryBundle(QUERY)))
    check_nodes(TEXTS, out, top_n=5)


def test_llama_index_needs_a_query_and_reports_the_reranking_event(clean):
    from llama_index.core.callbacks import LlamaDebugHandler

    # Handlers given at construction: CallbackManager() shares the list of LlamaIndex's
    # global manager, and a handler added to it would record every later test's events.
    debug = LlamaDebugHandler()
    reranker = make(LlamaIndexRerank, clean, top_n=2, callback_manager=CallbackManager([debug]))
    with pytest.raises(ValueError, match="needs a query"):
        reranker.postprocess_nodes(nodes(["a"]))
    out = reranker.postprocess_nodes(nodes(TEXTS[:10]), query_str=QUERY)
    check_nodes(TEXTS[:10], out, top_n=2)
    assert len(debug.get_event_pairs(CBEventType.RERANKING)) == 1
    assert reranker.postprocess_nodes([], query_str=QUERY) == []


def test_llama_index_from_a_registered_endpoint_and_a_query_engine_style_call(clean):
    endpoints = InferenceEndpoints(retry_policy=FAST)
    endpoints.put(
        "rerank",
        "for-adapters",
        {
            "service": "hugging_face",
            "service_settings": {"api_key": CANARY, "url": clean.url + "/rerank"},
            "task_settings": {"top_n": 3},
        },
        validate=False,
    )
    reranker = LlamaIndexRerank.from_endpoint(endpoints, "for-adapters", retry_policy=FAST)
    check_nodes(TEXTS[:30], reranker.postprocess_nodes(nodes(TEXTS[:30]), query_str=QUERY), 3)
    endpoints.put(
        "text_embedding",
        "embeddings",
        {"service": "hugging_face", "service_settings": {"api_key": CANARY, "url": clean.url}},
        validate=False,
    )
    with pytest.raises(ConfigError, match=r"requested type \[rerank\] does not match"):
        LlamaIndexRerank.from_endpoint(endpoints, "embeddings")
    endpoints.close()


def test_llama_index_round_trips_through_to_dict_with_the_key_from_the_environment(clean):
    with mock.patch.dict(os.environ, {"HF_TOKEN": CANARY}):
        reranker = LlamaIndexRerank(url=clean.url + "/rerank", top_n=4, raw_scores=True)
        again = LlamaIndexRerank.from_dict(reranker.to_dict())
    assert again.api_key.get_secret_value() == CANARY
    assert (again.top_n, again.raw_scores, again.url) == (4, True, clean.url + "/rerank")
    out = again.postprocess_nodes(nodes(TEXTS[:10]), query_str=QUERY)
    assert len(out) == 4 and all(n.score < 0.4 for n in out)  # raw: cosines, not sigmoids


# --- both adapters and the client: serialising, pickling, the key ---------------------------

RERANKERS = [LangChainRerank, LlamaIndexRerank]


def rerank_with(obj, texts):
    if isinstance(obj, RerankClient):
        return [r.index for r in obj.rerank(QUERY, texts)]
    if isinstance(obj, LangChainRerank):
        return [int(d.id[3:]) for d in obj.compress_documents(documents(texts), QUERY)]
    return [int(n.node.node_id[5:]) for n in obj.postprocess_nodes(nodes(texts), query_str=QUERY)]


@pytest.mark.parametrize(
    "build",
    [
        lambda ep: RerankClient(ep.url + "/rerank", CANARY, rate_limit=UNLIMITED),
        lambda ep: make(LangChainRerank, ep),
        lambda ep: make(LlamaIndexRerank, ep),
    ],
    ids=["client", "langchain", "llama_index"],
)
def test_clients_and_adapters_pickle_into_working_objects(clean, build):
    original = build(clean)
    assert rerank_with(original, TEXTS[:12]) == expected_order(TEXTS[:12])  # pools exist now
    data = pickle.dumps(original)
    copy = pickle.loads(data)
    assert rerank_with(copy, TEXTS[:12]) == expected_order(TEXTS[:12])
    assert len(data) < 20_000 and CANARY.encode() in data  # the key travels between processes


def test_the_key_never_shows_in_any_dump_or_repr():
    url = "https://xyz.endpoints.huggingface.cloud"
    lc = LangChainRerank(url=url, api_key=CANARY, top_n=3)
    li = LlamaIndexRerank(url=url, api_key=CANARY, top_n=3)
    client = RerankClient(url, CANARY)
    shown = [
        repr(lc), str(lc), lc.model_dump_json(), json.dumps(lc.model_dump(mode="json")),
        json.dumps(dumpd(lc)), dumps(lc),
        repr(li), str(li), li.to_json(), str(li.to_dict()), li.model_dump_json(),
        repr(client), str(client.stats), repr(client.task_settings),
    ]  # fmt: skip
    assert all(CANARY not in text for text in shown)
    assert "api_key" not in lc.model_dump() and "api_key" not in li.to_dict()


@pytest.mark.parametrize("cls", RERANKERS)
def test_the_key_never_shows_in_errors(cls):
    with pytest.raises(ConfigError) as info:
        cls(url="", api_key=CANARY)
    assert "[url]" in str(info.value) and CANARY[3:12] not in str(info.value)
    with pytest.raises(ConfigError) as info:
        cls(url="http://127.0.0.1:9", api_key=CANARY, top_n=0, max_retries=-1)
    text = str(info.value)
    assert "[top_n] must be a positive integer" in text and "[max_retries]" in text
    assert CANARY[3:12] not in text
    with pytest.raises(ConfigError) as info:
        cls(url="http://127.0.0.1:9", api_key=CANARY + " x")
    assert "api_key" in str(info.value) and CANARY[3:12] not in str(info.value)


@pytest.mark.parametrize("cls", RERANKERS)
def test_a_server_that_quotes_the_key_has_it_redacted(cls):
    def echo(handler, body):
        quoted = f'{{"error": "bad request, got {handler.headers["Authorization"]}"}}'
        reply(handler, 400 if handler.command == "POST" else 200, quoted.encode())

    with raw_endpoint(echo) as url:
        reranker = cls(url=url, api_key=CANARY, retry_policy=FAST)
        with pytest.raises(EndpointError) as info:
            rerank_with(reranker, ["a", "b"])
    assert CANARY not in str(info.value) and "[REDACTED]" in str(info.value)

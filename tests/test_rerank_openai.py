"""Rerank over the Cohere/Jina-style API of vLLM and Infinity (``POST /v1/rerank``
``{"query", "documents", "model", "return_documents"}`` -> ``{"results": [{"index",
"relevance_score"}]}``), beside TEI's ``/rerank``: raw servers answering as vLLM's
``serving_score.py`` does (results sorted by score, every document without ``top_n``)."""

import json
import threading

import pytest

from hf_endpoint import InputRejectedError, RerankClient
from langchain_hf_endpoint import HFEndpointRerank

from .endpoints import raw_endpoint, reply

DOCS = [f"document {i} " + "word " * i for i in range(7)]


def score(query, document):
    return len(document) / 100 + (0.5 if query.split()[0] in document else 0.0)


class CohereServer:
    def __init__(self, fail=None):
        self.seen = []
        self.fail = fail
        self.lock = threading.Lock()

    def __call__(self, handler, body):
        with self.lock:
            self.seen.append((handler.command, handler.path, json.loads(body) if body else None))
        if handler.command == "GET":
            return reply(handler, 200, b'{"object": "list", "data": [{"id": "BAAI/bge-reranker"}]}')
        if self.fail:
            return reply(handler, self.fail[0], json.dumps(self.fail[1]).encode())
        request = json.loads(body)
        results = [
            {"index": i, "relevance_score": score(request["query"], d)}
            for i, d in enumerate(request["documents"])
        ]
        results.sort(key=lambda r: -r["relevance_score"])
        answer = {"id": "rerank-1", "model": request.get("model"), "results": results}
        reply(handler, 200, json.dumps(answer).encode())


def client(url, **kwargs):
    return RerankClient(url, None, rate_limit=10_000_000, **kwargs)


@pytest.mark.parametrize(
    "given, protocol, posted",
    [
        ("/v1/rerank", "auto", "/v1/rerank"),
        ("", "openai", "/v1/rerank"),
        ("/v1", "openai", "/v1/rerank"),
    ],
)
def test_the_cohere_style_route_is_chosen_by_the_url_or_the_option(given, protocol, posted):
    server = CohereServer()
    with raw_endpoint(server) as url, client(url + given, protocol=protocol) as c:
        c.rerank("document", DOCS[:2])
    assert [(m, p) for m, p, _ in server.seen] == [("GET", "/v1/models"), ("POST", posted)]
    assert server.seen[1][2] == {
        "documents": DOCS[:2], "query": "document", "return_documents": False,
        "model": "BAAI/bge-reranker",
    }  # fmt: skip


def test_scores_of_every_batch_are_merged_then_ranked_and_cut_to_top_n():
    server = CohereServer()
    with raw_endpoint(server) as url, client(url + "/v1/rerank", batch_size=3) as c:
        result = c.rerank("document 5", DOCS, top_n=3, return_documents=True)
    assert len([s for s in server.seen if s[0] == "POST"]) == 3  # 7 documents, 3 per request
    assert result.scores == [score("document 5", d) for d in DOCS]
    expected = sorted(range(7), key=lambda i: -score("document 5", DOCS[i]))[:3]
    assert [r.index for r in result] == expected
    assert [r.text for r in result] == [DOCS[i] for i in expected]


def test_a_tei_rerank_url_keeps_the_tei_protocol():
    seen = []

    def tei(handler, body):
        if handler.command == "GET":
            return reply(handler, 404, b"")
        seen.append(json.loads(body))
        ranks = [{"index": i, "score": 0.1 * i} for i in range(len(seen[-1]["texts"]))]
        reply(handler, 200, json.dumps(ranks).encode())

    with raw_endpoint(tei) as url, client(url + "/rerank") as c:
        assert [r.index for r in c.rerank("q", ["a", "b"])] == [1, 0]
    assert seen == [{"texts": ["a", "b"], "query": "q", "truncate": False}]


def test_an_error_of_the_cohere_style_route_names_the_documents():
    error = {"error": {"message": "model not found", "type": "NotFoundError", "code": 400}}
    with raw_endpoint(CohereServer(fail=(400, error))) as url, client(url + "/v1/rerank") as c:
        with pytest.raises(InputRejectedError, match=r"for inputs \[0\.\.1\]: model not found"):
            c.rerank("q", ["a", "b"])


def test_the_langchain_reranker_over_the_cohere_style_route():
    from langchain_core.documents import Document

    with raw_endpoint(CohereServer()) as url:
        reranker = HFEndpointRerank(url=url, api_key=None, protocol="openai", top_n=2)
        kept = reranker.compress_documents([Document(page_content=d) for d in DOCS], "document 3")
    expected = sorted(range(7), key=lambda i: -score("document 3", DOCS[i]))[:2]
    assert [d.page_content for d in kept] == [DOCS[i] for i in expected]

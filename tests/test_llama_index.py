"""HFEndpointEmbedding and HFEndpointNodeParser in LlamaIndex pipelines."""

import asyncio
import os
from unittest import mock

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from llama_index.core import Document, VectorStoreIndex
from llama_index.core.base.embeddings.base import BaseEmbedding
from llama_index.core.ingestion import IngestionPipeline
from llama_index.core.node_parser import NodeParser
from llama_index.core.rate_limiter import TokenBucketRateLimiter
from llama_index.core.schema import NodeRelationship

from hf_endpoint import AuthenticationError, EmbeddingClient, chunk_text
from hf_endpoint.client.retry import RetryPolicy
from hf_endpoint.server import Faults, HashBackend, LocalEndpoint
from llama_index_hf_endpoint import HFEndpointEmbedding, HFEndpointNodeParser

from .endpoints import local_url
from .strategies import multilingual_text

CANARY = "hf_CANARY_llama_index_3b8e"

DOCS = {
    "tea": "Green tea is steamed or pan-fired soon after picking. Black tea is fully oxidised before drying.",
    "bike": "To fix a flat tyre, take the wheel off, find the hole in the inner tube and patch it.",
    "moon": "The Moon is tidally locked, so the same side always faces the Earth.",
    "panda": "大熊猫主要生活在四川的竹林里，每天要花十几个小时吃竹子。",
}


def documents():
    return [Document(text=text, metadata={"name": name}, id_=name) for name, text in DOCS.items()]


# --- conventions -------------------------------------------------------------------------


def test_base_classes_and_class_name():
    embedding = HFEndpointEmbedding(url="http://127.0.0.1:9/", api_key=None)
    parser = HFEndpointNodeParser()
    assert BaseEmbedding in type(embedding).__mro__ and NodeParser in type(parser).__mro__
    assert HFEndpointEmbedding.class_name() == embedding.class_name() == "HFEndpointEmbedding"
    assert HFEndpointNodeParser.class_name() == parser.class_name() == "HFEndpointNodeParser"


def test_fields_round_trip_through_the_constructor():
    embedding = HFEndpointEmbedding(
        url="http://127.0.0.1:9/", embed_batch_size=8, rate_limit={"requests_per_minute": 60},
        chunking_settings={"strategy": "word", "max_chunk_size": 40}, truncate=True, query_prompt_name="query",
    )  # fmt: skip
    fields = {k: v for k, v in embedding.to_dict().items() if k != "class_name"}
    assert {
        k: v for k, v in HFEndpointEmbedding(**fields).to_dict().items() if k != "class_name"
    } == fields
    assert fields["chunking_settings"] == {"strategy": "word", "max_chunk_size": 40, "overlap": 20}
    parser = HFEndpointNodeParser(
        strategy="word", max_chunk_size=30, overlap=5, include_prev_next_rel=False
    )
    # LlamaIndex serialises id_func as a dict its own constructors refuse (SentenceSplitter too),
    # so the fields are compared without it.
    ours = {
        k: v
        for k, v in parser.to_dict().items()
        if k not in ("class_name", "id_func", "callback_manager")
    }
    assert HFEndpointNodeParser(**ours).to_dict() == parser.to_dict()


def test_the_key_never_shows_and_comes_back_from_the_environment():
    with mock.patch.dict(os.environ, {"HF_TOKEN": CANARY}):
        embedding = HFEndpointEmbedding(url=local_url("hash"))
        shown = [
            embedding.to_json(),
            str(embedding.to_dict()),
            repr(embedding),
            str(embedding.to_payload()),
        ]
        assert all(CANARY not in text for text in shown)
        again = HFEndpointEmbedding.from_dict(embedding.to_dict())
        assert again.api_key.get_secret_value() == CANARY
    np.testing.assert_allclose(again.get_text_embedding("x"), HashBackend().vector("x"), rtol=1e-6)


def test_llama_index_own_tei_client_fails_the_same_round_trip():
    from llama_index.embeddings.text_embeddings_inference import TextEmbeddingsInference

    theirs = TextEmbeddingsInference(model_name="x", auth_token=CANARY)
    assert CANARY in theirs.to_json()  # the token leaks into the serialised form
    with pytest.raises(TypeError):
        TextEmbeddingsInference.from_dict(theirs.to_dict())


def test_one_http_request_per_batch():
    with LocalEndpoint("hash") as ep:
        embedding = HFEndpointEmbedding(url=ep.url, embed_batch_size=10)
        vectors = embedding.get_text_embedding_batch([f"t{i}" for i in range(35)])
        stats = ep.stats()
    assert len(vectors) == 35 and stats["requests"] == 4


def test_sync_calls_work_inside_a_running_event_loop():
    embedding = HFEndpointEmbedding(url=local_url("hash"))

    async def inside_a_loop():  # as in a Jupyter cell
        return embedding.get_text_embedding("x"), embedding.get_query_embedding("y")

    text, query = asyncio.run(inside_a_loop())
    np.testing.assert_allclose(text, HashBackend().vector("x"), rtol=1e-6)
    np.testing.assert_allclose(query, HashBackend().vector("y"), rtol=1e-6)


async def test_async_batches():
    embedding = HFEndpointEmbedding(url=local_url("hash"), embed_batch_size=3)
    vectors = await embedding.aget_text_embedding_batch([f"t{i}" for i in range(10)])
    np.testing.assert_allclose(
        vectors, [HashBackend().vector(f"t{i}") for i in range(10)], rtol=1e-6
    )


def test_the_llama_index_rate_limiter_is_honoured_for_every_http_request():
    rpm = 240
    limiter = TokenBucketRateLimiter(
        requests_per_minute=rpm
    )  # a burst of rpm, then rpm / 60 per second
    faults = Faults(rate_429=0.3, retry_after=0, seed=5)
    with LocalEndpoint("hash", faults=faults) as ep:
        embedding = HFEndpointEmbedding(
            url=ep.url,
            embed_batch_size=1,
            rate_limit=1_000_000,
            rate_limiter=limiter,
            retry_policy=RetryPolicy(max_retries=20, initial_backoff=0.001, max_backoff=0.01),
        )
        texts = [f"t{i}" for i in range(200)]
        vectors = embedding.get_text_embedding_batch(texts)
        stats = ep.stats()
    np.testing.assert_allclose(vectors, [HashBackend().vector(t) for t in texts], rtol=1e-6)
    arrivals = np.array(sorted(stats["arrivals"]))
    attempts = len(arrivals)
    assert attempts > rpm  # retries pushed the attempts past the burst
    # The k-th attempt cannot come before the bucket had k tokens: rpm at once, then rpm / 60 per second.
    elapsed = arrivals - arrivals[0]
    allowed = rpm + elapsed * rpm / 60 + 1
    assert (np.arange(1, attempts + 1) <= allowed).all()


def test_chunked_texts_get_the_pooled_vector():
    url = local_url("hash")
    settings = {"strategy": "word", "max_chunk_size": 10, "overlap": 2}
    text = " ".join(DOCS.values())
    embedding = HFEndpointEmbedding(url=url, chunking_settings=settings)
    with EmbeddingClient(url) as client:
        expected = client.embed_pooled([text], settings)[0]
    np.testing.assert_allclose(embedding.get_text_embedding(text), expected, atol=1e-6)


def test_from_an_elasticsearch_put_body():
    body = {
        "service": "hugging_face",
        "service_settings": {"api_key": CANARY, "url": local_url("hash")},
        "chunking_settings": {"strategy": "sentence", "max_chunk_size": 50},
    }
    embedding = HFEndpointEmbedding.from_inference_config(body)
    assert embedding.chunking_settings == {
        "strategy": "sentence",
        "max_chunk_size": 50,
        "sentence_overlap": 1,
    }
    assert CANARY not in embedding.to_json()


# --- end to end ------------------------------------------------------------------------------


def test_ingestion_pipeline_into_a_vector_store_index():
    parser = HFEndpointNodeParser(strategy="sentence", max_chunk_size=20)
    embedding = HFEndpointEmbedding(url=local_url("minilm"))
    nodes = IngestionPipeline(transformations=[parser, embedding]).run(documents=documents())
    for node in nodes:
        assert DOCS[node.ref_doc_id][node.start_char_idx : node.end_char_idx] == node.text
        assert node.embedding is not None
    index = VectorStoreIndex(nodes, embed_model=embedding)
    top = index.as_retriever(similarity_top_k=1).retrieve(
        "How do I repair a puncture on my bicycle?"
    )
    assert top[0].node.metadata["name"] == "bike"


# --- the node parser --------------------------------------------------------------------------


def test_nodes_carry_the_chunkers_offsets_even_for_repeated_text():
    text = "chunk chunk chunk " * 20 + "日本語の文章です。" * 10
    parser = HFEndpointNodeParser(strategy="word", max_chunk_size=10, overlap=3)
    nodes = parser.get_nodes_from_documents([Document(text=text, id_="d")])
    assert [(n.start_char_idx, n.end_char_idx) for n in nodes] == [
        (c.start, c.end)
        for c in chunk_text(text, {"strategy": "word", "max_chunk_size": 10, "overlap": 3})
    ]


def test_nodes_of_the_recursive_strategy():
    text = "# Title\n\nIntro words here.\n\n## Part\n\n" + "Many words in this part. " * 6
    parser = HFEndpointNodeParser(
        strategy="recursive", max_chunk_size=10, separators=["\n## ", "[.!?] "]
    )
    nodes = parser.get_nodes_from_documents([Document(text=text, id_="d")])
    assert len(nodes) > 2
    assert [(n.start_char_idx, n.end_char_idx) for n in nodes] == [
        (c.start, c.end) for c in chunk_text(text, parser.settings)
    ]
    assert HFEndpointNodeParser(**{**parser.to_dict(), "id_func": None}).settings == parser.settings


def test_relationships_metadata_and_id_func():
    parser = HFEndpointNodeParser(
        strategy="word", max_chunk_size=10, id_func=lambda i, doc: f"{doc.id_}-{i}"
    )
    nodes = parser.get_nodes_from_documents(
        [Document(text="word " * 30, id_="d", metadata={"k": "v"})]
    )
    assert [n.id_ for n in nodes] == ["d-0", "d-1", "d-2", "d-3", "d-4"]
    assert all(n.relationships[NodeRelationship.SOURCE].node_id == "d" for n in nodes)
    assert nodes[1].relationships[NodeRelationship.PREVIOUS].node_id == "d-0"
    assert nodes[1].relationships[NodeRelationship.NEXT].node_id == "d-2"
    assert nodes[0].metadata == {"k": "v"}
    bare = HFEndpointNodeParser(
        strategy="word", max_chunk_size=10, include_metadata=False, include_prev_next_rel=False
    )
    plain = bare.get_nodes_from_documents([Document(text="word " * 30, metadata={"k": "v"})])
    assert NodeRelationship.NEXT not in plain[0].relationships
    assert "k" not in plain[0].get_content(metadata_mode="all")


async def test_async_parsing_equals_sync():
    parser = HFEndpointNodeParser(strategy="sentence", max_chunk_size=20)
    sync = parser.get_nodes_from_documents(documents())
    parsed = await parser.aget_nodes_from_documents(documents())
    assert [(n.text, n.start_char_idx) for n in parsed] == [
        (n.text, n.start_char_idx) for n in sync
    ]


def test_parser_validates_like_elasticsearch():
    with pytest.raises(ValueError, match=r"Invalid chunkingStrategy paragraph"):
        HFEndpointNodeParser(strategy="paragraph")


# LlamaIndex's Document hashes its text as UTF-8, so it cannot hold lone surrogates.
llama_text = multilingual_text.map(lambda t: t.replace("\ud800", "").replace("\udfff", ""))


@settings(max_examples=300, deadline=None)
@given(llama_text, st.sampled_from(["word", "sentence"]))
def test_node_offsets_on_random_multilingual_documents(text, strategy):
    parser = HFEndpointNodeParser(strategy=strategy, max_chunk_size=20)
    for node in parser.get_nodes_from_documents([Document(text=text)]):
        assert text[node.start_char_idx : node.end_char_idx] == node.text


def test_query_and_document_prefixes_are_sent_and_offsets_stay_in_the_original_text():
    hashed = HashBackend()  # the hash endpoint's vector of exactly what it received
    embedding = HFEndpointEmbedding(
        url=local_url("hash"), api_key=None, query_prefix="query: ", document_prefix="passage: "
    )
    np.testing.assert_allclose(
        embedding.get_query_embedding("tea"), hashed.vector("query: tea"), rtol=1e-6
    )
    np.testing.assert_allclose(
        embedding.get_text_embedding_batch(["tea", "moon"]),
        [hashed.vector("passage: tea"), hashed.vector("passage: moon")],
        rtol=1e-6,
    )
    assert HFEndpointEmbedding(**{
        k: v for k, v in embedding.to_dict().items() if k != "class_name"
    }).document_prefix == "passage: "  # fmt: skip
    text = "One two three four five six. Seven eight nine ten eleven twelve."
    (chunks,) = embedding.embed_chunks(
        [text], {"strategy": "word", "max_chunk_size": 10, "overlap": 2}
    )
    assert [(c.start, c.end) for c in chunks] == [
        (c.start, c.end)
        for c in chunk_text(text, {"strategy": "word", "max_chunk_size": 10, "overlap": 2})
    ]
    for c in chunks:
        np.testing.assert_allclose(c.embedding, hashed.vector("passage: " + c.text), rtol=1e-6)


def test_a_failed_call_ends_its_embedding_event_with_the_error():
    from llama_index.core.callbacks import CallbackManager, CBEventType, LlamaDebugHandler
    from llama_index.core.callbacks.base import global_stack_trace

    debug = LlamaDebugHandler()
    trace = global_stack_trace.get()
    with LocalEndpoint("hash", api_key=CANARY) as ep:
        embedding = HFEndpointEmbedding(
            url=ep.url, api_key="hf_wrong", callback_manager=CallbackManager([debug])
        )
        with pytest.raises(AuthenticationError):
            embedding.get_text_embedding_batch(["refused"])
        with pytest.raises(AuthenticationError):
            asyncio.run(embedding.aget_text_embedding_batch(["refused"]))
    assert global_stack_trace.get() == trace  # no event left open for later ones to nest in
    pairs = debug.get_event_pairs(CBEventType.EMBEDDING)
    assert len(pairs) == 2
    assert all(isinstance(end.payload["exception"], AuthenticationError) for _, end in pairs)

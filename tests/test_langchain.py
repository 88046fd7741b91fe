"""HFEndpointEmbeddings and HFEndpointTextSplitter in LangChain pipelines."""

import json
import os
import socket
from unittest import mock

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from langchain_core.documents import Document
from langchain_core.load import dumpd, dumps
from langchain_core.vectorstores import InMemoryVectorStore

from hf_endpoint import ConfigError, EmbeddingClient, chunk_text
from langchain_hf_endpoint import HFEndpointEmbeddings, HFEndpointTextSplitter

from .endpoints import local_url
from .strategies import multilingual_text

CANARY = "hf_CANARY_langchain_77c1"

DOCS = {
    "tea": "Green tea is steamed or pan-fired soon after picking. Black tea is fully oxidised before drying.",
    "bike": "To fix a flat tyre, take the wheel off, find the hole in the inner tube and patch it.",
    "moon": "The Moon is tidally locked, so the same side always faces the Earth.",
    "panda": "大熊猫主要生活在四川的竹林里，每天要花十几个小时吃竹子。",
}


def test_end_to_end_split_embed_store_and_retrieve():
    splitter = HFEndpointTextSplitter(strategy="sentence", max_chunk_size=20)
    documents = splitter.create_documents(list(DOCS.values()), [{"name": k} for k in DOCS])
    store = InMemoryVectorStore(HFEndpointEmbeddings(url=local_url("minilm"), api_key=None))
    store.add_documents(documents)
    assert (
        store.similarity_search("How do I repair a puncture on my bicycle?", k=1)[0].metadata[
            "name"
        ]
        == "bike"
    )
    assert store.similarity_search("Which tea is oxidised?", k=1)[0].metadata["name"] == "tea"


def test_embeddings_equal_the_core_clients():
    url = local_url("minilm")
    texts = list(DOCS.values())
    ours = HFEndpointEmbeddings(url=url, api_key=None).embed_documents(texts)
    with EmbeddingClient(url) as client:
        np.testing.assert_allclose(ours, client.embed(texts), atol=1e-6)


def test_chunked_documents_are_the_length_weighted_mean_of_their_chunks():
    url = local_url("minilm")
    settings = {"strategy": "word", "max_chunk_size": 10, "overlap": 2}
    text = " ".join(DOCS.values())
    embeddings = HFEndpointEmbeddings(url=url, api_key=None, chunking_settings=settings)
    chunks = embeddings.embed_chunks([text])[0]
    assert len(chunks) > 2
    weights = np.array([len(c.text) for c in chunks], dtype=float)
    mean = (weights[:, None] * np.array([c.embedding for c in chunks])).sum(0) / weights.sum()
    np.testing.assert_allclose(
        embeddings.embed_documents([text])[0], mean / np.linalg.norm(mean), atol=1e-6
    )


def _sync_is_off(*args, **kwargs):
    raise AssertionError("an async method went through a sync one")


async def test_async_methods_are_native(monkeypatch):
    # LangChain's default async methods run the sync ones in a thread: with every sync path
    # switched off, only a native implementation still answers.
    for name in ("embed_documents", "embed_query"):
        monkeypatch.setattr(HFEndpointEmbeddings, name, _sync_is_off)
    monkeypatch.setattr(EmbeddingClient, "embed", _sync_is_off)
    embeddings = HFEndpointEmbeddings(url=local_url("minilm"), api_key=None)
    query = await embeddings.aembed_query("tea")
    documents = await embeddings.aembed_documents(["tea", "moon"])
    np.testing.assert_allclose(query, documents[0], atol=1e-6)


def test_query_prompt_differs_from_documents():
    url = local_url("hash")  # the hash endpoint knows a "query" prompt
    embeddings = HFEndpointEmbeddings(url=url, api_key=None, query_prompt_name="query")
    assert not np.allclose(embeddings.embed_query("tea"), embeddings.embed_documents(["tea"])[0])


def test_from_an_elasticsearch_put_body():
    body = {
        "service": "hugging_face",
        "service_settings": {
            "api_key": CANARY,
            "url": local_url("hash"),
            "rate_limit": {"requests_per_minute": 1200},
        },
        "chunking_settings": {"strategy": "word", "max_chunk_size": 10, "overlap": 5},
    }
    embeddings = HFEndpointEmbeddings.from_inference_config(body)
    assert embeddings.rate_limit == {"requests_per_minute": 1200}
    assert embeddings.chunking_settings == {"strategy": "word", "max_chunk_size": 10, "overlap": 5}
    assert embeddings.api_key.get_secret_value() == CANARY


def test_construction_makes_no_network_call():
    with socket.create_server(("127.0.0.1", 0)) as listener:
        listener.setblocking(False)
        HFEndpointEmbeddings(url=f"http://127.0.0.1:{listener.getsockname()[1]}/", api_key="x")
        with pytest.raises(BlockingIOError):  # the kernel would have queued any connection
            listener.accept()


def test_bad_settings_are_clear():
    # A ConfigError (a ValueError) with our message, not pydantic's wrapper with the input in it.
    with pytest.raises(
        ValueError, match=r"\[max_chunk_size\] must be greater than or equal to \[10\]"
    ):
        HFEndpointEmbeddings(
            url="http://127.0.0.1:9/", chunking_settings={"strategy": "word", "max_chunk_size": 2}
        )
    with (
        pytest.raises(ConfigError, match=r"\[url\] is required"),
        mock.patch.dict(os.environ, {}, clear=True),
    ):
        HFEndpointEmbeddings()


def test_the_key_never_shows():
    embeddings = HFEndpointEmbeddings(url="https://xyz.endpoints.huggingface.cloud", api_key=CANARY)
    shown = [
        repr(embeddings), str(embeddings), json.dumps(embeddings.model_dump(mode="json")),
        embeddings.model_dump_json(), str(embeddings.model_dump()), json.dumps(dumpd(embeddings)), dumps(embeddings),
    ]  # fmt: skip
    assert all(CANARY not in text for text in shown)


def test_key_from_either_environment_variable():
    for name in ("HF_TOKEN", "HUGGINGFACEHUB_API_TOKEN"):
        with mock.patch.dict(os.environ, {name: CANARY}, clear=True):
            assert HFEndpointEmbeddings(url="http://x.test/").api_key.get_secret_value() == CANARY


# --- the splitter --------------------------------------------------------------------


def test_splitter_offsets_are_right_for_repeated_text_and_cjk():
    text = "chunk chunk chunk " * 20 + "日本語の文章です。" * 20
    splitter = HFEndpointTextSplitter(strategy="word", max_chunk_size=10, overlap=3)
    documents = splitter.split_documents([Document(page_content=text, metadata={"source": "x"})])
    assert len(documents) > 5
    for d in documents:
        assert d.page_content == text[d.metadata["start_index"] : d.metadata["end_index"]]
        assert d.metadata["source"] == "x"
    assert [(d.metadata["start_index"], d.metadata["end_index"]) for d in documents] == [
        (c.start, c.end) for c in chunk_text(text, splitter.settings)
    ]


def test_splitter_takes_the_recursive_strategy():
    text = "# Title\n\nIntro words here.\n\n## Part\n\n" + "Many words in this part. " * 6
    splitter = HFEndpointTextSplitter(
        strategy="recursive", max_chunk_size=10, separator_group="markdown"
    )
    documents = splitter.create_documents([text])
    assert len(documents) > 2
    assert [(d.metadata["start_index"], d.metadata["end_index"]) for d in documents] == [
        (c.start, c.end) for c in chunk_text(text, splitter.settings)
    ]
    custom = HFEndpointTextSplitter(strategy="recursive", max_chunk_size=10, separators=["\n\n"])
    assert custom.settings.separators == ("\n\n",)
    with pytest.raises(ConfigError, match=r"cannot be converted to a \[List\]"):
        HFEndpointTextSplitter(strategy="recursive", max_chunk_size=10, separators="\n\n")
    with pytest.raises(ConfigError, match=r"Chunk separator regex \[\(a\] is not a valid"):
        HFEndpointTextSplitter(strategy="recursive", max_chunk_size=10, separators=["(a"])


def test_splitter_validates_like_elasticsearch():
    with pytest.raises(
        ConfigError,
        match="Sentence based chunking settings can not have the following settings: \\[overlap\\]",
    ):
        HFEndpointTextSplitter(strategy="sentence", overlap=5)


@settings(max_examples=1000, deadline=None)
@given(multilingual_text, st.sampled_from(["word", "sentence"]))
def test_splitter_offsets_on_random_multilingual_documents(text, strategy):
    splitter = HFEndpointTextSplitter(strategy=strategy, max_chunk_size=20)
    for d in splitter.create_documents([text]):
        assert d.page_content == text[d.metadata["start_index"] : d.metadata["end_index"]]


def test_query_and_document_prefixes_are_sent_and_offsets_stay_in_the_original_text():
    from hf_endpoint.server import HashBackend

    hashed = HashBackend()  # the hash endpoint's vector of exactly what it received
    settings = {"strategy": "word", "max_chunk_size": 10, "overlap": 2}
    embeddings = HFEndpointEmbeddings(
        url=local_url("hash"), api_key=None, query_prefix="query: ", document_prefix="passage: "
    )
    np.testing.assert_allclose(
        embeddings.embed_query("tea"), hashed.vector("query: tea"), rtol=1e-6
    )
    np.testing.assert_allclose(
        embeddings.embed_documents(["tea"])[0], hashed.vector("passage: tea"), rtol=1e-6
    )
    text = " ".join(DOCS.values())
    (chunks,) = embeddings.embed_chunks([text], settings)
    assert [(c.start, c.end) for c in chunks] == [
        (c.start, c.end) for c in chunk_text(text, settings)
    ]
    for c in chunks:
        assert text[c.start : c.end] == c.text
        np.testing.assert_allclose(c.embedding, hashed.vector("passage: " + c.text), rtol=1e-6)

"""Official clients against the local endpoint, as their users point them at TEI.

``huggingface_hub``'s ``InferenceClient`` and ``AsyncInferenceClient`` (``feature_extraction``
on the endpoint's URL), the ``openai`` client's ``embeddings.create`` on ``<url>/v1``,
``langchain_openai.OpenAIEmbeddings`` on ``<url>/v1`` and LlamaIndex's
``TextEmbeddingsInference`` each get the vectors :class:`hf_endpoint.EmbeddingClient` gets for
the same texts, from the real model (``minilm``) and from the ``hash`` backend; and each sees
the endpoint's errors as it would see TEI's.
"""

import asyncio
import base64

import httpx
import numpy as np
import pytest

from hf_endpoint import EmbeddingClient

from .endpoints import TEI_1_8, local_url

huggingface_hub = pytest.importorskip("huggingface_hub")
openai = pytest.importorskip("openai")

UNLIMITED = 10_000_000  # requests per minute
TEXTS = [
    "A man is playing a guitar on stage.",
    "Someone performs music with a stringed instrument.",
    "The central bank raised interest rates again.",
    "日本語の文章もベクトルになります。",
    "emoji 🎸 and accents: café, naïve",
]
MANY = [f"document number {i} about {topic}" for i, topic in enumerate(["cats", "rates"] * 20)]
TOO_MANY = ["x"] * 33  # one more than TEI's default --max-client-batch-size
TOO_MANY_MESSAGE = "batch size 33 > maximum allowed batch size 32"


@pytest.fixture(scope="module", params=["hash", "minilm"])
def url(request):
    return local_url(request.param)


def ours(url, texts):
    with EmbeddingClient(url, None, rate_limit=UNLIMITED) as client:
        return np.array(client.embed(texts))


def assert_same_vectors(theirs, url, texts):
    theirs = np.asarray(theirs, dtype=np.float64)
    assert theirs.shape == (len(texts), 384)
    np.testing.assert_allclose(theirs, ours(url, texts), rtol=0, atol=1e-6)


# --- huggingface_hub ---------------------------------------------------------------------------


def test_inference_client_feature_extraction_given_the_url_as_model(url):
    client = huggingface_hub.InferenceClient(model=url)
    assert_same_vectors(client.feature_extraction(TEXTS), url, TEXTS)
    single = client.feature_extraction(TEXTS[0])
    assert single.shape == (1, 384)  # TEI answers a single string with one row too
    assert_same_vectors(single, url, TEXTS[:1])


def test_inference_client_feature_extraction_given_the_url_as_base_url(url):
    client = huggingface_hub.InferenceClient(base_url=url)
    assert_same_vectors(client.feature_extraction(TEXTS), url, TEXTS)


def test_inference_client_options_reach_the_endpoint(url):
    client = huggingface_hub.InferenceClient(model=url)
    raw = client.feature_extraction(TEXTS[:2], normalize=False)
    with EmbeddingClient(url, None, rate_limit=UNLIMITED, normalize=False) as ours_raw:
        np.testing.assert_allclose(raw, ours_raw.embed(TEXTS[:2]), rtol=0, atol=1e-5)
    assert np.all(np.linalg.norm(raw, axis=1) > 1.5)


def test_async_inference_client_feature_extraction(url):
    async def run():
        client = huggingface_hub.AsyncInferenceClient(model=url)
        return await asyncio.gather(
            client.feature_extraction(TEXTS[:3]), client.feature_extraction(TEXTS[3:])
        )

    first, rest = asyncio.run(run())
    assert_same_vectors(np.vstack([first, rest]), url, TEXTS)


def test_inference_client_raises_its_http_error_holding_teis_message():
    client = huggingface_hub.InferenceClient(model=local_url("hash"))
    with pytest.raises(huggingface_hub.errors.HfHubHTTPError) as info:
        client.feature_extraction(TOO_MANY)
    assert info.value.response.status_code == 422
    assert TOO_MANY_MESSAGE in str(info.value)
    old = huggingface_hub.InferenceClient(model=local_url("hash", **TEI_1_8))
    with pytest.raises(huggingface_hub.errors.HfHubHTTPError) as info:
        old.feature_extraction(TOO_MANY)
    assert info.value.response.status_code == 413 and TOO_MANY_MESSAGE in str(info.value)


def test_async_inference_client_raises_its_http_error_too():
    async def run():
        await huggingface_hub.AsyncInferenceClient(model=local_url("hash")).feature_extraction(
            TOO_MANY
        )

    with pytest.raises(huggingface_hub.errors.HfHubHTTPError) as info:
        asyncio.run(run())
    assert info.value.response.status_code == 422 and TOO_MANY_MESSAGE in str(info.value)


# --- openai ------------------------------------------------------------------------------------


def openai_client(url):
    return openai.OpenAI(base_url=url + "/v1", api_key="unused", max_retries=0)


def test_openai_embeddings_create_as_floats(url):
    answer = openai_client(url).embeddings.create(input=TEXTS, model="any", encoding_format="float")
    assert [d.index for d in answer.data] == list(range(len(TEXTS)))
    assert answer.usage.prompt_tokens == answer.usage.total_tokens > len(TEXTS)
    assert_same_vectors([d.embedding for d in answer.data], url, TEXTS)


def test_openai_embeddings_create_as_base64(url):
    client = openai_client(url)
    packed = client.embeddings.create(input=TEXTS, model="any", encoding_format="base64")
    rows = [np.frombuffer(base64.b64decode(d.embedding), dtype="<f4") for d in packed.data]
    assert_same_vectors(rows, url, TEXTS)
    floats = client.embeddings.create(input=TEXTS, model="any", encoding_format="float")
    for row, d in zip(rows, floats.data):
        assert row.tobytes() == np.array(d.embedding, dtype="<f4").tobytes()


def test_openai_embeddings_create_by_default(url):
    # Without encoding_format the client asks for base64 and decodes it itself.
    answer = openai_client(url).embeddings.create(input=TEXTS, model="any")
    assert_same_vectors([d.embedding for d in answer.data], url, TEXTS)


def test_openai_client_raises_its_errors_holding_teis_message():
    with pytest.raises(openai.UnprocessableEntityError) as info:
        openai_client(local_url("hash")).embeddings.create(input=TOO_MANY, model="any")
    assert info.value.status_code == 422 and info.value.message.endswith(TOO_MANY_MESSAGE)
    assert info.value.body == {"message": TOO_MANY_MESSAGE, "code": 422, "type": "Validation"}
    with pytest.raises(openai.BadRequestError) as info:
        openai_client(local_url("hash")).embeddings.create(input=[""], model="any")
    assert info.value.body["type"] == "Empty"
    long = "word " * 600
    with pytest.raises(openai.APIStatusError) as info:  # TEI before 1.9: 413, no truncation
        openai_client(local_url("hash", **TEI_1_8)).embeddings.create(input=long, model="any")
    assert info.value.status_code == 413
    assert "must have less than 512 tokens" in info.value.message


# --- langchain_openai --------------------------------------------------------------------------


def openai_embeddings(url):
    from langchain_openai import OpenAIEmbeddings

    # As a TEI user must configure it: no tiktoken (it would download its encodings, and it
    # sends OpenAI token ids that TEI would read with its own tokenizer), and no more texts
    # per request than the endpoint's max_client_batch_size (LangChain's default is 1000).
    return OpenAIEmbeddings(
        model="any",
        base_url=url + "/v1",
        api_key="unused",
        check_embedding_ctx_length=False,
        chunk_size=32,
        max_retries=0,
    )


def test_langchain_openai_embeddings(url):
    pytest.importorskip("langchain_openai")
    embeddings = openai_embeddings(url)
    assert_same_vectors(embeddings.embed_documents(MANY), url, MANY)  # two requests
    assert_same_vectors([embeddings.embed_query(TEXTS[0])], url, TEXTS[:1])
    assert_same_vectors(asyncio.run(embeddings.aembed_documents(TEXTS)), url, TEXTS)


def test_langchain_openai_embeddings_over_the_batch_limit_see_teis_422():
    pytest.importorskip("langchain_openai")
    embeddings = openai_embeddings(local_url("hash")).model_copy(update={"chunk_size": 1000})
    with pytest.raises(openai.UnprocessableEntityError, match=TOO_MANY_MESSAGE.replace("33", "40")):
        embeddings.embed_documents(MANY)


# --- LlamaIndex --------------------------------------------------------------------------------


def test_llama_index_text_embeddings_inference(url):
    from llama_index.embeddings.text_embeddings_inference import TextEmbeddingsInference

    embedding = TextEmbeddingsInference(model_name="any", base_url=url, embed_batch_size=16)
    assert_same_vectors(embedding.get_text_embedding_batch(MANY), url, MANY)
    assert_same_vectors([embedding.get_query_embedding(TEXTS[0])], url, TEXTS[:1])
    assert_same_vectors([asyncio.run(embedding.aget_text_embedding(TEXTS[1]))], url, TEXTS[1:2])


def test_openai_clients_may_name_any_model():
    # router/src/http/server.rs openai_embed: `model` is not checked (TEI serves one model and
    # only logs a warning); the answer names the served model.
    info = httpx.get(local_url("hash") + "/info").json()
    answer = openai_client(local_url("hash")).embeddings.create(input="x", model="unknown/model")
    assert answer.model == info["served_model_name"]


def test_langchain_openai_with_tiktoken_sends_ids_tei_reads_with_another_vocabulary():
    # Why a TEI user sets check_embedding_ctx_length=False: by default OpenAIEmbeddings
    # tokenises with tiktoken and sends OpenAI's token ids, which TEI (router/src/http/types.rs
    # InputType::Ids) decodes with the model's own vocabulary: other words, other vectors.
    pytest.importorskip("langchain_openai")
    from langchain_openai import OpenAIEmbeddings

    url = local_url("minilm")
    embeddings = OpenAIEmbeddings(
        model="text-embedding-3-small", base_url=url + "/v1", api_key="unused", max_retries=0
    )
    misread = np.array(embeddings.embed_documents(TEXTS[:3]))
    cosines = (misread * ours(url, TEXTS[:3])).sum(axis=1)
    assert np.all(cosines < 0.8), cosines

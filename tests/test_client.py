"""EmbeddingClient against the local endpoint on loopback, faults included."""

import asyncio
import logging
import traceback
from functools import partial

import numpy as np
import pytest

from hf_endpoint import (
    AuthenticationError,
    ConfigError,
    EmbeddingClient,
    EndpointOverloadedError,
    InputTooLargeError,
    ResponseFormatError,
)
from hf_endpoint.client.retry import RetryPolicy
from hf_endpoint.server import Faults, HashBackend, LocalEndpoint

from .endpoints import TEI_1_8
from .threads import run_together

CANARY = "hf_CANARY_client_5e1d9a"
FAST = RetryPolicy(max_retries=25, initial_backoff=0.005, max_backoff=0.05)
UNLIMITED = 10_000_000  # requests per minute: the rate limit is tested on its own
HASH = HashBackend()

FAULTS = Faults(rate_429=0.08, rate_502=0.04, rate_503=0.04, rate_drop=0.04, retry_after=0, seed=3)


def expected(texts):
    return np.stack([HASH.vector(t) for t in texts])


def assert_vectors_of(texts, rows):
    assert len(rows) == len(texts)
    np.testing.assert_allclose(np.array(rows), expected(texts), rtol=1e-6)


@pytest.fixture(scope="module")
def faulty():
    """20% of requests fail: 429, 502, 503, or a dropped connection."""
    with LocalEndpoint("hash", api_key=CANARY, faults=FAULTS) as ep:
        yield ep


@pytest.fixture(scope="module")
def clean():
    with LocalEndpoint("hash", api_key=CANARY) as ep:
        yield ep


def client_for(ep, **kwargs):
    kwargs.setdefault("retry_policy", FAST)
    kwargs.setdefault("rate_limit", UNLIMITED)
    return EmbeddingClient(ep.url, CANARY, **kwargs)


TEXTS = [f"distinct text number {i}, with some words" for i in range(10_000)]


def test_ten_thousand_texts_survive_faults_in_order_sync(faulty):
    with client_for(faulty, max_concurrency=4) as client:
        rows = client.embed(TEXTS)
    assert_vectors_of(TEXTS, rows)
    stats = faulty.stats()
    assert set(stats["status"]) >= {"429", "502", "503", "0"}  # the faults did happen


def test_ten_thousand_texts_survive_faults_in_order_async(faulty):
    async def run():
        async with client_for(faulty, max_concurrency=8) as client:
            return await client.aembed(TEXTS)

    assert_vectors_of(TEXTS, asyncio.run(run()))


def test_one_client_shared_by_threads(faulty):
    parts = [TEXTS[k * 1000 : (k + 1) * 1000] for k in range(4)]
    with client_for(faulty) as client:
        results = run_together([partial(client.embed, part) for part in parts])
    for part, rows in zip(parts, results, strict=True):
        assert_vectors_of(part, rows)


def test_one_client_shared_by_tasks_and_event_loops(faulty):
    client = client_for(faulty)

    async def run():
        parts = await asyncio.gather(
            *(client.aembed(TEXTS[k * 500 : (k + 1) * 500]) for k in range(4))
        )
        return [row for part in parts for row in part]

    assert_vectors_of(TEXTS[:2000], asyncio.run(run()))
    assert_vectors_of(TEXTS[:2000], asyncio.run(run()))  # a second event loop
    client.close()


def test_requests_are_spaced_by_the_rate_limit_and_shared_by_same_clients(clean):
    clean.reset_stats()
    a = client_for(clean, rate_limit={"requests_per_minute": 600}, batch_size=1)
    b = client_for(clean, rate_limit={"requests_per_minute": 600}, batch_size=1)

    parts = [TEXTS[:12], TEXTS[12:24]]
    results = run_together([partial(a.embed, parts[0]), partial(b.embed, parts[1])])
    for part, rows in zip(parts, results, strict=True):
        assert_vectors_of(part, rows)
    arrivals = np.array(sorted(clean.stats()["arrivals"]))
    assert len(arrivals) >= 24
    # At the endpoint, no window of T >= 1 s holds more than 1 + rpm * T / 60 requests
    # (a token bucket of capacity 1), whatever the scheduling delays of the senders.
    for window in (1.0, 1.5, 2.0):
        most = max(
            np.searchsorted(arrivals, t + window, side="left") - i for i, t in enumerate(arrivals)
        )
        assert most <= 1 + 600 * window / 60, (window, most)
    # and the two clients shared one limit: 24 requests took at least 23 intervals
    assert arrivals[-1] - arrivals[0] >= 23 * 60 / 600 - 0.05
    a.close()
    b.close()


def test_a_wrong_token_fails_after_exactly_one_request(clean):
    clean.reset_stats()
    with EmbeddingClient(clean.url, "hf_wrong", retry_policy=FAST) as client:
        with pytest.raises(AuthenticationError) as info:
            client.embed(["x"])
    assert info.value.status_code == 401
    stats = clean.stats()
    assert stats["requests"] + stats["info_requests"] == 1


def test_a_wrong_token_without_limit_discovery_is_one_embed_request(clean):
    clean.reset_stats()
    with EmbeddingClient(clean.url, "hf_wrong", discover_limits=False) as client:
        with pytest.raises(AuthenticationError):
            client.embed(["x"])
    assert clean.stats()["requests"] == 1


def test_a_ten_second_cold_start_is_waited_out():
    with LocalEndpoint("hash", faults=Faults(cold_start=10.0)) as ep:
        with EmbeddingClient(ep.url, rate_limit=UNLIMITED) as client:
            rows = client.embed(["after the cold start"])
        stats = ep.stats()
    assert_vectors_of(["after the cold start"], rows)
    assert stats["status"]["503"] >= 1 and stats["actions"]["serve"] == 1


def test_a_server_limit_of_8_inputs_is_discovered():
    with LocalEndpoint("hash", max_client_batch_size=8, **TEI_1_8) as ep:
        with EmbeddingClient(ep.url, rate_limit=UNLIMITED, batch_size=20) as client:
            rows = client.embed(TEXTS[:50])
        stats = ep.stats()
    assert_vectors_of(TEXTS[:50], rows)
    assert "413" not in stats["status"]
    assert stats["requests"] == 7  # 50 inputs in requests of at most 8


def test_a_server_limit_of_8_inputs_is_handled_by_splitting_when_not_discovered():
    with LocalEndpoint("hash", max_client_batch_size=8, **TEI_1_8) as ep:
        with EmbeddingClient(
            ep.url, rate_limit=UNLIMITED, batch_size=20, discover_limits=False
        ) as client:
            rows = client.embed(TEXTS[:50])
        stats = ep.stats()
    assert_vectors_of(TEXTS[:50], rows)
    assert stats["status"]["413"] >= 1


def test_a_single_input_the_server_refuses_as_too_long_is_named():
    texts = ["short", "also short", "word " * 600, "short again"]
    with LocalEndpoint("hash", **TEI_1_8) as ep:
        with EmbeddingClient(ep.url, rate_limit=UNLIMITED, discover_limits=False) as client:
            with pytest.raises(InputTooLargeError) as info:
                client.embed(texts)
            assert info.value.index == 2
            assert_vectors_of(texts[:2], client.embed(texts[:2]))
            truncating = EmbeddingClient(ep.url, rate_limit=UNLIMITED, truncate=True)
            assert len(truncating.embed(texts)) == 4


def test_an_input_over_the_token_limit_is_refused_by_the_endpoint_not_predicted(caplog):
    # An estimate plans batches; only the endpoint says what it refuses, and nothing is warned.
    with (
        LocalEndpoint("hash", **TEI_1_8) as ep,
        EmbeddingClient(ep.url, rate_limit=UNLIMITED) as client,
    ):
        with caplog.at_level(logging.WARNING, logger="hf_endpoint"):
            with pytest.raises(InputTooLargeError) as info:
                client.embed(["fine", "word " * 700])
    assert info.value.index == 1
    assert not [r for r in caplog.records if r.levelno >= logging.WARNING]


def test_overload_that_never_ends_fails_with_the_status():
    with LocalEndpoint("hash", faults=Faults(rate_502=1.0)) as ep:
        with EmbeddingClient(
            ep.url,
            rate_limit=UNLIMITED,
            retry_policy=RetryPolicy(max_retries=2, initial_backoff=0.001),
        ) as client:
            with pytest.raises(EndpointOverloadedError) as info:
                client.embed(["x"])
        assert ep.stats()["requests"] == 3
    assert info.value.status_code == 502


@pytest.mark.parametrize("kind", ["missing_row", "ragged", "token_level", "not_numbers"])
def test_wrong_answers_fail_clearly(kind):
    with LocalEndpoint("hash", faults=Faults(malformed=kind)) as ep:
        with EmbeddingClient(ep.url, rate_limit=UNLIMITED, retry_policy=FAST) as client:
            with pytest.raises(ResponseFormatError):
                client.embed(["a", "b", "c"])


def test_the_embeddings_object_form_is_accepted():
    with LocalEndpoint("hash", faults=Faults(malformed="object")) as ep:
        with EmbeddingClient(ep.url, rate_limit=UNLIMITED) as client:
            assert_vectors_of(["a", "b"], client.embed(["a", "b"]))


def test_an_html_page_is_retried_then_reported():
    with LocalEndpoint("hash", faults=Faults(malformed="html")) as ep:
        with EmbeddingClient(
            ep.url,
            rate_limit=UNLIMITED,
            retry_policy=RetryPolicy(max_retries=1, initial_backoff=0.001),
        ) as client:
            with pytest.raises(ResponseFormatError, match="not JSON"):
                client.embed(["a"])
        assert ep.stats()["requests"] == 2


# --- input -----------------------------------------------------------------------------


def test_an_empty_list_makes_no_request(clean):
    clean.reset_stats()
    with client_for(clean) as client:
        assert client.embed([]) == []
        assert asyncio.run(client.aembed([])) == []
    assert clean.stats()["requests"] == 0


@pytest.mark.parametrize(
    "texts,message",
    [(None, "texts must be a list of str, not NoneType"), ("one string", "texts must be a list of str, not str"),
     (["a", None], r"texts\[1\] must be a str, not NoneType"), (["a", "b", 3], r"texts\[2\] must be a str, not int")],
)  # fmt: skip
def test_bad_input_is_named(clean, texts, message):
    with client_for(clean) as client, pytest.raises(TypeError, match=message):
        client.embed(texts)


def test_a_lone_surrogate_is_named_before_sending(clean):
    clean.reset_stats()
    with client_for(clean) as client:
        with pytest.raises(
            ConfigError, match=r"texts\[1\] holds a lone surrogate \(U\+D800\) at index 3"
        ):
            client.embed(["fine", "bad\ud800 text"])
        with pytest.raises(ConfigError, match=r"texts\[0\] holds a lone surrogate"):
            client.embed_chunks(["\udfff"])
    assert clean.stats()["requests"] == 0


def test_empty_strings_are_refused_before_sending_naming_the_first(clean):
    # Text Embeddings Inference answers 400 `inputs` cannot be empty for an empty text: say
    # which text it is before sending anything.
    clean.reset_stats()
    with client_for(clean) as client:
        with pytest.raises(ConfigError, match=r"texts\[1\] is empty"):
            client.embed(["x", "", "y"])
        with pytest.raises(ConfigError, match=r"texts\[2\] is empty"):
            client.embed_chunks(["one. two. three.", "x", ""], {"strategy": "sentence"})
    assert clean.stats()["requests"] == 0


def test_a_ten_megabyte_input_is_refused_before_sending(clean):
    clean.reset_stats()
    huge = "word " * 2_000_000
    with client_for(clean) as client:
        with pytest.raises(InputTooLargeError, match=r"input \[1\] is \d+ bytes as JSON"):
            client.embed(["small", huge])
    assert clean.stats()["requests"] == 0


def test_a_ten_megabyte_input_is_cut_with_truncate_or_chunked(clean):
    huge = "word " * 2_000_000
    with client_for(clean, truncate=True) as client:
        result = client.embed(["small", huge])
        assert len(result) == 2 and result.truncated == [1]
    with client_for(clean) as client:
        chunks = client.embed_chunks(
            [huge[:200_000]], {"strategy": "word", "max_chunk_size": 300, "overlap": 50}
        )
        assert len(chunks[0]) > 100


def test_max_input_tokens_cuts_long_inputs_and_says_which(clean):
    with client_for(clean, max_input_tokens=10) as client:
        result = client.embed(["short", "x" * 100, "also short"])
    assert result.truncated == [1]
    np.testing.assert_allclose(result[1], HASH.vector("x" * 30), rtol=1e-6)


# --- chunks ------------------------------------------------------------------------------


def test_embed_chunks_gives_offsets_and_vectors_per_text(clean):
    # No empty text: its one chunk is "", which the endpoint refuses as TEI does.
    texts = ["One sentence here. Another one follows! " * 20, "日本語の文章です。" * 30]
    settings = {"strategy": "sentence", "max_chunk_size": 20, "sentence_overlap": 0}
    with client_for(clean, batch_size=7) as client:
        result = client.embed_chunks(texts, settings)
        again = asyncio.run(client.aembed_chunks(texts, settings))
    assert [[c[:3] for c in r] for r in result] == [[c[:3] for c in r] for r in again]
    from hf_endpoint import chunk_text

    for text, chunks in zip(texts, result):
        assert [(c.text, c.start, c.end) for c in chunks] == [
            tuple(c) for c in chunk_text(text, settings)
        ]
        for c in chunks:
            assert text[c.start : c.end] == c.text
            np.testing.assert_allclose(c.embedding, HASH.vector(c.text), rtol=1e-6)


def test_client_from_an_elasticsearch_put_body(clean):
    body = {
        "service": "hugging_face",
        "service_settings": {
            "api_key": CANARY,
            "url": clean.url,
            "rate_limit": {"requests_per_minute": 6000},
        },
        "chunking_settings": {"strategy": "word", "max_chunk_size": 10, "overlap": 2},
    }
    with EmbeddingClient.from_config(body) as client:
        assert client.rate_limit.requests_per_minute == 6000
        chunks = client.embed_chunks(
            ["one two three four five six seven eight nine ten eleven twelve"]
        )
    assert len(chunks[0]) == 2


# --- the key ---------------------------------------------------------------------------


def test_the_key_never_shows(faulty, caplog):
    errors = []
    with caplog.at_level(logging.DEBUG):
        client = client_for(faulty, retry_policy=RetryPolicy(max_retries=0, initial_backoff=0.001))
        for _ in range(5):
            try:
                client.embed(TEXTS[:200])
            except Exception as exc:  # noqa: BLE001 - every error's text is checked below
                errors.append(exc)
        with EmbeddingClient(faulty.url, "hf_wrong") as wrong:
            try:
                wrong.embed(["x"])
            except AuthenticationError as exc:
                errors.append(exc)
    assert errors
    shown = [repr(client), str(client)] + [r.getMessage() for r in caplog.records]
    shown += ["".join(traceback.format_exception(e)) for e in errors] + [str(e) for e in errors]
    assert all(CANARY not in text for text in shown)
    assert any("batch of" in r.getMessage() for r in caplog.records)  # DEBUG logging did run
    client.close()


def test_scale_up_timeout_is_sent_as_a_header(clean):
    clean.reset_stats()
    with client_for(clean, scale_up_timeout=300) as client:
        client.embed(["x"])
    assert clean.stats()["scale_up_timeouts"] == {"300": 1}


def test_concurrent_async_calls_share_the_bound_on_requests_in_flight():
    with LocalEndpoint("hash", faults=Faults(latency=0.05)) as ep:
        client = EmbeddingClient(ep.url, rate_limit=UNLIMITED, batch_size=1, max_concurrency=2)

        async def run():
            return await asyncio.gather(
                *(client.aembed([f"t{k}-{i}" for i in range(4)]) for k in range(3))
            )

        results = asyncio.run(run())
        stats = ep.stats()
    assert [len(r) for r in results] == [4, 4, 4]
    assert stats["requests"] == 12 and stats["max_in_flight"] == 2
    client.close()


# --- a refused token says where it came from, never what it is --------------------------


def test_a_refused_token_names_its_source_and_what_to_do_never_the_token(clean, monkeypatch):
    monkeypatch.setenv("HF_TOKEN", "hf_wrong_from_env_1234")
    with EmbeddingClient(clean.url, retry_policy=FAST) as client:  # the key looked up
        with pytest.raises(AuthenticationError) as info:
            client.embed(["x"])
    message = str(info.value)
    assert info.value.status_code == 401 and info.value.token == "the token from HF_TOKEN"
    assert message.startswith("HTTP 401: the endpoint refused the token from HF_TOKEN; ")
    assert "hf auth login" in message
    assert "hf_wrong" not in message and "1234" not in message


def test_a_refused_login_token_file_is_named(clean, monkeypatch, tmp_path):
    monkeypatch.delenv("HF_TOKEN", raising=False)
    monkeypatch.delenv("HUGGINGFACEHUB_API_TOKEN", raising=False)
    (tmp_path / "token").write_text("hf_stale_login_token\n")
    monkeypatch.setenv("HF_TOKEN_PATH", str(tmp_path / "token"))
    with EmbeddingClient(clean.url, retry_policy=FAST) as client:
        with pytest.raises(
            AuthenticationError, match="refused the token from the login token file"
        ):
            client.embed_chunks(["x"])


def test_no_token_at_all_says_none_was_sent(clean, monkeypatch, tmp_path):
    monkeypatch.setenv("HF_TOKEN_PATH", str(tmp_path / "absent"))
    with EmbeddingClient(clean.url, None, retry_policy=FAST) as client:
        with pytest.raises(AuthenticationError) as info:
            client.embed(["x"])
    assert str(info.value).startswith("HTTP 401: the endpoint needs a token and no token was sent")
    assert "set HF_TOKEN" in str(info.value)


def test_a_refused_token_from_a_put_body_is_named_so(clean):
    body = {"service": "hugging_face", "service_settings": {"api_key": "hf_bad", "url": clean.url}}
    with EmbeddingClient.from_config(body, retry_policy=FAST) as client:
        with pytest.raises(AuthenticationError) as info:
            client.embed(["x"])
    assert "refused the token in the PUT body (service_settings.api_key)" in str(info.value)
    assert "hf_bad" not in str(info.value)


def test_a_call_refused_before_sending_is_not_a_failed_call(clean):
    clean.reset_stats()
    with client_for(clean) as client:
        with pytest.raises(ConfigError, match="is empty"):
            client.embed([""])
        with pytest.raises(ConfigError, match="is empty"):
            client.embed_chunks([""])
        assert client.stats.failures == 0 and client.stats.requests == 0
    stats = clean.stats()
    assert stats["requests"] + stats["info_requests"] == 0


# --- query and document prefixes ----------------------------------------------------------


def test_the_document_prefix_is_sent_before_each_chunk_and_offsets_are_unchanged(clean):
    text = "one two three four five six seven eight nine ten eleven twelve thirteen."
    settings = {"strategy": "word", "max_chunk_size": 10, "overlap": 5}
    with client_for(clean, document_prefix="passage: ", query_prefix="query: ") as client:
        (chunks,) = client.embed_chunks([text], settings)
        with client_for(clean) as unprefixed:
            (plain,) = unprefixed.embed_chunks([text], settings)
        query = client.embed(["a question"], query=True)
        document = client.embed(["a document"])
    assert [(c.start, c.end, c.text) for c in chunks] == [(c.start, c.end, c.text) for c in plain]
    assert len(chunks) == 2 and all(text[c.start : c.end] == c.text for c in chunks)
    # The server embedded what it received: the hash backend's vector of the prefixed chunk.
    assert_vectors_of(["passage: " + c.text for c in chunks], [c.embedding for c in chunks])
    assert_vectors_of(["query: a question"], query)
    assert_vectors_of(["passage: a document"], document)


async def test_prefixes_apply_to_async_calls_too(clean):
    async with client_for(clean, query_prefix="query: ") as client:
        rows = await client.aembed(["q"], query=True)
        (chunks,) = await client.aembed_chunks(["a text."], {"strategy": "none"})
    assert_vectors_of(["query: q"], rows)
    assert_vectors_of(["a text."], [chunks[0].embedding])  # no document prefix set


def test_a_prefix_must_be_a_string():
    with pytest.raises(ConfigError, match=r"\[query_prefix\] must be a string"):
        EmbeddingClient("http://127.0.0.1:9", None, query_prefix=3)


def test_concurrent_cold_start_waits_count_once_by_the_clock():
    from hf_endpoint.client.stats import StatsRecorder

    recorder = StatsRecorder()
    recorder.cold(2.0, now=12.0)  # four batches waiting out the same start, 10 s to 12 s
    recorder.cold(1.5, now=12.0)
    recorder.cold(2.0, now=12.5)
    recorder.cold(0.5, now=11.0)  # inside the others
    assert recorder.snapshot().cold_start_seconds == 2.5
    recorder.cold(1.0, now=20.0)  # a later, separate wait adds up
    assert recorder.snapshot().cold_start_seconds == 3.5


def test_a_two_second_cold_start_reports_about_two_seconds_with_concurrent_batches():
    with LocalEndpoint("hash", faults=Faults(cold_start=2.0, retry_after=0.2)) as ep:
        with EmbeddingClient(ep.url, None, rate_limit=UNLIMITED, batch_size=2) as client:
            client.embed([f"text {i}" for i in range(8)])  # four batches at once
    assert 1.0 <= client.stats.cold_start_seconds <= 4.0

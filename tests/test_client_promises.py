"""What the client promises when used as people use it: concurrently, across processes,
offline, with defaults, and against endpoints that misbehave. Real servers on loopback."""

import asyncio
import logging
import os
import pickle
import socket
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from functools import partial

import numpy as np
import orjson
import pytest
import uvicorn

from hf_endpoint import (
    ConfigError,
    EmbeddingClient,
    EndpointConnectionError,
    EndpointError,
    InferenceConfig,
    InputTooLargeError,
    ResponseFormatError,
    chunk_offsets,
    chunk_text,
)
from hf_endpoint.client._batching import TokenCounter
from hf_endpoint.client.retry import RetryPolicy
from hf_endpoint.server import Faults, HashBackend, LocalEndpoint, ServerConfig, create_app
from langchain_hf_endpoint import HFEndpointEmbeddings, HFEndpointTextSplitter
from llama_index_hf_endpoint import HFEndpointEmbedding

from .endpoints import TEI_1_8, local_url, raw_endpoint, reply
from .threads import run_together

CANARY = "hf_CANARY_promises_4f2b7c"
FAST = RetryPolicy(max_retries=25, initial_backoff=0.002, max_backoff=0.02)
UNLIMITED = 10_000_000
HASH = HashBackend()


def vectors_of(texts):
    return np.stack([HASH.vector(t) for t in texts])


class CountingLimiter:
    """LlamaIndex's rate limiter interface, counting the tokens taken."""

    def __init__(self):
        self.tokens = 0
        self.lock = threading.Lock()

    def acquire(self):
        with self.lock:
            self.tokens += 1

    async def async_acquire(self):
        self.acquire()


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture(scope="module")
def small_batches():
    """Two inputs per request at most, and one attempt in five refused with 429."""
    faults = Faults(rate_429=0.2, retry_after=0, seed=11)
    with LocalEndpoint("hash", faults=faults, max_client_batch_size=2) as ep:
        yield ep


@pytest.fixture(scope="module")
def endpoint_256():
    """A hash endpoint whose /info reports max_input_length 256 and that refuses longer inputs."""
    config = ServerConfig(backend=HashBackend(max_input_length=256), **TEI_1_8)
    sock = socket.socket()
    sock.bind(("127.0.0.1", 0))
    server = uvicorn.Server(uvicorn.Config(create_app(config), log_level="warning", lifespan="on"))
    thread = threading.Thread(target=server.run, kwargs={"sockets": [sock]}, daemon=True)
    thread.start()
    while not server.started:
        time.sleep(0.01)
    yield f"http://127.0.0.1:{sock.getsockname()[1]}"
    server.should_exit = True
    thread.join(timeout=10)


# --- 1. LlamaIndex's rate limiter: one token per HTTP attempt ------------------------------


def llama_model(ep, limiter, **kwargs):
    return HFEndpointEmbedding(
        url=ep.url, embed_batch_size=10, rate_limit=UNLIMITED, rate_limiter=limiter,
        retry_policy=FAST, **kwargs,
    )  # fmt: skip


def attempts(stats):
    return stats["requests"] + stats["info_requests"]


@pytest.mark.parametrize("mode", ["sync", "async", "threads"])
def test_llama_index_rate_limiter_takes_one_token_per_http_attempt(small_batches, mode):
    small_batches.reset_stats()
    limiter = CountingLimiter()
    model = llama_model(small_batches, limiter)
    texts = [f"limiter {mode} {i}" for i in range(40)]
    if mode == "sync":
        got = [model.get_text_embedding_batch(texts)]
    elif mode == "async":
        got = [asyncio.run(model.aget_text_embedding_batch(texts))]
    else:
        got = run_together([partial(model.get_text_embedding_batch, texts) for _ in range(4)])
    stats = small_batches.stats()
    for vectors in got:
        np.testing.assert_allclose(vectors, vectors_of(texts), rtol=1e-6)
    assert stats["status"].get("429", 0) > 0  # retries did happen
    assert limiter.tokens == attempts(stats)


def test_llama_index_single_calls_take_one_token_per_attempt(small_batches):
    small_batches.reset_stats()
    limiter = CountingLimiter()
    model = llama_model(small_batches, limiter)
    for i in range(15):
        model.get_query_embedding(f"query {i}")
        model.get_text_embedding(f"text {i}")
        asyncio.run(model.aget_query_embedding(f"async query {i}"))
    assert limiter.tokens == attempts(small_batches.stats())


def test_llama_index_sync_batches_run_concurrently():
    with LocalEndpoint("hash", faults=Faults(latency=0.05)) as ep:
        model = HFEndpointEmbedding(
            url=ep.url, embed_batch_size=2, max_concurrency=4, rate_limit=UNLIMITED
        )
        texts = [f"concurrent {i}" for i in range(40)]
        vectors = model.get_text_embedding_batch(texts)
        stats = ep.stats()
    np.testing.assert_allclose(vectors, vectors_of(texts), rtol=1e-6)
    assert stats["max_in_flight"] == 4


# --- 2. one discovery per client --------------------------------------------------------------


def test_concurrent_first_calls_ask_info_once():
    with LocalEndpoint("hash", faults=Faults(latency=0.05)) as ep:
        client = EmbeddingClient(ep.url, rate_limit=UNLIMITED)

        async def five():
            return await asyncio.gather(*(client.aembed([f"a{i}"]) for i in range(5)))

        pool = ThreadPoolExecutor(3)
        in_threads = [pool.submit(client.embed, [f"s{i}"]) for i in range(3)]
        in_tasks = asyncio.run(five())
        got = [future.result(timeout=60) for future in in_threads] + in_tasks
        pool.shutdown()
        assert ep.stats()["info_requests"] == 1
        texts = [f"s{i}" for i in range(3)] + [f"a{i}" for i in range(5)]
        np.testing.assert_allclose([rows[0] for rows in got], vectors_of(texts), rtol=1e-6)
        client.close()


def test_async_llama_index_asks_info_once_for_many_batches():
    with LocalEndpoint("hash") as ep:
        model = HFEndpointEmbedding(url=ep.url, embed_batch_size=20, rate_limit=UNLIMITED)
        asyncio.run(model.aget_text_embedding_batch([f"t{i}" for i in range(2000)]))
        stats = ep.stats()
    assert stats["info_requests"] == 1 and stats["requests"] == 100


# --- 3. across processes ------------------------------------------------------------------------


@pytest.mark.parametrize(
    "make",
    [
        lambda url: EmbeddingClient(url, CANARY, rate_limit=UNLIMITED),
        lambda url: HFEndpointEmbeddings(url=url, api_key=CANARY, rate_limit=UNLIMITED),
        lambda url: HFEndpointEmbedding(url=url, api_key=CANARY, rate_limit=UNLIMITED),
    ],
    ids=["client", "langchain", "llama_index"],
)
def test_clients_and_adapters_pickle_into_working_objects(make):
    with LocalEndpoint("hash", api_key=CANARY) as ep:
        original = make(ep.url)
        embed = {
            EmbeddingClient: lambda o: o.embed(["pickled"])[0],
            HFEndpointEmbeddings: lambda o: o.embed_query("pickled"),
            HFEndpointEmbedding: lambda o: o.get_text_embedding("pickled"),
        }[type(original)]
        embed(original)  # pools, threads and limits exist before pickling
        data = pickle.dumps(original)
        copy = pickle.loads(data)
        np.testing.assert_allclose(embed(copy), HASH.vector("pickled"), rtol=1e-6)
    assert len(data) < 20_000  # the fields, not the pools
    assert CANARY.encode() in data  # the key travels: pickle is how work moves between processes


def test_llama_index_ingestion_pipeline_with_two_workers():
    from llama_index.core import Document
    from llama_index.core.ingestion import IngestionPipeline

    from llama_index_hf_endpoint import HFEndpointNodeParser

    with LocalEndpoint("hash") as ep:
        model = HFEndpointEmbedding(url=ep.url, rate_limit=UNLIMITED)
        parser = HFEndpointNodeParser(strategy="word", max_chunk_size=10, overlap=2)
        docs = [Document(text=" ".join(f"word{i}-{j}" for j in range(40))) for i in range(8)]
        pipeline = IngestionPipeline(transformations=[parser, model])
        nodes = pipeline.run(documents=docs, num_workers=2)
    settings = {"strategy": "word", "max_chunk_size": 10, "overlap": 2}
    assert len(nodes) == sum(len(chunk_text(d.text, settings)) for d in docs)
    np.testing.assert_allclose(
        [n.embedding for n in nodes], vectors_of([n.get_content() for n in nodes]), rtol=1e-6
    )


# --- 4. nothing but the endpoint is contacted ------------------------------------------------


def test_no_connection_but_to_the_endpoint_while_embedding_long_inputs(monkeypatch):
    with LocalEndpoint("hash", max_batch_tokens=2048) as ep:
        connected = []
        real_connect = socket.socket.connect

        def record(self, address):
            connected.append(address)
            return real_connect(self, address)

        monkeypatch.setattr(socket.socket, "connect", record)
        monkeypatch.setattr(TokenCounter, "_encoding", None)  # as in a fresh process
        monkeypatch.delenv("TIKTOKEN_CACHE_DIR", raising=False)
        texts = ["A fairly long sentence with several words in it. " * 20 for _ in range(30)]
        with EmbeddingClient(ep.url, rate_limit=UNLIMITED) as client:
            client.embed(texts)
            asyncio.run(client.aembed(texts))
        port = int(ep.url.rsplit(":", 1)[1])
    assert TokenCounter.loaded()  # the estimate was needed and came from the package
    assert connected and {a[1] for a in connected} == {port}


# --- 5. options are validated once, every problem named ----------------------------------


@pytest.mark.parametrize(
    ("options", "expected"),
    [
        ({"max_retries": -1}, "[max_retries] must be an integer >= 0"),
        ({"max_retries": 2.5}, "[max_retries] must be an integer >= 0 (or None), not 2.5"),
        ({"max_retries": "abc"}, "[max_retries] must be an integer >= 0 (or None), not 'abc'"),
        ({"scale_up_timeout": -5}, "[scale_up_timeout] must be a positive number"),
        ({"truncation_direction": "Up"}, "[truncation_direction] must be one of [Right, Left]"),
        ({"timeout": 0}, "[timeout] must be a positive number of seconds, not 0"),
        ({"batch_size": 0}, "[batch_size] must be an integer >= 1, not 0"),
        ({"truncate": "yes"}, "[truncate] must be true, false or None, not 'yes'"),
        ({"rate_limit": -3}, "[rate_limit] Invalid value [-3]"),
    ],
)
def test_bad_options_name_the_field_the_value_and_the_range(options, expected):
    with pytest.raises(ConfigError) as info:
        EmbeddingClient("http://127.0.0.1:9", None, **options)
    assert expected in str(info.value)


def test_every_bad_option_is_reported_at_once():
    with pytest.raises(ConfigError) as info:
        EmbeddingClient(
            "ftp://x", None, max_retries=-1, scale_up_timeout=-5, truncation_direction="Up"
        )
    assert len(info.value.errors) == 4


def test_adapters_report_bad_options_as_config_errors():
    with pytest.raises(ConfigError, match=r"\[max_retries\] must be an integer >= 0"):
        HFEndpointEmbeddings(url="http://127.0.0.1:9", max_retries=-1)
    with pytest.raises(ConfigError, match=r"\[truncation_direction\]"):
        HFEndpointEmbedding(url="http://127.0.0.1:9", truncation_direction="Up")


def test_task_settings_of_the_wrong_type_are_named():
    body = {
        "service": "hugging_face",
        "service_settings": {"api_key": "k", "url": "http://127.0.0.1:9"},
        "task_settings": True,
    }
    with pytest.raises(ConfigError, match=r"field \[task_settings\] is not of the expected type"):
        InferenceConfig.from_dict(body)


# --- 6. errors and logs that say what is happening ------------------------------------------


def test_an_unreachable_url_fails_at_once_and_names_it():
    url = f"http://127.0.0.1:{free_port()}/embed"
    client = EmbeddingClient(url, None)
    with pytest.raises(EndpointConnectionError, match=f"cannot connect to {url}"):
        client.embed(["x"])
    with pytest.raises(EndpointConnectionError, match=url):
        asyncio.run(client.aembed(["x"]))
    assert client.stats.requests == 2 and client.stats.retries == {}


def test_retries_and_cold_starts_are_logged_once_each(caplog):
    faults = Faults(cold_start=0.3, rate_429=0.3, retry_after=0, seed=4)
    with LocalEndpoint("hash", faults=faults) as ep:
        with caplog.at_level(logging.INFO, logger="hf_endpoint"):
            client = EmbeddingClient(ep.url, None, rate_limit=UNLIMITED, retry_policy=FAST)
            client.embed([f"t{i}" for i in range(200)])
    stats = client.stats
    warnings = [r.getMessage() for r in caplog.records if r.levelno == logging.WARNING]
    infos = [r.getMessage() for r in caplog.records if r.levelno == logging.INFO]
    assert len(warnings) == stats.total_retries > 0
    assert all(ep.url in w and "attempt" in w and "retrying in" in w for w in warnings)
    assert any("HTTP 429" in w for w in warnings)
    assert any("is starting" in m for m in infos) and stats.cold_start_seconds > 0


def test_lost_connections_after_contact_are_retried():
    with LocalEndpoint("hash", faults=Faults(rate_drop=0.3, seed=2)) as ep:
        with EmbeddingClient(ep.url, None, rate_limit=UNLIMITED, retry_policy=FAST) as client:
            texts = [f"d{i}" for i in range(300)]
            np.testing.assert_allclose(client.embed(texts), vectors_of(texts), rtol=1e-6)
            assert sum(client.stats.retries.values()) > 0


# --- 7. the key: where it comes from, and never shown ---------------------------------------


def test_the_token_file_of_hf_auth_login_is_used(tmp_path, monkeypatch):
    for name in ("HF_TOKEN", "HUGGINGFACEHUB_API_TOKEN", "HF_TOKEN_PATH"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("HF_HOME", str(tmp_path))
    (tmp_path / "token").write_text(CANARY + "\n")
    with LocalEndpoint("hash", api_key=CANARY) as ep:
        assert len(EmbeddingClient(ep.url, rate_limit=UNLIMITED).embed(["x"])) == 1
        assert len(HFEndpointEmbeddings(url=ep.url).embed_query("x")) == 384
        assert len(HFEndpointEmbedding(url=ep.url).get_query_embedding("x")) == 384


def test_environment_variables_come_before_the_token_file(tmp_path, monkeypatch):
    monkeypatch.setenv("HF_HOME", str(tmp_path))
    (tmp_path / "token").write_text("hf_from_the_file")
    monkeypatch.setenv("HF_TOKEN", CANARY)
    with LocalEndpoint("hash", api_key=CANARY) as ep:
        assert len(EmbeddingClient(ep.url, rate_limit=UNLIMITED).embed(["x"])) == 1


def test_a_pasted_newline_is_dropped_and_a_broken_key_refused_unseen():
    with LocalEndpoint("hash", api_key=CANARY) as ep:
        assert len(EmbeddingClient(ep.url, CANARY + "\n", rate_limit=UNLIMITED).embed(["x"])) == 1
    for bad in (CANARY[:10] + "\n" + CANARY[10:], CANARY + " x"):
        with pytest.raises(ConfigError) as info:
            EmbeddingClient("http://127.0.0.1:9", bad)
        assert "api_key" in str(info.value) and CANARY[:8] not in str(info.value)


def test_the_key_never_shows_in_construction_errors():
    with pytest.raises(ConfigError) as info:
        HFEndpointEmbeddings(url="", api_key=CANARY)
    assert CANARY[3:12] not in str(info.value) and "[url]" in str(info.value)
    with pytest.raises(ConfigError) as info:
        HFEndpointEmbedding(url="http://127.0.0.1:9", api_key=CANARY, max_concurrency="many")
    assert CANARY[3:12] not in str(info.value)
    body = {"service": "hugging_face", "service_settings": {"api_key": [CANARY], "url": "x"}}
    with pytest.raises(ConfigError) as info:
        InferenceConfig.from_dict(body)
    assert CANARY[3:12] not in str(info.value) and "api_key" in str(info.value)


def test_a_server_that_quotes_the_key_has_it_redacted():
    def echo(handler, body):
        quoted = f'{{"error": "bad request, got {handler.headers["Authorization"]}"}}'
        reply(handler, 400 if handler.command == "POST" else 200, quoted.encode())

    with raw_endpoint(echo) as url:
        with pytest.raises(EndpointError) as info:
            EmbeddingClient(url, CANARY, discover_limits=False).embed(["x"])
    assert CANARY not in str(info.value) and "[REDACTED]" in str(info.value)


# --- 8. defaults that fit the endpoint ----------------------------------------------------------

ESSAY = " ".join(
    f"Sentence number {i} of the essay talks about rivers, engines and quiet mountains again."
    for i in range(400)
)  # about 5,200 words


def test_default_chunking_fits_an_endpoint_of_256_tokens(endpoint_256):
    with EmbeddingClient(endpoint_256, None, rate_limit=UNLIMITED) as client:
        chunks = client.embed_chunks([ESSAY])[0]
    assert len(chunks) > 20 and all(c.text == ESSAY[c.start : c.end] for c in chunks)


def test_default_chunking_fits_the_local_minilm_endpoint():
    body = {
        "service": "hugging_face",
        "service_settings": {"api_key": "unused", "url": local_url("minilm")},
    }
    embeddings = HFEndpointEmbeddings.from_inference_config(body, rate_limit=UNLIMITED)
    assert len(embeddings.embed_documents([ESSAY])[0]) == 384
    with EmbeddingClient.from_config(body) as client:
        assert len(client.embed_chunks([ESSAY])[0]) > 10


def test_explicit_settings_that_cannot_fit_name_the_text_the_chunk_and_the_setting(endpoint_256):
    settings = {"strategy": "word", "max_chunk_size": 300, "overlap": 10}
    with EmbeddingClient(endpoint_256, None, rate_limit=UNLIMITED) as client:
        with pytest.raises(InputTooLargeError) as info:
            client.embed_chunks(["short text", ESSAY], settings)
    message = str(info.value)
    assert info.value.index == 1 and "chunk [0]" in message and "max_chunk_size" in message


# --- 9. LangChain's character sizes are refused, not ignored -------------------------------


@pytest.mark.parametrize("kwargs", [{"chunk_size": 200}, {"chunk_overlap": 20}])
def test_the_splitter_refuses_character_sizes(kwargs):
    with pytest.raises(ConfigError, match="counts words, not characters"):
        HFEndpointTextSplitter(strategy="word", max_chunk_size=50, **kwargs)


# --- 10. no connection left behind per event loop -------------------------------------------


def test_a_call_per_event_loop_leaves_no_connection_open():
    def open_fds():
        return len(os.listdir("/proc/self/fd"))

    with LocalEndpoint("hash") as ep:
        client = EmbeddingClient(ep.url, None, rate_limit=UNLIMITED)
        asyncio.run(client.aembed(["warm up"]))
        before = open_fds()
        for i in range(60):
            asyncio.run(client.aembed([f"x{i}"]))
        after = open_fds()
        client.close()
    assert after - before <= 2


def test_adapters_close():
    with LocalEndpoint("hash") as ep:
        model = HFEndpointEmbeddings(url=ep.url, rate_limit=UNLIMITED)
        model.embed_query("x")
        model.close()
        asyncio.run(model.aclose())
        assert len(model.embed_query("again")) == 384  # a closed adapter opens a new pool


# --- 13, 14. an attempt is bounded in time and in size ---------------------------------------


def dripping(handler, body):
    handler.send_response(200)
    handler.send_header("Content-Type", "application/json")
    handler.send_header("Content-Length", "400")
    handler.end_headers()
    try:
        for _ in range(40):
            handler.wfile.write(b" ")
            handler.wfile.flush()
            time.sleep(0.25)
    except OSError:
        pass


@pytest.mark.parametrize("mode", ["sync", "async"])
def test_timeout_bounds_an_attempt_against_a_dripping_server(mode):
    with raw_endpoint(dripping) as url:
        client = EmbeddingClient(
            url, None, timeout=1, max_retries=0, discover_limits=False, rate_limit=UNLIMITED
        )
        started = time.monotonic()
        with pytest.raises(EndpointConnectionError, match="timeout=1 s"):
            if mode == "sync":
                client.embed(["x"])
            else:
                asyncio.run(client.aembed(["x"]))
        # The drip takes 10 s; one attempt of timeout=1 must end long before.
        assert time.monotonic() - started < 5


def test_an_answer_over_the_size_bound_is_refused():
    row = orjson.dumps([[0.5] * 300_000])  # one vector of 1.5 MB

    with raw_endpoint(lambda h, body: reply(h, 200, row)) as url:
        client = EmbeddingClient(url, None, discover_limits=False, max_response_bytes=1_000_000)
        with pytest.raises(ResponseFormatError, match="max_response_bytes"):
            client.embed(["x"])


def test_vectors_of_another_width_than_the_rest_are_refused():
    widths = iter([3, 3, 4])

    def answer(handler, body):
        n = len(orjson.loads(body)["inputs"])
        reply(handler, 200, orjson.dumps([[0.1] * next(widths)] * n))

    with raw_endpoint(answer) as url:
        client = EmbeddingClient(url, None, discover_limits=False, batch_size=1, max_concurrency=1)
        assert len(client.embed(["a"])[0]) == 3
        with pytest.raises(ResponseFormatError, match="4 dimensions"):
            client.embed(["b", "c"])


def test_configured_dimensions_are_checked():
    with LocalEndpoint("hash") as ep:
        with pytest.raises(ResponseFormatError, match="384 dimensions"):
            EmbeddingClient(ep.url, None, dimensions=768).embed(["x"])


# --- 19. a float32 path for bulk users ----------------------------------------------------------


def test_float32_results_equal_the_lists():
    texts = [f"bulk {i}" for i in range(500)]
    with EmbeddingClient(local_url("hash"), None, rate_limit=UNLIMITED) as client:
        array = client.embed(texts, dtype="float32")
        lists = client.embed(texts)
        async_array = asyncio.run(client.aembed(texts, dtype="float32"))
    assert array.dtype == np.float32 and array.shape == (500, 384)
    np.testing.assert_array_equal(array, np.asarray(lists, dtype=np.float32))
    np.testing.assert_array_equal(async_array, array)


def test_stats_count_what_the_client_did():
    with LocalEndpoint("hash", faults=Faults(rate_503=0.2, retry_after=0, seed=8)) as ep:
        with EmbeddingClient(ep.url, None, rate_limit=UNLIMITED, retry_policy=FAST) as client:
            client.embed([f"s{i}" for i in range(400)])
            stats, server = client.stats, ep.stats()
    assert stats.requests == server["requests"] + server["info_requests"]
    assert stats.inputs == 400
    assert stats.retries.get("HTTP 503", 0) == server["status"].get("503", 0) > 0
    assert "requests" in str(stats)


# --- the event loop stays free while long inputs are chunked and planned --------------------


def test_chunking_a_long_input_does_not_hold_up_the_event_loop(monkeypatch):
    """The chunking runs beside the loop: the loop's heartbeat goes on while it runs. (Timing
    the longest gap against the chunking's duration failed on a loaded machine, where a
    process may wait for a core longer than a chunking takes.)"""
    long_text = "A sentence of a few words about rivers and engines. " * 60_000  # 3 MB
    settings = {"strategy": "sentence", "max_chunk_size": 250}
    spans = []  # (thread, start, end) of each chunking of the long text

    def watched(text, chunking_settings=None):
        started = time.monotonic()
        offsets = chunk_offsets(text, chunking_settings)
        if len(text) == len(long_text):
            spans.append((threading.get_ident(), started, time.monotonic()))
        return offsets

    monkeypatch.setattr("hf_endpoint.client._embedding.chunk_offsets", watched)

    async def run(client):
        beats = []

        async def heartbeat():
            while True:
                beats.append(time.monotonic())
                await asyncio.sleep(0.001)

        task = asyncio.ensure_future(heartbeat())
        await asyncio.sleep(0.02)
        chunks = await client.aembed_chunks([long_text], settings)
        task.cancel()
        return chunks, beats, threading.get_ident()

    with EmbeddingClient(local_url("hash"), None, rate_limit=UNLIMITED, batch_size=32) as client:
        chunks, beats, loop_thread = asyncio.run(run(client))
    assert len(chunks[0]) > 200
    [(thread, started, ended)] = spans
    assert thread != loop_thread
    assert sum(started < b < ended for b in beats) >= 3, (started, ended)

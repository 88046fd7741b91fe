"""Elasticsearch's cap of 512 chunks per input (``EmbeddingRequestChunker``, PR #123150), built
from its ``EmbeddingRequestChunkerTests.testVeryLongInput_Float``: a passage of 200,000 words in
word chunks of 20 (overlap 0) is 10,000 chunks, each embedded, merged into 512 of 19 or 20
chunks whose offsets span them and whose vector is their mean."""

import itertools
import json

import httpx
import pytest

from hf_endpoint import EmbeddingClient, InferenceEndpoints
from hf_endpoint.chunking._strategies import chunk_text
from hf_endpoint.client._embedding import MAX_CHUNKS, merge_chunks
from hf_endpoint.config.settings import ChunkingSettings
from hf_endpoint.inference_api import InferenceAPI

from .endpoints import raw_endpoint, reply

PASSAGE = "".join(f"word{i} " for i in range(20 * 10_000))
INPUTS = ["1st small", PASSAGE, "2nd small"]

# Elasticsearch's test builds WordBoundaryChunkingSettings(20, 0) directly, below the REST
# minimum overlap of 1 that ChunkingSettings validates; the chunker itself takes 0.
WORDS = ChunkingSettings(strategy="word", max_chunk_size=20, overlap=1)
object.__setattr__(WORDS, "overlap", 0)


def weight(text):
    """The vector Elasticsearch's test gives each request in order: request k gets k/16384
    ("1st small" is request 1, chunk c of the passage request c + 2, "2nd small" 10002)."""
    if text == "1st small":
        return 1 / 16384
    if text == "2nd small":
        return 10_002 / 16384
    first = int(text.split()[0].removeprefix("word"))
    return (first // 20 + 2) / 16384


def answer_weights(handler, body):
    if handler.command == "GET":
        return reply(handler, 404, b"")
    inputs = json.loads(body)["inputs"]
    reply(handler, 200, json.dumps([[weight(t)] for t in inputs]).encode())


@pytest.fixture(scope="module")
def chunked():
    with raw_endpoint(answer_weights) as url:
        with EmbeddingClient(url, None, rate_limit=10**7, batch_size=256) as client:
            return client.embed_chunks(INPUTS, WORDS), client.stats


def test_a_passage_of_10000_chunks_is_embedded_whole_and_kept_as_512(chunked):
    results, stats = chunked
    assert [len(r) for r in results] == [1, MAX_CHUNKS, 1]
    assert stats.inputs == 10_002  # every chunk was embedded, none dropped


def test_merged_chunks_span_their_chunks_as_in_elasticsearch(chunked):
    passage = chunked[0][1]
    assert passage[0].text.startswith("word0 word1 ") and passage[0].text.endswith(
        " word398 word399"
    )
    assert passage[511].text.startswith(" word199620 word199621 ")
    assert passage[511].text.endswith(" word199998 word199999")
    for chunk in passage:
        assert chunk.text == PASSAGE[chunk.start : chunk.end]
    # Neighbours meet: the merged chunks still tile the passage.
    assert all(a.end == b.start for a, b in itertools.pairwise(passage))


def test_merged_vectors_are_the_mean_of_their_chunks_as_in_elasticsearch(chunked):
    small, passage, other = chunked[0]
    assert small[0].embedding == [1 / 16384] and other[0].embedding == [10_002 / 16384]
    assert passage[0].embedding == [(2 + 21) / (2 * 16384)]  # 20 chunks: weights 2..21
    assert passage[511].embedding == [(9983 + 10001) / (2 * 16384)]  # 19 chunks: 9983..10001


@pytest.mark.parametrize("n", [1, 511, 512])
def test_up_to_512_chunks_are_kept_as_they_are(n):
    offsets = [(i, i + 1) for i in range(n)]
    vectors = [[float(i)] for i in range(n)]
    assert merge_chunks(offsets, vectors) == [(i, i + 1, [float(i)]) for i in range(n)]


def test_513_chunks_merge_one_pair_where_elasticsearchs_index_arithmetic_puts_it():
    offsets = [(2 * i, 2 * i + 1) for i in range(513)]
    merged = merge_chunks(offsets, [[float(i)] for i in range(513)])
    assert len(merged) == 512
    # chunk i goes to i * 512 // 513: chunks 0 and 1 both go to 0, every later one to i - 1
    assert merged[0] == (0, 3, [0.5])
    assert merged[1:] == [(2 * i, 2 * i + 1, [float(i)]) for i in range(2, 513)]


# -- the cap in InferenceEndpoints.inference(chunk=True), in process and over HTTP ------------

# An endpoint's chunking_settings as a PUT body gives them (the REST minimum overlap is 1).
CHUNKING = {"strategy": "word", "max_chunk_size": 20, "overlap": 1}
LONG = "".join(f"word{i} " for i in range(19 * 1_100))
ORDER = {c.text: i for i, c in enumerate(chunk_text(LONG, CHUNKING))}


def answer_order(handler, body):
    """Each chunk's vector is its place in the passage (texts that are not a chunk get 0)."""
    if handler.command == "GET":
        return reply(handler, 404, b"")
    inputs = json.loads(body)["inputs"]
    reply(handler, 200, json.dumps([[ORDER.get(t, -1) + 1.0] for t in inputs]).encode())


def expected_chunks():
    """Elasticsearch's merge written out: chunk i of n to i * 512 // n, means in order."""
    chunks = chunk_text(LONG, CHUNKING)
    n = len(chunks)
    groups: dict[int, list[int]] = {}
    for i in range(n):
        groups.setdefault(i * MAX_CHUNKS // n, []).append(i)
    return [
        (chunks[g[0]].start, chunks[g[-1]].end, sum(i + 1.0 for i in g) / len(g))
        for g in groups.values()
    ]


def check_chunked_answer(answer):
    [chunks] = answer["chunked_inference_service_result"]
    assert len(ORDER) > MAX_CHUNKS and len(chunks) == MAX_CHUNKS
    for chunk, (start, end, mean) in zip(chunks, expected_chunks(), strict=True):
        assert chunk["text_offset"] == {"start": start, "end": end}
        assert chunk["chunk_text"] == LONG[start:end]
        assert chunk["embedding"] == [pytest.approx(mean, rel=1e-12)]


@pytest.fixture(scope="module")
def registry():
    with raw_endpoint(answer_order) as url:
        endpoints = InferenceEndpoints(batch_size=256)
        body = {
            "service": "hugging_face",
            "service_settings": {"api_key": "hf_test", "url": url},
            "chunking_settings": CHUNKING,
        }
        endpoints.put("text_embedding", "long", body)
        yield endpoints, url
        endpoints.close()


def test_inference_with_chunk_keeps_512_chunks_per_input_as_elasticsearch(registry):
    check_chunked_answer(registry[0].inference("long", LONG, chunk=True))


async def test_async_inference_with_chunk_keeps_512_chunks_per_input(registry):
    check_chunked_answer(await registry[0].ainference("long", [LONG], chunk=True))


def test_inference_with_chunk_answers_one_list_per_input_in_order(registry):
    answer = registry[0].inference("long", ["word3 word4", "word0"], chunk=True)
    first, second = answer["chunked_inference_service_result"]
    assert [c["chunk_text"] for c in first] == ["word3 word4"]
    assert [c["text_offset"] for c in second] == [{"start": 0, "end": 5}]


def test_inference_without_chunk_sends_each_input_whole(registry):
    answer = registry[0].inference("long", ["word0 "], chunk=False)
    assert answer == {"text_embedding": [{"embedding": [0.0]}]}  # not a chunk: sent whole


def test_the_service_answers_chunk_true_with_the_capped_chunks(registry, tmp_path):
    with InferenceAPI(tmp_path / "store.sqlite3") as service:
        remote = InferenceEndpoints.connect(service.url)
        remote.put(
            "text_embedding",
            "long",
            registry[0].config("long").to_dict()
            | {
                "service_settings": {"api_key": "hf_test", "url": registry[1]},
            },
        )
        check_chunked_answer(remote.inference("long", LONG, chunk=True))
        refused = httpx.post(f"{service.url}/_inference/long", json={"input": "a", "chunk": "yes"})
        assert refused.status_code == 400 and "[chunk]" in refused.text

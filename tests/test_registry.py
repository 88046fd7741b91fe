"""InferenceEndpoints: Elasticsearch's _inference API rules, in process."""

import asyncio
import json

import numpy as np
import pytest

from hf_endpoint import ConfigError, InferenceEndpoints
from hf_endpoint.server import HashBackend, LocalEndpoint
from langchain_hf_endpoint import HFEndpointEmbeddings
from llama_index_hf_endpoint import HFEndpointEmbedding

CANARY = "hf_CANARY_registry_41d0"


@pytest.fixture(scope="module")
def endpoint():
    with LocalEndpoint("hash", api_key=CANARY) as ep:
        yield ep


def body(url, **service):
    return {
        "service": "hugging_face",
        "service_settings": {"api_key": CANARY, "url": url, **service},
    }


def errors_of(call, *args, **kwargs):
    with pytest.raises(ConfigError) as info:
        call(*args, **kwargs)
    return info.value.errors


def test_put_validates_and_records_dimensions(endpoint):
    endpoints = InferenceEndpoints()
    view = endpoints.put("text_embedding", "hf-embeddings", body(endpoint.url, dimensions=12))
    assert (
        view["service_settings"]["dimensions"] == 384
    )  # from the answer to "how big", not the 12 given
    assert endpoint.stats()["served_inputs"] >= 1


def test_get_is_elasticsearchs_read_view_without_the_key(endpoint):
    endpoints = InferenceEndpoints()
    endpoints.put(
        "TEXT_EMBEDDING ",
        "view-me",
        {**body(endpoint.url), "chunking_settings": {"strategy": "word"}},
    )
    view = endpoints.get("view-me")
    assert list(view) == ["endpoints"]
    one = view["endpoints"][0]
    assert list(one) == [
        "inference_id",
        "task_type",
        "service",
        "service_settings",
        "chunking_settings",
    ]
    assert one["task_type"] == "text_embedding"
    assert list(one["service_settings"]) == ["url", "similarity", "dimensions", "rate_limit"]
    assert one["service_settings"]["rate_limit"] == {"requests_per_minute": 3000}
    assert one["chunking_settings"] == {"strategy": "word", "max_chunk_size": 250, "overlap": 100}
    for shown in (json.dumps(endpoints.get()), repr(endpoints), repr(endpoints.config("view-me"))):
        assert CANARY not in shown


def test_inference_returns_one_embedding_per_input_in_order(endpoint):
    endpoints = InferenceEndpoints()
    endpoints.put("text_embedding", "infer", body(endpoint.url), validate=False)
    result = endpoints.inference("infer", ["a", "b"])
    assert list(result) == ["text_embedding"]
    np.testing.assert_allclose(
        [e["embedding"] for e in result["text_embedding"]],
        [HashBackend().vector(t) for t in "ab"],
        rtol=1e-6,
    )
    assert len(endpoints.inference("infer", "single")["text_embedding"]) == 1


async def test_async_inference(endpoint):
    endpoints = InferenceEndpoints()
    endpoints.put("text_embedding", "ainfer", body(endpoint.url), validate=False)
    assert len((await endpoints.ainference("ainfer", ["a", "b", "c"]))["text_embedding"]) == 3


def test_an_unknown_inference_keyword_is_a_type_error_naming_it(endpoint):
    endpoints = InferenceEndpoints()
    endpoints.put("text_embedding", "e", body(endpoint.url), validate=False)
    with pytest.raises(TypeError, match="unexpected keyword argument 'top_k'"):
        endpoints.inference("e", ["a text"], top_k=3)
    with pytest.raises(TypeError, match="unexpected keyword argument 'top_k'"):
        asyncio.run(endpoints.ainference("e", ["a text"], top_k=3))


def test_validate_false_sends_nothing(endpoint):
    endpoint.reset_stats()
    InferenceEndpoints().put("text_embedding", "quiet", body(endpoint.url), validate=False)
    assert endpoint.stats()["requests"] == 0


def test_an_existing_id_cannot_be_created_again_delete_first(endpoint):
    endpoints = InferenceEndpoints()
    endpoints.put("text_embedding", "once", body(endpoint.url), validate=False)
    assert errors_of(endpoints.put, "text_embedding", "once", body(endpoint.url)) == [
        "Inference endpoint [once] already exists"
    ]
    assert endpoints.delete("once") == {"acknowledged": True}
    endpoints.put("text_embedding", "once", body(endpoint.url), validate=False)


def test_unknown_ids_are_not_found(endpoint):
    endpoints = InferenceEndpoints()
    for call in (endpoints.get, endpoints.delete, endpoints.config):
        assert errors_of(call, "nope") == ["Inference endpoint not found [nope]"]
    assert errors_of(endpoints.inference, "nope", ["x"]) == ["Inference endpoint not found [nope]"]


@pytest.mark.parametrize("bad_id", ["Upper", "-dash", "dot.", "sp ace", "_all", "", "ünï"])
def test_invalid_ids(endpoint, bad_id):
    errors = errors_of(InferenceEndpoints().put, "text_embedding", bad_id, body(endpoint.url))
    assert errors[0].startswith(f"Invalid inference_id [{bad_id}]")


def test_every_problem_is_reported_at_once(endpoint):
    bad = {
        "service": "openai",
        "service_settings": {"url": "nope"},
        "chunking_settings": {"strategy": "word", "max_chunk_size": 5},
    }
    errors = errors_of(InferenceEndpoints().put, "completion", "Bad Id", bad)
    assert errors == [
        "The [hugging_face] service does not support task type [completion]",
        errors[1],
        "Unknown service [openai]",
        "[service_settings] Invalid url [nope] received for field [url]. Error: an absolute http or https URL is required",
        "[service_settings] does not contain the required setting [api_key]",
        "[chunking_settings] Invalid value [5]. [max_chunk_size] must be greater than or equal to [10]",
    ]
    assert errors[1].startswith("Invalid inference_id [Bad Id]")


def test_missing_service_and_unknown_keys():
    errors = errors_of(
        InferenceEndpoints().put, "text_embedding", "x", {"service_settings": {}, "extra": 1}
    )
    assert "Inference endpoint configuration is missing the [service] setting" in errors
    assert (
        "Model configuration contains settings [extra] unknown to the [hugging_face] service"
        in errors
    )


def test_adapters_build_from_a_registered_endpoint(endpoint):
    endpoints = InferenceEndpoints()
    endpoints.put(
        "text_embedding",
        "for-adapters",
        {**body(endpoint.url), "chunking_settings": {"strategy": "none"}},
    )
    lc = HFEndpointEmbeddings.from_endpoint(endpoints, "for-adapters")
    li = HFEndpointEmbedding.from_endpoint(endpoints, "for-adapters")
    np.testing.assert_allclose(lc.embed_query("x"), li.get_query_embedding("x"), rtol=1e-6)
    assert CANARY not in repr(lc) + li.to_json()

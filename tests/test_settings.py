"""Chunking and service settings: Elasticsearch's rules and messages (SPEC A1, A2)."""

import pickle

import pytest
from pydantic import SecretStr

from hf_endpoint import ChunkingSettings, ConfigError, InferenceConfig, RateLimit, ServiceSettings

CANARY = "hf_CANARY_9f3b2c7d1e"


def problems(call, *args, **kwargs):
    with pytest.raises(ConfigError) as info:
        call(*args, **kwargs)
    return info.value.errors


def test_default_is_sentence_250_overlap_1():
    assert ChunkingSettings().to_dict() == {
        "strategy": "sentence",
        "max_chunk_size": 250,
        "sentence_overlap": 1,
    }
    assert ChunkingSettings.from_dict(None) == ChunkingSettings()
    assert ChunkingSettings.from_dict({}) == ChunkingSettings()


def test_strategy_omitted_defaults_to_sentence():
    assert ChunkingSettings.from_dict({"max_chunk_size": 100}).to_dict() == {
        "strategy": "sentence",
        "max_chunk_size": 100,
        "sentence_overlap": 1,
    }


def test_strategy_is_case_insensitive_and_trimmed():
    assert ChunkingSettings.from_dict({"strategy": " WORD "}).strategy == "word"


def test_word_defaults_and_key_order():
    assert list(ChunkingSettings.from_dict({"strategy": "word"}).to_dict().items()) == [
        ("strategy", "word"),
        ("max_chunk_size", 250),
        ("overlap", 100),
    ]


def test_word_overlap_default_is_half_of_a_small_max():
    assert ChunkingSettings.from_dict({"strategy": "word", "max_chunk_size": 50}).overlap == 25


def test_none_strategy_has_only_the_strategy():
    assert ChunkingSettings.from_dict({"strategy": "none"}).to_dict() == {"strategy": "none"}


def test_max_chunking_size_is_an_alias():
    assert (
        ChunkingSettings.from_dict({"strategy": "word", "max_chunking_size": 40}).max_chunk_size
        == 40
    )


def test_alias_and_key_together_is_an_error():
    errors = problems(ChunkingSettings.from_dict, {"max_chunk_size": 40, "max_chunking_size": 40})
    assert errors == [
        "[chunking_settings] can not contain both [max_chunk_size] and its alias [max_chunking_size]"
    ]


def test_missing_required_setting_message():
    assert problems(ChunkingSettings.from_dict, {"strategy": "word", "max_chunk_size": None}) == [
        "[chunking_settings] does not contain the required setting [max_chunk_size]"
    ]


@pytest.mark.parametrize(
    "value,shown", [("abc", "abc"), (10.0, "10.0"), (True, "true"), ([1], "[1]")]
)
def test_wrong_type_message(value, shown):
    assert problems(ChunkingSettings.from_dict, {"strategy": "word", "max_chunk_size": value}) == [
        f"field [max_chunk_size] is not of the expected type. The value [{shown}] cannot be converted to a [Integer]"
    ]


@pytest.mark.parametrize("strategy,low", [("sentence", 20), ("word", 10)])
def test_too_small_message(strategy, low):
    assert problems(
        ChunkingSettings.from_dict, {"strategy": strategy, "max_chunk_size": low - 1}
    ) == [
        f"[chunking_settings] Invalid value [{low - 1}]. [max_chunk_size] must be greater than or equal to [{low}]"
    ]


@pytest.mark.parametrize("strategy", ["sentence", "word"])
def test_too_large_message(strategy):
    assert problems(ChunkingSettings.from_dict, {"strategy": strategy, "max_chunk_size": 301}) == [
        "[chunking_settings] Invalid value [301]. [max_chunk_size] must be less than or equal to [300]"
    ]


@pytest.mark.parametrize(
    "strategy,size", [("sentence", 20), ("sentence", 300), ("word", 10), ("word", 300)]
)
def test_limits_are_inclusive(strategy, size):
    assert (
        ChunkingSettings.from_dict({"strategy": strategy, "max_chunk_size": size}).max_chunk_size
        == size
    )


def test_word_overlap_range():
    assert (
        ChunkingSettings.from_dict(
            {"strategy": "word", "max_chunk_size": 21, "overlap": 10}
        ).overlap
        == 10
    )
    assert problems(
        ChunkingSettings.from_dict, {"strategy": "word", "max_chunk_size": 21, "overlap": 11}
    ) == ["[chunking_settings] Invalid value [11]. [overlap] must be less than or equal to [10]"]
    assert problems(
        ChunkingSettings.from_dict, {"strategy": "word", "max_chunk_size": 20, "overlap": 0}
    ) == ["[chunking_settings] Invalid value [0]. [overlap] must be greater than or equal to [1]"]


@pytest.mark.parametrize("value", [2, -1])
def test_bad_sentence_overlap_message(value):
    assert problems(ChunkingSettings.from_dict, {"sentence_overlap": value}) == [
        f"sentence_overlap[{value}] must be either 0 or 1"
    ]


@pytest.mark.parametrize("value", [0, 1])
def test_sentence_overlap_zero_or_one(value):
    assert ChunkingSettings.from_dict({"sentence_overlap": value}).sentence_overlap == value


def test_bad_strategy_message():
    assert problems(ChunkingSettings.from_dict, {"strategy": "paragraph"}) == [
        "Invalid chunkingStrategy paragraph"
    ]


def test_key_of_another_strategy_is_named():
    assert problems(ChunkingSettings.from_dict, {"strategy": "sentence", "overlap": 5}) == [
        "Sentence based chunking settings can not have the following settings: [overlap]"
    ]
    assert problems(
        ChunkingSettings.from_dict, {"strategy": "word", "sentence_overlap": 1, "foo": 2}
    ) == [
        "Word based chunking settings can not have the following settings: [sentence_overlap, foo]"
    ]
    assert problems(ChunkingSettings.from_dict, {"strategy": "none", "max_chunk_size": 10}) == [
        "None chunking settings can not have the following settings: [max_chunk_size]"
    ]


def test_every_problem_is_reported_at_once():
    error = pytest.raises(
        ConfigError,
        ChunkingSettings.from_dict,
        {"strategy": "sentence", "max_chunk_size": 5, "sentence_overlap": 3, "x": 1},
    ).value
    assert len(error.errors) == 3
    assert str(error).startswith("Validation Failed: 1: Sentence based chunking settings")
    assert isinstance(error, ValueError)


def test_constructor_validates_like_from_dict():
    assert ChunkingSettings(strategy="word", max_chunk_size=50) == ChunkingSettings.from_dict(
        {"strategy": "word", "max_chunk_size": 50}
    )
    assert problems(ChunkingSettings, strategy="word", max_chunk_size=5) == [
        "[chunking_settings] Invalid value [5]. [max_chunk_size] must be greater than or equal to [10]"
    ]


def test_settings_of_the_wrong_type_name_the_argument():
    with pytest.raises(TypeError, match="chunking_settings must be a mapping"):
        ChunkingSettings.from_dict(["word"])


def test_settings_are_immutable_and_printable():
    s = ChunkingSettings(strategy="word", max_chunk_size=50)
    assert (
        repr(s)
        == "ChunkingSettings(strategy='word', max_chunk_size=50, overlap=25, sentence_overlap=None)"
    )
    with pytest.raises(AttributeError):
        s.overlap = 3


# --- service settings -------------------------------------------------------


def body(**service):
    settings = {"api_key": CANARY, "url": "https://abc.endpoints.huggingface.cloud", **service}
    return {"service": "hugging_face", "service_settings": settings}


def test_service_settings_read_view_order_and_no_key():
    cfg = InferenceConfig.from_dict(body(dimensions=384, max_input_tokens=512))
    view = cfg.to_dict()
    assert list(view["service_settings"]) == [
        "url",
        "similarity",
        "dimensions",
        "max_input_tokens",
        "rate_limit",
    ]
    assert view["service_settings"]["rate_limit"] == {"requests_per_minute": 3000}
    assert view["chunking_settings"] == ChunkingSettings().to_dict()
    assert CANARY not in repr(view)


def test_api_key_never_shown():
    cfg = InferenceConfig.from_dict(body())
    for text in (repr(cfg), str(cfg), repr(cfg.service_settings), str(cfg.to_dict())):
        assert CANARY not in text
    assert cfg.service_settings.api_key.get_secret_value() == CANARY
    assert CANARY.encode() in pickle.dumps(cfg)  # kept, just never displayed


def test_rate_limit_must_be_a_positive_integer():
    for value in (0, -5):
        assert problems(
            InferenceConfig.from_dict, body(rate_limit={"requests_per_minute": value})
        ) == [
            f"[rate_limit] Invalid value [{value}]. [requests_per_minute] must be a positive integer"
        ]
    assert problems(InferenceConfig.from_dict, body(rate_limit={"requests_per_minute": 1.5})) == [
        "field [requests_per_minute] is not of the expected type. The value [1.5] cannot be converted to a [Integer]"
    ]
    assert RateLimit.coerce({"requests_per_minute": 60}) == RateLimit(60) == RateLimit.coerce(60)


def test_missing_url_and_key_reported_together():
    errors = problems(
        InferenceConfig.from_dict, {"service": "hugging_face", "service_settings": {}}
    )
    assert errors == [
        "[service_settings] does not contain the required setting [url]",
        "[service_settings] does not contain the required setting [api_key]",
    ]


@pytest.mark.parametrize("url", ["not a url", "ftp://host/x", "/relative/path", "http://"])
def test_url_must_be_absolute_http(url):
    errors = problems(InferenceConfig.from_dict, body(url=url))
    assert len(errors) == 1 and errors[0].startswith(
        f"[service_settings] Invalid url [{url}] received for field [url]"
    )


def test_unknown_keys_are_named_without_values():
    errors = problems(
        InferenceConfig.from_dict, {**body(model_id="x"), "extra": {"secret": CANARY}}
    )
    assert errors == [
        "Model configuration contains settings [extra] unknown to the [hugging_face] service",
        "Model configuration contains settings [model_id] unknown to the [hugging_face] service",
    ]
    assert all(CANARY not in e for e in errors)


def test_service_must_be_hugging_face():
    assert problems(InferenceConfig.from_dict, {**body(), "service": "openai"}) == [
        "Unknown service [openai]"
    ]
    no_service = body()
    del no_service["service"]
    assert problems(InferenceConfig.from_dict, no_service) == [
        "Inference endpoint configuration is missing the [service] setting"
    ]


def test_similarity_and_positive_optionals():
    errors = problems(
        InferenceConfig.from_dict, body(similarity="manhattan", dimensions=0, max_input_tokens=True)
    )
    assert errors == [
        "[service_settings] Invalid value [manhattan] received. [similarity] must be one of [cosine, dot_product, l2_norm]",
        "[service_settings] Invalid value [0]. [dimensions] must be a positive integer",
        "field [max_input_tokens] is not of the expected type. The value [true] cannot be converted to a [Integer]",
    ]


def test_chunking_problems_join_service_problems():
    errors = problems(
        InferenceConfig.from_dict,
        {**body(url=""), "chunking_settings": {"strategy": "word", "max_chunk_size": 2}},
    )
    assert errors == [
        "[service_settings] Invalid value empty string. [url] must be a non-empty string",
        "[chunking_settings] Invalid value [2]. [max_chunk_size] must be greater than or equal to [10]",
    ]


def test_service_settings_accept_secret_or_plain_key():
    a = ServiceSettings(url="http://127.0.0.1:1/", api_key=SecretStr(CANARY))
    b = ServiceSettings(url="http://127.0.0.1:1/", api_key=CANARY)
    assert a == b and CANARY not in repr(a)

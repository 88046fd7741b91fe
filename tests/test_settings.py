"""Chunking and service settings: Elasticsearch's rules and messages (SPEC A1, A2)."""

import dataclasses
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


@pytest.mark.parametrize("strategy", ["sentence", "word", "recursive"])
@pytest.mark.parametrize("size", [301, 8192, 1_000_000])
def test_max_chunk_size_has_no_upper_bound(strategy, size):
    # Elasticsearch 9.2 removed the cap of 300 words.
    settings = ChunkingSettings.from_dict({"strategy": strategy, "max_chunk_size": size})
    assert settings.max_chunk_size == size


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
    assert repr(s) == "ChunkingSettings(strategy='word', max_chunk_size=50, overlap=25)"
    with pytest.raises(AttributeError):
        s.overlap = 3
    assert (
        repr(ChunkingSettings(strategy="recursive", max_chunk_size=100))
        == "ChunkingSettings(strategy='recursive', max_chunk_size=100, separator_group='plaintext')"
    )
    assert (
        repr(ChunkingSettings(strategy="recursive", max_chunk_size=100, separators=["\n"]))
        == "ChunkingSettings(strategy='recursive', max_chunk_size=100, separators=('\\n',))"
    )


# --- the recursive strategy ---------------------------------------------------

PLAINTEXT = ["(?<!\\n)\\n\\n(?!\\n)", "(?<!\\n)\\n(?!\\n)"]
MARKDOWN = [
    "\n# ",
    "\n## ",
    "\n### ",
    "\n#### ",
    "\n##### ",
    "\n###### ",
    "\n^(?!\\s*$).*\\n-{1,}\\n",
    "\n^(?!\\s*$).*\\n={1,}\\n",
]


def recursive(**settings):
    return {"strategy": "recursive", "max_chunk_size": 100, **settings}


def test_recursive_defaults_to_the_plaintext_group():
    settings = ChunkingSettings.from_dict(recursive())
    assert settings.separator_group == "plaintext"
    assert list(settings.to_dict().items()) == [
        ("strategy", "recursive"),
        ("max_chunk_size", 100),
        ("separators", PLAINTEXT),
    ]


def test_recursive_separator_groups_are_elasticsearchs():
    assert (
        ChunkingSettings.from_dict(recursive(separator_group="markdown")).to_dict()["separators"]
        == MARKDOWN
    )
    assert ChunkingSettings.from_dict(recursive(separator_group="plaintext")).separators == tuple(
        PLAINTEXT
    )


@pytest.mark.parametrize("name", [" Markdown ", "MARKDOWN", "markdown\t", "\nmarkdown"])
def test_separator_group_is_trimmed_and_case_insensitive(name):
    assert ChunkingSettings.from_dict(recursive(separator_group=name)).separator_group == "markdown"


def test_a_groups_separators_written_out_are_that_group():
    by_name = ChunkingSettings.from_dict(recursive(separator_group="markdown"))
    written_out = ChunkingSettings.from_dict(recursive(separators=MARKDOWN))
    assert by_name == written_out and written_out.separator_group == "markdown"
    assert ChunkingSettings.from_dict(by_name.to_dict()) == by_name
    assert dataclasses.replace(by_name, max_chunk_size=20).separator_group == "markdown"


def test_custom_separators_round_trip():
    settings = ChunkingSettings(
        strategy="recursive", max_chunk_size=25, separators=["\n\n", "[.!?] "]
    )
    assert settings.separator_group is None
    assert settings.separators == ("\n\n", "[.!?] ")
    assert settings.to_dict() == {
        "strategy": "recursive",
        "max_chunk_size": 25,
        "separators": ["\n\n", "[.!?] "],
    }
    assert ChunkingSettings.from_dict(settings.to_dict()) == settings


def test_recursive_max_chunk_size_is_required_and_at_least_10():
    assert problems(ChunkingSettings.from_dict, {"strategy": "recursive"}) == [
        "[chunking_settings] does not contain the required setting [max_chunk_size]"
    ]
    assert problems(ChunkingSettings.from_dict, recursive(max_chunk_size=9)) == [
        "[chunking_settings] Invalid value [9]. [max_chunk_size] must be greater than or equal to [10]"
    ]
    alias = {"strategy": "recursive", "max_chunking_size": 10}
    assert ChunkingSettings.from_dict(alias).max_chunk_size == 10


@pytest.mark.parametrize(
    "value,message",
    [
        (
            "html",
            "[chunking_settings] Invalid value [html] received. [separator_group] must be one of [markdown, plaintext]",
        ),
        (
            "",
            "[chunking_settings] Invalid value empty string. [separator_group] must be a non-empty string",
        ),
        (
            5,
            "field [separator_group] is not of the expected type. The value [5] cannot be converted to a [String]",
        ),
    ],
)
def test_bad_separator_group_messages(value, message):
    assert problems(ChunkingSettings.from_dict, recursive(separator_group=value)) == [message]


def test_bad_separators_messages():
    assert problems(ChunkingSettings.from_dict, recursive(separators="\n")) == [
        "field [separators] is not of the expected type. The value [\n] cannot be converted to a [List]"
    ]
    assert problems(ChunkingSettings.from_dict, recursive(separators=["\n", 1, None])) == [
        "field [separators] is not of the expected type. The value [1] cannot be converted to a [String]",
        "field [separators] is not of the expected type. The value [null] cannot be converted to a [String]",
    ]
    assert problems(ChunkingSettings.from_dict, recursive(separators=[])) == [
        "Recursive chunking settings can not have an empty list of separators"
    ]
    assert problems(ChunkingSettings.from_dict, recursive(separators=["x"] * 51)) == [
        "separators list size [51] must not exceed [50]"
    ]
    assert len(ChunkingSettings.from_dict(recursive(separators=["x"] * 50)).separators) == 50


def test_separators_and_group_together_is_an_error():
    assert problems(
        ChunkingSettings.from_dict, recursive(separators=["\n"], separator_group="markdown")
    ) == ["Recursive chunking settings can not have both separators and separator_group"]


def test_recursive_keys_of_other_strategies_are_named():
    assert problems(ChunkingSettings.from_dict, recursive(overlap=5, sentence_overlap=0)) == [
        "Recursive chunking settings can not have the following settings: [overlap, sentence_overlap]"
    ]
    assert problems(ChunkingSettings.from_dict, {"strategy": "word", "separators": ["\n"]}) == [
        "Word based chunking settings can not have the following settings: [separators]"
    ]


def test_every_recursive_problem_is_reported_at_once():
    assert problems(
        ChunkingSettings.from_dict,
        {"strategy": "recursive", "separator_group": "html", "separators": [], "x": 1},
    ) == [
        "Recursive chunking settings can not have the following settings: [x]",
        "[chunking_settings] does not contain the required setting [max_chunk_size]",
        "[chunking_settings] Invalid value [html] received. [separator_group] must be one of [markdown, plaintext]",
        "Recursive chunking settings can not have an empty list of separators",
    ]


def test_a_separator_java_would_reject_is_named():
    assert problems(ChunkingSettings.from_dict, recursive(separators=["\n", "(a", "a{"])) == [
        "Chunk separator regex [(a] is not a valid Java regular expression: Unclosed group near index 2",
        "Chunk separator regex [a{] is not a valid Java regular expression: Illegal repetition near index 2",
    ]


def test_a_separator_that_cannot_be_matched_as_java_does_is_named():
    assert problems(ChunkingSettings.from_dict, recursive(separators=["(?i)chapter"])) == [
        (
            "Chunk separator regex [(?i)chapter] cannot be matched as Elasticsearch matches it: "
            "the inline flag (?i) (case-insensitive matching) is not supported"
        )
    ]


def test_recursive_settings_in_a_put_body():
    cfg = InferenceConfig.from_dict(
        {**body(), "chunking_settings": recursive(max_chunk_size=200, separator_group="markdown")}
    )
    assert cfg.chunking_settings.separator_group == "markdown"
    assert cfg.to_dict()["chunking_settings"] == {
        "strategy": "recursive",
        "max_chunk_size": 200,
        "separators": MARKDOWN,
    }
    assert problems(
        InferenceConfig.from_dict,
        {**body(), "chunking_settings": {"strategy": "recursive", "separators": ["(a"]}},
    ) == [
        "[chunking_settings] does not contain the required setting [max_chunk_size]",
        "Chunk separator regex [(a] is not a valid Java regular expression: Unclosed group near index 2",
    ]


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

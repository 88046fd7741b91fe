"""The client's decisions, without a server or a clock: batch plan, retries, parsing."""

import json
import pickle

import pytest

from hf_endpoint.client._batching import plan_batches
from hf_endpoint.client._protocol import ServerOptions, parse_embeddings, parse_error, request_body
from hf_endpoint.client.retry import (
    Attempt,
    Fail,
    Outcome,
    Retry,
    RetryPolicy,
    Split,
    Success,
    decide,
    read,
    retry_after_seconds,
)
from hf_endpoint.errors import (
    AuthenticationError,
    ConfigError,
    EndpointConnectionError,
    EndpointError,
    EndpointOverloadedError,
    InputRejectedError,
    InputTooLargeError,
    ResponseFormatError,
)

POLICY = RetryPolicy(
    max_retries=3, initial_backoff=1.0, max_backoff=5.0, jitter=0.0, cold_start_timeout=60
)


def outcome(status, body=None, headers=None):
    content = json.dumps(body).encode() if body is not None else b""
    return Outcome(status, {k.lower(): v for k, v in (headers or {}).items()}, content)


def step(o, *, batch_size=2, retries_used=0, cold_waited=0.0, first_index=0):
    attempt = Attempt(
        batch_size=batch_size, first_index=first_index, retries_used=retries_used,
        cold_waited=cold_waited,
    )  # fmt: skip
    return decide(POLICY, attempt, read(o, batch_size), draw=0.5)


# --- batches ----------------------------------------------------------------------


def test_batches_keep_order_and_respect_the_input_count():
    assert plan_batches([1] * 7, [0] * 7, max_inputs=3, max_tokens=100, max_bytes=100) == [
        range(3), range(3, 6), range(6, 7),
    ]  # fmt: skip


def test_batches_respect_bytes_and_tokens():
    assert plan_batches([40, 40, 40], [1, 1, 1], max_inputs=10, max_tokens=10, max_bytes=100) == [
        range(2),
        range(2, 3),
    ]
    assert plan_batches([1, 1, 1], [6, 6, 6], max_inputs=10, max_tokens=12, max_bytes=100) == [
        range(2),
        range(2, 3),
    ]


def test_an_input_over_a_limit_alone_gets_its_own_batch():
    assert plan_batches([1, 500, 1], [0, 0, 0], max_inputs=10, max_tokens=10, max_bytes=100) == [
        range(1), range(1, 2), range(2, 3),
    ]  # fmt: skip


def test_no_inputs_no_batches():
    assert plan_batches([], [], max_inputs=1, max_tokens=1, max_bytes=1) == []


# --- retries ------------------------------------------------------------------------


def test_success_parses_one_row_per_input():
    assert step(outcome(200, [[1.0, 2.0], [3, 4.5]])) == Success([[1.0, 2.0], [3, 4.5]])


@pytest.mark.parametrize("status", [429, 502, 503, 504])
def test_overload_statuses_are_retried_with_doubling_backoff(status):
    waits = [step(outcome(status, {"error": "busy"}), retries_used=n).wait for n in range(3)]
    assert waits == [1.0, 2.0, 4.0]
    assert POLICY.backoff(5, 0.5) == 5.0  # capped


@pytest.mark.parametrize("status", [429, 502, 503, 504])
def test_overload_after_the_last_retry_fails_with_status_and_message(status):
    decision = step(outcome(status, {"error": "busy", "error_type": "overloaded"}), retries_used=3)
    assert isinstance(decision, Fail) and isinstance(decision.error, EndpointOverloadedError)
    assert decision.error.status_code == status and decision.error.error == "busy"


def test_retry_after_is_honoured_when_longer_than_the_backoff():
    assert step(outcome(429, {"error": "x"}, {"Retry-After": "3"})).wait == 3.0
    assert step(outcome(429, {"error": "x"}, {"Retry-After": "0"})).wait == 1.0
    assert retry_after_seconds("Wed, 25 Nov 2026 10:00:30 GMT", now=1795600800.0) == pytest.approx(
        30.0
    )
    assert retry_after_seconds("soon") is None


def test_jitter_stays_within_its_band():
    policy = RetryPolicy(initial_backoff=2.0, jitter=0.25)
    assert policy.backoff(1, 0.0) == 1.5 and policy.backoff(1, 0.999999) == pytest.approx(2.5)


def test_cold_start_waits_as_told_without_using_a_retry():
    decision = step(outcome(503, {"error": "loading", "estimated_time": 12.5}), retries_used=3)
    assert decision == Retry(12.5, cold=True, reason="endpoint is starting")
    assert (
        step(outcome(503, {"error": "loading"}, {"Retry-After": "7"}), retries_used=3).wait == 7.0
    )


def test_cold_start_budget_runs_out():
    assert step(outcome(503, {"error": "loading", "estimated_time": 30}), cold_waited=50).wait == 10
    decision = step(outcome(503, {"error": "loading", "estimated_time": 30}), cold_waited=60)
    assert isinstance(decision.error, EndpointOverloadedError)


@pytest.mark.parametrize("status", [401, 403])
def test_authentication_fails_at_once(status):
    decision = step(outcome(status, {"error": "bad token"}))
    assert isinstance(decision.error, AuthenticationError) and decision.error.status_code == status


def test_413_splits_a_batch_and_names_a_single_input():
    assert step(outcome(413, {"error": "too big"}), batch_size=4) == Split()
    decision = step(outcome(413, {"error": "too big"}), batch_size=1, first_index=17)
    assert isinstance(decision.error, InputTooLargeError) and decision.error.index == 17
    assert "input [17]" in str(decision.error)


# TEI v1.9.3's messages: router/src/http/server.rs (the batch size) and core/src/tokenization.rs
# (tokens; characters before tokenizing), answered 422 with error_type "Validation".
TEI_BATCH = {"error": "batch size 40 > maximum allowed batch size 32", "error_type": "Validation"}
TEI_TOKENS = {
    "error": "`inputs` must have less than 512 tokens. Given: 600",
    "error_type": "Validation",
}
TEI_CHARS = {
    "error": "`inputs` must have less than 10240 characters. Given: 12000",
    "error_type": "Validation",
}
# Infinity 0.0.78 (FastAPI, pydantic): a string over its 122,880 characters.
INFINITY_CHARS = {
    "detail": [
        {
            "type": "string_too_long",
            "loc": ["body", "text", "input", "list[constrained-str]", 0],
            "msg": "String should have at most 122880 characters",
        }
    ]
}
VLLM_CONTEXT = {
    "error": {
        "message": "This model's maximum context length is 512 tokens. However, you requested "
        "600 tokens in the input for embedding generation. Please reduce the length of the input.",
        "type": "BadRequestError",
        "code": 400,
    }
}


@pytest.mark.parametrize(
    "status, body",
    [
        (422, TEI_BATCH),
        (422, TEI_TOKENS),
        (422, TEI_CHARS),
        (400, VLLM_CONTEXT),
        (422, INFINITY_CHARS),
        (413, TEI_TOKENS),
    ],
)
def test_a_batch_refused_for_its_size_is_split_before_and_after_tei_1_9(status, body):
    assert step(outcome(status, body), batch_size=4) == Split()


@pytest.mark.parametrize(
    "status, body",
    [
        (422, TEI_TOKENS),
        (422, TEI_CHARS),
        (400, VLLM_CONTEXT),
        (422, INFINITY_CHARS),
        (413, TEI_TOKENS),
    ],
)
def test_a_single_input_refused_as_too_long_is_named_before_and_after_tei_1_9(status, body):
    decision = step(outcome(status, body), batch_size=1, first_index=9)
    assert isinstance(decision.error, InputTooLargeError) and decision.error.index == 9
    said = parse_error(json.dumps(body).encode()).error
    assert decision.error.errors == [f"input [9] was refused by the endpoint as too large: {said}"]


@pytest.mark.parametrize("batch_size, named", [(1, "input [5]"), (3, "inputs [5..7]")])
def test_another_422_names_the_inputs_of_the_request(batch_size, named):
    body = {
        "error": "`prompt_name` is set to `q` but no prompts were found",
        "error_type": "Validation",
    }
    decision = step(outcome(422, body), batch_size=batch_size, first_index=5)
    assert isinstance(decision.error, InputRejectedError)
    assert decision.error.indices == range(5, 5 + batch_size)
    assert str(decision.error) == (
        f"HTTP 422 (Validation) from the endpoint for {named}: `prompt_name` is set to `q` but "
        "no prompts were found"
    )


def test_a_batch_size_refusal_on_one_input_is_not_taken_for_a_long_input():
    decision = step(outcome(422, TEI_BATCH), batch_size=1, first_index=2)
    assert type(decision.error) is InputRejectedError


@pytest.mark.parametrize(
    "body, error, error_type",
    [
        (VLLM_CONTEXT, VLLM_CONTEXT["error"]["message"], "BadRequestError"),
        # TEI's /v1/embeddings: router/src/http/server.rs OpenAICompatErrorResponse
        (
            {"message": "batch too big", "code": 422, "type": "Validation"},
            "batch too big",
            "Validation",
        ),
        ({"detail": "Model not found"}, "Model not found", None),
        (
            {"detail": [{"loc": ["body", "input"], "msg": "Field required", "type": "missing"}]},
            "body.input: Field required",
            None,
        ),
    ],
)
def test_openai_and_fastapi_error_bodies_are_read(body, error, error_type):
    server = parse_error(json.dumps(body).encode())
    assert (server.error, server.error_type) == (error, error_type)


@pytest.mark.parametrize("status", [404, 424, 500])
def test_other_errors_fail_at_once_with_the_servers_message(status):
    decision = step(outcome(status, {"error": "nope", "error_type": "validation"}))
    assert type(decision.error) is EndpointError
    assert decision.error.status_code == status and decision.error.error == "nope"
    assert decision.error.error_type == "validation"


def test_transport_errors_are_retried_then_fail_as_connection_errors():
    assert isinstance(step(Outcome(transport_error="ReadTimeout")), Retry)
    decision = step(Outcome(transport_error="ConnectError"), retries_used=3)
    assert isinstance(decision.error, EndpointConnectionError) and isinstance(
        decision.error, ConnectionError
    )


def test_unparsable_body_is_retried_but_a_wrong_shape_is_not():
    assert isinstance(step(Outcome(200, {}, b"<html>oops</html>")), Retry)
    assert isinstance(
        step(Outcome(200, {}, b"<html>oops</html>"), retries_used=3).error, ResponseFormatError
    )
    assert isinstance(step(outcome(200, [[1.0]]), batch_size=2).error, ResponseFormatError)


def test_error_bodies_that_are_not_json_are_quoted():
    assert parse_error(b"upstream connect error").error == "upstream connect error"
    assert parse_error(b"").error == "(empty body)"
    assert parse_error(b'{"error": ["a", "b"]}').error == "a; b"


# --- parsing ------------------------------------------------------------------------


def test_both_response_shapes_are_read():
    assert parse_embeddings(b"[[1.0, 2.0]]", 1) == [[1.0, 2.0]]
    assert parse_embeddings(b'{"embeddings": [[1.0, 2.0]]}', 1) == [[1.0, 2.0]]


@pytest.mark.parametrize(
    "body,message",
    [
        (b"[[1.0], [2.0]]", "expected 3 vectors, one per input, received 2"),
        (b"[[1.0], [2.0, 3.0], [4.0]]", "vectors have different lengths: [0] has 1, [1] has 2"),
        (b"[[[1.0], [2.0]], [[1.0]], [[1.0]]]", "token-level output"),
        (b'[[1.0], ["2"], [3.0]]', 'vector [1] holds a value that is not a number: "2"'),
        (b"[[1.0], [true], [3.0]]", "vector [1] holds a value that is not a number: true"),
        (b"[[1.0], [], [3.0]]", "vector [1] is not a non-empty list"),
        (b'{"vectors": []}', "expected a list of vectors"),
        (b"not json", "the response is not JSON"),
    ],
)
def test_wrong_answers_name_what_was_received(body, message):
    with pytest.raises(ResponseFormatError) as info:
        parse_embeddings(body, 3)
    assert message in str(info.value)


def test_request_body_always_has_a_list_and_only_options_that_are_set():
    assert json.loads(request_body(["a"], ServerOptions())) == {"inputs": ["a"]}
    assert json.loads(request_body(["a", "b"], ServerOptions(truncate=True, prompt_name="query"))) == {
        "inputs": ["a", "b"], "truncate": True, "prompt_name": "query",
    }  # fmt: skip
    with pytest.raises(ValueError, match="truncation_direction"):
        ServerOptions(truncation_direction="Up")


# --- token estimates --------------------------------------------------------------------


def test_token_counts_come_from_tiktoken():
    from hf_endpoint.client._batching import TokenCounter

    assert TokenCounter().count("hello world") == 2


def test_token_estimates_need_no_download(monkeypatch):
    # The encoding ships in the package: tiktoken's loader (which downloads) is never asked.
    import tiktoken
    import tiktoken.load

    from hf_endpoint.client._batching import TokenCounter

    def online(*args, **kwargs):
        raise AssertionError("tiktoken tried to fetch an encoding")

    monkeypatch.setattr(tiktoken, "get_encoding", online)
    monkeypatch.setattr(tiktoken.load, "read_file", online)
    monkeypatch.setattr(TokenCounter, "_encoding", None)
    assert TokenCounter().count("hello world") == 2


def test_an_attempt_after_a_retry_counts_it_and_after_a_cold_wait_adds_the_seconds():
    first = Attempt(batch_size=2, retry_connect=False)
    refused = Outcome(transport_error="ConnectError")
    assert isinstance(step(refused, retries_used=0), Retry)  # retried once anything answered
    assert isinstance(decide(POLICY, first, read(refused, 2), draw=0.5), Fail)  # first contact
    busy = first.after(Retry(1.5, reason="HTTP 429"), outcome(429, {"error": "busy"}))
    assert (busy.retries_used, busy.cold_waited, busy.retry_connect) == (1, 0.0, True)
    cold = busy.after(Retry(7.0, cold=True), outcome(503, {"error": "loading"}))
    assert (cold.retries_used, cold.cold_waited) == (1, 7.0)
    lost = first.after(Retry(1.0, reason="ReadTimeout"), Outcome(transport_error="ReadTimeout"))
    assert (lost.retries_used, lost.retry_connect) == (1, False)  # nothing answered yet


@pytest.mark.parametrize(
    "error",
    [
        ConfigError(["[a] wrong", "[b] wrong"]),
        InputTooLargeError(3, "is too large"),
        EndpointError(500, "boom", "backend"),
        AuthenticationError(401, "no", token="the token from HF_TOKEN"),
        InputRejectedError(422, "bad prompt", "validation", range(4, 9)),
        EndpointOverloadedError(429, "busy"),
        EndpointConnectionError("no answer from http://127.0.0.1:1 after 1 attempt"),
        ResponseFormatError("not a vector"),
    ],
    ids=lambda e: type(e).__name__,
)
def test_every_error_pickles_back_with_its_message_and_attributes(error):
    # Errors cross processes (Ray tasks, multiprocessing, an event log pickled with an
    # adapter), though their constructors do not take their message.
    copy = pickle.loads(pickle.dumps(error))
    assert type(copy) is type(error) and str(copy) == str(error) and copy.args == error.args
    assert vars(copy) == vars(error)

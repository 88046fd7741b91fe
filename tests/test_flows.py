"""The client's flows driven with scripted outcomes: no server, no clock."""

import orjson
import pytest

from hf_endpoint.client._flows import (
    Batch,
    Gate,
    Halved,
    Send,
    ServerLimits,
    Slot,
    Wait,
    discovery_flow,
    embed_flow,
    info_url,
    request_tail,
)
from hf_endpoint.client.retry import Outcome, RetryPolicy
from hf_endpoint.errors import (
    AuthenticationError,
    EndpointConnectionError,
    InputTooLargeError,
    ResponseFormatError,
)

URL = "http://127.0.0.1:9/embed"
OPENAI_URL = "http://127.0.0.1:9/v1/embeddings"
POLICY = RetryPolicy(max_retries=2, initial_backoff=1.0, max_backoff=4.0, jitter=0.0)


def batch(texts, tail=b"}"):
    return Batch(range(len(texts)), [orjson.dumps(t) for t in texts], tail, 1000)


def ok(rows):
    return Outcome(200, {}, orjson.dumps(rows))


def status(code, body=b'{"error": "busy"}', headers=None):
    return Outcome(code, headers or {}, body)


def drive(flow, answer):
    """Run ``flow``; ``answer(send)`` gives the outcome of each send. Returns (steps, result)."""
    steps = []
    reply = None
    try:
        while True:
            step = flow.send(reply)
            steps.append(step)
            reply = answer(step) if isinstance(step, Send) else None
    except StopIteration as done:
        return steps, done.value


def scripted(*outcomes):
    queue = list(outcomes)
    return lambda step: queue.pop(0)


def kinds(steps):
    return [type(s).__name__ for s in steps]


def test_every_attempt_passes_the_gate_and_takes_a_slot_before_it_is_sent():
    flow = embed_flow(URL, batch(["a", "b"]), POLICY, lambda: 0.5)
    steps, rows = drive(flow, scripted(status(429), ok([[1.0], [2.0]])))
    assert kinds(steps) == ["Gate", "Slot", "Send", "Wait", "Gate", "Slot", "Send"]
    assert rows == [[1.0], [2.0]]
    assert steps[3] == Wait(1.0, False, "HTTP 429")


def test_the_body_is_the_encoded_inputs_and_the_options():
    tail = request_tail({"normalize": False, "prompt_name": "query"})
    flow = embed_flow(URL, batch(["x", 'say "hi"'], tail), POLICY, lambda: 0.5)
    steps, _ = drive(flow, scripted(ok([[1.0], [2.0]])))
    send = steps[2]
    assert orjson.loads(send.body) == {
        "inputs": ["x", 'say "hi"'],
        "normalize": False,
        "prompt_name": "query",
    }
    assert (send.method, send.url, send.max_bytes) == ("POST", URL, 65_536 + 2 * 1000)


def test_413_on_several_inputs_sends_each_half_and_keeps_the_order():
    flow = embed_flow(URL, batch(["a", "b", "c"]), POLICY, lambda: 0.5)
    steps, rows = drive(flow, scripted(status(413), ok([[1.0]]), ok([[2.0], [3.0]])))
    assert Halved(3) in steps
    bodies = [orjson.loads(s.body)["inputs"] for s in steps if isinstance(s, Send)]
    assert bodies == [["a", "b", "c"], ["a"], ["b", "c"]]
    assert rows == [[1.0], [2.0], [3.0]]


def test_413_on_one_input_names_it():
    flow = embed_flow(URL, Batch([4], [b'"a"'] * 5, b"}", 1000), POLICY, lambda: 0.5)
    with pytest.raises(InputTooLargeError) as info:
        drive(flow, scripted(status(413, b'{"error": "too long"}')))
    assert info.value.index == 4


def test_a_cold_start_is_waited_out_without_counting_as_a_retry():
    flow = embed_flow(URL, batch(["a"]), POLICY, lambda: 0.5)
    cold = status(503, b'{"error": "loading", "estimated_time": 7}')
    steps, _ = drive(flow, scripted(cold, cold, cold, status(429), status(429), ok([[1.0]])))
    waits = [s for s in steps if isinstance(s, Wait)]
    assert [w.cold for w in waits] == [True, True, True, False, False]
    assert waits[0].seconds == 7


def test_retries_end_with_the_last_status():
    flow = embed_flow(URL, batch(["a"]), POLICY, lambda: 0.5)
    with pytest.raises(Exception, match="HTTP 502"):
        drive(flow, scripted(status(502), status(502), status(502)))


def test_a_connection_error_names_the_url():
    flow = embed_flow(URL, batch(["a"]), POLICY, lambda: 0.5)
    refused = Outcome(transport_error="ReadError", detail="connection reset")
    with pytest.raises(EndpointConnectionError, match=URL) as info:
        drive(flow, scripted(refused, refused, refused))
    assert "3 attempts" in str(info.value) and "connection reset" in str(info.value)


def test_the_first_contact_fails_at_once_when_nothing_answers():
    flow = embed_flow(URL, batch(["a"]), POLICY, lambda: 0.5, retry_connect=False)
    refused = Outcome(transport_error="ConnectError", detail="[Errno 111] Connection refused")
    steps = []

    def answer(step):
        steps.append(step)
        return refused

    with pytest.raises(EndpointConnectionError, match="after 1 attempt"):
        drive(flow, answer)
    assert len(steps) == 1


def test_an_oversized_answer_is_refused():
    flow = embed_flow(URL, batch(["a"]), POLICY, lambda: 0.5)
    with pytest.raises(ResponseFormatError, match="max_response_bytes"):
        drive(flow, scripted(Outcome(200, {}, b"", oversize=True)))


def test_discovery_reads_the_limits_and_settles_them():
    info = {"max_client_batch_size": 8, "max_batch_tokens": 4096, "max_input_length": 256,
            "model_id": "m"}  # fmt: skip
    steps, (limits, settled) = drive(discovery_flow(URL, first_contact=True), scripted(ok(info)))
    assert kinds(steps) == ["Gate", "Slot", "Send"]
    assert steps[2].url == "http://127.0.0.1:9/info" and steps[2].method == "GET"
    assert limits == ServerLimits(8, 4096, 256, "m", tei=True) and settled


def test_openai_discovery_reads_the_model_of_v1_models():
    models = {"object": "list", "data": [{"id": "BAAI/bge-small"}]}
    flow = discovery_flow(OPENAI_URL, first_contact=True, openai=True)
    steps, (limits, settled) = drive(flow, scripted(ok(models)))
    assert [s.url for s in steps if kinds([s]) == ["Send"]] == ["http://127.0.0.1:9/v1/models"]
    assert limits == ServerLimits(model_id="BAAI/bge-small") and settled


def test_openai_discovery_without_v1_models_asks_tei_info_at_the_root():
    info = {"max_client_batch_size": 32, "max_input_length": 512, "auto_truncate": True}
    flow = discovery_flow(OPENAI_URL, first_contact=True, openai=True)
    steps, (limits, settled) = drive(flow, scripted(status(404), ok(info)))
    assert kinds(steps) == ["Gate", "Slot", "Send", "Gate", "Slot", "Send"]
    assert [steps[2].url, steps[5].url] == [
        "http://127.0.0.1:9/v1/models",
        "http://127.0.0.1:9/info",
    ]
    assert limits == ServerLimits(32, None, 512, tei=True, auto_truncate=True) and settled


@pytest.mark.parametrize("outcome", [status(503), Outcome(transport_error="ReadTimeout")])
def test_discovery_of_a_starting_endpoint_settles_nothing(outcome):
    _, (limits, settled) = drive(discovery_flow(URL, first_contact=True), scripted(outcome))
    assert limits == ServerLimits() and not settled


def test_discovery_on_first_contact_fails_at_once_naming_the_url():
    refused = Outcome(transport_error="ConnectError", detail="[Errno 111] Connection refused")
    with pytest.raises(EndpointConnectionError, match="cannot connect to " + URL):
        drive(discovery_flow(URL, first_contact=True), scripted(refused))


def test_discovery_with_a_wrong_key_is_an_authentication_error():
    with pytest.raises(AuthenticationError):
        drive(discovery_flow(URL, first_contact=True), scripted(status(401)))


def test_slot_and_gate_come_before_the_send():
    steps, _ = drive(discovery_flow(URL, first_contact=False), scripted(ok({})))
    assert steps[:2] == [Gate(), Slot()]


@pytest.mark.parametrize(
    ("url", "info"),
    [
        ("http://h:1", "http://h:1/info"),
        ("http://h:1/", "http://h:1/info"),
        ("http://h:1/embed", "http://h:1/info"),
        ("http://h:1/rerank", "http://h:1/info"),
        ("https://h/v1/embed?token=x", "https://h/v1/info?token=x"),
    ],
)
def test_info_is_asked_beside_the_route(url, info):
    assert info_url(url) == info

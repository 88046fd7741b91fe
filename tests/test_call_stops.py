"""A call whose batch fails for good stops its other batches: nothing goes on after the error.

The endpoint answers 503 (retried, after a backoff of a minute) to every batch but one, and
422 to that one once the others have had their 503. The call must raise the 422 at once, with
its other batches neither retried nor left waiting in the background.
"""

import asyncio
import json
import threading

import pytest

from hf_endpoint import EmbeddingClient, InputRejectedError
from hf_endpoint.client.retry import RetryPolicy

from .endpoints import raw_endpoint, reply

# A minute before each retry: a batch that was not stopped would be seen still waiting.
SLOW_RETRIES = RetryPolicy(max_retries=5, initial_backoff=60, max_backoff=60, jitter=0)
TEXTS = ["first", "second", "refused", "fourth"]


class OneRefused:
    """503 to every batch but the one holding "refused", which gets 422 after the others."""

    def __init__(self):
        self.requests = 0
        self.lock = threading.Lock()
        self.others_answered = threading.Semaphore(0)

    def __call__(self, handler, body):
        with self.lock:
            self.requests += 1
        if "refused" in json.loads(body)["inputs"]:
            for _ in range(len(TEXTS) - 1):
                self.others_answered.acquire(timeout=30)
            error = {"error": "tokenizer error", "error_type": "Tokenizer"}
            reply(handler, 422, json.dumps(error).encode())
            return
        reply(handler, 503, b'{"error": "overloaded", "error_type": "Unhealthy"}')
        self.others_answered.release()


def client(url):
    return EmbeddingClient(
        url, None, batch_size=1, max_concurrency=4, retry_policy=SLOW_RETRIES,
        rate_limit=10_000_000, discover_limits=False,
    )  # fmt: skip


def client_threads():
    return [t for t in threading.enumerate() if t.name.startswith("hf-endpoint-client")]


def test_a_failed_batch_stops_the_other_batches_of_a_sync_call(caplog):
    server = OneRefused()
    with raw_endpoint(server) as url:
        c = client(url)
        with pytest.raises(InputRejectedError) as info:
            c.embed(TEXTS)
        sent = server.requests
        retry_lines = [r for r in caplog.records if "retrying" in r.getMessage()]
        c.close()
        for thread in client_threads():
            thread.join(timeout=30)  # a batch still waiting out its backoff would hold its thread
        assert not [t for t in client_threads() if t.is_alive()]
        assert server.requests == sent == len(TEXTS)  # one attempt each, no retry
    assert info.value.indices == range(2, 3)
    assert [r for r in caplog.records if "retrying" in r.getMessage()] == retry_lines


def test_a_failed_batch_stops_the_other_batches_of_an_async_call():
    server = OneRefused()

    async def call(c):
        with pytest.raises(InputRejectedError):
            await c.aembed(TEXTS)
        # Every task of the call has ended by the time the caller has the error.
        return [t for t in asyncio.all_tasks() if t is not asyncio.current_task()]

    with raw_endpoint(server) as url, client(url) as c:
        assert asyncio.run(call(c)) == []
        assert server.requests == len(TEXTS)

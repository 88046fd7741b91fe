"""Tokenization threads, the batching queue and the model thread of the local endpoint.

The shape is TEI's (core/src/tokenization.rs, core/src/queue.rs, core/src/infer.rs):

* each request's texts are validated and tokenized on a tokenizer thread that owns its
  tokenizer instance (TEI clones the tokenizer into every tokenization worker); a Hugging
  Face tokenizer keeps truncation and padding state, so one instance shared by two
  threads races;
* tokenized inputs wait in one queue; batches are cut from it in arrival order, input by
  input, within ``max_batch_tokens`` counted as a padded batch (longest input times
  inputs) and ``max_batch_requests``;
* only the model thread runs the model. One batch runs while the next one waits, already
  padded, behind it, so the device never waits for the event loop.

All queue state lives on the event loop's thread; the model thread receives an immutable
:class:`Batch` and returns rows; tokenizer threads share nothing but read-only settings.
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
import itertools
import logging
import os
import threading
import time
from collections import deque
from collections.abc import Callable, Sequence
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass
from typing import Any, TypeVar

import numpy as np

from ._protocol import ErrorType, Input, TEIError
from .backends import Backend, Batch, Rows, Tokenizer
from .faults import Stats

__all__ = ["Embedded", "Engine", "default_tokenization_workers"]

logger = logging.getLogger(__name__)

T = TypeVar("T")

# core/src/tokenization.rs: inputs longer than max_input_length * 250 characters are
# refused (or cut, with truncate) before they reach the tokenizer.
MAX_CHAR_MULTIPLIER = 250


def default_tokenization_workers() -> int:
    """TEI's default (router/src/lib.rs): one less than the CPUs, at least 1, at most 64."""
    return min(max((os.cpu_count() or 1) - 1, 1), 64)


def _cut(text: str, limit: int) -> str:
    """Rust's ``String::truncate(limit)`` guarded by ``is_char_boundary``, as TEI applies it:
    a byte limit, and no cut at all when it would split a character."""
    data = text.encode("utf-8", "surrogatepass")
    if limit < len(data) and (data[limit] & 0xC0) != 0x80:
        return data[:limit].decode("utf-8", "surrogatepass")
    return text


class _Permits:
    """TEI's ``max_concurrent_requests`` semaphore, counted in inputs (core/src/infer.rs).

    A single-input request that finds none free is answered 429; a batch waits for its
    inputs' permits, taken all at once and in arrival order.
    """

    def __init__(self, total: int) -> None:
        self.total = total
        self.free = total
        self._waiting: deque[tuple[int, asyncio.Future[None]]] = deque()

    def try_acquire(self, n: int) -> bool:
        n = min(n, self.total)
        while self._waiting and self._waiting[0][1].done():  # gone before they were granted
            self._waiting.popleft()
        if self.free >= n and not self._waiting:
            self.free -= n
            return True
        return False

    async def acquire(self, n: int) -> None:
        n = min(n, self.total)
        if self.try_acquire(n):
            return
        waiter = asyncio.get_running_loop().create_future()
        self._waiting.append((n, waiter))
        try:
            await waiter
        except asyncio.CancelledError:
            if waiter.done() and not waiter.cancelled():
                self.release(n)  # granted just as the request went away
            raise

    def release(self, n: int) -> None:
        self.free += min(n, self.total)
        while self._waiting and self.free >= self._waiting[0][0]:
            need, waiter = self._waiting.popleft()
            if not waiter.done():
                self.free -= need
                waiter.set_result(None)


@dataclass(eq=False)
class _Job:
    """One request's inputs in the queue; its rows may come back in several batches."""

    encodings: list[Any]
    done: asyncio.Future[Rows]
    queued: float
    started: float | None = None  # when its first input went to the model
    taken: int = 0
    rows: Rows | None = None
    filled: int = 0


@dataclass(frozen=True)
class Embedded:
    """Pooled rows (not normalised), one per input, and where the time went."""

    rows: Rows
    queue_seconds: float
    inference_seconds: float


class Engine:
    """Validates, tokenizes and embeds for the routes of one server."""

    def __init__(
        self,
        backend: Backend,
        stats: Stats,
        *,
        max_input_length: int,
        max_batch_tokens: int,
        max_batch_requests: int | None = None,
        max_concurrent_requests: int = 512,
        tokenization_workers: int = 1,
    ) -> None:
        self.backend = backend
        self.stats = stats
        self.max_input_length = max_input_length
        self.max_batch_tokens = max_batch_tokens
        self.max_batch_requests = max_batch_requests
        self.tokenization_workers = tokenization_workers
        self.permits = _Permits(max_concurrent_requests)
        self._local = threading.local()
        self._queue: deque[_Job] = deque()
        self._wake = asyncio.Event()
        self._model: ThreadPoolExecutor | None = None
        self._tokenizers: ThreadPoolExecutor | None = None
        self._task: asyncio.Task[None] | None = None

    # -- lifecycle -----------------------------------------------------------------

    async def start(self) -> None:
        self._model = ThreadPoolExecutor(1, thread_name_prefix="hf-endpoint-model")
        self._tokenizers = ThreadPoolExecutor(
            self.tokenization_workers, thread_name_prefix="hf-endpoint-tokenizer"
        )
        await asyncio.get_running_loop().run_in_executor(self._model, self.backend.load)
        self._task = asyncio.create_task(self._batching())

    async def close(self) -> None:
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
        for executor in (self._model, self._tokenizers):
            if executor is not None:
                executor.shutdown(wait=False, cancel_futures=True)

    # -- tokenization (tokenizer threads) --------------------------------------------------

    def _tokenizer(self) -> Tokenizer:
        """This thread's own tokenizer instance."""
        tokenizer: Tokenizer | None = getattr(self._local, "tokenizer", None)
        if tokenizer is None:
            tokenizer = self._local.tokenizer = self.backend.tokenizer()
        return tokenizer

    async def _on_tokenizer(self, fn: Callable[..., T], *args: Any) -> T:
        assert self._tokenizers is not None, "start() first"
        loop = asyncio.get_running_loop()
        try:
            return await loop.run_in_executor(self._tokenizers, functools.partial(fn, *args))
        except TEIError:
            raise
        except Exception as exc:  # the tokenizer itself failed: TEI's 422 Tokenizer
            raise TEIError.core(ErrorType.TOKENIZER, str(exc)) from exc

    def _prompt(self, prompt_name: str | None) -> tuple[str, TEIError | None]:
        """The prompt to prepend, or the error TEI gives for the name (core/src/tokenization.rs,
        ``prepare_pre_prompt``)."""
        if prompt_name is None:
            return "", None
        prompts = self.backend.prompts
        if prompts is None:
            return "", TEIError.core(
                ErrorType.VALIDATION,
                f"`default-prompt-name` is set to `{prompt_name}` but no prompts were found "
                "in the Sentence Transformers configuration",
            )
        if prompt_name not in prompts:
            names = ", ".join(f'"{name}"' for name in prompts)
            return "", TEIError.core(
                ErrorType.VALIDATION,
                f"`default-prompt-name` is set to `{prompt_name}` but it was not found in the "
                f"Sentence Transformers prompts. Available prompts: [{names}]",
            )
        return prompts[prompt_name], None

    def _prepare(
        self,
        inputs: Sequence[Input],
        prompt_name: str | None,
        *,
        cut: bool,
        allow_empty: bool,
    ) -> tuple[list[tuple[str, bool]], TEIError | None]:
        """TEI's checks before tokenizing, input by input: empty, prompt, characters (a token
        id counts as one).

        Returns ``(text, add_special_tokens)`` for the inputs up to the first one refused,
        and that refusal. Token ids become text as core/src/tokenization.rs
        ``tokenize_input`` makes them: decoded with their special tokens and encoded without
        adding any; with a prompt, decoded without them and encoded with them.
        """
        prompt, prompt_error = self._prompt(prompt_name)
        limit = self.max_input_length * MAX_CHAR_MULTIPLIER
        ready: list[tuple[str, bool]] = []
        for item in inputs:
            if not item and not allow_empty:
                return ready, TEIError.core(ErrorType.EMPTY, "`inputs` cannot be empty")
            if prompt_error is not None:
                return ready, prompt_error
            if len(item) > limit:
                if not cut:
                    return ready, TEIError.core(
                        ErrorType.VALIDATION,
                        f"`inputs` must have less than {limit} characters. Given: {len(item)}",
                    )
                if isinstance(item, str):  # TEI's apply_limit leaves token ids as they are
                    item = _cut(item, limit)
            if isinstance(item, str):
                ready.append((prompt + item, True))
            else:
                text = self._tokenizer().decode(item, skip_special_tokens=bool(prompt_name))
                ready.append((prompt + text, bool(prompt_name)))
        return ready, None

    def _encode(
        self,
        inputs: Sequence[Input],
        truncate: bool,
        left: bool,
        prompt_name: str | None,
        allow_empty: bool,
    ) -> list[Any]:
        """core/src/tokenization.rs ``encode_input``: the first refusal in input order wins."""
        ready, refusal = self._prepare(inputs, prompt_name, cut=truncate, allow_empty=allow_empty)
        limit = self.max_input_length
        tokenizer = self._tokenizer()
        encodings: list[Any] = []
        for special, run in itertools.groupby(ready, key=lambda pair: pair[1]):
            encodings += tokenizer.encode(
                [text for text, _ in run],
                add_special_tokens=special,
                max_length=limit if truncate else None,
                left=left,
            )
        for encoding in encodings:
            if len(encoding) > limit:
                raise TEIError.core(
                    ErrorType.VALIDATION,
                    f"`inputs` must have less than {limit} tokens. Given: {len(encoding)}",
                )
        if refusal is not None:
            raise refusal
        return encodings

    async def encode(
        self,
        texts: Sequence[Input],
        *,
        truncate: bool,
        left: bool = False,
        prompt_name: str | None = None,
        allow_empty: bool = False,
    ) -> list[Any]:
        """Validated, tokenized inputs, or the :class:`TEIError` TEI answers."""
        return await self._on_tokenizer(
            self._encode, texts, truncate, left, prompt_name, allow_empty
        )

    def _tokenize(
        self, texts: Sequence[str], add_special_tokens: bool, prompt_name: str | None
    ) -> list[tuple[str, Any]]:
        ready, refusal = self._prepare(texts, prompt_name, cut=False, allow_empty=False)
        if refusal is not None:
            raise refusal
        prompted = [text for text, _ in ready]
        encodings = self._tokenizer().encode(prompted, add_special_tokens=add_special_tokens)
        return list(zip(prompted, encodings))

    async def tokenize(
        self, texts: Sequence[str], *, add_special_tokens: bool, prompt_name: str | None
    ) -> list[tuple[str, Any]]:
        """``(text with its prompt, encoding)`` per input, untruncated (``POST /tokenize``)."""
        return await self._on_tokenizer(self._tokenize, texts, add_special_tokens, prompt_name)

    def _check_pairs(self, query: str, texts: Sequence[str], truncate: bool) -> None:
        """What TEI checks for a (query, text) pair before a cross-encoder sees it
        (core/src/tokenization.rs with ``EncodingInput::Dual``)."""
        limit = self.max_input_length
        chars = limit * MAX_CHAR_MULTIPLIER
        tokenizer = self._tokenizer()
        for text in texts:
            if not query and not text:
                raise TEIError.core(ErrorType.EMPTY, "`inputs` cannot be empty")
            given = len(query) + len(text)
            if given > chars and not truncate:
                raise TEIError.core(
                    ErrorType.VALIDATION,
                    f"`inputs` must have less than {chars} characters. Given: {given}",
                )
            if not truncate and (n := tokenizer.pair_length(query, text)) > limit:
                raise TEIError.core(
                    ErrorType.VALIDATION, f"`inputs` must have less than {limit} tokens. Given: {n}"
                )

    async def check_pairs(self, query: str, texts: Sequence[str], *, truncate: bool) -> None:
        await self._on_tokenizer(self._check_pairs, query, texts, truncate)

    # -- inference (model thread) -------------------------------------------------------------

    async def embed(self, encodings: list[Any]) -> Embedded:
        """Pooled rows (not normalised), one per encoding, in order."""
        job = _Job(encodings, asyncio.get_running_loop().create_future(), time.monotonic())
        self._queue.append(job)
        self._wake.set()
        rows = await job.done
        started = job.started if job.started is not None else job.queued
        return Embedded(rows, started - job.queued, time.monotonic() - started)

    def _next_batch(self) -> list[tuple[_Job, int, int]]:
        """TEI's ``Queue::next_batch`` for a padded model: inputs in arrival order while
        (longest input) x (inputs) stays within ``max_batch_tokens``."""
        parts: list[tuple[_Job, int, int]] = []
        count = width = 0
        full = False
        while self._queue and not full:
            job = self._queue[0]
            if job.done.done():  # the client went away, or another part failed
                self._queue.popleft()
                continue
            start = end = job.taken
            while end < len(job.encodings):
                wider = max(width, len(job.encodings[end]))
                if count and (
                    wider * (count + 1) > self.max_batch_tokens or count == self.max_batch_requests
                ):
                    full = True
                    break
                width, count, end = wider, count + 1, end + 1
            if end > start:
                parts.append((job, start, end))
                job.taken = end
                if job.started is None:
                    job.started = time.monotonic()
            if job.taken == len(job.encodings):
                self._queue.popleft()
        return parts

    async def _batching(self) -> None:
        assert self._model is not None
        loop = asyncio.get_running_loop()
        # Two slots: one batch on the model thread, the next one padded and waiting.
        slots = asyncio.Semaphore(2)
        while True:
            await slots.acquire()
            parts = self._next_batch()
            while not parts:
                self._wake.clear()
                await self._wake.wait()
                parts = self._next_batch()
            encodings = [e for job, start, end in parts for e in job.encodings[start:end]]
            self.stats.batched(len(encodings))
            future = self._model.submit(self.backend.embed, Batch.collate(encodings))
            future.add_done_callback(functools.partial(self._delivered, loop, parts, slots))

    def _delivered(
        self,
        loop: asyncio.AbstractEventLoop,
        parts: list[tuple[_Job, int, int]],
        slots: asyncio.Semaphore,
        future: Future[Rows],
    ) -> None:
        """On the model thread: hand the rows to the event loop."""
        with contextlib.suppress(RuntimeError):  # the loop closed while the server stopped
            loop.call_soon_threadsafe(self._deliver, parts, future, slots)

    def _deliver(
        self, parts: list[tuple[_Job, int, int]], future: Future[Rows], slots: asyncio.Semaphore
    ) -> None:
        slots.release()
        error = future.exception() if not future.cancelled() else asyncio.CancelledError()
        if error is not None:
            logger.error("the model failed on a batch: %s", error, exc_info=error)
            failure = TEIError.core(ErrorType.BACKEND, f"Inference error: {error}")
            for job, _, _ in parts:
                if not job.done.done():
                    job.done.set_exception(failure)
            return
        rows = future.result()
        offset = 0
        for job, start, end in parts:
            n = end - start
            if not job.done.done():
                if start == 0 and end == len(job.encodings):  # the common case: no copy
                    job.done.set_result(rows[offset : offset + n])
                else:
                    if job.rows is None:
                        job.rows = np.empty((len(job.encodings), rows.shape[1]), rows.dtype)
                    job.rows[start:end] = rows[offset : offset + n]
                    job.filled += n
                    if job.filled == len(job.encodings):
                        job.done.set_result(job.rows)
            offset += n

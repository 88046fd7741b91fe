"""Batch planning and token estimates (sans I/O)."""

from __future__ import annotations

import logging
import threading
from collections.abc import Sequence
from typing import Any

__all__ = ["TokenCounter", "plan_batches"]

logger = logging.getLogger("hf_endpoint.client")


def plan_batches(
    sizes: Sequence[int], tokens: Sequence[int], *, max_inputs: int, max_tokens: int, max_bytes: int
) -> list[range]:
    """Cut inputs, in order, into contiguous batches within every limit.

    ``sizes`` are each input's bytes in the request body, ``tokens`` its token
    estimate. A batch holds at most ``max_inputs`` inputs, ``max_tokens``
    tokens and ``max_bytes`` bytes; an input over a limit on its own still
    gets a batch of its own (the caller decides whether it may be sent).
    """
    batches: list[range] = []
    start = 0
    batch_bytes = batch_tokens = 0
    for i, (size, count) in enumerate(zip(sizes, tokens)):
        if i > start and (
            i - start >= max_inputs
            or batch_bytes + size > max_bytes
            or batch_tokens + count > max_tokens
        ):
            batches.append(range(start, i))
            start, batch_bytes, batch_tokens = i, 0, 0
        batch_bytes += size
        batch_tokens += count
    if start < len(sizes):
        batches.append(range(start, len(sizes)))
    return batches


class TokenCounter:
    """Token counts with tiktoken's ``cl100k_base``; characters / 3 where it cannot be loaded.

    tiktoken downloads its encodings on first use; without a network (and no
    ``TIKTOKEN_CACHE_DIR`` holding them) the estimate falls back, with one
    DEBUG line, never an error.
    """

    def __init__(self) -> None:
        self._encoding: Any = None
        self._loaded = False
        self._lock = threading.Lock()

    def _load(self) -> Any:
        with self._lock:
            if not self._loaded:
                try:
                    import tiktoken

                    self._encoding = tiktoken.get_encoding("cl100k_base")
                except (
                    ImportError,
                    OSError,
                    ValueError,
                    KeyError,
                ) as exc:  # offline: the download failed
                    logger.debug(
                        "tiktoken's cl100k_base is unavailable (%s): estimating tokens as characters / 3",
                        type(exc).__name__,
                    )
                self._loaded = True
        return self._encoding

    def count(self, text: str) -> int:
        encoding = self._load()
        if encoding is None:
            return len(text) // 3 + 1
        return len(encoding.encode_ordinary(text))

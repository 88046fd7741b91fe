"""Batch planning and token estimates (sans I/O)."""

from __future__ import annotations

import base64
import hashlib
import threading
from collections.abc import Sequence
from pathlib import Path
from typing import Any

__all__ = ["TokenCounter", "plan_batches"]


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


# tiktoken's cl100k_base, shipped in the package (MIT, from the tiktoken project): token
# estimates never reach for the internet. The pattern is tiktoken_ext.openai_public's.
_CL100K_FILE = Path(__file__).parent.parent / "data" / "cl100k_base.tiktoken"
_CL100K_SHA256 = "223921b76ee99bde995b7ff738513eef100fb51d18c93597a113bcffe865b2a7"
_CL100K_PATTERN = (
    r"""'(?i:[sdmt]|ll|ve|re)|[^\r\n\p{L}\p{N}]?+\p{L}++|\p{N}{1,3}+| ?[^\s\p{L}\p{N}]++[\r\n]*+"""
    r"""|\s++$|\s*[\r\n]|\s+(?!\S)|\s"""
)


def _load_cl100k() -> Any:
    import tiktoken

    data = _CL100K_FILE.read_bytes()
    if hashlib.sha256(data).hexdigest() != _CL100K_SHA256:
        raise ValueError(f"{_CL100K_FILE} is damaged (its SHA-256 differs)")
    ranks = {
        base64.b64decode(token): int(rank)
        for token, rank in (line.split() for line in data.splitlines() if line)
    }
    return tiktoken.Encoding(
        "cl100k_base", pat_str=_CL100K_PATTERN, mergeable_ranks=ranks, special_tokens={}
    )


class TokenCounter:
    """Token estimates with tiktoken's ``cl100k_base``, loaded from the package, never downloaded.

    An estimate plans batches within the endpoint's ``max_batch_tokens``; the
    endpoint's own tokenizer decides what it accepts (a batch it refuses as too
    large is split). Loading takes a fraction of a second, once per process.
    """

    _encoding: Any = None
    _lock = threading.Lock()

    @classmethod
    def loaded(cls) -> bool:
        return cls._encoding is not None

    @classmethod
    def _load(cls) -> Any:
        if cls._encoding is None:
            with cls._lock:
                if cls._encoding is None:
                    cls._encoding = _load_cl100k()
        return cls._encoding

    def count(self, text: str) -> int:
        return len(self._load().encode_ordinary(text))

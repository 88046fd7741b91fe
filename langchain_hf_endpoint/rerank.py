"""``HFEndpointRerank``: a LangChain document compressor that reranks through an endpoint."""

from __future__ import annotations

from collections.abc import Sequence

from langchain_core.callbacks import Callbacks
from langchain_core.documents import BaseDocumentCompressor, Document
from pydantic import ConfigDict

from hf_endpoint._adapter import RerankAdapter
from hf_endpoint.client.rerank import RerankResult

__all__ = ["HFEndpointRerank"]


class HFEndpointRerank(RerankAdapter, BaseDocumentCompressor):
    """Reranks retrieved documents with a Hugging Face Inference Endpoint's ``/rerank``
    (a cross-encoder behind Text Embeddings Inference), with Elasticsearch's
    ``hugging_face`` ``rerank`` semantics: batching within the endpoint's limits, a
    client-side rate limit, retries, and every document scored exactly once.

    ``compress_documents`` returns the documents by decreasing relevance, cut to
    ``top_n`` (``None``: all of them), each a copy whose metadata gains
    ``relevance_score``. Construction makes no network call, and the key is sent
    only to ``url``. Pickles (the key travels); ``model_dump`` never holds the key.

    It plugs into LangChain's ``ContextualCompressionRetriever`` as ``base_compressor``,
    or runs on its own over what a vector store retrieved::

        reranker = HFEndpointRerank(url="https://xyz.endpoints.huggingface.cloud", top_n=3)
        best = reranker.compress_documents(store.similarity_search(query, k=20), query)
    """

    model_config = ConfigDict(populate_by_name=True, arbitrary_types_allowed=True, extra="forbid")

    @staticmethod
    def _ranked(documents: Sequence[Document], result: RerankResult) -> list[Document]:
        return [
            Document(
                page_content=documents[r.index].page_content,
                metadata={**documents[r.index].metadata, "relevance_score": r.relevance_score},
                id=documents[r.index].id,
            )
            for r in result
        ]

    def compress_documents(
        self, documents: Sequence[Document], query: str, callbacks: Callbacks | None = None
    ) -> Sequence[Document]:
        if not documents:
            return []
        return self._ranked(documents, self._rerank(query, [d.page_content for d in documents]))

    async def acompress_documents(
        self, documents: Sequence[Document], query: str, callbacks: Callbacks | None = None
    ) -> Sequence[Document]:
        if not documents:
            return []
        texts = [d.page_content for d in documents]
        return self._ranked(documents, await self._arerank(query, texts))

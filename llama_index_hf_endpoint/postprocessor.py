"""``HFEndpointRerank``: a LlamaIndex node postprocessor that reranks through an endpoint."""

from __future__ import annotations

import llama_index.core.instrumentation as instrument
from llama_index.core.callbacks import CBEventType, EventPayload
from llama_index.core.instrumentation.events.rerank import ReRankEndEvent, ReRankStartEvent
from llama_index.core.postprocessor.types import BaseNodePostprocessor
from llama_index.core.schema import MetadataMode, NodeWithScore, QueryBundle

from hf_endpoint._adapter import RerankAdapter
from hf_endpoint.client.rerank import RerankResult

__all__ = ["HFEndpointRerank"]

dispatcher = instrument.get_dispatcher(__name__)  # type: ignore[attr-defined]


class HFEndpointRerank(RerankAdapter, BaseNodePostprocessor):
    """Reranks retrieved nodes with a Hugging Face Inference Endpoint's ``/rerank``
    (a cross-encoder behind Text Embeddings Inference), with Elasticsearch's
    ``hugging_face`` ``rerank`` semantics: batching within the endpoint's limits, a
    client-side rate limit, retries, and every node scored exactly once.

    Returns new ``NodeWithScore`` objects by decreasing score (the endpoint's), cut
    to ``top_n`` (``None``: all of them); the nodes sent are their content as the
    embedding model sees it (``MetadataMode.EMBED``). ``to_dict()`` leaves the key
    out (``from_dict`` looks it up again); pickling keeps it. Sync methods run no
    event loop, so they work inside Jupyter.

    In a query engine: ``index.as_query_engine(similarity_top_k=20,
    node_postprocessors=[reranker])``. On its own, against the local endpoint:

    >>> from llama_index.core.schema import NodeWithScore, TextNode
    >>> from hf_endpoint.server import LocalEndpoint
    >>> nodes = [NodeWithScore(node=TextNode(text=t)) for t in ["A bear.", "A train.", "Bamboo."]]
    >>> with LocalEndpoint("hash") as endpoint:
    ...     reranker = HFEndpointRerank(url=f"{endpoint.url}/rerank", api_key=None, top_n=2)
    ...     best = reranker.postprocess_nodes(nodes, query_str="what do pandas eat?")
    >>> len(best)
    2
    """

    @classmethod
    def class_name(cls) -> str:
        return "HFEndpointRerank"

    def _start(self, nodes: list[NodeWithScore], query: QueryBundle | None) -> QueryBundle:
        if query is None:
            raise ValueError("HFEndpointRerank needs a query: pass query_str or query_bundle")
        dispatcher.event(
            ReRankStartEvent(
                query=query, nodes=nodes, top_n=self.top_n or len(nodes), model_name=self.url
            )
        )
        return query

    def _ranked(self, nodes: list[NodeWithScore], result: RerankResult) -> list[NodeWithScore]:
        ranked = [NodeWithScore(node=nodes[r.index].node, score=r.relevance_score) for r in result]
        dispatcher.event(ReRankEndEvent(nodes=ranked))
        return ranked

    def _texts(self, nodes: list[NodeWithScore]) -> list[str]:
        return [n.node.get_content(metadata_mode=MetadataMode.EMBED) for n in nodes]

    def _payload(self, nodes: list[NodeWithScore], query: QueryBundle) -> dict[str, object]:
        return {
            EventPayload.NODES: nodes,
            EventPayload.MODEL_NAME: self.url,
            EventPayload.QUERY_STR: query.query_str,
            EventPayload.TOP_K: self.top_n,
        }

    @dispatcher.span
    def _postprocess_nodes(
        self, nodes: list[NodeWithScore], query_bundle: QueryBundle | None = None
    ) -> list[NodeWithScore]:
        query = self._start(nodes, query_bundle)
        if not nodes:
            return self._ranked(nodes, RerankResult([], []))
        with self.callback_manager.event(
            CBEventType.RERANKING, payload=self._payload(nodes, query)
        ) as event:
            ranked = self._ranked(nodes, self._rerank(query.query_str, self._texts(nodes)))
            event.on_end(payload={EventPayload.NODES: ranked})
        return ranked

    @dispatcher.span
    async def _apostprocess_nodes(
        self, nodes: list[NodeWithScore], query_bundle: QueryBundle | None = None
    ) -> list[NodeWithScore]:
        query = self._start(nodes, query_bundle)
        if not nodes:
            return self._ranked(nodes, RerankResult([], []))
        with self.callback_manager.event(
            CBEventType.RERANKING, payload=self._payload(nodes, query)
        ) as event:
            result = await self._arerank(query.query_str, self._texts(nodes))
            ranked = self._ranked(nodes, result)
            event.on_end(payload={EventPayload.NODES: ranked})
        return ranked

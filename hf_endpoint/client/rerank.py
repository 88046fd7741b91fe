"""``RerankClient``: documents scored against a query by an endpoint's ``/rerank``, nothing lost.

A facade over the same layers as ``EmbeddingClient`` (``_base_client``): the
documents are planned into requests within the endpoint's limits
(``max_client_batch_size`` from ``GET /info``, the body size, ``max_batch_tokens``
counting the query once per document), each request is a ``rerank_flow``
(retries, cold starts, 413 halving, the shared rate limit), and the scores come
back in input order before they are sorted. Every document gets exactly one
score; ``top_n`` and ``return_documents`` are applied to the merged whole, as
Elasticsearch's ``rerank`` task applies them to one answer.

>>> from hf_endpoint.server import LocalEndpoint
>>> with LocalEndpoint("hash") as endpoint:
...     with RerankClient(f"{endpoint.url}/rerank", api_key=None) as client:
...         result = client.rerank("what is a panda?", ["A bear.", "A train."], top_n=1)
>>> [(document.index, document.text) for document in result]
[(0, None)]
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Literal

from pydantic import SecretStr

from ..config.settings import InferenceConfig, RateLimit, RerankTaskSettings
from ..errors import ConfigError
from ._base import (
    FROM_ENVIRONMENT,
    BaseClient,
    HTTPClient,
    RequestShape,
    check_texts,
    plan_call,
)
from ._drivers import RequestGate
from ._flows import Batch, ServerLimits, rerank_flow
from ._options import RERANK_BATCH_SIZE, ClientOptions
from .ratelimit import Limiter
from .retry import RetryPolicy

__all__ = ["RankedDocument", "RerankClient", "RerankResult", "check_query"]


@dataclass(frozen=True)
class RankedDocument:
    """One document of a rerank: its ``index`` in the input, its score, and its
    text when ``return_documents`` asked for it."""

    index: int
    relevance_score: float
    text: str | None = None


class RerankResult(list[RankedDocument]):
    """The documents by decreasing ``relevance_score`` (ties in input order), cut to ``top_n``.

    ``scores`` holds every document's score in input order, whatever ``top_n``;
    ``truncated`` the indices of documents cut before sending (``truncate=True``
    and a document larger than one request may carry).
    """

    def __init__(
        self, ranked: Sequence[RankedDocument], scores: list[float], truncated: Sequence[int] = ()
    ) -> None:
        super().__init__(ranked)
        self.scores = scores
        self.truncated = sorted(truncated)

    def __repr__(self) -> str:
        # Short: notebooks and asyncio repr results, and 10,000 documents take a while.
        shown = ", ".join(map(repr, self[:5]))
        more = f", ... {len(self) - 5} more" if len(self) > 5 else ""
        return f"RerankResult([{shown}{more}], truncated={self.truncated})"

    def to_dict(self) -> dict[str, Any]:
        """Elasticsearch's answer: ``{"rerank": [{"index", "relevance_score", "text"?}]}``."""
        return {
            "rerank": [
                {"index": r.index, "relevance_score": r.relevance_score}
                | ({"text": r.text} if r.text is not None else {})
                for r in self
            ]
        }


def check_query(query: object) -> str:
    """The query, or the error Elasticsearch gives a rerank request without one."""
    if query is None:
        raise ConfigError("Field [query] cannot be null for task type [rerank]")
    if not isinstance(query, str):
        raise TypeError(f"query must be a str, not {type(query).__name__}")
    if not query:
        raise ConfigError("Field [query] cannot be empty for task type [rerank]")
    return query


def rank(
    scores: list[float],
    documents: Sequence[str],
    settings: RerankTaskSettings,
    truncated: Sequence[int] = (),
) -> RerankResult:
    """Sort by decreasing score (ties in input order), cut to ``top_n``, attach texts."""
    order = sorted(range(len(scores)), key=lambda i: (-scores[i], i))
    if settings.top_n is not None:
        order = order[: settings.top_n]
    texts = documents if settings.return_documents else None
    return RerankResult(
        [RankedDocument(i, scores[i], texts[i] if texts is not None else None) for i in order],
        scores,
        truncated,
    )


class _Scores:
    """Collects the scores of each batch as it finishes (batches are contiguous, in order)."""

    def __init__(self, batches: list[Batch]) -> None:
        self.parts: list[list[float]] = [[] for _ in batches]

    def keep(self, i: int, scores: list[float]) -> None:
        self.parts[i] = scores

    def result(self) -> list[float]:
        return [score for part in self.parts for score in part]


class RerankClient(BaseClient):
    """Rerank documents against a query through one endpoint: batched, rate-limited,
    retried, every score in input order before sorting.

    * ``url``: the endpoint URL, requests go to it as given: a Hugging Face
      endpoint serving a reranker (TEI answers rerank at its root), or
      ``.../rerank`` of a Text Embeddings Inference server.
    * ``api_key``, ``rate_limit``, ``limiter``, ``max_concurrency``, ``timeout``,
      ``max_retries``, ``retry_policy``, ``scale_up_timeout``, ``discover_limits``,
      ``max_body_bytes``, ``max_response_bytes``: as for ``EmbeddingClient``
      (one rate limit for every client of this URL, key and rate on this machine).
    * ``batch_size``: documents per request (default 32, TEI's default
      ``max_client_batch_size``), lowered to the endpoint's ``max_client_batch_size``
      when ``GET /info`` tells it; requests also stay within ``max_batch_tokens``
      (the query counted with every document) and ``max_body_bytes``.
    * ``truncate``, ``truncation_direction``, ``raw_scores``: TEI's options, sent
      only when set. Without ``truncate``, a document the endpoint refuses as too
      long raises ``InputTooLargeError`` naming its index.
    * ``http_client``: an ``httpx.Client`` or transport, as for ``EmbeddingClient``
      (the caller closes it).
    * ``top_n``, ``return_documents``: Elasticsearch's rerank ``task_settings``,
      the defaults of every call (a call's own arguments override them).
    * ``protocol``: ``"tei"`` (``{"query", "texts"}``, Text Embeddings Inference),
      ``"openai"`` (the Cohere/Jina-style ``{"query", "documents", "model"}`` →
      ``{"results": [{"index", "relevance_score"}]}`` of vLLM and Infinity; a base
      URL gets ``/v1/rerank``), or ``"auto"`` (default): ``openai`` when the URL
      ends in ``/v1/rerank`` or ``/v2/rerank``, else ``tei``. On that route ``model``
      (default: the first of ``GET /v1/models``) is sent and every score is asked
      for (``top_n`` is applied to the merged whole); TEI's options are not sent.

    Every option is validated at construction (``ConfigError`` lists every
    problem). Safe to share between threads and tasks; pickles (the key travels);
    ``stats`` counts what it did (``inputs``: documents scored).
    """

    def __init__(
        self,
        url: str,
        api_key: str | SecretStr | None = FROM_ENVIRONMENT,
        *,
        # -- from the declaration: rerank keywords --
        rate_limit: RateLimit | Mapping[str, Any] | int | None = ClientOptions.rate_limit,
        batch_size: int = RERANK_BATCH_SIZE,
        max_concurrency: int = ClientOptions.max_concurrency,
        timeout: float = ClientOptions.timeout,
        max_retries: int | None = ClientOptions.max_retries,
        retry_policy: RetryPolicy | None = ClientOptions.retry_policy,
        truncate: bool | None = ClientOptions.truncate,
        truncation_direction: Literal["Right", "Left"] | None = ClientOptions.truncation_direction,
        scale_up_timeout: float | None = ClientOptions.scale_up_timeout,
        discover_limits: bool = ClientOptions.discover_limits,
        max_body_bytes: int = ClientOptions.max_body_bytes,
        max_response_bytes: int | None = ClientOptions.max_response_bytes,
        protocol: Literal["auto", "tei", "openai"] = ClientOptions.protocol,
        model: str | None = ClientOptions.model,
        raw_scores: bool | None = ClientOptions.raw_scores,
        top_n: int | None = ClientOptions.top_n,
        return_documents: bool | None = ClientOptions.return_documents,
        # -- end: rerank keywords --
        limiter: Limiter | None = None,
        http_client: HTTPClient | None = None,
    ) -> None:
        options = ClientOptions.from_arguments("rerank", locals())
        self._setup(options, self._find_key(api_key), limiter, None, http_client)

    @property
    def raw_scores(self) -> bool | None:
        return self.options.raw_scores

    @property
    def task_settings(self) -> RerankTaskSettings:
        """The client's ``top_n`` and ``return_documents``: every call's defaults."""
        return RerankTaskSettings(self.options.top_n, self.options.return_documents)

    @classmethod
    def from_config(
        cls, config: InferenceConfig | Mapping[str, Any], **kwargs: Any
    ) -> RerankClient:
        """A client for an Elasticsearch ``PUT _inference/rerank/<id>`` body (or a parsed
        ``InferenceConfig`` of task type ``rerank``); its ``task_settings`` become the
        client's defaults."""
        config = InferenceConfig.coerce(config, "rerank")
        s, task = config.service_settings, config.task_settings
        kwargs.setdefault("top_n", task.top_n)
        kwargs.setdefault("return_documents", task.return_documents)
        client = cls(s.url, s.api_key, rate_limit=s.rate_limit, **kwargs)
        client._key_source = "the token in the PUT body (service_settings.api_key)"
        return client

    # -- reranking ---------------------------------------------------------------------

    @property
    def _openai(self) -> bool:
        protocol = self.options.protocol
        if protocol == "auto":
            path = self.url.partition("?")[0].rstrip("/")
            return path.endswith(("/v1/rerank", "/v2/rerank"))
        return protocol == "openai"

    @property
    def _target(self) -> str:
        if not self._openai:
            return self.url
        base, sep, query = self.url.partition("?")
        base = base.rstrip("/")
        if not base.endswith("/rerank"):
            base += "/rerank" if base.endswith("/v1") else "/v1/rerank"
        return base + sep + query

    def _shape(self, query: str, limits: ServerLimits) -> RequestShape:
        if self._openai:
            # Every score comes back (no top_n): batches are merged, then cut to top_n.
            model = self.options.model or limits.model_id
            return RequestShape(
                key=b"documents",
                fields={"query": query, "return_documents": False}
                | ({"model": model} if model else {}),
                shared=query,
                remedy="split it into passages",
                name="documents",
            )
        fields: dict[str, Any] = {"query": query, **self.options.server_options.body_fields()}
        if self.raw_scores is not None:
            fields["raw_scores"] = self.raw_scores
        return RequestShape(
            key=b"texts",
            fields=fields,
            shared=query,
            remedy="set truncate=True to have it cut, or split it into passages",
            name="documents",
        )

    def _call(
        self, query: object, documents: object, top_n: int | None, return_documents: bool | None
    ) -> tuple[str, list[str], RerankTaskSettings]:
        """The checked arguments of one call, and its task settings over the client's."""
        override = RerankTaskSettings(top_n, return_documents)
        return (
            check_query(query),
            check_texts(documents, "documents"),
            self.task_settings.merged(override),
        )

    def rerank(
        self,
        query: str,
        documents: Sequence[str],
        *,
        top_n: int | None = None,
        return_documents: bool | None = None,
        gate: RequestGate | None = None,
    ) -> RerankResult:
        """The documents ranked by their relevance to ``query`` (a ``RerankResult``).

        ``top_n`` keeps the best ones; ``return_documents`` puts their texts in the
        result (both default to the client's ``task_settings``). ``gate`` is an
        extra limiter passed before every HTTP attempt of this call. No documents:
        an empty result without a request.
        """
        query, docs, settings = self._call(query, documents, top_n, return_documents)
        if not docs:
            return RerankResult([], [])
        with self._counting_failures():
            limits = self.server_limits(gate)
            batches, truncated = plan_call(docs, self.options, limits, self._shape(query, limits))
            scores = _Scores(batches)
            self._sync.map(self._flows(batches, rerank_flow), gate, scores.keep)
        self._stats.inputs(len(docs))
        return rank(scores.result(), docs, settings, truncated)

    async def arerank(
        self,
        query: str,
        documents: Sequence[str],
        *,
        top_n: int | None = None,
        return_documents: bool | None = None,
        gate: RequestGate | None = None,
    ) -> RerankResult:
        """``rerank`` for async callers: requests go out concurrently on this event loop."""
        query, docs, settings = self._call(query, documents, top_n, return_documents)
        if not docs:
            return RerankResult([], [])
        with self._counting_failures():
            limits: ServerLimits = await self.aserver_limits(gate)
            batches, truncated = await self._aplan(docs, limits, self._shape(query, limits))
            scores = _Scores(batches)
            await self._async.map(self._flows(batches, rerank_flow), gate, scores.keep)
        self._stats.inputs(len(docs))
        return rank(scores.result(), docs, settings, truncated)

"""Embedding a Ray Data dataset on a cluster, within one rate limit for the whole cluster.

Needs the ``ray`` extra (``pip install 'hf-endpoint[ray]'``)::

    import ray
    from hf_endpoint.ray import embed_dataset

    records = ray.data.read_json("docs.jsonl", lines=True)  # "text", optional "id", ...
    chunks = embed_dataset(records, put_body, concurrency=4)
    chunks.write_parquet("chunks/")

The Ray engine of ``hf_endpoint.ingest`` (``hf_endpoint.ingest.ray``) and its
cluster-wide limiter (``hf_endpoint.ingest.limiter``) under their public names.
See docs/scale-out.md.
"""

from __future__ import annotations

from .ingest.limiter import HORIZON, ClusterLimiter, cluster_limiter
from .ingest.ray import OUTPUT_COLUMNS, embed_dataset, embed_jsonl

__all__ = [
    "HORIZON",
    "OUTPUT_COLUMNS",
    "ClusterLimiter",
    "cluster_limiter",
    "embed_dataset",
    "embed_jsonl",
]

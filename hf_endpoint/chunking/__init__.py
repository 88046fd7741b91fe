"""Elasticsearch's chunking, offset-exact: the ``word``, ``sentence``, ``recursive`` and
``none`` strategies (``_strategies``) over ICU's words and sentences (``_segment``), with the
recursive strategy's separators (``_recursive``) translated from Java regular expressions
(``_java_regex``)."""

from ._strategies import Chunk, chunk_offsets, chunk_text

__all__ = ["Chunk", "chunk_offsets", "chunk_text"]

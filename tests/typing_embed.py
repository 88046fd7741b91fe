"""What type checkers see of ``embed``: checked by ``mypy`` (pyproject lists this file),
not run. ``assert_type`` fails the check when an overload says otherwise."""

from typing import Any

import numpy.typing as npt
from typing_extensions import assert_type

from hf_endpoint import EmbeddingClient, EmbeddingResult


def embed_returns_lists_by_default_and_an_array_for_a_dtype(
    client: EmbeddingClient, maybe: str | None
) -> None:
    assert_type(client.embed(["a"]), EmbeddingResult)
    assert_type(client.embed(["a"], dtype="float32"), npt.NDArray[Any])
    assert_type(client.embed(["a"], dtype=maybe), EmbeddingResult | npt.NDArray[Any])
    vectors: list[list[float]] = client.embed(["a"])
    assert vectors is not None


async def aembed_returns_the_same(client: EmbeddingClient) -> None:
    assert_type(await client.aembed(["a"]), EmbeddingResult)
    assert_type(await client.aembed(["a"], dtype="float32"), npt.NDArray[Any])

"""LangChain's standard integration tests for HFEndpointEmbeddings, on the real MiniLM model."""

from langchain_tests.integration_tests import EmbeddingsIntegrationTests

from langchain_hf_endpoint import HFEndpointEmbeddings

from ..endpoints import local_url


class TestHFEndpointEmbeddingsIntegration(EmbeddingsIntegrationTests):
    @property
    def embeddings_class(self) -> type[HFEndpointEmbeddings]:
        return HFEndpointEmbeddings

    @property
    def embedding_model_params(self) -> dict:
        return {"url": local_url("minilm"), "api_key": None}

"""LangChain's standard unit tests for HFEndpointEmbeddings."""

from langchain_tests.unit_tests import EmbeddingsUnitTests

from langchain_hf_endpoint import HFEndpointEmbeddings


class TestHFEndpointEmbeddingsUnit(EmbeddingsUnitTests):
    @property
    def embeddings_class(self) -> type[HFEndpointEmbeddings]:
        return HFEndpointEmbeddings

    @property
    def embedding_model_params(self) -> dict:
        return {"url": "https://xyz.endpoints.huggingface.cloud", "api_key": "hf_unit"}

    @property
    def init_from_env_params(self) -> tuple[dict, dict, dict]:
        return (
            {
                "HF_TOKEN": "hf_from_env",
                "HF_ENDPOINT_URL": "https://env.endpoints.huggingface.cloud",
            },
            {},
            {"api_key": "hf_from_env", "url": "https://env.endpoints.huggingface.cloud"},
        )

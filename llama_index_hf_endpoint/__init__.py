"""LlamaIndex integration: see the package README."""

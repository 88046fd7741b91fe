"""LangChain integration: see the package README."""

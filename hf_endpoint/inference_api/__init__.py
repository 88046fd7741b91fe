"""Elasticsearch's ``_inference`` API for the ``hugging_face`` service, as a service.

``InferenceAPI`` runs it in this process (like ``LocalEndpoint``); the command
``hf-endpoint inference-api`` runs it on its own. Endpoints live in a SQLite
``Store`` with their Hugging Face keys sealed by a master key; callers
authenticate with API keys (``Authorization: ApiKey``) or users (HTTP Basic).
It is not Elasticsearch: see ``docs/inference-api.md`` for what differs.
"""

from ._secrets import MASTER_KEY_ENV, MasterKey
from ._serve import InferenceAPI, check_bind, open_store, serve
from .app import ELASTICSEARCH_VERSION, ServiceConfig, create_app
from .store import Credential, Store, default_store_path

__all__ = [
    "ELASTICSEARCH_VERSION",
    "MASTER_KEY_ENV",
    "Credential",
    "InferenceAPI",
    "MasterKey",
    "ServiceConfig",
    "Store",
    "check_bind",
    "create_app",
    "default_store_path",
    "open_store",
    "serve",
]

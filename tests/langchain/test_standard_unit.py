"""LangChain's standard unit suites (no network: construction, parameters, tracing fields)."""

from __future__ import annotations

from typing import Any

from langchain_tests.unit_tests import ChatModelUnitTests, EmbeddingsUnitTests

from langchain_sfmodels import (
    DatabricksEmbeddings,
    SalesforceEmbeddings,
)

from . import recording
from .capabilities import DatabricksChat, SalesforceChat


class TestChatSalesforceUnit(SalesforceChat, ChatModelUnitTests):
    @property
    def chat_model_params(self) -> dict[str, Any]:
        return {"model": recording.SALESFORCE_CHAT_MODEL}

    @property
    def init_from_env_params(self) -> tuple[dict[str, str], dict[str, Any], dict[str, Any]]:
        # Credentials stay unresolved until the first call (the core resolves the
        # environment then), so construction from the environment alone must work.
        return ({"SALESFORCE_ACCESS_TOKEN": "token-from-env"},
                {"model": recording.SALESFORCE_CHAT_MODEL},
                {"model": recording.SALESFORCE_CHAT_MODEL, "api_key": None})


class TestChatDatabricksUnit(DatabricksChat, ChatModelUnitTests):
    @property
    def chat_model_params(self) -> dict[str, Any]:
        return {"endpoint": recording.DATABRICKS_CHAT_ENDPOINT}

    @property
    def init_from_env_params(self) -> tuple[dict[str, str], dict[str, Any], dict[str, Any]]:
        return ({"DATABRICKS_HOST": "https://example.cloud.databricks.com",
                 "DATABRICKS_TOKEN": "dapi-from-env"},
                {"endpoint": recording.DATABRICKS_CHAT_ENDPOINT},
                {"model": recording.DATABRICKS_CHAT_ENDPOINT, "host": None})


class TestSalesforceEmbeddingsUnit(EmbeddingsUnitTests):
    @property
    def embeddings_class(self) -> type[SalesforceEmbeddings]:
        return SalesforceEmbeddings

    @property
    def embedding_model_params(self) -> dict[str, Any]:
        return {"model": recording.SALESFORCE_EMBEDDING_MODEL}

    @property
    def init_from_env_params(self) -> tuple[dict[str, str], dict[str, Any], dict[str, Any]]:
        return ({"SALESFORCE_ACCESS_TOKEN": "token-from-env"}, {},
                {"model": recording.SALESFORCE_EMBEDDING_MODEL})


class TestDatabricksEmbeddingsUnit(EmbeddingsUnitTests):
    @property
    def embeddings_class(self) -> type[DatabricksEmbeddings]:
        return DatabricksEmbeddings

    @property
    def embedding_model_params(self) -> dict[str, Any]:
        return {"endpoint": recording.DATABRICKS_EMBEDDING_ENDPOINT}

    @property
    def init_from_env_params(self) -> tuple[dict[str, str], dict[str, Any], dict[str, Any]]:
        return ({"DATABRICKS_HOST": "https://example.cloud.databricks.com",
                 "DATABRICKS_TOKEN": "dapi-from-env"},
                {"endpoint": recording.DATABRICKS_EMBEDDING_ENDPOINT},
                {"endpoint": recording.DATABRICKS_EMBEDDING_ENDPOINT})

"""LangChain's standard integration suites, replayed from cassettes (see ``recording.py``)."""

from __future__ import annotations

from typing import Any

import pytest
from langchain_tests.integration_tests import ChatModelIntegrationTests, EmbeddingsIntegrationTests

from langchain_sfmodels import (
    DatabricksEmbeddings,
    SalesforceEmbeddings,
)

from . import recording
from .capabilities import DatabricksChat, SalesforceChat

pytestmark = pytest.mark.vcr


class TestChatSalesforceIntegration(SalesforceChat, ChatModelIntegrationTests):
    @property
    def chat_model_params(self) -> dict[str, Any]:
        return {"model": recording.SALESFORCE_CHAT_MODEL, **recording.salesforce_params()}

    @property
    def supports_anthropic_inputs(self) -> bool:
        # Anthropic-style tools, tool_use and thinking blocks are converted (images are not
        # part of this test unless image inputs are supported, and they are not).
        return True

    @property
    def model_override_value(self) -> str:
        return recording.SALESFORCE_OTHER_CHAT_MODEL

    @property
    def enable_vcr_tests(self) -> bool:
        return True


class TestChatDatabricksIntegration(DatabricksChat, ChatModelIntegrationTests):
    @property
    def chat_model_params(self) -> dict[str, Any]:
        return {"endpoint": recording.DATABRICKS_CHAT_ENDPOINT, **recording.databricks_params()}

    @property
    def supports_anthropic_inputs(self) -> bool:
        # Anthropic-style tools and content blocks are converted to the OpenAI format.
        return True

    @property
    def model_override_value(self) -> str:
        return recording.DATABRICKS_OTHER_CHAT_ENDPOINT

    @property
    def enable_vcr_tests(self) -> bool:
        return True


class TestSalesforceEmbeddingsIntegration(EmbeddingsIntegrationTests):
    @property
    def embeddings_class(self) -> type[SalesforceEmbeddings]:
        return SalesforceEmbeddings

    @property
    def embedding_model_params(self) -> dict[str, Any]:
        return {"model": recording.SALESFORCE_EMBEDDING_MODEL, **recording.salesforce_params()}


class TestDatabricksEmbeddingsIntegration(EmbeddingsIntegrationTests):
    @property
    def embeddings_class(self) -> type[DatabricksEmbeddings]:
        return DatabricksEmbeddings

    @property
    def embedding_model_params(self) -> dict[str, Any]:
        return {"endpoint": recording.DATABRICKS_EMBEDDING_ENDPOINT,
                **recording.databricks_params()}

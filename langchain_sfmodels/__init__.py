"""LangChain components for the Salesforce Models API and Databricks model serving.

Thin adapters over ``sfmodels_core``: they convert LangChain messages and results and call the
core clients, which are created on first use. ``SFModelsError`` (the base of every error) and
``ModelReplyError`` (a Salesforce reply broke the tool or JSON protocol even after one repair
round) are exported as in ``llama_index_sfmodels``. The classes are loaded when first accessed,
so ``import langchain_sfmodels`` stays cheap.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from sfmodels_core._lazy import lazy_exports

if TYPE_CHECKING:
    from sfmodels_core.errors import ModelReplyError, SFModelsError
    from sfmodels_core.integration.feedback import FeedbackSubmission

    from .chat_databricks import ChatDatabricks
    from .chat_salesforce import ChatSalesforce
    from .embeddings import DatabricksEmbeddings, SalesforceEmbeddings
    from .feedback import DatabricksFeedbackHandler, SalesforceFeedbackHandler
    from .llms import DatabricksLLM, SalesforceLLM

_MODULES = {
    "ChatDatabricks": ".chat_databricks",
    "ChatSalesforce": ".chat_salesforce",
    "DatabricksEmbeddings": ".embeddings",
    "DatabricksFeedbackHandler": ".feedback",
    "DatabricksLLM": ".llms",
    "FeedbackSubmission": "sfmodels_core.integration.feedback",
    "ModelReplyError": "sfmodels_core.errors",
    "SFModelsError": "sfmodels_core.errors",
    "SalesforceEmbeddings": ".embeddings",
    "SalesforceFeedbackHandler": ".feedback",
    "SalesforceLLM": ".llms",
}

__all__ = [
    "ChatDatabricks",
    "ChatSalesforce",
    "DatabricksEmbeddings",
    "DatabricksFeedbackHandler",
    "DatabricksLLM",
    "FeedbackSubmission",
    "ModelReplyError",
    "SFModelsError",
    "SalesforceEmbeddings",
    "SalesforceFeedbackHandler",
    "SalesforceLLM",
]


__getattr__ = lazy_exports(__name__, _MODULES)


def __dir__() -> list[str]:
    return sorted([*globals(), *__all__])

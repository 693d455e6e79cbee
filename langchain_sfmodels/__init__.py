"""LangChain components for the Salesforce Models API and Databricks model serving.

Thin adapters over ``sfmodels_core``: they convert LangChain messages and results and call the
core clients, which are created on first use.
"""

from __future__ import annotations

from .chat_databricks import ChatDatabricks
from .chat_salesforce import ChatSalesforce
from .embeddings import DatabricksEmbeddings, SalesforceEmbeddings
from .feedback import SalesforceFeedbackHandler
from .llms import DatabricksLLM, SalesforceLLM

__all__ = [
    "ChatDatabricks",
    "ChatSalesforce",
    "DatabricksEmbeddings",
    "DatabricksLLM",
    "SalesforceEmbeddings",
    "SalesforceFeedbackHandler",
    "SalesforceLLM",
]

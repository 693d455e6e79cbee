"""LlamaIndex components for the Salesforce Models API and Databricks model serving.

- :class:`SalesforceLLM`, :class:`SalesforceEmbedding`: Salesforce Models API (Einstein).
- :class:`DatabricksLLM`, :class:`DatabricksEmbedding`: Databricks serving endpoints.
- :class:`SalesforceFeedbackHandler`: records Salesforce generation ids, sends feedback;
  :class:`DatabricksFeedbackHandler`: records an MLflow span per Databricks call, rates it
  with an MLflow assessment.
- :class:`SFModelsError` (the base of every error) and :class:`ModelReplyError` (a Salesforce
  model's reply broke the tool or JSON protocol, even after one repair round), as in
  ``langchain_sfmodels``; :class:`FeedbackSubmission`, what feedback ``submit`` returns.

The classes are imported on first access, so importing this package stays cheap.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from sfmodels_core._lazy import lazy_exports

if TYPE_CHECKING:
    from sfmodels_core.errors import ModelReplyError, SFModelsError
    from sfmodels_core.integration.feedback import FeedbackSubmission

    from .databricks_llm import DatabricksLLM
    from .embeddings import DatabricksEmbedding, SalesforceEmbedding
    from .feedback import DatabricksFeedbackHandler, SalesforceFeedbackHandler
    from .salesforce_llm import SalesforceLLM

__all__ = [
    "DatabricksEmbedding",
    "DatabricksFeedbackHandler",
    "DatabricksLLM",
    "FeedbackSubmission",
    "ModelReplyError",
    "SFModelsError",
    "SalesforceEmbedding",
    "SalesforceFeedbackHandler",
    "SalesforceLLM",
]

_MODULES = {
    "DatabricksEmbedding": ".embeddings",
    "DatabricksFeedbackHandler": ".feedback",
    "DatabricksLLM": ".databricks_llm",
    "FeedbackSubmission": "sfmodels_core.integration.feedback",
    "ModelReplyError": "sfmodels_core.errors",
    "SFModelsError": "sfmodels_core.errors",
    "SalesforceEmbedding": ".embeddings",
    "SalesforceFeedbackHandler": ".feedback",
    "SalesforceLLM": ".salesforce_llm",
}


__getattr__ = lazy_exports(__name__, _MODULES)


def __dir__() -> list[str]:
    return sorted([*globals(), *__all__])

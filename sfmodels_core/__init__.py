"""sfmodels core: clients for the Salesforce Models API and Databricks model serving.

Depends only on httpx and pydantic; the LangChain and LlamaIndex packages build on it.
"""

from __future__ import annotations

from . import errors
from .databricks import DatabricksClient
from .errors import SFModelsError
from .salesforce import SalesforceClient
from .types import EmbeddingResult, Usage

__version__ = "0.1.0"

__all__ = [
    "DatabricksClient",
    "EmbeddingResult",
    "SFModelsError",
    "SalesforceClient",
    "Usage",
    "errors",
]

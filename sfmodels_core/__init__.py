"""sfmodels core: clients for the Salesforce Models API and Databricks model serving.

Depends only on httpx and pydantic; the LangChain and LlamaIndex packages build on it. Names are
loaded on first use, so importing a light part (``sfmodels_core.errors``, the emulator) does not
pay for the clients.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from . import errors
    from .databricks import DatabricksClient
    from .errors import SFModelsError
    from .salesforce import SalesforceClient
    from .types import EmbeddingResult, Usage

__version__ = "0.1.0"

_EXPORTS = {
    "DatabricksClient": "databricks",
    "EmbeddingResult": "types",
    "SFModelsError": "errors",
    "SalesforceClient": "salesforce",
    "Usage": "types",
}

__all__ = [
    "DatabricksClient",
    "EmbeddingResult",
    "SFModelsError",
    "SalesforceClient",
    "Usage",
    "errors",
]


def __getattr__(name: str) -> Any:
    if name == "errors":
        return importlib.import_module(f"{__name__}.errors")
    module = _EXPORTS.get(name)
    if module is None:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    value = getattr(importlib.import_module(f"{__name__}.{module}"), name)
    globals()[name] = value
    return value

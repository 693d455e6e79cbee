"""sfmodels core: clients for the Salesforce Models API and Databricks model serving.

Depends only on httpx and pydantic; the LangChain, LlamaIndex and Spark packages build on it.
What this module exports is the public surface; ``sfmodels_core.integration`` is the kit the
framework packages share. Names are loaded on first use, so importing a light part
(``sfmodels_core.errors``, ``sfmodels_core.defaults``) does not pay for the HTTP clients.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from . import defaults, errors
    from ._throttle import ThrottleStats
    from .databricks import DatabricksClient
    from .errors import SFModelsError
    from .options import ClientOptions, RetryPolicy
    from .salesforce import SalesforceClient
    from .types import EmbeddingResult, Usage
    from .vectors import Vectors

__version__ = "0.1.0"

_EXPORTS = {
    "ClientOptions": "options",
    "DatabricksClient": "databricks",
    "EmbeddingResult": "types",
    "RetryPolicy": "options",
    "SFModelsError": "errors",
    "SalesforceClient": "salesforce",
    "ThrottleStats": "_throttle",
    "Usage": "types",
    "Vectors": "vectors",
}
_MODULES = ("defaults", "errors")

__all__ = [
    "ClientOptions",
    "DatabricksClient",
    "EmbeddingResult",
    "RetryPolicy",
    "SFModelsError",
    "SalesforceClient",
    "ThrottleStats",
    "Usage",
    "Vectors",
    "defaults",
    "errors",
]


def __getattr__(name: str) -> Any:
    if name in _MODULES:
        return importlib.import_module(f"{__name__}.{name}")
    module = _EXPORTS.get(name)
    if module is None:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    value = getattr(importlib.import_module(f"{__name__}.{module}"), name)
    globals()[name] = value
    return value

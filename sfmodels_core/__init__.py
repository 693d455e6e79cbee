"""sfmodels core: clients for the Salesforce Models API and Databricks model serving.

Depends only on httpx and pydantic; the LangChain, LlamaIndex and Spark packages build on it.
What this module exports is the public surface: the two clients, their options, their results,
what ``client.throttle`` reports, and every error class (all of :mod:`.errors` that can be
raised). ``sfmodels_core.integration`` is the kit the front ends share. Names are loaded on first
use, so importing a light part (``sfmodels_core.errors``, ``sfmodels_core.defaults``) does not pay
for the HTTP clients.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from ._lazy import lazy_exports

if TYPE_CHECKING:
    from . import defaults, errors
    from ._throttle import ThrottleStats
    from .databricks import ChatCompletion, ChatCompletionChunk, Completion, DatabricksClient
    from .errors import (
        APIConnectionError,
        APIStatusError,
        APITimeoutError,
        AuthenticationError,
        BadRequestError,
        BulkEmbeddingError,
        ConfigurationError,
        IncompleteResponseError,
        InvalidInputError,
        ModelReplyError,
        NotFoundError,
        PermissionDeniedError,
        RateLimitError,
        ResponseValidationError,
        ServerError,
        SFModelsError,
        TokenError,
        TokenExpiredError,
    )
    from .options import ClientOptions, RetryPolicy
    from .salesforce import ChatResult, FeedbackResult, GenerationResult, SalesforceClient
    from .types import EmbeddingResult, Usage
    from .vectors import Vectors

__version__ = "0.1.0"

_EXPORTS = {
    "APIConnectionError": ".errors",
    "APIStatusError": ".errors",
    "APITimeoutError": ".errors",
    "AuthenticationError": ".errors",
    "BadRequestError": ".errors",
    "BulkEmbeddingError": ".errors",
    "ChatCompletion": ".databricks",
    "ChatCompletionChunk": ".databricks",
    "ChatResult": ".salesforce",
    "ClientOptions": ".options",
    "Completion": ".databricks",
    "ConfigurationError": ".errors",
    "DatabricksClient": ".databricks",
    "EmbeddingResult": ".types",
    "FeedbackResult": ".salesforce",
    "GenerationResult": ".salesforce",
    "IncompleteResponseError": ".errors",
    "InvalidInputError": ".errors",
    "ModelReplyError": ".errors",
    "NotFoundError": ".errors",
    "PermissionDeniedError": ".errors",
    "RateLimitError": ".errors",
    "ResponseValidationError": ".errors",
    "RetryPolicy": ".options",
    "SFModelsError": ".errors",
    "SalesforceClient": ".salesforce",
    "ServerError": ".errors",
    "ThrottleStats": "._throttle",
    "TokenError": ".errors",
    "TokenExpiredError": ".errors",
    "Usage": ".types",
    "Vectors": ".vectors",
}
_MODULES = ("defaults", "errors")

__all__ = [
    "APIConnectionError",
    "APIStatusError",
    "APITimeoutError",
    "AuthenticationError",
    "BadRequestError",
    "BulkEmbeddingError",
    "ChatCompletion",
    "ChatCompletionChunk",
    "ChatResult",
    "ClientOptions",
    "Completion",
    "ConfigurationError",
    "DatabricksClient",
    "EmbeddingResult",
    "FeedbackResult",
    "GenerationResult",
    "IncompleteResponseError",
    "InvalidInputError",
    "ModelReplyError",
    "NotFoundError",
    "PermissionDeniedError",
    "RateLimitError",
    "ResponseValidationError",
    "RetryPolicy",
    "SFModelsError",
    "SalesforceClient",
    "ServerError",
    "ThrottleStats",
    "TokenError",
    "TokenExpiredError",
    "Usage",
    "Vectors",
    "defaults",
    "errors",
]


__getattr__ = lazy_exports(__name__, _EXPORTS, _MODULES)

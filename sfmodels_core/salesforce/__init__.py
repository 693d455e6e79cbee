"""Salesforce Models API: the client, and the results it returns.

- :mod:`._client`: :class:`SalesforceClient` (chat, generation, embeddings, feedback), the I/O
  around the pure code below.
- :mod:`.models`: the results (``ChatResult``, ``GenerationResult``, ``Generation``,
  ``ContentQuality``, ``FeedbackResult``).
- :mod:`._wire`: request bodies and the parsers of answers and error bodies.

Prompted tool calling and structured output for Salesforce models are
:mod:`sfmodels_core.tool_protocol`. Names are loaded on first use: the result models come
without the client's HTTP stack.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from .._lazy import lazy_exports

if TYPE_CHECKING:
    from ._client import SalesforceClient
    from .models import (
        ChatResult,
        ContentQuality,
        FeedbackResult,
        FeedbackValue,
        Generation,
        GenerationResult,
    )

_EXPORTS = {
    "ChatResult": ".models",
    "ContentQuality": ".models",
    "FeedbackResult": ".models",
    "FeedbackValue": ".models",
    "Generation": ".models",
    "GenerationResult": ".models",
    "SalesforceClient": "._client",
}

__all__ = [
    "ChatResult",
    "ContentQuality",
    "FeedbackResult",
    "FeedbackValue",
    "Generation",
    "GenerationResult",
    "SalesforceClient",
]


__getattr__ = lazy_exports(__name__, _EXPORTS)

"""Databricks Foundation Model APIs: the client, and the results it returns.

- :mod:`._client`: :class:`DatabricksClient` (chat, completions, embeddings, the Responses API),
  the I/O around the pure code below.
- :mod:`.models`: the results (``ChatCompletion``, ``ChatCompletionChunk``, ``Completion``,
  ``ToolCall``...).
- :mod:`._wire`: request bodies and the parsers of answers, stream events and error bodies.
- :mod:`._responses`: the OpenAI Responses API as Databricks serves it (requests, answers and
  the stream state machine).
- :mod:`._stream`: :class:`StreamAccumulator`, the one fold of a Databricks stream.

Names are loaded on first use: the result models and the stream accumulator come without the
client's HTTP stack.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from .._lazy import lazy_exports

if TYPE_CHECKING:
    from ._client import DatabricksClient
    from ._stream import StreamAccumulator
    from ._wire import merge_chunks
    from .models import (
        AssistantMessage,
        ChatChoice,
        ChatCompletion,
        ChatCompletionChunk,
        ChoiceDelta,
        Completion,
        CompletionChoice,
        ToolCall,
        ToolCallDelta,
    )

_EXPORTS = {
    "AssistantMessage": ".models",
    "ChatChoice": ".models",
    "ChatCompletion": ".models",
    "ChatCompletionChunk": ".models",
    "ChoiceDelta": ".models",
    "Completion": ".models",
    "CompletionChoice": ".models",
    "DatabricksClient": "._client",
    "StreamAccumulator": "._stream",
    "ToolCall": ".models",
    "ToolCallDelta": ".models",
    "merge_chunks": "._wire",
}

__all__ = [
    "AssistantMessage",
    "ChatChoice",
    "ChatCompletion",
    "ChatCompletionChunk",
    "ChoiceDelta",
    "Completion",
    "CompletionChoice",
    "DatabricksClient",
    "StreamAccumulator",
    "ToolCall",
    "ToolCallDelta",
    "merge_chunks",
]


__getattr__ = lazy_exports(__name__, _EXPORTS)

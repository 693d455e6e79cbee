"""What the Databricks calls return: chat completions and their stream chunks, completions, tool
calls. Pydantic models that keep the raw body; the parsers in :mod:`._wire` build them."""

from __future__ import annotations

from typing import Any

import pydantic_core
from pydantic import BaseModel, Field

from .._lenient import Index, LenientInt, LenientStr
from ..types import Usage

__all__ = [
    "AssistantMessage",
    "ChatChoice",
    "ChatCompletion",
    "ChatCompletionChunk",
    "ChoiceDelta",
    "Completion",
    "CompletionChoice",
    "ToolCall",
    "ToolCallDelta",
]


class ToolCall(BaseModel):
    """A function call the model asked for. ``arguments`` is the JSON text the model wrote."""

    id: str | None = None
    type: str = "function"
    name: str
    arguments: str = ""

    def parsed_arguments(self) -> Any:
        return pydantic_core.from_json(self.arguments or "{}")


class AssistantMessage(BaseModel):
    """The answer. ``content`` is its text only; a reasoning model's reasoning (the summaries
    of its ``{"type": "reasoning"}`` content parts) is in ``reasoning``."""

    role: str = "assistant"
    content: str | None = None
    tool_calls: list[ToolCall] = Field(default_factory=list)
    reasoning: str | None = None


class ChatChoice(BaseModel):
    index: Index = 0
    message: AssistantMessage
    finish_reason: LenientStr = None


class ChatCompletion(BaseModel):
    """A chat answer; ``text``, ``tool_calls`` and ``finish_reason`` are the first choice's."""

    id: LenientStr = None
    model: LenientStr = None
    created: LenientInt = None
    choices: list[ChatChoice]
    usage: Usage | None = None
    raw: dict[str, Any] = Field(default_factory=dict, repr=False)
    #: What an agent endpoint returned beside the answer (it echoes ``custom_inputs`` or adds
    #: its own); None when the endpoint sent none.
    custom_outputs: dict[str, Any] | None = None

    @property
    def text(self) -> str:
        return (self.choices[0].message.content or "") if self.choices else ""

    @property
    def tool_calls(self) -> list[ToolCall]:
        return self.choices[0].message.tool_calls if self.choices else []

    @property
    def finish_reason(self) -> str | None:
        return self.choices[0].finish_reason if self.choices else None


class ToolCallDelta(BaseModel):
    """A piece of a streamed tool call: pieces with the same ``index`` concatenate. Some
    services send no index (None here); see :class:`~sfmodels_core.integration.StreamAccumulator`
    for how such pieces are placed."""

    index: int | None = None
    id: str | None = None
    name: str | None = None
    arguments: str = ""


class ChoiceDelta(BaseModel):
    index: Index = 0
    role: LenientStr = None
    content: str | None = None
    tool_calls: list[ToolCallDelta] = Field(default_factory=list)
    finish_reason: LenientStr = None
    #: A piece of a reasoning model's reasoning (kept out of ``content``).
    reasoning: str | None = None


class ChatCompletionChunk(BaseModel):
    """One streamed piece. Usage is never on content chunks: a stream ends with one chunk that
    has no choices and the final usage (when the service reported any)."""

    id: LenientStr = None
    model: LenientStr = None
    created: LenientInt = None
    choices: list[ChoiceDelta] = Field(default_factory=list)
    usage: Usage | None = None
    #: An agent endpoint's ``custom_outputs``, on the chunk that carried them.
    custom_outputs: dict[str, Any] | None = None

    @property
    def text(self) -> str:
        return "".join(c.content or "" for c in self.choices if c.index == 0)


class CompletionChoice(BaseModel):
    index: Index = 0
    text: str = ""
    finish_reason: LenientStr = None


class Completion(BaseModel):
    """A completions answer (or, streamed, one piece of it: then ``text`` is the new text)."""

    id: LenientStr = None
    model: LenientStr = None
    created: LenientInt = None
    choices: list[CompletionChoice] = Field(default_factory=list)
    usage: Usage | None = None
    raw: dict[str, Any] = Field(default_factory=dict, repr=False)

    @property
    def text(self) -> str:
        return "".join(c.text for c in self.choices if c.index == 0)

    @property
    def finish_reason(self) -> str | None:
        return self.choices[0].finish_reason if self.choices else None

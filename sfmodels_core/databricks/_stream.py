"""One accumulator for every Databricks stream: chat chunks and completion pieces.

The core's ``stream_chat``/``stream_complete``, ``merge_chunks``, and the streaming paths of the
LangChain and LlamaIndex classes all fold a stream through :class:`StreamAccumulator`, so they
agree on:

- text and reasoning, joined per choice;
- tool calls, assembled per choice by their ``index`` when the service sends one; when it does
  not (Gemini's OpenAI-compatible API), a piece with an id not seen yet starts a new call and a
  piece without an id continues the latest one: two calls are never merged into one;
- usage, counted once: services send it cumulatively on every chunk, with null counts until the
  last chunk, or only on a final chunk with no choices; the last one seen is the stream's, and
  a stream that carried none has ``usage`` None (never zeros presented as counts);
- the finish reason, the response id and the served model.

:meth:`StreamAccumulator.add` returns what one piece added to the first choice (what the
framework classes stream); :meth:`StreamAccumulator.completion` gives the whole answer.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from ..types import Usage
    from .models import ChatCompletion, ChatCompletionChunk, Completion, ToolCall


@dataclass
class ToolCallPiece:
    """A piece of a streamed tool call, placed: ``position`` is the call's place in the answer."""

    position: int
    id: str | None
    name: str | None
    arguments: str


@dataclass
class StreamDelta:
    """What one streamed piece added to the first choice."""

    text: str = ""
    reasoning: str = ""
    tool_calls: list[ToolCallPiece] = field(default_factory=list)

    def __bool__(self) -> bool:
        return bool(self.text or self.reasoning or self.tool_calls)


@dataclass
class _Choice:
    text: list[str] = field(default_factory=list)
    reasoning: list[str] = field(default_factory=list)
    calls: list[dict[str, Any]] = field(default_factory=list)
    by_index: dict[int, int] = field(default_factory=dict)
    finish_reason: str | None = None

    def place(self, index: int | None, ident: str | None) -> int:
        """The position of the call a piece belongs to (see the module docstring)."""
        if index is not None:
            position = self.by_index.get(index)
            if position is None:
                position = self.by_index[index] = self._new()
            return position
        if ident:
            for position, call in enumerate(self.calls):
                if call["id"] == ident:
                    return position
            return self._new()
        return len(self.calls) - 1 if self.calls else self._new()

    def _new(self) -> int:
        self.calls.append({"id": None, "name": "", "arguments": ""})
        return len(self.calls) - 1


class StreamAccumulator:
    """Folds the pieces of one stream (see the module docstring); one instance per stream."""

    def __init__(self) -> None:
        self.id: str | None = None
        self.model: str | None = None
        self.created: int | None = None
        self.usage: Usage | None = None
        #: What an agent endpoint sent beside the answer (the last piece that carried some).
        self.custom_outputs: dict[str, Any] | None = None
        self._choices: dict[int, _Choice] = {}

    def add(self, piece: ChatCompletionChunk | Completion) -> StreamDelta:
        self.id = piece.id or self.id
        self.model = piece.model or self.model
        self.created = piece.created or self.created
        if piece.usage is not None:
            self.usage = piece.usage
        self.custom_outputs = getattr(piece, "custom_outputs", None) or self.custom_outputs
        delta = StreamDelta()
        for choice in piece.choices:
            state = self._choices.setdefault(choice.index, _Choice())
            text = getattr(choice, "content", None) or getattr(choice, "text", None) or ""
            reasoning = getattr(choice, "reasoning", None) or ""
            state.text.append(text)
            state.reasoning.append(reasoning)
            state.finish_reason = choice.finish_reason or state.finish_reason
            pieces = []
            for call in getattr(choice, "tool_calls", ()):
                position = state.place(call.index, call.id)
                placed = state.calls[position]
                placed["id"] = placed["id"] or call.id
                placed["name"] += call.name or ""
                placed["arguments"] += call.arguments
                pieces.append(ToolCallPiece(position, call.id, call.name, call.arguments))
            if choice.index == 0:
                delta = StreamDelta(text, reasoning, pieces)
        return delta

    @property
    def answered(self) -> bool:
        """Whether any piece carried a choice (a stream of none holds no answer)."""
        return bool(self._choices)

    @property
    def complete(self) -> bool:
        """Whether every choice of the stream has its finish reason."""
        return bool(self._choices) and all(c.finish_reason for c in self._choices.values())

    # -- the answer so far (first choice)
    def _first(self) -> _Choice:
        return self._choices.get(0) or _Choice()

    @property
    def text(self) -> str:
        return "".join(self._first().text)

    @property
    def reasoning(self) -> str | None:
        return "".join(self._first().reasoning) or None

    @property
    def finish_reason(self) -> str | None:
        return self._first().finish_reason

    @property
    def tool_calls(self) -> list[ToolCall]:
        return _tool_calls(self._first())

    def completion(self) -> ChatCompletion:
        """The chat completion the stream adds up to, every choice."""
        from .models import AssistantMessage, ChatChoice, ChatCompletion

        choices = [ChatChoice(index=index, finish_reason=state.finish_reason,
                              message=AssistantMessage(content="".join(state.text),
                                                       reasoning="".join(state.reasoning) or None,
                                                       tool_calls=_tool_calls(state)))
                   for index, state in sorted(self._choices.items())]
        return ChatCompletion(id=self.id, model=self.model, created=self.created,
                              choices=choices, usage=self.usage,
                              custom_outputs=self.custom_outputs)


def _tool_calls(state: _Choice) -> list[ToolCall]:
    from .models import ToolCall

    return [ToolCall(**call) for call in state.calls]

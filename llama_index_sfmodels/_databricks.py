"""Pure converters between LlamaIndex and Databricks model serving, for ``DatabricksLLM``.

Streams are folded by the core's :class:`~sfmodels_core.databricks.StreamAccumulator`;
:class:`ChatStream` only turns the answer so far into one ``ChatResponse`` per piece.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

from llama_index.core.base.llms.types import (
    ChatMessage,
    ChatResponse,
    ImageBlock,
    TextBlock,
    ToolCallBlock,
)

from sfmodels_core.databricks import StreamAccumulator
from sfmodels_core.errors import InvalidInputError

from ._common import (
    SKIPPED_BLOCKS,
    arguments_text,
    assistant_message,
    block_name,
    legacy_tool_calls,
    require_messages,
    role_of,
    usage_kwargs,
)

if TYPE_CHECKING:
    from sfmodels_core.databricks import ChatCompletion, ChatCompletionChunk
    from sfmodels_core.types import Usage

ROLES = ("system", "user", "assistant", "tool")


def _image_part(block: ImageBlock) -> dict[str, Any]:
    url = str(block.url) if block.url is not None and block.image is None else block.inline_url()
    part: dict[str, Any] = {"type": "image_url", "image_url": {"url": url}}
    if block.detail:
        part["image_url"]["detail"] = block.detail
    return part


def to_databricks_messages(messages: Sequence[ChatMessage]) -> list[dict[str, Any]]:
    """OpenAI-style chat messages: text, images, assistant tool calls and tool results."""
    out = []
    for i, message in enumerate(require_messages(messages)):
        role = role_of(message)
        if role not in ROLES:
            raise InvalidInputError(
                f"messages[{i}] has role {role!r}; the Databricks chat API accepts only "
                f"{', '.join(repr(r) for r in ROLES)} messages.")
        texts: list[str] = []
        parts: list[dict[str, Any]] = []
        calls: list[dict[str, Any]] = []
        for block in message.blocks:
            if isinstance(block, TextBlock):
                texts.append(block.text)
                parts.append({"type": "text", "text": block.text})
            elif isinstance(block, ImageBlock) and role == "user":
                parts.append(_image_part(block))
            elif isinstance(block, ToolCallBlock) and role == "assistant":
                calls.append({"id": block.tool_call_id, "type": "function",
                              "function": {"name": block.tool_name,
                                           "arguments": arguments_text(block.tool_kwargs)}})
            elif not isinstance(block, SKIPPED_BLOCKS):
                raise InvalidInputError(
                    f"messages[{i}] ({role}) contains a {block_name(block)}; Databricks chat "
                    "messages take text, images on user messages, and tool calls on assistant "
                    "messages.")
        if role == "assistant" and not calls:
            calls = legacy_tool_calls(message, i)
        content: Any = "\n".join(texts)
        if len(parts) > len(texts):  # images: keep the parts, in order
            content = parts
        item: dict[str, Any] = {"role": role, "content": content}
        if calls:
            if any(not isinstance(c["id"], str) or not c["id"] for c in calls):
                raise InvalidInputError(f"messages[{i}] has a tool call without an id")
            item["tool_calls"] = calls
            if not texts:
                item["content"] = None
        if role == "tool":
            call_id = message.additional_kwargs.get("tool_call_id")
            if not isinstance(call_id, str) or not call_id:
                raise InvalidInputError(
                    f"messages[{i}] is a tool result without additional_kwargs['tool_call_id']")
            item["tool_call_id"] = call_id
        out.append(item)
    return out


def _kwargs(ident: str | None, model: str | None, finish_reason: str | None,
            usage: Usage | None, custom_outputs: Any = None) -> dict[str, Any]:
    out = {"id": ident, "model": model, "finish_reason": finish_reason, **usage_kwargs(usage)}
    if custom_outputs is not None:  # what an agent endpoint sent beside the answer
        out["custom_outputs"] = custom_outputs
    return out


def chat_response(result: ChatCompletion) -> ChatResponse:
    calls = [(c.id, c.name, c.arguments) for c in result.tool_calls]
    return ChatResponse(
        message=assistant_message(result.text, calls, result.choices[0].message.reasoning
                                  if result.choices else None), raw=result.raw,
        additional_kwargs=_kwargs(result.id, result.model, result.finish_reason, result.usage,
                                  result.custom_outputs))


class ChatStream:
    """One ``ChatResponse`` per streamed piece, each holding the whole answer so far.

    Usage arrives once, on the core's final chunk (no choices): only that response carries it,
    so a stream's tokens are counted once.
    """

    def __init__(self) -> None:
        self.state = StreamAccumulator()

    def add(self, chunk: ChatCompletionChunk) -> ChatResponse:
        state = self.state
        delta = state.add(chunk)
        calls = [(c.id, c.name, c.arguments) for c in state.tool_calls]
        return ChatResponse(
            message=assistant_message(state.text, calls, state.reasoning), delta=delta.text,
            raw=chunk.model_dump(exclude_none=True),
            additional_kwargs=_kwargs(state.id, state.model, state.finish_reason, chunk.usage,
                                      state.custom_outputs))


def first_tool_call_only(response: ChatResponse) -> ChatResponse:
    """Keep the first tool call when parallel calls were not allowed (LlamaIndex's convention
    for endpoints that call tools natively, as its OpenAI integration does)."""
    blocks = response.message.blocks
    first = next((i for i, b in enumerate(blocks) if isinstance(b, ToolCallBlock)), None)
    if first is not None:
        response.message.blocks = [b for i, b in enumerate(blocks)
                                   if i <= first or not isinstance(b, ToolCallBlock)]
    return response

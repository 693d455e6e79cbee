"""Pure helpers both LlamaIndex LLM classes share: the conversation, tool selections, usage.

Nothing here does I/O: the sync and async methods call the same functions and differ only in
how they reach the service.
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from typing import TYPE_CHECKING, Any

from llama_index.core.base.llms.types import (
    CachePoint,
    ChatMessage,
    ChatResponse,
    MessageRole,
    TextBlock,
    ThinkingBlock,
    ToolCallBlock,
)
from llama_index.core.llms.llm import ToolSelection
from llama_index.core.llms.utils import parse_partial_json

from sfmodels_core.errors import InvalidInputError, ModelReplyError

if TYPE_CHECKING:
    from llama_index.core.tools.types import BaseTool

    from sfmodels_core.types import Usage

#: Blocks that carry no input for the model: reasoning echoed back and prompt-cache hints.
SKIPPED_BLOCKS = (ThinkingBlock, CachePoint)


def role_of(message: ChatMessage) -> str:
    return message.role.value if isinstance(message.role, MessageRole) else str(message.role)


def block_name(block: object) -> str:
    kind = getattr(block, "block_type", None)
    return f"{kind} block" if isinstance(kind, str) else type(block).__name__


def require_prompt(prompt: Any) -> str:
    """A completion prompt, which must be text."""
    if not isinstance(prompt, str):
        raise InvalidInputError(f"prompt must be a string, got {type(prompt).__name__}")
    return prompt


def require_messages(messages: Sequence[Any]) -> Sequence[ChatMessage]:
    if not messages:
        raise InvalidInputError("messages must not be empty")
    for i, message in enumerate(messages):
        if not isinstance(message, ChatMessage):
            raise InvalidInputError(
                f"messages[{i}] must be a ChatMessage, got {type(message).__name__}")
    return messages


def conversation(user_msg: str | ChatMessage | None,
                 chat_history: Sequence[ChatMessage] | None) -> list[ChatMessage]:
    """The history followed by the new user message, as ``_prepare_chat_with_tools`` gets them."""
    messages = list(chat_history or [])
    if isinstance(user_msg, str):
        messages.append(ChatMessage(role=MessageRole.USER, content=user_msg))
    elif user_msg is not None:
        messages.append(user_msg)
    return messages


def tool_specs(tools: Sequence[Any]) -> list[dict[str, Any]]:
    """OpenAI-style function dicts for LlamaIndex tools (dicts are taken as they are)."""
    specs: list[dict[str, Any]] = []
    for i, tool in enumerate(tools):
        if isinstance(tool, Mapping):
            specs.append(dict(tool))
            continue
        metadata = getattr(tool, "metadata", None)
        if metadata is None or not hasattr(metadata, "to_openai_tool"):
            raise InvalidInputError(
                f"tools[{i}] must be a LlamaIndex tool or an OpenAI-style function dict, "
                f"got {type(tool).__name__}")
        specs.append(metadata.to_openai_tool(skip_length_check=True))
    return specs


def tool_names(specs: Sequence[Mapping[str, Any]]) -> list[str]:
    return [str((spec.get("function") or spec).get("name")) for spec in specs]


def usage_kwargs(usage: Usage | None) -> dict[str, int]:
    """Token counts under the keys LlamaIndex's token counting reads."""
    if usage is None:
        return {}
    return {"prompt_tokens": usage.prompt_tokens, "completion_tokens": usage.completion_tokens,
            "total_tokens": usage.total_tokens}


def parsed_arguments(arguments: Any) -> Any:
    """Tool-call arguments as an object where they parse as one (else as the model wrote them:
    a stream's arguments are incomplete until its end)."""
    if isinstance(arguments, Mapping):
        return dict(arguments)
    if not isinstance(arguments, str):
        return arguments
    try:
        value = json.loads(arguments) if arguments else {}
    except ValueError:
        return arguments
    return value if isinstance(value, dict) else arguments


def assistant_message(text: str, calls: Sequence[tuple[str | None, str, Any]],
                      reasoning: str | None = None) -> ChatMessage:
    """An assistant message: the model's reasoning as a ``ThinkingBlock`` (when it reasoned),
    its text, then one ``ToolCallBlock`` per (id, name, arguments)."""
    blocks: list[Any] = [ThinkingBlock(content=reasoning)] if reasoning else []
    if text or not calls:
        blocks.append(TextBlock(text=text))
    blocks.extend(ToolCallBlock(tool_call_id=call_id, tool_name=name,
                                tool_kwargs=parsed_arguments(arguments))
                  for call_id, name, arguments in calls)
    return ChatMessage(role=MessageRole.ASSISTANT, blocks=blocks)


class ToolCalling:
    """The ``FunctionCallingLLM`` steps both LLM classes share; each says in
    ``_tool_options`` how its provider takes tools (natively, or through the prompted
    protocol)."""

    def _tool_options(self, tools: list[Any], tool_choice: Any, tool_required: bool,
                      parallel: bool) -> dict[str, Any]:  # pragma: no cover - overridden
        raise NotImplementedError

    def _prepare_chat_with_tools(
        self,
        tools: Sequence[BaseTool],
        user_msg: str | ChatMessage | None = None,
        chat_history: list[ChatMessage] | None = None,
        verbose: bool = False,
        allow_parallel_tool_calls: bool = False,
        tool_required: bool = False,
        tool_choice: str | dict[str, Any] | None = None,
        **kwargs: Any,
    ) -> dict[str, Any]:
        prepared: dict[str, Any] = {"messages": conversation(user_msg, chat_history), **kwargs}
        if tools:
            prepared.update(self._tool_options(list(tools), tool_choice, tool_required,
                                               allow_parallel_tool_calls))
        return prepared

    def get_tool_calls_from_response(
        self,
        response: ChatResponse,
        error_on_no_tool_call: bool = True,
        **kwargs: Any,
    ) -> list[ToolSelection]:
        """The tool calls of a response. Raises ``ValueError`` when none was made and
        ``error_on_no_tool_call``, and :class:`ModelReplyError` (a ``ValueError``) when a
        Salesforce model's reply was still unusable after its repair round."""
        problems = response.additional_kwargs.get("protocol_errors")
        if problems:
            raise ModelReplyError(
                "The model's reply could not be used as tool calls, even after one repair "
                "round: " + "; ".join(problems), problems=problems, provider="Salesforce",
                body=response.raw)
        return tool_selections(response, error_on_no_tool_call)


def tool_selections(response: ChatResponse, error_on_no_tool_call: bool = True) -> list[
        ToolSelection]:
    calls = [b for b in response.message.blocks if isinstance(b, ToolCallBlock)]
    if not calls and error_on_no_tool_call:
        raise ValueError(
            f"Expected at least one tool call, but the model answered in text: "
            f"{(response.message.content or '')[:200]!r}")
    selections = []
    for call in calls:
        kwargs = call.tool_kwargs
        if isinstance(kwargs, str):
            try:
                kwargs = parse_partial_json(kwargs) if kwargs.strip() else {}
            except (ValueError, TypeError):
                kwargs = {}
        selections.append(ToolSelection(tool_id=call.tool_call_id or "",
                                        tool_name=call.tool_name,
                                        tool_kwargs=kwargs if isinstance(kwargs, dict) else {}))
    return selections


def legacy_tool_calls(message: ChatMessage, index: int) -> list[dict[str, Any]]:
    """Tool calls kept in ``additional_kwargs["tool_calls"]`` by other integrations (OpenAI
    objects or dicts), as ``{"id", "type", "function": {"name", "arguments": str}}``."""
    calls = []
    for j, call in enumerate(message.additional_kwargs.get("tool_calls") or []):
        data = call.model_dump() if hasattr(call, "model_dump") else call
        function = data.get("function") if isinstance(data, Mapping) else None
        if not isinstance(function, Mapping) or not isinstance(function.get("name"), str):
            raise InvalidInputError(f"messages[{index}].tool_calls[{j}] is not a tool call with "
                                    "a function name")
        arguments = function.get("arguments") or {}
        ident = data.get("id")
        calls.append({"id": ident if isinstance(ident, str) else None, "type": "function",
                      "function": {"name": function["name"], "arguments": arguments_text(
                          arguments)}})
    return calls


def arguments_text(arguments: Mapping[str, Any] | str) -> str:
    return arguments if isinstance(arguments, str) else json.dumps(arguments,
                                                                   ensure_ascii=False)

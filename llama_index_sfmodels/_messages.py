"""Pure converters between LlamaIndex messages and responses and the core's dicts and results.

Nothing here does I/O: the sync and async methods of the LLM classes call the same functions and
differ only in how they reach the service.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Mapping, Sequence
from typing import TYPE_CHECKING, Any

from llama_index.core.base.llms.types import (
    CachePoint,
    ChatMessage,
    ChatResponse,
    CompletionResponse,
    ImageBlock,
    MessageRole,
    TextBlock,
    ThinkingBlock,
    ToolCallBlock,
)
from llama_index.core.llms.llm import ToolSelection
from llama_index.core.llms.utils import parse_partial_json

from sfmodels_core.adapters import apply_stop
from sfmodels_core.errors import InvalidInputError
from sfmodels_core.tool_protocol import render_history

if TYPE_CHECKING:
    from llama_index.core.tools.types import BaseTool

    from sfmodels_core.databricks import ChatCompletion, ChatCompletionChunk
    from sfmodels_core.salesforce import ChatResult, GenerationResult
    from sfmodels_core.types import Usage

DATABRICKS_ROLES = ("system", "user", "assistant", "tool")
#: Blocks that carry no input for the model: reasoning echoed back and prompt-cache hints.
_SKIPPED_BLOCKS = (ThinkingBlock, CachePoint)


def _role(message: ChatMessage, index: int, accepted: Sequence[str], api: str) -> str:
    role = message.role.value if isinstance(message.role, MessageRole) else str(message.role)
    if role not in accepted:
        raise InvalidInputError(
            f"messages[{index}] has role {role!r}; the {api} accepts only "
            f"{', '.join(repr(r) for r in accepted)} messages.")
    return role


def _block_name(block: object) -> str:
    kind = getattr(block, "block_type", None)
    return f"{kind} block" if isinstance(kind, str) else type(block).__name__


# -- Salesforce -----------------------------------------------------------------------------------
_SALESFORCE_ACCEPTS = ("The Salesforce Models API takes only text: messages with the roles "
                       "'system', 'user' and 'assistant', plus tool calls and tool results, which "
                       "are sent as text (no images, audio or documents).")
_PROTOCOL_ROLES = ("system", "user", "assistant", "tool")


def _call_arguments(arguments: Any) -> Any:
    """Tool-call arguments as an object where they parse as one (else as the model wrote them)."""
    if isinstance(arguments, str):
        return _parsed_arguments(arguments)
    return dict(arguments) if isinstance(arguments, Mapping) else arguments


def to_neutral_messages(messages: Sequence[ChatMessage]) -> list[dict[str, Any]]:
    """The messages in the tool protocol's neutral shape.

    ``{"role", "content"}`` for text, with ``tool_calls: [{"id", "name", "arguments"}]`` on
    assistant messages that called tools (``ToolCallBlock``s, else the
    ``additional_kwargs["tool_calls"]`` other integrations keep), and ``tool_call_id`` on tool
    results. Images, audio and documents are refused.
    """
    if not messages:
        raise InvalidInputError("messages must not be empty")
    out = []
    for i, message in enumerate(messages):
        if not isinstance(message, ChatMessage):
            raise InvalidInputError(
                f"messages[{i}] must be a ChatMessage, got {type(message).__name__}")
        role = message.role.value if isinstance(message.role, MessageRole) else str(message.role)
        if role not in _PROTOCOL_ROLES:
            raise InvalidInputError(f"messages[{i}] has role {role!r}. {_SALESFORCE_ACCEPTS}")
        texts: list[str] = []
        calls: list[dict[str, Any]] = []
        for block in message.blocks:
            if isinstance(block, TextBlock):
                texts.append(block.text)
            elif isinstance(block, ToolCallBlock) and role == "assistant":
                calls.append({"id": block.tool_call_id, "name": block.tool_name,
                              "arguments": _call_arguments(block.tool_kwargs)})
            elif not isinstance(block, _SKIPPED_BLOCKS):
                raise InvalidInputError(
                    f"messages[{i}] ({role}) contains a {_block_name(block)}. "
                    f"{_SALESFORCE_ACCEPTS}")
        legacy = message.additional_kwargs.get("tool_calls")
        if legacy and role != "assistant":
            raise InvalidInputError(f"messages[{i}] ({role}) carries tool calls; only assistant "
                                    "messages can.")
        if legacy and not calls:
            for j, call in enumerate(legacy):
                function = _legacy_tool_call(call, f"messages[{i}].tool_calls[{j}]")["function"]
                calls.append({"id": _legacy_id(call), "name": function["name"],
                              "arguments": _call_arguments(function["arguments"])})
        item: dict[str, Any] = {"role": role, "content": "\n".join(texts)}
        if calls:
            item["tool_calls"] = calls
        if role == "tool":
            item["tool_call_id"] = message.additional_kwargs.get("tool_call_id")
            name = message.additional_kwargs.get("name") or message.additional_kwargs.get(
                "tool_name")
            if isinstance(name, str) and name:
                item["name"] = name
        out.append(item)
    return out


def require_prompt(prompt: Any) -> str:
    """A completion prompt, which must be text."""
    if not isinstance(prompt, str):
        raise InvalidInputError(f"prompt must be a string, got {type(prompt).__name__}")
    return prompt


def conversation(user_msg: str | ChatMessage | None,
                 chat_history: Sequence[ChatMessage] | None) -> list[ChatMessage]:
    """The history followed by the new user message, as ``_prepare_chat_with_tools`` gets them."""
    messages = list(chat_history or [])
    if isinstance(user_msg, str):
        messages.append(ChatMessage(role=MessageRole.USER, content=user_msg))
    elif user_msg is not None:
        messages.append(user_msg)
    return messages


def has_tool_turns(messages: Sequence[Mapping[str, Any]]) -> bool:
    """Whether neutral messages hold tool calls or tool results."""
    return any(m["role"] == "tool" or m.get("tool_calls") for m in messages)


def to_salesforce_messages(messages: Sequence[ChatMessage]) -> list[dict[str, str]]:
    """``[{"role", "content"}]`` for chat-generations: text blocks joined; tool calls and tool
    results rendered as text by the core (without any tool instructions); media refused."""
    neutral = to_neutral_messages(messages)
    if not has_tool_turns(neutral):
        return [{"role": m["role"], "content": m["content"]} for m in neutral]
    return render_history(neutral, "")


def usage_kwargs(usage: Usage | None) -> dict[str, int]:
    """Token counts under the keys LlamaIndex's token counting reads."""
    if usage is None:
        return {}
    return {"prompt_tokens": usage.prompt_tokens, "completion_tokens": usage.completion_tokens,
            "total_tokens": usage.total_tokens}


def salesforce_kwargs(result: ChatResult, finish_reason: str | None) -> dict[str, Any]:
    """What a Salesforce response carries besides its text: ids, model, usage, safety scores."""
    first = result.generations[0] if result.generations else None
    extra: dict[str, Any] = {"id": result.id, "generation_id": result.generation_id,
                             "model": result.model, "finish_reason": finish_reason,
                             **usage_kwargs(result.usage)}
    if first is not None and first.content_quality is not None:
        extra["content_quality"] = first.content_quality.model_dump()
    return extra


def _cut(text: str, finish_reason: str | None,
         stop: Sequence[str] | None) -> tuple[str, str | None]:
    text, stopped = apply_stop(text, stop)
    return text, ("stop" if stopped else finish_reason)


def salesforce_raw(body: Mapping[str, Any], kwargs: Mapping[str, Any]) -> dict[str, Any]:
    """The Salesforce body, with the call's token counts also under a top-level ``usage``: the
    Models API nests them, and LlamaIndex's TokenCountingHandler reads only ``raw["usage"]``."""
    usage = {k: kwargs[k] for k in ("prompt_tokens", "completion_tokens", "total_tokens")
             if k in kwargs}
    return {**body, "usage": usage or None}


def salesforce_chat_response(result: ChatResult, stop: Sequence[str] | None = None,
                             *, stream: bool = False) -> ChatResponse:
    text, finish = _cut(result.text, result.finish_reason, stop)
    extra = salesforce_kwargs(result, finish)
    return ChatResponse(
        message=ChatMessage(role=MessageRole.ASSISTANT, content=text),
        raw=salesforce_raw(result.raw, extra), delta=text if stream else None,
        additional_kwargs=extra)


def salesforce_completion_response(result: GenerationResult, stop: Sequence[str] | None = None,
                                   *, stream: bool = False) -> CompletionResponse:
    text, finish = _cut(result.text, result.finish_reason, stop)
    extra = salesforce_kwargs(result, finish)
    return CompletionResponse(text=text, raw=salesforce_raw(result.raw, extra),
                              delta=text if stream else None, additional_kwargs=extra)


# -- Databricks -----------------------------------------------------------------------------------
def _image_part(block: ImageBlock) -> dict[str, Any]:
    url = str(block.url) if block.url is not None and block.image is None else block.inline_url()
    part: dict[str, Any] = {"type": "image_url", "image_url": {"url": url}}
    if block.detail:
        part["image_url"]["detail"] = block.detail
    return part


def _arguments(kwargs: Mapping[str, Any] | str) -> str:
    return kwargs if isinstance(kwargs, str) else json.dumps(kwargs, ensure_ascii=False)


def _legacy_id(call: Any) -> str | None:
    ident = call.get("id") if isinstance(call, Mapping) else getattr(call, "id", None)
    return ident if isinstance(ident, str) else None


def _legacy_tool_call(call: Any, where: str) -> dict[str, Any]:
    """A tool call kept in ``additional_kwargs["tool_calls"]`` (OpenAI objects or dicts)."""
    data = call.model_dump() if hasattr(call, "model_dump") else call
    function = data.get("function") if isinstance(data, Mapping) else None
    if not isinstance(function, Mapping) or not isinstance(function.get("name"), str):
        raise InvalidInputError(f"{where} is not a tool call with a function name")
    return {"id": data.get("id"), "type": "function",
            "function": {"name": function["name"],
                         "arguments": _arguments(function.get("arguments") or {})}}


def to_databricks_messages(messages: Sequence[ChatMessage]) -> list[dict[str, Any]]:
    """OpenAI-style chat messages: text, images, assistant tool calls and tool results."""
    if not messages:
        raise InvalidInputError("messages must not be empty")
    out = []
    for i, message in enumerate(messages):
        if not isinstance(message, ChatMessage):
            raise InvalidInputError(
                f"messages[{i}] must be a ChatMessage, got {type(message).__name__}")
        role = _role(message, i, DATABRICKS_ROLES, "Databricks chat API")
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
                                           "arguments": _arguments(block.tool_kwargs)}})
            elif not isinstance(block, _SKIPPED_BLOCKS):
                raise InvalidInputError(
                    f"messages[{i}] ({role}) contains a {_block_name(block)}; Databricks chat "
                    "messages take text, images on user messages, and tool calls on assistant "
                    "messages.")
        if role == "assistant" and not calls:
            legacy = message.additional_kwargs.get("tool_calls") or []
            calls = [_legacy_tool_call(c, f"messages[{i}].tool_calls[{j}]")
                     for j, c in enumerate(legacy)]
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


def tool_specs(tools: Sequence[BaseTool]) -> list[dict[str, Any]]:
    return [tool.metadata.to_openai_tool(skip_length_check=True) for tool in tools]


def resolve_tool_choice(tool_choice: str | Mapping[str, Any] | None,
                        tool_required: bool) -> str | dict[str, Any]:
    """``auto``/``required``/``none``, or a tool name turned into a forced function choice."""
    if tool_choice is None:
        return "required" if tool_required else "auto"
    if isinstance(tool_choice, Mapping):
        return dict(tool_choice)
    if tool_choice in ("auto", "required", "none"):
        return tool_choice
    return {"type": "function", "function": {"name": tool_choice}}


def _parsed_arguments(arguments: str) -> dict[str, Any] | str:
    try:
        value = json.loads(arguments) if arguments else {}
    except ValueError:
        return arguments  # incomplete while streaming
    return value if isinstance(value, dict) else arguments


def _assistant_message(text: str, calls: Sequence[tuple[str | None, str, str]]) -> ChatMessage:
    blocks: list[Any] = [TextBlock(text=text)] if text or not calls else []
    blocks.extend(ToolCallBlock(tool_call_id=call_id, tool_name=name,
                                tool_kwargs=_parsed_arguments(arguments))
                  for call_id, name, arguments in calls)
    return ChatMessage(role=MessageRole.ASSISTANT, blocks=blocks)


def _databricks_kwargs(ident: str | None, model: str | None, finish_reason: str | None,
                       usage: Usage | None) -> dict[str, Any]:
    return {"id": ident, "model": model, "finish_reason": finish_reason, **usage_kwargs(usage)}


def databricks_chat_response(result: ChatCompletion) -> ChatResponse:
    calls = [(c.id, c.name, c.arguments) for c in result.tool_calls]
    return ChatResponse(
        message=_assistant_message(result.text, calls), raw=result.raw,
        additional_kwargs={**_databricks_kwargs(result.id, result.model, result.finish_reason,
                                                result.usage),
                           **({"custom_outputs": result.custom_outputs}
                              if result.custom_outputs is not None else {})})


class ChatStream:
    """Folds streamed chunks into the growing answer, one ``ChatResponse`` per chunk.

    Usage arrives once, on the core's final chunk (no choices): only that response carries it,
    so a stream's tokens are counted once.
    """

    def __init__(self) -> None:
        self._text: list[str] = []
        self._calls: dict[int, list[Any]] = {}
        self._id: str | None = None
        self._model: str | None = None
        self._finish: str | None = None

    def add(self, chunk: ChatCompletionChunk) -> ChatResponse:
        self._id, self._model = chunk.id or self._id, chunk.model or self._model
        delta = chunk.text
        self._text.append(delta)
        for choice in chunk.choices:
            if choice.index != 0:
                continue
            self._finish = choice.finish_reason or self._finish
            for piece in choice.tool_calls:
                call = self._calls.setdefault(piece.index, [None, "", ""])
                call[0] = piece.id or call[0]
                call[1] += piece.name or ""
                call[2] += piece.arguments
        calls = [(c[0], c[1], c[2]) for _, c in sorted(self._calls.items())]
        return ChatResponse(
            message=_assistant_message("".join(self._text), calls),
            delta=delta, raw=chunk.model_dump(exclude_none=True),
            additional_kwargs=_databricks_kwargs(self._id, self._model, self._finish,
                                                 chunk.usage))


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


def first_tool_call_only(response: ChatResponse) -> ChatResponse:
    """Keep the first tool call when parallel calls were not allowed."""
    blocks = response.message.blocks
    first = next((i for i, b in enumerate(blocks) if isinstance(b, ToolCallBlock)), None)
    if first is not None:
        response.message.blocks = [b for i, b in enumerate(blocks)
                                   if i <= first or not isinstance(b, ToolCallBlock)]
    return response


# -- feedback -------------------------------------------------------------------------------------
def text_key(text: str) -> str:
    """A short key for an answer's text, whitespace-insensitive."""
    normal = " ".join(text.split())
    return "text:" + hashlib.sha256(normal.encode("utf-8")).hexdigest()[:32]

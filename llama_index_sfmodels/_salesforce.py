"""Pure converters between LlamaIndex and the Salesforce Models API, for ``SalesforceLLM``.

In: LlamaIndex messages become the API's text messages, or the neutral history the prompted
tool protocol renders. Out: a call's
:class:`~sfmodels_core.integration.salesforce.SalesforceAnswer` becomes a ``ChatResponse``
(``ToolCallBlock``s for tool calls, the parsed object in ``additional_kwargs``), and a
``generations`` result a ``CompletionResponse``. The class adds only I/O.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import TYPE_CHECKING, Any, TypeVar

from llama_index.core.base.llms.types import (
    ChatMessage,
    ChatResponse,
    CompletionResponse,
    TextBlock,
    ToolCallBlock,
)
from pydantic import BaseModel

from sfmodels_core.errors import InvalidInputError, ModelReplyError
from sfmodels_core.integration.salesforce import SalesforceAnswer, apply_stop
from sfmodels_core.tool_protocol import render_history

from ._common import (
    SKIPPED_BLOCKS,
    assistant_message,
    block_name,
    legacy_tool_calls,
    parsed_arguments,
    require_messages,
    role_of,
    usage_kwargs,
)

if TYPE_CHECKING:
    from sfmodels_core.salesforce import GenerationResult

M = TypeVar("M", bound=BaseModel)

_ACCEPTS = ("The Salesforce Models API takes only text: messages with the roles 'system', "
            "'user' and 'assistant', plus tool calls and tool results, which are sent as text "
            "(no images, audio or documents).")
_ROLES = ("system", "user", "assistant", "tool")


# -- messages in ----------------------------------------------------------------------------------
def to_neutral_messages(messages: Sequence[ChatMessage]) -> list[dict[str, Any]]:
    """The messages in the tool protocol's neutral shape.

    ``{"role", "content"}`` for text, with ``tool_calls: [{"id", "name", "arguments"}]`` on
    assistant messages that called tools (``ToolCallBlock``s, else the
    ``additional_kwargs["tool_calls"]`` other integrations keep), and ``tool_call_id`` on tool
    results. Images, audio and documents are refused.
    """
    out = []
    for i, message in enumerate(require_messages(messages)):
        role = role_of(message)
        if role not in _ROLES:
            raise InvalidInputError(f"messages[{i}] has role {role!r}. {_ACCEPTS}")
        texts: list[str] = []
        calls: list[dict[str, Any]] = []
        for block in message.blocks:
            if isinstance(block, TextBlock):
                texts.append(block.text)
            elif isinstance(block, ToolCallBlock) and role == "assistant":
                calls.append({"id": block.tool_call_id, "name": block.tool_name,
                              "arguments": parsed_arguments(block.tool_kwargs)})
            elif not isinstance(block, SKIPPED_BLOCKS):
                raise InvalidInputError(
                    f"messages[{i}] ({role}) contains a {block_name(block)}. {_ACCEPTS}")
        if message.additional_kwargs.get("tool_calls") and role != "assistant":
            raise InvalidInputError(f"messages[{i}] ({role}) carries tool calls; only assistant "
                                    "messages can.")
        if not calls:
            calls = [{"id": c["id"], "name": c["function"]["name"],
                      "arguments": parsed_arguments(c["function"]["arguments"])}
                     for c in legacy_tool_calls(message, i)]
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


def to_salesforce_messages(messages: Sequence[ChatMessage]) -> list[dict[str, Any]]:
    """``[{"role", "content"}]`` for chat-generations: text blocks joined; tool calls and tool
    results rendered as text by the core (without any tool instructions); media refused."""
    neutral = to_neutral_messages(messages)
    if not any(m["role"] == "tool" or m.get("tool_calls") for m in neutral):
        return [{"role": m["role"], "content": m["content"]} for m in neutral]
    return list(render_history(neutral, ""))


# -- answers out ----------------------------------------------------------------------------------
def _raw(body: Mapping[str, Any], extra: Mapping[str, Any]) -> dict[str, Any]:
    """The Salesforce body, with the call's token counts also under a top-level ``usage``: the
    Models API nests them, and LlamaIndex's TokenCountingHandler reads only ``raw["usage"]``."""
    usage = {k: extra[k] for k in ("prompt_tokens", "completion_tokens", "total_tokens")
             if k in extra}
    return {**body, "usage": usage or None}


def chat_response(answer: SalesforceAnswer, *, stream: bool = False) -> ChatResponse:
    """The answer as LlamaIndex expects it: ``ToolCallBlock``s for the calls (as
    ``DatabricksLLM`` returns them), else the text; ids, usage and what went wrong in
    ``additional_kwargs``."""
    quality = answer.content_quality
    extra: dict[str, Any] = {
        "id": answer.result.id, "generation_id": answer.generation_id,
        "generation_ids": answer.generation_ids, "model": answer.result.model,
        "finish_reason": answer.finish_reason, **usage_kwargs(answer.usage)}
    if quality is not None:
        extra["content_quality"] = quality.model_dump()
    if answer.protocol is not None:
        extra["repaired"] = answer.repaired
        if answer.problems:
            extra["protocol_errors"] = answer.problems
    if answer.invalid_tool_calls:
        extra["invalid_tool_calls"] = [
            {"id": c.id, "name": c.name, "arguments": c.arguments, "error": c.error}
            for c in answer.invalid_tool_calls]
    if answer.protocol == "json":
        extra["structured_output"] = answer.structured
    message = assistant_message(answer.text, [(c.id, c.name, c.arguments)
                                              for c in answer.tool_calls])
    return ChatResponse(message=message, raw=_raw(answer.result.raw, extra),
                        delta=answer.text if stream else None, additional_kwargs=extra)


def completion_response(result: GenerationResult, stop: Sequence[str] | None = None,
                        *, stream: bool = False) -> CompletionResponse:
    text, stopped = apply_stop(result.text, stop)
    first = result.generations[0] if result.generations else None
    extra: dict[str, Any] = {
        "id": result.id, "generation_id": result.generation_id,
        "generation_ids": [result.generation_id] if result.generation_id else [],
        "model": result.model, "finish_reason": "stop" if stopped else result.finish_reason,
        **usage_kwargs(result.usage)}
    if first is not None and first.content_quality is not None:
        extra["content_quality"] = first.content_quality.model_dump()
    return CompletionResponse(text=text, raw=_raw(result.raw, extra),
                              delta=text if stream else None, additional_kwargs=extra)


# -- reading responses ----------------------------------------------------------------------------
def structured_output(output_cls: type[M], response: ChatResponse) -> M:
    """The validated object of a JSON-protocol response, or :class:`ModelReplyError`."""
    problems = response.additional_kwargs.get("protocol_errors")
    if problems:
        raise ModelReplyError(
            f"The model did not reply with a valid {output_cls.__name__}, even after one repair "
            "round: " + "; ".join(problems), problems=problems, provider="Salesforce",
            body=response.raw)
    return output_cls.model_validate(response.additional_kwargs["structured_output"])

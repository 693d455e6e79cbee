"""Tool calling and structured output for ``SalesforceLLM`` over the core's prompted protocol.

The Models API has no tool or response-format fields: ``sfmodels_core.tool_protocol`` states the
tools (or the JSON Schema) in a system message, renders tool calls and results as text, reads the
reply and repairs it once. This module is the LlamaIndex side, and pure: which protocol a call
uses, and how its outcome (one or two chat results) becomes a ``ChatResponse``, tool selections
or a validated pydantic object.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping, Sequence
from typing import TYPE_CHECKING, Any, TypeVar

from llama_index.core.base.llms.types import (
    ChatMessage,
    ChatResponse,
    MessageRole,
    TextBlock,
    ToolCallBlock,
)
from llama_index.core.llms.llm import ToolSelection
from pydantic import BaseModel, ValidationError

from sfmodels_core.adapters import apply_stop
from sfmodels_core.errors import InvalidInputError, ModelReplyError
from sfmodels_core.tool_protocol import (
    JSONReply,
    Outcome,
    Protocol,
    ToolReply,
    ToolSpec,
    json_protocol,
    tools_protocol,
)

from ._messages import salesforce_kwargs, salesforce_raw, tool_selections, usage_kwargs

if TYPE_CHECKING:
    from sfmodels_core.salesforce import ChatResult

M = TypeVar("M", bound=BaseModel)
logger = logging.getLogger(__name__)


# -- which protocol -------------------------------------------------------------------------------
def _tool_dict(tool: Any, index: int) -> Mapping[str, Any] | ToolSpec:
    if isinstance(tool, (Mapping, ToolSpec)):
        return tool
    metadata = getattr(tool, "metadata", None)
    if metadata is not None and hasattr(metadata, "to_openai_tool"):
        spec: dict[str, Any] = metadata.to_openai_tool(skip_length_check=True)
        return spec
    raise InvalidInputError(
        f"tools[{index}] must be a LlamaIndex tool or an OpenAI-style function dict, "
        f"got {type(tool).__name__}")


def resolve_protocol_tool_choice(tool_choice: Any, tool_required: bool) -> Any:
    """The tool choice to send: as given, else ``required`` or ``auto`` from ``tool_required``."""
    if tool_choice is None:
        return "required" if tool_required else "auto"
    return tool_choice


def tool_protocol(tools: Sequence[Any], tool_choice: Any = None,
                  parallel: bool = True) -> Protocol[ToolReply]:
    """The core's tool protocol for LlamaIndex tools or function dicts (refused before sending:
    nameless tools, or a ``tool_choice`` naming no tool)."""
    return tools_protocol([_tool_dict(t, i) for i, t in enumerate(tools)],
                          "auto" if tool_choice is None else tool_choice, parallel=parallel)


def structured_protocol(output_cls: type[BaseModel]) -> Protocol[JSONReply]:
    """The core's JSON protocol for the class's schema; the reply must also validate into the
    class (custom validators included), so pydantic's objections are repaired like the
    schema's."""
    base = json_protocol(output_cls.model_json_schema())

    def errors(reply: JSONReply) -> list[str]:
        if reply.errors:
            return list(reply.errors)
        try:
            output_cls.model_validate(reply.value)
        except ValidationError as exc:
            return [f"the JSON does not fit the schema: {_location(e['loc'])}{e['msg']}"
                    for e in exc.errors()]
        return []

    return Protocol(base.instructions, base.parse, errors)


def _location(loc: Sequence[Any]) -> str:
    path = "$" + "".join(f"[{p}]" if isinstance(p, int) else f".{p}" for p in loc)
    return f"{path}: "


# -- responses ------------------------------------------------------------------------------------
def _protocol_kwargs(outcome: Outcome[Any], finish_reason: str | None,
                     problems: Sequence[str]) -> dict[str, Any]:
    """What every protocol response carries: the answering (last) call's ids, model and safety
    scores, the generation ids of every call in order, and usage summed over the calls."""
    results: list[ChatResult] = outcome.results
    last = results[-1]
    extra = salesforce_kwargs(last, finish_reason)
    usages = [r.usage for r in results if r.usage is not None]
    if usages:
        total = usages[0]
        for usage in usages[1:]:
            total = total + usage
        extra.update(usage_kwargs(total))
    extra["generation_ids"] = [r.generation_id for r in results if r.generation_id]
    extra["repaired"] = outcome.repaired
    if problems:
        extra["protocol_errors"] = list(problems)
    return extra


def tool_chat_response(outcome: Outcome[ToolReply], problems: Sequence[str],
                       stop: Sequence[str] | None = None, *, stream: bool = False) -> ChatResponse:
    """A tool-protocol outcome as LlamaIndex expects it: ``ToolCallBlock``s for the calls (as
    ``DatabricksLLM`` returns them), or the final answer as text (cut at ``stop``)."""
    reply = outcome.reply
    calls = reply.tool_calls
    text, stopped = (reply.text, False) if calls else apply_stop(reply.text, stop)
    blocks: list[Any] = [TextBlock(text=text)] if text or not calls else []
    blocks.extend(ToolCallBlock(tool_call_id=c.id, tool_name=c.name, tool_kwargs=c.arguments)
                  for c in calls)
    last = outcome.results[-1]
    finish = "tool_calls" if calls else ("stop" if stopped else last.finish_reason)
    extra = _protocol_kwargs(outcome, finish, problems)
    if reply.invalid_tool_calls:
        extra["invalid_tool_calls"] = [
            {"id": c.id, "name": c.name, "arguments": c.arguments, "error": c.error}
            for c in reply.invalid_tool_calls]
    if problems:
        logger.warning("The model's reply did not follow the tool protocol after one repair "
                       "round: %s", "; ".join(problems))
    return ChatResponse(message=ChatMessage(role=MessageRole.ASSISTANT, blocks=blocks),
                        raw=salesforce_raw(last.raw, extra), delta=text if stream else None,
                        additional_kwargs=extra)


def json_chat_response(outcome: Outcome[JSONReply], problems: Sequence[str],
                       stop: Sequence[str] | None = None, *, stream: bool = False) -> ChatResponse:
    """A JSON-protocol outcome: the reply's text, and the parsed object in
    ``additional_kwargs["structured_output"]`` (stop sequences do not apply to JSON)."""
    last = outcome.results[-1]
    extra = _protocol_kwargs(outcome, last.finish_reason, problems)
    extra["structured_output"] = outcome.reply.value
    return ChatResponse(message=ChatMessage(role=MessageRole.ASSISTANT, content=outcome.text),
                        raw=salesforce_raw(last.raw, extra),
                        delta=outcome.text if stream else None, additional_kwargs=extra)


# -- reading responses ----------------------------------------------------------------------------
def protocol_tool_selections(response: ChatResponse,
                             error_on_no_tool_call: bool = True) -> list[ToolSelection]:
    """The tool calls of a response; a reply still unusable after its repair round raises
    :class:`ModelReplyError` (whatever ``error_on_no_tool_call`` says: it was neither a call nor
    an answer the caller allowed), and a plain answer raises when calls were expected."""
    problems = response.additional_kwargs.get("protocol_errors")
    if problems:
        raise ModelReplyError(
            "The model's reply could not be used as tool calls, even after one repair round: "
            + "; ".join(problems), problems=problems, provider="Salesforce", body=response.raw)
    return tool_selections(response, error_on_no_tool_call)


def structured_output(output_cls: type[M], response: ChatResponse) -> M:
    """The validated object of a JSON-protocol response, or :class:`ModelReplyError`."""
    problems = response.additional_kwargs.get("protocol_errors")
    if problems:
        raise ModelReplyError(
            f"The model did not reply with a valid {output_cls.__name__}, even after one repair "
            "round: " + "; ".join(problems), problems=problems, provider="Salesforce",
            body=response.raw)
    return output_cls.model_validate(response.additional_kwargs["structured_output"])

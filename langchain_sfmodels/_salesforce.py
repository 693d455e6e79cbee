"""Pure converters between LangChain and the Salesforce Models API, for ``ChatSalesforce`` and
``SalesforceLLM``.

In: LangChain messages become the API's text messages, or the neutral history the prompted
tool protocol renders (``to_salesforce_history``); a call's options become one
:class:`~sfmodels_core.integration.salesforce.SalesforceChat` (:func:`chat_call`). Out: the
call's :class:`~sfmodels_core.integration.salesforce.SalesforceAnswer` becomes an ``AIMessage`` or
the one chunk of a stream (:func:`chat_result`, :func:`chat_chunk`). The classes add only I/O.
"""

from __future__ import annotations

import json
import uuid
from collections.abc import Mapping, Sequence
from typing import TYPE_CHECKING, Any

from langchain_core.language_models import LangSmithParams
from langchain_core.messages import (
    AIMessage,
    AIMessageChunk,
    BaseMessage,
    ChatMessage,
    HumanMessage,
    InvalidToolCall,
    SystemMessage,
    ToolCall,
    ToolCallChunk,
    ToolMessage,
)
from langchain_core.messages.tool import invalid_tool_call, tool_call, tool_call_chunk
from langchain_core.outputs import ChatGeneration, ChatGenerationChunk, ChatResult, Generation

from sfmodels_core.defaults import SALESFORCE_CHAT_MODEL
from sfmodels_core.errors import InvalidInputError
from sfmodels_core.integration.fields import SalesforceClientFields, refuse_unknown_options
from sfmodels_core.integration.salesforce import (
    SalesforceAnswer,
    SalesforceChat,
    apply_stop,
    choose_protocol,
    reply_protocol,
    response_format_schema,
    warn_unsupported,
)

from ._common import SALESFORCE, ModelBasics, langsmith_params, llm_output, usage_metadata

if TYPE_CHECKING:
    from sfmodels_core.salesforce import GenerationResult

#: Options a call may pass (``model.invoke(..., localization=...)``). ``temperature``,
#: ``max_tokens``, ``top_p`` and ``n`` are accepted so that generic code keeps working, and
#: warned about once: the Models API has no such settings.
CALL_OPTIONS = ("model", "localization", "salesforce_tags", "temperature", "max_tokens", "top_p",
                "n", "stream")
#: Call options that select the prompted protocol (set by ``bind_tools`` /
#: ``with_structured_output``); only chat calls take them.
PROTOCOL_OPTIONS = ("tools", "tool_choice", "parallel_tool_calls", "response_format",
                    "output_validator")

SALESFORCE_ACCEPTS = (
    "The Salesforce Models API accepts system, human, AI and tool messages whose content is text "
    "(a string or text content blocks)")
#: Blocks that carry a model's own reasoning: there is no field for them in the Models API, and
#: like other providers we leave them out when a past AI turn is sent back.
_REASONING_BLOCKS = ("reasoning", "thinking", "redacted_thinking")
_ROLES = {"system": "system", "user": "user", "human": "user", "assistant": "assistant",
          "ai": "assistant"}


class SalesforceFields(ModelBasics, SalesforceClientFields):
    """The settings ``ChatSalesforce`` and ``SalesforceLLM`` share."""

    model: str = SALESFORCE_CHAT_MODEL
    """Model API name, e.g. ``sfdc_ai__DefaultGPT4Omni`` or a configured model's API name."""
    temperature: float | None = None
    """Accepted for compatibility and not sent (warned once): configure it in Einstein Studio."""
    max_tokens: int | None = None
    """Accepted for compatibility and not sent (warned once): configure it in Einstein Studio."""
    stop: list[str] | None = None
    """Stop sequences, applied to the answer on the client."""
    localization: dict[str, Any] | None = None
    """The API's ``localization`` object, e.g. ``{"defaultLocale": "en_US"}``."""
    salesforce_tags: dict[str, Any] | None = None
    """The API's free-form ``tags`` object (LangChain's own ``tags`` are run tags)."""

    @property
    def _identifying_params(self) -> dict[str, Any]:
        return {"model": self.model, "stop": self.stop, "localization": self.localization,
                "salesforce_tags": self.salesforce_tags}

    def _get_ls_params(self, stop: list[str] | None = None, **kwargs: Any) -> LangSmithParams:
        # No ls_temperature / ls_max_tokens: they are never sent, so traces do not claim them.
        return langsmith_params(SALESFORCE, self._LS_MODEL_TYPE, self.model,
                                stop if stop is not None else self.stop, kwargs)


# -- messages in ----------------------------------------------------------------------------------
def _text(content: str | list[str | dict[str, Any]], index: int, kind: str) -> str:
    if isinstance(content, str):
        return content
    parts: list[str] = []
    for block in content:
        if isinstance(block, str):
            parts.append(block)
            continue
        block_type = block.get("type")
        if block_type == "text" and isinstance(block.get("text"), str):
            parts.append(block["text"])
        elif block_type in _REASONING_BLOCKS and kind == "ai":
            continue
        else:
            raise InvalidInputError(
                f"messages[{index}] ({kind}) has a {block_type!r} content block. "
                f"{SALESFORCE_ACCEPTS}; images, audio and files are not supported.")
    return "\n".join(parts)


def _role(message: BaseMessage) -> str | None:
    """The API role of a message (chunks included: a streamed answer may join the history)."""
    if isinstance(message, ChatMessage):
        return _ROLES.get(message.role)
    for kind, role in ((SystemMessage, "system"), (HumanMessage, "user"), (AIMessage, "assistant"),
                       (ToolMessage, "tool")):
        if isinstance(message, kind):
            return role
    return None


def _without_tool_blocks(content: str | list[str | dict[str, Any]]
                         ) -> str | list[str | dict[str, Any]]:
    """An AI turn's content without the blocks that repeat its tool calls (``tool_use``,
    ``tool_call``, ...): the calls travel in ``tool_calls``."""
    if isinstance(content, str):
        return content
    return [block for block in content if isinstance(block, str) or block.get("type") not in (
        "tool_use", "tool_call", "function_call", "server_tool_call")]


def to_salesforce_history(messages: Sequence[BaseMessage]) -> list[dict[str, Any]]:
    """The conversation in the tool protocol's neutral shape, or a clear error.

    ``{"role": "system"|"user"|"assistant", "content": str}``; an AI message with tool calls also
    carries ``tool_calls: [{"id", "name", "arguments"}]``, and a tool message becomes
    ``{"role": "tool", "tool_call_id", "name", "content"}`` (a failed tool's result says so).
    """
    out: list[dict[str, Any]] = []
    for i, message in enumerate(messages):
        role = _role(message)
        if role is None:
            raise InvalidInputError(
                f"messages[{i}] is a {type(message).__name__}"
                + (f" with role {message.role!r}" if isinstance(message, ChatMessage) else "")
                + f". {SALESFORCE_ACCEPTS}; function messages and other roles are not "
                "supported.")
        if isinstance(message, AIMessage) and message.tool_calls:
            text = _text(_without_tool_blocks(message.content), i, "ai")
            out.append({"role": "assistant", "content": text, "tool_calls": [
                {"id": call.get("id"), "name": call["name"], "arguments": call["args"]}
                for call in message.tool_calls]})
        elif isinstance(message, ToolMessage):
            text = _text(message.content, i, "tool")
            if message.status == "error" and not text.lower().startswith("error"):
                text = f"Error: {text}"
            out.append({"role": "tool", "tool_call_id": message.tool_call_id,
                        "name": message.name, "content": text})
        else:
            kind = "ai" if role == "assistant" else message.type
            out.append({"role": role, "content": _text(message.content, i, kind)})
    return out


def to_salesforce_messages(messages: Sequence[BaseMessage]) -> list[dict[str, str]]:
    """``[{"role": "system"|"user"|"assistant", "content": str}]`` or a clear error.

    Tool calls and tool results in the history (a tool loop continued without tools bound) are
    written out as text the way the tool protocol writes them, with no instructions added.
    """
    from sfmodels_core.tool_protocol import render_history

    history = to_salesforce_history(messages)
    if not any(m["role"] == "tool" or "tool_calls" in m for m in history):
        return [{"role": m["role"], "content": m["content"]} for m in history]
    return render_history(history, "")


# -- one call -------------------------------------------------------------------------------------
def call_settings(owner: Any, stop: list[str] | None, kwargs: Mapping[str, Any],
                  allowed: tuple[str, ...] = CALL_OPTIONS,
                  ) -> tuple[str, dict[str, Any], list[str] | None]:
    """(model, request options, stop sequences) of one call; warns about ignored settings."""
    refuse_unknown_options(type(owner).__name__, kwargs, allowed)
    n = kwargs.get("n")
    warn_unsupported(temperature=kwargs.get("temperature", owner.temperature),
                     max_tokens=kwargs.get("max_tokens", owner.max_tokens),
                     top_p=kwargs.get("top_p"), n=None if n in (None, 1) else n)
    options = {"localization": kwargs.get("localization", owner.localization),
               "tags": kwargs.get("salesforce_tags", owner.salesforce_tags)}
    return (kwargs.get("model") or owner.model, options,
            stop if stop is not None else owner.stop)


def protocol_of(options: Mapping[str, Any]) -> Any:
    """The protocol a chat call's options ask for (None: plain chat). With an
    ``output_validator`` (the user's type, set by ``with_structured_output``), the reply is
    checked by it rather than by the JSON Schema."""
    validate = options.get("output_validator")
    reply = None
    if validate is not None and options.get("response_format") is not None:
        reply = reply_protocol(response_format_schema(options["response_format"]), validate)
    return choose_protocol(tools=options.get("tools"), tool_choice=options.get("tool_choice"),
                           parallel=options.get("parallel_tool_calls") is not False,
                           response_format=None if reply else options.get("response_format"),
                           reply=reply)


def chat_call(owner: Any, messages: Sequence[BaseMessage], stop: list[str] | None,
              kwargs: Mapping[str, Any]) -> SalesforceChat:
    model, options, stop = call_settings(owner, stop, kwargs, (*CALL_OPTIONS, *PROTOCOL_OPTIONS))
    protocol = protocol_of(kwargs)
    wire = to_salesforce_messages(messages) if protocol is None else to_salesforce_history(
        messages)
    return SalesforceChat(model, list(wire), options, stop, protocol)


# -- answers out ----------------------------------------------------------------------------------
def metadata(answer: SalesforceAnswer, model: str) -> dict[str, Any]:
    """What every Salesforce answer carries: ``generation_id`` is what feedback refers to;
    ``generation_ids`` lists every request made (two when a reply was repaired)."""
    quality = answer.content_quality
    out: dict[str, Any] = {
        "id": answer.result.id,
        "generation_id": answer.generation_id,
        "model_name": model,
        "served_model": answer.result.model,
        "finish_reason": answer.finish_reason,
        "content_quality": None if quality is None else quality.model_dump(),
        "model_provider": SALESFORCE,
    }
    if answer.protocol is not None:
        out["generation_ids"] = answer.generation_ids
        out["repaired"] = answer.repaired
        if answer.problems:
            out["protocol_errors"] = answer.problems
    return out


def chat_result(answer: SalesforceAnswer, model: str) -> ChatResult:
    calls, invalid = tool_calls_of(answer)
    message = AIMessage(content=answer.text, id=answer.result.id or None, tool_calls=calls,
                        invalid_tool_calls=invalid, response_metadata=metadata(answer, model),
                        usage_metadata=usage_metadata(answer.usage))
    return ChatResult(generations=[ChatGeneration(message=message)],
                      llm_output=llm_output(model, answer.result.model, answer.usage,
                                            answer.result.id))


def chat_chunk(answer: SalesforceAnswer, model: str) -> ChatGenerationChunk:
    """The whole answer as the one and last chunk of a stream (the API does not stream)."""
    calls, invalid = tool_calls_of(answer)
    message = AIMessageChunk(content=answer.text, id=answer.result.id or None,
                             tool_call_chunks=_tool_call_chunks(calls, invalid),
                             response_metadata=metadata(answer, model),
                             usage_metadata=usage_metadata(answer.usage), chunk_position="last")
    # The chunks give the valid calls; the invalid ones are given with their errors here
    # (LangChain would otherwise derive them from the chunks, without the errors).
    message.invalid_tool_calls = invalid
    return ChatGenerationChunk(message=message)


def generation(result: GenerationResult, model: str, stop: Sequence[str] | None) -> Generation:
    """A ``generations`` answer (SalesforceLLM) as a LangChain generation."""
    first = result.generations[0] if result.generations else None
    text, _ = apply_stop(first.text if first else "", stop)
    quality = first.content_quality if first else None
    return Generation(text=text, generation_info={
        "id": result.id,
        "generation_id": first.id if first else None,
        "model_name": model,
        "served_model": result.model,
        "finish_reason": first.finish_reason if first else None,
        "content_quality": quality.model_dump() if quality else None,
        "model_provider": SALESFORCE,
    })


def _tool_call_chunks(calls: list[ToolCall], invalid: list[InvalidToolCall]
                      ) -> list[ToolCallChunk]:
    chunks = [tool_call_chunk(name=c["name"], args=json.dumps(c["args"], ensure_ascii=False),
                              id=c["id"], index=i) for i, c in enumerate(calls)]
    start = len(chunks)
    chunks.extend(tool_call_chunk(name=c["name"], args=_unusable_args(c["args"]), id=c["id"],
                                  index=start + i) for i, c in enumerate(invalid))
    return chunks


def _unusable_args(raw: str | None) -> str:
    """Arguments of an invalid call as chunk text LangChain will not read as a valid call.

    LangChain turns any chunk whose arguments parse to a JSON object (or are empty) into a valid
    tool call when chunks are added up: an invalid call's arguments (which may be a JSON object
    that breaks the tool's schema) are kept as a JSON string then, so the call stays invalid.
    """
    from langchain_core.utils.json import parse_partial_json

    if raw is None:
        return "null"
    try:
        parsed = parse_partial_json(raw) if raw else {}
    except ValueError:
        return raw
    return json.dumps(raw, ensure_ascii=False) if isinstance(parsed, dict) else raw


def tool_calls_of(answer: SalesforceAnswer) -> tuple[list[ToolCall], list[InvalidToolCall]]:
    """LangChain tool calls from a tool-protocol answer, strict about what counts as valid.

    Calls whose arguments broke the schema are invalid calls with the problem as their error. A
    problem with the reply as a whole (a tool call was required and none came, a named tool was
    not called, a call came when none was allowed, several came when one was asked for) makes
    every call of the reply invalid, or, with no call, is one invalid call of its own: never a
    valid call that the caller did not allow, nor silence.
    """
    if answer.protocol != "tools":
        return [], []
    valid = [tool_call(name=c.name, args=c.arguments, id=c.id) for c in answer.tool_calls]
    invalid = [invalid_tool_call(name=c.name, args=c.arguments, id=c.id, error=c.error)
               for c in answer.invalid_tool_calls]
    own = {c.error for c in answer.invalid_tool_calls}
    whole = [e for e in answer.problems if e not in own]
    if whole:
        error = "; ".join(whole)
        if valid:
            invalid = [invalid_tool_call(name=c["name"],
                                         args=json.dumps(c["args"], ensure_ascii=False),
                                         id=c["id"], error=error) for c in valid] + invalid
            valid = []
        elif not invalid:
            invalid = [invalid_tool_call(name=None, args=None,
                                         id=f"call_{uuid.uuid4().hex[:24]}", error=error)]
    return valid, invalid

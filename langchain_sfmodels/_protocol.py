"""Tool calling and structured output for ``ChatSalesforce`` over the core's prompted protocol.

The Models API has no tool or response-format fields: ``sfmodels_core.tool_protocol`` states the
tools (or the JSON Schema) in a system message, renders tool calls and results as text, reads the
reply and sends it back once with its problems listed when it cannot be used. This module is the
LangChain side, and pure: which protocol a call uses (from its ``tools``, ``tool_choice`` and
``response_format`` options), and how the outcome of the one or two requests becomes an
``AIMessage`` or the one chunk of a stream. ``ChatSalesforce`` only adds the I/O.
"""

from __future__ import annotations

import json
import uuid
from collections.abc import Awaitable, Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from langchain_core.messages import (
    AIMessage,
    AIMessageChunk,
    InvalidToolCall,
    ToolCall,
    ToolCallChunk,
)
from langchain_core.messages.tool import invalid_tool_call, tool_call, tool_call_chunk
from langchain_core.outputs import ChatGeneration, ChatGenerationChunk, ChatResult

from ._messages import (
    salesforce_chat_result,
    salesforce_chunk,
    salesforce_metadata,
    usage_dict,
    usage_metadata,
)

if TYPE_CHECKING:
    from sfmodels_core.salesforce import ChatResult as SalesforceChatResult
    from sfmodels_core.tool_protocol import Outcome, Protocol, ToolReply
    from sfmodels_core.types import Usage

#: Call options that select the protocol (set by ``bind_tools`` / ``with_structured_output``).
PROTOCOL_OPTIONS = ("tools", "tool_choice", "parallel_tool_calls", "response_format")
#: Named when a reply calls several tools but ``parallel_tool_calls=False`` asked for one.
ONE_CALL_ERROR = "call at most one tool per reply: put a single call in the tool_calls list"

ChatFn = Callable[..., "SalesforceChatResult"]
AsyncChatFn = Callable[..., Awaitable["SalesforceChatResult"]]


def _invalid(message: str) -> Exception:
    from sfmodels_core.errors import InvalidInputError

    return InvalidInputError(message)


# -- which protocol -------------------------------------------------------------------------------
def response_format_schema(response_format: Any) -> Mapping[str, Any] | None:
    """The JSON Schema of an OpenAI-style ``response_format`` (None: any JSON object)."""
    kind = response_format.get("type") if isinstance(response_format, Mapping) else None
    if kind == "json_object":
        return None
    if kind == "json_schema":
        spec = response_format.get("json_schema")
        schema = spec.get("schema") if isinstance(spec, Mapping) else None
        if isinstance(schema, Mapping):
            return schema
    raise _invalid(
        "response_format must be {'type': 'json_object'} or {'type': 'json_schema', "
        f"'json_schema': {{'name': ..., 'schema': {{...}}}}}}, got {response_format!r}")


def call_protocol(options: Mapping[str, Any]) -> Protocol[Any] | None:
    """The protocol a call's options ask for: tools, a reply format, or none (plain chat)."""
    from langchain_core.utils.function_calling import convert_to_openai_tool

    from sfmodels_core.tool_protocol import json_protocol, tools_protocol

    tools = options.get("tools")
    choice = options.get("tool_choice")
    response_format = options.get("response_format")
    if tools and response_format is not None:
        raise _invalid("tools and response_format cannot be combined in one call: the reply is "
                       "either tool calls or one JSON object (use with_structured_output("
                       "method='function_calling') to get an object through a tool)")
    if tools:
        parallel = options.get("parallel_tool_calls")
        protocol = tools_protocol([convert_to_openai_tool(t) for t in tools],
                                  "auto" if choice is None else choice,
                                  parallel=parallel is not False)
        return protocol if parallel is not False else _one_call(protocol)
    if choice is not None:
        raise _invalid(f"tool_choice={choice!r} was given without tools; bind tools with "
                       "bind_tools(tools, tool_choice=...)")
    if response_format is not None:
        return json_protocol(response_format_schema(response_format))
    return None


def _one_call(protocol: Protocol[ToolReply]) -> Protocol[ToolReply]:
    """The protocol with several calls in one reply counted as a problem (so repaired once, and
    then never passed on as valid calls)."""
    from sfmodels_core.tool_protocol import Protocol

    def errors(reply: ToolReply) -> list[str]:
        extra = [ONE_CALL_ERROR] if len(reply.tool_calls) > 1 else []
        return [*protocol.errors(reply), *extra]

    return Protocol(protocol.instructions, protocol.parse, errors)


# -- one call: what to send, and how its outcome becomes a LangChain result -----------------------
@dataclass(frozen=True)
class SalesforceCall:
    """One chat call of ``ChatSalesforce``: the request, and under a protocol, how to read it.

    ``messages`` are the wire messages of a plain call, or the neutral history (see
    ``to_salesforce_history``) that the protocol renders. :meth:`run` and :meth:`arun` differ
    only in ``await``; both return an ``Outcome`` (one result for a plain call).
    """

    model: str
    options: dict[str, Any]
    stop: list[str] | None
    messages: list[dict[str, Any]]
    protocol: Protocol[Any] | None = None

    def run(self, chat: ChatFn) -> Outcome[Any]:
        from sfmodels_core.tool_protocol import Outcome, run

        if self.protocol is None:
            result = chat(self.model, self.messages, **self.options)
            return Outcome(None, result.text, [result], False)

        def send(messages: list[dict[str, str]]) -> SalesforceChatResult:
            return chat(self.model, messages, **self.options)

        return run(send, self.messages, self.protocol)

    async def arun(self, achat: AsyncChatFn) -> Outcome[Any]:
        from sfmodels_core.tool_protocol import Outcome, arun

        if self.protocol is None:
            result = await achat(self.model, self.messages, **self.options)
            return Outcome(None, result.text, [result], False)

        async def send(messages: list[dict[str, str]]) -> SalesforceChatResult:
            return await achat(self.model, messages, **self.options)

        return await arun(send, self.messages, self.protocol)

    def result(self, outcome: Outcome[Any]) -> ChatResult:
        if self.protocol is None:
            return salesforce_chat_result(outcome.results[0], self.model, self.stop)
        reply = _Reply.of(outcome, self.model, self.stop)
        message = AIMessage(content=reply.content, id=reply.ident,
                            tool_calls=reply.tool_calls,
                            invalid_tool_calls=reply.invalid_tool_calls,
                            response_metadata=reply.metadata,
                            usage_metadata=usage_metadata(reply.usage))
        return ChatResult(generations=[ChatGeneration(message=message)],
                          llm_output=reply.llm_output)

    def chunk(self, outcome: Outcome[Any]) -> ChatGenerationChunk:
        """The whole answer as the one and last chunk of a stream (the API does not stream)."""
        if self.protocol is None:
            return salesforce_chunk(outcome.results[0], self.model, self.stop)
        reply = _Reply.of(outcome, self.model, self.stop)
        message = AIMessageChunk(content=reply.content, id=reply.ident,
                                 tool_call_chunks=reply.tool_call_chunks(),
                                 response_metadata=reply.metadata,
                                 usage_metadata=usage_metadata(reply.usage),
                                 chunk_position="last")
        # The chunks give the valid calls; the invalid ones are given with their errors here
        # (LangChain would otherwise derive them from the chunks, without the errors).
        message.invalid_tool_calls = reply.invalid_tool_calls
        return ChatGenerationChunk(message=message)


def _total_usage(results: Sequence[SalesforceChatResult]) -> Usage | None:
    total: Usage | None = None
    for result in results:
        if result.usage is not None:
            total = result.usage if total is None else total + result.usage
    return total


@dataclass
class _Reply:
    """The parts of a protocol answer that both the message and the chunk carry."""

    content: str
    ident: str | None
    tool_calls: list[ToolCall]
    invalid_tool_calls: list[InvalidToolCall]
    metadata: dict[str, Any]
    usage: Usage | None
    llm_output: dict[str, Any]

    @classmethod
    def of(cls, outcome: Outcome[Any], model: str, stop: Sequence[str] | None) -> _Reply:
        from sfmodels_core.adapters import apply_stop
        from sfmodels_core.tool_protocol import ToolReply

        results: list[SalesforceChatResult] = outcome.results
        last = results[-1]
        generation = last.generations[0] if last.generations else None
        finish_reason = generation.finish_reason if generation else None
        calls: list[ToolCall] = []
        invalid: list[InvalidToolCall] = []
        problems = list(outcome.errors)
        if isinstance(outcome.reply, ToolReply):
            calls, invalid = tool_calls_of(outcome.reply, problems)
            content, stopped = ("", False) if calls else apply_stop(outcome.reply.text, stop)
            finish_reason = "tool_calls" if calls else ("stop" if stopped else finish_reason)
        else:  # a JSON reply: the object read, or the reply's text when none could be used
            usable = not problems and isinstance(outcome.reply.value, dict)
            content = (json.dumps(outcome.reply.value, ensure_ascii=False) if usable
                       else outcome.text)
        metadata = salesforce_metadata(last, model, generation)
        metadata["finish_reason"] = finish_reason
        # Every request made, in order: two when the first reply was sent back to be repaired.
        metadata["generation_ids"] = [r.generation_id for r in results if r.generation_id]
        metadata["repaired"] = outcome.repaired
        if problems:
            metadata["protocol_errors"] = problems
        usage = _total_usage(results)
        llm_output = {"model_name": model, "served_model": last.model,
                      "token_usage": usage_dict(usage), "id": last.id}
        return cls(content, last.id or None, calls, invalid, metadata, usage, llm_output)

    def tool_call_chunks(self) -> list[ToolCallChunk]:
        chunks = [tool_call_chunk(name=c["name"], args=json.dumps(c["args"], ensure_ascii=False),
                                  id=c["id"], index=i) for i, c in enumerate(self.tool_calls)]
        start = len(chunks)
        chunks.extend(tool_call_chunk(name=c["name"], args=_unusable_args(c["args"]), id=c["id"],
                                      index=start + i)
                      for i, c in enumerate(self.invalid_tool_calls))
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


def tool_calls_of(reply: ToolReply, problems: Sequence[str]
                  ) -> tuple[list[ToolCall], list[InvalidToolCall]]:
    """LangChain tool calls from a tool-protocol reply, strict about what counts as valid.

    ``problems`` are what is still wrong with the reply after the repair round. Calls whose
    arguments broke the schema are invalid calls with the problem as their error. A problem with
    the reply as a whole (a tool call was required and none came, a named tool was not called, a
    call came when none was allowed, several came when one was asked for) makes every call of the
    reply invalid, or, with no call, is one invalid call of its own: never a valid call that the
    caller did not allow, nor silence.
    """
    valid = [tool_call(name=c.name, args=c.arguments, id=c.id) for c in reply.tool_calls]
    invalid = [invalid_tool_call(name=c.name, args=c.arguments, id=c.id, error=c.error)
               for c in reply.invalid_tool_calls]
    own = {c.error for c in reply.invalid_tool_calls}
    whole = [e for e in problems if e not in own]
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

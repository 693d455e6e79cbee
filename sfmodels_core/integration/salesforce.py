"""What both frameworks need to drive the Salesforce Models API the same way.

The Models API has no generation parameters, no stop sequences, no streaming and no tool or
response-format fields. Both framework packages make one decision per chat call, here:

- :func:`warn_unsupported` says once per setting that ``temperature`` & co. are not sent;
- :func:`stop_list` checks stop sequences and :func:`apply_stop` enforces them on the client;
- :func:`choose_protocol` picks plain chat, the prompted tool protocol or the JSON protocol from
  the call's tools, tool choice and reply format;
- :class:`SalesforceChat` runs the call (one request, or two when the protocol repairs a reply),
  sync and async differing only in ``await``;
- :func:`read_answer` turns what came back into one :class:`SalesforceAnswer`: the text (cut at
  the stop sequences), the tool calls, the parsed object, the problems left, the finish reason,
  every generation id (what feedback refers to) and the usage summed over the requests.

Each framework then only converts a :class:`SalesforceAnswer` into its own message types.
"""

from __future__ import annotations

import json
from collections.abc import Awaitable, Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from .._validation import warn_once
from ..errors import InvalidInputError

if TYPE_CHECKING:
    from ..salesforce import ChatResult, ContentQuality
    from ..tool_protocol import InvalidProtocolCall, Outcome, Protocol, ProtocolCall
    from ..types import Usage

__all__ = [
    "UNSUPPORTED_PARAMS",
    "AsyncChatFn",
    "ChatFn",
    "SalesforceAnswer",
    "SalesforceChat",
    "apply_stop",
    "choose_protocol",
    "read_answer",
    "reply_protocol",
    "response_format_schema",
    "stop_list",
    "warn_unsupported",
]

UNSUPPORTED_PARAMS = ("temperature", "max_tokens", "top_p", "n")

def warn_unsupported(**params: object) -> None:
    """The Models API has no generation parameters: say so once per setting, never silently."""
    for name, value in params.items():
        if value is not None:
            warn_once(
                f"salesforce-param-{name}",
                f"The Salesforce Models API has no '{name}' setting, so {name}={value!r} is not "
                "sent. Set generation parameters on a configured model in Einstein Studio and "
                "call it by its API name instead.")


def stop_list(stop: Any) -> list[str] | None:
    """Stop sequences as a list (a single string is one sequence), or a clear error."""
    if stop is None:
        return None
    if isinstance(stop, str):
        return [stop]
    if isinstance(stop, (list, tuple)) and all(isinstance(s, str) for s in stop):
        return list(stop)
    raise InvalidInputError(f"stop must be a string or a list of strings, got {stop!r}")


def apply_stop(text: str, stop: Sequence[str] | None) -> tuple[str, bool]:
    """Cut ``text`` at the earliest stop sequence; say whether one was found."""
    if not stop:
        return text, False
    cut = min((i for s in stop if s and (i := text.find(s)) >= 0), default=-1)
    return (text[:cut], True) if cut >= 0 else (text, False)


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
    raise InvalidInputError(
        "response_format must be {'type': 'json_object'} or {'type': 'json_schema', "
        f"'json_schema': {{'name': ..., 'schema': {{...}}}}}}, got {response_format!r}")


def choose_protocol(*, tools: Sequence[Mapping[str, Any]] | None = None,
                    tool_choice: Any = None, parallel: bool = True,
                    tool_required: bool = False, response_format: Any = None,
                    reply: Protocol[Any] | None = None) -> Protocol[Any] | None:
    """The protocol a chat call asks for: tools (OpenAI-style function dicts), a reply format
    (``response_format``, or a ready JSON protocol as ``reply``), or none (plain chat).

    Refused before anything is sent: tools together with a reply format, a ``tool_choice``
    without tools (other than "auto"/"none"), a choice naming no bound tool.
    """
    from ..tool_protocol import json_protocol, tools_protocol

    wants_json = reply is not None or response_format is not None
    if tools and wants_json:
        raise InvalidInputError(
            "tools and a reply format cannot be combined in one call: the reply is either tool "
            "calls or one JSON object (ask for the object through a tool instead)")
    if tools:
        return tools_protocol(tools, tool_choice, parallel=parallel, required=tool_required)
    if tool_choice not in (None, "auto", "none"):
        raise InvalidInputError(f"tool_choice={tool_choice!r} was given without tools: bind "
                                "tools together with tool_choice")
    if reply is not None:
        return reply
    if response_format is not None:
        return json_protocol(response_format_schema(response_format))
    return None


def reply_protocol(schema: Mapping[str, Any] | None,
                   validate: Callable[[Any], Any] | None = None) -> Protocol[Any]:
    """The JSON protocol for a reply format, checked the way the user will read the reply.

    With ``validate`` (the user's own type: a pydantic model's ``model_validate``, a
    ``TypeAdapter``'s ``validate_python``), the reply is checked by it, so what the type accepts
    is accepted (``"3"`` for an integer field) and what its validators refuse is refused; without
    one, by the JSON Schema. Either way a failure goes back to the model once, with the problems
    listed.
    """
    from pydantic import ValidationError

    from ..tool_protocol import JSONReply, Protocol, json_instructions, parse_json_reply

    if validate is None:
        from ..tool_protocol import json_protocol

        return json_protocol(schema)

    def errors(reply: JSONReply) -> list[str]:
        if reply.errors:
            return list(reply.errors)
        try:
            validate(reply.value)
        except ValidationError as exc:
            return [f"the JSON does not fit the schema: {_location(e['loc'])}{e['msg']}"
                    for e in exc.errors()]
        except (ValueError, TypeError) as exc:
            return [f"the JSON does not fit the schema: {exc}"]
        return []

    return Protocol(json_instructions(schema), lambda text: parse_json_reply(text, None), errors)


def _location(loc: Sequence[Any]) -> str:
    return "$" + "".join(f"[{p}]" if isinstance(p, int) else f".{p}" for p in loc) + ": "


# -- one chat call --------------------------------------------------------------------------------
ChatFn = Callable[..., "ChatResult"]
AsyncChatFn = Callable[..., Awaitable["ChatResult"]]


@dataclass(frozen=True)
class SalesforceChat:
    """One chat call, decided before any I/O: what to send, and under which protocol.

    Without a protocol, ``messages`` are the wire messages and are sent as they are; with one,
    they are the neutral history (``{"role", "content"}``, assistant ``tool_calls``, tool
    results) that the protocol renders, and a reply it cannot use is sent back once.
    """

    model: str
    messages: list[dict[str, Any]]
    options: dict[str, Any]
    stop: list[str] | None = None
    protocol: Protocol[Any] | None = None

    def run(self, chat: ChatFn) -> SalesforceAnswer:
        from ..tool_protocol import Outcome, run

        def send(messages: list[dict[str, Any]]) -> ChatResult:
            return chat(self.model, messages, **self.options)

        if self.protocol is None:
            result = send(self.messages)
            return read_answer(Outcome(None, result.text, [result], False), self.stop)
        return read_answer(run(send, self.messages, self.protocol), self.stop)

    async def arun(self, achat: AsyncChatFn) -> SalesforceAnswer:
        from ..tool_protocol import Outcome, arun

        async def send(messages: list[dict[str, Any]]) -> ChatResult:
            return await achat(self.model, messages, **self.options)

        if self.protocol is None:
            result = await send(self.messages)
            return read_answer(Outcome(None, result.text, [result], False), self.stop)
        return read_answer(await arun(send, self.messages, self.protocol), self.stop)


@dataclass
class SalesforceAnswer:
    """A chat call's answer, as both frameworks present it (see the module docstring)."""

    text: str
    #: The last (answering) request's result: its raw body, id and served model.
    result: ChatResult
    finish_reason: str | None
    generation_ids: list[str]
    usage: Usage | None
    tool_calls: list[ProtocolCall] = field(default_factory=list)
    invalid_tool_calls: list[InvalidProtocolCall] = field(default_factory=list)
    #: What is still wrong with the reply after the repair round (empty when usable).
    problems: list[str] = field(default_factory=list)
    #: The object read under the JSON protocol (None otherwise, or when none was usable).
    structured: Any = None
    protocol: str | None = None  # None, "tools" or "json"
    repaired: bool = False

    @property
    def generation_id(self) -> str | None:
        """The answering generation (the last request's)."""
        return self.result.generation_id

    @property
    def content_quality(self) -> ContentQuality | None:
        first = self.result.generations[0] if self.result.generations else None
        return first.content_quality if first else None


def read_answer(outcome: Outcome[Any], stop: Sequence[str] | None) -> SalesforceAnswer:
    """One answer from a call's outcome: plain, tools or JSON (the module docstring says how)."""
    from ..tool_protocol import JSONReply, ToolReply
    from ..types import Usage

    results: list[ChatResult] = outcome.results
    last = results[-1]
    common: dict[str, Any] = {
        "result": last, "repaired": outcome.repaired, "problems": list(outcome.errors),
        "generation_ids": [r.generation_id for r in results if r.generation_id],
        "usage": Usage.total(r.usage for r in results)}
    reply = outcome.reply
    if isinstance(reply, ToolReply):
        calls = reply.tool_calls
        text, stopped = ("", False) if calls else apply_stop(reply.text, stop)
        finish = "tool_calls" if calls else ("stop" if stopped else last.finish_reason)
        return SalesforceAnswer(text=text, finish_reason=finish, tool_calls=list(calls),
                                invalid_tool_calls=list(reply.invalid_tool_calls),
                                protocol="tools", **common)
    if isinstance(reply, JSONReply):  # stop sequences do not apply to a JSON object
        usable = not outcome.errors and isinstance(reply.value, dict)
        text = json.dumps(reply.value, ensure_ascii=False) if usable else outcome.text
        return SalesforceAnswer(text=text, finish_reason=last.finish_reason,
                                structured=reply.value if usable else None, protocol="json",
                                **common)
    text, stopped = apply_stop(last.text, stop)
    return SalesforceAnswer(text=text, finish_reason="stop" if stopped else last.finish_reason,
                            **common)

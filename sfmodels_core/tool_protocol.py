"""Prompted tool calling and structured output for chat APIs without tool fields.

The Salesforce Models API takes only system/user/assistant text. To let its models drive agents,
the client states the tools and a strict reply format in a system message, renders tool calls and
tool results in the history as text, and parses the model's reply back into real tool calls or a
final answer. The protocol, in full:

1. A system message starting with :data:`TOOLS_HEADER` lists the tools as JSON Schema and asks for
   exactly one JSON object as the reply: ``{"tool_calls": [{"name": ..., "arguments": {...}}]}``
   to call tools, or ``{"final_answer": "..."}`` to answer. ``tool_choice`` changes one sentence:
   call when useful (auto), call at least one (required), call this one (a name), or do not call.
2. Earlier tool calls appear as assistant messages holding that JSON; each tool result appears as
   a user message starting with :data:`RESULT_PREFIX`.
3. Structured output uses a system message starting with :data:`JSON_HEADER` and the schema.

Parsing is tolerant of what models really write (code fences, prose around the JSON, trailing
commas, Python literals, arguments given as a JSON string, OpenAI-style ``function`` objects) and
strict about what it returns: arguments must validate against the tool's schema. A reply that
cannot be used is sent back once with the problems listed (:func:`run`); what is still wrong
after that is returned as invalid calls or errors, never guessed at.

Everything here is pure except :func:`run` / :func:`arun`, which differ only in ``await``.
"""

from __future__ import annotations

import ast
import json
import re
import uuid
from collections.abc import Awaitable, Callable, Generator, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Generic, TypeVar

from .adapters.tools import normalize_tool_choice
from .errors import InvalidInputError
from .schema import validate

TOOLS_HEADER = "# Tools (sfmodels tool protocol v1)"
JSON_HEADER = "# Reply format (sfmodels JSON protocol v1)"
RESULT_PREFIX = "Tool result"

T = TypeVar("T")


# -- tools ----------------------------------------------------------------------------------------
@dataclass(frozen=True)
class ToolSpec:
    name: str
    description: str = ""
    parameters: Mapping[str, Any] = field(
        default_factory=lambda: {"type": "object", "properties": {}})

    @classmethod
    def from_dict(cls, tool: Mapping[str, Any]) -> ToolSpec:
        """From an OpenAI-style ``{"type": "function", "function": {...}}`` or a bare function."""
        fn = tool.get("function", tool)
        name = fn.get("name")
        if not isinstance(name, str) or not name:
            raise InvalidInputError(f"a tool needs a name: {dict(tool)!r}")
        params = fn.get("parameters") or {"type": "object", "properties": {}}
        return cls(name=name, description=str(fn.get("description") or ""), parameters=params)

    def as_dict(self) -> dict[str, Any]:
        return {"name": self.name, "description": self.description,
                "parameters": dict(self.parameters)}


@dataclass
class ToolCall:
    name: str
    arguments: dict[str, Any]
    id: str = field(default_factory=lambda: f"call_{uuid.uuid4().hex[:24]}")


@dataclass
class InvalidToolCall:
    name: str | None
    arguments: str | None  # the arguments as the model wrote them
    error: str
    id: str = field(default_factory=lambda: f"call_{uuid.uuid4().hex[:24]}")


@dataclass
class ToolReply:
    """The model's reply read under the tool protocol."""

    text: str = ""
    tool_calls: list[ToolCall] = field(default_factory=list)
    invalid_tool_calls: list[InvalidToolCall] = field(default_factory=list)
    errors: list[str] = field(default_factory=list)


def tool_instructions(tools: Sequence[ToolSpec], choice: str, parallel: bool = True) -> str:
    listing = json.dumps([t.as_dict() for t in tools], indent=1)
    rule = {
        "auto": "Call tools when they help you answer; otherwise answer directly.",
        "required": "You must call at least one tool now; do not answer directly.",
        "none": "Do not call any tool now: answer directly with a final answer.",
    }.get(choice, f"You must call the tool {choice!r} now; do not answer directly.")
    return (
        f"{TOOLS_HEADER}\n"
        f"You can use these tools, described as JSON Schema:\n{listing}\n\n"
        f"{rule}\n"
        + ("" if parallel else "Call at most one tool per reply.\n")
        + "Reply with exactly one JSON object and nothing else.\n"
        + 'To call tools: {"tool_calls": [{"name": "<tool name>", "arguments": {<arguments '
        'valid for its parameters schema>}}]} (several calls may go in the list).\n'
        'To answer: {"final_answer": "<your answer to the user>"}.\n'
        f'Results of tool calls come back in messages starting with "{RESULT_PREFIX}".')


# -- rendering the history to three roles ---------------------------------------------------------
def render_history(messages: Sequence[Mapping[str, Any]],
                   instructions: str) -> list[dict[str, str]]:
    """Messages with tool calls and tool results, as system/user/assistant text messages.

    ``messages`` use the neutral shape: ``{"role", "content"}``, assistant messages may carry
    ``tool_calls: [{"id", "name", "arguments": dict}]`` and tool messages ``tool_call_id`` and
    ``content``. The instructions join the first system message (or become one); empty
    instructions render the history alone.
    """
    calls: dict[str, tuple[str, Any]] = {}
    out: list[dict[str, str]] = []
    system_done = False
    for message in messages:
        role = message.get("role")
        content = message.get("content") or ""
        if role == "system" and not system_done and instructions:
            out.append({"role": "system", "content": f"{content}\n\n{instructions}".strip()})
            system_done = True
        elif role == "assistant" and message.get("tool_calls"):
            listed = []
            for call in message["tool_calls"]:
                calls[str(call.get("id"))] = (call["name"], call.get("arguments", {}))
                listed.append({"name": call["name"], "arguments": call.get("arguments", {})})
            out.append({"role": "assistant", "content": json.dumps({"tool_calls": listed})})
        elif role == "tool":
            name, args = calls.get(str(message.get("tool_call_id")),
                                   (message.get("name") or "a tool", None))
            shown = f" called with {json.dumps(args)}" if args is not None else ""
            text = f"{RESULT_PREFIX} from {name}{shown}:\n{content}"
            if out and out[-1]["role"] == "user" and out[-1]["content"].startswith(RESULT_PREFIX):
                out[-1]["content"] += "\n\n" + text  # results of parallel calls travel together
            else:
                out.append({"role": "user", "content": text})
        else:
            out.append({"role": str(role), "content": str(content)})
    if not system_done and instructions:
        out.insert(0, {"role": "system", "content": instructions})
    return out


# -- reading replies ------------------------------------------------------------------------------
_FENCE = re.compile(r"```[a-zA-Z]*\s*\n?(.*?)```", re.DOTALL)
_TRAILING_COMMA = re.compile(r",(\s*[}\]])")
_PY_LITERALS = {"True": "true", "False": "false", "None": "null"}


def _balanced(text: str, start: int) -> str | None:
    """The bracketed span starting at ``start``, honouring strings; None if it never closes."""
    closer = "}" if text[start] == "{" else "]"
    depth = 0
    in_string = escaped = False
    for i in range(start, len(text)):
        ch = text[i]
        if in_string:
            if escaped:
                escaped = False
            elif ch == "\\":
                escaped = True
            elif ch == '"':
                in_string = False
        elif ch == '"':
            in_string = True
        elif ch in "{[":
            depth += 1
        elif ch in "}]":
            depth -= 1
            if depth == 0:
                return text[start:i + 1] if ch == closer else None
    return None


def _loads_lenient(snippet: str) -> Any:
    try:
        return json.loads(snippet)
    except ValueError:
        pass
    cleaned = _TRAILING_COMMA.sub(r"\1", snippet)
    cleaned = cleaned.replace("\u201c", '"').replace("\u201d", '"')
    cleaned = re.sub(r"\b(True|False|None)\b", lambda m: _PY_LITERALS[m.group(1)], cleaned)
    try:
        return json.loads(cleaned)
    except ValueError:
        pass
    try:  # a Python literal, as some models write: {'name': 'add', 'arguments': {...}}
        return ast.literal_eval(_TRAILING_COMMA.sub(r"\1", snippet))
    except (ValueError, SyntaxError, MemoryError, RecursionError):
        return None


def find_json(text: str) -> tuple[Any, bool]:
    """The first JSON object or array in ``text`` (fenced blocks first); (value, found)."""
    places = [m.group(1) for m in _FENCE.finditer(text)] + [text]
    for place in places:
        for i, ch in enumerate(place):
            if ch not in "{[":
                continue
            span = _balanced(place, i)
            if span is None:
                continue
            value = _loads_lenient(span)
            if isinstance(value, (dict, list)):
                return value, True
    return None, False


def _arguments(raw: Any) -> tuple[dict[str, Any] | None, str | None]:
    """(arguments, the raw text) from a dict, a JSON string, or nothing."""
    if raw is None:
        return {}, None
    if isinstance(raw, dict):
        return raw, json.dumps(raw)
    if isinstance(raw, str):
        value = _loads_lenient(raw) if raw.strip() else {}
        return (value if isinstance(value, dict) else None), raw
    return None, json.dumps(raw)


def _call_items(value: Any) -> list[Any] | None:
    """The tool-call entries of a reply object, in any of the shapes models produce."""
    if isinstance(value, list):
        return value if all(isinstance(v, dict) and ("name" in v or "function" in v)
                            for v in value) and value else None
    if not isinstance(value, dict):
        return None
    for key in ("tool_calls", "tool_call", "calls", "function_call"):
        if key in value:
            items = value[key]
            return items if isinstance(items, list) else [items]
    if "name" in value and any(k in value for k in ("arguments", "parameters", "args", "input")):
        return [value]
    if "tool" in value:
        return [{"name": value["tool"],
                 "arguments": value.get("tool_input", value.get("arguments", value.get("args")))}]
    return None


def parse_tool_reply(text: str, tools: Sequence[ToolSpec], choice: str = "auto") -> ToolReply:
    by_name = {t.name: t for t in tools}
    value, found = find_json(text)
    items = _call_items(value) if found else None
    reply = ToolReply()
    if items:
        for item in items:
            if not isinstance(item, dict):
                reply.invalid_tool_calls.append(InvalidToolCall(None, json.dumps(item),
                                                                "a tool call must be an object"))
                continue
            fn: dict[str, Any] = item["function"] if isinstance(item.get("function"),
                                                                dict) else item
            name = fn.get("name")
            raw_args = next((fn[k] for k in ("arguments", "parameters", "args", "input")
                             if k in fn), None)
            arguments, raw_text = _arguments(raw_args)
            problem = None
            if not isinstance(name, str) or name not in by_name:
                problem = (f"unknown tool {name!r}; the tools are "
                           f"{', '.join(by_name) or 'none'}")
            elif arguments is None:
                problem = f"arguments of {name} must be a JSON object"
            else:
                issues = validate(arguments, by_name[name].parameters)
                if issues:
                    problem = f"arguments of {name} do not fit its schema: " + "; ".join(issues)
            if problem:
                reply.invalid_tool_calls.append(InvalidToolCall(
                    name if isinstance(name, str) else None, raw_text, problem))
            else:
                assert arguments is not None and isinstance(name, str)
                reply.tool_calls.append(ToolCall(name, arguments))
        reply.errors = [c.error for c in reply.invalid_tool_calls]
    else:
        answer = None
        if found and isinstance(value, dict):
            answer = next((value[k] for k in ("final_answer", "answer", "response", "content")
                           if isinstance(value.get(k), str)), None)
        reply.text = answer if answer is not None else text.strip()
    if choice == "none" and reply.tool_calls:
        reply.errors.append("no tool may be called now; reply with a final answer")
    elif choice == "required" and not reply.tool_calls and not reply.invalid_tool_calls:
        reply.errors.append("a tool call is required; reply with a tool_calls object")
    elif choice not in ("auto", "none", "required") and not any(
            c.name == choice for c in reply.tool_calls) and not reply.invalid_tool_calls:
        reply.errors.append(f"the tool {choice!r} must be called")
    return reply


# -- structured output ----------------------------------------------------------------------------
def json_instructions(schema: Mapping[str, Any] | None) -> str:
    if schema is None:
        return (f"{JSON_HEADER}\nReply with exactly one JSON object and nothing else: no prose, "
                "no code fences.")
    return (f"{JSON_HEADER}\nReply with exactly one JSON object, and nothing else, that is "
            f"valid for this JSON Schema:\n{json.dumps(schema, indent=1)}")


@dataclass
class JSONReply:
    value: Any = None
    errors: list[str] = field(default_factory=list)


def parse_json_reply(text: str, schema: Mapping[str, Any] | None) -> JSONReply:
    value, found = find_json(text)
    if not found or not isinstance(value, dict):
        return JSONReply(None, ["the reply holds no JSON object"])
    problems = validate(value, schema) if schema is not None else []
    return JSONReply(value, [f"the JSON does not fit the schema: {p}" for p in problems])


# -- the conversation, with one repair round ------------------------------------------------------
@dataclass(frozen=True)
class Protocol(Generic[T]):
    """What to tell the model, and how to read its reply (``errors`` empty when usable)."""

    instructions: str
    parse: Callable[[str], T]
    errors: Callable[[T], list[str]]


#: Named when a reply calls several tools but ``parallel=False`` asked for one.
ONE_CALL_ERROR = "call at most one tool per reply: put a single call in the tool_calls list"


def tools_protocol(tools: Sequence[Mapping[str, Any] | ToolSpec], tool_choice: Any = "auto",
                   *, parallel: bool = True, required: bool = False) -> Protocol[ToolReply]:
    """The tool protocol for these tools (``tool_choice`` in any spelling
    :func:`~sfmodels_core.adapters.tools.normalize_tool_choice` reads).

    ``parallel=False`` asks for one call per reply, and a reply with several is a problem like
    any other: repaired once, and never passed on as valid calls.
    """
    specs = [t if isinstance(t, ToolSpec) else ToolSpec.from_dict(t) for t in tools]
    if not specs:
        raise InvalidInputError("at least one tool is needed")
    choice = normalize_tool_choice(tool_choice, [t.name for t in specs], required=required)

    def errors(reply: ToolReply) -> list[str]:
        extra = [ONE_CALL_ERROR] if not parallel and len(reply.tool_calls) > 1 else []
        return [*reply.errors, *extra]

    return Protocol(tool_instructions(specs, choice, parallel),
                    lambda text: parse_tool_reply(text, specs, choice), errors)


def json_protocol(schema: Mapping[str, Any] | None) -> Protocol[JSONReply]:
    return Protocol(json_instructions(schema), lambda text: parse_json_reply(text, schema),
                    lambda r: r.errors)


def repair_messages(reply_text: str, errors: Sequence[str]) -> list[dict[str, str]]:
    problems = "\n".join(f"- {e}" for e in errors)
    return [{"role": "assistant", "content": reply_text},
            {"role": "user", "content": f"Your reply could not be used:\n{problems}\n"
                                        "Reply again with only the JSON object the instructions "
                                        "describe."}]


@dataclass
class Outcome(Generic[T]):
    """The parsed reply, the raw reply text, and every raw chat result (one, or two if repaired)."""

    reply: T
    text: str
    results: list[Any]
    repaired: bool
    #: What is still wrong with ``reply`` (empty when it can be used).
    errors: list[str] = field(default_factory=list)


Conversation = Generator[list[dict[str, str]], str, tuple[T, str, bool, list[str]]]


def _conversation(messages: Sequence[Mapping[str, Any]], protocol: Protocol[T]
                  ) -> Conversation[T]:
    prepared = render_history(messages, protocol.instructions)
    text = yield prepared
    reply = protocol.parse(text)
    problems = protocol.errors(reply)
    if not problems:
        return reply, text, False, []
    second = yield prepared + repair_messages(text, problems)
    reply = protocol.parse(second)
    return reply, second, True, protocol.errors(reply)


def run(send: Callable[[list[dict[str, str]]], Any], messages: Sequence[Mapping[str, Any]],
        protocol: Protocol[T], text_of: Callable[[Any], str] = lambda r: r.text) -> Outcome[T]:
    """Drive the protocol with ``send`` (messages -> chat result), repairing once if needed."""
    conversation = _conversation(messages, protocol)
    results: list[Any] = []
    outgoing = next(conversation)
    while True:
        results.append(send(outgoing))
        try:
            outgoing = conversation.send(text_of(results[-1]))
        except StopIteration as done:
            reply, text, repaired, errors = done.value
            return Outcome(reply, text, results, repaired, errors)


async def arun(send: Callable[[list[dict[str, str]]], Awaitable[Any]],
               messages: Sequence[Mapping[str, Any]], protocol: Protocol[T],
               text_of: Callable[[Any], str] = lambda r: r.text) -> Outcome[T]:
    conversation = _conversation(messages, protocol)
    results: list[Any] = []
    outgoing = next(conversation)
    while True:
        results.append(await send(outgoing))
        try:
            outgoing = conversation.send(text_of(results[-1]))
        except StopIteration as done:
            reply, text, repaired, errors = done.value
            return Outcome(reply, text, results, repaired, errors)

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
strict about what it returns: only the envelopes (and their tolerated spellings) are calls or
answers, a call-shaped object naming no bound tool inside prose is prose, the last envelope wins
over thought objects before it, an unfinished envelope is an error, a non-string final answer is
given as its JSON text, and arguments must validate against the tool's schema
(:func:`read_tool_reply`; docs/tool-protocol.md states the rules in full). A reply that cannot be
used is sent back once with the problems listed (:func:`run`); what is still wrong after that is
returned as invalid calls or errors, never guessed at.

Everything here is pure except :func:`run` / :func:`arun`, which differ only in ``await``.
"""

from __future__ import annotations

import json
import re
import uuid
from collections.abc import Awaitable, Callable, Generator, Mapping, Sequence, Set
from dataclasses import dataclass, field
from typing import Any, Generic, TypeVar

from ._reply_json import Found, loads_lenient, scan
from ._schema import validate
from .errors import InvalidInputError
from .tools import check_tools, function_of, normalize_tool_choice

__all__ = [
    "ANSWER_KEY",
    "CALLS_KEY",
    "CUT_OFF",
    "JSON_HEADER",
    "NOT_JSON",
    "ONE_CALL_ERROR",
    "RESULT_PREFIX",
    "TOOLS_HEADER",
    "Conversation",
    "InvalidProtocolCall",
    "JSONReply",
    "Outcome",
    "Protocol",
    "ProtocolCall",
    "Reading",
    "ToolReply",
    "ToolSpec",
    "answer_text",
    "arun",
    "find_json",
    "json_instructions",
    "json_protocol",
    "parse_json_reply",
    "parse_tool_reply",
    "read_tool_reply",
    "render_history",
    "repair_messages",
    "run",
    "tool_instructions",
    "tools_protocol",
]

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
    def from_dict(cls, tool: Mapping[str, Any], where: str = "a tool") -> ToolSpec:
        """From an OpenAI-style ``{"type": "function", "function": {...}}`` or a bare function
        (checked: a non-empty string name, ``parameters`` a JSON object if given)."""
        fn = function_of(tool, where)
        if fn is None:
            raise InvalidInputError(
                f"{where} is a {tool.get('type')!r} tool: only function tools can be described "
                "to a model through the prompted tool protocol")
        params = fn.get("parameters") or {"type": "object", "properties": {}}
        return cls(name=fn["name"], description=str(fn.get("description") or ""),
                   parameters=params)

    def as_dict(self) -> dict[str, Any]:
        return {"name": self.name, "description": self.description,
                "parameters": dict(self.parameters)}


@dataclass
class ProtocolCall:
    """A tool call read from a model's reply under the prompted protocol (Salesforce models
    have no native tool calling); the front ends turn it into their own tool-call type."""

    name: str
    arguments: dict[str, Any]
    id: str = field(default_factory=lambda: f"call_{uuid.uuid4().hex[:24]}")


@dataclass
class InvalidProtocolCall:
    name: str | None
    arguments: str | None  # the arguments as the model wrote them
    error: str
    id: str = field(default_factory=lambda: f"call_{uuid.uuid4().hex[:24]}")


@dataclass
class ToolReply:
    """The model's reply read under the tool protocol."""

    text: str = ""
    tool_calls: list[ProtocolCall] = field(default_factory=list)
    invalid_tool_calls: list[InvalidProtocolCall] = field(default_factory=list)
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
#: The protocol's own envelopes: ``{"tool_calls": [...]}`` and ``{"final_answer": ...}``.
CALLS_KEY = "tool_calls"
ANSWER_KEY = "final_answer"
#: Tolerated spellings of the calls envelope (their entries must look like calls).
_CALL_KEYS = ("tool_call", "function_call", "calls")
_ARGUMENT_KEYS = ("arguments", "parameters", "args", "input")
#: Tolerated answer keys, only when that object is the whole reply.
_ANSWER_KEYS = ("answer", "response", "content")
_QUOTE = "[\"'\u201c\u201d\u2018\u2019]?"
_ENVELOPE_START = re.compile(
    r"\[?\s*\{\s*" + _QUOTE + r"(\w+)" + _QUOTE + r"\s*:\s*" + _QUOTE + r"([\w.-]*)")
_OBJECT_START = re.compile("\\{\\s*[\"'\u201c\u201d\u2018}]")
_FENCE_MARK = re.compile(r"```[\w+-]*")

CUT_OFF = ("the reply ends inside an unfinished JSON object (it was cut off); reply again with "
           "the whole object")
NOT_JSON = "the reply holds a {what} object that is not valid JSON"


@dataclass(frozen=True)
class _Envelope:
    """A tool_calls or final_answer envelope read from a reply (``own``: spelt as asked)."""

    start: int
    calls: list[Any] | None
    answer: Any
    own: bool

    def key(self) -> str:
        """What the envelope says, for telling repeats from different envelopes."""
        if self.calls is None:
            return json.dumps(["answer", self.answer], sort_keys=True, default=repr)
        return json.dumps(["calls", [_entry(c) for c in self.calls]], sort_keys=True,
                          default=repr)


def _entry(item: Any) -> tuple[Any, Any]:
    """(name, raw arguments) of one call entry, in any of the spellings models use."""
    if not isinstance(item, dict):
        return None, item
    fn: dict[str, Any] = item["function"] if isinstance(item.get("function"), dict) else item
    raw = next((fn[k] for k in _ARGUMENT_KEYS if k in fn), None)
    return fn.get("name"), raw


def _looks_like_call(item: Any, names: Set[str]) -> bool:
    """A call object outside the envelope: a bound tool's name, or a name with arguments."""
    if not isinstance(item, dict):
        return False
    function = item.get("function")
    if isinstance(function, dict) and isinstance(function.get("name"), str):
        return True
    name = item.get("name")
    return isinstance(name, str) and (name in names or any(k in item for k in _ARGUMENT_KEYS))


def _entries(raw: Any) -> list[Any]:
    """The entries of a calls envelope: a list, one object, or either as a JSON string."""
    if raw is None:
        return []
    if isinstance(raw, str):
        ok, value = loads_lenient(raw) if raw.strip() else (True, [])
        raw = value if ok and isinstance(value, (list, dict)) else raw
    return raw if isinstance(raw, list) else [raw]


def _envelope(found: Found, names: Set[str]) -> _Envelope | None:
    """The envelope a JSON value is, if any: the protocol's own or a tolerated spelling."""
    value = found.value
    if isinstance(value, list):
        if value and all(_looks_like_call(v, names) for v in value):
            return _Envelope(found.start, value, None, False)
        return None
    if not isinstance(value, dict):
        return None
    if CALLS_KEY in value:
        entries = _entries(value[CALLS_KEY])
        if not entries and ANSWER_KEY in value:  # {"tool_calls": [], "final_answer": ...}
            return _Envelope(found.start, None, value[ANSWER_KEY], True)
        return _Envelope(found.start, entries, None, True)
    if ANSWER_KEY in value:
        return _Envelope(found.start, None, value[ANSWER_KEY], True)
    for key in _CALL_KEYS:
        if key in value:
            entries = _entries(value[key])
            if entries and all(_looks_like_call(e, names) for e in entries):
                return _Envelope(found.start, entries, None, False)
    if _looks_like_call(value, names):
        return _Envelope(found.start, [value], None, False)
    if isinstance(value.get("tool"), str):  # {"tool": ..., "tool_input": ...}
        raw = next((value[k] for k in ("tool_input", "arguments", "args") if k in value), None)
        return _Envelope(found.start, [{"name": value["tool"], "arguments": raw}], None, False)
    return None


def _starts_envelope(text: str, at: int, names: Set[str]) -> bool:
    """Whether the bracket at ``at`` opens an envelope (own or tolerated), judged by its start."""
    match = _ENVELOPE_START.match(text, at)
    if match is None:
        return False
    key, value = match.groups()
    return (key in (CALLS_KEY, ANSWER_KEY, "function", *_CALL_KEYS)
            or (key in ("name", "tool") and value in names)
            or (key == "type" and value == "function"))


def _has_prose(text: str, values: Sequence[Found]) -> bool:
    """Whether anything but JSON values, code fences and whitespace is in ``text``."""
    at = 0
    for value in values:
        if _FENCE_MARK.sub("", text[at:value.start]).strip(" \t\r\n`"):
            return True
        at = value.end
    return bool(_FENCE_MARK.sub("", text[at:]).strip(" \t\r\n`"))


def _unwrap(text: str) -> str:
    """A reply that is one JSON string holding JSON (the object sent as a string), decoded."""
    stripped = text.strip()
    if len(stripped) < 2 or stripped[0] != '"' or stripped[-1] != '"':
        return text
    try:
        inner = json.loads(stripped)
    except ValueError:
        return text
    return inner if isinstance(inner, str) and inner.lstrip()[:1] in ("{", "[") else text


def answer_text(value: Any) -> str:
    """A final answer as text: strings as they are, anything else as its JSON."""
    return value if isinstance(value, str) else json.dumps(value, ensure_ascii=False)


@dataclass(frozen=True)
class Reading:
    """What a reply under the tool protocol says: calls (their raw entries), an answer, or a
    problem that sends it back for repair."""

    calls: list[Any] | None = None
    text: str = ""
    problem: str | None = None


def read_tool_reply(text: str, names: Set[str]) -> Reading:
    """Read a reply by the rules of the protocol (see the module documentation and
    docs/tool-protocol.md); ``names`` are the bound tools."""
    text = _unwrap(text)
    found = scan(text, lambda t, at: _starts_envelope(t, at, names))
    prose = _has_prose(text, found.values)
    envelopes = []
    for value in found.values:
        envelope = _envelope(value, names)
        # A call spelt in a tolerated form that names no bound tool, in prose, is prose.
        if envelope is not None and (
                envelope.own or not prose or envelope.calls is None
                or any(_entry(c)[0] in names for c in envelope.calls)):
            envelopes.append(envelope)
    last = envelopes[-1] if envelopes else None
    unfinished = [b for b in found.broken if (last is None or b.start > last.start)
                  and _starts_envelope(text, b.start, names)]
    if unfinished:
        broken = unfinished[-1]
        if not broken.closed:
            return Reading(problem=CUT_OFF)
        key = _ENVELOPE_START.match(text, broken.start)
        return Reading(problem=NOT_JSON.format(what=key.group(1) if key else "JSON"))
    if last is None:
        only = found.values[0].value if len(found.values) == 1 and not prose else None
        if isinstance(only, dict):
            answer = next((only[k] for k in _ANSWER_KEYS if isinstance(only.get(k), str)), None)
            if answer is not None:
                return Reading(text=answer)
        return Reading(text=text.strip())
    different = len({e.key() for e in envelopes})
    if different > 1:
        return Reading(problem=f"the reply holds {different} different {CALLS_KEY}/{ANSWER_KEY} "
                               "objects; reply with exactly one JSON object")
    if last.calls is None:
        return Reading(text=answer_text(last.answer))
    if not last.calls:
        return Reading(problem=f"the {CALLS_KEY} list is empty: call at least one tool, or reply "
                               f"with a {ANSWER_KEY}")
    return Reading(calls=last.calls)


def find_json(text: str) -> tuple[Any, bool]:
    """The first JSON object or array in ``text``; (value, found)."""
    for value in scan(_unwrap(text)).values:
        if isinstance(value.value, (dict, list)):
            return value.value, True
    return None, False


def _arguments(raw: Any) -> tuple[dict[str, Any] | None, str | None]:
    """(arguments, the raw text) from a dict, a JSON string, or nothing."""
    if raw is None:
        return {}, None
    if isinstance(raw, dict):
        return raw, json.dumps(raw)
    if isinstance(raw, str):
        ok, value = loads_lenient(raw) if raw.strip() else (True, {})
        return (value if ok and isinstance(value, dict) else None), raw
    return None, json.dumps(raw)


def parse_tool_reply(text: str, tools: Sequence[ToolSpec], choice: str = "auto") -> ToolReply:
    by_name = {t.name: t for t in tools}
    reading = read_tool_reply(text, set(by_name))
    reply = ToolReply()
    if reading.problem is not None:
        reply.errors.append(reading.problem)
        return reply
    for item in reading.calls or ():
        if not isinstance(item, dict):
            reply.invalid_tool_calls.append(InvalidProtocolCall(
                None, json.dumps(item, default=repr), "a tool call must be an object"))
            continue
        name, raw_args = _entry(item)
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
            reply.invalid_tool_calls.append(InvalidProtocolCall(
                name if isinstance(name, str) else None, raw_text, problem))
        else:
            assert arguments is not None and isinstance(name, str)
            reply.tool_calls.append(ProtocolCall(name, arguments))
    reply.errors = [c.error for c in reply.invalid_tool_calls]
    if reading.calls is None:
        reply.text = reading.text
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
    """The one JSON object of a reply: the one that fits the schema when several are written
    (thoughts, examples); a reply cut off inside an object, or holding several different
    objects that fit, is a problem to repair."""
    text = _unwrap(text)
    found = scan(text, lambda t, at: _OBJECT_START.match(t, at) is not None)
    objects = [v for v in found.values if isinstance(v.value, dict)]
    last = objects[-1].start if objects else -1
    unfinished = [b for b in found.broken
                  if b.start > last and _OBJECT_START.match(text, b.start) is not None]
    if unfinished:
        problem = CUT_OFF if not unfinished[-1].closed else NOT_JSON.format(what="JSON")
        return JSONReply(None, [problem])
    if not objects:
        return JSONReply(None, ["the reply holds no JSON object"])
    fitting = [o for o in objects if schema is None or not validate(o.value, schema)]
    if fitting:
        different = len({json.dumps(o.value, sort_keys=True, default=repr) for o in fitting})
        if different > 1:
            return JSONReply(fitting[-1].value, [
                f"the reply holds {different} different JSON objects that fit the schema; "
                "reply with exactly one"])
        return JSONReply(fitting[-1].value, [])
    value = objects[-1].value
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
    :func:`~sfmodels_core.tools.normalize_tool_choice` reads).

    ``parallel=False`` asks for one call per reply, and a reply with several is a problem like
    any other: repaired once, and never passed on as valid calls.
    """
    specs = [t if isinstance(t, ToolSpec) else ToolSpec.from_dict(t, f"tools[{i}]")
             for i, t in enumerate(check_tools(tools))]
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

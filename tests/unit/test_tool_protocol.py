"""The prompted tool protocol: a corpus of realistic, messy replies and what each must parse to."""

from __future__ import annotations

import json
from typing import Any

import pytest

from sfmodels_core.schema import validate
from sfmodels_core.tool_protocol import (
    RESULT_PREFIX,
    TOOLS_HEADER,
    ToolSpec,
    arun,
    json_protocol,
    parse_json_reply,
    parse_tool_reply,
    render_history,
    run,
    tools_protocol,
)

TOOLS = [
    ToolSpec("get_weather", "Current weather in a city", {
        "type": "object", "properties": {
            "city": {"type": "string"},
            "unit": {"type": "string", "enum": ["celsius", "fahrenheit"]}},
        "required": ["city"]}),
    ToolSpec("add", "Add two integers", {
        "type": "object", "properties": {"a": {"type": "integer"}, "b": {"type": "integer"}},
        "required": ["a", "b"]}),
    ToolSpec("ping", "Check the service", {"type": "object", "properties": {}}),
]

W = ("get_weather", {"city": "Paris"})
ADD = ("add", {"a": 2, "b": 3})

# (reply as a model wrote it, tool_choice, expected valid calls, expected text, invalid count,
#  whether it must be sent back for repair)
CORPUS: list[tuple[str, str, list[tuple[str, dict[str, Any]]], str, int, bool]] = [
    ('{"tool_calls": [{"name": "get_weather", "arguments": {"city": "Paris"}}]}',
     "auto", [W], "", 0, False),
    ('```json\n{"tool_calls": [{"name": "get_weather", "arguments": {"city": "Paris"}}]}\n```',
     "auto", [W], "", 0, False),
    ('```\n{"tool_calls": [{"name": "add", "arguments": {"a": 2, "b": 3}}]}\n```',
     "auto", [ADD], "", 0, False),
    ('Sure! I will check that for you.\n{"tool_calls": [{"name": "get_weather", '
     '"arguments": {"city": "Paris"}}]}', "auto", [W], "", 0, False),
    ('{"tool_calls": [{"name": "get_weather", "arguments": {"city": "Paris"}}]}\nLet me know!',
     "auto", [W], "", 0, False),
    ('{"tool_calls": [{"name": "add", "arguments": {"a": 2, "b": 3,},},],}', "auto", [ADD], "",
     0, False),
    ("{'tool_calls': [{'name': 'add', 'arguments': {'a': 2, 'b': 3}}]}", "auto", [ADD], "", 0,
     False),
    ('{"tool_calls": [{"name": "get_weather", "arguments": {"city": "Paris", "unit": None}}]}',
     "auto", [], "", 1, True),
    ('{"tool_calls": [{"name": "add", "arguments": "{\\"a\\": 2, \\"b\\": 3}"}]}', "auto", [ADD],
     "", 0, False),
    ('{"tool_calls": [{"id": "call_9", "type": "function", "function": {"name": "add", '
     '"arguments": "{\\"a\\": 2, \\"b\\": 3}"}}]}', "auto", [ADD], "", 0, False),
    ('{"name": "get_weather", "arguments": {"city": "Paris"}}', "auto", [W], "", 0, False),
    ('{"name": "get_weather", "parameters": {"city": "Paris"}}', "auto", [W], "", 0, False),
    ('{"tool": "get_weather", "tool_input": {"city": "Paris"}}', "auto", [W], "", 0, False),
    ('{"tool_call": {"name": "add", "arguments": {"a": 2, "b": 3}}}', "auto", [ADD], "", 0,
     False),
    ('[{"name": "add", "arguments": {"a": 2, "b": 3}}, {"name": "get_weather", '
     '"arguments": {"city": "Paris"}}]', "auto", [ADD, W], "", 0, False),
    ('{"tool_calls": [{"name": "get_weather", "arguments": {"city": "Paris"}}, '
     '{"name": "get_weather", "arguments": {"city": "Oslo", "unit": "celsius"}}]}', "auto",
     [W, ("get_weather", {"city": "Oslo", "unit": "celsius"})], "", 0, False),
    ('{"final_answer": "It is 21 degrees in Paris."}', "auto", [],
     "It is 21 degrees in Paris.", 0, False),
    ('```json\n{"final_answer": "Five."}\n```', "auto", [], "Five.", 0, False),
    ('{"answer": "Five."}', "auto", [], "Five.", 0, False),
    ("The answer is five.", "auto", [], "The answer is five.", 0, False),
    ("The answer is five.", "required", [], "The answer is five.", 0, True),
    ('{"tool_calls": [{"name": "get_forecast", "arguments": {"city": "Paris"}}]}', "auto", [],
     "", 1, True),
    ('{"tool_calls": [{"name": "add", "arguments": {"a": 2}}]}', "auto", [], "", 1, True),
    ('{"tool_calls": [{"name": "add", "arguments": {"a": "2", "b": 3}}]}', "auto", [], "", 1,
     True),
    ('{"tool_calls": [{"name": "add", "arguments": {"a": 2.0, "b": 3}}]}', "auto",
     [("add", {"a": 2.0, "b": 3})], "", 0, False),
    ('{"tool_calls": [{"name": "get_weather", "arguments": {"city": "Paris", '
     '"unit": "kelvin"}}]}', "auto", [], "", 1, True),
    ('{"tool_calls": [{"name": "get_weather", "arguments": {"city": "Paris {downtown}"}}]}',
     "auto", [("get_weather", {"city": "Paris {downtown}"})], "", 0, False),
    ('{"tool_calls": [{"name": "get_weather", "arguments": {"city": "Saint \\"Paris\\""}}]}',
     "auto", [("get_weather", {"city": 'Saint "Paris"'})], "", 0, False),
    ("{\u201ctool_calls\u201d: [{\u201cname\u201d: \u201cping\u201d, \u201carguments\u201d: {}}]}",
     "auto", [("ping", {})], "", 0, False),
    ('{"tool_calls": [{"name": "ping"}]}', "auto", [("ping", {})], "", 0, False),
    ('{"tool_calls": [{"name": "get_weather", "arguments": {"city": "Paris"}', "auto", [],
     '{"tool_calls": [{"name": "get_weather", "arguments": {"city": "Paris"}', 0, False),
    ('{"tool_calls": [{"name": "get_weather", "arguments": {"city": "Paris"}}]}', "none", [W],
     "", 0, True),
    ('{"tool_calls": [{"name": "add", "arguments": {"a": 2, "b": 3}}]}', "get_weather", [ADD],
     "", 0, True),
    ('{"tool_calls": [{"name": "get_weather", "arguments": {"city": "Paris"}}]}', "get_weather",
     [W], "", 0, False),
    ('{"tool_calls": [{"name": "add", "arguments": {"a": 2, "b": 3}}, {"name": "add", '
     '"arguments": {"a": "x"}}]}', "auto", [ADD], "", 1, True),
    ('I need the weather first:\n```json\n{"tool_calls": [{"name": "get_weather", "arguments": '
     '{"city": "Paris"}}]}\n```\nThen I will answer.', "auto", [W], "", 0, False),
    ('{"tool_calls": [{"name": "get_weather", "arguments": {"city": "Zürich"}}]}', "auto",
     [("get_weather", {"city": "Zürich"})], "", 0, False),
    ('{"tool_calls": [{"name": "add", "arguments": [2, 3]}]}', "auto", [], "", 1, True),
    ('{"tool_calls": [{"name": "add", "arguments": {"a": True, "b": 3}}]}', "auto", [], "", 1,
     True),
    ("", "auto", [], "", 0, False),
]


@pytest.mark.parametrize("reply, choice, calls, text, invalid, needs_repair", CORPUS)
def test_corpus(reply: str, choice: str, calls: list[tuple[str, dict[str, Any]]], text: str,
                invalid: int, needs_repair: bool) -> None:
    parsed = parse_tool_reply(reply, TOOLS, choice)
    assert [(c.name, c.arguments) for c in parsed.tool_calls] == calls
    assert parsed.text == text
    assert len(parsed.invalid_tool_calls) == invalid
    assert bool(parsed.errors) == needs_repair
    assert len({c.id for c in parsed.tool_calls + parsed.invalid_tool_calls}) == (
        len(parsed.tool_calls) + len(parsed.invalid_tool_calls))


def test_corpus_is_big_enough() -> None:
    assert len(CORPUS) >= 30


def test_invalid_calls_keep_what_the_model_wrote_and_why() -> None:
    parsed = parse_tool_reply('{"tool_calls": [{"name": "add", "arguments": {"a": "2", "b": 3}}]}',
                              TOOLS)
    bad = parsed.invalid_tool_calls[0]
    assert bad.name == "add" and json.loads(bad.arguments or "") == {"a": "2", "b": 3}
    assert "$.a: expected integer" in bad.error


def test_instructions_change_with_tool_choice() -> None:
    texts = {c: tools_protocol([t.as_dict() for t in TOOLS], c).instructions
             for c in ("auto", "any", "none", "add")}
    assert all(t.startswith(TOOLS_HEADER) for t in texts.values())
    assert "when they help" in texts["auto"]
    assert "must call at least one" in texts["any"]
    assert "Do not call any tool" in texts["none"]
    assert "must call the tool 'add'" in texts["add"]
    assert '"name": "get_weather"' in texts["auto"]


def test_history_renders_tool_calls_and_results_as_three_roles() -> None:
    messages = [
        {"role": "system", "content": "You are helpful."},
        {"role": "user", "content": "Weather in Paris and Oslo?"},
        {"role": "assistant", "content": "", "tool_calls": [
            {"id": "c1", "name": "get_weather", "arguments": {"city": "Paris"}},
            {"id": "c2", "name": "get_weather", "arguments": {"city": "Oslo"}}]},
        {"role": "tool", "tool_call_id": "c1", "content": "21C"},
        {"role": "tool", "tool_call_id": "c2", "content": "4C"},
    ]
    out = render_history(messages, "INSTRUCTIONS")
    assert [m["role"] for m in out] == ["system", "user", "assistant", "user"]
    assert out[0]["content"] == "You are helpful.\n\nINSTRUCTIONS"
    assert json.loads(out[2]["content"]) == {"tool_calls": [
        {"name": "get_weather", "arguments": {"city": "Paris"}},
        {"name": "get_weather", "arguments": {"city": "Oslo"}}]}
    assert out[3]["content"].startswith(RESULT_PREFIX)
    assert 'get_weather called with {"city": "Paris"}:\n21C' in out[3]["content"]
    assert 'get_weather called with {"city": "Oslo"}:\n4C' in out[3]["content"]
    # No ids in what is sent, so identical conversations send identical bodies.
    assert "c1" not in json.dumps(out)
    assert render_history([{"role": "user", "content": "hi"}], "I")[0] == {
        "role": "system", "content": "I"}


class Reply:
    def __init__(self, text: str) -> None:
        self.text = text


def scripted(*texts: str) -> tuple[list[list[dict[str, str]]], Any]:
    sent: list[list[dict[str, str]]] = []
    queue = list(texts)

    def send(messages: list[dict[str, str]]) -> Reply:
        sent.append(messages)
        return Reply(queue.pop(0))

    return sent, send


def test_a_bad_reply_is_repaired_once_with_the_problem_shown() -> None:
    sent, send = scripted('{"tool_calls": [{"name": "add", "arguments": {"a": "two"}}]}',
                          '{"tool_calls": [{"name": "add", "arguments": {"a": 2, "b": 3}}]}')
    outcome = run(send, [{"role": "user", "content": "2+3?"}], tools_protocol(TOOLS))
    assert outcome.repaired and len(outcome.results) == 2
    assert [(c.name, c.arguments) for c in outcome.reply.tool_calls] == [ADD]
    repair = sent[1][-1]["content"]
    assert "could not be used" in repair and "$.a: expected integer" in repair
    bad = '{"tool_calls": [{"name": "add", "arguments": {"a": "two"}}]}'
    assert sent[1][-2] == {"role": "assistant", "content": bad}


def test_still_bad_after_one_repair_surfaces_as_invalid() -> None:
    bad = '{"tool_calls": [{"name": "add", "arguments": {"a": "two"}}]}'
    sent, send = scripted(bad, bad, bad)
    outcome = run(send, [{"role": "user", "content": "2+3?"}], tools_protocol(TOOLS))
    assert len(sent) == 2
    assert outcome.reply.tool_calls == [] and len(outcome.reply.invalid_tool_calls) == 1


async def test_async_run_matches() -> None:
    _, send = scripted('{"final_answer": "5"}')

    async def asend(messages: list[dict[str, str]]) -> Reply:
        return send(messages)

    outcome = await arun(asend, [{"role": "user", "content": "2+3?"}], tools_protocol(TOOLS))
    assert outcome.reply.text == "5" and not outcome.repaired


PERSON = {"type": "object", "properties": {
    "name": {"type": "string"}, "age": {"type": "integer", "minimum": 0},
    "address": {"$ref": "#/$defs/Address"}},
    "required": ["name", "age"],
    "$defs": {"Address": {"type": "object", "properties": {"city": {"type": "string"}},
                          "required": ["city"]}}}


@pytest.mark.parametrize("reply, value, ok", [
    ('{"name": "Ann", "age": 31}', {"name": "Ann", "age": 31}, True),
    ('Here you go:\n```json\n{"name": "Ann", "age": 31,}\n```', {"name": "Ann", "age": 31}, True),
    ('{"name": "Ann", "age": 31, "address": {"city": "Oslo"}}',
     {"name": "Ann", "age": 31, "address": {"city": "Oslo"}}, True),
    ('{"name": "Ann", "age": 31, "address": {}}', {"name": "Ann", "age": 31, "address": {}},
     False),
    ('{"name": "Ann", "age": -1}', {"name": "Ann", "age": -1}, False),
    ('{"name": "Ann"}', {"name": "Ann"}, False),
    ("Ann is 31.", None, False),
])
def test_structured_replies(reply: str, value: Any, ok: bool) -> None:
    parsed = parse_json_reply(reply, PERSON)
    assert parsed.value == value
    assert (not parsed.errors) == ok


def test_json_mode_accepts_any_object() -> None:
    assert parse_json_reply('{"anything": [1, 2]}', None).errors == []
    assert "JSON Schema" in json_protocol(PERSON).instructions
    assert "JSON Schema" not in json_protocol(None).instructions


def test_schema_validator_basics() -> None:
    schema = {"type": "object", "properties": {
        "a": {"type": "array", "items": {"type": "integer"}}}}
    assert validate({"a": [1, "x"]}, schema) == ["$.a[1]: expected integer, got string"]
    assert validate(None, {"anyOf": [{"type": "string"}, {"type": "null"}]}) == []
    assert validate({"x": 1}, {"type": "object", "additionalProperties": False}) == [
        "$: unexpected property 'x'"]
    assert validate(3, {"type": ["integer", "null"], "maximum": 2}) == ["$: 3 breaks maximum 2"]


def test_one_call_per_reply_and_history_alone() -> None:
    single = tools_protocol(TOOLS, parallel=False).instructions
    assert "Call at most one tool per reply." in single
    assert "at most one" not in tools_protocol(TOOLS).instructions
    history = [{"role": "user", "content": "2+3?"},
               {"role": "assistant", "content": "", "tool_calls": [
                   {"id": "c1", "name": "add", "arguments": {"a": 2, "b": 3}}]},
               {"role": "tool", "tool_call_id": "c1", "content": "5"}]
    assert [m["role"] for m in render_history(history, "")] == ["user", "assistant", "user"]


def test_outcome_says_what_is_still_wrong() -> None:
    bad = '{"tool_calls": [{"name": "add", "arguments": {"a": "two"}}]}'
    _, send = scripted(bad, bad)
    outcome = run(send, [{"role": "user", "content": "2+3?"}], tools_protocol(TOOLS))
    assert outcome.repaired and outcome.errors and "expected integer" in outcome.errors[0]
    _, send = scripted('{"final_answer": "5"}')
    assert run(send, [{"role": "user", "content": "?"}], tools_protocol(TOOLS)).errors == []

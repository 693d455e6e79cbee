"""The prompted tool protocol: a corpus of realistic, messy replies and what each must parse to."""

from __future__ import annotations

import json
from typing import Any

import pytest

from sfmodels_core._schema import validate
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

CALL_W = '{"tool_calls": [{"name": "get_weather", "arguments": {"city": "Paris"}}]}'
CALL_ADD = '{"tool_calls": [{"name": "add", "arguments": {"a": 2, "b": 3}}]}'

# A final answer that is not a string is given as text: JSON text for numbers, booleans and
# null, JSON for objects and lists; never the envelope around it.
NON_STRING_ANSWERS: list[tuple[str, str, list[tuple[str, dict[str, Any]]], str, int, bool]] = [
    ('{"final_answer": 42}', "auto", [], "42", 0, False),
    ('{"final_answer": 4.5}', "auto", [], "4.5", 0, False),
    ('{"final_answer": -1e3}', "auto", [], "-1000.0", 0, False),
    ('{"final_answer": true}', "auto", [], "true", 0, False),
    ('{"final_answer": false}', "auto", [], "false", 0, False),
    ('{"final_answer": null}', "auto", [], "null", 0, False),
    ('{"final_answer": {"city": "Paris", "temp": 21}}', "auto", [],
     '{"city": "Paris", "temp": 21}', 0, False),
    ('{"final_answer": ["Paris", "Oslo"]}', "auto", [], '["Paris", "Oslo"]', 0, False),
    ('{"final_answer": {"ville": "Zürich"}}', "auto", [], '{"ville": "Zürich"}', 0, False),
    ("{'final_answer': True}", "auto", [], "true", 0, False),
    ('```json\n{"final_answer": 5}\n```', "auto", [], "5", 0, False),
    ('{"final_answer": 42}', "none", [], "42", 0, False),
]

# The reading rules: only envelopes (and the tolerated spellings) are calls; a call spelt as a
# bare object that names no bound tool, inside prose, is prose; the last envelope wins over
# earlier thought objects; a reply that starts an envelope and does not finish it is repaired.
READING_RULES: list[tuple[str, str, list[tuple[str, dict[str, Any]]], str, int, bool]] = [
    ('The record is {"name": "Ann", "input": "form A"} as requested.', "auto", [],
     'The record is {"name": "Ann", "input": "form A"} as requested.', 0, False),
    ('The people are [{"name": "Ann"}, {"name": "Bob"}].', "auto", [],
     'The people are [{"name": "Ann"}, {"name": "Bob"}].', 0, False),
    ('I would use {"name": "get_forecast", "arguments": {"city": "Paris"}}, but there is no '
     'such tool. It is sunny.', "auto", [],
     'I would use {"name": "get_forecast", "arguments": {"city": "Paris"}}, but there is no '
     'such tool. It is sunny.', 0, False),
    ('Here is the JSON you asked for: {"city": "Paris", "temp": 21}', "auto", [],
     'Here is the JSON you asked for: {"city": "Paris", "temp": 21}', 0, False),
    # Without prose around it, a call-shaped object naming no bound tool is a wrong call.
    ('{"name": "get_forecast", "arguments": {"city": "Paris"}}', "auto", [], "", 1, True),
    # The protocol's own envelope always calls, prose or not.
    ('Let me check. {"tool_calls": [{"name": "get_forecast", "arguments": {}}]}', "auto", [],
     "", 1, True),
    ('{"thought": "I need the weather first"}\n' + CALL_W, "auto", [W], "", 0, False),
    ('{"thought": "easy"} {"final_answer": "Five."}', "auto", [], "Five.", 0, False),
    ('{"thought": "I will add them", "tool_calls": [{"name": "add", "arguments": '
     '{"a": 2, "b": 3}}]}', "auto", [ADD], "", 0, False),
    # Cut off: an error sent back for repair, never a final answer.
    ('{"tool_calls": [{"name": "get_weather", "arguments": {"city": "Paris"}', "auto", [], "",
     0, True),
    ('{"final_answer": "It is 21 degr', "auto", [], "", 0, True),
    ('Let me check.\n```json\n{"tool_calls": [{"name": "add", "arguments": {"a": 2,', "auto",
     [], "", 0, True),
    ('{"tool_calls": [{"name": "add", "arguments": {"a": 2, "b": 3}}]', "auto", [], "", 0,
     True),
    (CALL_W + '\n{"tool_calls": [{"name": "add", "argu', "auto", [], "", 0, True),
    ('{"thought": "I need the weather"}\n{"tool_calls": [{"name": "get_weather", "argum',
     "auto", [], "", 0, True),
    ("{'tool_calls': [{'name': 'ping', 'arguments': {", "auto", [], "", 0, True),
    ('[{"name": "add", "arguments": {"a": 2, "b"', "auto", [], "", 0, True),
    ('{"tool_calls": [{"name": "add" "arguments": {"a": 2, "b": 3}}]}', "auto", [], "", 0,
     True),
    ('{"tool_calls": []}', "auto", [], "", 0, True),
    ('{"tool_calls": [], "final_answer": "Five."}', "auto", [], "Five.", 0, False),
    ('{"tool_calls": null, "final_answer": 5}', "auto", [], "5", 0, False),
    ('{"tool_calls": [{"name": "add", "arguments": {"a": 2, "b": 3}}], "final_answer": "5"}',
     "auto", [ADD], "", 0, False),
]

# More of what models really write.
MESSY: list[tuple[str, str, list[tuple[str, dict[str, Any]]], str, int, bool]] = [
    # markdown around the JSON
    ('**Calling the tool:**\n\n```json\n' + CALL_W + '\n```\n\n_I will wait for the '
     'result._', "auto", [W], "", 0, False),
    ('> Note: I need live data.\n\n- step 1: weather\n\n```JSON\n' + CALL_W + '\n```',
     "auto", [W], "", 0, False),
    # two envelopes: a repeat is one; two different ones are sent back
    (CALL_W + '\n```json\n' + CALL_W + '\n```', "auto", [W], "", 0, False),
    (CALL_W + '\n{"final_answer": "It is sunny in Paris."}', "auto", [], "", 0, True),
    (CALL_W + "\n" + CALL_ADD, "auto", [], "", 0, True),
    ('{"final_answer": "Five."}\n{"final_answer": "Five."}', "auto", [], "Five.", 0, False),
    # a broken envelope, then the model corrects itself: the last well-formed one wins
    ('{"tool_calls": [{"name": "add" "arguments": {"a": 2}}]}\nSorry, corrected:\n' + CALL_ADD,
     "auto", [ADD], "", 0, False),
    # an envelope in a code block after prose
    ('To answer this I need the weather.\n\n```javascript\n' + CALL_W + '\n```', "auto", [W],
     "", 0, False),
    ("I'll use {city} as the key [see the user's note]: " + CALL_W, "auto", [W], "", 0, False),
    # escaped JSON in a string
    ('{"final_answer": "{\\"city\\": \\"Paris\\"}"}', "auto", [], '{"city": "Paris"}', 0,
     False),
    ('"{\\"tool_calls\\": [{\\"name\\": \\"add\\", \\"arguments\\": {\\"a\\": 2, '
     '\\"b\\": 3}}]}"', "auto", [ADD], "", 0, False),
    ('{"tool_calls": "[{\\"name\\": \\"add\\", \\"arguments\\": {\\"a\\": 2, '
     '\\"b\\": 3}}]"}', "auto", [ADD], "", 0, False),
    ('{"final_answer": "Line one\\nLine \\u00e9\\ud83d\\ude00"}', "auto", [],
     "Line one\nLine \u00e9\U0001F600", 0, False),
    # Python literals, trailing commas, comments, smart quotes, unquoted keys: inside strings,
    # nothing is rewritten
    ('{"final_answer": "None of them, True story",}', "auto", [], "None of them, True story",
     0, False),
    ('{"final_answer": "a, ]b",}', "auto", [], "a, ]b", 0, False),
    ("{'tool_calls': [{'name': 'get_weather', 'arguments': {'city': 'Saint-Jean-d\\'Acre'}}]}",
     "auto", [("get_weather", {"city": "Saint-Jean-d'Acre"})], "", 0, False),
    ("{\u201cfinal_answer\u201d: \u201cIt\u2019s sunny\u201d}", "auto", [],
     "It\u2019s sunny", 0, False),
    ("{\u2018tool_calls\u2019: [{\u2018name\u2019: \u2018ping\u2019, \u2018arguments\u2019: "
     "{}}]}", "auto", [("ping", {})], "", 0, False),
    ('{tool_calls: [{name: "add", arguments: {a: 2, b: 3,},},],}', "auto", [ADD], "", 0, False),
    ('{"tool_calls": [{"name": "add", // add them\n "arguments": {"a": 2, "b": 3}}]}', "auto",
     [ADD], "", 0, False),
    # other models' own call formats, naming a bound tool
    ('<tool_call>\n{"name": "get_weather", "arguments": {"city": "Paris"}}\n</tool_call>',
     "auto", [W], "", 0, False),
    ('[TOOL_CALLS] [{"name": "add", "arguments": {"a": 2, "b": 3}}]', "auto", [ADD], "", 0,
     False),
    ('<|python_tag|>{"name": "add", "parameters": {"a": 2, "b": 3}}', "auto", [ADD], "", 0,
     False),
    ('{"role": "assistant", "content": null, "tool_calls": [{"id": "c1", "type": "function", '
     '"function": {"name": "add", "arguments": "{\\"a\\": 2, \\"b\\": 3}"}}]}', "auto",
     [ADD], "", 0, False),
    # answers that look like something else
    ("Thought: I know this.\nAnswer: Five.", "auto", [], "Thought: I know this.\nAnswer: Five.",
     0, False),
    ('{"final_answer": "**Bold**, `code` and {braces} [sic]"}', "auto", [],
     "**Bold**, `code` and {braces} [sic]", 0, False),
    ("Use {name} or [index] in the template; it's simple.", "auto", [],
     "Use {name} or [index] in the template; it's simple.", 0, False),
]


@pytest.mark.parametrize("reply, choice, calls, text, invalid, needs_repair",
                         CORPUS + NON_STRING_ANSWERS + READING_RULES + MESSY)
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
    assert len(CORPUS) >= 30 and len(MESSY) >= 10


SENTENCE = "The quick brown fox jumps over the lazy dog near the river bank. "
LONG = SENTENCE * 3200  # about 200 KB

LONG_REPLIES = {
    "prose, then the call": (LONG + CALL_W, [W], "", False),
    "one long final answer": (json.dumps({"final_answer": LONG}), [], LONG, False),
    "unclosed braces in prose": ("Use {name or [index here, then " * 6500 + CALL_W, [W], "",
                                 False),
    "cut off inside nesting": ('{"final_answer": ' + '[{"a": ' * 28000, [], "", True),
    "many small objects, then the call": ('{"id": 1, "ok": true} ' * 9000 + CALL_W, [W], "",
                                          False),
    "long arguments": (json.dumps({"tool_calls": [{"name": "get_weather",
                                                   "arguments": {"city": LONG}}]}),
                       [("get_weather", {"city": LONG})], "", False),
    "long prose answer with apostrophes": ("It's " * 40000, [], ("It's " * 40000).strip(),
                                           False),
}


@pytest.mark.parametrize("reply, calls, text, needs_repair", LONG_REPLIES.values(),
                         ids=LONG_REPLIES.keys())
def test_long_replies(reply: str, calls: list[tuple[str, dict[str, Any]]], text: str,
                      needs_repair: bool) -> None:
    assert len(reply) >= 190_000
    parsed = parse_tool_reply(reply, TOOLS)
    assert [(c.name, c.arguments) for c in parsed.tool_calls] == calls
    assert parsed.text == text
    assert bool(parsed.errors) == needs_repair


@pytest.mark.parametrize("reply", [
    # every level fails to read (the innermost value is not JSON), so each is looked into
    '{"a": ' * 20000 + "oops" + "}" * 20000,
    "[" * 20000 + "x" + "]" * 20000,
    LONG + "{" * 20000 + "}" * 20000,
], ids=["nested objects", "nested lists", "nested braces"])
def test_reading_work_stays_proportional_to_the_reply(monkeypatch: pytest.MonkeyPatch,
                                                     reply: str) -> None:
    """Spans that do not read are looked into, but the characters read in all stay within a
    small multiple of the reply (a quadratic re-reading would read about depth x size)."""
    from sfmodels_core import _reply_json as reply_json

    read: list[int] = []
    original = reply_json.loads_lenient

    def counting(snippet: str) -> tuple[bool, Any]:
        read.append(len(snippet))
        return original(snippet)

    monkeypatch.setattr(reply_json, "loads_lenient", counting)
    parse_tool_reply(reply, TOOLS)
    assert read  # the spans were read
    assert sum(read) <= 4 * len(reply) + 4096


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
    # a thought or an example before the answer: the object that fits wins
    ('{"thought": "find the name and age"}\n{"name": "Ann", "age": 31}',
     {"name": "Ann", "age": 31}, True),
    ('For example {"name": "Bob"} would be wrong. Answer: {"name": "Ann", "age": 31}',
     {"name": "Ann", "age": 31}, True),
    # two different objects that both fit: sent back, not guessed
    ('{"name": "Ann", "age": 31}\n{"name": "Bob", "age": 40}', {"name": "Bob", "age": 40},
     False),
    ('{"name": "Ann", "age": 31}\n```json\n{"name": "Ann", "age": 31}\n```',
     {"name": "Ann", "age": 31}, True),
    # cut off, or broken: sent back
    ('{"name": "Ann", "address": {"city": "Oslo"}, "age": 3', None, False),
    ('{"name": "Ann", "age": 31}\n{"name": "Bo', None, False),
    ('{"name": "Ann" "age": 31}', None, False),
    # the object sent as a JSON string, Python literals, and curly quotes
    ('"{\\"name\\": \\"Ann\\", \\"age\\": 31}"', {"name": "Ann", "age": 31}, True),
    ("{'name': 'Ann', 'age': 31, 'address': None}", {"name": "Ann", "age": 31, "address": None},
     False),
    ("{\u201cname\u201d: \u201cAnn\u201d, \u201cage\u201d: 31}", {"name": "Ann", "age": 31},
     True),
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

"""ChatSalesforce reads replies under the tool protocol without losing or inventing anything.

Scripted replies (no sockets): a non-string final answer is the message's text, never the
protocol's JSON; prose that happens to hold a call-shaped object is the answer, not a call to an
unknown tool; the call after a thought object is made; a reply cut off inside its JSON is
repaired, never returned as the answer.
"""

from __future__ import annotations

import pytest
from langchain_core.messages import AIMessage, HumanMessage, ToolMessage
from langchain_core.tools import tool

from langchain_sfmodels import ChatSalesforce

from .fakes import FakeService, salesforce_client, sf_chat

pytestmark = pytest.mark.allow_hosts([])

REPAIR = "Your reply could not be used"


@tool
def add(a: int, b: int) -> int:
    """Add two integers."""
    return a + b


@tool
def get_weather(city: str) -> str:
    """Get the current weather in a city."""
    return f"Sunny in {city}"


def scripted(*texts: str) -> tuple[FakeService, ChatSalesforce]:
    service = FakeService()
    service.replies = [sf_chat(text, generation_id=f"gen-{i}", response_id=f"chatcmpl-{i}")
                       for i, text in enumerate(texts)]
    return service, ChatSalesforce(client=salesforce_client(service))


@pytest.mark.parametrize("reply, content", [
    ('{"final_answer": 42}', "42"),
    ('{"final_answer": 4.5}', "4.5"),
    ('{"final_answer": true}', "true"),
    ('{"final_answer": null}', "null"),
    ('{"final_answer": {"sum": 5, "city": "Zürich"}}', '{"sum": 5, "city": "Zürich"}'),
    ('{"final_answer": [2, 3]}', "[2, 3]"),
])
def test_a_final_answer_that_is_not_a_string_is_its_json_text(reply: str, content: str) -> None:
    service, llm = scripted(reply)
    message = llm.bind_tools([add, get_weather]).invoke("What is 2 + 3?")
    assert isinstance(message, AIMessage)
    assert message.content == content
    assert "final_answer" not in message.text
    assert message.tool_calls == [] and message.invalid_tool_calls == []
    assert len(service.requests) == 1


@pytest.mark.parametrize("stream", [False, True])
def test_prose_holding_a_name_object_is_the_answer(stream: bool) -> None:
    prose = ('Ann is registered: {"name": "Ann", "input": "form A"}. '
             'The list is [{"name": "Bob"}, {"name": "Eve"}].')
    service, llm = scripted(prose)
    bound = llm.bind_tools([add, get_weather])
    if stream:
        (chunk,) = list(bound.stream("Who is registered?"))
        message: AIMessage = chunk
    else:
        message = bound.invoke("Who is registered?")
    assert message.text == prose
    assert message.tool_calls == [] and message.invalid_tool_calls == []
    assert len(service.requests) == 1  # no repair round
    assert message.response_metadata["repaired"] is False


def test_the_call_after_a_thought_object_is_made() -> None:
    reply = ('{"thought": "I need the weather first"}\n'
             '{"tool_calls": [{"name": "get_weather", "arguments": {"city": "Paris"}}]}')
    service, llm = scripted(reply, '{"final_answer": "Sunny in Paris."}')
    bound = llm.bind_tools([add, get_weather])
    first = bound.invoke("Weather in Paris?")
    assert [(c["name"], c["args"]) for c in first.tool_calls] == [("get_weather",
                                                                   {"city": "Paris"})]
    assert first.content == ""
    result = get_weather.invoke(first.tool_calls[0])
    assert isinstance(result, ToolMessage)
    final = bound.invoke([HumanMessage("Weather in Paris?"), first, result])
    assert final.text == "Sunny in Paris." and not final.tool_calls
    assert len(service.requests) == 2


def test_a_reply_cut_off_inside_its_json_is_repaired() -> None:
    cut = '{"tool_calls": [{"name": "add", "arguments": {"a": 2, "b"'
    service, llm = scripted(cut, '{"tool_calls": [{"name": "add", "arguments": {"a": 2, "b": 3}}]}')
    message = llm.bind_tools([add]).invoke("What is 2 + 3?")
    assert [(c["name"], c["args"]) for c in message.tool_calls] == [("add", {"a": 2, "b": 3})]
    assert message.response_metadata["repaired"] is True
    repair = service.bodies()[1]["messages"][-1]["content"]
    assert repair.startswith(REPAIR) and "cut off" in repair


def test_a_final_answer_cut_off_twice_is_an_error_not_an_answer() -> None:
    cut = '{"final_answer": "The sum of 2 and 3 is'
    service, llm = scripted(cut, cut)
    message = llm.bind_tools([add]).invoke("What is 2 + 3?")
    assert message.content == "" and message.tool_calls == []
    (invalid,) = message.invalid_tool_calls
    assert "cut off" in (invalid["error"] or "")
    assert message.response_metadata["protocol_errors"]
    assert len(service.requests) == 2

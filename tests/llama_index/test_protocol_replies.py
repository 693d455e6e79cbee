"""SalesforceLLM reads replies under the tool protocol without losing or inventing anything.

Scripted replies (no sockets): a non-string final answer is the response's text, never the
protocol's JSON; prose that happens to hold a call-shaped object is the answer, so a
``FunctionAgent`` returns it instead of raising; the call after a thought object is made; a
reply cut off inside its JSON is repaired, never returned as the answer.
"""

from __future__ import annotations

import json
from typing import Any

import httpx
import pytest
from llama_index.core.agent.workflow import FunctionAgent
from llama_index.core.base.llms.types import ToolCallBlock
from llama_index.core.tools import FunctionTool

from llama_index_sfmodels import ModelReplyError, SalesforceLLM
from sfmodels_core.salesforce import SalesforceClient

pytestmark = pytest.mark.allow_hosts([])

REPAIR = "Your reply could not be used"
calls: list[tuple[str, Any]] = []


def add(a: int, b: int) -> int:
    """Add two integers a and b."""
    calls.append(("add", (a, b)))
    return a + b


def get_weather(city: str) -> str:
    """Get the current weather for a city."""
    calls.append(("get_weather", city))
    return f"Sunny in {city}"


TOOLS = [FunctionTool.from_defaults(fn=add), FunctionTool.from_defaults(fn=get_weather)]


@pytest.fixture(autouse=True)
def no_calls_yet() -> None:
    calls.clear()


class Script:
    """A Models API answering with the given texts in turn, keeping every request body."""

    def __init__(self, *replies: str) -> None:
        self.replies = list(replies)
        self.bodies: list[dict[str, Any]] = []

    def __call__(self, request: httpx.Request) -> httpx.Response:
        self.bodies.append(json.loads(request.read()))
        n = len(self.bodies)
        return httpx.Response(200, json={"id": f"chat-{n}", "generationDetails": {
            "generations": [{"id": f"gen-{n}", "role": "assistant",
                             "content": self.replies.pop(0),
                             "parameters": {"finish_reason": "stop", "index": 0}}],
            "parameters": {"model": "gpt-4o-mini", "usage": {
                "prompt_tokens": 10, "completion_tokens": 1, "total_tokens": 11}}}})


def scripted(*replies: str) -> tuple[SalesforceLLM, Script]:
    script = Script(*replies)
    client = SalesforceClient(api_key="t", api_base="https://api.example/einstein/platform/v1",
                              max_retries=0, transport=httpx.MockTransport(script),
                              async_transport=httpx.MockTransport(script))
    return SalesforceLLM(client=client), script


@pytest.mark.parametrize("reply, text", [
    ('{"final_answer": 42}', "42"),
    ('{"final_answer": 4.5}', "4.5"),
    ('{"final_answer": false}', "false"),
    ('{"final_answer": null}', "null"),
    ('{"final_answer": {"sum": 5, "city": "Zürich"}}', '{"sum": 5, "city": "Zürich"}'),
    ('{"final_answer": ["Paris", "Oslo"]}', '["Paris", "Oslo"]'),
])
def test_a_final_answer_that_is_not_a_string_is_its_json_text(reply: str, text: str) -> None:
    llm, script = scripted(reply)
    response = llm.chat_with_tools(TOOLS, user_msg="What is 2 plus 3?")
    assert response.message.content == text
    assert llm.get_tool_calls_from_response(response, error_on_no_tool_call=False) == []
    assert len(script.bodies) == 1


PROSE = ('Ann is registered: {"name": "Ann", "input": "form A"}. '
         'The others are [{"name": "Bob"}, {"name": "Eve"}].')


def test_prose_holding_a_name_object_is_the_answer() -> None:
    llm, script = scripted(PROSE)
    response = llm.chat_with_tools(TOOLS, user_msg="Who is registered?")
    assert response.message.content == PROSE
    assert llm.get_tool_calls_from_response(response, error_on_no_tool_call=False) == []
    assert "invalid_tool_calls" not in response.additional_kwargs
    assert len(script.bodies) == 1


# Building the workflow inspects the agent's pydantic attributes; pydantic warns about that.
@pytest.mark.filterwarnings("ignore::DeprecationWarning")
async def test_a_function_agent_returns_prose_holding_a_name_object() -> None:
    llm, script = scripted(PROSE)
    output = await FunctionAgent(tools=TOOLS, llm=llm).run(user_msg="Who is registered?")
    assert str(output.response.content) == PROSE
    assert calls == [] and len(script.bodies) == 1


@pytest.mark.filterwarnings("ignore::DeprecationWarning")
async def test_a_function_agent_makes_the_call_after_a_thought_object() -> None:
    llm, script = scripted(
        '{"thought": "I need the weather first"}\n'
        '{"tool_calls": [{"name": "get_weather", "arguments": {"city": "Paris"}}]}',
        '{"final_answer": "Sunny in Paris."}')
    output = await FunctionAgent(tools=TOOLS, llm=llm).run(user_msg="Weather in Paris?")
    assert calls == [("get_weather", "Paris")]
    assert str(output.response.content) == "Sunny in Paris."
    assert len(script.bodies) == 2


def test_a_reply_cut_off_inside_its_json_is_repaired() -> None:
    llm, script = scripted('{"tool_calls": [{"name": "add", "arguments": {"a": 2, "b"',
                           '{"tool_calls": [{"name": "add", "arguments": {"a": 2, "b": 3}}]}')
    response = llm.chat_with_tools(TOOLS, user_msg="What is 2 plus 3?")
    (call,) = [b for b in response.message.blocks if isinstance(b, ToolCallBlock)]
    assert (call.tool_name, call.tool_kwargs) == ("add", {"a": 2, "b": 3})
    repair = script.bodies[1]["messages"][-1]["content"]
    assert repair.startswith(REPAIR) and "cut off" in repair


def test_a_final_answer_cut_off_twice_is_an_error_not_an_answer() -> None:
    cut = '{"final_answer": "The sum of 2 and 3 is'
    llm, script = scripted(cut, cut)
    response = llm.chat_with_tools(TOOLS, user_msg="What is 2 plus 3?")
    assert len(script.bodies) == 2
    assert "cut off" in response.additional_kwargs["protocol_errors"][0]
    with pytest.raises(ModelReplyError, match="cut off"):
        llm.get_tool_calls_from_response(response, error_on_no_tool_call=False)

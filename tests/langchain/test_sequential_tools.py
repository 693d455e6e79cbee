"""A chain of sequential tool calls through ``bind_tools``, against the emulator.

The request needs tool A, then tool B with A's result, then the answer: three model turns. For
``ChatSalesforce`` the calls and results travel as text under the prompted protocol; for
``ChatDatabricks`` as native ``tool_calls``. Both agents run the same loop and must end the same
way.
"""

from __future__ import annotations

import json
from typing import TYPE_CHECKING, Any

import httpx
import pytest
from langchain_core.language_models import BaseChatModel
from langchain_core.messages import (
    AIMessage,
    BaseMessage,
    HumanMessage,
    SystemMessage,
    ToolMessage,
)
from langchain_core.tools import BaseTool, tool

from langchain_sfmodels import ChatDatabricks, ChatSalesforce
from sfmodels_core import SalesforceClient

if TYPE_CHECKING:
    from sfmodels_emulator import Emulator

CHAT_ENDPOINT = "databricks-meta-llama-3-3-70b-instruct"
CHAIN = "Look up the capital of France, then get the weather there."


@tool
def capital_of(country: str) -> str:
    """Look up the capital city of a country."""
    return {"France": "Paris", "Norway": "Oslo"}.get(country, "unknown")


@tool
def get_weather(city: str) -> str:
    """Get the current weather in a city."""
    return f"It is 21 degrees and sunny in {city}."


@tool
def add(a: int, b: int) -> int:
    """Add two integers."""
    return a + b


@tool
def multiply(a: int, b: int) -> int:
    """Multiply two integers."""
    return a * b


class _Recorder(httpx.HTTPTransport):
    """Sends to the emulator and keeps the JSON bodies of what was sent."""

    def __init__(self) -> None:
        super().__init__()
        self.bodies: list[Any] = []

    def handle_request(self, request: httpx.Request) -> httpx.Response:
        self.bodies.append(json.loads(request.read() or b"null"))
        return super().handle_request(request)


def salesforce(emulator: Emulator) -> tuple[ChatSalesforce, _Recorder]:
    recorder = _Recorder()
    client = SalesforceClient(transport=recorder, max_retries=0,
                              api_key=emulator.mint_salesforce_token(),
                              api_base=emulator.salesforce_api_base)
    return ChatSalesforce(client=client), recorder


def databricks(emulator: Emulator) -> ChatDatabricks:
    return ChatDatabricks(endpoint=CHAT_ENDPOINT, host=emulator.databricks_host,
                          api_key=emulator.databricks_token, max_retries=0)


def run_agent(llm: BaseChatModel, tools: list[BaseTool], question: str) -> list[BaseMessage]:
    by_name = {t.name: t for t in tools}
    bound = llm.bind_tools(tools)
    messages: list[BaseMessage] = [SystemMessage("You answer with the tools."),
                                   HumanMessage(question)]
    for _ in range(6):
        answer = bound.invoke(messages)
        assert isinstance(answer, AIMessage) and not answer.invalid_tool_calls
        messages.append(answer)
        if not answer.tool_calls:
            return messages
        for call in answer.tool_calls:
            messages.append(by_name[call["name"]].invoke(call))
    raise AssertionError("the agent did not finish")


def steps(messages: list[BaseMessage]) -> list[tuple[str, dict[str, Any], str]]:
    """(tool name, arguments, result) of every call, in order."""
    results = {m.tool_call_id: m.text for m in messages if isinstance(m, ToolMessage)}
    return [(c["name"], c["args"], results[c["id"] or ""]) for m in messages
            if isinstance(m, AIMessage) for c in m.tool_calls]


@pytest.mark.parametrize("provider", ["salesforce", "databricks"])
def test_a_chain_calls_a_then_b_with_a_result_then_answers(emulator: Emulator,
                                                           provider: str) -> None:
    llm = salesforce(emulator)[0] if provider == "salesforce" else databricks(emulator)
    messages = run_agent(llm, [capital_of, get_weather], CHAIN)
    assert steps(messages) == [
        ("capital_of", {"country": "France"}, "Paris"),
        ("get_weather", {"city": "Paris"}, "It is 21 degrees and sunny in Paris.")]
    final = messages[-1]
    assert isinstance(final, AIMessage) and not final.tool_calls
    assert final.text == "Based on the tool result: It is 21 degrees and sunny in Paris."
    # three model turns: A, B, the answer
    assert sum(isinstance(m, AIMessage) for m in messages) == 3


@pytest.mark.parametrize("provider", ["salesforce", "databricks"])
def test_a_numeric_result_feeds_the_next_call(emulator: Emulator, provider: str) -> None:
    llm = salesforce(emulator)[0] if provider == "salesforce" else databricks(emulator)
    messages = run_agent(llm, [add, multiply], "Add 2 and 3, and then multiply the result by 4.")
    assert steps(messages) == [("add", {"a": 2, "b": 3}, "5"),
                               ("multiply", {"a": 4, "b": 5}, "20")]
    assert messages[-1].text == "Based on the tool result: 20"


def test_salesforce_sees_both_rounds_as_text(emulator: Emulator) -> None:
    llm, recorder = salesforce(emulator)
    run_agent(llm, [capital_of, get_weather], CHAIN)
    sent = recorder.bodies[-1]["messages"]
    assert [m["role"] for m in sent] == ["system", "user", "assistant", "user", "assistant",
                                         "user"]
    assert json.loads(sent[2]["content"]) == {
        "tool_calls": [{"name": "capital_of", "arguments": {"country": "France"}}]}
    assert sent[3]["content"] == ('Tool result from capital_of called with '
                                  '{"country": "France"}:\nParis')
    assert json.loads(sent[4]["content"]) == {
        "tool_calls": [{"name": "get_weather", "arguments": {"city": "Paris"}}]}


async def test_a_chain_async(emulator: Emulator) -> None:
    llm = ChatSalesforce(api_key=emulator.mint_salesforce_token(),
                         api_base=emulator.salesforce_api_base).bind_tools(
        [capital_of, get_weather])
    messages: list[BaseMessage] = [HumanMessage("Look up the capital of Norway, then get the "
                                                "weather there.")]
    for expected in (("capital_of", {"country": "Norway"}), ("get_weather", {"city": "Oslo"})):
        answer = await llm.ainvoke(messages)
        (call,) = answer.tool_calls
        assert (call["name"], call["args"]) == expected
        messages += [answer, await {"capital_of": capital_of,
                                    "get_weather": get_weather}[call["name"]].ainvoke(call)]
    final = await llm.ainvoke(messages)
    assert final.text == "Based on the tool result: It is 21 degrees and sunny in Oslo."


def test_a_one_step_request_still_answers_after_one_call(emulator: Emulator) -> None:
    messages = run_agent(salesforce(emulator)[0], [capital_of, get_weather],
                         "What is the weather in Rome? Then I will pack.")
    assert [s[:2] for s in steps(messages)] == [("get_weather", {"city": "Rome"})]

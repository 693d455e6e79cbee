"""Agents that need more than one model turn, end to end against the emulator.

LlamaIndex's ``ReActAgent`` prompts for the ReAct text format (Thought / Action / Action Input /
Answer) and reads tool results back as ``Observation:`` messages; it runs over both chat models
without any tool API. ``FunctionAgent`` runs a chain of sequential calls where the second call
needs the first one's result (the prompted protocol for Salesforce, native tool calls for
Databricks).
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import pytest
from llama_index.core.agent.workflow import (
    AgentInput,
    AgentOutput,
    FunctionAgent,
    ReActAgent,
    ToolCallResult,
)
from llama_index.core.tools import FunctionTool

if TYPE_CHECKING:
    from llama_index.core.llms.llm import LLM

    from sfmodels_emulator import Emulator

# Building the workflow inspects the agent's pydantic attributes; pydantic warns about that.
pytestmark = pytest.mark.filterwarnings("ignore::DeprecationWarning")

calls: list[tuple[str, Any]] = []
CAPITALS = {"France": "Paris", "Norway": "Oslo", "Japan": "Tokyo"}


def get_weather(city: str) -> str:
    """Get the current weather for a city."""
    calls.append(("get_weather", city))
    return f"Sunny and 22 degrees in {city}"


def capital_of(country: str) -> str:
    """Look up the capital city of a country."""
    calls.append(("capital_of", country))
    return CAPITALS.get(country, "unknown")


def add(a: int, b: int) -> int:
    """Add two integers a and b."""
    calls.append(("add", (a, b)))
    return a + b


def multiply(a: int, b: int) -> int:
    """Multiply two integers a and b."""
    calls.append(("multiply", (a, b)))
    return a * b


TOOLS = [FunctionTool.from_defaults(fn=f) for f in (get_weather, capital_of)]
MATH = [FunctionTool.from_defaults(fn=f) for f in (add, multiply)]
CHAIN = "Look up the capital of France, then get the weather there."


@pytest.fixture(autouse=True)
def no_calls_yet() -> None:
    calls.clear()


@pytest.fixture(params=["salesforce", "databricks"])
def llm(request: pytest.FixtureRequest) -> LLM:
    """Each chat model, its async client closed inside the test's event loop."""
    fixture = {"salesforce": "asf_llm", "databricks": "adb_llm"}[request.param]
    model: LLM = request.getfixturevalue(fixture)
    return model


async def run(agent: Any, question: str, **kwargs: Any) -> tuple[str, list[Any]]:
    handler = agent.run(user_msg=question, **kwargs)
    events = [event async for event in handler.stream_events()]
    output = await handler
    return str(output.response.content), events


# -- ReActAgent -----------------------------------------------------------------------------------
@pytest.mark.parametrize("streaming", [False, True])
async def test_react_agent_calls_the_tool_and_answers(llm: LLM, streaming: bool) -> None:
    agent = ReActAgent(tools=TOOLS, llm=llm, streaming=streaming)
    answer, events = await run(agent, "What is the weather in Berlin?")
    assert calls == [("get_weather", "Berlin")]
    assert answer == "Based on the tool result: Sunny and 22 degrees in Berlin"
    # The model's turns were in the ReAct format the agent parses: an action, then an answer.
    outputs = [e.response.content for e in events if isinstance(e, AgentOutput)]
    assert outputs[0].startswith("Thought: ") and "\nAction: get_weather\n" in outputs[0]
    assert '\nAction Input: {"city": "Berlin"}' in outputs[0]
    results = [e for e in events if isinstance(e, ToolCallResult)]
    assert [(r.tool_name, r.tool_kwargs) for r in results] == [("get_weather", {"city": "Berlin"})]
    # The second model turn saw the observation.
    inputs = [e.input for e in events if isinstance(e, AgentInput)]
    assert inputs[-1][-1].content == "Observation: Sunny and 22 degrees in Berlin"


async def test_react_agent_runs_a_chain_of_tools(llm: LLM) -> None:
    answer, events = await run(ReActAgent(tools=TOOLS, llm=llm), CHAIN)
    assert calls == [("capital_of", "France"), ("get_weather", "Paris")]
    assert answer == "Based on the tool result: Sunny and 22 degrees in Paris"
    outputs = [e for e in events if isinstance(e, AgentOutput)]
    assert len(outputs) == 3  # two actions, then the answer


async def test_react_agent_makes_calls_one_at_a_time(llm: LLM) -> None:
    answer, _ = await run(ReActAgent(tools=TOOLS, llm=llm), "What is the weather in Rome and "
                                                            "Madrid?")
    assert calls == [("get_weather", "Rome"), ("get_weather", "Madrid")]
    assert "Sunny and 22 degrees in Rome" in answer and "Sunny and 22 degrees in Madrid" in answer


async def test_react_agent_answers_without_a_tool_when_none_helps(llm: LLM) -> None:
    answer, events = await run(ReActAgent(tools=TOOLS, llm=llm), "Hello there")
    assert calls == [] and answer == "Hello! How can I help you today?"
    assert not [e for e in events if isinstance(e, ToolCallResult)]


async def test_react_agent_with_a_system_prompt_and_memory(llm: LLM) -> None:
    from llama_index.core.workflow import Context

    agent = ReActAgent(tools=TOOLS + MATH, llm=llm,
                       system_prompt="You are a travel assistant. Paris is in France.")
    ctx = Context(agent)
    first, _ = await run(agent, "What is the weather in Lisbon?", ctx=ctx)
    second, _ = await run(agent, "Please add 4 and 5", ctx=ctx)
    assert "Sunny and 22 degrees in Lisbon" in first
    assert second == "Based on the tool result: 9"
    assert calls == [("get_weather", "Lisbon"), ("add", (4, 5))]


# -- FunctionAgent: sequential calls --------------------------------------------------------------
@pytest.mark.parametrize("streaming", [False, True])
async def test_function_agent_runs_a_chain_of_tools(llm: LLM, emulator: Emulator,
                                                    streaming: bool) -> None:
    agent = FunctionAgent(tools=TOOLS, llm=llm, streaming=streaming)
    answer, events = await run(agent, CHAIN)
    assert calls == [("capital_of", "France"), ("get_weather", "Paris")]
    results = [e for e in events if isinstance(e, ToolCallResult)]
    assert [(r.tool_name, r.tool_kwargs) for r in results] == [
        ("capital_of", {"country": "France"}), ("get_weather", {"city": "Paris"})]
    assert answer == "Based on the tool result: Sunny and 22 degrees in Paris"
    requests = emulator.counters()["requests"]
    chats = ("salesforce.chat", "databricks.chat", "databricks.invocations")
    assert sum(requests[k] for k in chats) == 3  # the two calls, then the answer


async def test_function_agent_feeds_one_result_into_the_next_call(llm: LLM) -> None:
    agent = FunctionAgent(tools=MATH, llm=llm)
    answer, _ = await run(agent, "Add 2 and 3, and then multiply the result by 4.")
    assert calls == [("add", (2, 3)), ("multiply", (4, 5))]
    assert answer == "Based on the tool result: 20"

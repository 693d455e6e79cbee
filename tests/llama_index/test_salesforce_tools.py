"""SalesforceLLM tool calling and structured output against the emulator.

The emulated models answer under the prompted protocol, so agents, ``predict_and_call`` and
``structured_predict`` run end to end, deterministically.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import pytest
from llama_index.core.agent.workflow import AgentStream, FunctionAgent, ToolCallResult
from llama_index.core.base.llms.types import ChatMessage, ToolCallBlock
from llama_index.core.llms.function_calling import FunctionCallingLLM
from llama_index.core.program import FunctionCallingProgram
from llama_index.core.prompts import PromptTemplate
from llama_index.core.tools import FunctionTool
from pydantic import BaseModel

from llama_index_sfmodels import SalesforceFeedbackHandler, SalesforceLLM
from sfmodels_core.tool_protocol import TOOLS_HEADER

from .conftest import EventLog

if TYPE_CHECKING:
    from sfmodels_emulator import Emulator

calls: list[tuple[str, Any]] = []


def get_weather(city: str) -> str:
    """Get the current weather for a city."""
    calls.append(("get_weather", city))
    return f"Sunny and 22 degrees in {city}"


def add(a: int, b: int) -> int:
    """Add two integers a and b."""
    calls.append(("add", (a, b)))
    return a + b


TOOLS = [FunctionTool.from_defaults(fn=get_weather), FunctionTool.from_defaults(fn=add)]


@pytest.fixture(autouse=True)
def no_calls_yet() -> None:
    calls.clear()


class City(BaseModel):
    """A city and where it is."""

    name: str
    country: str
    population: int


EXTRACT = PromptTemplate("{text}\nExtract the city described above.")


def tool_calls(response: Any) -> list[ToolCallBlock]:
    return [b for b in response.message.blocks if isinstance(b, ToolCallBlock)]


def test_salesforce_llm_is_a_function_calling_llm(sf_llm: SalesforceLLM) -> None:
    assert FunctionCallingLLM in SalesforceLLM.__mro__
    assert sf_llm.metadata.is_function_calling_model


def test_a_tool_call_comes_back_as_the_framework_expects(sf_llm: SalesforceLLM,
                                                         emulator: Emulator) -> None:
    response = sf_llm.chat_with_tools(TOOLS, user_msg="What is the weather in Paris?")
    (block,) = tool_calls(response)
    (call,) = sf_llm.get_tool_calls_from_response(response)
    assert (call.tool_id, call.tool_name, call.tool_kwargs) == (
        block.tool_call_id, "get_weather", {"city": "Paris"})
    assert call.tool_id.startswith("call_")
    extra = response.additional_kwargs
    assert extra["finish_reason"] == "tool_calls" and extra["repaired"] is False
    assert extra["generation_ids"] == [extra["generation_id"]]
    assert extra["total_tokens"] == extra["prompt_tokens"] + extra["completion_tokens"] > 0
    assert "protocol_errors" not in extra and "invalid_tool_calls" not in extra
    generation = response.raw["generationDetails"]["generations"][0]
    assert generation["id"] == extra["generation_id"]
    assert emulator.counters()["requests"]["salesforce.chat"] == 1


def test_a_plain_answer_and_tool_required(sf_llm: SalesforceLLM) -> None:
    chat = sf_llm.chat_with_tools(TOOLS, user_msg="Hello, how are you today?")
    assert chat.message.content and not tool_calls(chat)
    assert chat.additional_kwargs["finish_reason"] != "tool_calls"
    assert sf_llm.get_tool_calls_from_response(chat, error_on_no_tool_call=False) == []
    with pytest.raises(ValueError, match="Expected at least one tool call"):
        sf_llm.get_tool_calls_from_response(chat)
    forced = sf_llm.chat_with_tools(TOOLS, user_msg="Hello, how are you today?",
                                    tool_required=True)
    assert len(sf_llm.get_tool_calls_from_response(forced)) == 1


def test_tool_choice_names_or_forbids_a_tool(sf_llm: SalesforceLLM) -> None:
    named = sf_llm.chat_with_tools(TOOLS, user_msg="What is the weather in Rome?",
                                   tool_choice="add")
    assert [c.tool_name for c in sf_llm.get_tool_calls_from_response(named)] == ["add"]
    none = sf_llm.chat_with_tools(TOOLS, user_msg="What is the weather in Rome?",
                                  tool_choice="none")
    assert not tool_calls(none) and none.message.content


def test_parallel_tool_calls(sf_llm: SalesforceLLM) -> None:
    question = "What is the weather in Paris and London?"
    both = sf_llm.chat_with_tools(TOOLS, user_msg=question, allow_parallel_tool_calls=True)
    assert [c.tool_kwargs["city"] for c in sf_llm.get_tool_calls_from_response(both)] == [
        "Paris", "London"]
    one = sf_llm.chat_with_tools(TOOLS, user_msg=question)  # asked for one call per reply
    assert len(sf_llm.get_tool_calls_from_response(one)) == 1
    assert one.additional_kwargs["repaired"] is False


def test_tool_results_in_the_history_reach_the_model(sf_llm: SalesforceLLM) -> None:
    first = sf_llm.chat_with_tools(TOOLS, user_msg="What is the weather in Oslo?")
    (call,) = sf_llm.get_tool_calls_from_response(first)
    history = [ChatMessage(role="user", content="What is the weather in Oslo?"), first.message,
               ChatMessage(role="tool", content=get_weather(**call.tool_kwargs),
                           additional_kwargs={"tool_call_id": call.tool_id})]
    answer = sf_llm.chat_with_tools(TOOLS, chat_history=history)
    assert "Sunny and 22 degrees in Oslo" in (answer.message.content or "")
    assert not tool_calls(answer)
    # the same history without tools goes as text in plain chat (see test_messages for how)
    plain = sf_llm.chat(history)
    assert plain.message.content and "repaired" not in plain.additional_kwargs


def test_streams_yield_the_whole_answer_once(sf_llm: SalesforceLLM) -> None:
    chunks = list(sf_llm.stream_chat_with_tools(TOOLS, user_msg="Please add 17 and 25"))
    assert len(chunks) == 1
    (call,) = sf_llm.get_tool_calls_from_response(chunks[0])
    assert (call.tool_name, call.tool_kwargs) == ("add", {"a": 17, "b": 25})
    assert chunks[0].delta == ""
    (answer,) = sf_llm.stream_chat_with_tools(TOOLS, user_msg="Hello, how are you today?")
    assert answer.delta == answer.message.content != ""


async def test_async_streams(asf_llm: SalesforceLLM) -> None:
    stream = await asf_llm.astream_chat_with_tools(TOOLS, user_msg="Please add 2 and 3")
    chunks = [c async for c in stream]
    assert len(chunks) == 1
    assert asf_llm.get_tool_calls_from_response(chunks[0])[0].tool_kwargs == {"a": 2, "b": 3}


def test_predict_and_call(sf_llm: SalesforceLLM) -> None:
    result = sf_llm.predict_and_call(TOOLS, user_msg="Please add 17 and 25")
    assert result.response == "42"
    assert result.sources[0].tool_name == "add"
    assert calls == [("add", (17, 25))]


async def test_apredict_and_call_parallel(asf_llm: SalesforceLLM) -> None:
    result = await asf_llm.apredict_and_call(
        TOOLS, user_msg="What is the weather in Rome and Madrid?", allow_parallel_tool_calls=True)
    assert result.response == "Sunny and 22 degrees in Rome\n\nSunny and 22 degrees in Madrid"


# Building the workflow inspects the agent's pydantic attributes; pydantic warns about that.
@pytest.mark.filterwarnings("ignore::DeprecationWarning")
@pytest.mark.parametrize("streaming", [False, True])
async def test_function_agent_uses_the_tool_result(asf_llm: SalesforceLLM, emulator: Emulator,
                                                   events: EventLog, streaming: bool) -> None:
    agent = FunctionAgent(tools=TOOLS, llm=asf_llm, streaming=streaming,
                          system_prompt="You answer questions using the tools.")
    handler = agent.run(user_msg="What is the weather in Berlin?")
    results, streamed = [], []
    async for event in handler.stream_events():
        if isinstance(event, ToolCallResult):
            results.append(event)
        elif isinstance(event, AgentStream):
            streamed.append(event)
    output = await handler
    assert calls == [("get_weather", "Berlin")]
    assert [r.tool_name for r in results] == ["get_weather"]
    assert results[0].tool_kwargs == {"city": "Berlin"}
    assert "Sunny and 22 degrees in Berlin" in str(output.response.content)
    # two model calls (the tool call, then the answer), each a chat event with its generation
    assert emulator.counters()["requests"]["salesforce.chat"] == 2
    ends = [e for e in events.events if type(e).__name__ == "LLMChatEndEvent"]
    assert len({e.response.additional_kwargs["generation_id"] for e in ends}) == 2
    starts = [e for e in events.events if type(e).__name__ == "LLMChatStartEvent"]
    assert all(TOOLS_HEADER not in str(m.content) for e in starts for m in e.messages)
    if streaming:
        assert [s.tool_calls[0].tool_name for s in streamed if s.tool_calls] == ["get_weather"]


@pytest.mark.filterwarnings("ignore::DeprecationWarning")
async def test_function_agent_remembers_across_runs(asf_llm: SalesforceLLM) -> None:
    from llama_index.core.workflow import Context

    agent = FunctionAgent(tools=TOOLS, llm=asf_llm)
    ctx = Context(agent)
    first = await agent.run(user_msg="What is the weather in Lisbon?", ctx=ctx)
    second = await agent.run(user_msg="Please add 4 and 5", ctx=ctx)
    assert "Lisbon" in str(first.response.content)
    assert "9" in str(second.response.content)
    assert calls == [("get_weather", "Lisbon"), ("add", (4, 5))]


@pytest.mark.filterwarnings("ignore::DeprecationWarning")
async def test_feedback_about_an_agent_answer(asf_llm: SalesforceLLM, emulator: Emulator,
                                              events: EventLog) -> None:
    handler = SalesforceFeedbackHandler(client=asf_llm.client).register()
    try:
        agent = FunctionAgent(tools=TOOLS, llm=asf_llm)
        output = await agent.run(user_msg="What is the weather in Vienna?")
        await handler.asubmit("GOOD", response=output)
    finally:
        handler.unregister()
    ends = [e for e in events.events if type(e).__name__ == "LLMChatEndEvent"]
    answered = ends[-1].response.additional_kwargs["generation_id"]
    assert [f["generationId"] for f in emulator.feedback()] == [answered]


def test_feedback_for_an_agent_step(sf_llm: SalesforceLLM,
                                    feedback_handler: SalesforceFeedbackHandler,
                                    emulator: Emulator) -> None:
    response = sf_llm.chat_with_tools(TOOLS, user_msg="What is the weather in Paris?")
    generation_id = response.additional_kwargs["generation_id"]
    latest = feedback_handler.latest
    assert latest is not None and latest.generation_ids == [generation_id]
    feedback_handler.submit("GOOD", response=response)
    assert emulator.feedback()[0]["generationId"] == generation_id


# -- structured output --------------------------------------------------------------------------
def test_structured_predict(sf_llm: SalesforceLLM, emulator: Emulator, events: EventLog) -> None:
    text = "Paris is the capital of France and has 2100000 inhabitants."
    city = sf_llm.structured_predict(City, EXTRACT, text=text)
    assert city == City(name="Paris", country="France", population=2100000)
    assert emulator.counters()["requests"]["salesforce.chat"] == 1
    names = events.names()
    assert names.count("LLMChatEndEvent") == 1
    assert names.count("LLMStructuredPredictStartEvent") == 1
    assert names.count("LLMStructuredPredictEndEvent") == 1
    (end,) = [e for e in events.events if type(e).__name__ == "LLMChatEndEvent"]
    assert end.response.additional_kwargs["structured_output"] == city.model_dump()


async def test_astructured_predict(asf_llm: SalesforceLLM) -> None:
    city = await asf_llm.astructured_predict(
        City, EXTRACT, text="Lyon is a city in France with 520000 inhabitants.")
    assert (city.name, city.country, city.population) == ("Lyon", "France", 520000)


async def test_streamed_structured_predict_yields_once(asf_llm: SalesforceLLM) -> None:
    text = "Oslo is a city in Norway with 700000 inhabitants."
    assert list(asf_llm.stream_structured_predict(City, EXTRACT, text=text)) == [
        City(name="Oslo", country="Norway", population=700000)]
    stream = await asf_llm.astream_structured_predict(City, EXTRACT, text=text)
    assert [c async for c in stream] == [City(name="Oslo", country="Norway", population=700000)]


def test_structured_llm_and_function_program(sf_llm: SalesforceLLM) -> None:
    structured = sf_llm.as_structured_llm(City)
    answer = structured.chat([ChatMessage(
        role="user", content="Rome is the capital of Italy with 2800000 inhabitants.")])
    assert City.model_validate_json(answer.message.content or "") == City(
        name="Rome", country="Italy", population=2800000)
    # LlamaIndex's own tool-based program runs on the tool protocol too
    program = FunctionCallingProgram.from_defaults(output_cls=City, prompt=EXTRACT, llm=sf_llm)
    assert program(text="Lyon is a city in France with 520000 inhabitants.") == City(
        name="Lyon", country="France", population=520000)

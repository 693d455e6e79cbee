"""DatabricksLLM and DatabricksEmbedding against the emulator: chat, streaming, tools, agents."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import pytest
from llama_index.core.agent.workflow import AgentStream, FunctionAgent, ToolCallResult
from llama_index.core.base.llms.types import ChatMessage, ImageBlock, TextBlock, ToolCallBlock
from llama_index.core.callbacks import CallbackManager, TokenCountingHandler
from llama_index.core.prompts import PromptTemplate
from llama_index.core.tools import FunctionTool
from pydantic import BaseModel

from llama_index_sfmodels import DatabricksEmbedding, DatabricksLLM
from sfmodels_core.errors import BadRequestError, InvalidInputError, NotFoundError

from .conftest import CHAT_ENDPOINT, EMBEDDING_ENDPOINT, EventLog, databricks_settings

if TYPE_CHECKING:
    from sfmodels_emulator import Emulator

CONTEXT = ("Context: The Golden Gate Bridge opened in 1937. The Brooklyn Bridge opened in "
           "1883. The Tower Bridge crosses the Thames.")
QUESTION = "When did the Golden Gate Bridge open?"
ANSWER = "The Golden Gate Bridge opened in 1937."

weather_calls: list[str] = []


def get_weather(city: str) -> str:
    """Get the current weather for a city."""
    weather_calls.append(city)
    return f"Sunny and 22 degrees in {city}"


def add(a: int, b: int) -> int:
    """Add two integers a and b."""
    return a + b


TOOLS = [FunctionTool.from_defaults(fn=get_weather), FunctionTool.from_defaults(fn=add)]


def grounded() -> list[ChatMessage]:
    return [ChatMessage(role="system", content=CONTEXT),
            ChatMessage(role="user", content=QUESTION)]


def usage_of(response: Any) -> tuple[int, int, int] | None:
    extra = response.additional_kwargs
    if "total_tokens" not in extra:
        return None
    return extra["prompt_tokens"], extra["completion_tokens"], extra["total_tokens"]


def test_chat_and_complete(db_llm: DatabricksLLM, emulator: Emulator) -> None:
    response = db_llm.chat(grounded())
    assert response.message.content == ANSWER
    assert response.raw["choices"][0]["message"]["content"] == ANSWER
    usage = usage_of(response)
    assert usage is not None and usage[2] == usage[0] + usage[1] > 0
    assert response.additional_kwargs["finish_reason"] == "stop"
    assert response.additional_kwargs["model"] == response.raw["model"]
    completion = db_llm.complete(f"{CONTEXT}\n\n{QUESTION}")
    assert completion.text == ANSWER
    assert usage_of(completion) is not None
    assert emulator.counters()["requests"]["databricks.invocations"] == 2


@pytest.mark.parametrize("usage_mode", ["every", "last", "none"])
def test_stream_reports_usage_once(db_llm: DatabricksLLM, emulator: Emulator,
                                   usage_mode: str) -> None:
    emulator.configure(usage_mode=usage_mode)
    whole = db_llm.chat(grounded())
    chunks = list(db_llm.stream_chat(grounded()))
    assert len([c for c in chunks if c.delta]) > 1  # really streamed
    assert "".join(c.delta or "" for c in chunks) == chunks[-1].message.content == ANSWER
    counted = [usage_of(c) for c in chunks if usage_of(c) is not None]
    if usage_mode == "none":
        assert counted == []
    else:
        assert counted == [usage_of(chunks[-1])] == [usage_of(whole)]
    pieces = list(db_llm.stream_complete(f"{CONTEXT}\n\n{QUESTION}"))
    assert "".join(p.delta or "" for p in pieces) == pieces[-1].text == ANSWER
    assert len([p for p in pieces if usage_of(p)]) == (0 if usage_mode == "none" else 1)


def test_token_counting_counts_a_stream_once(emulator: Emulator) -> None:
    counter = TokenCountingHandler()
    llm = DatabricksLLM(endpoint=CHAT_ENDPOINT, callback_manager=CallbackManager([counter]),
                        **databricks_settings(emulator))
    expected = usage_of(llm.chat(grounded()))
    assert expected is not None
    counter.reset_counts()
    list(llm.stream_chat(grounded()))
    assert (counter.prompt_llm_token_count, counter.completion_llm_token_count) == expected[:2]
    llm.close()


async def test_async(adb_llm: DatabricksLLM, events: EventLog) -> None:
    chat = await adb_llm.achat(grounded())
    complete = await adb_llm.acomplete(f"{CONTEXT}\n\n{QUESTION}")
    chunks = [c async for c in await adb_llm.astream_chat(grounded())]
    pieces = [p async for p in await adb_llm.astream_complete(f"{CONTEXT}\n\n{QUESTION}")]
    assert chat.message.content == complete.text == ANSWER
    assert "".join(c.delta or "" for c in chunks) == ANSWER
    assert "".join(p.delta or "" for p in pieces) == pieces[-1].text == ANSWER
    assert len([c for c in chunks if usage_of(c)]) == 1 and usage_of(chunks[-1])
    names = events.names()
    assert names.count("LLMChatEndEvent") == 2 and names.count("LLMCompletionEndEvent") == 2
    assert names.count("LLMChatInProgressEvent") == len(chunks)


def test_parameters_reach_the_endpoint(emulator: Emulator) -> None:
    llm = DatabricksLLM(endpoint=CHAT_ENDPOINT, max_tokens=3, **databricks_settings(emulator))
    response = llm.chat(grounded())
    assert response.additional_kwargs["finish_reason"] == "length"
    assert response.additional_kwargs["completion_tokens"] <= 3
    assert llm.chat(grounded(), max_tokens=200).message.content == ANSWER
    with pytest.raises(BadRequestError):
        llm.chat(grounded(), temperature=9.0)


def test_service_principal_with_token_refresh(emulator: Emulator) -> None:
    llm = DatabricksLLM(endpoint=CHAT_ENDPOINT, host=emulator.databricks_host,
                        client_id=emulator.databricks_client_id,
                        client_secret=emulator.databricks_client_secret)
    assert llm.chat(grounded()).message.content == ANSWER
    emulator.expire_tokens()
    assert "".join(c.delta or "" for c in llm.stream_chat(grounded())) == ANSWER
    assert emulator.counters()["tokens_minted"]["databricks"] == 2
    llm.close()


def test_profile_settings(emulator: Emulator, tmp_path: Any) -> None:
    config = tmp_path / "databrickscfg"
    config.write_text(f"[emu]\nhost = {emulator.databricks_host}\n"
                      f"token = {emulator.databricks_token}\n")
    llm = DatabricksLLM(endpoint=CHAT_ENDPOINT, profile="emu", config_file=str(config))
    assert llm.complete(f"{CONTEXT}\n\n{QUESTION}").text == ANSWER
    llm.close()


def test_errors(db_llm: DatabricksLLM, emulator: Emulator) -> None:
    with pytest.raises(InvalidInputError, match="tool_call_id"):
        db_llm.chat([ChatMessage(role="tool", content="4")])
    assert sum(emulator.counters()["requests"].values()) == 0
    missing = DatabricksLLM(endpoint="no-such-endpoint", client=db_llm.client)
    with pytest.raises(NotFoundError):
        missing.chat(grounded())
    with pytest.raises(NotFoundError):
        list(missing.stream_chat(grounded()))


# -- tools --------------------------------------------------------------------------------------
def test_tool_calls(db_llm: DatabricksLLM) -> None:
    response = db_llm.chat_with_tools(TOOLS, user_msg="What is the weather in Paris?")
    (call,) = db_llm.get_tool_calls_from_response(response)
    assert (call.tool_name, call.tool_kwargs) == ("get_weather", {"city": "Paris"})
    assert call.tool_id
    assert response.additional_kwargs["finish_reason"] == "tool_calls"

    chat = db_llm.chat_with_tools(TOOLS, user_msg="Hello, how are you today?")
    assert db_llm.get_tool_calls_from_response(chat, error_on_no_tool_call=False) == []
    with pytest.raises(ValueError, match="Expected at least one tool call"):
        db_llm.get_tool_calls_from_response(chat)
    forced = db_llm.chat_with_tools(TOOLS, user_msg="Hello, how are you today?",
                                    tool_required=True)
    assert len(db_llm.get_tool_calls_from_response(forced)) == 1


def test_a_tool_dict_of_the_wrong_shape_is_refused_before_sending(
        db_llm: DatabricksLLM, emulator: Emulator) -> None:
    bad = {"type": "function", "function": {"name": "f", "parameters": "nope"}}
    with pytest.raises(InvalidInputError, match=r"tools\[2\]\.function\.parameters must be a "
                                                "JSON Schema object"):
        db_llm.chat_with_tools([*TOOLS, bad], user_msg="hi")  # type: ignore[list-item]
    assert not emulator.counters()["requests"].get("databricks.invocations")


def test_parallel_tool_calls(db_llm: DatabricksLLM) -> None:
    question = "What is the weather in Paris and London?"
    both = db_llm.chat_with_tools(TOOLS, user_msg=question, allow_parallel_tool_calls=True)
    calls = db_llm.get_tool_calls_from_response(both)
    assert [c.tool_kwargs["city"] for c in calls] == ["Paris", "London"]
    one = db_llm.chat_with_tools(TOOLS, user_msg=question)
    assert len(db_llm.get_tool_calls_from_response(one)) == 1


def test_streamed_tool_calls(db_llm: DatabricksLLM) -> None:
    chunks = list(db_llm.stream_chat_with_tools(TOOLS, user_msg="Please add 17 and 25",
                                                allow_parallel_tool_calls=True))
    assert len(chunks) > 2
    (call,) = db_llm.get_tool_calls_from_response(chunks[-1])
    assert (call.tool_name, call.tool_kwargs) == ("add", {"a": 17, "b": 25})
    assert len([c for c in chunks if usage_of(c)]) == 1


def test_tool_result_round_trip(db_llm: DatabricksLLM) -> None:
    first = db_llm.chat_with_tools(TOOLS, user_msg="What is the weather in Oslo?")
    (call,) = db_llm.get_tool_calls_from_response(first)
    history = [ChatMessage(role="user", content="What is the weather in Oslo?"), first.message,
               ChatMessage(role="tool", content=get_weather(**call.tool_kwargs),
                           additional_kwargs={"tool_call_id": call.tool_id})]
    answer = db_llm.chat_with_tools(TOOLS, chat_history=history)
    assert "Sunny and 22 degrees in Oslo" in (answer.message.content or "")
    assert not any(isinstance(b, ToolCallBlock) for b in answer.message.blocks)


def test_predict_and_call(db_llm: DatabricksLLM) -> None:
    result = db_llm.predict_and_call(TOOLS, user_msg="Please add 17 and 25")
    assert result.response == "42"
    assert result.sources[0].tool_name == "add"


async def test_apredict_and_call_parallel(adb_llm: DatabricksLLM) -> None:
    result = await adb_llm.apredict_and_call(
        TOOLS, user_msg="What is the weather in Rome and Madrid?", allow_parallel_tool_calls=True)
    assert result.response == "Sunny and 22 degrees in Rome\n\nSunny and 22 degrees in Madrid"


class City(BaseModel):
    """A city and where it is."""

    name: str
    country: str
    population: int


def test_structured_predict(db_llm: DatabricksLLM) -> None:
    prompt = PromptTemplate("{text}\nExtract the city described above.")
    text = "Paris is the capital of France and has 2100000 inhabitants."
    city = db_llm.structured_predict(City, prompt, text=text)
    assert city == City(name="Paris", country="France", population=2100000)


async def test_astructured_predict(adb_llm: DatabricksLLM) -> None:
    prompt = PromptTemplate("{text}\nExtract the city described above.")
    city = await adb_llm.astructured_predict(
        City, prompt, text="Lyon is a city in France with 520000 inhabitants.")
    assert (city.name, city.country, city.population) == ("Lyon", "France", 520000)


# Building the workflow inspects the agent's pydantic attributes; pydantic warns about that.
@pytest.mark.filterwarnings("ignore::DeprecationWarning")
@pytest.mark.parametrize("streaming", [False, True])
async def test_function_agent_uses_the_tool_result(adb_llm: DatabricksLLM,
                                                   streaming: bool) -> None:
    weather_calls.clear()
    agent = FunctionAgent(tools=TOOLS, llm=adb_llm, streaming=streaming,
                          system_prompt="You answer questions using the tools.")
    handler = agent.run(user_msg="What is the weather in Berlin?")
    deltas, results = [], []
    async for event in handler.stream_events():
        if isinstance(event, AgentStream):
            deltas.append(event.delta)
        elif isinstance(event, ToolCallResult):
            results.append(event)
    output = await handler
    assert weather_calls == ["Berlin"]
    assert results[0].tool_name == "get_weather"
    assert "Sunny and 22 degrees in Berlin" in str(output.response.content)
    if streaming:
        assert len([d for d in deltas if d]) > 1


# -- embeddings ---------------------------------------------------------------------------------
def test_embeddings(db_embedding: DatabricksEmbedding, emulator: Emulator) -> None:
    vectors = db_embedding.get_text_embedding_batch([f"passage {i}" for i in range(5)])
    assert len(vectors) == 5 and all(len(v) == 1024 for v in vectors)
    assert len(db_embedding.get_query_embedding("passage")) == 1024
    assert emulator.counters()["requests"]["databricks.invocations"] == 2


async def test_async_embeddings(emulator: Emulator) -> None:
    embedding = DatabricksEmbedding(endpoint=EMBEDDING_ENDPOINT, embed_batch_size=3,
                                    query_instruction="Represent this sentence for searching "
                                                      "relevant passages:",
                                    **databricks_settings(emulator))
    vectors = await embedding.aget_text_embedding_batch([f"passage {i}" for i in range(7)])
    assert len(vectors) == 7
    assert len(await embedding.aget_query_embedding("passage")) == 1024
    assert emulator.counters()["requests"]["databricks.invocations"] == 4
    with pytest.raises(InvalidInputError):
        await embedding.aget_text_embedding(3)  # type: ignore[arg-type]
    await embedding.aclose()


def test_image_input(db_llm: DatabricksLLM, emulator: Emulator) -> None:
    message = ChatMessage(role="user", blocks=[
        TextBlock(text="Describe this picture of the Golden Gate Bridge."),
        ImageBlock(url="https://example.com/bridge.png")])
    assert db_llm.chat([message]).message.content
    sent = emulator.recorded_requests()[-1]
    assert sent["route"] == "databricks.invocations"
    content = sent["body"]["messages"][-1]["content"]
    images = [part["image_url"]["url"] for part in content if part.get("type") == "image_url"]
    assert images == ["https://example.com/bridge.png"]


def test_bulk_embedding_keeps_four_requests_in_flight(emulator: Emulator) -> None:
    emulator.configure(latency_ms=20)
    embedding = DatabricksEmbedding(endpoint=EMBEDDING_ENDPOINT, **databricks_settings(emulator))
    texts = [f"passage {i} about rivers" for i in range(1200)]
    vectors = embedding.get_text_embedding_batch(texts)
    assert len(vectors) == 1200 and vectors[7] == embedding.get_text_embedding(texts[7])
    counters = emulator.counters()
    assert counters["requests"]["databricks.invocations"] == 10 + 1  # 1200 / 128, then one
    assert counters["max_in_flight"] == 4
    embedding.close()

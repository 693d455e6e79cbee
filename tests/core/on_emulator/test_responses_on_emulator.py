"""``respond``/``stream_respond`` against the emulator: the same results as the chat path."""

from __future__ import annotations

import pytest

from sfmodels_core import DatabricksClient
from sfmodels_core.databricks import ChatCompletionChunk, merge_chunks
from sfmodels_core.errors import BadRequestError, InvalidInputError
from sfmodels_emulator import Emulator

QUESTION = [{"role": "user", "content": "What is Delta Lake?"}]
TOOLS = [{"type": "function", "function": {
    "name": "get_weather", "description": "Weather of a city",
    "parameters": {"type": "object", "properties": {"city": {"type": "string"}},
                   "required": ["city"]}}}]
WEATHER = [{"role": "user", "content": "What is the weather in Paris?"}]


@pytest.fixture
def client(emulator: Emulator) -> DatabricksClient:
    return DatabricksClient(host=emulator.url, api_key=emulator.databricks_token)


def test_text_streaming_and_usage_agree(client: DatabricksClient) -> None:
    whole = client.respond("databricks-gpt-5", QUESTION)
    chunks = list(client.stream_respond("databricks-gpt-5", QUESTION))
    merged = merge_chunks(chunks)
    assert whole.text and merged.text == whole.text
    assert whole.finish_reason == merged.finish_reason == "stop"
    assert whole.usage == merged.usage and whole.usage is not None
    assert whole.usage.reasoning_tokens > 0  # type: ignore[attr-defined]
    assert whole.choices[0].message.reasoning
    streamed_reasoning = "".join(ch.reasoning or "" for c in chunks for ch in c.choices)
    assert streamed_reasoning == whole.choices[0].message.reasoning
    chat = client.chat("databricks-gpt-5", QUESTION)
    assert chat.text == whole.text  # the same model says the same through either API


def test_tool_calls_then_their_results(client: DatabricksClient) -> None:
    first = client.respond("databricks-gpt-5-codex", WEATHER, tools=TOOLS,
                           tool_choice="required")
    assert first.finish_reason == "tool_calls"
    call = first.tool_calls[0]
    assert call.name == "get_weather" and call.parsed_arguments() == {"city": "Paris"}
    streamed = merge_chunks(client.stream_respond("databricks-gpt-5-codex", WEATHER,
                                                  tools=TOOLS, tool_choice="required"))
    assert [(c.name, c.arguments) for c in streamed.tool_calls] == [(call.name, call.arguments)]
    history = [*WEATHER,
               {"role": "assistant", "content": None, "tool_calls": [
                   {"id": call.id, "type": "function",
                    "function": {"name": call.name, "arguments": call.arguments}}]},
               {"role": "tool", "tool_call_id": call.id, "content": "Sunny, 24C"}]
    assert "Sunny" in client.respond("databricks-gpt-5-codex", history, tools=TOOLS).text


def test_max_tokens_cuts_the_answer(client: DatabricksClient) -> None:
    cut = client.respond("databricks-gpt-5", QUESTION, max_tokens=2)
    assert cut.finish_reason == "length"
    assert merge_chunks(client.stream_respond("databricks-gpt-5", QUESTION,
                                              max_tokens=2)).finish_reason == "length"


async def test_async_twins(client: DatabricksClient) -> None:
    whole = await client.arespond("databricks-gpt-5", QUESTION)
    chunks: list[ChatCompletionChunk] = [c async for c in client.astream_respond(
        "databricks-gpt-5", QUESTION)]
    assert merge_chunks(chunks).text == whole.text
    await client.aclose()


def test_custom_inputs_come_back_as_custom_outputs(client: DatabricksClient) -> None:
    custom = {"user_id": "u-1"}
    assert client.respond("agent-echo", QUESTION, custom_inputs=custom).custom_outputs == custom
    assert client.chat("agent-echo", QUESTION, custom_inputs=custom).custom_outputs == custom
    for stream in (client.stream_respond("agent-echo", QUESTION, custom_inputs=custom),
                   client.stream_chat("agent-echo", QUESTION, custom_inputs=custom)):
        chunks = list(stream)
        assert [c.custom_outputs for c in chunks if c.custom_outputs] == [custom]
        assert merge_chunks(chunks).text
    assert client.chat("databricks-gpt-5", QUESTION).custom_outputs is None


def test_errors(client: DatabricksClient) -> None:
    with pytest.raises(BadRequestError, match="does not support the Responses API"):
        client.respond("databricks-meta-llama-3-3-70b-instruct", QUESTION)
    with pytest.raises(BadRequestError, match="only supports the Responses API"):
        client.chat("databricks-gpt-5-codex", QUESTION)
    with pytest.raises(InvalidInputError, match="stop"):
        client.respond("databricks-gpt-5", QUESTION, stop=["."])

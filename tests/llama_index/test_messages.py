"""The pure converters: LlamaIndex messages to the core's dicts, core results to responses."""

from __future__ import annotations

import base64
import json
from typing import Any

import pytest
from llama_index.core.base.llms.types import (
    AudioBlock,
    ChatMessage,
    ChatResponse,
    DocumentBlock,
    ImageBlock,
    MessageRole,
    TextBlock,
    ThinkingBlock,
    ToolCallBlock,
)
from llama_index.core.tools import FunctionTool

from llama_index_sfmodels._common import tool_selections, tool_specs
from llama_index_sfmodels._databricks import (
    ChatStream,
    first_tool_call_only,
    to_databricks_messages,
)
from llama_index_sfmodels._databricks import chat_response as databricks_chat_response
from llama_index_sfmodels._salesforce import (
    chat_response,
    to_neutral_messages,
    to_salesforce_messages,
)
from llama_index_sfmodels._salesforce import completion_response as salesforce_completion_response
from sfmodels_core.databricks._wire import parse_chat, parse_chat_chunk
from sfmodels_core.errors import InvalidInputError
from sfmodels_core.integration.salesforce import read_answer
from sfmodels_core.salesforce._wire import parse_chat as sf_parse_chat
from sfmodels_core.salesforce._wire import parse_generation
from sfmodels_core.tool_protocol import Outcome
from sfmodels_core.tools import wire_tool_choice

# Pure code: any attempt to open a socket fails the test.
pytestmark = pytest.mark.disable_socket

PNG = base64.b64decode(
    "iVBORw0KGgoAAAANSUhEUgAAAAEAAAABCAYAAAAfFcSJAAAADUlEQVR42mNk+M9QDwADhgGAWjR9awAAAABJRU5ErkJggg==")


def sf_chat_body(text: str = "Hello!", generation_id: str = "gen-1") -> dict[str, object]:
    return {"id": "chatcmpl-1", "generationDetails": {
        "generations": [{"id": generation_id, "role": "assistant", "content": text,
                         "parameters": {"finish_reason": "stop", "index": 0},
                         "contentQuality": {"scanToxicity": {"isDetected": False, "categories": [
                             {"categoryName": "profanity", "score": 0.01}]}}}],
        "parameters": {"model": "gpt-4o-mini", "usage": {
            "completion_tokens": 3, "prompt_tokens": 5, "total_tokens": 8}}}}


# -- Salesforce -----------------------------------------------------------------------------------
def test_salesforce_messages_map_the_three_roles_and_join_text_blocks() -> None:
    messages = [
        ChatMessage(role="system", content="Be brief."),
        ChatMessage(role="user", blocks=[TextBlock(text="Line one"), TextBlock(text="two")]),
        ChatMessage(role=MessageRole.ASSISTANT, content="Sure."),
        ChatMessage(role="user", content=""),
    ]
    assert to_salesforce_messages(messages) == [
        {"role": "system", "content": "Be brief."},
        {"role": "user", "content": "Line one\ntwo"},
        {"role": "assistant", "content": "Sure."},
        {"role": "user", "content": ""},
    ]


def test_salesforce_skips_echoed_reasoning() -> None:
    message = ChatMessage(role="assistant", blocks=[ThinkingBlock(content="hmm"),
                                                    TextBlock(text="Answer")])
    assert to_salesforce_messages([message]) == [{"role": "assistant", "content": "Answer"}]


@pytest.mark.parametrize("message, what", [
    (ChatMessage(role="user", blocks=[TextBlock(text="see"), ImageBlock(image=PNG)]),
     "image block"),
    (ChatMessage(role="user", blocks=[AudioBlock(audio=b"RIFF0000WAVE", format="wav")]),
     "audio block"),
    (ChatMessage(role="user", blocks=[DocumentBlock(data=b"%PDF-1.4 x")]), "document block"),
    (ChatMessage(role="tool", blocks=[ImageBlock(image=PNG)],
                 additional_kwargs={"tool_call_id": "c1"}), "image block"),
    (ChatMessage(role="user", blocks=[ToolCallBlock(tool_name="f", tool_kwargs={})]),
     "tool_call block"),
    (ChatMessage(role="developer", content="x"), "role 'developer'"),
])
def test_salesforce_refuses_what_the_models_api_cannot_take(message: ChatMessage,
                                                            what: str) -> None:
    for convert in (to_salesforce_messages, to_neutral_messages):
        with pytest.raises(InvalidInputError) as caught:
            convert([ChatMessage(role="user", content="hi"), message])
        text = str(caught.value)
        assert "messages[1]" in text and what in text
        assert "takes only text" in text and "no images, audio or documents" in text


def agent_history() -> list[ChatMessage]:
    """A conversation as FunctionAgent keeps it after two parallel tool calls."""
    return [
        ChatMessage(role="system", content="You help."),
        ChatMessage(role="user", content="Weather in Paris and Oslo?"),
        ChatMessage(role="assistant", blocks=[
            ToolCallBlock(tool_call_id="call_1", tool_name="get_weather",
                          tool_kwargs={"city": "Paris"}),
            ToolCallBlock(tool_call_id="call_2", tool_name="get_weather",
                          tool_kwargs='{"city": "Oslo"}')]),
        ChatMessage(role="tool", blocks=[TextBlock(text="Sunny")],
                    additional_kwargs={"tool_call_id": "call_1"}),
        ChatMessage(role="tool", content="Rain", additional_kwargs={"tool_call_id": "call_2"}),
    ]


def test_neutral_messages_carry_tool_calls_and_results() -> None:
    out = to_neutral_messages(agent_history())
    assert out[2] == {"role": "assistant", "content": "", "tool_calls": [
        {"id": "call_1", "name": "get_weather", "arguments": {"city": "Paris"}},
        {"id": "call_2", "name": "get_weather", "arguments": {"city": "Oslo"}}]}
    assert out[3] == {"role": "tool", "content": "Sunny", "tool_call_id": "call_1"}
    assert out[4] == {"role": "tool", "content": "Rain", "tool_call_id": "call_2"}


def test_neutral_messages_read_legacy_tool_calls() -> None:
    """Tool calls other integrations keep in additional_kwargs (dicts or OpenAI objects)."""
    message = ChatMessage(role="assistant", content="Let me check.", additional_kwargs={
        "tool_calls": [{"id": "c9", "type": "function",
                        "function": {"name": "add", "arguments": '{"a": 1, "b": 2}'}}]})
    result = ChatMessage(role="tool", content="3",
                         additional_kwargs={"tool_call_id": "c9", "name": "add"})
    assert to_neutral_messages([message, result]) == [
        {"role": "assistant", "content": "Let me check.",
         "tool_calls": [{"id": "c9", "name": "add", "arguments": {"a": 1, "b": 2}}]},
        {"role": "tool", "content": "3", "tool_call_id": "c9", "name": "add"}]
    with pytest.raises(InvalidInputError, match="only assistant messages"):
        to_neutral_messages([ChatMessage(role="user", content="x",
                                         additional_kwargs={"tool_calls": [{}]})])
    with pytest.raises(InvalidInputError, match="function name"):
        to_neutral_messages([ChatMessage(role="assistant", content="x",
                                         additional_kwargs={"tool_calls": [{"id": "c"}]})])


def test_plain_chat_renders_tool_turns_as_text_without_instructions() -> None:
    out = to_salesforce_messages(agent_history())
    assert [m["role"] for m in out] == ["system", "user", "assistant", "user"]
    assert out[0] == {"role": "system", "content": "You help."}
    assert json.loads(out[2]["content"]) == {"tool_calls": [
        {"name": "get_weather", "arguments": {"city": "Paris"}},
        {"name": "get_weather", "arguments": {"city": "Oslo"}}]}
    assert out[3]["content"] == (
        'Tool result from get_weather called with {"city": "Paris"}:\nSunny\n\n'
        'Tool result from get_weather called with {"city": "Oslo"}:\nRain')
    assert "sfmodels tool protocol" not in json.dumps(out)
    # without a system message, none is added
    assert [m["role"] for m in to_salesforce_messages(agent_history()[1:])] == [
        "user", "assistant", "user"]


def test_salesforce_refuses_empty_and_non_messages() -> None:
    with pytest.raises(InvalidInputError, match="must not be empty"):
        to_salesforce_messages([])
    with pytest.raises(InvalidInputError, match="must be a ChatMessage"):
        to_salesforce_messages([{"role": "user", "content": "hi"}])  # type: ignore[list-item]


def salesforce_chat_response(result: Any, stop: list[str] | None = None, *,
                             stream: bool = False) -> Any:
    """A plain (no protocol) chat answer, as SalesforceLLM builds it."""
    return chat_response(read_answer(Outcome(None, result.text, [result], False), stop),
                         stream=stream)


def test_salesforce_chat_response_carries_raw_generation_id_and_usage() -> None:
    body = sf_chat_body("Paris is the capital.", "gen-42")
    response = salesforce_chat_response(sf_parse_chat(body))
    assert response.message.role == MessageRole.ASSISTANT
    assert response.message.content == "Paris is the capital."
    # The body, plus the token counts at the top, where TokenCountingHandler looks.
    assert response.raw == {**body, "usage": {"prompt_tokens": 5, "completion_tokens": 3,
                                              "total_tokens": 8}}
    assert response.delta is None
    extra = response.additional_kwargs
    assert extra["generation_id"] == "gen-42"
    assert (extra["prompt_tokens"], extra["completion_tokens"], extra["total_tokens"]) == (5, 3, 8)
    assert extra["model"] == "gpt-4o-mini" and extra["finish_reason"] == "stop"
    assert extra["content_quality"]["is_toxicity_detected"] is False


def test_salesforce_stop_is_applied_to_the_answer() -> None:
    result = sf_parse_chat(sf_chat_body("one two STOP three"))
    response = salesforce_chat_response(result, stop=["STOP", "two"], stream=True)
    assert response.message.content == "one "
    assert response.delta == "one "
    assert response.additional_kwargs["finish_reason"] == "stop"
    assert salesforce_chat_response(result, stop=["nope"]).message.content == "one two STOP three"


def test_salesforce_completion_response() -> None:
    body = {"id": "c-1", "generation": {"id": "gen-7", "generatedText": "Once upon a time. END"},
            "parameters": {"model": "m", "usage": {"prompt_tokens": 2, "completion_tokens": 6,
                                                   "total_tokens": 8}}}
    response = salesforce_completion_response(parse_generation(body), stop=[" END"])
    assert response.text == "Once upon a time."
    assert response.raw == {**body, "usage": body["parameters"]["usage"]}
    assert response.additional_kwargs["generation_id"] == "gen-7"
    assert response.additional_kwargs["total_tokens"] == 8


# -- Databricks -----------------------------------------------------------------------------------
def test_databricks_messages_with_tool_calls_and_results() -> None:
    messages = [
        ChatMessage(role="system", content="You help."),
        ChatMessage(role="user", content="Weather in Paris?"),
        ChatMessage(role="assistant", blocks=[
            ToolCallBlock(tool_call_id="call_1", tool_name="get_weather",
                          tool_kwargs={"city": "Paris"}),
            ToolCallBlock(tool_call_id="call_2", tool_name="get_time", tool_kwargs='{"tz": 1}')]),
        ChatMessage(role="tool", content="Sunny", additional_kwargs={"tool_call_id": "call_1"}),
        ChatMessage(role="tool", content="noon", additional_kwargs={"tool_call_id": "call_2"}),
    ]
    out = to_databricks_messages(messages)
    assert out[0] == {"role": "system", "content": "You help."}
    assert out[2] == {"role": "assistant", "content": None, "tool_calls": [
        {"id": "call_1", "type": "function",
         "function": {"name": "get_weather", "arguments": '{"city": "Paris"}'}},
        {"id": "call_2", "type": "function",
         "function": {"name": "get_time", "arguments": '{"tz": 1}'}}]}
    assert out[3] == {"role": "tool", "content": "Sunny", "tool_call_id": "call_1"}


def test_databricks_legacy_tool_calls_in_additional_kwargs() -> None:
    message = ChatMessage(role="assistant", content="", additional_kwargs={"tool_calls": [
        {"id": "c9", "type": "function", "function": {"name": "f", "arguments": {"x": 1}}}]})
    assert to_databricks_messages([message])[0]["tool_calls"] == [
        {"id": "c9", "type": "function", "function": {"name": "f", "arguments": '{"x": 1}'}}]


def test_databricks_images_become_image_url_parts() -> None:
    message = ChatMessage(role="user", blocks=[
        TextBlock(text="What is this?"), ImageBlock(url="https://example.com/cat.png"),
        ImageBlock(image=PNG, image_mimetype="image/png")])
    content = to_databricks_messages([message])[0]["content"]
    assert content[0] == {"type": "text", "text": "What is this?"}
    assert content[1] == {"type": "image_url", "image_url": {"url": "https://example.com/cat.png"}}
    assert content[2]["image_url"]["url"].startswith("data:image/png;base64,")


@pytest.mark.parametrize("message, match", [
    (ChatMessage(role="tool", content="42"), "tool_call_id"),
    (ChatMessage(role="user", blocks=[AudioBlock(audio=b"RIFF0000WAVE", format="wav")]),
     "audio block"),
    (ChatMessage(role="assistant", blocks=[ImageBlock(image=PNG)]), "image block"),
    (ChatMessage(role="user", blocks=[ToolCallBlock(tool_name="f")]), "tool_call block"),
    (ChatMessage(role="assistant", blocks=[ToolCallBlock(tool_name="f")]), "without an id"),
    (ChatMessage(role="chatbot", content="x"), "role 'chatbot'"),
])
def test_databricks_refuses_bad_messages(message: ChatMessage, match: str) -> None:
    with pytest.raises(InvalidInputError, match=match):
        to_databricks_messages([message])


def test_databricks_chat_response_with_tool_calls() -> None:
    body = {"id": "chatcmpl_1", "model": "llama", "choices": [{
        "index": 0, "finish_reason": "tool_calls", "message": {
            "role": "assistant", "content": None, "tool_calls": [
                {"id": "call_1", "type": "function",
                 "function": {"name": "add", "arguments": '{"a": 1, "b": 2}'}}]}}],
        "usage": {"prompt_tokens": 10, "completion_tokens": 5, "total_tokens": 15}}
    response = databricks_chat_response(parse_chat(body))
    assert response.raw == body
    assert response.message.content is None
    (block,) = response.message.blocks
    assert isinstance(block, ToolCallBlock)
    assert (block.tool_call_id, block.tool_name, block.tool_kwargs) == (
        "call_1", "add", {"a": 1, "b": 2})
    assert response.additional_kwargs == {"id": "chatcmpl_1", "model": "llama",
                                          "finish_reason": "tool_calls", "prompt_tokens": 10,
                                          "completion_tokens": 5, "total_tokens": 15}
    (selection,) = tool_selections(response)
    assert (selection.tool_id, selection.tool_name, selection.tool_kwargs) == (
        "call_1", "add", {"a": 1, "b": 2})


def test_text_answer_has_no_tool_calls() -> None:
    response = databricks_chat_response(parse_chat({"choices": [{"message": {
        "role": "assistant", "content": "Hi"}}]}))
    assert response.message.content == "Hi"
    assert tool_selections(response, error_on_no_tool_call=False) == []
    with pytest.raises(ValueError, match="Expected at least one tool call"):
        tool_selections(response)


def test_chat_stream_folds_chunks_and_reports_usage_once() -> None:
    stream = ChatStream()
    chunks = [
        {"id": "x", "model": "m", "choices": [{"index": 0, "delta": {"role": "assistant",
                                                                      "content": "Hel"}}]},
        {"choices": [{"index": 0, "delta": {"content": "lo", "tool_calls": [
            {"index": 0, "id": "call_1", "function": {"name": "add", "arguments": '{"a": '}}]}}]},
        {"choices": [{"index": 0, "delta": {"tool_calls": [
            {"index": 0, "function": {"arguments": "1}"}}]}, "finish_reason": "tool_calls"}]},
    ]
    responses = [stream.add(parse_chat_chunk(c)) for c in chunks]
    final = parse_chat_chunk({"choices": [], "usage": {"prompt_tokens": 4,
                                                       "completion_tokens": 3,
                                                       "total_tokens": 7}})
    responses.append(stream.add(final))
    assert [r.delta for r in responses] == ["Hel", "lo", "", ""]
    assert responses[1].message.content == "Hello"
    partial = tool_selections(responses[1])[0]
    assert partial.tool_name == "add" and partial.tool_kwargs == {"a": None}  # partial JSON
    last = responses[-1]
    assert last.message.content == "Hello"
    assert tool_selections(last)[0].tool_kwargs == {"a": 1}
    assert last.additional_kwargs["finish_reason"] == "tool_calls"
    assert last.additional_kwargs["id"] == "x"
    with_usage = [r for r in responses if "total_tokens" in r.additional_kwargs]
    assert with_usage == [last] and last.additional_kwargs["total_tokens"] == 7
    assert last.raw["usage"]["total_tokens"] == 7
    assert all("usage" not in r.raw for r in responses[:-1])


def test_first_tool_call_only() -> None:
    response = ChatResponse(message=ChatMessage(role="assistant", blocks=[
        TextBlock(text="calling"), ToolCallBlock(tool_call_id="1", tool_name="a"),
        ToolCallBlock(tool_call_id="2", tool_name="b")]))
    trimmed = first_tool_call_only(response)
    assert [s.tool_name for s in tool_selections(trimmed)] == ["a"]
    assert trimmed.message.content == "calling"


def test_tool_choice() -> None:
    assert wire_tool_choice(None, ["add"], required=False) == "auto"
    assert wire_tool_choice(None, ["add"], required=True) == "required"
    assert wire_tool_choice("none", ["add"], required=False) == "none"
    assert wire_tool_choice("add", ["add"], required=False) == {
        "type": "function", "function": {"name": "add"}}


def test_tool_specs_are_openai_function_tools() -> None:
    def add(a: int, b: int) -> int:
        """Add two integers."""
        return a + b

    (spec,) = tool_specs([FunctionTool.from_defaults(fn=add)])
    assert spec["type"] == "function"
    assert spec["function"]["name"] == "add"
    assert spec["function"]["parameters"]["required"] == ["a", "b"]



"""The pure converters between LangChain messages and the core's dicts and results."""

from __future__ import annotations

import json

import pytest
from langchain_core.messages import (
    AIMessage,
    ChatMessage,
    FunctionMessage,
    HumanMessage,
    SystemMessage,
    ToolMessage,
)

from langchain_sfmodels._common import usage_metadata
from langchain_sfmodels._databricks import (
    DatabricksStream,
    generation_params,
    to_databricks_messages,
)
from langchain_sfmodels._databricks import chat_result as databricks_chat_result
from langchain_sfmodels._salesforce import (
    chat_result,
    to_salesforce_history,
    to_salesforce_messages,
)
from sfmodels_core.databricks import ChatCompletionChunk
from sfmodels_core.databricks._wire import chat_request, parse_chat, parse_chat_chunk
from sfmodels_core.errors import InvalidInputError
from sfmodels_core.integration.salesforce import read_answer
from sfmodels_core.salesforce._wire import parse_chat as parse_salesforce_chat
from sfmodels_core.tool_protocol import Outcome
from sfmodels_core.types import Usage


def test_salesforce_roles_and_text_blocks() -> None:
    messages = [
        SystemMessage("Be brief."),
        HumanMessage([{"type": "text", "text": "Line one"}, "line two"]),
        AIMessage([{"type": "reasoning", "reasoning": "hmm"}, {"type": "text", "text": "Sure."}]),
        ChatMessage(role="user", content="And then?"),
    ]
    assert to_salesforce_messages(messages) == [
        {"role": "system", "content": "Be brief."},
        {"role": "user", "content": "Line one\nline two"},
        {"role": "assistant", "content": "Sure."},
        {"role": "user", "content": "And then?"},
    ]


@pytest.mark.parametrize("message, what", [
    (HumanMessage([{"type": "text", "text": "Look"},
                   {"type": "image_url", "image_url": {"url": "data:image/png;base64,AA=="}}]),
     "'image_url' content block"),
    (HumanMessage([{"type": "image", "base64": "AA==", "mime_type": "image/png"}]),
     "'image' content block"),
    (HumanMessage([{"type": "audio", "base64": "AA==", "mime_type": "audio/wav"}]),
     "'audio' content block"),
    (ToolMessage([{"type": "image", "base64": "AA==", "mime_type": "image/png"}],
                 tool_call_id="c1"), "'image' content block"),
    (FunctionMessage("3", name="f"), "FunctionMessage"),
    (ChatMessage(role="tool", content="x"), "role 'tool'"),
])
def test_salesforce_refuses_what_the_api_has_no_field_for(message: object, what: str) -> None:
    with pytest.raises(InvalidInputError) as info:
        to_salesforce_messages([HumanMessage("hi"), message])  # type: ignore[list-item]
    text = str(info.value)
    assert "messages[1]" in text and what in text
    assert "accepts system, human, AI and tool messages" in text


TOOL_HISTORY = [
    SystemMessage("Be brief."),
    HumanMessage("Weather in Paris and Rome?"),
    AIMessage([{"type": "text", "text": "Checking."},
               {"type": "tool_use", "id": "c1", "name": "weather", "input": {"city": "Paris"}}],
              tool_calls=[{"name": "weather", "args": {"city": "Paris"}, "id": "c1",
                           "type": "tool_call"},
                          {"name": "weather", "args": {"city": "Rome"}, "id": "c2",
                           "type": "tool_call"}]),
    ToolMessage("Sunny", tool_call_id="c1", name="weather"),
    ToolMessage([{"type": "text", "text": "City not found"}], tool_call_id="c2",
                status="error"),
]


def test_salesforce_history_keeps_tool_calls_and_results() -> None:
    assert to_salesforce_history(TOOL_HISTORY) == [
        {"role": "system", "content": "Be brief."},
        {"role": "user", "content": "Weather in Paris and Rome?"},
        {"role": "assistant", "content": "Checking.", "tool_calls": [
            {"id": "c1", "name": "weather", "arguments": {"city": "Paris"}},
            {"id": "c2", "name": "weather", "arguments": {"city": "Rome"}}]},
        {"role": "tool", "tool_call_id": "c1", "name": "weather", "content": "Sunny"},
        {"role": "tool", "tool_call_id": "c2", "name": None,
         "content": "Error: City not found"},
    ]


def test_a_tool_history_without_tools_bound_is_written_as_text() -> None:
    """A tool loop continued on the plain model: the calls and results still reach it, in the
    protocol's words, but no tool instructions are added."""
    messages = to_salesforce_messages(TOOL_HISTORY)
    assert [m["role"] for m in messages] == ["system", "user", "assistant", "user"]
    assert messages[0]["content"] == "Be brief."
    assert json.loads(messages[2]["content"]) == {"tool_calls": [
        {"name": "weather", "arguments": {"city": "Paris"}},
        {"name": "weather", "arguments": {"city": "Rome"}}]}
    assert messages[3]["content"] == (
        'Tool result from weather called with {"city": "Paris"}:\nSunny\n\n'
        'Tool result from weather called with {"city": "Rome"}:\nError: City not found')
    no_system = to_salesforce_messages(TOOL_HISTORY[1:])
    assert no_system[0]["role"] == "user"  # no empty system message is made up


def test_salesforce_result_metadata_and_stop() -> None:
    body = {"id": "chatcmpl-9", "generationDetails": {
        "generations": [{"id": "gen-9", "role": "assistant", "content": "One. Two. Three.",
                         "parameters": {"finish_reason": "stop", "index": 0},
                         "contentQuality": {"scanToxicity": {"isDetected": False, "categories": [
                             {"categoryName": "hate", "score": 0.25}]}}}],
        "parameters": {"model": "gpt-4o-mini", "usage": {"prompt_tokens": 4,
                                                         "completion_tokens": 6,
                                                         "total_tokens": 10}}}}
    parsed = parse_salesforce_chat(body)
    answer = read_answer(Outcome(None, parsed.text, [parsed], False), ["Two"])
    result = chat_result(answer, "sfdc_ai__X")
    message = result.generations[0].message
    assert message.content == "One. "
    assert message.id == "chatcmpl-9"
    assert message.response_metadata == {
        "id": "chatcmpl-9", "generation_id": "gen-9", "model_name": "sfdc_ai__X",
        "served_model": "gpt-4o-mini", "finish_reason": "stop",
        "content_quality": {"is_toxicity_detected": False, "scores": {"hate": 0.25}},
        "model_provider": "salesforce"}
    assert message.usage_metadata == {"input_tokens": 4, "output_tokens": 6, "total_tokens": 10}


def test_databricks_messages_with_tools_and_block_content() -> None:
    call = {"name": "add", "args": {"a": 1}, "id": "c1", "type": "tool_call"}
    messages = [
        HumanMessage("hi", name="ann"),
        AIMessage("", tool_calls=[call]),
        ToolMessage('{"r": 2}', tool_call_id="c1", name="add"),
        # A v1-style AI turn: a tool_call block in content, as output_version="v1" makes them.
        AIMessage([{"type": "text", "text": "Let me add."}, {**call, "id": "c2"}],
                  tool_calls=[{**call, "id": "c2"}]),
    ]
    assert to_databricks_messages(messages) == [
        {"role": "user", "name": "ann", "content": "hi"},
        {"role": "assistant", "content": None, "tool_calls": [
            {"type": "function", "id": "c1",
             "function": {"name": "add", "arguments": '{"a": 1}'}}]},
        {"role": "tool", "name": "add", "tool_call_id": "c1", "content": '{"r": 2}'},
        {"role": "assistant", "content": "Let me add.", "tool_calls": [
            {"type": "function", "id": "c2",
             "function": {"name": "add", "arguments": '{"a": 1}'}}]},
    ]


def test_databricks_result_tool_calls_valid_and_invalid() -> None:
    body = {"id": "r1", "model": "served", "choices": [
        {"index": 0, "finish_reason": "tool_calls", "message": {"role": "assistant",
         "content": None, "tool_calls": [
             {"id": "c1", "type": "function", "function": {"name": "f", "arguments": '{"x": 1}'}},
             {"id": "c2", "type": "function", "function": {"name": "g", "arguments": "{oops"}}]}},
        {"index": 1, "finish_reason": "stop", "message": {"role": "assistant", "content": "B"}}],
        "usage": {"prompt_tokens": 3, "completion_tokens": 4, "total_tokens": 7,
                  "cache_read_input_tokens": 2}}
    result = databricks_chat_result(parse_chat(body), "my-endpoint")
    first, second = (g.message for g in result.generations)
    assert first.tool_calls == [{"name": "f", "args": {"x": 1}, "id": "c1", "type": "tool_call"}]
    assert [c["name"] for c in first.invalid_tool_calls] == ["g"]
    assert first.usage_metadata == {"input_tokens": 3, "output_tokens": 4, "total_tokens": 7,
                                    "input_token_details": {"cache_read": 2}}
    # Usage belongs to the request: counted once, not once per choice.
    assert second.usage_metadata is None and second.content == "B"
    assert first.response_metadata["model_name"] == "my-endpoint"
    assert first.response_metadata["served_model"] == "served"
    assert result.llm_output is not None and result.llm_output["token_usage"]["total_tokens"] == 7


def _chunk(**body: object) -> ChatCompletionChunk:
    return parse_chat_chunk(dict(body))


def test_databricks_stream_puts_metadata_and_usage_once_on_the_last_chunk() -> None:
    stream = DatabricksStream("ep", stream_usage=True)
    pieces = [
        _chunk(id="s1", model="served", choices=[{"index": 0, "delta": {"role": "assistant",
                                                                        "content": ""}}]),
        _chunk(id="s1", choices=[{"index": 0, "delta": {"content": "Hel"}}]),
        _chunk(id="s1", choices=[{"index": 0, "delta": {"tool_calls": [
            {"index": 0, "id": "c1", "function": {"name": "f", "arguments": '{"a"'}}]}}]),
        _chunk(id="s1", choices=[{"index": 0, "delta": {"tool_calls": [
            {"index": 0, "function": {"arguments": ": 1}"}}]}, "finish_reason": "tool_calls"}]),
        ChatCompletionChunk(id="s1", model="served", choices=[],
                            usage=Usage(prompt_tokens=5, completion_tokens=2, total_tokens=7)),
    ]
    chunks = [c for p in pieces if (c := stream.chunk(p)) is not None] + [stream.last()]
    assert len(chunks) == 4  # the role-only piece and the usage piece carry nothing themselves
    assert [c.message.usage_metadata for c in chunks[:-1]] == [None, None, None]
    full = chunks[0].message
    for c in chunks[1:]:
        full = full + c.message
    assert full.content == "Hel"
    assert full.tool_calls == [{"name": "f", "args": {"a": 1}, "id": "c1", "type": "tool_call"}]
    assert full.usage_metadata == {"input_tokens": 5, "output_tokens": 2, "total_tokens": 7}
    assert full.response_metadata["finish_reason"] == "tool_calls"
    assert full.response_metadata["model_name"] == "ep"
    assert full.id == "s1"


def test_stream_usage_can_be_left_out() -> None:
    stream = DatabricksStream("ep", stream_usage=False)
    stream.chunk(ChatCompletionChunk(id="s", choices=[], usage=Usage(prompt_tokens=1)))
    assert stream.last().message.usage_metadata is None


def test_usage_metadata_none_and_cache_creation() -> None:
    assert usage_metadata(None) is None
    usage = Usage.model_validate({"prompt_tokens": 9, "completion_tokens": 1, "total_tokens": 10,
                                  "cache_creation_input_tokens": 4})
    assert usage_metadata(usage) == {"input_tokens": 9, "output_tokens": 1, "total_tokens": 10,
                                     "input_token_details": {"cache_creation": 4}}


class _Owner:
    def __init__(self) -> None:
        self.model = "ep"
        self.extra_params = {"top_p": 0.5, "temperature": 1.5, "custom": {"k": 1}}
        self.temperature = 0.2
        self.max_tokens = None
        self.n = 1
        self.stop = ["END"]


def test_generation_params_precedence() -> None:
    endpoint, params = generation_params(_Owner(), None, {"temperature": 0.9, "top_k": 3,
                                                          "stream_usage": False})
    assert endpoint == "ep"
    assert params == {"top_p": 0.5, "temperature": 0.9, "custom": {"k": 1}, "stop": ["END"],
                      "top_k": 3}
    endpoint, params = generation_params(_Owner(), ["x"], {"model": "other"})
    assert endpoint == "other" and params["stop"] == ["x"] and params["temperature"] == 0.2


def test_reserved_body_keys_are_refused_by_the_core_request_builder() -> None:
    _, params = generation_params(_Owner(), None, {"messages": []})
    with pytest.raises(InvalidInputError, match="messages"):
        chat_request("ep", [{"role": "user", "content": "hi"}], params)

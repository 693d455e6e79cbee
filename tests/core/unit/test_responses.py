"""The Responses API in the core: request building, parsing and the stream, without sockets."""

from __future__ import annotations

import json
from typing import Any

import httpx
import pytest

from sfmodels_core import DatabricksClient
from sfmodels_core.databricks import merge_chunks
from sfmodels_core.databricks._responses import (
    ResponsesStream,
    input_items,
    parse_response,
    responses_request,
)
from sfmodels_core.errors import APIStatusError, InvalidInputError, ResponseValidationError

TOOL = {"type": "function", "function": {"name": "get_weather", "description": "Weather",
                                         "parameters": {"type": "object", "properties": {}}}}


def test_chat_messages_become_input_items() -> None:
    items = input_items([
        {"role": "system", "content": "Be brief."},
        {"role": "user", "content": [{"type": "text", "text": "Weather in Paris?"}]},
        {"role": "assistant", "content": None, "reasoning": [{"type": "reasoning", "id": "rs_1",
                                                              "summary": []}],
         "tool_calls": [{"id": "call_1", "type": "function",
                         "function": {"name": "get_weather", "arguments": {"city": "Paris"}}}]},
        {"role": "tool", "tool_call_id": "call_1", "content": "Sunny"},
        {"role": "assistant", "content": "It is sunny."},
        {"type": "item_reference", "id": "msg_9"},
    ])
    assert items == [
        {"role": "system", "content": "Be brief."},
        {"role": "user", "content": [{"type": "input_text", "text": "Weather in Paris?"}]},
        {"type": "reasoning", "id": "rs_1", "summary": []},
        {"type": "function_call", "call_id": "call_1", "name": "get_weather",
         "arguments": '{"city":"Paris"}'},
        {"type": "function_call_output", "call_id": "call_1", "output": "Sunny"},
        {"type": "message", "role": "assistant", "content": "It is sunny."},
        {"type": "item_reference", "id": "msg_9"},
    ]


def test_chat_parameters_take_their_responses_names() -> None:
    path, body = responses_request("databricks-gpt-5", [{"role": "user", "content": "hi"}], {
        "max_tokens": 100, "temperature": 0.2, "tools": [TOOL],
        "tool_choice": {"type": "function", "function": {"name": "get_weather"}},
        "response_format": {"type": "json_schema", "json_schema": {
            "name": "answer", "schema": {"type": "object"}, "strict": True}},
        "reasoning": {"effort": "low"}, "custom_inputs": {"user": "u1"}, "n": 1, "stop": None,
    }, stream=True)
    assert path == "/serving-endpoints/responses"
    assert body == {
        "model": "databricks-gpt-5", "input": [{"role": "user", "content": "hi"}],
        "max_output_tokens": 100, "temperature": 0.2,
        "tools": [{"type": "function", "name": "get_weather", "description": "Weather",
                   "parameters": {"type": "object", "properties": {}}}],
        "tool_choice": {"type": "function", "name": "get_weather"},
        "text": {"format": {"type": "json_schema", "name": "answer",
                            "schema": {"type": "object"}, "strict": True}},
        "reasoning": {"effort": "low"}, "custom_inputs": {"user": "u1"}, "stream": True}


@pytest.mark.parametrize(("params", "message"), [
    ({"stop": ["\n"]}, "no stop sequences"),
    ({"n": 2}, "n must be 1"),
    ({"max_tokens": 0}, "positive integer"),
    ({"custom_inputs": "x"}, "custom_inputs must be a dict"),
    ({"input": "x"}, "set by respond"),
])
def test_what_the_api_cannot_do_is_refused_before_sending(params: dict[str, Any],
                                                          message: str) -> None:
    with pytest.raises(InvalidInputError, match=message):
        responses_request("e", [{"role": "user", "content": "hi"}], params)


@pytest.mark.parametrize("messages", [[], [{"role": "robot", "content": "x"}],
                                      [{"role": "tool", "content": "x"}], ["hi"]])
def test_bad_messages_are_refused(messages: list[Any]) -> None:
    with pytest.raises(InvalidInputError):
        input_items(messages)


def test_a_response_reads_as_a_chat_completion() -> None:
    body = {
        "id": "resp_1", "object": "response", "created_at": 1, "status": "completed",
        "model": "gpt-5", "custom_outputs": {"trace": "t1"},
        "output": [
            {"type": "reasoning", "id": "rs_1", "summary": [{"type": "summary_text",
                                                             "text": "think"}]},
            {"type": "message", "id": "msg_1", "role": "assistant", "content": [
                {"type": "output_text", "text": "Hello ", "annotations": []},
                {"type": "output_text", "text": "there."}]},
            {"type": "function_call", "id": "fc_1", "call_id": "call_1", "name": "f",
             "arguments": "{}"},
            {"type": "web_search_call", "id": "ws_1"},
        ],
        "usage": {"input_tokens": 10, "input_tokens_details": {"cached_tokens": 4},
                  "output_tokens": 20, "output_tokens_details": {"reasoning_tokens": 12},
                  "total_tokens": 30}}
    completion = parse_response(body)
    assert completion.text == "Hello there."
    assert [(c.id, c.name, c.arguments) for c in completion.tool_calls] == [("call_1", "f", "{}")]
    assert completion.finish_reason == "tool_calls"
    assert completion.choices[0].message.reasoning == "think"  # the summaries' text
    assert completion.usage is not None
    assert completion.usage.model_dump() == {"prompt_tokens": 10, "completion_tokens": 20,
                                             "total_tokens": 30, "cached_tokens": 4,
                                             "reasoning_tokens": 12}
    assert completion.custom_outputs == {"trace": "t1"}
    assert completion.raw["output"][3]["type"] == "web_search_call"  # kept, not dropped
    assert completion.id == "resp_1" and completion.model == "gpt-5"


def test_incomplete_and_failed_responses() -> None:
    cut = parse_response({"status": "incomplete", "incomplete_details": {
        "reason": "max_output_tokens"}, "output": [{"type": "message", "content": [
            {"type": "output_text", "text": "Hel"}]}]})
    assert (cut.text, cut.finish_reason) == ("Hel", "length")
    with pytest.raises(APIStatusError, match="server overloaded") as info:
        parse_response({"status": "failed", "output": [],
                        "error": {"code": "server_error", "message": "server overloaded"}})
    assert info.value.error_code == "server_error"
    with pytest.raises(ValueError, match="output"):
        parse_response({"status": "completed"})


def events_of(stream: ResponsesStream, events: list[dict[str, Any]]) -> list[Any]:
    chunks = [chunk for event in events for chunk in stream.feed(event)]
    return chunks + stream.finish()


def test_a_stream_of_finished_items_only_adds_up_like_a_streamed_one() -> None:
    call = {"type": "function_call", "id": "fc_1", "call_id": "call_1", "name": "f",
            "arguments": '{"a": 1}'}
    message = {"type": "message", "id": "m1", "content": [{"type": "output_text",
                                                           "text": "Hi"}]}
    done_only = events_of(ResponsesStream(), [
        {"type": "response.output_item.done", "item": message},
        {"type": "response.output_item.done", "item": call, "custom_outputs": {"k": 1}}])
    streamed = events_of(ResponsesStream(), [
        {"type": "response.created", "response": {"id": "r1", "model": "gpt-5"}},
        {"type": "response.output_text.delta", "item_id": "m1", "delta": "H"},
        {"type": "response.output_text.delta", "item_id": "m1", "delta": "i"},
        {"type": "response.output_item.done", "item": message},
        {"type": "response.output_item.added", "item": {**call, "arguments": ""}},
        {"type": "response.function_call_arguments.delta", "item_id": "fc_1",
         "delta": '{"a": '},
        {"type": "response.function_call_arguments.delta", "item_id": "fc_1", "delta": "1}"},
        {"type": "response.output_item.done", "item": call},
        {"type": "response.completed", "response": {
            "status": "completed", "custom_outputs": {"k": 1},
            "usage": {"input_tokens": 1, "output_tokens": 2, "total_tokens": 3}}}])
    for chunks in (done_only, streamed):
        merged = merge_chunks(chunks)
        assert merged.text == "Hi"
        assert [(c.id, c.name, c.arguments) for c in merged.tool_calls] == [
            ("call_1", "f", '{"a": 1}')]
        assert merged.finish_reason == "tool_calls"
        assert [c.custom_outputs for c in chunks if c.custom_outputs] == [{"k": 1}]
    assert streamed[-1].choices == [] and streamed[-1].usage is not None
    assert streamed[-1].usage.total_tokens == 3
    assert all(c.usage is None for c in streamed[:-1])


def test_stream_errors_are_typed() -> None:
    with pytest.raises(APIStatusError, match="rate limited"):
        ResponsesStream().feed({"type": "error", "code": "rate_limit", "message": "rate limited"})
    with pytest.raises(APIStatusError, match="boom"):
        ResponsesStream().feed({"type": "response.failed", "response": {
            "error": {"code": "server_error", "message": "boom"}}})


def sse(*events: Any) -> bytes:
    return b"".join(b"data: " + json.dumps(e).encode() + b"\n\n" for e in events)


def test_the_client_posts_to_the_responses_route_and_reads_streams() -> None:
    seen: list[httpx.Request] = []

    def handle(request: httpx.Request) -> httpx.Response:
        seen.append(request)
        body = json.loads(request.content)
        if body.get("stream"):
            return httpx.Response(200, content=sse(
                {"type": "response.output_text.delta", "item_id": "m", "delta": "Hi"},
                {"type": "response.output_text.delta", "item_id": "m", "delta": 7}),
                headers={"content-type": "text/event-stream"})
        return httpx.Response(200, json={"status": "completed", "output": [
            {"type": "message", "content": [{"type": "output_text", "text": "ok"}]}]})

    client = DatabricksClient(host="https://adb-1.test", api_key="dapi",
                              transport=httpx.MockTransport(handle))
    assert client.respond("gpt", [{"role": "user", "content": "hi"}]).text == "ok"
    assert str(seen[0].url) == "https://adb-1.test/serving-endpoints/responses"
    assert json.loads(seen[0].content)["model"] == "gpt"
    stream = client.stream_respond("gpt", [{"role": "user", "content": "hi"}])
    assert next(stream).text == "Hi"
    with pytest.raises(ResponseValidationError, match="Responses stream event"):
        next(stream)

"""DatabricksClient: bodies, parsing, streams (usage once, tool-call fragments), batching."""

from __future__ import annotations

import json

import httpx
import pytest

from sfmodels_core import DatabricksClient
from sfmodels_core.databricks import merge_chunks
from sfmodels_core.errors import InvalidInputError, NotFoundError, SFModelsError

from .fakes import Recorder

HOST = "https://adb-1.2.azuredatabricks.net"


def sse(*events: object) -> bytes:
    lines = [f"data: {json.dumps(e)}\n\n" for e in events]
    return ("".join(lines) + "data: [DONE]\n\n").encode()


def chunk(content: str | None = None, *, usage: dict | None = None, finish: str | None = None,
          tool_calls: list | None = None, role: str | None = None) -> dict:
    delta: dict = {}
    if role:
        delta["role"] = role
    if content is not None:
        delta["content"] = content
    if tool_calls:
        delta["tool_calls"] = tool_calls
    body: dict = {"id": "chatcmpl_1", "object": "chat.completion.chunk", "model": "llama",
                  "choices": [{"index": 0, "delta": delta, "finish_reason": finish}]}
    if usage is not None:
        body["usage"] = usage
    return body


def usage(completion: int | None) -> dict:
    return {"prompt_tokens": 14, "completion_tokens": completion,
            "total_tokens": 14 + (completion or 0)}


CUMULATIVE = sse(chunk("", role="assistant", usage=usage(None)), chunk("Hel", usage=usage(1)),
                 chunk("lo", usage=usage(2)), chunk("", finish="stop", usage=usage(3)))
TOOL_STREAM = sse(
    chunk(role="assistant", tool_calls=[{"index": 0, "id": "call_1", "type": "function",
                                         "function": {"name": "get_weather", "arguments": ""}}]),
    chunk(tool_calls=[{"index": 0, "function": {"arguments": '{"city": '}}]),
    chunk(tool_calls=[{"index": 1, "id": "call_2", "type": "function",
                       "function": {"name": "get_time", "arguments": "{}"}}]),
    chunk(tool_calls=[{"index": 0, "function": {"arguments": '"Paris"}'}}]),
    chunk(finish="tool_calls", usage=usage(9)))


def service(stream_body: bytes = CUMULATIVE) -> Recorder:
    def handler(request: httpx.Request) -> httpx.Response:
        body = json.loads(request.content)
        if body.get("stream"):
            return httpx.Response(200, content=stream_body,
                                  headers={"content-type": "text/event-stream"})
        if "input" in body:
            items = [{"object": "embedding", "index": i, "embedding": [float(len(t))]}
                     for i, t in enumerate(body["input"])]
            return httpx.Response(200, json={"object": "list", "model": "gte", "data": items[::-1],
                                             "usage": {"prompt_tokens": 1, "total_tokens": 1}})
        if "prompt" in body:
            return httpx.Response(200, json={"id": "cmpl", "model": "llama", "choices": [
                {"index": 0, "text": "four", "finish_reason": "stop"}],
                "usage": usage(1)})
        return httpx.Response(200, json={
            "id": "chatcmpl_9", "object": "chat.completion", "created": 1, "model": "llama",
            "choices": [{"index": 0, "finish_reason": "tool_calls", "message": {
                "role": "assistant", "content": None, "tool_calls": [
                    {"id": "call_1", "type": "function", "function": {
                        "name": "get_weather", "arguments": "{\"city\": \"Paris\"}"}}]}}],
            "usage": usage(5)})

    return Recorder(handler)


def client_for(rec: Recorder, **kwargs: object) -> DatabricksClient:
    return DatabricksClient(host=HOST, api_key="pat", env={}, **rec.transports(),
                            **kwargs)  # type: ignore[arg-type]


def test_chat_body_has_params_and_pass_through_fields() -> None:
    rec = service()
    tools = [{"type": "function", "function": {"name": "get_weather", "parameters": {
        "type": "object", "properties": {"city": {"type": "string"}}}}}]
    result = client_for(rec).chat(
        "databricks-meta-llama-3-3-70b-instruct", [{"role": "user", "content": "Weather?"}],
        temperature=0.1, max_tokens=50, stop="END", n=1, tools=tools, tool_choice="auto",
        top_k=None, enable_safety_filter=True)
    request = rec.requests[0]
    assert str(request.url) == (
        f"{HOST}/serving-endpoints/databricks-meta-llama-3-3-70b-instruct/invocations")
    assert json.loads(request.content) == {
        "messages": [{"role": "user", "content": "Weather?"}], "temperature": 0.1,
        "max_tokens": 50, "stop": ["END"], "n": 1, "tools": tools, "tool_choice": "auto",
        "enable_safety_filter": True}
    assert result.finish_reason == "tool_calls"
    assert result.tool_calls[0].name == "get_weather"
    assert result.tool_calls[0].parsed_arguments() == {"city": "Paris"}
    assert result.usage is not None and result.usage.completion_tokens == 5


@pytest.mark.parametrize("use_async", [False, True])
async def test_stream_reports_cumulative_usage_once(use_async: bool) -> None:
    client = client_for(service())
    msgs = [{"role": "user", "content": "hi"}]
    if use_async:
        chunks = [c async for c in client.astream_chat("ep", msgs)]
    else:
        chunks = list(client.stream_chat("ep", msgs))
    assert "".join(c.text for c in chunks) == "Hello"
    with_usage = [c for c in chunks if c.usage is not None]
    assert len(with_usage) == 1 and with_usage[0] is chunks[-1]
    assert chunks[-1].choices == []
    assert with_usage[0].usage.completion_tokens == 3  # the last value, not 0+1+2+3
    assert with_usage[0].usage.total_tokens == 17
    merged = merge_chunks(chunks)
    assert (merged.text, merged.finish_reason, merged.usage.total_tokens) == ("Hello", "stop", 17)


def test_stream_without_usage_has_no_usage_chunk() -> None:
    body = sse(chunk("a"), chunk("b", finish="stop"))
    chunks = list(client_for(service(body)).stream_chat("ep", [{"role": "user", "content": "x"}]))
    assert [c.text for c in chunks] == ["a", "b"]
    assert all(c.usage is None for c in chunks)


def test_streamed_tool_call_fragments_join_by_index() -> None:
    chunks = list(client_for(service(TOOL_STREAM)).stream_chat(
        "ep", [{"role": "user", "content": "x"}]))
    merged = merge_chunks(chunks)
    assert [(c.id, c.name, c.parsed_arguments()) for c in merged.tool_calls] == [
        ("call_1", "get_weather", {"city": "Paris"}), ("call_2", "get_time", {})]
    assert merged.finish_reason == "tool_calls"


def test_error_event_inside_a_stream_raises() -> None:
    body = sse(chunk("a"), {"error_code": "INTERNAL_ERROR", "message": "model crashed"})
    with pytest.raises(SFModelsError, match="model crashed"):
        list(client_for(service(body)).stream_chat("ep", [{"role": "user", "content": "x"}]))


async def test_completions_sync_async_and_stream() -> None:
    client = client_for(service(sse({"id": "c", "choices": [{"index": 0, "text": "fo"}],
                                     "usage": usage(1)},
                                    {"id": "c", "choices": [{"index": 0, "text": "ur",
                                                             "finish_reason": "stop"}],
                                     "usage": usage(2)})))
    assert client.complete("ep", "2+2=").text == "four"
    assert (await client.acomplete("ep", "2+2=")).text == "four"
    pieces = list(client.stream_complete("ep", "2+2="))
    assert "".join(p.text for p in pieces) == "four"
    assert [p.usage.completion_tokens for p in pieces if p.usage] == [2]
    apieces = [p async for p in client.astream_complete("ep", "2+2=")]
    assert [p.text for p in apieces] == [p.text for p in pieces]


@pytest.mark.parametrize("use_async", [False, True])
async def test_embed_batches_concurrently_in_order(use_async: bool) -> None:
    rec = service()
    client = client_for(rec, batch_size=150, max_concurrency=4)
    texts = ["x" * (i % 97 + 1) for i in range(1000)]
    if use_async:
        result = await client.aembed("databricks-gte-large-en", texts, instruction="Represent")
    else:
        result = client.embed("databricks-gte-large-en", texts, instruction="Represent")
    assert [v[0] for v in result.vectors] == [float(len(t)) for t in texts]
    bodies = [json.loads(r.content) for r in rec.requests]
    assert sorted(len(b["input"]) for b in bodies) == [100] + [150] * 6
    assert all(b["instruction"] == "Represent" for b in bodies)
    assert all("input" in b for b in bodies)
    assert result.usage.total_tokens == 7


@pytest.mark.parametrize("kwargs, match", [
    ({"temperature": "hot"}, "temperature must be a number"),
    ({"max_tokens": 0}, "max_tokens must be a positive integer"),
    ({"n": 1.5}, "n must be a positive integer"),
    ({"stop": [1]}, "stop must be"),
])
def test_bad_params_fail_before_sending(kwargs: dict, match: str) -> None:
    rec = service()
    with pytest.raises(InvalidInputError, match=match):
        client_for(rec).chat("ep", [{"role": "user", "content": "x"}], **kwargs)
    assert rec.requests == []


def test_bad_messages_and_endpoints_fail_before_sending() -> None:
    rec = service()
    client = client_for(rec)
    with pytest.raises(InvalidInputError, match="role 'robot'"):
        client.chat("ep", [{"role": "robot", "content": "x"}])
    with pytest.raises(InvalidInputError, match="endpoint"):
        client.chat("a/b", [{"role": "user", "content": "x"}])
    with pytest.raises(InvalidInputError, match="prompt"):
        client.complete("ep", 5)  # type: ignore[arg-type]
    assert rec.requests == []


def test_error_message_holding_json_is_unwrapped() -> None:
    inner = json.dumps({"error": {"message": "context length exceeded", "type": "invalid"}})
    rec = Recorder(lambda r: httpx.Response(404, json={
        "error_code": "RESOURCE_DOES_NOT_EXIST", "message": inner}))
    with pytest.raises(NotFoundError) as info:
        client_for(rec).chat("ep", [{"role": "user", "content": "x"}])
    assert info.value.provider_message == "context length exceeded"
    assert "endpoint name" in (info.value.hint or "")


def test_embed_passes_other_parameters_into_the_body() -> None:
    rec = service()
    client_for(rec).embed("gte", ["a"], truncate=True, encoding_format=None)
    assert json.loads(rec.requests[0].content) == {"input": ["a"], "truncate": True}
    with pytest.raises(InvalidInputError, match="input is set by embed"):
        client_for(rec).embed("gte", ["a"], input=["b"])

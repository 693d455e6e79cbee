"""The core against real-world shapes, piece by piece: stream reading, error bodies, request
fields, headers and lenient parsing (issue 12). The corpus replay is test_real_world_fixtures."""

from __future__ import annotations

import asyncio
import json
import pickle
from typing import Any

import httpx
import pytest

from sfmodels_core import DatabricksClient, SalesforceClient
from sfmodels_core._lenient import opt_float, opt_int, opt_str, usage
from sfmodels_core._sse import WholeBody, aiter_events, iter_events
from sfmodels_core.databricks import _wire as dbx
from sfmodels_core.errors import (
    InvalidInputError,
    ResponseValidationError,
    ServerError,
    SFModelsError,
)
from sfmodels_core.salesforce import _wire as sfx

from .fakes import Recorder

USER = [{"role": "user", "content": "hi"}]


# -- case 2: a stream that is one JSON body ---------------------------------------------------
@pytest.mark.parametrize("chunks", [
    [b'{"choices": []}'],
    [b"\r\n  ", b'{"choi', b'ces": []}'],  # whitespace first, split anywhere
    [b'[{"choices": []}]'],
])
def test_a_json_body_is_one_whole_event(chunks: list[bytes]) -> None:
    events = list(iter_events(chunks))
    assert len(events) == 1 and isinstance(events[0], WholeBody)
    assert json.loads(events[0]) in ({"choices": []}, [{"choices": []}])


@pytest.mark.parametrize("chunks", [[], [b""], [b"  \n"], [b"<html><body>Bad gateway</body>"],
                                    [b"event: ping\n\n"]])
def test_a_body_without_events_or_json_is_an_error(chunks: list[bytes]) -> None:
    with pytest.raises(ResponseValidationError):
        list(iter_events(chunks))

    async def agen() -> Any:
        for chunk in chunks:
            yield chunk

    async def drain() -> list[str]:
        return [e async for e in aiter_events(agen())]

    with pytest.raises(ResponseValidationError):
        asyncio.run(drain())


def test_a_stream_of_only_done_is_empty_not_an_error() -> None:
    assert list(iter_events([b"data: [DONE]\n\n"])) == []


def test_event_streams_are_unchanged() -> None:
    assert list(iter_events([b": comment\n\ndata: {\"a\": 1}\n\n", b"data: [DONE]\n\n"])) == [
        '{"a": 1}']


def test_whole_chat_answer_becomes_a_chunk_with_indexed_tool_calls() -> None:
    body = {"id": "x", "choices": [{"index": 0, "finish_reason": "tool_calls", "message": {
        "role": "assistant", "content": [{"type": "reasoning", "summary": [{"text": "think"}]},
                                         {"type": "text", "text": "ok"}],
        "tool_calls": [{"id": "a", "type": "function",
                        "function": {"name": "f", "arguments": "{}"}},
                       {"id": "b", "type": "function",
                        "function": {"name": "g", "arguments": "{\"x\": 1}"}}]}}],
        "usage": {"prompt_tokens": 1, "completion_tokens": 2, "total_tokens": 3}}
    chunk = dbx.parse_event(WholeBody(json.dumps(body)), dbx.parse_chat_chunk)
    [choice] = chunk.choices
    assert (choice.content, choice.reasoning, choice.finish_reason) == ("ok", "think",
                                                                        "tool_calls")
    assert [(d.index, d.id, d.name, d.arguments) for d in choice.tool_calls] == [
        (0, "a", "f", "{}"), (1, "b", "g", "{\"x\": 1}")]
    assert chunk.usage is not None and chunk.usage.total_tokens == 3


def test_whole_error_body_in_a_stream_raises() -> None:
    with pytest.raises(SFModelsError) as info:
        dbx.parse_event(WholeBody('{"error_code": "BAD_REQUEST", "message": "no"}'),
                        dbx.parse_chat_chunk)
    assert info.value.error_code == "BAD_REQUEST"


# -- case 3: stream_options --------------------------------------------------------------------
def test_streaming_requests_ask_for_usage_by_default() -> None:
    _, body = dbx.chat_request("ep", USER, {}, stream=True)
    assert body["stream_options"] == {"include_usage": True} and body["stream"] is True
    _, body = dbx.completion_request("ep", "p", {}, stream=True)
    assert body["stream_options"] == {"include_usage": True}


def test_stream_usage_false_leaves_stream_options_out() -> None:
    _, body = dbx.chat_request("ep", USER, {"stream_usage": False}, stream=True)
    assert "stream_options" not in body and "stream_usage" not in body
    _, body = dbx.chat_request("ep", USER, {"stream_usage": True})
    assert "stream_options" not in body and "stream_usage" not in body and "stream" not in body
    _, body = dbx.chat_request("ep", USER, {"stream_options": {"include_usage": False}},
                               stream=True)
    assert body["stream_options"] == {"include_usage": False}  # the caller's own wins
    with pytest.raises(InvalidInputError):
        dbx.chat_request("ep", USER, {"stream_usage": "no"}, stream=True)


def test_stream_chat_sends_stream_options() -> None:
    def answer(request: httpx.Request) -> httpx.Response:
        return httpx.Response(200,
                              text='data: {"choices": [{"delta": {"content": "a"}}]}\n\n'
                                   'data: [DONE]\n\n',
                              headers={"content-type": "text/event-stream"})

    recorder = Recorder(answer)
    with DatabricksClient(host="https://h", api_key="k", env={},
                          **recorder.transports()) as client:
        list(client.stream_chat("ep", USER))
        list(client.stream_chat("ep", USER, stream_usage=False))
    sent = [json.loads(r.content) for r in recorder.requests]
    assert sent[0]["stream_options"] == {"include_usage": True}
    assert "stream_options" not in sent[1] and "stream_usage" not in sent[1]


# -- case 4: error bodies ----------------------------------------------------------------------
@pytest.mark.parametrize(("body", "code", "message", "request_id"), [
    ({"error_code": "BAD_REQUEST", "message": "plain"}, "BAD_REQUEST", "plain", None),
    ({"error_code": "BAD_REQUEST", "message": json.dumps({"message": "inner"})},
     "BAD_REQUEST", "inner", None),
    ({"error_code": "BAD_REQUEST", "message": "Received an error",
      "external_model_provider": "openai",
      "external_model_error": {"error": {"message": "too long", "code": "ctx"}}},
     "ctx", "too long", None),
    ({"error": {"message": "m", "type": "tokens", "code": None}}, "tokens", "m", None),
    ({"error": {"message": "m", "type": "t", "code": 429}}, "429", "m", None),
    ({"error": "invalid_client", "error_description": "bad secret"}, "invalid_client",
     "bad secret", None),
    ({"error": "Something went wrong upstream"}, None, "Something went wrong upstream", None),
    ({"error_code": "X", "message": "m", "details": [{"request_id": "rid-1"}, "junk"]},
     "X", "m", "rid-1"),
    ({"error_code": "X", "message": "{not json"}, "X", "{not json", None),
])
def test_databricks_error_bodies(body: dict[str, Any], code: str | None, message: str,
                                 request_id: str | None) -> None:
    details = dbx.parse_error(400, body)
    assert (details.code, details.message, details.request_id) == (code, message, request_id)


def test_header_request_id_wins_over_details() -> None:
    def answer(request: httpx.Request) -> httpx.Response:
        return httpx.Response(503, headers={"x-request-id": "from-header"}, json={
            "error_code": "TEMPORARILY_UNAVAILABLE", "message": "busy",
            "details": [{"request_id": "from-body"}]})

    with DatabricksClient(host="https://h", api_key="k", env={}, max_retries=0,
                          **Recorder(answer).transports()) as client, \
            pytest.raises(ServerError) as info:
        client.chat("ep", USER)
    assert info.value.request_id == "from-header"


# -- case 11: messageCode ----------------------------------------------------------------------
def test_salesforce_error_details_and_pickling() -> None:
    details = sfx.parse_error(400, {"errorCode": "INVALID_INPUT", "messageCode": "E40001",
                                    "message": "bad", "properties": {"a": 1}})
    assert (details.code, details.message_code, details.message) == (
        "INVALID_INPUT", "E40001", "bad")
    error = ServerError("x", status_code=423, message_code="E42301")
    assert pickle.loads(pickle.dumps(error)).message_code == "E42301"
    assert "message code E42301" in str(error)


# -- case 12: content type ---------------------------------------------------------------------
def test_content_types_per_provider() -> None:
    def sf_answer(request: httpx.Request) -> httpx.Response:
        if request.url.path.endswith("/feedback"):
            return httpx.Response(202, json={"message": "ok"})
        if request.url.path.endswith("/embeddings"):
            return httpx.Response(200, json={"embeddings": [{"embedding": [1.0], "index": 0}]})
        return httpx.Response(200, json={"id": "1", "generation": {"generatedText": "t"},
                                         "generationDetails": {"generations": [
                                             {"role": "assistant", "content": "t"}]}})

    recorder = Recorder(sf_answer)
    with SalesforceClient(api_key="t", api_base="https://api.test/v1", env={},
                          **recorder.transports()) as client:
        client.chat("m", USER)
        client.generate("m", "p")
        client.embed("m", ["x"])
        client.submit_feedback("g", "GOOD")
        asyncio.run(client.achat("m", USER))
    assert {r.headers["content-type"] for r in recorder.requests} == {
        "application/json;charset=utf-8"}
    db = Recorder(lambda r: httpx.Response(
        200, json={"choices": [{"message": {"content": "ok"}}]}))
    with DatabricksClient(host="https://h", api_key="k", env={}, **db.transports()) as client:
        client.chat("ep", USER)
    assert db.requests[0].headers["content-type"] == "application/json"


# -- case 10: feedback -------------------------------------------------------------------------
@pytest.mark.parametrize(("status", "content", "message"), [
    (202, b"", None), (202, b"Accepted", "Accepted"), (200, b'{"message": "ok"}', "ok"),
    (201, b"[]", None), (204, b"", None), (202, b"<html>ok</html>", "<html>ok</html>"),
])
def test_any_2xx_feedback_answer_is_success(status: int, content: bytes,
                                            message: str | None) -> None:
    recorder = Recorder(lambda r: httpx.Response(status, content=content))
    with SalesforceClient(api_key="t", api_base="https://api.test/v1", env={},
                          **recorder.transports()) as client:
        result = client.submit_feedback("gen", "GOOD", feedback_id="fb")
        aresult = asyncio.run(client.asubmit_feedback("gen", "BAD", feedback_id="fb2"))
    assert (result.message, result.status_code) == (message, status)
    assert aresult.message == message and len(recorder.requests) == 2


# -- the principle: non-essential fields never fail a call -------------------------------------
def test_lenient_readers() -> None:
    assert [opt_int(v) for v in (3, 3.9, "4", None, "x", True, float("nan"), [1])] == [
        3, 3, 4, None, None, None, None, None]
    assert [opt_float(v) for v in (1, 0.5, "2e-5", None, "x", False)] == [
        1.0, 0.5, 2e-5, None, None, None]
    assert [opt_str(v) for v in ("a", 1, None, {}, True)] == ["a", "1", None, None, None]
    kept = usage({"prompt_tokens": 1, "completion_tokens": "n/a", "total_tokens": 1.0,
                  "completion_tokens_details": {"reasoning_tokens": 0}})
    assert kept is not None and (kept.prompt_tokens, kept.completion_tokens,
                                 kept.total_tokens) == (1, 0, 1)
    assert (kept.model_extra or {})["completion_tokens_details"] == {"reasoning_tokens": 0}


def test_databricks_chunks_with_odd_fields_parse() -> None:
    chunk = dbx.parse_chat_chunk({"id": 7, "created": 1.5, "model": None, "choices": [
        {"index": None, "delta": {"role": 3, "content": "x"}, "finish_reason": 0}]})
    assert (chunk.id, chunk.created, chunk.choices[0].index, chunk.choices[0].role) == (
        "7", 1, 0, "3")


def test_essential_fields_still_fail_loudly() -> None:
    with pytest.raises(ValueError):
        sfx.parse_chat({"id": "x", "generationDetails": {"generations": [{"content": 5}]}})
    with pytest.raises(ValueError):
        dbx.parse_embeddings({"data": ["not an object"]})
    with pytest.raises(ValueError):
        dbx.parse_embeddings({"data": [{"index": 0, "embedding": [1.0]},
                                       {"index": None, "embedding": [2.0]},
                                       {"index": 0, "embedding": [3.0]}]})

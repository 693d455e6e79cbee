"""Every answer complete or a typed error: cut streams, error events, empty answers, content of
the wrong type, trickling bodies, oversized events and bodies, bad encodings, byte order marks.

Fakes behind httpx.MockTransport (no sockets), sync and async; the same cases over real HTTP on
both async senders are in ``tests/core/reliability/test_hostile_wire.py``.
"""

from __future__ import annotations

import asyncio
import json
import time
from collections.abc import AsyncIterator, Iterator
from typing import Any

import httpx
import pytest

from sfmodels_core import DatabricksClient, SalesforceClient, defaults
from sfmodels_core._sse import ErrorEvent, EventReader, iter_events
from sfmodels_core.errors import (
    APIStatusError,
    APITimeoutError,
    IncompleteResponseError,
    RateLimitError,
    ResponseValidationError,
    ServerError,
    SFModelsError,
)

from .fakes import Recorder, sf_chat_body

USER = [{"role": "user", "content": "hi"}]
SSE = {"content-type": "text/event-stream"}


def chunk(text: str | None = None, finish: str | None = None) -> dict[str, Any]:
    delta = {} if text is None else {"content": text}
    return {"id": "c", "choices": [{"index": 0, "delta": delta, "finish_reason": finish}]}


def sse(*events: Any, done: bool = False) -> bytes:
    out = b"".join(b"data: " + json.dumps(e).encode() + b"\n\n" for e in events)
    return out + (b"data: [DONE]\n\n" if done else b"")


def dbx(handler: Any) -> DatabricksClient:
    return DatabricksClient(host="https://h", api_key="k", env={}, max_retries=0,
                            **Recorder(handler).transports())


def stream_all(client: DatabricksClient, kind: str, mode: str) -> list[Any]:
    """Every piece of one stream of ``kind`` (chat, complete, respond), sync or async."""
    name = {"chat": "stream_chat", "complete": "stream_complete", "respond": "stream_respond"}
    arg: Any = "hi" if kind == "complete" else USER
    if mode == "sync":
        return list(getattr(client, name[kind])("ep", arg))

    async def run() -> list[Any]:
        return [p async for p in getattr(client, "a" + name[kind])("ep", arg)]

    return asyncio.run(run())


MODES = ["sync", "async"]


# -- streams end with their terminal marker ------------------------------------------------------
CUT = {
    "chat": sse(chunk("Hel"), chunk("lo")),
    "complete": sse({"choices": [{"index": 0, "text": "Hel"}]},
                    {"choices": [{"index": 0, "text": "lo"}]}),
    "respond": (b'data: {"type": "response.created", "response": {"id": "r"}}\n\n'
                b'data: {"type": "response.output_text.delta", "item_id": "m", '
                b'"delta": "Hel"}\n\n'
                b'data: {"type": "response.output_text.delta", "item_id": "m", '
                b'"delta": "lo"}\n\n'),
}


@pytest.mark.parametrize("mode", MODES)
@pytest.mark.parametrize("kind", ["chat", "complete", "respond"])
def test_a_stream_cut_before_its_end_marker_is_incomplete(kind: str, mode: str) -> None:
    client = dbx(lambda r: httpx.Response(200, content=CUT[kind], headers=SSE))
    with pytest.raises(IncompleteResponseError) as caught:
        stream_all(client, kind, mode)
    assert caught.value.incomplete
    assert isinstance(caught.value, ResponseValidationError)
    assert caught.value.partial.text == "Hello"  # what arrived, never handed over as whole


@pytest.mark.parametrize("mode", MODES)
@pytest.mark.parametrize("ending", ["done", "finish_reason"])
def test_a_stream_with_either_end_marker_is_whole(mode: str, ending: str) -> None:
    body = (sse(chunk("Hi"), done=True) if ending == "done"
            else sse(chunk("Hi"), chunk(finish="stop")))
    client = dbx(lambda r: httpx.Response(200, content=body, headers=SSE))
    assert "".join(p.text for p in stream_all(client, "chat", mode)) == "Hi"


@pytest.mark.parametrize("mode", MODES)
def test_every_choice_needs_its_finish_reason(mode: str) -> None:
    two = {"choices": [{"index": 0, "delta": {"content": "a"}, "finish_reason": "stop"},
                       {"index": 1, "delta": {"content": "b"}, "finish_reason": None}]}
    client = dbx(lambda r: httpx.Response(200, content=sse(two), headers=SSE))
    with pytest.raises(IncompleteResponseError):
        stream_all(client, "chat", mode)


@pytest.mark.parametrize("mode", MODES)
def test_a_stream_of_no_answer_at_all_is_an_error(mode: str) -> None:
    client = dbx(lambda r: httpx.Response(200, content=b"data: [DONE]\n\n", headers=SSE))
    with pytest.raises(ResponseValidationError, match="without any answer"):
        stream_all(client, "chat", mode)


# -- errors sent inside a stream ----------------------------------------------------------------
@pytest.mark.parametrize("mode", MODES)
@pytest.mark.parametrize(("event", "cls"), [
    (b'event: error\ndata: {"message": "overloaded"}\n\n', APIStatusError),
    (b"event: error\ndata: upstream went away\n\n", APIStatusError),
    (b'data: {"type": "error", "error": {"type": "overloaded_error", '
     b'"message": "Overloaded"}}\n\n', ServerError),
    (b'data: {"error_code": "REQUEST_LIMIT_EXCEEDED", "message": "slow down"}\n\n',
     RateLimitError),
    (b'data: {"error": {"message": "busy", "status_code": 503}}\n\n', ServerError),
])
def test_an_error_event_raises_the_error_it_names(mode: str, event: bytes,
                                                   cls: type[Exception]) -> None:
    body = sse(chunk("Hel")) + event + sse(chunk("lo", "stop"), done=True)
    client = dbx(lambda r: httpx.Response(200, content=body, headers=SSE))
    with pytest.raises(cls) as caught:
        stream_all(client, "chat", mode)
    assert type(caught.value) is cls


@pytest.mark.parametrize("kind", ["chat", "respond"])
def test_an_error_event_fails_the_responses_and_chat_streams_alike(kind: str) -> None:
    body = b'data: {"type": "error", "code": "rate_limit_exceeded", "message": "slow"}\n\n'
    client = dbx(lambda r: httpx.Response(200, content=body, headers=SSE))
    with pytest.raises(RateLimitError, match="slow"):
        stream_all(client, kind, "sync")


# -- a 2xx answer without a generation ----------------------------------------------------------
@pytest.mark.parametrize("mode", MODES)
@pytest.mark.parametrize(("body", "missing"), [
    ({}, "no choices"),
    ({"choices": []}, "no choices"),
    ({"choices": [{"index": 0}]}, "no message"),
    ({"choices": [{"message": {"role": "assistant"}}]}, "no content"),
    ({"choices": [{"message": {"content": 42}}]}, "not text"),
    ({"choices": [{"message": {"content": {"text": "hi"}}}]}, "not text"),
    ({"choices": [{"message": {"content": [{"type": "text", "text": 7}]}}]}, "not text"),
])
def test_a_chat_answer_without_a_generation_is_an_error(mode: str, body: dict[str, Any],
                                                        missing: str) -> None:
    client = dbx(lambda r: httpx.Response(200, json=body))
    with pytest.raises(ResponseValidationError, match=missing):
        if mode == "sync":
            client.chat("ep", USER)
        else:
            asyncio.run(client.achat("ep", USER))


def test_tool_calls_without_content_and_empty_text_are_answers() -> None:
    calls = {"choices": [{"message": {"content": None, "tool_calls": [
        {"id": "t", "type": "function", "function": {"name": "f", "arguments": "{}"}}]}}]}
    assert dbx(lambda r: httpx.Response(200, json=calls)).chat("ep", USER).tool_calls
    empty = {"choices": [{"message": {"content": ""}, "finish_reason": "length"}]}
    assert dbx(lambda r: httpx.Response(200, json=empty)).chat("ep", USER).text == ""


@pytest.mark.parametrize("body", [{}, {"choices": []}, {"choices": [{"index": 0}]},
                                  {"choices": [{"text": 3}]}])
def test_a_completion_without_text_is_an_error(body: dict[str, Any]) -> None:
    with pytest.raises(ResponseValidationError):
        dbx(lambda r: httpx.Response(200, json=body)).complete("ep", "hi")


@pytest.mark.parametrize("output", [[], [{"type": "reasoning", "summary": []}]])
def test_a_responses_answer_without_output_is_an_error(output: list[Any]) -> None:
    body = {"id": "r", "status": "completed", "output": output}
    with pytest.raises(ResponseValidationError, match="no message"):
        dbx(lambda r: httpx.Response(200, json=body)).respond("ep", USER)


def sf(handler: Any) -> SalesforceClient:
    return SalesforceClient(api_key="t", api_base="https://api.test/v1", env={}, max_retries=0,
                            **Recorder(handler).transports())


def _no_content() -> dict[str, Any]:
    body = sf_chat_body()
    del body["generationDetails"]["generations"][0]["content"]
    return body


def _wrong_type() -> dict[str, Any]:
    body = sf_chat_body()
    body["generationDetails"]["generations"][0]["content"] = ["Hello"]
    return body


@pytest.mark.parametrize("mode", MODES)
@pytest.mark.parametrize(("body", "missing"), [
    ({}, "no generationDetails.generations"),
    ({"generationDetails": {"generations": []}}, "no generationDetails.generations"),
    (_no_content(), "no content"),
    (_wrong_type(), "not text"),
])
def test_a_salesforce_chat_answer_without_a_generation_is_an_error(
        mode: str, body: dict[str, Any], missing: str) -> None:
    client = sf(lambda r: httpx.Response(200, json=body))
    with pytest.raises(ResponseValidationError, match=missing):
        if mode == "sync":
            client.chat("m", USER)
        else:
            asyncio.run(client.achat("m", USER))


@pytest.mark.parametrize("body", [{}, {"id": "x", "generation": None},
                                  {"id": "x", "generation": {"id": "g"}}])
def test_a_salesforce_generation_without_text_is_an_error(body: dict[str, Any]) -> None:
    with pytest.raises(ResponseValidationError):
        sf(lambda r: httpx.Response(200, json=body)).generate("m", "p")


# -- the event reader: byte order marks, encodings, sizes, named error events -----------------
@pytest.mark.parametrize("split", [1, 2, 3, 4, 100])
def test_a_leading_byte_order_mark_is_skipped(split: int) -> None:
    body = b"\xef\xbb\xbf" + sse({"a": 1}, {"b": 2}, done=True)
    chunks = [body[:split], body[split:]]
    assert list(iter_events(chunks)) == ['{"a": 1}', '{"b": 2}']
    assert list(iter_events([b"\xef\xbb\xbf", b'{"a": 1}'])) == ['{"a": 1}']


def test_bytes_that_are_not_utf8_are_a_typed_error() -> None:
    with pytest.raises(ResponseValidationError, match="not UTF-8"):
        list(iter_events([b'data: {"a": "\xff"}\n\n']))
    with pytest.raises(ResponseValidationError, match="not UTF-8"):
        list(iter_events([b'{"a": "\xff"}']))


def test_one_event_or_line_is_capped() -> None:
    reader = EventReader(max_bytes=1000)
    with pytest.raises(ResponseValidationError, match="1,000 bytes"):
        for _ in range(100):  # one endless line, never a newline
            reader.feed(b"data: " + b"x" * 100)
    reader = EventReader(max_bytes=1000)
    with pytest.raises(ResponseValidationError):  # many short lines of one event
        for _ in range(100):
            reader.feed(b"data: " + b"x" * 50 + b"\n")
    reader = EventReader(max_bytes=1000)
    with pytest.raises(ResponseValidationError):  # a whole JSON body
        for _ in range(100):
            reader.feed(b'{"a": "' + b"x" * 100)
    reader = EventReader(max_bytes=1000)  # many events, each small: fine
    assert sum(len(reader.feed(b"data: " + b"x" * 50 + b"\n\n")) for _ in range(100)) == 100


def test_an_event_named_error_reaches_the_parser_as_one() -> None:
    [event] = list(iter_events([b"event: error\ndata: {\"a\": 1}\n\n"]))
    assert isinstance(event, ErrorEvent)
    [plain] = list(iter_events([b"event: message\ndata: {\"a\": 1}\n\n"]))
    assert not isinstance(plain, ErrorEvent)


# -- every call bounded ---------------------------------------------------------------------------
class Trickle(httpx.SyncByteStream, httpx.AsyncByteStream):
    """A body sent a byte at a time, ``pause`` seconds apart."""

    def __init__(self, body: bytes, pause: float) -> None:
        self.body, self.pause = body, pause

    def __iter__(self) -> Iterator[bytes]:
        for i in range(len(self.body)):
            time.sleep(self.pause)
            yield self.body[i:i + 1]

    async def __aiter__(self) -> AsyncIterator[bytes]:
        for i in range(len(self.body)):
            await asyncio.sleep(self.pause)
            yield self.body[i:i + 1]


def trickling(body: bytes, headers: dict[str, str] | None = None) -> DatabricksClient:
    def handler(request: httpx.Request) -> httpx.Response:
        return httpx.Response(200, stream=Trickle(body, 0.02), headers=headers)

    return DatabricksClient(host="https://h", api_key="k", env={}, max_retries=0, timeout=0.3,
                            **Recorder(handler).transports())


@pytest.mark.parametrize("mode", MODES)
def test_a_trickling_answer_ends_at_the_timeout(mode: str) -> None:
    # Each byte comes well within the read timeout; the whole would take 2 s.
    client = trickling(json.dumps({"choices": [{"message": {"content": "x" * 60}}]}).encode())
    started = time.monotonic()
    with pytest.raises(APITimeoutError):
        if mode == "sync":
            client.chat("ep", USER)
        else:
            asyncio.run(client.achat("ep", USER))
    assert time.monotonic() - started < 1.5  # far from the 2 s the body would take


@pytest.mark.parametrize("mode", MODES)
def test_a_trickling_stream_ends_at_the_idle_timeout(mode: str) -> None:
    client = trickling(sse(chunk("x" * 80, "stop"), done=True), SSE)
    with pytest.raises(APITimeoutError, match="no complete event"):
        stream_all(client, "chat", mode)


@pytest.mark.parametrize("mode", MODES)
@pytest.mark.parametrize("announced", [True, False])
def test_a_body_over_the_cap_is_refused(monkeypatch: pytest.MonkeyPatch, mode: str,
                                        announced: bool) -> None:
    monkeypatch.setattr(defaults, "MAX_BODY_BYTES", 1000)
    body = json.dumps({"choices": [{"message": {"content": "x" * 2000}}]}).encode()

    def handler(request: httpx.Request) -> httpx.Response:
        if announced:
            return httpx.Response(200, content=body)
        return httpx.Response(200, stream=Trickle(body, 0))

    client = DatabricksClient(host="https://h", api_key="k", env={}, max_retries=0,
                              **Recorder(handler).transports())
    with pytest.raises(ResponseValidationError, match="over the 1,000"):
        if mode == "sync":
            client.chat("ep", USER)
        else:
            asyncio.run(client.achat("ep", USER))


@pytest.mark.parametrize("mode", MODES)
def test_a_wrong_content_encoding_is_an_error_of_ours(mode: str) -> None:
    client = dbx(lambda r: httpx.Response(200, content=b'{"choices": []}',
                                          headers={"content-encoding": "gzip"}))
    with pytest.raises(SFModelsError):
        if mode == "sync":
            client.chat("ep", USER)
        else:
            asyncio.run(client.achat("ep", USER))

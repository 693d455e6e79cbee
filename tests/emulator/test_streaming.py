"""Server-sent event streams of Databricks chat and completions."""

from __future__ import annotations

import json
import time
from typing import Any

import httpx
import pytest

from sfmodels_emulator import Emulator

from .payloads import CALCULATOR_TOOL, DATABRICKS_CHAT, WEATHER_TOOL, user

CHAT = "/serving-endpoints/chat/completions"
COMPLETIONS = "/serving-endpoints/completions"
INVOCATIONS = f"/serving-endpoints/{DATABRICKS_CHAT}/invocations"


def read_events(response: httpx.Response) -> tuple[list[dict[str, Any]], bool]:
    """Parse ``data:`` events; the flag says whether ``[DONE]`` ended the stream."""
    events: list[dict[str, Any]] = []
    done = False
    buffer = ""
    for text in response.iter_text():
        buffer += text
    for block in buffer.split("\n\n"):
        if not block.strip():
            continue
        assert block.startswith("data: "), block
        data = block[len("data: ") :]
        if data == "[DONE]":
            done = True
            continue
        assert not done, "event after [DONE]"
        events.append(json.loads(data))
    return events, done


def stream(
    http: httpx.Client, headers: dict[str, str], path: str, body: dict[str, Any]
) -> tuple[list[dict[str, Any]], bool]:
    with http.stream("POST", path, headers=headers, json={**body, "stream": True}) as response:
        assert response.status_code == 200
        assert response.headers["content-type"] == "text/event-stream"
        assert response.headers["transfer-encoding"] == "chunked"
        assert "content-length" not in response.headers
        assert response.headers["x-request-id"]
        return read_events(response)


def non_stream(http: httpx.Client, headers: dict[str, str], path: str, body: dict[str, Any]) -> Any:
    return http.post(path, headers=headers, json=body).json()


def test_chat_stream(http: httpx.Client, db_headers: dict[str, str]) -> None:
    body = {"model": DATABRICKS_CHAT, "messages": user("Tell me about the ocean tides")}
    events, done = stream(http, db_headers, CHAT, body)
    assert done
    full = non_stream(http, db_headers, CHAT, body)
    first = events[0]
    assert first["object"] == "chat.completion.chunk"
    assert first["model"] == full["model"]
    assert first["choices"][0]["delta"] == {"role": "assistant", "content": ""}
    assert first["choices"][0]["finish_reason"] is None
    assert len({e["id"] for e in events}) == 1
    pieces = [e["choices"][0]["delta"].get("content", "") for e in events]
    assert "".join(pieces) == full["choices"][0]["message"]["content"]
    assert len([p for p in pieces if p]) > 3
    last = events[-1]
    assert last["choices"][0]["finish_reason"] == "stop"
    assert all(e["choices"][0]["finish_reason"] is None for e in events[:-1])
    # Usage is cumulative: on every chunk by default, growing, and the last one is the total.
    completion = [e["usage"]["completion_tokens"] for e in events]
    assert completion == sorted(completion)
    assert completion[0] == 0
    assert last["usage"] == full["usage"]
    assert all(e["usage"]["prompt_tokens"] == full["usage"]["prompt_tokens"] for e in events)


@pytest.mark.parametrize("mode", ["last", "none"])
def test_usage_modes(
    emulator: Emulator, http: httpx.Client, db_headers: dict[str, str], mode: str
) -> None:
    emulator.configure(usage_mode=mode)
    events, _ = stream(http, db_headers, INVOCATIONS, {"messages": user("Describe a rainbow")})
    with_usage = [e for e in events if "usage" in e]
    if mode == "none":
        assert with_usage == []
    else:
        assert with_usage == [events[-1]]
        assert events[-1]["usage"]["completion_tokens"] > 0


def test_stream_max_tokens_and_stop(http: httpx.Client, db_headers: dict[str, str]) -> None:
    body = {"messages": user("Tell me about the ocean tides"), "max_tokens": 2}
    events, done = stream(http, db_headers, INVOCATIONS, body)
    assert done
    assert events[-1]["choices"][0]["finish_reason"] == "length"
    assert events[-1]["usage"]["completion_tokens"] == 2
    full = non_stream(http, db_headers, INVOCATIONS, {"messages": user("Tell me about tides")})
    word = full["choices"][0]["message"]["content"].split()[1]
    events, _ = stream(
        http, db_headers, INVOCATIONS, {"messages": user("Tell me about tides"), "stop": [word]}
    )
    text = "".join(e["choices"][0]["delta"].get("content", "") for e in events)
    assert word not in text
    assert events[-1]["choices"][0]["finish_reason"] == "stop"


def test_stream_n_choices(http: httpx.Client, db_headers: dict[str, str]) -> None:
    events, _ = stream(http, db_headers, INVOCATIONS, {"messages": user("Hi"), "n": 2})
    indexes = {e["choices"][0]["index"] for e in events}
    assert indexes == {0, 1}
    finals = [e for e in events if e["choices"][0]["finish_reason"] is not None]
    assert [f["choices"][0]["index"] for f in finals] == [0, 1]


def test_stream_tool_call_fragments(http: httpx.Client, db_headers: dict[str, str]) -> None:
    body = {
        "messages": user("What's the weather in Paris in celsius for 3 days?"),
        "tools": [CALCULATOR_TOOL, WEATHER_TOOL],
    }
    events, done = stream(http, db_headers, INVOCATIONS, body)
    assert done
    full = non_stream(http, db_headers, INVOCATIONS, body)
    expected = full["choices"][0]["message"]["tool_calls"][0]["function"]
    deltas = [e["choices"][0]["delta"] for e in events]
    assert deltas[0] == {"role": "assistant", "content": ""}
    calls = [d["tool_calls"] for d in deltas if "tool_calls" in d]
    head = calls[0][0]
    assert head["index"] == 0
    assert head["id"].startswith("call_")
    assert head["type"] == "function"
    assert head["function"] == {"name": "get_weather", "arguments": ""}
    fragments = [c[0]["function"]["arguments"] for c in calls[1:]]
    assert len(fragments) >= 2
    assert all(c[0]["index"] == 0 and "id" not in c[0] for c in calls[1:])
    arguments = "".join(fragments)
    assert arguments == expected["arguments"]
    assert json.loads(arguments) == {"location": "Paris", "unit": "celsius", "days": 3}
    assert events[-1]["choices"][0]["finish_reason"] == "tool_calls"
    completion = [e["usage"]["completion_tokens"] for e in events]
    assert completion == sorted(completion)
    assert events[-1]["usage"] == full["usage"]


def test_stream_parallel_tool_calls_have_indexes(
    http: httpx.Client, db_headers: dict[str, str]
) -> None:
    tool = {
        "type": "function",
        "function": {
            "name": "get_weather",
            "parameters": {
                "type": "object",
                "properties": {"location": {"type": "string"}},
                "required": ["location"],
            },
        },
    }
    body = {"messages": user("What's the weather in Paris and London?"), "tools": [tool]}
    events, _ = stream(http, db_headers, INVOCATIONS, body)
    by_index: dict[int, str] = {}
    for event in events:
        for call in event["choices"][0]["delta"].get("tool_calls", []):
            by_index[call["index"]] = (
                by_index.get(call["index"], "") + call["function"]["arguments"]
            )
    assert {i: json.loads(a)["location"] for i, a in by_index.items()} == {0: "Paris", 1: "London"}


def test_completions_stream(http: httpx.Client, db_headers: dict[str, str]) -> None:
    body = {"model": DATABRICKS_CHAT, "prompt": "Tell me about the ocean tides"}
    events, done = stream(http, db_headers, COMPLETIONS, body)
    assert done
    full = non_stream(http, db_headers, COMPLETIONS, body)
    assert all(e["object"] == "text_completion" for e in events)
    text = "".join(e["choices"][0]["text"] for e in events)
    assert text == full["choices"][0]["text"]
    assert events[-1]["choices"][0]["finish_reason"] == "stop"
    assert events[-1]["usage"] == full["usage"]
    completion = [e["usage"]["completion_tokens"] for e in events]
    assert completion == sorted(completion)


def test_stream_delay(emulator: Emulator, http: httpx.Client, db_headers: dict[str, str]) -> None:
    emulator.configure(stream_delay_ms=20)
    started = time.perf_counter()
    events, _ = stream(http, db_headers, INVOCATIONS, {"messages": user("Hello")})
    elapsed = time.perf_counter() - started
    assert elapsed >= 0.02 * (len(events) - 1) * 0.9


def test_stream_is_reusable_connection(http: httpx.Client, db_headers: dict[str, str]) -> None:
    for _ in range(3):
        events, done = stream(http, db_headers, INVOCATIONS, {"messages": user("Hi")})
        assert done and events
    assert http.post(INVOCATIONS, headers=db_headers, json={"messages": user("Hi")}).is_success

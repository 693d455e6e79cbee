"""The emulator's Responses API, agent endpoints and workspace discovery documents, over HTTP."""

from __future__ import annotations

import json
from typing import Any

import httpx
import pytest

from sfmodels_emulator import Emulator

WEATHER = {"type": "function", "name": "get_weather", "description": "Weather of a city",
           "parameters": {"type": "object", "properties": {"city": {"type": "string"}},
                          "required": ["city"]}}


def post(http: httpx.Client, headers: dict[str, str], body: dict[str, Any],
         path: str = "/serving-endpoints/responses") -> httpx.Response:
    return http.post(path, json=body, headers=headers)


def events(response: httpx.Response) -> list[dict[str, Any]]:
    out = []
    for line in response.text.splitlines():
        if line.startswith("data: ") and line != "data: [DONE]":
            out.append(json.loads(line[len("data: "):]))
    return out


def test_a_response_has_reasoning_a_message_and_usage(
        http: httpx.Client, db_headers: dict[str, str]) -> None:
    reply = post(http, db_headers, {"model": "databricks-gpt-5", "input": "What is Delta Lake?",
                                    "instructions": "Be brief."})
    assert reply.status_code == 200
    body = reply.json()
    assert body["object"] == "response" and body["status"] == "completed"
    assert [item["type"] for item in body["output"]] == ["reasoning", "message"]
    assert body["output"][1]["content"][0]["text"]
    usage = body["usage"]
    assert usage["total_tokens"] == usage["input_tokens"] + usage["output_tokens"]
    assert usage["output_tokens_details"]["reasoning_tokens"] > 0


def test_tool_calls_and_results_round_trip(http: httpx.Client,
                                           db_headers: dict[str, str]) -> None:
    first = post(http, db_headers, {"model": "databricks-gpt-5-codex", "tools": [WEATHER],
                                    "tool_choice": "required",
                                    "input": [{"role": "user", "content": "Weather in Paris?"}]})
    call = next(item for item in first.json()["output"] if item["type"] == "function_call")
    assert call["name"] == "get_weather" and json.loads(call["arguments"]) == {"city": "Paris"}
    second = post(http, db_headers, {"model": "databricks-gpt-5-codex", "tools": [WEATHER],
                                     "input": [{"role": "user", "content": "Weather in Paris?"},
                                               call, {"type": "function_call_output",
                                                      "call_id": call["call_id"],
                                                      "output": "Sunny, 24C"}]})
    text = second.json()["output"][-1]["content"][0]["text"]
    assert "Sunny" in text


def test_max_output_tokens_makes_the_response_incomplete(
        http: httpx.Client, db_headers: dict[str, str]) -> None:
    body = post(http, db_headers, {"model": "databricks-gpt-5", "input": "Tell me a long story",
                                   "max_output_tokens": 2}).json()
    assert body["status"] == "incomplete"
    assert body["incomplete_details"] == {"reason": "max_output_tokens"}


@pytest.mark.parametrize(("body", "status", "text"), [
    ({"model": "databricks-gpt-5", "input": "hi", "stop": ["x"]}, 400, "Unknown parameter"),
    ({"model": "databricks-gpt-5", "input": "hi", "max_tokens": 5}, 400, "Unknown parameter"),
    ({"model": "databricks-gpt-5", "input": []}, 400, "non-empty list"),
    ({"model": "databricks-gpt-5", "input": "hi", "tools": [
        {"type": "function", "function": {"name": "f"}}]}, 400, "chat form"),
    ({"model": "databricks-meta-llama-3-3-70b-instruct", "input": "hi"}, 400,
     "does not support the Responses API"),
    ({"model": "no-such-endpoint", "input": "hi"}, 404, "does not exist"),
    ({"input": "hi"}, 400, "'model' is required"),
])
def test_bad_requests(http: httpx.Client, db_headers: dict[str, str], body: dict[str, Any],
                      status: int, text: str) -> None:
    reply = post(http, db_headers, body)
    assert reply.status_code == status
    assert text in reply.json()["message"]


def test_the_route_needs_credentials(http: httpx.Client, emulator: Emulator) -> None:
    assert post(http, {}, {"model": "databricks-gpt-5", "input": "hi"}).status_code == 401


def test_codex_serves_only_the_responses_api(http: httpx.Client,
                                             db_headers: dict[str, str]) -> None:
    chat = {"messages": [{"role": "user", "content": "hi"}]}
    reply = post(http, db_headers, chat, "/serving-endpoints/databricks-gpt-5-codex/invocations")
    assert reply.status_code == 400 and "only supports the Responses API" in reply.text
    gpt5 = post(http, db_headers, chat, "/serving-endpoints/databricks-gpt-5/invocations")
    assert gpt5.json()["choices"][0]["message"]["content"]
    native = post(http, db_headers, {"input": "hi"},
                  "/serving-endpoints/databricks-gpt-5-codex/invocations")
    assert native.json()["object"] == "response"


def test_a_stream_sends_openai_style_events(http: httpx.Client,
                                            db_headers: dict[str, str]) -> None:
    reply = post(http, db_headers, {"model": "databricks-gpt-5", "input": "What is Spark?",
                                    "stream": True})
    got = events(reply)
    kinds = [e["type"] for e in got]
    assert kinds[0] == "response.created" and kinds[-1] == "response.completed"
    assert [e["sequence_number"] for e in got] == list(range(len(got)))
    deltas = "".join(e["delta"] for e in got if e["type"] == "response.output_text.delta")
    final = got[-1]["response"]
    assert deltas == final["output"][-1]["content"][0]["text"]
    assert final["usage"]["total_tokens"] > 0


def test_an_agent_echoes_custom_inputs(http: httpx.Client, db_headers: dict[str, str]) -> None:
    custom = {"user_id": "u-1", "session": {"id": 7}}
    responses = post(http, db_headers, {"model": "agent-echo", "input": "hi",
                                        "custom_inputs": custom}).json()
    assert responses["custom_outputs"] == custom
    chat = post(http, db_headers, {"messages": [{"role": "user", "content": "hi"}],
                                   "custom_inputs": custom},
                "/serving-endpoints/agent-echo/invocations").json()
    assert chat["custom_outputs"] == custom
    openai = post(http, db_headers, {"model": "agent-echo", "custom_inputs": custom,
                                     "messages": [{"role": "user", "content": "hi"}]},
                  "/serving-endpoints/chat/completions").json()
    assert openai["custom_outputs"] == custom
    streamed = events(post(http, db_headers, {"model": "agent-echo", "input": "hi",
                                              "custom_inputs": custom, "stream": True}))
    assert {e["type"] for e in streamed} == {"response.output_text.delta",
                                             "response.output_item.done"}
    assert streamed[-1]["custom_outputs"] == custom


def test_workspace_discovery_documents(http: httpx.Client, emulator: Emulator) -> None:
    config = http.get("/.well-known/databricks-config").json()
    assert config["oidc_endpoint"] == f"{emulator.url}/oidc"
    oidc = http.get("/oidc/.well-known/oauth-authorization-server").json()
    assert oidc["token_endpoint"] == f"{emulator.url}/oidc/v1/token"

"""The emulator's real-world shapes on the wire: each mode, at start, per endpoint, at run time."""

from __future__ import annotations

import base64
import json
import subprocess
import sys
from array import array
from typing import Any

import httpx
import pytest

from sfmodels_emulator import Emulator
from sfmodels_emulator.catalogue import DATABRICKS_SHAPES, SALESFORCE_MODELS
from sfmodels_emulator.command import add_arguments, config_from_args
from sfmodels_emulator.limits import HOUR, MINUTE, Limits, RateWindows

from .payloads import DATABRICKS_CHAT, DATABRICKS_EMBEDDINGS, SALESFORCE_CHAT_MODEL, user
from .shapes import SALESFORCE_ERROR, assert_shape
from .test_streaming import read_events

API = "/einstein/platform/v1"
SF_CHAT = f"{API}/models/{SALESFORCE_CHAT_MODEL}/chat-generations"
WEATHER = {"type": "function", "function": {
    "name": "get_weather", "parameters": {"type": "object", "properties": {
        "city": {"type": "string"}}, "required": ["city"]}}}


def invocations(endpoint: str) -> str:
    return f"/serving-endpoints/{endpoint}/invocations"


def events(http: httpx.Client, headers: dict[str, str], endpoint: str,
           body: dict[str, Any]) -> list[dict[str, Any]]:
    with http.stream("POST", invocations(endpoint), headers=headers,
                     json={**body, "stream": True}) as response:
        assert response.status_code == 200, response.read()
        assert response.headers["content-type"] == "text/event-stream"
        found, done = read_events(response)
    assert done
    return found


def usage_chunks(found: list[dict[str, Any]]) -> list[dict[str, Any]]:
    return [e for e in found if "usage" in e]


# -- case 1 ---------------------------------------------------------------------------------------
def test_tool_call_deltas_without_index(http: httpx.Client, db_headers: dict[str, str],
                                        emulator: Emulator) -> None:
    body = {"messages": user("Weather in Paris and in Rome?"), "tools": [WEATHER]}
    indexed = [tc for e in events(http, db_headers, DATABRICKS_CHAT, body)
               for tc in e["choices"][0]["delta"].get("tool_calls", [])]
    assert indexed and all("index" in tc for tc in indexed)
    emulator.configure(tool_call_index=False)
    bare = [tc for e in events(http, db_headers, DATABRICKS_CHAT, body)
            for tc in e["choices"][0]["delta"].get("tool_calls", [])]
    assert bare and not any("index" in tc for tc in bare)
    starts = [tc for tc in bare if "id" in tc]
    assert [tc["function"]["name"] for tc in starts] == ["get_weather", "get_weather"]
    assert all(set(tc) == {"function"} for tc in bare if "id" not in tc)


# -- case 2 ---------------------------------------------------------------------------------------
def test_stream_format_json_answers_one_body(http: httpx.Client, db_headers: dict[str, str],
                                             emulator: Emulator) -> None:
    emulator.configure(stream_format="json")
    response = http.post(invocations(DATABRICKS_CHAT), headers=db_headers,
                         json={"messages": user("Hi there"), "stream": True})
    assert response.status_code == 200
    assert response.headers["content-type"] == "application/json"
    body = response.json()
    assert body["object"] == "chat.completion" and body["choices"][0]["message"]["content"]
    assert body["usage"]["total_tokens"] > 0


# -- case 3 ---------------------------------------------------------------------------------------
def test_usage_null_until_last(http: httpx.Client, db_headers: dict[str, str],
                               emulator: Emulator) -> None:
    emulator.configure(usage_mode="null_until_last")
    found = events(http, db_headers, DATABRICKS_CHAT, {"messages": user("Tell me about tides")})
    assert all("usage" in e for e in found)
    assert all(e["usage"]["completion_tokens"] is None for e in found[:-1])
    last = found[-1]["usage"]
    assert last["completion_tokens"] > 0
    assert last["total_tokens"] == last["prompt_tokens"] + last["completion_tokens"]


def test_usage_in_a_final_chunk_without_choices(http: httpx.Client, db_headers: dict[str, str],
                                                emulator: Emulator) -> None:
    emulator.configure(usage_mode="final_chunk")
    found = events(http, db_headers, DATABRICKS_CHAT, {"messages": user("Tell me about tides")})
    assert usage_chunks(found) == [found[-1]]
    assert found[-1]["choices"] == [] and found[-1]["usage"]["completion_tokens"] > 0
    assert found[-2]["choices"][0]["finish_reason"] == "stop"


def test_on_request_usage_follows_stream_options(http: httpx.Client,
                                                 db_headers: dict[str, str]) -> None:
    # "openai-gpt-4o" is an external-model endpoint: on_request is its own default.
    assert DATABRICKS_SHAPES["openai-gpt-4o"]["usage_mode"] == "on_request"
    body = {"messages": user("Tell me about tides")}
    assert usage_chunks(events(http, db_headers, "openai-gpt-4o", body)) == []
    off = {**body, "stream_options": {"include_usage": False}}
    assert usage_chunks(events(http, db_headers, "openai-gpt-4o", off)) == []
    asked = events(http, db_headers, "openai-gpt-4o",
                   {**body, "stream_options": {"include_usage": True}})
    assert usage_chunks(asked) == [asked[-1]] and asked[-1]["choices"] == []


@pytest.mark.parametrize("options", [[], {"include_usage": "yes"}])
def test_bad_stream_options_are_400(http: httpx.Client, db_headers: dict[str, str],
                                    options: Any) -> None:
    response = http.post(invocations(DATABRICKS_CHAT), headers=db_headers, json={
        "messages": user("hi"), "stream": True, "stream_options": options})
    assert response.status_code == 400
    assert "stream_options" in response.json()["message"]


def test_completion_streams_follow_the_usage_mode(http: httpx.Client,
                                                  db_headers: dict[str, str],
                                                  emulator: Emulator) -> None:
    emulator.configure_model(DATABRICKS_CHAT, usage_mode="final_chunk")
    found = events(http, db_headers, DATABRICKS_CHAT, {"prompt": "Once upon a time"})
    assert usage_chunks(found) == [found[-1]] and found[-1]["choices"] == []


# -- case 4 ---------------------------------------------------------------------------------------
def error_body(http: httpx.Client, headers: dict[str, str]) -> tuple[httpx.Response, Any]:
    response = http.post(invocations(DATABRICKS_CHAT), headers=headers,
                         json={"messages": user("hi"), "temperature": 9})
    assert response.status_code == 400
    return response, response.json()


def test_error_shapes(http: httpx.Client, db_headers: dict[str, str],
                      emulator: Emulator) -> None:
    _, plain = error_body(http, db_headers)
    assert set(plain) == {"error_code", "message"}
    emulator.configure(error_shape="external_model")
    _, wrapped = error_body(http, db_headers)
    inner = json.loads(wrapped["message"])
    assert wrapped["error_code"] == "BAD_REQUEST"
    assert inner["external_model_provider"] == "openai"
    assert inner["external_model_error"]["error"] == {
        "message": plain["message"], "type": "invalid_request_error", "param": None,
        "code": "invalid_value"}
    emulator.configure(error_shape="openai")
    _, openai = error_body(http, db_headers)
    assert openai == {"error": {"message": plain["message"], "type": "invalid_request_error",
                                "code": "invalid_value"}}
    emulator.configure(error_shape="details")
    response, detailed = error_body(http, db_headers)
    assert detailed["details"] == [{"@type": "type.googleapis.com/google.rpc.RequestInfo",
                                    "request_id": response.headers["x-request-id"],
                                    "serving_data": ""}]


def test_error_shape_per_endpoint_covers_faults(http: httpx.Client, db_headers: dict[str, str],
                                                emulator: Emulator) -> None:
    emulator.configure_model(DATABRICKS_CHAT, error_shape="openai")
    emulator.configure(fault_next=1, fault_kinds=["429"])
    response = http.post(invocations(DATABRICKS_CHAT), headers=db_headers,
                         json={"messages": user("hi")})
    assert response.status_code == 429
    assert response.json()["error"]["code"] == "rate_limit_exceeded"
    other = http.post(invocations("databricks-claude-sonnet-4-5"), headers=db_headers,
                      json={"messages": user("hi"), "temperature": 9})
    assert set(other.json()) == {"error_code", "message"}


# -- case 5 ---------------------------------------------------------------------------------------
def test_reasoning_parts(http: httpx.Client, db_headers: dict[str, str],
                         emulator: Emulator) -> None:
    emulator.configure(reasoning=True)
    body = {"messages": user("Why is the sky blue?")}
    content = http.post(invocations(DATABRICKS_CHAT), headers=db_headers,
                        json=body).json()["choices"][0]["message"]["content"]
    assert [part["type"] for part in content] == ["reasoning", "text"]
    assert content[0]["summary"][0]["type"] == "summary_text"
    assert "sky" in content[0]["summary"][0]["text"]
    streamed = events(http, db_headers, DATABRICKS_CHAT, body)
    deltas = [e["choices"][0]["delta"].get("content") for e in streamed if e["choices"]]
    parts = [d for d in deltas if isinstance(d, list)]
    assert parts and all(d[0]["type"] == "reasoning" for d in parts)
    text = "".join(d for d in deltas if isinstance(d, str))
    assert text == content[1]["text"]
    assert "".join(p[0]["summary"][0]["text"] for p in parts) == content[0]["summary"][0]["text"]


# -- case 6 ---------------------------------------------------------------------------------------
def test_max_inputs_before_429_is_separate_from_the_batch_limit(
        http: httpx.Client, db_headers: dict[str, str], emulator: Emulator) -> None:
    emulator.configure_model(DATABRICKS_EMBEDDINGS, embedding_max_inputs_429=15,
                             embedding_max_batch=20)
    path = invocations(DATABRICKS_EMBEDDINGS)
    for _ in range(2):  # every time, not once
        over = http.post(path, headers=db_headers, json={"input": ["x"] * 16})
        assert over.status_code == 429 and "retry-after" not in over.headers
        assert over.json()["error_code"] == "REQUEST_LIMIT_EXCEEDED"
    assert http.post(path, headers=db_headers, json={"input": ["x"] * 15}).status_code == 200
    assert http.post(path, headers=db_headers, json={"input": ["x"] * 21}).status_code == 429
    emulator.configure_model(DATABRICKS_EMBEDDINGS, embedding_max_inputs_429=None)
    assert http.post(path, headers=db_headers, json={"input": ["x"] * 21}).status_code == 400
    other = http.post(invocations("databricks-bge-large-en"), headers=db_headers,
                      json={"input": ["x"] * 16})
    assert other.status_code == 200  # the setting is per endpoint


# -- case 7 ---------------------------------------------------------------------------------------
def test_token_lifetimes_default_to_each_service(http: httpx.Client, emulator: Emulator) -> None:
    databricks = http.post("/oidc/v1/token", data={"grant_type": "client_credentials"},
                           auth=(emulator.databricks_client_id,
                                 emulator.databricks_client_secret)).json()
    assert databricks["expires_in"] == 3600
    emulator.configure(token_ttl_s=120)
    again = http.post("/oidc/v1/token", data={"grant_type": "client_credentials"},
                      auth=(emulator.databricks_client_id,
                            emulator.databricks_client_secret)).json()
    assert again["expires_in"] == 120


# -- case 8 ---------------------------------------------------------------------------------------
def test_salesforce_extra_fields(http: httpx.Client, sf_headers: dict[str, str],
                                 emulator: Emulator) -> None:
    plain = http.post(SF_CHAT, headers=sf_headers, json={"messages": user("hi")}).json()
    assert "provider" not in plain["generationDetails"]["parameters"]
    emulator.configure(extra_fields=True)
    body = http.post(SF_CHAT, headers=sf_headers, json={"messages": user("hi")}).json()
    generation = body["generationDetails"]["generations"][0]
    params = body["generationDetails"]["parameters"]
    assert params["provider"] == "OpenAI" and "refusal" in generation
    assert set(params["usage"]) >= {"completion_tokens_details", "prompt_tokens_details"}
    scores = [c["score"] for c in generation["contentQuality"]["scanToxicity"]["categories"]]
    assert len(scores) == 7 and any(type(s) is int for s in scores)
    claude = f"{API}/models/sfdc_ai__DefaultBedrockAnthropicClaude4Sonnet/generations"
    text = http.post(claude, headers=sf_headers, json={"prompt": "hi"}).json()
    assert len(text["generation"]["contentQuality"]["scanToxicity"]["categories"]) == 6


# -- case 9 ---------------------------------------------------------------------------------------
def test_423_fault_is_server_busy(http: httpx.Client, sf_headers: dict[str, str],
                                  db_headers: dict[str, str], emulator: Emulator) -> None:
    emulator.configure(fault_next=2, fault_kinds=["423"])
    busy = http.post(SF_CHAT, headers=sf_headers, json={"messages": user("hi")})
    assert busy.status_code == 423
    assert_shape(busy.json(), SALESFORCE_ERROR)
    assert busy.json()["message"] == "Server is busy and cannot process the request at this time"
    assert busy.json()["messageCode"] == "E42301"
    # Databricks documents no 423: the same fault is a 503 there.
    assert http.post(invocations(DATABRICKS_CHAT), headers=db_headers,
                     json={"messages": user("hi")}).status_code == 503
    assert http.post(SF_CHAT, headers=sf_headers, json={"messages": user("hi")}).status_code == 200


def test_fault_next_is_deterministic(http: httpx.Client, db_headers: dict[str, str],
                                     emulator: Emulator) -> None:
    emulator.configure(fault_next=3, fault_kinds=["500", "503"])
    statuses = [http.post(invocations(DATABRICKS_CHAT), headers=db_headers,
                          json={"messages": user("hi")}).status_code for _ in range(4)]
    assert statuses == [500, 503, 500, 200]
    assert emulator.settings()["fault_next"] == 0


# -- case 10 and issue 15 point 3 -----------------------------------------------------------------
@pytest.mark.parametrize(("mode", "content", "kind"), [
    ("json", b'{"message":"Feedback received, Thank you!"}', "application/json"),
    ("empty", b"", "application/json"),
    ("text", b"Accepted", "text/plain"),
])
def test_feedback_bodies_and_idempotent_storage(http: httpx.Client, sf_headers: dict[str, str],
                                                emulator: Emulator, mode: str, content: bytes,
                                                kind: str) -> None:
    emulator.configure(feedback_body=mode)
    body = {"id": "fb-1", "generationId": "gen-1", "feedback": "GOOD"}
    for attempt in range(3):
        response = http.post(f"{API}/feedback", headers=sf_headers,
                             json={**body, "feedbackText": f"try {attempt}"})
        assert response.status_code == 202
        assert response.content == content
        assert response.headers["content-type"] == kind
    stored = emulator.feedback()
    assert len(stored) == 1 and stored[0]["feedbackText"] == "try 0"
    counters = emulator.counters()
    assert counters["feedback"] == 1 and counters["feedback_repeats"] == 2
    http.post(f"{API}/feedback", headers=sf_headers, json={**body, "id": "fb-2"})
    assert [f["id"] for f in emulator.feedback()] == ["fb-1", "fb-2"]


# -- case 12 --------------------------------------------------------------------------------------
def test_salesforce_accepts_the_spec_content_type(http: httpx.Client,
                                                  sf_headers: dict[str, str]) -> None:
    response = http.post(SF_CHAT, content=json.dumps({"messages": user("hi")}).encode(),
                         headers={**sf_headers,
                                  "content-type": "application/json;charset=utf-8"})
    assert response.status_code == 200


# -- case 13 --------------------------------------------------------------------------------------
def test_catalogue_matches_the_supported_models_table() -> None:
    chat = {n for n, m in SALESFORCE_MODELS.items() if m.kind == "chat"}
    embedding = {n for n, m in SALESFORCE_MODELS.items() if m.kind == "embedding"}
    suffixes = {"BedrockAnthropicClaude3Haiku", "BedrockAnthropicClaude37Sonnet",
                "BedrockAnthropicClaude4Sonnet", "BedrockAnthropicClaude45Haiku",
                "BedrockAnthropicClaude45Sonnet", "BedrockAmazonNovaLite", "BedrockAmazonNovaPro",
                "GPT4Omni", "GPT4OmniMini", "OpenAIGPT4OmniMini", "GPT41", "GPT41Mini", "GPT5",
                "GPT5Mini", "GPT51", "O3", "O4Mini", "VertexAIGemini20Flash001",
                "VertexAIGemini20FlashLite001", "VertexAIGemini25Flash001",
                "VertexAIGemini25FlashLite001", "VertexAIGeminiPro25"}
    assert chat == {"sfdc_ai__Default" + s for s in suffixes}
    assert embedding == {"sfdc_ai__DefaultOpenAITextEmbeddingAda_002",
                         "sfdc_ai__DefaultAzureOpenAITextEmbeddingAda_002"}


@pytest.mark.parametrize(("model", "route", "body"), [
    ("sfdc_ai__DefaultOpenAITextEmbeddingAda_002", "chat-generations",
     {"messages": user("hi")}),
    ("sfdc_ai__DefaultOpenAITextEmbeddingAda_002", "generations", {"prompt": "hi"}),
    ("sfdc_ai__DefaultGPT5", "embeddings", {"input": ["hi"]}),
])
def test_wrong_kind_of_model_is_400(http: httpx.Client, sf_headers: dict[str, str], model: str,
                                    route: str, body: dict[str, Any]) -> None:
    response = http.post(f"{API}/models/{model}/{route}", headers=sf_headers, json=body)
    assert response.status_code == 400
    assert_shape(response.json(), SALESFORCE_ERROR)
    assert response.json()["errorCode"] == "INVALID_INPUT"


def test_retired_or_unknown_default_names_are_404(http: httpx.Client,
                                                  sf_headers: dict[str, str]) -> None:
    response = http.post(f"{API}/models/sfdc_ai__DefaultGPT35Turbo/chat-generations",
                         headers=sf_headers, json={"messages": user("hi")})
    assert response.status_code == 404


# -- case 14 --------------------------------------------------------------------------------------
def test_rate_limit_429_carries_the_error_body(http: httpx.Client, sf_headers: dict[str, str],
                                               emulator: Emulator) -> None:
    emulator.configure(rate_limit_rph=1)
    assert http.post(SF_CHAT, headers=sf_headers, json={"messages": user("hi")}).is_success
    limited = http.post(SF_CHAT, headers=sf_headers, json={"messages": user("hi")})
    assert limited.status_code == 429
    assert_shape(limited.json(), SALESFORCE_ERROR)
    assert 3500 < int(limited.headers["retry-after"]) <= 3600  # the hour window
    emulator.configure(rate_limit_retry_after=False)
    again = http.post(SF_CHAT, headers=sf_headers, json={"messages": user("hi")})
    assert again.status_code == 429 and "retry-after" not in again.headers


def test_feedback_has_a_window_of_its_own(http: httpx.Client, sf_headers: dict[str, str],
                                          emulator: Emulator) -> None:
    emulator.configure_model("feedback", rate_limit_rpm=1)
    body = {"id": "a", "generationId": "b"}
    assert http.post(f"{API}/feedback", headers=sf_headers, json=body).status_code == 202
    assert http.post(f"{API}/feedback", headers=sf_headers,
                     json={**body, "id": "c"}).status_code == 429
    assert http.post(SF_CHAT, headers=sf_headers, json={"messages": user("hi")}).is_success


def test_rate_windows_per_minute_and_hour() -> None:
    windows = RateWindows()
    limits = Limits(requests_per_minute=2, requests_per_hour=3)
    assert windows.admit("m", limits, 0.0) is None
    assert windows.admit("m", limits, 1.0) is None
    assert windows.admit("m", limits, 2.0) == 58  # the minute window is full until t=60
    assert windows.admit("m", limits, 61.0) is None
    assert windows.admit("m", limits, 62.0) == HOUR - 62  # three in the hour
    assert windows.admit("m", limits, HOUR + 0.5) is None
    assert windows.admit("other", limits, 2.0) is None


def test_token_windows_per_minute_and_hour() -> None:
    windows = RateWindows()
    limits = Limits(tokens_per_minute=100, tokens_per_hour=150)
    assert windows.admit("m", limits, 0.0) is None
    windows.charge("m", 60, limits, 0.0)
    assert windows.admit("m", limits, 1.0) is None
    windows.charge("m", 60, limits, 1.0)
    assert windows.admit("m", limits, 2.0) == 58  # 120 tokens in the minute
    assert windows.admit("m", limits, MINUTE + 1.5) is None
    windows.charge("m", 60, limits, MINUTE + 1.5)
    wait = windows.admit("m", limits, MINUTE + 2)  # 180 tokens in the hour
    assert wait == HOUR - (MINUTE + 2)


# -- switches: at start, per model, at run time, from the command line ----------------------------
def test_shapes_switch_at_start_and_per_model() -> None:
    with Emulator(usage_mode="none", model_settings={
            "databricks-gpt-5": {"usage_mode": "every"}},
            configured_models={"Acme_Model": SALESFORCE_CHAT_MODEL}) as emu:
        settings = emu.settings()
        assert settings["usage_mode"] == "none"
        assert settings["model_settings"] == {"databricks-gpt-5": {"usage_mode": "every"}}
        emu.configure_model("databricks-gpt-5", reasoning=True)
        emu.configure_model(DATABRICKS_CHAT, usage_mode="final_chunk")
        assert emu.settings()["model_settings"] == {
            "databricks-gpt-5": {"usage_mode": "every", "reasoning": True},
            DATABRICKS_CHAT: {"usage_mode": "final_chunk"}}
        emu.configure_model("databricks-gpt-5", usage_mode=None)
        assert emu.settings()["model_settings"]["databricks-gpt-5"] == {"reasoning": True}
        emu.reset()
        assert emu.settings()["model_settings"] == {"databricks-gpt-5": {"usage_mode": "every"}}


def test_model_settings_win_over_endpoint_defaults(http: httpx.Client,
                                                   db_headers: dict[str, str],
                                                   emulator: Emulator) -> None:
    body = {"messages": user("Tell me about tides")}
    gpt5 = events(http, db_headers, "databricks-gpt-5", body)
    assert gpt5[-1]["choices"] == []  # its own default: final_chunk
    emulator.configure(usage_mode="none")  # global: does not override an endpoint's own shape
    assert events(http, db_headers, "databricks-gpt-5", body)[-1]["choices"] == []
    emulator.configure_model("databricks-gpt-5", usage_mode="none")
    assert usage_chunks(events(http, db_headers, "databricks-gpt-5", body)) == []


def test_command_line_sets_shapes() -> None:
    import argparse

    parser = argparse.ArgumentParser()
    add_arguments(parser)
    args = parser.parse_args([
        "--usage-mode", "null_until_last", "--no-tool-call-index", "--stream-format", "json",
        "--reasoning", "--error-shape", "details", "--embedding-max-inputs-429", "16",
        "--extra-fields", "--feedback-body", "empty", "--rate-limit-rph", "150",
        "--rate-limit-tpm", "100000", "--rate-limit-tph", "750000", "--no-retry-after",
        "--model-setting", "databricks-gpt-5:usage_mode=none",
        "--model-setting", "databricks-gpt-5:embedding_max_batch=4",
        "--configured-model", f"Acme={SALESFORCE_CHAT_MODEL}"])
    settings = config_from_args(args).settings
    assert (settings.usage_mode, settings.tool_call_index, settings.stream_format) == (
        "null_until_last", False, "json")
    assert settings.reasoning and settings.extra_fields and not settings.rate_limit_retry_after
    assert (settings.rate_limit_rph, settings.rate_limit_tpm, settings.rate_limit_tph) == (
        150, 100000, 750000)
    assert settings.model_settings == {"databricks-gpt-5": {"usage_mode": "none",
                                                            "embedding_max_batch": 4}}
    assert settings.configured_models == {"Acme": SALESFORCE_CHAT_MODEL}
    assert settings.token_ttl_s is None


def test_process_mode_carries_the_shapes() -> None:
    with Emulator(mode="process", stream_format="json",
                  model_settings={DATABRICKS_CHAT: {"reasoning": True}}) as emu:
        settings = emu.settings()
    assert settings["stream_format"] == "json"
    assert settings["model_settings"] == {DATABRICKS_CHAT: {"reasoning": True}}


def test_help_lists_the_shapes() -> None:
    out = subprocess.run([sys.executable, "-m", "sfmodels_emulator", "--help"],
                         capture_output=True, text=True, check=True).stdout
    for flag in ("--no-tool-call-index", "--stream-format", "--error-shape",
                 "--embedding-max-inputs-429", "--no-retry-after", "--model-setting"):
        assert flag in out


def test_control_route_sets_shapes_per_model(http: httpx.Client, db_headers: dict[str, str],
                                             emulator: Emulator) -> None:
    response = http.post("/_emulator/config", json={
        "model_settings": {DATABRICKS_CHAT: {"stream_format": "json", "reasoning": True}}})
    assert response.status_code == 200
    answer = http.post(invocations(DATABRICKS_CHAT), headers=db_headers,
                       json={"messages": user("hi"), "stream": True})
    assert answer.headers["content-type"] == "application/json"
    assert answer.json()["choices"][0]["message"]["content"][0]["type"] == "reasoning"
    refused = http.post("/_emulator/config", json={"model_settings": {
        DATABRICKS_CHAT: {"feedback_body": "empty"}}})
    assert refused.status_code == 400 and "cannot be set per model" in refused.json()["message"]


def test_embedding_base64_honored_ignored_or_refused(
        http: httpx.Client, db_headers: dict[str, str], emulator: Emulator) -> None:
    def embed(**extra: Any) -> httpx.Response:
        return http.post(invocations(DATABRICKS_EMBEDDINGS), headers=db_headers,
                         json={"input": ["a cat", "a dog"], **extra})

    floats = [item["embedding"] for item in embed().json()["data"]]
    encoded = [item["embedding"] for item in embed(encoding_format="base64").json()["data"]]
    assert all(isinstance(v, str) for v in encoded)
    assert [array("f", base64.b64decode(v)).tolist() for v in encoded] == \
        [array("f", v).tolist() for v in floats]  # the same numbers, as float32
    assert embed(encoding_format="float").json()["data"][0]["embedding"] == floats[0]
    assert embed(encoding_format="binary").status_code == 400
    emulator.configure_model(DATABRICKS_EMBEDDINGS, embedding_base64="ignore")
    assert [item["embedding"] for item in embed(encoding_format="base64").json()["data"]] \
        == floats
    emulator.configure(embedding_base64="reject")  # the endpoint's own setting wins
    assert embed(encoding_format="base64").status_code == 200
    emulator.configure(model_settings={})
    refused = embed(encoding_format="base64")
    assert refused.status_code == 400 and "encoding_format" in refused.json()["message"]
    assert embed().status_code == 200

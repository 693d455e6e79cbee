"""Databricks serving endpoints as the emulator serves them (non-streaming)."""

from __future__ import annotations

import json
import math
import time
from typing import Any

import httpx
import pytest

from sfmodels_emulator import Emulator

from .payloads import CALCULATOR_TOOL, DATABRICKS_CHAT, DATABRICKS_EMBEDDINGS, WEATHER_TOOL, user
from .shapes import DATABRICKS_CHAT as CHAT_SHAPE
from .shapes import (
    DATABRICKS_COMPLETION,
    DATABRICKS_ERROR,
    DATABRICKS_TOKEN,
    OAUTH_ERROR,
    assert_shape,
)
from .shapes import DATABRICKS_EMBEDDINGS as EMBEDDINGS_SHAPE

INVOCATIONS = f"/serving-endpoints/{DATABRICKS_CHAT}/invocations"
EMBED_INVOCATIONS = f"/serving-endpoints/{DATABRICKS_EMBEDDINGS}/invocations"
CHAT = "/serving-endpoints/chat/completions"
COMPLETIONS = "/serving-endpoints/completions"
EMBEDDINGS = "/serving-endpoints/embeddings"
HELLO = {"messages": [{"role": "user", "content": "Hello"}]}


def chat(http: httpx.Client, headers: dict[str, str], **body: Any) -> httpx.Response:
    return http.post(CHAT, headers=headers, json={"model": DATABRICKS_CHAT, **body})


def check_against_schema(value: Any, schema: dict[str, Any]) -> None:
    """Enough of JSON-schema validation for the schemas used in these tests."""
    kind = schema.get("type")
    if "enum" in schema:
        assert value in schema["enum"]
    if kind == "object":
        assert isinstance(value, dict)
        for key in schema.get("required", []):
            assert key in value, f"missing required {key}"
        properties = schema.get("properties", {})
        if schema.get("additionalProperties") is False:
            assert set(value) <= set(properties)
        for key, sub in properties.items():
            if key in value:
                check_against_schema(value[key], sub)
    elif kind == "array":
        assert isinstance(value, list)
        for item in value:
            check_against_schema(item, schema.get("items", {}))
    elif kind == "string":
        assert isinstance(value, str)
    elif kind == "integer":
        assert isinstance(value, int) and not isinstance(value, bool)
    elif kind == "number":
        assert isinstance(value, (int, float)) and not isinstance(value, bool)
    elif kind == "boolean":
        assert isinstance(value, bool)
    if isinstance(value, (int, float)) and not isinstance(value, bool):
        if "minimum" in schema:
            assert value >= schema["minimum"]
        if "maximum" in schema:
            assert value <= schema["maximum"]


# ---- auth --------------------------------------------------------------------------------


def test_personal_access_token_works(http: httpx.Client, db_headers: dict[str, str]) -> None:
    assert http.post(INVOCATIONS, headers=db_headers, json=HELLO).status_code == 200


@pytest.mark.parametrize("authorization", [None, "Bearer", "Bearer dapi-nope", "Basic abc"])
def test_missing_or_invalid_bearer_is_401(http: httpx.Client, authorization: str | None) -> None:
    headers = {} if authorization is None else {"Authorization": authorization}
    response = http.post(INVOCATIONS, headers=headers, json=HELLO)
    assert response.status_code == 401
    body = response.json()
    assert_shape(body, DATABRICKS_ERROR)
    assert body["error_code"] == "UNAUTHENTICATED"


def test_oauth_token_with_basic_auth(emulator: Emulator, http: httpx.Client) -> None:
    response = http.post(
        "/oidc/v1/token",
        data={"grant_type": "client_credentials", "scope": "all-apis"},
        auth=(emulator.databricks_client_id, emulator.databricks_client_secret),
    )
    assert response.status_code == 200
    body = response.json()
    assert_shape(body, DATABRICKS_TOKEN)
    assert body["token_type"] == "Bearer"
    assert body["scope"] == "all-apis"
    assert body["expires_in"] == 3600  # M2M tokens live one hour
    headers = {"Authorization": f"Bearer {body['access_token']}"}
    assert http.post(INVOCATIONS, headers=headers, json=HELLO).status_code == 200
    counters = emulator.counters()
    assert counters["tokens_minted"]["databricks"] == 1
    assert counters["requests"]["databricks.token"] == 1


def test_oauth_token_with_form_credentials(emulator: Emulator, http: httpx.Client) -> None:
    form = {
        "grant_type": "client_credentials",
        "scope": "all-apis",
        "client_id": emulator.databricks_client_id,
        "client_secret": emulator.databricks_client_secret,
    }
    response = http.post("/oidc/v1/token", data=form)
    assert response.status_code == 200


@pytest.mark.parametrize(
    ("auth", "status", "error"),
    [
        (("wrong", "x"), 401, "invalid_client"),
        (None, 401, "invalid_client"),
    ],
)
def test_oauth_token_bad_credentials(
    http: httpx.Client, auth: tuple[str, str] | None, status: int, error: str
) -> None:
    response = http.post(
        "/oidc/v1/token",
        data={"grant_type": "client_credentials", "scope": "all-apis"},
        auth=auth or httpx.USE_CLIENT_DEFAULT,
    )
    assert response.status_code == status
    assert_shape(response.json(), OAUTH_ERROR)
    assert response.json()["error"] == error


def test_oauth_token_wrong_grant(emulator: Emulator, http: httpx.Client) -> None:
    response = http.post(
        "/oidc/v1/token",
        data={"grant_type": "password"},
        auth=(emulator.databricks_client_id, emulator.databricks_client_secret),
    )
    assert response.status_code == 400
    assert response.json()["error"] == "unsupported_grant_type"


def test_oauth_token_expiry_and_expire_tokens(
    emulator: Emulator, http: httpx.Client, db_headers: dict[str, str]
) -> None:
    emulator.configure(token_ttl_s=0.5)
    auth = (emulator.databricks_client_id, emulator.databricks_client_secret)
    form = {"grant_type": "client_credentials", "scope": "all-apis"}
    short = http.post("/oidc/v1/token", data=form, auth=auth).json()
    assert short["expires_in"] == 0.5  # fractions kept for short test lifetimes
    emulator.configure(token_ttl_s=3600)
    long = http.post("/oidc/v1/token", data=form, auth=auth).json()
    assert long["expires_in"] == 3600
    time.sleep(0.6)
    expired = http.post(
        INVOCATIONS, headers={"Authorization": f"Bearer {short['access_token']}"}, json=HELLO
    )
    assert expired.status_code == 401
    assert expired.json()["error_code"] == "UNAUTHENTICATED"
    live = {"Authorization": f"Bearer {long['access_token']}"}
    assert http.post(INVOCATIONS, headers=live, json=HELLO).status_code == 200
    emulator.expire_tokens()
    assert http.post(INVOCATIONS, headers=live, json=HELLO).status_code == 401
    # The personal access token is not an issued OAuth token: it keeps working.
    assert http.post(INVOCATIONS, headers=db_headers, json=HELLO).status_code == 200


# ---- routing -----------------------------------------------------------------------------


def test_unknown_endpoint_is_404(http: httpx.Client, db_headers: dict[str, str]) -> None:
    expected = {
        "error_code": "RESOURCE_DOES_NOT_EXIST",
        "message": "The given endpoint does not exist, please retry after checking the specified "
        "model and version deployment exists.",
    }
    response = http.post("/serving-endpoints/nope/invocations", headers=db_headers, json=HELLO)
    assert response.status_code == 404
    assert response.json() == expected
    response = http.post(CHAT, headers=db_headers, json={**HELLO, "model": "nope"})
    assert response.status_code == 404
    assert response.json() == expected


def test_unknown_path_is_404(http: httpx.Client, db_headers: dict[str, str]) -> None:
    response = http.post("/serving-endpoints/a/b/c", headers=db_headers, json=HELLO)
    assert response.status_code == 404
    assert_shape(response.json(), DATABRICKS_ERROR)


def test_openai_routes_need_a_model(http: httpx.Client, db_headers: dict[str, str]) -> None:
    response = http.post(CHAT, headers=db_headers, json=HELLO)
    assert response.status_code == 400
    assert response.json()["error_code"] == "BAD_REQUEST"


@pytest.mark.parametrize(
    ("path", "body"),
    [
        (EMBED_INVOCATIONS, HELLO),
        (EMBED_INVOCATIONS, {"prompt": "hi"}),
        (INVOCATIONS, {"input": ["hi"]}),
        (CHAT, {**HELLO, "model": DATABRICKS_EMBEDDINGS}),
        (EMBEDDINGS, {"input": "hi", "model": DATABRICKS_CHAT}),
        (INVOCATIONS, {"inputs": ["hi"]}),
    ],
)
def test_wrong_task_for_endpoint_is_400(
    http: httpx.Client, db_headers: dict[str, str], path: str, body: dict[str, Any]
) -> None:
    response = http.post(path, headers=db_headers, json=body)
    assert response.status_code == 400
    assert response.json()["error_code"] == "BAD_REQUEST"


@pytest.mark.parametrize(
    "endpoint",
    [
        "databricks-meta-llama-3-3-70b-instruct",
        "databricks-claude-sonnet-4-5",
        "databricks-gpt-oss-120b",
        "databricks-llama-4-maverick",
        "databricks-gemini-2-5-pro",
    ],
)
def test_chat_endpoints(http: httpx.Client, db_headers: dict[str, str], endpoint: str) -> None:
    response = http.post(
        f"/serving-endpoints/{endpoint}/invocations", headers=db_headers, json=HELLO
    )
    assert response.status_code == 200
    body = response.json()
    assert_shape(body, CHAT_SHAPE)
    assert body["model"] != endpoint
    assert body["model"]


# ---- chat --------------------------------------------------------------------------------


def test_chat_response_shape(
    emulator: Emulator, http: httpx.Client, db_headers: dict[str, str]
) -> None:
    response = chat(http, db_headers, messages=user("Tell me about penguins"))
    assert response.status_code == 200
    body = response.json()
    assert_shape(body, CHAT_SHAPE)
    assert body["object"] == "chat.completion"
    assert body["model"] == "meta-llama-3.3-70b-instruct-121024"
    choice = body["choices"][0]
    assert choice["message"]["role"] == "assistant"
    assert "penguins" in choice["message"]["content"]
    assert choice["finish_reason"] == "stop"
    usage = body["usage"]
    assert usage["prompt_tokens"] == 4
    assert usage["total_tokens"] == usage["prompt_tokens"] + usage["completion_tokens"]
    assert emulator.counters()["requests"]["databricks.chat"] == 1


def test_chat_accepts_content_parts_and_tool_history(
    http: httpx.Client, db_headers: dict[str, str]
) -> None:
    messages = [
        {"role": "system", "content": [{"type": "text", "text": "Be brief."}]},
        {"role": "user", "content": [{"type": "text", "text": "What is 1 + 2"}]},
        {
            "role": "assistant",
            "content": None,
            "tool_calls": [
                {
                    "id": "abc123",
                    "type": "function",
                    "function": {"name": "my_adder_tool", "arguments": '{"a": 1, "b": 2}'},
                }
            ],
        },
        {"role": "tool", "tool_call_id": "abc123", "content": '{"result": 3}'},
    ]
    response = chat(http, db_headers, messages=messages, extra_field={"ignored": True})
    assert response.status_code == 200
    content = response.json()["choices"][0]["message"]["content"]
    assert '{"result": 3}' in content


@pytest.mark.parametrize(
    ("body", "fragment"),
    [
        ({}, "messages"),
        ({"messages": []}, "messages"),
        ({"messages": "hi"}, "messages"),
        ({"messages": [{"role": "robot", "content": "x"}]}, "role"),
        ({"messages": [{"role": "user"}]}, "content"),
        ({"messages": [{"role": "user", "content": 5}]}, "content"),
        ({"messages": [{"role": "user", "content": [{"type": "audio"}]}]}, "type"),
        ({"messages": [{"role": "tool", "content": "x"}]}, "tool_call_id"),
        ({"messages": [{"role": "user", "content": "x", "tool_calls": []}]}, "tool_calls"),
        ({**HELLO, "temperature": 2.5}, "temperature"),
        ({**HELLO, "temperature": "hot"}, "temperature"),
        ({**HELLO, "top_p": 0}, "top_p"),
        ({**HELLO, "top_k": 0}, "top_k"),
        ({**HELLO, "n": 6}, "n"),
        ({**HELLO, "n": 0}, "n"),
        ({**HELLO, "max_tokens": 0}, "max_tokens"),
        ({**HELLO, "max_tokens": 1.5}, "max_tokens"),
        ({**HELLO, "stop": 5}, "stop"),
        ({**HELLO, "stream": "yes"}, "stream"),
        ({**HELLO, "tools": [WEATHER_TOOL] * 33}, "tools"),
        ({**HELLO, "tools": [{"type": "function"}]}, "tools[0]"),
        ({**HELLO, "tools": [{"type": "function", "function": {"name": "a b"}}]}, "name"),
        ({**HELLO, "tool_choice": "required"}, "tool_choice"),
        ({**HELLO, "tools": [WEATHER_TOOL], "tool_choice": "sometimes"}, "tool_choice"),
        (
            {
                **HELLO,
                "tools": [WEATHER_TOOL],
                "tool_choice": {"type": "function", "function": {"name": "other"}},
            },
            "other",
        ),
        ({**HELLO, "response_format": {"type": "xml"}}, "response_format"),
        ({**HELLO, "response_format": {"type": "json_schema"}}, "json_schema"),
    ],
)
def test_invalid_chat_bodies_are_400(
    http: httpx.Client, db_headers: dict[str, str], body: dict[str, Any], fragment: str
) -> None:
    response = http.post(INVOCATIONS, headers=db_headers, json=body)
    assert response.status_code == 400, response.text
    error = response.json()
    assert_shape(error, DATABRICKS_ERROR)
    assert error["error_code"] == "BAD_REQUEST"
    assert fragment in error["message"]


@pytest.mark.parametrize("raw", [b"", b"{oops", b'"text"'])
def test_malformed_json_is_400(http: httpx.Client, db_headers: dict[str, str], raw: bytes) -> None:
    headers = {**db_headers, "content-type": "application/json"}
    response = http.post(INVOCATIONS, headers=headers, content=raw)
    assert response.status_code == 400
    assert response.json()["error_code"] == "BAD_REQUEST"


def test_valid_sampling_parameters_are_accepted(
    http: httpx.Client, db_headers: dict[str, str]
) -> None:
    response = chat(
        http,
        db_headers,
        messages=user("Hello"),
        temperature=0,
        top_p=0.9,
        top_k=40,
        max_tokens=100,
        stop=[],
        n=1,
    )
    assert response.status_code == 200


def test_n_choices(http: httpx.Client, db_headers: dict[str, str]) -> None:
    body = chat(http, db_headers, messages=user("Describe the moon"), n=3).json()
    assert [c["index"] for c in body["choices"]] == [0, 1, 2]
    single = chat(http, db_headers, messages=user("Describe the moon")).json()
    assert body["usage"]["completion_tokens"] == 3 * single["usage"]["completion_tokens"]


def test_max_tokens_cuts_with_length(http: httpx.Client, db_headers: dict[str, str]) -> None:
    full = chat(http, db_headers, messages=user("Tell me about volcanoes and glaciers")).json()
    text = full["choices"][0]["message"]["content"]
    cut = chat(
        http, db_headers, messages=user("Tell me about volcanoes and glaciers"), max_tokens=3
    )
    body = cut.json()
    assert body["choices"][0]["finish_reason"] == "length"
    assert body["usage"]["completion_tokens"] == 3
    assert text.startswith(body["choices"][0]["message"]["content"])
    roomy = chat(
        http, db_headers, messages=user("Tell me about volcanoes and glaciers"), max_tokens=500
    ).json()
    assert roomy["choices"][0]["finish_reason"] == "stop"


def test_stop_sequence_cuts(http: httpx.Client, db_headers: dict[str, str]) -> None:
    full = chat(http, db_headers, messages=user("Tell me about volcanoes")).json()
    text = full["choices"][0]["message"]["content"]
    word = text.split()[2]
    body = chat(http, db_headers, messages=user("Tell me about volcanoes"), stop=[word]).json()
    choice = body["choices"][0]
    assert choice["finish_reason"] == "stop"
    assert choice["message"]["content"] == text[: text.index(word)]
    assert word not in choice["message"]["content"]
    as_string = chat(http, db_headers, messages=user("Tell me about volcanoes"), stop=word).json()
    assert as_string["choices"][0]["message"]["content"] == choice["message"]["content"]


def test_rag_answer_is_grounded(http: httpx.Client, db_headers: dict[str, str]) -> None:
    system = (
        "You are an assistant for question-answering tasks. Use the following pieces of "
        "retrieved context to answer the question.\n\n"
        "Mount Everest is 8,849 metres tall.\n"
        "The Nile is the longest river in Africa.\n"
        "Canberra is the capital city of Australia."
    )
    messages = [
        {"role": "system", "content": system},
        {"role": "user", "content": "What is the capital of Australia?"},
    ]
    body = chat(http, db_headers, messages=messages).json()
    assert body["choices"][0]["message"]["content"] == "Canberra is the capital city of Australia."


# ---- tools -------------------------------------------------------------------------------


def tool_calls(body: dict[str, Any]) -> list[dict[str, Any]]:
    message = body["choices"][0]["message"]
    calls: list[dict[str, Any]] = message.get("tool_calls") or []
    return calls


def test_tool_call_when_prompt_asks(http: httpx.Client, db_headers: dict[str, str]) -> None:
    body = chat(
        http,
        db_headers,
        messages=user("What's the weather in Paris in celsius for 3 days?"),
        tools=[CALCULATOR_TOOL, WEATHER_TOOL],
    ).json()
    assert_shape(body, CHAT_SHAPE)
    choice = body["choices"][0]
    assert choice["finish_reason"] == "tool_calls"
    assert choice["message"]["content"] in (None, "")
    [call] = tool_calls(body)
    assert call["type"] == "function"
    assert call["id"]
    assert call["function"]["name"] == "get_weather"
    arguments = json.loads(call["function"]["arguments"])
    check_against_schema(arguments, WEATHER_TOOL["function"]["parameters"])
    assert arguments == {"location": "Paris", "unit": "celsius", "days": 3}


def test_numbers_from_prompt_fill_number_parameters(
    http: httpx.Client, db_headers: dict[str, str]
) -> None:
    body = chat(
        http,
        db_headers,
        messages=user("Please multiply 6 by 7.5"),
        tools=[WEATHER_TOOL, CALCULATOR_TOOL],
    ).json()
    [call] = tool_calls(body)
    assert call["function"]["name"] == "multiply"
    assert json.loads(call["function"]["arguments"]) == {"a": 6, "b": 7.5}


def test_no_tool_call_for_unrelated_prompt(http: httpx.Client, db_headers: dict[str, str]) -> None:
    body = chat(http, db_headers, messages=user("Hello!"), tools=[WEATHER_TOOL]).json()
    assert tool_calls(body) == []
    assert body["choices"][0]["finish_reason"] == "stop"
    assert body["choices"][0]["message"]["content"]


def test_tool_choice_none_never_calls(http: httpx.Client, db_headers: dict[str, str]) -> None:
    body = chat(
        http,
        db_headers,
        messages=user("What's the weather in Paris?"),
        tools=[WEATHER_TOOL],
        tool_choice="none",
    ).json()
    assert tool_calls(body) == []


def test_tool_choice_required_always_calls(http: httpx.Client, db_headers: dict[str, str]) -> None:
    body = chat(
        http, db_headers, messages=user("Hello!"), tools=[WEATHER_TOOL], tool_choice="required"
    ).json()
    [call] = tool_calls(body)
    assert call["function"]["name"] == "get_weather"
    check_against_schema(
        json.loads(call["function"]["arguments"]),
        WEATHER_TOOL["function"]["parameters"],
    )


def test_tool_choice_named_function(http: httpx.Client, db_headers: dict[str, str]) -> None:
    body = chat(
        http,
        db_headers,
        messages=user("What's the weather in Paris?"),
        tools=[WEATHER_TOOL, CALCULATOR_TOOL],
        tool_choice={"type": "function", "function": {"name": "multiply"}},
    ).json()
    [call] = tool_calls(body)
    assert call["function"]["name"] == "multiply"
    arguments = json.loads(call["function"]["arguments"])
    check_against_schema(arguments, CALCULATOR_TOOL["function"]["parameters"])


def test_tool_without_parameters(http: httpx.Client, db_headers: dict[str, str]) -> None:
    tool = {
        "type": "function",
        "function": {
            "name": "magic_function_no_args",
            "description": "Calculate a magic function.",
        },
    }
    body = chat(
        http,
        db_headers,
        messages=user("What is the value of magic_function_no_args()? Use the tool."),
        tools=[tool],
    ).json()
    [call] = tool_calls(body)
    assert json.loads(call["function"]["arguments"]) == {}


def test_parallel_tool_calls(http: httpx.Client, db_headers: dict[str, str]) -> None:
    tool = {
        "type": "function",
        "function": {
            "name": "get_weather",
            "description": "Get weather at a location.",
            "parameters": {
                "type": "object",
                "properties": {"location": {"type": "string"}},
                "required": ["location"],
            },
        },
    }
    body = chat(
        http, db_headers, messages=user("What's the weather in Paris and London?"), tools=[tool]
    ).json()
    calls = tool_calls(body)
    assert [json.loads(c["function"]["arguments"])["location"] for c in calls] == [
        "Paris",
        "London",
    ]
    assert len({c["id"] for c in calls}) == 2


def test_answer_after_tool_result(http: httpx.Client, db_headers: dict[str, str]) -> None:
    first = chat(
        http, db_headers, messages=user("What's the weather in Paris?"), tools=[WEATHER_TOOL]
    ).json()
    [call] = tool_calls(first)
    messages = [
        *user("What's the weather in Paris?"),
        {"role": "assistant", "content": "", "tool_calls": [call]},
        {"role": "tool", "tool_call_id": call["id"], "content": "18 degrees and cloudy"},
    ]
    body = chat(http, db_headers, messages=messages, tools=[WEATHER_TOOL]).json()
    choice = body["choices"][0]
    assert choice["finish_reason"] == "stop"
    assert "18 degrees and cloudy" in choice["message"]["content"]
    assert "tool_calls" not in choice["message"]


def test_tool_arguments_follow_nested_schemas(
    http: httpx.Client, db_headers: dict[str, str]
) -> None:
    schema = {
        "type": "object",
        "$defs": {
            "Item": {
                "type": "object",
                "properties": {"sku": {"type": "string"}, "quantity": {"type": "integer"}},
                "required": ["sku", "quantity"],
            }
        },
        "properties": {
            "customer": {"type": "string"},
            "express": {"type": "boolean"},
            "items": {"type": "array", "items": {"$ref": "#/$defs/Item"}, "minItems": 1},
            "priority": {"anyOf": [{"type": "integer"}, {"type": "null"}]},
        },
        "required": ["customer", "express", "items"],
    }
    tool = {
        "type": "function",
        "function": {"name": "place_order", "description": "Place an order.", "parameters": schema},
    }
    body = chat(
        http,
        db_headers,
        messages=user('Place an order for "ACME Corp": 4 units of "WIDGET-9"'),
        tools=[tool],
    ).json()
    [call] = tool_calls(body)
    arguments = json.loads(call["function"]["arguments"])
    assert arguments["customer"] == "ACME Corp"
    assert arguments["items"] == [{"sku": "WIDGET-9", "quantity": 4}]
    assert isinstance(arguments["express"], bool)


# ---- structured output -------------------------------------------------------------------


def test_json_schema_response_format(http: httpx.Client, db_headers: dict[str, str]) -> None:
    schema = {
        "type": "object",
        "properties": {
            "name": {"type": "string"},
            "age": {"type": "integer"},
            "city": {"type": "string"},
            "member": {"type": "boolean"},
            "interests": {"type": "array", "items": {"type": "string"}},
        },
        "required": ["name", "age", "city", "member", "interests"],
        "additionalProperties": False,
    }
    body = chat(
        http,
        db_headers,
        messages=user("Maria Lopez is 41 and lives in Madrid."),
        response_format={
            "type": "json_schema",
            "json_schema": {"name": "person", "schema": schema, "strict": True},
        },
    ).json()
    value = json.loads(body["choices"][0]["message"]["content"])
    check_against_schema(value, schema)
    assert value["name"] == "Maria Lopez"
    assert value["age"] == 41
    assert value["city"] == "Madrid"


def test_json_object_response_format(http: httpx.Client, db_headers: dict[str, str]) -> None:
    prompt = (
        "Tell me a joke about cats. Return the result as a JSON with 'setup' and "
        "'punchline' keys. Return nothing other than JSON."
    )
    body = chat(
        http, db_headers, messages=user(prompt), response_format={"type": "json_object"}
    ).json()
    value = json.loads(body["choices"][0]["message"]["content"])
    assert set(value) == {"setup", "punchline"}
    plain = chat(
        http, db_headers, messages=user("Hello"), response_format={"type": "json_object"}
    ).json()
    assert isinstance(json.loads(plain["choices"][0]["message"]["content"]), dict)


# ---- completions -------------------------------------------------------------------------


def test_completions(emulator: Emulator, http: httpx.Client, db_headers: dict[str, str]) -> None:
    response = http.post(
        COMPLETIONS,
        headers=db_headers,
        json={"model": DATABRICKS_CHAT, "prompt": "Tell me a story"},
    )
    assert response.status_code == 200
    body = response.json()
    assert_shape(body, DATABRICKS_COMPLETION)
    assert body["object"] == "text_completion"
    assert body["choices"][0]["text"]
    assert body["usage"]["prompt_tokens"] == 4
    assert emulator.counters()["requests"]["databricks.completions"] == 1


def test_completions_prompt_list_n_and_max_tokens(
    http: httpx.Client, db_headers: dict[str, str]
) -> None:
    body = http.post(
        INVOCATIONS,
        headers=db_headers,
        json={
            "prompt": ["Tell me about rivers", "Tell me about mountains"],
            "n": 2,
            "max_tokens": 2,
        },
    ).json()
    assert [c["index"] for c in body["choices"]] == [0, 1, 2, 3]
    assert all(c["finish_reason"] == "length" for c in body["choices"])
    assert body["usage"]["completion_tokens"] == 8


@pytest.mark.parametrize("prompt", [[], 5, [1, 2], None])
def test_invalid_prompt_is_400(http: httpx.Client, db_headers: dict[str, str], prompt: Any) -> None:
    response = http.post(
        COMPLETIONS, headers=db_headers, json={"model": DATABRICKS_CHAT, "prompt": prompt}
    )
    assert response.status_code == 400
    assert response.json()["error_code"] == "BAD_REQUEST"


# ---- embeddings --------------------------------------------------------------------------


@pytest.mark.parametrize("endpoint", ["databricks-gte-large-en", "databricks-bge-large-en"])
def test_embeddings_shape_and_dimensions(
    http: httpx.Client, db_headers: dict[str, str], endpoint: str
) -> None:
    response = http.post(
        EMBEDDINGS, headers=db_headers, json={"model": endpoint, "input": ["one text", "two"]}
    )
    assert response.status_code == 200
    body = response.json()
    assert_shape(body, EMBEDDINGS_SHAPE)
    assert body["object"] == "list"
    assert body["model"] != endpoint
    assert [d["index"] for d in body["data"]] == [0, 1]
    for item in body["data"]:
        assert item["object"] == "embedding"
        assert len(item["embedding"]) == 1024
        assert math.isclose(math.fsum(x * x for x in item["embedding"]), 1.0, rel_tol=1e-6)
    assert body["usage"] == {"prompt_tokens": 3, "total_tokens": 3}


def test_embeddings_single_string_and_instruction(
    emulator: Emulator, http: httpx.Client, db_headers: dict[str, str]
) -> None:
    body = http.post(
        EMBED_INVOCATIONS,
        headers=db_headers,
        json={
            "input": "where do penguins live",
            "instruction": "Represent this sentence for searching relevant passages:",
        },
    ).json()
    assert len(body["data"]) == 1
    plain = http.post(
        EMBED_INVOCATIONS, headers=db_headers, json={"input": "where do penguins live"}
    ).json()
    assert plain["data"][0]["embedding"] == body["data"][0]["embedding"]
    assert emulator.counters()["requests"]["databricks.invocations"] == 2


def test_embedding_similarity(http: httpx.Client, db_headers: dict[str, str]) -> None:
    texts = [
        "Penguins live in the Southern Hemisphere, mostly in Antarctica.",
        "Where do penguins live?",
        "The stock market closed higher on Friday.",
    ]
    body = http.post(EMBED_INVOCATIONS, headers=db_headers, json={"input": texts}).json()
    doc, query, other = (d["embedding"] for d in body["data"])

    def cos(a: list[float], b: list[float]) -> float:
        return sum(x * y for x, y in zip(a, b, strict=True))

    assert cos(doc, query) > cos(doc, other)
    assert cos(doc, query) > 0.3
    assert abs(cos(doc, other)) < 0.2


def test_embeddings_batch_limit(
    emulator: Emulator, http: httpx.Client, db_headers: dict[str, str]
) -> None:
    ok = http.post(EMBED_INVOCATIONS, headers=db_headers, json={"input": ["x"] * 150})
    assert ok.status_code == 200
    response = http.post(EMBED_INVOCATIONS, headers=db_headers, json={"input": ["x"] * 151})
    assert response.status_code == 400
    body = response.json()
    assert body["error_code"] == "BAD_REQUEST"
    assert "150" in body["message"]
    emulator.configure(embedding_max_batch=2)
    response = http.post(EMBED_INVOCATIONS, headers=db_headers, json={"input": ["x"] * 3})
    assert response.status_code == 400
    assert "2" in response.json()["message"]


@pytest.mark.parametrize("value", [[], 5, [1], None, [["nested"]]])
def test_invalid_embedding_input_is_400(
    http: httpx.Client, db_headers: dict[str, str], value: Any
) -> None:
    response = http.post(
        EMBEDDINGS, headers=db_headers, json={"model": DATABRICKS_EMBEDDINGS, "input": value}
    )
    assert response.status_code == 400


def test_bad_instruction_is_400(http: httpx.Client, db_headers: dict[str, str]) -> None:
    response = http.post(
        EMBED_INVOCATIONS, headers=db_headers, json={"input": "x", "instruction": 1}
    )
    assert response.status_code == 400

"""The Salesforce Models API as the emulator serves it: tokens, auth, routes, shapes, errors."""

from __future__ import annotations

import base64
import json
import math
import time
import uuid
from typing import Any

import httpx
import pytest

from sfmodels_emulator import Emulator

from .payloads import SALESFORCE_CHAT_MODEL, SALESFORCE_EMBEDDING_MODEL
from .shapes import (
    OAUTH_ERROR,
    SALESFORCE_CHAT,
    SALESFORCE_EMBEDDINGS,
    SALESFORCE_ERROR,
    SALESFORCE_GENERATION,
    SALESFORCE_TOKEN,
    assert_shape,
)

API = "/einstein/platform/v1"
CHAT = f"{API}/models/{SALESFORCE_CHAT_MODEL}/chat-generations"
GENERATIONS = f"{API}/models/{SALESFORCE_CHAT_MODEL}/generations"
EMBEDDINGS = f"{API}/models/{SALESFORCE_EMBEDDING_MODEL}/embeddings"
FEEDBACK = f"{API}/feedback"
HELLO = {"messages": [{"role": "user", "content": "Hello"}]}


def token_form(emulator: Emulator, **overrides: str) -> dict[str, str]:
    form = {
        "grant_type": "client_credentials",
        "client_id": emulator.salesforce_client_id,
        "client_secret": emulator.salesforce_client_secret,
    }
    form.update(overrides)
    return form


def jwt_claims(token: str) -> dict[str, Any]:
    parts = token.split(".")
    assert len(parts) == 3
    payload = parts[1] + "=" * (-len(parts[1]) % 4)
    claims: dict[str, Any] = json.loads(base64.urlsafe_b64decode(payload))
    return claims


def cosine(a: list[float], b: list[float]) -> float:
    return sum(x * y for x, y in zip(a, b, strict=True))


# ---- tokens ------------------------------------------------------------------------------


def test_token_success_has_documented_shape(emulator: Emulator, http: httpx.Client) -> None:
    before = time.time()
    response = http.post("/services/oauth2/token", data=token_form(emulator))
    assert response.status_code == 200
    body = response.json()
    assert_shape(body, SALESFORCE_TOKEN)
    assert "expires_in" not in body
    assert body["token_type"] == "Bearer"
    assert body["token_format"] == "jwt"
    assert body["scope"] == "sfap_api api"
    assert body["instance_url"] == emulator.url
    assert body["api_instance_url"] == emulator.url
    issued_ms = int(body["issued_at"])
    assert before * 1000 - 1000 <= issued_ms <= time.time() * 1000 + 1000
    claims = jwt_claims(body["access_token"])
    assert claims["exp"] - claims["iat"] in (1799, 1800, 1801)
    assert abs(claims["iat"] - before) < 5
    assert emulator.counters()["tokens_minted"]["salesforce"] == 1
    assert emulator.counters()["requests"]["salesforce.token"] == 1


def test_token_accepts_basic_auth(emulator: Emulator, http: httpx.Client) -> None:
    response = http.post(
        "/services/oauth2/token",
        data={"grant_type": "client_credentials"},
        auth=(emulator.salesforce_client_id, emulator.salesforce_client_secret),
    )
    assert response.status_code == 200


@pytest.mark.parametrize(
    ("overrides", "error", "description"),
    [
        ({"client_id": "wrong"}, "invalid_client_id", "client identifier invalid"),
        ({"client_secret": "wrong"}, "invalid_client", "invalid client credentials"),
        ({"grant_type": "password"}, "unsupported_grant_type", None),
    ],
)
def test_token_failures(
    emulator: Emulator,
    http: httpx.Client,
    overrides: dict[str, str],
    error: str,
    description: str | None,
) -> None:
    response = http.post("/services/oauth2/token", data=token_form(emulator, **overrides))
    assert response.status_code == 400
    body = response.json()
    assert_shape(body, OAUTH_ERROR)
    assert body["error"] == error
    if description is not None:
        assert body["error_description"] == description
    assert emulator.counters()["tokens_minted"]["salesforce"] == 0


def test_login_url_refuses_client_credentials(emulator: Emulator, http: httpx.Client) -> None:
    assert emulator.salesforce_login_url.startswith(emulator.url)
    response = httpx.post(
        emulator.salesforce_login_url + "/services/oauth2/token", data=token_form(emulator)
    )
    assert response.status_code == 400
    assert response.json() == {
        "error": "invalid_grant",
        "error_description": "request not supported on this domain",
    }


def test_minted_token_works_and_expires_with_ttl(emulator: Emulator, http: httpx.Client) -> None:
    emulator.configure(token_ttl_s=0.3)
    token = http.post("/services/oauth2/token", data=token_form(emulator)).json()["access_token"]
    headers = {
        "Authorization": f"Bearer {token}",
        "x-sfdc-app-context": "EinsteinGPT",
        "x-client-feature-id": "ai-platform-models-connected-app",
    }
    assert http.post(CHAT, headers=headers, json=HELLO).status_code == 200
    time.sleep(0.35)
    response = http.post(CHAT, headers=headers, json=HELLO)
    assert response.status_code == 401
    assert response.json()["errorCode"] == "INVALID_AUTH"


# ---- auth and headers --------------------------------------------------------------------


@pytest.mark.parametrize(
    "authorization", [None, "Bearer", "Bearer not-a-token", "Basic abc", "bearer x.y.z"]
)
def test_missing_or_invalid_bearer_is_401(
    http: httpx.Client, sf_headers: dict[str, str], authorization: str | None
) -> None:
    headers = dict(sf_headers)
    del headers["Authorization"]
    if authorization is not None:
        headers["Authorization"] = authorization
    response = http.post(CHAT, headers=headers, json=HELLO)
    assert response.status_code == 401
    body = response.json()
    assert_shape(body, SALESFORCE_ERROR)
    assert body["errorCode"] == "INVALID_AUTH"
    assert body["message"] == "Access bearer token is missing or invalid"
    assert body["messageCode"].startswith("E")


def test_databricks_token_is_not_a_salesforce_token(
    emulator: Emulator, http: httpx.Client, sf_headers: dict[str, str]
) -> None:
    headers = {**sf_headers, "Authorization": f"Bearer {emulator.databricks_token}"}
    assert http.post(CHAT, headers=headers, json=HELLO).status_code == 401


def test_expire_tokens(emulator: Emulator, http: httpx.Client, sf_headers: dict[str, str]) -> None:
    assert http.post(CHAT, headers=sf_headers, json=HELLO).status_code == 200
    emulator.expire_tokens()
    response = http.post(CHAT, headers=sf_headers, json=HELLO)
    assert response.status_code == 401
    fresh = {**sf_headers, "Authorization": f"Bearer {emulator.mint_salesforce_token()}"}
    assert http.post(CHAT, headers=fresh, json=HELLO).status_code == 200


@pytest.mark.parametrize("header", ["x-sfdc-app-context", "x-client-feature-id"])
@pytest.mark.parametrize("value", [None, "wrong"])
def test_required_headers(
    http: httpx.Client, sf_headers: dict[str, str], header: str, value: str | None
) -> None:
    headers = {k: v for k, v in sf_headers.items() if k != header}
    if value is not None:
        headers[header] = value
    response = http.post(CHAT, headers=headers, json=HELLO)
    assert response.status_code == 400
    body = response.json()
    assert_shape(body, SALESFORCE_ERROR)
    assert header in body["message"]
    assert body["errorCode"] == ("REQUIRED_FIELD_MISSING" if value is None else "INVALID_INPUT")


# ---- models ------------------------------------------------------------------------------


@pytest.mark.parametrize("model", ["gpt-4o", "sfdc_ai__Default", "sfdc_ai__CustomThing"])
def test_unknown_model_is_404(http: httpx.Client, sf_headers: dict[str, str], model: str) -> None:
    response = http.post(f"{API}/models/{model}/chat-generations", headers=sf_headers, json=HELLO)
    assert response.status_code == 404
    body = response.json()
    assert_shape(body, SALESFORCE_ERROR)
    assert body["errorCode"] == "NOT_FOUND"


def test_unknown_route_is_404(http: httpx.Client, sf_headers: dict[str, str]) -> None:
    response = http.post(f"{API}/models/{SALESFORCE_CHAT_MODEL}/chat", headers=sf_headers)
    assert response.status_code == 404
    assert response.json()["errorCode"] == "NOT_FOUND"


def test_wrong_method_is_405(http: httpx.Client, sf_headers: dict[str, str]) -> None:
    response = http.get(CHAT, headers=sf_headers)
    assert response.status_code == 405
    assert_shape(response.json(), SALESFORCE_ERROR)


def test_chat_model_on_embeddings_route_is_400(
    http: httpx.Client, sf_headers: dict[str, str]
) -> None:
    response = http.post(
        f"{API}/models/{SALESFORCE_CHAT_MODEL}/embeddings",
        headers=sf_headers,
        json={"input": ["x"]},
    )
    assert response.status_code == 400
    assert_shape(response.json(), SALESFORCE_ERROR)


@pytest.mark.parametrize("route", ["chat-generations", "generations"])
def test_embedding_model_on_text_routes_is_400(
    http: httpx.Client, sf_headers: dict[str, str], route: str
) -> None:
    response = http.post(
        f"{API}/models/{SALESFORCE_EMBEDDING_MODEL}/{route}",
        headers=sf_headers,
        json={**HELLO, "prompt": "hi"},
    )
    assert response.status_code == 400


# ---- bodies ------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("route", "body", "code", "field"),
    [
        (CHAT, {}, "REQUIRED_FIELD_MISSING", "messages"),
        (CHAT, {"messages": "hi"}, "INVALID_INPUT", "messages"),
        (CHAT, {"messages": []}, "INVALID_INPUT", "messages"),
        (CHAT, {"messages": [{"content": "hi"}]}, "REQUIRED_FIELD_MISSING", "role"),
        (CHAT, {"messages": [{"role": "user"}]}, "REQUIRED_FIELD_MISSING", "content"),
        (CHAT, {"messages": [{"role": "tool", "content": "x"}]}, "INVALID_INPUT", "role"),
        (CHAT, {"messages": [{"role": "user", "content": ["x"]}]}, "INVALID_INPUT", "content"),
        (CHAT, {**HELLO, "localization": {}}, "REQUIRED_FIELD_MISSING", "defaultLocale"),
        (CHAT, {**HELLO, "localization": "en_US"}, "INVALID_INPUT", "localization"),
        (
            CHAT,
            {**HELLO, "localization": {"defaultLocale": "en_US", "inputLocales": [{}]}},
            "REQUIRED_FIELD_MISSING",
            "locale",
        ),
        (
            CHAT,
            {
                **HELLO,
                "localization": {
                    "defaultLocale": "en_US",
                    "inputLocales": [{"locale": "en_US", "probability": 2}],
                },
            },
            "INVALID_INPUT",
            "probability",
        ),
        (CHAT, {**HELLO, "tags": ["a"]}, "INVALID_INPUT", "tags"),
        (GENERATIONS, {}, "REQUIRED_FIELD_MISSING", "prompt"),
        (GENERATIONS, {"prompt": 5}, "INVALID_INPUT", "prompt"),
        (EMBEDDINGS, {}, "REQUIRED_FIELD_MISSING", "input"),
        (EMBEDDINGS, {"input": "one string"}, "INVALID_INPUT", "input"),
        (EMBEDDINGS, {"input": [1, 2]}, "INVALID_INPUT", "input"),
        (EMBEDDINGS, {"input": []}, "INVALID_INPUT", "input"),
        (FEEDBACK, {"generationId": "g"}, "REQUIRED_FIELD_MISSING", "id"),
        (FEEDBACK, {"id": "f"}, "REQUIRED_FIELD_MISSING", "generationId"),
        (
            FEEDBACK,
            {"id": "f", "generationId": "g", "feedback": "MEH"},
            "INVALID_INPUT",
            "feedback",
        ),
        (
            FEEDBACK,
            {"id": "f", "generationId": "g", "appFeedback": "x"},
            "INVALID_INPUT",
            "appFeedback",
        ),
    ],
)
def test_invalid_bodies_are_400_naming_the_field(
    http: httpx.Client,
    sf_headers: dict[str, str],
    route: str,
    body: dict[str, Any],
    code: str,
    field: str,
) -> None:
    response = http.post(route, headers=sf_headers, json=body)
    assert response.status_code == 400, response.text
    error = response.json()
    assert_shape(error, SALESFORCE_ERROR)
    assert error["errorCode"] == code
    assert field in error["message"]


@pytest.mark.parametrize("raw", [b"", b"{not json", b"[1, 2]"])
def test_malformed_json_is_400(http: httpx.Client, sf_headers: dict[str, str], raw: bytes) -> None:
    headers = {**sf_headers, "content-type": "application/json"}
    response = http.post(CHAT, headers=headers, content=raw)
    assert response.status_code == 400
    assert_shape(response.json(), SALESFORCE_ERROR)


def test_optional_localization_and_tags_are_accepted(
    http: httpx.Client, sf_headers: dict[str, str]
) -> None:
    extras = {
        "localization": {
            "defaultLocale": "en_US",
            "inputLocales": [{"locale": "en_US", "probability": 0.8}],
            "expectedLocales": ["en_US"],
        },
        "tags": {"team": "search"},
    }
    assert http.post(CHAT, headers=sf_headers, json={**HELLO, **extras}).status_code == 200
    response = http.post(GENERATIONS, headers=sf_headers, json={"prompt": "hi", **extras})
    assert response.status_code == 200
    response = http.post(EMBEDDINGS, headers=sf_headers, json={"input": ["hi"], **extras})
    assert response.status_code == 200


# ---- responses ---------------------------------------------------------------------------


def test_chat_response_shape(http: httpx.Client, sf_headers: dict[str, str]) -> None:
    messages = [
        {"role": "system", "content": "You are terse."},
        {"role": "user", "content": "Hello there"},
        {"role": "assistant", "content": "Hi!"},
        {"role": "user", "content": "Tell me about penguins"},
    ]
    response = http.post(CHAT, headers=sf_headers, json={"messages": messages})
    assert response.status_code == 200
    assert response.headers["content-type"].startswith("application/json")
    uuid.UUID(response.headers["x-request-id"])
    body = response.json()
    assert_shape(body, SALESFORCE_CHAT)
    assert body["id"].startswith("chatcmpl-")
    generation = body["generationDetails"]["generations"][0]
    uuid.UUID(generation["id"])
    assert generation["role"] == "assistant"
    assert "penguins" in generation["content"]
    assert generation["parameters"] == {"finish_reason": "stop", "index": 0, "logprobs": None}
    assert generation["contentQuality"]["scanToxicity"]["isDetected"] is False
    parameters = body["generationDetails"]["parameters"]
    assert parameters["object"] == "chat.completion"
    assert parameters["model"] == "gpt-4o-mini-2024-07-18"
    usage = parameters["usage"]
    assert usage["prompt_tokens"] == 12  # "You are terse." 4 + 3 + 2 + 3
    assert usage["total_tokens"] == usage["prompt_tokens"] + usage["completion_tokens"]
    assert usage["completion_tokens"] > 0


def test_generations_response_shape(http: httpx.Client, sf_headers: dict[str, str]) -> None:
    response = http.post(GENERATIONS, headers=sf_headers, json={"prompt": "Invent donut names"})
    assert response.status_code == 200
    body = response.json()
    assert_shape(body, SALESFORCE_GENERATION)
    uuid.UUID(body["generation"]["id"])
    assert body["generation"]["generatedText"]
    assert body["parameters"]["usage"]["prompt_tokens"] == 3


def test_embeddings_response_shape_and_dimensions(
    http: httpx.Client, sf_headers: dict[str, str]
) -> None:
    texts = ["Every day, once a day, give yourself a present", "", "cats"]
    response = http.post(EMBEDDINGS, headers=sf_headers, json={"input": texts})
    assert response.status_code == 200
    body = response.json()
    assert_shape(body, SALESFORCE_EMBEDDINGS)
    assert body["parameters"]["model"] == "text-embedding-ada-002-v2"
    assert body["parameters"]["object"] == "list"
    assert body["parameters"]["usage"]["prompt_tokens"] == 12
    assert [e["index"] for e in body["embeddings"]] == [0, 1, 2]
    for item in body["embeddings"]:
        assert len(item["embedding"]) == 1536
        assert math.isclose(math.fsum(x * x for x in item["embedding"]), 1.0, rel_tol=1e-6)


def test_azure_embedding_model_is_served(http: httpx.Client, sf_headers: dict[str, str]) -> None:
    response = http.post(
        f"{API}/models/sfdc_ai__DefaultAzureOpenAITextEmbeddingAda_002/embeddings",
        headers=sf_headers,
        json={"input": ["hello"]},
    )
    assert response.status_code == 200
    assert len(response.json()["embeddings"][0]["embedding"]) == 1536


def test_embedding_similarity(http: httpx.Client, sf_headers: dict[str, str]) -> None:
    texts = [
        "The cat sat on the warm mat",
        "A cat sleeping on a mat",
        "Quarterly revenue grew ten percent",
    ]
    body = http.post(EMBEDDINGS, headers=sf_headers, json={"input": texts}).json()
    cat, cat2, revenue = (e["embedding"] for e in body["embeddings"])
    assert cosine(cat, cat2) > 0.5
    assert abs(cosine(cat, revenue)) < 0.2
    assert cosine(cat, cat2) > cosine(cat, revenue)


def test_embedding_batch_limit(
    emulator: Emulator, http: httpx.Client, sf_headers: dict[str, str]
) -> None:
    emulator.configure(embedding_max_batch=3)
    assert http.post(EMBEDDINGS, headers=sf_headers, json={"input": ["a"] * 3}).status_code == 200
    response = http.post(EMBEDDINGS, headers=sf_headers, json={"input": ["a"] * 4})
    assert response.status_code == 400
    assert "3" in response.json()["message"]


def test_responses_are_deterministic(http: httpx.Client, sf_headers: dict[str, str]) -> None:
    body = {"messages": [{"role": "user", "content": "Summarise the history of Rome"}]}
    first = http.post(CHAT, headers=sf_headers, json=body).json()
    second = http.post(CHAT, headers=sf_headers, json=body).json()
    assert first["id"] != second["id"]
    first_gen = first["generationDetails"]["generations"][0]
    second_gen = second["generationDetails"]["generations"][0]
    assert first_gen["content"] == second_gen["content"]
    assert (
        first["generationDetails"]["parameters"]["usage"]
        == (second["generationDetails"]["parameters"]["usage"])
    )
    vectors = [
        http.post(EMBEDDINGS, headers=sf_headers, json={"input": ["same text"]}).json()
        for _ in range(2)
    ]
    assert vectors[0] == vectors[1]


def test_rag_prompt_gets_grounded_answer(http: httpx.Client, sf_headers: dict[str, str]) -> None:
    context = (
        "Our refund policy allows returns within 30 days of purchase.\n"
        "Shipping is free for orders over 50 dollars.\n"
        "Support is available by phone from 9am to 5pm on weekdays."
    )
    messages = [
        {
            "role": "system",
            "content": f"Use the following context to answer the question.\nContext:\n{context}",
        },
        {"role": "user", "content": "How many days do I have to return a purchase?"},
    ]
    body = http.post(CHAT, headers=sf_headers, json={"messages": messages}).json()
    answer = body["generationDetails"]["generations"][0]["content"]
    assert answer == "Our refund policy allows returns within 30 days of purchase."
    prompt = (
        f"Answer the question based only on the following context:\n{context}\n\n"
        "Question: When is phone support available?\n"
    )
    body = http.post(GENERATIONS, headers=sf_headers, json={"prompt": prompt}).json()
    assert "9am to 5pm" in body["generation"]["generatedText"]


# ---- feedback ----------------------------------------------------------------------------


def test_feedback_is_recorded(
    emulator: Emulator, http: httpx.Client, sf_headers: dict[str, str]
) -> None:
    feedback = {
        "id": "d123449d-afed-4abe-9a0e-19c90726d2ea",
        "generationId": "d321449d-afed-4abe-9a0e-19c90726d2ea",
        "feedback": "GOOD",
        "feedbackText": "",
        "source": "human",
        "appFeedback": {"rating": 5},
        "appGenerationId": "",
        "appGeneration": "",
    }
    response = http.post(FEEDBACK, headers=sf_headers, json=feedback)
    assert response.status_code == 202
    assert response.json() == {"message": "Feedback received, Thank you!"}
    second = {"id": "2", "generationId": "g2", "feedback": None}
    assert http.post(FEEDBACK, headers=sf_headers, json=second).status_code == 202
    assert emulator.feedback() == [feedback, second]
    assert emulator.counters()["feedback"] == 2
    assert emulator.counters()["requests"]["salesforce.feedback"] == 2


def test_feedback_requires_auth(emulator: Emulator, http: httpx.Client) -> None:
    response = http.post(FEEDBACK, json={"id": "1", "generationId": "2"})
    assert response.status_code == 401
    assert emulator.feedback() == []


def test_custom_credentials() -> None:
    with Emulator(salesforce_client_id="id-x", salesforce_client_secret="secret-y") as emu:
        form = {
            "grant_type": "client_credentials",
            "client_id": "id-x",
            "client_secret": "secret-y",
        }
        response = httpx.post(emu.salesforce_domain + "/services/oauth2/token", data=form)
        assert response.status_code == 200
        assert emu.salesforce_api_base == emu.url + "/einstein/platform/v1"

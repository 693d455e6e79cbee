"""Inputs a model refuses (too long, against content policy) and the record of arrivals."""

from __future__ import annotations

import httpx
import pytest

from sfmodels_emulator import Emulator

from .payloads import (
    DATABRICKS_CHAT,
    DATABRICKS_EMBEDDINGS,
    SALESFORCE_CHAT_MODEL,
    SALESFORCE_EMBEDDING_MODEL,
    user,
)
from .shapes import DATABRICKS_ERROR, SALESFORCE_ERROR, assert_shape

SF = "/einstein/platform/v1/models"
SF_CHAT = f"{SF}/{SALESFORCE_CHAT_MODEL}/chat-generations"
SF_GEN = f"{SF}/{SALESFORCE_CHAT_MODEL}/generations"
SF_EMBED = f"{SF}/{SALESFORCE_EMBEDDING_MODEL}/embeddings"
DB_CHAT = f"/serving-endpoints/{DATABRICKS_CHAT}/invocations"
DB_EMBED = f"/serving-endpoints/{DATABRICKS_EMBEDDINGS}/invocations"


def test_off_by_default(emulator: Emulator, http: httpx.Client,
                        db_headers: dict[str, str]) -> None:
    settings = emulator.settings()
    assert settings["max_input_tokens"] is None and settings["blocked_terms"] == []
    response = http.post(DB_EMBED, json={"input": ["word " * 5000]}, headers=db_headers)
    assert response.status_code == 200


def test_too_long_inputs_are_refused_one_at_a_time(
        emulator: Emulator, http: httpx.Client, sf_headers: dict[str, str],
        db_headers: dict[str, str]) -> None:
    emulator.configure(max_input_tokens=5)
    short, long = "a short text", "one two three four five six seven"
    ok = http.post(DB_EMBED, json={"input": [short, short]}, headers=db_headers)
    assert ok.status_code == 200
    refused = http.post(DB_EMBED, json={"input": [short, long]}, headers=db_headers)
    assert refused.status_code == 400
    assert_shape(refused.json(), DATABRICKS_ERROR)
    assert refused.json()["message"].startswith("input[1]: This model's maximum context length "
                                                "is 5 tokens, however you requested 7 tokens")
    sf_refused = http.post(SF_EMBED, json={"input": [long]}, headers=sf_headers)
    assert sf_refused.status_code == 400
    assert_shape(sf_refused.json(), SALESFORCE_ERROR)
    assert sf_refused.json()["errorCode"] == "INVALID_INPUT"
    # A chat is one input: the whole conversation counts.
    chat = http.post(DB_CHAT, json={"messages": [*user("one two three"), *user("four five six")]},
                     headers=db_headers)
    assert chat.status_code == 400 and "requested 6 tokens" in chat.json()["message"]
    assert http.post(SF_CHAT, json={"messages": user(long)}, headers=sf_headers).status_code == 400
    assert http.post(SF_GEN, json={"prompt": long}, headers=sf_headers).status_code == 400
    assert http.post(SF_CHAT, json={"messages": user(short)}, headers=sf_headers).is_success


@pytest.mark.parametrize("path", [SF_CHAT, SF_EMBED, DB_CHAT, DB_EMBED])
def test_blocked_terms_are_refused_as_content_policy(
        emulator: Emulator, http: httpx.Client, sf_headers: dict[str, str],
        db_headers: dict[str, str], path: str) -> None:
    emulator.configure(blocked_terms=["Forbidden Topic"])
    headers = db_headers if path.startswith("/serving") else sf_headers
    embed = path.endswith("embeddings") or path == DB_EMBED

    def body(text: str) -> dict[str, object]:
        return {"input": ["fine", text]} if embed else {"messages": user(text)}

    assert http.post(path, json=body("all fine here"), headers=headers).status_code == 200
    refused = http.post(path, json=body("about the FORBIDDEN topic"), headers=headers)
    assert refused.status_code == 400
    assert "content management policy" in refused.json()["message"]


def test_settings_are_checked(emulator: Emulator) -> None:
    for bad in ({"max_input_tokens": 0}, {"blocked_terms": "word"}, {"blocked_terms": [""]}):
        with pytest.raises(ValueError):
            emulator.configure(**bad)


def test_arrivals_record_each_request_in_order(
        emulator: Emulator, http: httpx.Client, db_headers: dict[str, str]) -> None:
    for _ in range(3):
        http.post(DB_EMBED, json={"input": ["x"]}, headers=db_headers)
    arrivals = emulator.arrivals()
    assert [route for _, route in arrivals] == ["databricks.invocations"] * 3
    times = [t for t, _ in arrivals]
    assert times == sorted(times) and times[0] >= 0
    emulator.reset()
    assert emulator.arrivals() == []

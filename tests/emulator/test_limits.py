"""Inputs a model refuses (too long, against content policy) and the record of arrivals."""

from __future__ import annotations

import httpx
import pytest

from sfmodels_emulator import Emulator
from sfmodels_emulator.state import RECORDED_REQUESTS

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


def test_the_last_api_requests_are_kept_as_sent(
        emulator: Emulator, http: httpx.Client, db_headers: dict[str, str]) -> None:
    http.post("/oidc/v1/token", data={"grant_type": "client_credentials"})  # not kept: a secret
    for i in range(RECORDED_REQUESTS + 2):
        http.post(DB_EMBED, json={"input": [f"text {i}"]}, headers=db_headers)
    http.post(DB_CHAT, content=b"not json", headers=db_headers)
    recorded = emulator.recorded_requests()
    assert len(recorded) == RECORDED_REQUESTS
    assert {r["route"] for r in recorded} == {"databricks.invocations"}
    assert recorded[0]["body"] == {"input": ["text 3"]} and recorded[-1]["body"] == "not json"
    emulator.reset()
    assert emulator.recorded_requests() == []


def test_a_requests_per_second_limit_answers_429_without_retry_after(
        emulator: Emulator, http: httpx.Client, db_headers: dict[str, str]) -> None:
    # Databricks' workspace QPS limit: past it, 429 REQUEST_LIMIT_EXCEEDED and no Retry-After.
    emulator.configure(rate_limit_rps=3, rate_limit_retry_after=False)
    assert emulator.settings()["rate_limit_rps"] == 3
    answers = [http.post(DB_CHAT, json={"messages": user("hi")}, headers=db_headers)
               for _ in range(4)]
    # Four requests in well under a second here; should the machine stall for a second, the
    # window would admit the fourth and the count below would show it.
    limited = [a for a in answers if a.status_code == 429]
    assert [a.status_code for a in answers[:3]] == [200, 200, 200]
    assert limited and "retry-after" not in limited[0].headers
    assert limited[0].json()["error_code"] == "REQUEST_LIMIT_EXCEEDED"
    assert "QPS" in limited[0].json()["message"]
    # Per endpoint: another endpoint has its own window; a model setting overrides the global.
    emulator.configure(rate_limit_rps=None, rate_limit_retry_after=True)
    emulator.configure_model(DATABRICKS_EMBEDDINGS, rate_limit_rps=1)
    first = http.post(DB_EMBED, json={"input": ["x"]}, headers=db_headers)
    second = http.post(DB_EMBED, json={"input": ["x"]}, headers=db_headers)
    assert (first.status_code, second.status_code) == (200, 429)
    assert second.headers["retry-after"] == "1"  # whole seconds, as the other limits say
    assert http.post(DB_CHAT, json={"messages": user("hi")}, headers=db_headers).is_success
    with pytest.raises(ValueError):
        emulator.configure(rate_limit_rps=0)


def test_the_per_second_window_slides() -> None:
    from sfmodels_emulator.limits import Limits, RateWindows

    windows, limits = RateWindows(), Limits(requests_per_second=2)
    assert windows.admit("ep", limits, 10.0) is None
    assert windows.admit("ep", limits, 10.4) is None
    assert windows.admit("ep", limits, 10.9) == 1  # full until 11.0: one whole second, rounded up
    assert windows.admit("ep", limits, 11.0) is None  # the first has left the window
    assert windows.admit("ep", limits, 11.2) == 1
    assert windows.admit("ep", limits, 11.41) is None

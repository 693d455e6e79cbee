"""Hostile mode: each case's exact wire shape, read with raw httpx."""

from __future__ import annotations

import argparse
import base64
import json
import math
import time
from array import array
from collections.abc import Callable
from pathlib import Path
from typing import Any

import httpx
import pytest

from sfmodels_emulator import Emulator
from sfmodels_emulator import hostile as hostile_module
from sfmodels_emulator.command import add_arguments, config_from_args
from sfmodels_emulator.hostile import HOSTILE_CASES
from sfmodels_emulator.state import Config, Settings

from .payloads import (
    DATABRICKS_CHAT,
    DATABRICKS_EMBEDDINGS,
    SALESFORCE_CHAT_MODEL,
    SALESFORCE_EMBEDDING_MODEL,
    user,
)

API = "/einstein/platform/v1/models"
SF_CHAT = f"{API}/{SALESFORCE_CHAT_MODEL}/chat-generations"
SF_GENERATIONS = f"{API}/{SALESFORCE_CHAT_MODEL}/generations"
SF_EMBEDDINGS = f"{API}/{SALESFORCE_EMBEDDING_MODEL}/embeddings"
SF_OTHER_CHAT = f"{API}/sfdc_ai__DefaultBedrockAnthropicClaude45Haiku/chat-generations"
DB_INVOKE = f"/serving-endpoints/{DATABRICKS_CHAT}/invocations"
DB_CHAT = "/serving-endpoints/chat/completions"
DB_COMPLETIONS = "/serving-endpoints/completions"
DB_EMBEDDINGS = "/serving-endpoints/embeddings"
DB_EMBED_INVOKE = f"/serving-endpoints/{DATABRICKS_EMBEDDINGS}/invocations"
DB_RESPONSES = "/serving-endpoints/responses"
OTHER_ENDPOINT = "databricks-claude-sonnet-4-5"
QUESTION = "Tell me about the ocean tides and the moon"
BOM = b"\xef\xbb\xbf"
DB_DIM, SF_DIM = 1024, 1536

#: Every stream the emulator serves: (provider, path, body without "stream").
STREAMS: dict[str, tuple[str, dict[str, Any]]] = {
    "chat-invocations": (DB_INVOKE, {"messages": user(QUESTION)}),
    "chat-openai": (DB_CHAT, {"model": DATABRICKS_CHAT, "messages": user(QUESTION)}),
    "completions": (DB_COMPLETIONS, {"model": DATABRICKS_CHAT, "prompt": QUESTION}),
    "responses": (DB_RESPONSES, {"model": "databricks-gpt-5", "input": QUESTION}),
    "responses-agent": ("/serving-endpoints/agent-echo/invocations", {"input": QUESTION}),
}

#: Every plain answer: (provider, path, body).
BODIES: dict[str, tuple[str, str, dict[str, Any]]] = {
    "db-chat-invocations": ("db", DB_INVOKE, {"messages": user(QUESTION)}),
    "db-chat-openai": ("db", DB_CHAT, {"model": DATABRICKS_CHAT, "messages": user(QUESTION)}),
    "db-completions": ("db", DB_COMPLETIONS, {"model": DATABRICKS_CHAT, "prompt": QUESTION}),
    "db-responses": ("db", DB_RESPONSES, {"model": "databricks-gpt-5", "input": QUESTION}),
    "db-embeddings": ("db", DB_EMBEDDINGS, {"model": DATABRICKS_EMBEDDINGS,
                                            "input": ["tides", "moon"]}),
    "db-embeddings-invocations": ("db", DB_EMBED_INVOKE, {"input": ["tides", "moon"]}),
    "sf-chat": ("sf", SF_CHAT, {"messages": user(QUESTION)}),
    "sf-generations": ("sf", SF_GENERATIONS, {"prompt": QUESTION}),
    "sf-embeddings": ("sf", SF_EMBEDDINGS, {"input": ["tides", "moon"]}),
}
TEXT_BODIES = [name for name in BODIES if "embeddings" not in name]
EMBEDDING_BODIES = [name for name in BODIES if "embeddings" in name]


# ---- helpers -------------------------------------------------------------------------------


def post_raw(http: httpx.Client, path: str, headers: dict[str, str],
             body: dict[str, Any]) -> tuple[httpx.Response, bytes]:
    """The response and its body as sent (chunked framing undone, nothing decoded). Reading
    it all through means the body ended with valid framing (httpx raises otherwise)."""
    with http.stream("POST", path, headers=headers, json=body) as response:
        raw = b"".join(response.iter_raw())
    return response, raw


def events(raw: bytes) -> list[tuple[str | None, Any]]:
    """(event name, data) of each event; data is JSON, or the string ``[DONE]``."""
    out: list[tuple[str | None, Any]] = []
    for block in raw.split(b"\n\n"):
        if not block.strip():
            continue
        name: str | None = None
        data: Any = None
        for line in block.split(b"\n"):
            if line.startswith(b"event: "):
                name = line[len(b"event: "):].decode()
            elif line.startswith(b"data: "):
                text = line[len(b"data: "):]
                data = "[DONE]" if text == b"[DONE]" else json.loads(text)
            else:
                raise AssertionError(f"not an SSE line: {line[:80]!r}")
        out.append((name, data))
    return out


def is_end(data: Any) -> bool:
    """[DONE], a finish reason, a usage-only ``"choices": []`` chunk or a Responses end."""
    if data == "[DONE]":
        return True
    if "choices" in data:
        return not data["choices"] or any(c.get("finish_reason") for c in data["choices"])
    return data.get("type") in ("response.completed", "response.incomplete", "response.failed")


def is_content(data: Any) -> bool:
    if not isinstance(data, dict):
        return False
    for choice in data.get("choices", ()):
        if choice.get("delta", {}).get("content") or choice.get("text"):
            return True
    return data.get("type") == "response.output_text.delta"


def stream_raw(http: httpx.Client, db_headers: dict[str, str], name: str
               ) -> tuple[httpx.Response, bytes]:
    path, body = STREAMS[name]
    response, raw = post_raw(http, path, db_headers, {**body, "stream": True})
    assert response.status_code == 200
    assert response.headers["content-type"] == "text/event-stream"
    return response, raw


def headers_for(provider: str, sf: dict[str, str], db: dict[str, str]) -> dict[str, str]:
    return sf if provider == "sf" else db


def served(emulator: Emulator) -> dict[str, int]:
    counts: dict[str, int] = emulator.counters()["hostile"]
    return counts


def wait_until_idle(emulator: Emulator, seconds: float = 10.0) -> None:
    """The emulator has no request in flight (the hostile sender stopped by itself)."""
    deadline = time.monotonic() + seconds
    while emulator.counters()["in_flight"] and time.monotonic() < deadline:
        time.sleep(0.02)
    assert emulator.counters()["in_flight"] == 0


# ---- the cases and the setting -------------------------------------------------------------


def test_the_cases() -> None:
    assert HOSTILE_CASES == (
        "cut_stream", "stream_error_event", "stream_error_payload", "stream_bom",
        "stream_non_utf8", "endless_line", "trickle", "bad_encoding", "empty_object",
        "empty_choices", "no_content", "content_wrong_type", "content_object", "vector_null",
        "vector_strings", "vector_bools", "vector_nested", "vector_empty", "vector_mixed_dims",
        "vector_nan", "vector_inf", "token_control_chars", "instance_url_http",
        "instance_url_userinfo")
    assert set(hostile_module.CASES) == set(HOSTILE_CASES)


def test_every_case_is_documented() -> None:
    page = (Path(__file__).resolve().parents[2] / "docs" / "emulator.md").read_text(
        encoding="utf-8")
    module_doc = hostile_module.__doc__ or ""
    for case in HOSTILE_CASES:
        assert f"`{case}`" in page, case
        assert f"``{case}``" in module_doc, case


def test_settings_are_validated(emulator: Emulator) -> None:
    assert emulator.settings()["hostile"] is None
    for bad in ({"hostile": "nope"}, {"hostile": 3}, {"hostile_trickle_s": -1},
                {"hostile_endless_bytes": 0}, {"hostile_endless_bytes": 1.5}):
        with pytest.raises(ValueError):
            emulator.configure(**bad)
    with pytest.raises(ValueError, match="cut_stream"):
        emulator.configure_model(DATABRICKS_CHAT, hostile="nope")
    emulator.configure(hostile="cut_stream", hostile_trickle_s=0.01, hostile_endless_bytes=10)
    assert emulator.settings()["hostile"] == "cut_stream"
    emulator.configure(hostile=None)
    assert emulator.settings()["hostile"] is None


def test_settings_survive_the_trip_to_a_child_process() -> None:
    settings = Settings()
    settings.update({"hostile": "trickle", "hostile_trickle_s": 0.5,
                     "model_settings": {DATABRICKS_CHAT: {"hostile": "vector_nan"}}})
    again = Config.from_json(Config(settings=settings).to_json()).settings
    assert (again.hostile, again.hostile_trickle_s) == ("trickle", 0.5)
    assert again.model_settings == {DATABRICKS_CHAT: {"hostile": "vector_nan"}}


def test_command_line_sets_hostile_mode() -> None:
    parser = argparse.ArgumentParser()
    add_arguments(parser)
    settings = config_from_args(parser.parse_args([
        "--hostile", "cut_stream", "--hostile-trickle-s", "0.01",
        "--hostile-endless-bytes", "1000",
        "--model-setting", f"{DATABRICKS_EMBEDDINGS}:hostile=vector_nan"])).settings
    assert (settings.hostile, settings.hostile_trickle_s, settings.hostile_endless_bytes) == (
        "cut_stream", 0.01, 1000)
    assert settings.model_settings == {DATABRICKS_EMBEDDINGS: {"hostile": "vector_nan"}}
    assert config_from_args(parser.parse_args([])).settings.hostile is None
    with pytest.raises(SystemExit):
        parser.parse_args(["--hostile", "nope"])


def test_off_by_default_and_counted_when_on(emulator: Emulator, http: httpx.Client,
                                            db_headers: dict[str, str]) -> None:
    answer = http.post(DB_INVOKE, headers=db_headers, json={"messages": user("Hi")}).json()
    assert answer["choices"][0]["message"]["content"]
    emulator.configure(hostile="empty_object")
    assert http.post(DB_INVOKE, headers=db_headers, json={"messages": user("Hi")}).json() == {}
    assert served(emulator) == {"empty_object": 1}
    emulator.reset()
    assert served(emulator) == {}
    assert emulator.settings()["hostile"] is None


def test_errors_are_left_alone(emulator: Emulator, http: httpx.Client,
                               sf_headers: dict[str, str]) -> None:
    emulator.configure(hostile="empty_object")
    unauthenticated = http.post(DB_INVOKE, json={"messages": user("Hi")})
    assert unauthenticated.status_code == 401
    assert unauthenticated.json()["error_code"] == "UNAUTHENTICATED"
    missing = http.post(f"{API}/no-such-model/chat-generations", headers=sf_headers,
                        json={"messages": user("Hi")})
    assert missing.status_code == 404
    assert missing.json()["errorCode"] == "NOT_FOUND"
    emulator.configure(fault_next=1, fault_kinds=["500"])
    assert http.post(SF_CHAT, headers=sf_headers, json={"messages": user("Hi")}
                     ).status_code == 500
    assert served(emulator) == {}


def test_per_model_and_per_endpoint(emulator: Emulator, http: httpx.Client,
                                    db_headers: dict[str, str],
                                    sf_headers: dict[str, str]) -> None:
    chat = {"messages": user("Hi")}
    emulator.configure_model(DATABRICKS_CHAT, hostile="empty_object")
    emulator.configure_model(SALESFORCE_CHAT_MODEL, hostile="empty_choices")
    assert http.post(DB_INVOKE, headers=db_headers, json=chat).json() == {}
    assert http.post(DB_CHAT, headers=db_headers,
                     json={"model": DATABRICKS_CHAT, **chat}).json() == {}
    other = http.post(f"/serving-endpoints/{OTHER_ENDPOINT}/invocations", headers=db_headers,
                      json=chat).json()
    assert other["choices"][0]["message"]["content"]
    sf = http.post(SF_CHAT, headers=sf_headers, json=chat).json()
    assert sf["generationDetails"]["generations"] == []
    sf_other = http.post(SF_OTHER_CHAT, headers=sf_headers, json=chat).json()
    assert sf_other["generationDetails"]["generations"][0]["content"]
    # A global case, turned off for one endpoint.
    emulator.configure(hostile="empty_object", model_settings={DATABRICKS_CHAT: {"hostile": None}})
    assert http.post(DB_INVOKE, headers=db_headers, json=chat).json()["choices"]
    assert http.post(f"/serving-endpoints/{OTHER_ENDPOINT}/invocations", headers=db_headers,
                     json=chat).json() == {}


# ---- streams -------------------------------------------------------------------------------


@pytest.mark.parametrize("name", list(STREAMS))
def test_cut_stream(emulator: Emulator, http: httpx.Client, db_headers: dict[str, str],
                    name: str) -> None:
    _, whole = stream_raw(http, db_headers, name)
    emulator.configure(hostile="cut_stream")
    _, raw = stream_raw(http, db_headers, name)  # read to the end: the framing is valid
    cut = [data for _, data in events(raw)]
    assert any(is_content(data) for data in cut)
    assert not any(is_end(data) for data in cut)
    assert b"[DONE]" not in raw and b'"finish_reason":"' not in raw
    assert b"response.completed" not in raw
    assert len(raw) < len(whole)
    assert served(emulator) == {"cut_stream": 1}


@pytest.mark.parametrize("name", list(STREAMS))
def test_stream_error_event(emulator: Emulator, http: httpx.Client,
                            db_headers: dict[str, str], name: str) -> None:
    emulator.configure(hostile="stream_error_event")
    _, raw = stream_raw(http, db_headers, name)
    sent = events(raw)
    assert raw.endswith(b"\n\n")
    assert sent[-1][0] == "error"
    assert set(sent[-1][1]) == {"error_code", "message"}
    assert any(is_content(data) for _, data in sent[:-1])
    assert not any(is_end(data) for _, data in sent)


@pytest.mark.parametrize("name", list(STREAMS))
def test_stream_error_payload(emulator: Emulator, http: httpx.Client,
                              db_headers: dict[str, str], name: str) -> None:
    emulator.configure(hostile="stream_error_payload")
    _, raw = stream_raw(http, db_headers, name)
    sent = [data for _, data in events(raw)]
    assert sent[-1] == "[DONE]"
    error = sent[-2]
    assert error["type"] == "error" and "choices" not in error
    assert set(error["error"]) == {"message", "code"}
    assert any(is_content(data) for data in sent[:-2])
    assert not any(is_end(data) for data in sent[:-1])


@pytest.mark.parametrize("name", list(STREAMS))
def test_stream_bom(emulator: Emulator, http: httpx.Client, db_headers: dict[str, str],
                    name: str) -> None:
    emulator.configure(hostile="stream_bom")
    _, raw = stream_raw(http, db_headers, name)
    assert raw[:3] == BOM
    assert raw.count(BOM) == 1
    sent = [data for _, data in events(raw[3:])]
    assert any(is_content(data) for data in sent)
    assert is_end(sent[-1])  # otherwise complete


@pytest.mark.parametrize("name", list(STREAMS))
def test_stream_non_utf8(emulator: Emulator, http: httpx.Client, db_headers: dict[str, str],
                         name: str) -> None:
    emulator.configure(hostile="stream_non_utf8")
    _, raw = stream_raw(http, db_headers, name)
    with pytest.raises(UnicodeDecodeError):
        raw.decode("utf-8")
    bad = [line for line in raw.split(b"\n") if b"\xff" in line]
    assert len(bad) == 1 and bad[0].startswith(b"data: ") and bad[0].count(b"\xff") == 1
    assert is_content(json.loads(bad[0][len(b"data: "):].replace(b"\xff", b"")))
    sent = [data for _, data in events(raw.replace(b"\xff", b""))]
    assert is_end(sent[-1])  # otherwise complete


def test_stream_cases_leave_plain_answers_alone(emulator: Emulator, http: httpx.Client,
                                                db_headers: dict[str, str]) -> None:
    for case in ("cut_stream", "stream_error_event", "stream_error_payload", "stream_bom",
                 "stream_non_utf8"):
        emulator.configure(hostile=case)
        answer = http.post(DB_INVOKE, headers=db_headers, json={"messages": user("Hi")}).json()
        assert answer["choices"][0]["finish_reason"] == "stop"
    # An endpoint that answers stream=true with one JSON body is not a stream either.
    answer = http.post("/serving-endpoints/custom-pyfunc-chat/invocations", headers=db_headers,
                       json={"messages": user("Hi"), "stream": True}).json()
    assert answer["choices"][0]["finish_reason"] == "stop"
    assert served(emulator) == {}


# ---- endless line --------------------------------------------------------------------------


def test_endless_line_never_ends_and_stops_when_the_client_leaves(
        emulator: Emulator, db_headers: dict[str, str]) -> None:
    emulator.configure(hostile="endless_line")
    path, body = STREAMS["chat-invocations"]
    read = b""
    with httpx.Client(base_url=emulator.url, timeout=10.0) as client, client.stream(
            "POST", path, headers=db_headers, json={**body, "stream": True}) as response:
        assert response.status_code == 200
        assert response.headers["content-type"] == "text/event-stream"
        pieces = response.iter_raw()
        while len(read) < 1024 * 1024:
            read += next(pieces)
        assert emulator.counters()["in_flight"] == 1  # still sending
    # The response is closed, and with it the connection.
    assert read.startswith(b'data: {"id":')
    assert b'"delta":{"content":"' in read[:1000]
    assert b"\n" not in read and b"\r" not in read
    wait_until_idle(emulator)  # the sender noticed and stopped
    assert http_health(emulator)


def http_health(emulator: Emulator) -> bool:
    return httpx.get(emulator.url + "/_emulator/health", timeout=5.0).json() == {"status": "ok"}


@pytest.mark.parametrize(("name", "start"), [
    ("chat-invocations", b'data: {"id":'),
    ("responses", b"event: response.output_text.delta\ndata: {"),
])
def test_endless_line_gives_up_at_its_limit(emulator: Emulator, http: httpx.Client,
                                            db_headers: dict[str, str], name: str,
                                            start: bytes) -> None:
    emulator.configure(hostile="endless_line", hostile_endless_bytes=50_000)
    _, raw = stream_raw(http, db_headers, name)
    assert len(raw) == 50_000
    assert raw.startswith(start)
    assert b"\n" not in raw[len(start):]


@pytest.mark.parametrize(("name", "inside"), [
    ("db-chat-invocations", b'"content":"endless endless'),
    ("db-embeddings", b'"embedding":[0.0,0.0,0.0,'),
    ("sf-generations", b'"generatedText":"endless endless'),
    ("sf-embeddings", b'"embedding":[0.0,0.0,0.0,'),
])
def test_endless_plain_body(emulator: Emulator, http: httpx.Client, db_headers: dict[str, str],
                            sf_headers: dict[str, str], name: str, inside: bytes) -> None:
    provider, path, body = BODIES[name]
    emulator.configure(hostile="endless_line", hostile_endless_bytes=50_000)
    response, raw = post_raw(http, path, headers_for(provider, sf_headers, db_headers), body)
    assert response.status_code == 200
    assert response.headers["content-type"] == "application/json"
    assert response.headers["transfer-encoding"] == "chunked"
    assert len(raw) == 50_000 and raw.startswith(b"{") and inside in raw
    with pytest.raises(ValueError):
        json.loads(raw)


# ---- trickle -------------------------------------------------------------------------------


@pytest.mark.parametrize("stream", [False, True])
def test_trickle_sends_a_whole_answer_a_byte_at_a_time(
        emulator: Emulator, http: httpx.Client, db_headers: dict[str, str],
        stream: bool) -> None:
    interval = 0.001
    emulator.configure(hostile="trickle", hostile_trickle_s=interval, usage_mode="none")
    body = {"model": DATABRICKS_CHAT, "prompt": "Hi", "max_tokens": 1, "stream": stream}
    started = time.monotonic()
    with http.stream("POST", DB_COMPLETIONS, headers=db_headers, json=body) as response:
        reads = list(response.iter_raw())
    elapsed = time.monotonic() - started
    raw = b"".join(reads)
    assert response.status_code == 200
    if stream:
        assert response.headers["transfer-encoding"] == "chunked"
        sent = [data for _, data in events(raw)]
        assert sent[-1] == "[DONE]" and any(is_end(data) for data in sent[:-1])
    else:
        assert int(response.headers["content-length"]) == len(raw)
        assert json.loads(raw)["choices"][0]["finish_reason"] == "length"
    # A byte at a time: many small reads (loosely: bytes may pile up on a busy machine), and
    # at least the intervals the server waited between bytes.
    assert len(reads) >= 10
    assert elapsed >= (len(raw) - 1) * interval * 0.5
    assert served(emulator) == {"trickle": 1}


def test_trickle_stops_when_the_client_leaves(emulator: Emulator,
                                              db_headers: dict[str, str]) -> None:
    emulator.configure(hostile="trickle", hostile_trickle_s=0.05)
    with httpx.Client(base_url=emulator.url, timeout=10.0) as client, client.stream(
            "POST", DB_INVOKE, headers=db_headers,
            json={"messages": user(QUESTION)}) as response:
        pieces = response.iter_raw()
        assert next(pieces) == b"{"
        assert emulator.counters()["in_flight"] == 1  # still sending
    wait_until_idle(emulator, 5.0)  # far less than the ~30 s the whole body would take


# ---- bad encoding --------------------------------------------------------------------------


@pytest.mark.parametrize("name", ["db-chat-invocations", "sf-chat", "sf-embeddings"])
def test_bad_encoding(emulator: Emulator, http: httpx.Client, db_headers: dict[str, str],
                      sf_headers: dict[str, str], name: str) -> None:
    provider, path, body = BODIES[name]
    headers = headers_for(provider, sf_headers, db_headers)
    emulator.configure(hostile="bad_encoding")
    response, raw = post_raw(http, path, headers, body)
    assert response.status_code == 200
    assert response.headers["content-encoding"] == "gzip"
    assert raw[:2] != b"\x1f\x8b"  # not gzip: the plain JSON answer
    assert isinstance(json.loads(raw), dict)
    with pytest.raises(httpx.DecodingError):
        http.post(path, headers=headers, json=body)


def test_bad_encoding_stream(emulator: Emulator, http: httpx.Client,
                             db_headers: dict[str, str]) -> None:
    emulator.configure(hostile="bad_encoding")
    response, raw = stream_raw(http, db_headers, "chat-invocations")
    assert response.headers["content-encoding"] == "gzip"
    assert raw.startswith(b"data: ") and raw.endswith(b"data: [DONE]\n\n")


# ---- bodies --------------------------------------------------------------------------------


def text_field(name: str, body: dict[str, Any]) -> tuple[dict[str, Any], str]:
    """Where a plain answer's (first) text is."""
    if name in ("db-chat-invocations", "db-chat-openai"):
        return body["choices"][0]["message"], "content"
    if name == "db-completions":
        return body["choices"][0], "text"
    if name == "db-responses":
        message = next(item for item in body["output"] if item["type"] == "message")
        return message["content"][0], "text"
    if name == "sf-chat":
        return body["generationDetails"]["generations"][0], "content"
    assert name == "sf-generations"
    return body["generation"], "generatedText"


def vector_items(body: dict[str, Any]) -> list[dict[str, Any]]:
    items: list[dict[str, Any]] = body["data"] if "data" in body else body["embeddings"]
    return items


def answer(emulator: Emulator, http: httpx.Client, sf_headers: dict[str, str],
           db_headers: dict[str, str], name: str, case: str) -> Any:
    provider, path, body = BODIES[name]
    emulator.configure(hostile=case)
    response = http.post(path, headers=headers_for(provider, sf_headers, db_headers), json=body)
    assert response.status_code == 200
    assert response.headers["content-type"] == "application/json"
    return response.json()


@pytest.mark.parametrize("name", list(BODIES))
def test_empty_object(emulator: Emulator, http: httpx.Client, sf_headers: dict[str, str],
                      db_headers: dict[str, str], name: str) -> None:
    assert answer(emulator, http, sf_headers, db_headers, name, "empty_object") == {}


EMPTY_CHOICES: dict[str, Callable[[Any], bool]] = {
    "db-chat-invocations": lambda b: b["choices"] == [] and b["object"] == "chat.completion",
    "db-chat-openai": lambda b: b["choices"] == [],
    "db-completions": lambda b: b["choices"] == [] and b["object"] == "text_completion",
    "db-responses": lambda b: b["output"] == [] and b["status"] == "completed",
    "db-embeddings": lambda b: b["data"] == [] and b["object"] == "list",
    "db-embeddings-invocations": lambda b: b["data"] == [],
    "sf-chat": lambda b: b["generationDetails"]["generations"] == [],
    "sf-generations": lambda b: "generation" not in b and "parameters" in b,
    "sf-embeddings": lambda b: b["embeddings"] == [] and "parameters" in b,
}


@pytest.mark.parametrize("name", list(BODIES))
def test_empty_choices(emulator: Emulator, http: httpx.Client, sf_headers: dict[str, str],
                       db_headers: dict[str, str], name: str) -> None:
    assert EMPTY_CHOICES[name](answer(emulator, http, sf_headers, db_headers, name,
                                      "empty_choices"))


@pytest.mark.parametrize("name", list(BODIES))
def test_no_content(emulator: Emulator, http: httpx.Client, sf_headers: dict[str, str],
                    db_headers: dict[str, str], name: str) -> None:
    body = answer(emulator, http, sf_headers, db_headers, name, "no_content")
    if name in EMBEDDING_BODIES:
        items = vector_items(body)
        assert len(items) == 2 and all("embedding" not in item and "index" in item
                                       for item in items)
    else:
        container, key = text_field(name, body)
        assert key not in container and container  # the rest of it is there


@pytest.mark.parametrize("name", TEXT_BODIES)
@pytest.mark.parametrize(("case", "check"), [
    ("content_wrong_type", lambda text: text == 42),
    ("content_object", lambda text: isinstance(text, dict) and isinstance(text["value"], str)),
])
def test_content_of_the_wrong_type(emulator: Emulator, http: httpx.Client,
                                   sf_headers: dict[str, str], db_headers: dict[str, str],
                                   name: str, case: str, check: Callable[[Any], bool]) -> None:
    container, key = text_field(name, answer(emulator, http, sf_headers, db_headers, name, case))
    assert check(container[key])


def test_content_cases_leave_embeddings_alone(emulator: Emulator, http: httpx.Client,
                                              sf_headers: dict[str, str],
                                              db_headers: dict[str, str]) -> None:
    body = answer(emulator, http, sf_headers, db_headers, "db-embeddings", "content_wrong_type")
    assert len(vector_items(body)[0]["embedding"]) == DB_DIM
    assert served(emulator) == {}


# ---- vectors -------------------------------------------------------------------------------

#: (provider, path, body, dimension) of an embeddings request of three texts, in each form.
VECTOR_FORMS: dict[str, tuple[str, str, dict[str, Any], int]] = {
    "db-list": ("db", DB_EMBEDDINGS, {"model": DATABRICKS_EMBEDDINGS}, DB_DIM),
    "db-base64": ("db", DB_EMBEDDINGS, {"model": DATABRICKS_EMBEDDINGS,
                                        "encoding_format": "base64"}, DB_DIM),
    "db-invocations": ("db", DB_EMBED_INVOKE, {}, DB_DIM),
    "sf-list": ("sf", SF_EMBEDDINGS, {}, SF_DIM),
}


def floats(vector: Any) -> list[float]:
    if isinstance(vector, str):
        numbers = array("f")
        numbers.frombytes(base64.b64decode(vector))
        return numbers.tolist()
    assert all(isinstance(x, float) for x in vector)
    return list(vector)


def vector_check(case: str, dim: int, b64: bool) -> Callable[[Any], bool]:
    def has(test: Callable[[float], bool]) -> Callable[[Any], bool]:
        return lambda v: len(floats(v)) == dim and sum(map(test, floats(v))) == 1

    return {
        "vector_null": lambda v: v is None,
        "vector_strings": lambda v: len(v) == dim and all(isinstance(x, str) for x in v)
        and all(math.isfinite(float(x)) for x in v),
        "vector_bools": lambda v: len(v) == dim and all(isinstance(x, bool) for x in v),
        "vector_nested": lambda v: len(v) == 1 and len(floats(v[0])) == dim,
        "vector_empty": lambda v: v == ("" if b64 else []),
        "vector_mixed_dims": lambda v: len(floats(v)) == dim // 2,
        "vector_nan": has(math.isnan),
        "vector_inf": has(math.isinf),
    }[case]


@pytest.mark.parametrize("form", list(VECTOR_FORMS))
@pytest.mark.parametrize("case", [c for c in HOSTILE_CASES if c.startswith("vector_")])
def test_vectors(emulator: Emulator, http: httpx.Client, sf_headers: dict[str, str],
                 db_headers: dict[str, str], case: str, form: str) -> None:
    provider, path, body, dim = VECTOR_FORMS[form]
    emulator.configure(hostile=case)
    response = http.post(path, headers=headers_for(provider, sf_headers, db_headers),
                         json={**body, "input": ["tides", "moon", "stars"]})
    assert response.status_code == 200
    items = vector_items(json.loads(response.content))  # json.loads reads NaN and Infinity
    assert len(items) == 3
    b64 = form == "db-base64"
    for item in items[:2]:  # only the last vector of the batch is hostile
        assert isinstance(item["embedding"], str) == b64
        assert len(floats(item["embedding"])) == dim
        assert all(math.isfinite(x) for x in floats(item["embedding"]))
    assert vector_check(case, dim, b64)(items[-1]["embedding"])
    if case in ("vector_nan", "vector_inf") and not b64:
        literal = b"NaN" if case == "vector_nan" else b"Infinity"
        assert response.content.count(literal) == 1


def test_vector_cases_leave_text_answers_alone(emulator: Emulator, http: httpx.Client,
                                               sf_headers: dict[str, str],
                                               db_headers: dict[str, str]) -> None:
    body = answer(emulator, http, sf_headers, db_headers, "sf-chat", "vector_nan")
    assert body["generationDetails"]["generations"][0]["content"]
    assert served(emulator) == {}


# ---- credentials ---------------------------------------------------------------------------


def salesforce_token(emulator: Emulator, http: httpx.Client) -> dict[str, Any]:
    response = http.post("/services/oauth2/token", data={
        "grant_type": "client_credentials", "client_id": emulator.salesforce_client_id,
        "client_secret": emulator.salesforce_client_secret})
    assert response.status_code == 200
    body: dict[str, Any] = response.json()
    return body


def databricks_token(emulator: Emulator, http: httpx.Client) -> dict[str, Any]:
    response = http.post("/oidc/v1/token", data={"grant_type": "client_credentials"},
                         auth=(emulator.databricks_client_id, emulator.databricks_client_secret))
    assert response.status_code == 200
    body: dict[str, Any] = response.json()
    return body


def test_token_control_chars(emulator: Emulator, http: httpx.Client,
                             db_headers: dict[str, str]) -> None:
    emulator.configure(hostile="token_control_chars")
    for token in (salesforce_token(emulator, http)["access_token"],
                  databricks_token(emulator, http)["access_token"]):
        assert token.count("\n") == 1
        assert not token.startswith("\n") and not token.endswith("\n")
    assert served(emulator) == {"token_control_chars": 2}
    # The API routes answer as usual.
    answer = http.post(DB_INVOKE, headers=db_headers, json={"messages": user("Hi")}).json()
    assert answer["choices"][0]["message"]["content"]


@pytest.mark.parametrize(("case", "url"), [
    ("instance_url_http", "http://api.evil.example"),
    ("instance_url_userinfo", "https://127.0.0.1@evil.example"),
])
def test_instance_url(emulator: Emulator, http: httpx.Client, case: str, url: str) -> None:
    emulator.configure(hostile=case)
    body = salesforce_token(emulator, http)
    assert body["api_instance_url"] == url
    assert body["instance_url"] == emulator.url
    assert "\n" not in body["access_token"]
    assert "api_instance_url" not in databricks_token(emulator, http)
    assert served(emulator) == {case: 1}


def test_per_model_settings_do_not_reach_the_token_routes(emulator: Emulator,
                                                          http: httpx.Client) -> None:
    emulator.configure_model(SALESFORCE_CHAT_MODEL, hostile="instance_url_http")
    assert salesforce_token(emulator, http)["api_instance_url"] == emulator.url

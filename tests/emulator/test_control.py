"""The Emulator object: lifecycle, modes, control routes, the command line and HTTP basics."""

from __future__ import annotations

import asyncio
import json
import os
import re
import signal
import socket
import subprocess
import sys
import time
import uuid
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from sfmodels_emulator import Emulator

from .payloads import DATABRICKS_CHAT, SALESFORCE_CHAT_MODEL, user

INVOCATIONS = f"/serving-endpoints/{DATABRICKS_CHAT}/invocations"
SF_CHAT = f"/einstein/platform/v1/models/{SALESFORCE_CHAT_MODEL}/chat-generations"
HELLO = {"messages": user("Hello")}
REPO_ROOT = Path(__file__).resolve().parents[2]


# ---- addresses, credentials and environment ---------------------------------------------


def test_addresses(emulator: Emulator) -> None:
    assert re.fullmatch(r"http://127\.0\.0\.1:\d+", emulator.url)
    assert emulator.salesforce_domain == emulator.url
    assert emulator.salesforce_login_url == emulator.url + "/login"
    assert emulator.salesforce_api_base == emulator.url + "/einstein/platform/v1"
    assert emulator.databricks_host == emulator.url


def test_env(emulator: Emulator) -> None:
    assert emulator.env() == {
        "SALESFORCE_DOMAIN": emulator.url,
        "SALESFORCE_CLIENT_ID": emulator.salesforce_client_id,
        "SALESFORCE_CLIENT_SECRET": emulator.salesforce_client_secret,
        "DATABRICKS_HOST": emulator.url,
        "DATABRICKS_TOKEN": emulator.databricks_token,
    }


def test_default_credentials_do_not_look_like_real_secrets(emulator: Emulator) -> None:
    secrets = [
        emulator.salesforce_client_id,
        emulator.salesforce_client_secret,
        emulator.databricks_token,
        emulator.databricks_client_id,
        emulator.databricks_client_secret,
    ]
    for value in secrets:
        assert "emulator" in value
        assert not re.search(r"dapi[0-9a-f]{32}", value)
        assert not re.search(r"client_secret=[A-Za-z0-9]{20,}", f"client_secret={value}")


def test_url_before_start_is_an_error() -> None:
    emu = Emulator()
    with pytest.raises(RuntimeError):
        _ = emu.url
    emu.stop()  # harmless when not running


def test_bad_constructor_arguments() -> None:
    with pytest.raises(ValueError):
        Emulator(mode="fork")  # type: ignore[arg-type]
    with pytest.raises(ValueError):
        Emulator(fault_kinds=["teapot"])
    with pytest.raises(ValueError):
        Emulator(fault_rate=2)


# ---- control routes ----------------------------------------------------------------------


def test_counters(
    emulator: Emulator, http: httpx.Client, db_headers: dict[str, str], sf_headers: dict[str, str]
) -> None:
    http.post(INVOCATIONS, headers=db_headers, json=HELLO)
    http.post(INVOCATIONS, headers=db_headers, json=HELLO)
    http.post(SF_CHAT, headers=sf_headers, json=HELLO)
    counters = emulator.counters()
    assert set(counters) >= {
        "requests",
        "tokens_minted",
        "faults",
        "feedback",
        "max_in_flight",
        "in_flight",
    }
    assert counters["requests"]["databricks.invocations"] == 2
    assert counters["requests"]["salesforce.chat"] == 1
    assert set(counters["requests"]) >= {
        "salesforce.token",
        "salesforce.chat",
        "salesforce.generations",
        "salesforce.embeddings",
        "salesforce.feedback",
        "databricks.token",
        "databricks.invocations",
        "databricks.chat",
        "databricks.completions",
        "databricks.embeddings",
    }
    assert counters["tokens_minted"] == {"salesforce": 1, "databricks": 0}
    assert set(counters["faults"]) >= {"429", "500", "503", "reset", "truncated", "hang"}
    assert counters["max_in_flight"] == 1
    assert counters["in_flight"] == 0


def test_reset_restores_settings_and_zeroes_counters(
    emulator: Emulator, http: httpx.Client, db_headers: dict[str, str], sf_headers: dict[str, str]
) -> None:
    emulator.configure(latency_ms=5, embedding_max_batch=1, usage_mode="none", rate_limit_rpm=9)
    http.post(INVOCATIONS, headers=db_headers, json=HELLO)
    http.post(
        "/einstein/platform/v1/feedback", headers=sf_headers, json={"id": "a", "generationId": "b"}
    )
    assert emulator.feedback()
    emulator.reset()
    assert emulator.settings() == {
        "latency_ms": 0.0,
        "stream_delay_ms": 0.0,
        "fault_rate": 0.0,
        "fault_kinds": ["429", "500", "503", "reset", "truncated"],
        "retry_after_s": 0.0,
        "hang_s": 30.0,
        "token_ttl_s": None,
        "embedding_max_batch": 150,
        "rate_limit_rpm": None,
        "rate_limit_rps": None,
        "fault_token_routes": False,
        "usage_mode": "every",
        "fault_next": 0,
        "hostile": None,
        "hostile_trickle_s": 0.2,
        "hostile_endless_bytes": 256 * 1024 * 1024,
        "tool_call_index": True,
        "stream_format": "sse",
        "reasoning": False,
        "error_shape": "plain",
        "embedding_base64": "honor",
        "embedding_max_inputs_429": None,
        "extra_fields": False,
        "feedback_body": "json",
        "rate_limit_rph": None,
        "rate_limit_tpm": None,
        "rate_limit_tph": None,
        "rate_limit_retry_after": True,
        "model_settings": {},
        "configured_models": {},
        "max_input_tokens": None,
        "blocked_terms": [],
    }
    counters = emulator.counters()
    assert sum(counters["requests"].values()) == 0
    assert counters["feedback"] == 0
    assert emulator.feedback() == []
    # Issued tokens survive a reset.
    assert http.post(SF_CHAT, headers=sf_headers, json=HELLO).status_code == 200


def test_reset_returns_to_constructor_values() -> None:
    with Emulator(latency_ms=1, embedding_max_batch=7, rate_limit_rpm=100) as emu:
        emu.configure(latency_ms=0, embedding_max_batch=9)
        emu.reset()
        settings = emu.settings()
        assert settings["latency_ms"] == 1
        assert settings["embedding_max_batch"] == 7
        assert settings["rate_limit_rpm"] == 100


@pytest.mark.parametrize(
    "settings",
    [
        {"nonsense": 1},
        {"fault_rate": 1.5},
        {"fault_rate": "high"},
        {"fault_kinds": ["teapot"]},
        {"fault_kinds": []},
        {"usage_mode": "sometimes"},
        {"embedding_max_batch": 0},
        {"rate_limit_rpm": 0},
        {"latency_ms": -1},
        {"fault_token_routes": "yes"},
        {"stream_format": "xml"},
        {"error_shape": "fancy"},
        {"feedback_body": "html"},
        {"tool_call_index": 0},
        {"rate_limit_tph": 0},
        {"model_settings": {"databricks-gpt-5": {"latency_ms": 5}}},
        {"model_settings": {"databricks-gpt-5": {"usage_mode": "sometimes"}}},
        {"model_settings": ["databricks-gpt-5"]},
        {"configured_models": {"MyModel": "sfdc_ai__DefaultNoSuchBase"}},
    ],
)
def test_configure_rejects_bad_settings(emulator: Emulator, settings: dict[str, object]) -> None:
    with pytest.raises(ValueError):
        emulator.configure(**settings)
    assert emulator.settings()["fault_rate"] == 0.0


def test_configure_is_all_or_nothing(emulator: Emulator) -> None:
    with pytest.raises(ValueError):
        emulator.configure(latency_ms=50, fault_rate=3)
    assert emulator.settings()["latency_ms"] == 0.0


def test_configure_accepts_comma_separated_fault_kinds(emulator: Emulator) -> None:
    emulator.configure(fault_kinds="429,hang")
    assert emulator.settings()["fault_kinds"] == ["429", "hang"]


def test_unknown_control_route(emulator: Emulator, http: httpx.Client) -> None:
    assert http.get("/_emulator/nope").status_code == 404
    assert http.get("/_emulator/reset").status_code == 405
    assert http.get("/_emulator/health").json() == {"status": "ok"}


# ---- HTTP basics -------------------------------------------------------------------------


def test_every_response_has_a_request_id(http: httpx.Client, db_headers: dict[str, str]) -> None:
    responses = [
        http.post(INVOCATIONS, headers=db_headers, json=HELLO),
        http.post(INVOCATIONS, json=HELLO),
        http.get("/nowhere"),
        http.post("/serving-endpoints/x/invocations", headers=db_headers, json=HELLO),
    ]
    ids = {r.headers["x-request-id"] for r in responses}
    assert len(ids) == len(responses)
    for request_id in ids:
        uuid.UUID(request_id)
    for response in responses:
        json.loads(response.content)


def raw_exchange(url: str, payload: bytes) -> bytes:
    host, port = url.removeprefix("http://").split(":")
    with socket.create_connection((host, int(port)), timeout=5) as sock:
        sock.sendall(payload)
        chunks = []
        while True:
            data = sock.recv(65536)
            if not data:
                break
            chunks.append(data)
    return b"".join(chunks)


def test_chunked_request_body_and_connection_close(emulator: Emulator) -> None:
    body = json.dumps(HELLO).encode()
    half = len(body) // 2
    chunked = (
        f"{half:x}\r\n".encode()
        + body[:half]
        + b"\r\n"
        + f"{len(body) - half:x}\r\n".encode()
        + body[half:]
        + b"\r\n0\r\n\r\n"
    )
    request = (
        f"POST {INVOCATIONS} HTTP/1.1\r\nHost: x\r\n"
        f"Authorization: Bearer {emulator.databricks_token}\r\n"
        "Content-Type: application/json\r\nTransfer-Encoding: chunked\r\n"
        "Connection: close\r\n\r\n"
    ).encode() + chunked
    response = raw_exchange(emulator.url, request)  # returns once the server closes
    head, _, payload = response.partition(b"\r\n\r\n")
    assert head.startswith(b"HTTP/1.1 200 OK")
    assert b"connection: close" in head.lower()
    assert json.loads(payload)["object"] == "chat.completion"


def test_pipelined_keep_alive_requests(emulator: Emulator) -> None:
    body = json.dumps(HELLO).encode()
    one = (
        f"POST {INVOCATIONS} HTTP/1.1\r\nHost: x\r\n"
        f"Authorization: Bearer {emulator.databricks_token}\r\n"
        f"Content-Length: {len(body)}\r\n\r\n"
    ).encode() + body
    last = one.replace(b"Host: x\r\n", b"Host: x\r\nConnection: close\r\n")
    response = raw_exchange(emulator.url, one + one + last)
    assert response.count(b"HTTP/1.1 200 OK") == 3


def test_malformed_request_line(emulator: Emulator) -> None:
    response = raw_exchange(emulator.url, b"NONSENSE\r\n\r\n")
    assert response.startswith(b"HTTP/1.1 400")


def test_http_1_0_closes(emulator: Emulator) -> None:
    response = raw_exchange(emulator.url, b"GET /_emulator/health HTTP/1.0\r\n\r\n")
    assert response.startswith(b"HTTP/1.1 200")
    assert b'{"status":"ok"}' in response


# ---- lifecycle ---------------------------------------------------------------------------


def test_stop_frees_the_port() -> None:
    emu = Emulator().start()
    port = int(emu.url.rsplit(":", 1)[1])
    assert httpx.get(emu.url + "/_emulator/health").status_code == 200
    emu.stop()
    with pytest.raises(httpx.ConnectError):
        httpx.get(f"http://127.0.0.1:{port}/_emulator/health")
    with Emulator(port=port) as again:
        assert again.url.endswith(f":{port}")
        assert httpx.get(again.url + "/_emulator/health").status_code == 200


def test_stop_with_open_keep_alive_connections_and_streams() -> None:
    emu = Emulator(stream_delay_ms=200).start()
    client = httpx.Client(base_url=emu.url)
    headers = {"Authorization": f"Bearer {emu.databricks_token}"}
    assert client.post(INVOCATIONS, headers=headers, json=HELLO).status_code == 200
    with client.stream("POST", INVOCATIONS, headers=headers, json={**HELLO, "stream": True}) as r:
        assert r.status_code == 200
        started = time.perf_counter()
        emu.stop()
        assert time.perf_counter() - started < 2.0
        with pytest.raises(httpx.TransportError):
            r.read()
    client.close()


@pytest.fixture(scope="module")
def process_emulator() -> Iterator[Emulator]:
    with Emulator(mode="process", latency_ms=1, salesforce_client_id="proc-id") as emu:
        yield emu


def test_process_mode(process_emulator: Emulator) -> None:
    emu = process_emulator
    assert emu.mode == "process"
    form = {
        "grant_type": "client_credentials",
        "client_id": "proc-id",
        "client_secret": emu.salesforce_client_secret,
    }
    response = httpx.post(emu.url + "/services/oauth2/token", data=form)
    assert response.status_code == 200
    token = response.json()["access_token"]
    headers = {
        "Authorization": f"Bearer {token}",
        "x-sfdc-app-context": "EinsteinGPT",
        "x-client-feature-id": "ai-platform-models-connected-app",
    }
    assert httpx.post(emu.url + SF_CHAT, headers=headers, json=HELLO).status_code == 200
    counters = emu.counters()
    assert counters["requests"]["salesforce.chat"] == 1
    assert counters["tokens_minted"]["salesforce"] == 1
    emu.configure(fault_rate=1.0, fault_kinds=["500"])
    assert httpx.post(emu.url + SF_CHAT, headers=headers, json=HELLO).status_code == 500
    emu.reset()
    assert emu.settings()["latency_ms"] == 1
    assert emu.counters()["requests"]["salesforce.chat"] == 0
    emu.expire_tokens()
    assert httpx.post(emu.url + SF_CHAT, headers=headers, json=HELLO).status_code == 401
    assert emu.mint_salesforce_token()


def test_process_mode_stop_ends_the_child() -> None:
    emu = Emulator(mode="process").start()
    url = emu.url
    runner = emu._runner
    process = getattr(runner, "_process", None)
    assert process is not None
    emu.stop()
    assert process.poll() is not None
    with pytest.raises(httpx.ConnectError):
        httpx.get(url + "/_emulator/health")


def test_command_line_prints_url_and_exports() -> None:
    env = {**os.environ, "PYTHONPATH": str(REPO_ROOT), "PYTHONUNBUFFERED": "1"}
    process = subprocess.Popen(
        [sys.executable, "-m", "sfmodels_emulator", "--port", "0", "--latency-ms", "1"],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env=env,
    )
    try:
        assert process.stdout is not None
        first = process.stdout.readline()
        url = first.split()[-1]
        assert url.startswith("http://127.0.0.1:")
        lines = [process.stdout.readline() for _ in range(7)]
        exports = dict(
            line.removeprefix("export ").strip().split("=", 1)
            for line in lines
            if line.startswith("export ")
        )
        assert exports["SALESFORCE_DOMAIN"] == url
        assert exports["DATABRICKS_HOST"] == url
        assert set(exports) == {
            "SALESFORCE_DOMAIN",
            "SALESFORCE_CLIENT_ID",
            "SALESFORCE_CLIENT_SECRET",
            "DATABRICKS_HOST",
            "DATABRICKS_TOKEN",
        }
        assert httpx.get(url + "/_emulator/config").json()["latency_ms"] == 1
    finally:
        process.send_signal(signal.SIGINT)
        assert process.wait(10) == 0


def test_command_line_rejects_bad_settings() -> None:
    env = {**os.environ, "PYTHONPATH": str(REPO_ROOT)}
    result = subprocess.run(
        [sys.executable, "-m", "sfmodels_emulator", "--port", "0", "--fault-kinds", "teapot"],
        capture_output=True,
        text=True,
        env=env,
        timeout=30,
    )
    assert result.returncode == 2
    assert "teapot" in result.stderr


# ---- load --------------------------------------------------------------------------------


async def test_200_concurrent_requests(emulator: Emulator, db_headers: dict[str, str]) -> None:
    emulator.configure(latency_ms=100)
    limits = httpx.Limits(max_connections=300, max_keepalive_connections=300)
    async with httpx.AsyncClient(base_url=emulator.url, limits=limits, timeout=30) as client:
        responses = await asyncio.gather(
            *(
                client.post(INVOCATIONS, headers=db_headers, json={"messages": user(f"Q {i}")})
                for i in range(200)
            )
        )
    assert all(r.status_code == 200 for r in responses)
    counters = emulator.counters()
    assert counters["requests"]["databricks.invocations"] == 200
    assert counters["max_in_flight"] >= 100
    assert counters["in_flight"] == 0

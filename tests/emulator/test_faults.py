"""Injected faults, latency and rate limits, and what a client sees of them."""

from __future__ import annotations

import asyncio
import threading
import time
from collections import Counter

import httpx
import pytest

from sfmodels_emulator import Emulator

from .payloads import DATABRICKS_CHAT, SALESFORCE_CHAT_MODEL, user
from .shapes import DATABRICKS_ERROR, SALESFORCE_ERROR, assert_shape

INVOCATIONS = f"/serving-endpoints/{DATABRICKS_CHAT}/invocations"
SF_CHAT = f"/einstein/platform/v1/models/{SALESFORCE_CHAT_MODEL}/chat-generations"
HELLO = {"messages": user("Hello")}


def only(emulator: Emulator, kind: str, **settings: object) -> None:
    emulator.configure(fault_rate=1.0, fault_kinds=[kind], **settings)


@pytest.mark.parametrize(
    ("kind", "status", "sf_code", "db_code"),
    [
        ("429", 429, "LIMIT_EXCEEDED", "REQUEST_LIMIT_EXCEEDED"),
        ("500", 500, "INTERNAL_ERROR", "INTERNAL_ERROR"),
        ("503", 503, "INTERNAL_ERROR", "TEMPORARILY_UNAVAILABLE"),
    ],
)
def test_status_faults_use_provider_bodies(
    emulator: Emulator,
    http: httpx.Client,
    sf_headers: dict[str, str],
    db_headers: dict[str, str],
    kind: str,
    status: int,
    sf_code: str,
    db_code: str,
) -> None:
    only(emulator, kind, retry_after_s=2)
    sf = http.post(SF_CHAT, headers=sf_headers, json=HELLO)
    assert sf.status_code == status
    assert_shape(sf.json(), SALESFORCE_ERROR)
    assert sf.json()["errorCode"] == sf_code
    db = http.post(INVOCATIONS, headers=db_headers, json=HELLO)
    assert db.status_code == status
    assert_shape(db.json(), DATABRICKS_ERROR)
    assert db.json()["error_code"] == db_code
    for response in (sf, db):
        assert response.headers["x-request-id"]
        if kind in ("429", "503"):
            assert response.headers["retry-after"] == "2"
        else:
            assert "retry-after" not in response.headers
    assert emulator.counters()["faults"][kind] == 2


def test_retry_after_is_whole_seconds(
    emulator: Emulator, http: httpx.Client, db_headers: dict[str, str]
) -> None:
    only(emulator, "429")
    assert http.post(INVOCATIONS, headers=db_headers, json=HELLO).headers["retry-after"] == "0"
    emulator.configure(retry_after_s=0.3)
    assert http.post(INVOCATIONS, headers=db_headers, json=HELLO).headers["retry-after"] == "1"


def test_reset_fault_is_a_connection_error(
    emulator: Emulator, http: httpx.Client, db_headers: dict[str, str]
) -> None:
    only(emulator, "reset")
    with pytest.raises(httpx.TransportError) as caught:
        http.post(INVOCATIONS, headers=db_headers, json=HELLO)
    assert not isinstance(caught.value, httpx.TimeoutException)
    assert emulator.counters()["faults"]["reset"] == 1
    emulator.configure(fault_rate=0.0)
    assert http.post(INVOCATIONS, headers=db_headers, json=HELLO).status_code == 200


def test_truncated_body_is_an_error(
    emulator: Emulator, http: httpx.Client, sf_headers: dict[str, str]
) -> None:
    only(emulator, "truncated")
    with pytest.raises(httpx.RemoteProtocolError):
        http.post(SF_CHAT, headers=sf_headers, json=HELLO)
    assert emulator.counters()["faults"]["truncated"] == 1


def test_truncated_stream_sends_headers_then_closes(
    emulator: Emulator, http: httpx.Client, db_headers: dict[str, str]
) -> None:
    only(emulator, "truncated")
    with http.stream(
        "POST", INVOCATIONS, headers=db_headers, json={**HELLO, "stream": True}
    ) as response:
        assert response.status_code == 200
        assert response.headers["content-type"] == "text/event-stream"
        with pytest.raises(httpx.RemoteProtocolError):
            response.read()


def test_hang_fault_then_close(
    emulator: Emulator, http: httpx.Client, db_headers: dict[str, str]
) -> None:
    only(emulator, "hang", hang_s=0.3)
    started = time.perf_counter()
    with pytest.raises(httpx.RemoteProtocolError):
        http.post(INVOCATIONS, headers=db_headers, json=HELLO)
    assert time.perf_counter() - started >= 0.29


def test_hang_fault_times_out_client_and_is_released(
    emulator: Emulator, db_headers: dict[str, str]
) -> None:
    only(emulator, "hang", hang_s=30)
    with (
        httpx.Client(base_url=emulator.url, timeout=0.3) as client,
        pytest.raises(httpx.ReadTimeout),
    ):
        client.post(INVOCATIONS, headers=db_headers, json=HELLO)
    deadline = time.monotonic() + 5
    while emulator.counters()["in_flight"] and time.monotonic() < deadline:
        time.sleep(0.02)
    assert emulator.counters()["in_flight"] == 0


def test_stop_cancels_hanging_and_streaming_responses() -> None:
    emu = Emulator(fault_rate=1.0, fault_kinds=["hang"], hang_s=60).start()
    errors: list[BaseException] = []

    def call() -> None:
        try:
            httpx.post(
                emu.url + INVOCATIONS,
                headers={"Authorization": f"Bearer {emu.databricks_token}"},
                json=HELLO,
                timeout=30,
            )
        except BaseException as exc:
            errors.append(exc)

    threads = [threading.Thread(target=call) for _ in range(3)]
    for thread in threads:
        thread.start()
    deadline = time.monotonic() + 5
    while emu.counters()["in_flight"] < 3 and time.monotonic() < deadline:
        time.sleep(0.02)
    assert emu.counters()["in_flight"] == 3
    started = time.perf_counter()
    emu.stop()
    assert time.perf_counter() - started < 2.0
    for thread in threads:
        thread.join(5)
    assert len(errors) == 3
    assert all(isinstance(e, httpx.TransportError) for e in errors)


def test_fault_rate_is_seeded_and_counted(emulator: Emulator, db_headers: dict[str, str]) -> None:
    emulator.configure(fault_rate=0.5, fault_kinds=["500", "503"])

    def run() -> list[int]:
        emulator.reset()
        emulator.configure(fault_rate=0.5, fault_kinds=["500", "503"])
        with httpx.Client(base_url=emulator.url) as client:
            return [
                client.post(INVOCATIONS, headers=db_headers, json=HELLO).status_code
                for _ in range(40)
            ]

    first = run()
    counts = Counter(first)
    assert 5 < counts[200] < 35
    assert counts[500] + counts[503] == 40 - counts[200]
    faults = emulator.counters()["faults"]
    assert faults["500"] == counts[500] and faults["503"] == counts[503]
    assert run() == first


def test_token_routes_are_spared_unless_asked(emulator: Emulator, http: httpx.Client) -> None:
    only(emulator, "500")
    form = {
        "grant_type": "client_credentials",
        "client_id": emulator.salesforce_client_id,
        "client_secret": emulator.salesforce_client_secret,
    }
    assert http.post("/services/oauth2/token", data=form).status_code == 200
    emulator.configure(fault_token_routes=True, fault_kinds=["503"], retry_after_s=1)
    response = http.post("/services/oauth2/token", data=form)
    assert response.status_code == 503
    assert response.json()["error"] == "temporarily_unavailable"
    assert response.headers["retry-after"] == "1"
    auth = (emulator.databricks_client_id, emulator.databricks_client_secret)
    response = http.post("/oidc/v1/token", data={"grant_type": "client_credentials"}, auth=auth)
    assert response.status_code == 503


def test_control_routes_are_never_faulted(emulator: Emulator) -> None:
    only(emulator, "reset", fault_token_routes=True)
    assert emulator.counters()["faults"]["reset"] == 0
    emulator.mint_salesforce_token()


def test_latency(emulator: Emulator, http: httpx.Client, db_headers: dict[str, str]) -> None:
    emulator.configure(latency_ms=150)
    started = time.perf_counter()
    assert http.post(INVOCATIONS, headers=db_headers, json=HELLO).status_code == 200
    assert time.perf_counter() - started >= 0.15


async def test_latency_does_not_serialize_requests(
    emulator: Emulator, db_headers: dict[str, str]
) -> None:
    emulator.configure(latency_ms=200)
    async with httpx.AsyncClient(base_url=emulator.url) as client:
        started = time.perf_counter()
        responses = await asyncio.gather(
            *(client.post(INVOCATIONS, headers=db_headers, json=HELLO) for _ in range(20))
        )
        elapsed = time.perf_counter() - started
    assert all(r.status_code == 200 for r in responses)
    assert elapsed < 1.5
    assert emulator.counters()["max_in_flight"] >= 10


def test_rate_limit_per_endpoint(
    emulator: Emulator,
    http: httpx.Client,
    db_headers: dict[str, str],
    sf_headers: dict[str, str],
) -> None:
    emulator.configure(rate_limit_rpm=3)
    for _ in range(3):
        assert http.post(INVOCATIONS, headers=db_headers, json=HELLO).status_code == 200
    limited = http.post(INVOCATIONS, headers=db_headers, json=HELLO)
    assert limited.status_code == 429
    assert limited.json()["error_code"] == "REQUEST_LIMIT_EXCEEDED"
    assert 1 <= int(limited.headers["retry-after"]) <= 60
    other = "/serving-endpoints/databricks-claude-sonnet-4-5/invocations"
    assert http.post(other, headers=db_headers, json=HELLO).status_code == 200
    for _ in range(3):
        assert http.post(SF_CHAT, headers=sf_headers, json=HELLO).status_code == 200
    limited = http.post(SF_CHAT, headers=sf_headers, json=HELLO)
    assert limited.status_code == 429
    assert limited.json()["errorCode"] == "LIMIT_EXCEEDED"
    assert int(limited.headers["retry-after"]) >= 1
    assert emulator.counters()["rate_limited"] == 2
    emulator.reset()
    assert http.post(INVOCATIONS, headers=db_headers, json=HELLO).status_code == 200

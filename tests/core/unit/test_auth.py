"""Token minting, caching, refresh and single-flight, against fake token endpoints."""

from __future__ import annotations

import asyncio
import base64
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from urllib.parse import parse_qs

import httpx
import pytest
from pydantic import SecretStr

from sfmodels_core import DatabricksClient, SalesforceClient
from sfmodels_core.auth import SalesforceClientCredentials
from sfmodels_core.defaults import SALESFORCE_TOKEN_LIFETIME
from sfmodels_core.errors import AuthenticationError, TokenError

from .fakes import Recorder, make_jwt, sf_chat_body, sf_token_body

INVALID_AUTH = {"errorCode": "INVALID_AUTH", "messageCode": "E1",
                "message": "Access bearer token is missing or invalid"}
SF = {"domain": "https://acme.my.salesforce.com", "client_id": "key", "client_secret": "s3cr3t"}


def sf_service(token_delay: float = 0.0, lifetime: float = 1800.0):
    state = {"mints": 0}

    def handler(request: httpx.Request) -> httpx.Response:
        if request.url.path == "/services/oauth2/token":
            time.sleep(token_delay)
            state["mints"] += 1
            token = make_jwt(exp=time.time() + lifetime, n=state["mints"])
            return httpx.Response(200, json=sf_token_body(token))
        return httpx.Response(200, json=sf_chat_body())

    return Recorder(handler), state


def test_salesforce_mints_once_and_reuses_the_token() -> None:
    rec, state = sf_service()
    with SalesforceClient(**SF, env={}, **rec.transports()) as client:
        for _ in range(3):
            client.chat("sfdc_ai__DefaultGPT4Omni", [{"role": "user", "content": "hi"}])
    assert state["mints"] == 1
    token_request = rec.requests[0]
    assert token_request.url == "https://acme.my.salesforce.com/services/oauth2/token"
    assert parse_qs(token_request.content.decode()) == {
        "grant_type": ["client_credentials"], "client_id": ["key"], "client_secret": ["s3cr3t"]}
    # The API base comes from the token's api_instance_url.
    assert str(rec.requests[1].url) == (
        "https://api.example.test/einstein/platform/v1/models/sfdc_ai__DefaultGPT4Omni/"
        "chat-generations")
    assert rec.requests[1].headers["authorization"].startswith("Bearer ey")


async def test_64_concurrent_async_callers_cause_one_mint() -> None:
    state = {"mints": 0}

    async def handler(request: httpx.Request) -> httpx.Response:
        if request.url.path == "/services/oauth2/token":
            state["mints"] += 1
            await asyncio.sleep(0.05)
            return httpx.Response(200, json=sf_token_body(make_jwt(exp=time.time() + 1800)))
        return httpx.Response(200, json=sf_chat_body())

    client = SalesforceClient(**SF, env={}, async_transport=httpx.MockTransport(handler))
    results = await asyncio.gather(*(
        client.achat("m", [{"role": "user", "content": str(i)}]) for i in range(64)))
    await client.aclose()
    assert len(results) == 64
    assert state["mints"] == 1
    assert client.auth.mints == 1


def test_16_threads_cause_one_mint() -> None:
    rec, state = sf_service(token_delay=0.05)
    client = SalesforceClient(**SF, env={}, **rec.transports())
    barrier = threading.Barrier(16)

    def call(i: int) -> str:
        barrier.wait()
        return client.chat("m", [{"role": "user", "content": str(i)}]).text

    with ThreadPoolExecutor(16) as pool:
        assert list(pool.map(call, range(16))) == ["Hello!"] * 16
    client.close()
    assert state["mints"] == 1


async def test_threads_and_tasks_together_cause_one_mint() -> None:
    rec, state = sf_service(token_delay=0.05)
    client = SalesforceClient(**SF, env={}, **rec.transports())
    threads = [threading.Thread(target=client.chat, args=("m", [{"role": "user", "content": "x"}]))
               for _ in range(8)]
    for t in threads:
        t.start()
    await asyncio.gather(*(client.achat("m", [{"role": "user", "content": "y"}])
                           for _ in range(8)))
    for t in threads:
        t.join()
    assert state["mints"] == 1


def test_token_is_refreshed_ahead_of_expiry() -> None:
    mints = []

    def handler(request: httpx.Request) -> httpx.Response:
        if request.url.path == "/oidc/v1/token":
            mints.append(request)
            return httpx.Response(200, json={"access_token": f"tok{len(mints)}",
                                             "token_type": "Bearer", "expires_in": 0.3})
        return httpx.Response(200, json={"choices": [{"message": {"content": "ok"}}]})

    rec = Recorder(handler)
    with DatabricksClient(host="https://adb.example.test", client_id="sp", client_secret="x",
                          env={}, **rec.transports()) as client:
        client.chat("ep", [{"role": "user", "content": "a"}])
        client.chat("ep", [{"role": "user", "content": "a"}])
        assert len(mints) == 1
        time.sleep(0.3)
        client.chat("ep", [{"role": "user", "content": "a"}])
    assert len(mints) == 2
    api = [r for r in rec.requests if r.url.path != "/oidc/v1/token"]
    assert [r.headers["authorization"] for r in api] == ["Bearer tok1", "Bearer tok1",
                                                         "Bearer tok2"]
    basic = base64.b64encode(b"sp:x").decode()
    assert mints[0].headers["authorization"] == f"Basic {basic}"
    assert parse_qs(mints[0].content.decode()) == {"grant_type": ["client_credentials"],
                                                   "scope": ["all-apis"]}


@pytest.mark.parametrize("use_async", [False, True])
async def test_401_causes_one_remint_and_one_resend(use_async: bool) -> None:
    mints = []
    seen = []

    def handler(request: httpx.Request) -> httpx.Response:
        if request.url.path == "/services/oauth2/token":
            mints.append(1)
            return httpx.Response(200, json=sf_token_body(make_jwt(exp=time.time() + 1800,
                                                                   n=len(mints))))
        seen.append(request.headers["authorization"])
        if len(seen) == 1:  # the first token was revoked server-side
            return httpx.Response(401, json=INVALID_AUTH)
        return httpx.Response(200, json=sf_chat_body())

    rec = Recorder(handler)
    client = SalesforceClient(**SF, env={}, **rec.transports())
    msgs = [{"role": "user", "content": "hi"}]
    result = await client.achat("m", msgs) if use_async else client.chat("m", msgs)
    assert result.text == "Hello!"
    assert len(mints) == 2
    assert len(seen) == 2 and seen[0] != seen[1]


def test_401_after_remint_is_an_authentication_error_without_a_loop(sleeps: list[float]) -> None:
    calls = {"api": 0, "mint": 0}

    def handler(request: httpx.Request) -> httpx.Response:
        if request.url.path == "/services/oauth2/token":
            calls["mint"] += 1
            return httpx.Response(200, json=sf_token_body(make_jwt(exp=time.time() + 1800)))
        calls["api"] += 1
        return httpx.Response(401, json=INVALID_AUTH)

    client = SalesforceClient(**SF, env={}, **Recorder(handler).transports())
    with pytest.raises(AuthenticationError) as info:
        client.chat("m", [{"role": "user", "content": "hi"}])
    assert calls == {"api": 2, "mint": 2}
    assert info.value.status_code == 401
    assert info.value.error_code == "INVALID_AUTH"
    assert "sfap_api" in (info.value.hint or "")
    assert sleeps == []


def test_static_token_401_is_not_resent() -> None:
    rec = Recorder(lambda r: httpx.Response(401, json={"error_code": "UNAUTHENTICATED",
                                                        "message": "Invalid token"}))
    client = DatabricksClient(host="https://adb.example.test", api_key="pat", env={},
                              **rec.transports())
    with pytest.raises(AuthenticationError, match="Invalid token"):
        client.chat("ep", [{"role": "user", "content": "a"}])
    assert len(rec.requests) == 1
    assert rec.requests[0].headers["authorization"] == "Bearer pat"


def test_my_domain_hint_on_invalid_grant() -> None:
    rec = Recorder(lambda r: httpx.Response(400, json={
        "error": "invalid_grant", "error_description": "request not supported on this domain"}))
    client = SalesforceClient(**SF, env={}, **rec.transports())
    with pytest.raises(TokenError) as info:
        client.chat("m", [{"role": "user", "content": "hi"}])
    err = info.value
    assert err.status_code == 400 and err.error_code == "invalid_grant"
    assert "My Domain" in str(err)
    assert len(rec.requests) == 1  # a 400 from the token endpoint is not retried


@pytest.mark.parametrize("body, expected", [
    ({"error": "invalid_client_id", "error_description": "client identifier invalid"},
     "consumer key"),
    ({"error": "invalid_grant", "error_description": "no client credentials user enabled"},
     "Run As"),
])
def test_token_error_hints(body: dict[str, str], expected: str) -> None:
    rec = Recorder(lambda r: httpx.Response(400, json=body))
    client = SalesforceClient(**SF, env={}, **rec.transports())
    with pytest.raises(TokenError, match=expected):
        client.chat("m", [{"role": "user", "content": "hi"}])


def test_token_endpoint_answering_html_is_a_clear_error() -> None:
    rec = Recorder(lambda r: httpx.Response(200, text="<html>login</html>"))
    client = SalesforceClient(**SF, env={}, **rec.transports())
    with pytest.raises(TokenError, match="without an access token"):
        client.chat("m", [{"role": "user", "content": "hi"}])


def test_salesforce_lifetime_from_exp_claim_else_issued_at() -> None:
    source = SalesforceClientCredentials("https://acme.my.salesforce.com", "k", SecretStr("s"))
    exp = time.time() + 600
    token = source.parse_response(httpx.Response(200, json=sf_token_body(make_jwt(exp=exp))))
    assert token.expires_at == int(exp)
    assert token.extra["api_instance_url"] == "https://api.example.test"
    body = sf_token_body("opaque-token-without-claims")
    body["issued_at"] = str(int((time.time() - 100) * 1000))
    token = source.parse_response(httpx.Response(200, json=body))
    assert token.expires_at == pytest.approx(time.time() - 100 + SALESFORCE_TOKEN_LIFETIME, abs=2)


async def test_a_sync_call_on_the_loop_thread_during_an_async_mint_does_not_deadlock() -> None:
    async def ahandler(request: httpx.Request) -> httpx.Response:
        if request.url.path == "/services/oauth2/token":
            await asyncio.sleep(0.2)
            return httpx.Response(200, json=sf_token_body(make_jwt(exp=time.time() + 1800)))
        return httpx.Response(200, json=sf_chat_body())

    def handler(request: httpx.Request) -> httpx.Response:
        if request.url.path == "/services/oauth2/token":
            return httpx.Response(200, json=sf_token_body(make_jwt(exp=time.time() + 1800)))
        return httpx.Response(200, json=sf_chat_body())

    client = SalesforceClient(**SF, env={}, transport=httpx.MockTransport(handler),
                              async_transport=httpx.MockTransport(ahandler))
    pending = asyncio.ensure_future(client.achat("m", [{"role": "user", "content": "a"}]))
    await asyncio.sleep(0.05)  # the async mint is now in flight on this loop
    started = time.monotonic()
    assert client.chat("m", [{"role": "user", "content": "b"}]).text == "Hello!"  # sync, here
    assert time.monotonic() - started < 1
    assert (await pending).text == "Hello!"


async def test_waiters_outlive_a_cancelled_minter() -> None:
    minted = []

    async def handler(request: httpx.Request) -> httpx.Response:
        if request.url.path == "/services/oauth2/token":
            minted.append(1)
            await asyncio.sleep(0.2)
            return httpx.Response(200, json=sf_token_body(make_jwt(exp=time.time() + 1800)))
        return httpx.Response(200, json=sf_chat_body())

    client = SalesforceClient(**SF, env={}, async_transport=httpx.MockTransport(handler))
    first = asyncio.ensure_future(client.achat("m", [{"role": "user", "content": "a"}]))
    await asyncio.sleep(0.05)
    waiters = [asyncio.ensure_future(client.achat("m", [{"role": "user", "content": "b"}]))
               for _ in range(5)]
    await asyncio.sleep(0.05)
    first.cancel()  # the minter goes away: one waiter takes over, the others wait for it
    results = await asyncio.gather(*waiters)
    assert [r.text for r in results] == ["Hello!"] * 5
    assert len(minted) == 2
    with pytest.raises(asyncio.CancelledError):
        await first

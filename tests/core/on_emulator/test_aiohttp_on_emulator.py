"""``async_http="aiohttp"`` against the emulator: the same answers, retries, timeouts, streams,
errors, TLS context and closing as the default httpx path."""

from __future__ import annotations

import asyncio
import dataclasses
import gzip
import json
import socket
import threading
from collections.abc import Iterator

import httpx
import pytest

from sfmodels_core import ClientOptions, DatabricksClient, SalesforceClient
from sfmodels_core.databricks import merge_chunks
from sfmodels_core.errors import (
    APIConnectionError,
    APITimeoutError,
    ConfigurationError,
    InvalidInputError,
    ServerError,
)
from sfmodels_core.options import RetryPolicy
from sfmodels_emulator import Emulator

aiohttp = pytest.importorskip("aiohttp")

CHAT = "sfdc_ai__DefaultOpenAIGPT4OmniMini"
LLAMA = "databricks-meta-llama-3-3-70b-instruct"
GTE = "databricks-gte-large-en"
USER = [{"role": "user", "content": "Hello there"}]
QUICK = RetryPolicy(max_retries=2, initial_backoff=0.01, max_backoff=0.02)


def dbx(emu: Emulator, **kwargs: object) -> DatabricksClient:
    return DatabricksClient(host=emu.databricks_host, api_key=emu.databricks_token, env={},
                            async_http="aiohttp", **kwargs)  # type: ignore[arg-type]


def sf(emu: Emulator, **kwargs: object) -> SalesforceClient:
    return SalesforceClient(domain=emu.salesforce_domain, client_id=emu.salesforce_client_id,
                            client_secret=emu.salesforce_client_secret, env={},
                            async_http="aiohttp", **kwargs)  # type: ignore[arg-type]


async def test_answers_are_the_ones_httpx_gets(emulator: Emulator) -> None:
    reference = DatabricksClient(host=emulator.databricks_host, api_key=emulator.databricks_token,
                                 env={})
    async with reference, dbx(emulator) as client:
        chat, stream, vectors = await asyncio.gather(
            client.achat(LLAMA, USER),
            _collect(client.astream_chat(LLAMA, USER)),
            client.aembed(GTE, ["one", "two", "three"]))
        assert chat.text == (await reference.achat(LLAMA, USER)).text
        assert merge_chunks(stream).text == chat.text and len(stream) > 2
        assert vectors.vectors == (await reference.aembed(GTE, ["one", "two", "three"])).vectors
        pool = await client._transport.apool()
        assert type(pool).__name__ == "AiohttpPool"


async def test_oauth_tokens_are_minted_on_their_own_connections_and_refreshed(
        emulator: Emulator) -> None:
    async with sf(emulator) as client:
        first = await client.achat(CHAT, USER)
        emulator.expire_tokens()  # the next call is answered 401, then resent with a new token
        assert (await client.achat(CHAT, USER)).text == first.text
    assert emulator.counters()["tokens_minted"]["salesforce"] == 2


async def test_faults_are_retried_in_calls_and_streams(emulator: Emulator) -> None:
    emulator.configure(fault_rate=0.3, fault_kinds=["429", "500", "503", "reset", "truncated"])
    async with dbx(emulator, retry=RetryPolicy(max_retries=10, initial_backoff=0.01,
                                               max_backoff=0.05)) as client:
        answers = await asyncio.gather(*(client.achat(LLAMA, USER) for _ in range(20)))
        streams = [merge_chunks(await _collect(client.astream_chat(LLAMA, USER))).text
                   for _ in range(10)]
    assert len({a.text for a in answers}) == 1
    assert set(streams) == {answers[0].text}
    assert sum(emulator.counters()["faults"].values()) > 0


async def test_beyond_the_retry_budget_the_status_error_comes(emulator: Emulator) -> None:
    emulator.configure(fault_rate=1.0, fault_kinds=["503"])
    async with dbx(emulator, max_retries=1) as client:
        with pytest.raises(ServerError) as info:
            await client.achat(LLAMA, USER)
    assert info.value.status_code == 503
    assert emulator.counters()["requests"]["databricks.invocations"] == 2


async def test_a_hanging_server_times_out(emulator: Emulator) -> None:
    emulator.configure(fault_rate=1.0, fault_kinds=["hang"], hang_s=30)
    async with dbx(emulator, timeout=0.2, retry=dataclasses.replace(QUICK, max_retries=1)
                   ) as client:
        with pytest.raises(APITimeoutError, match="did not answer in time"):
            await client.achat(LLAMA, USER)
        with pytest.raises(APITimeoutError):
            await _collect(client.astream_chat(LLAMA, USER))


async def test_a_refused_connection_is_a_connection_error_after_the_retries() -> None:
    with socket.socket() as probe:  # a port nobody listens on
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    async with DatabricksClient(host=f"http://127.0.0.1:{port}", api_key="t", env={},
                                retry=QUICK, async_http="aiohttp") as client:
        with pytest.raises(APIConnectionError, match="ConnectError") as info:
            await client.achat(LLAMA, USER)
        assert client.throttle.requests == 3  # retried as a broken connection is
    assert not isinstance(info.value, APITimeoutError)


async def test_a_tls_handshake_nobody_answers_is_a_connect_timeout(emulator: Emulator) -> None:
    host = emulator.databricks_host.replace("http://", "")  # the emulator never answers TLS
    async with DatabricksClient(host=host, api_key="t", env={}, max_retries=0,
                                connect_timeout=0.3, async_http="aiohttp") as client:
        with pytest.raises(APITimeoutError) as info:
            await client.achat(LLAMA, USER)
    assert f"https://{host}/" in str(info.value) and "scheme" in (info.value.hint or "")


@pytest.fixture
def raw_server() -> Iterator[tuple[str, list[bytes], list[bytes]]]:
    """Answers each connection with the next of the ``answers`` it is given (raw bytes)."""
    listener = socket.create_server(("127.0.0.1", 0))
    answers: list[bytes] = []
    received: list[bytes] = []

    def serve() -> None:
        while True:
            try:
                conn, _ = listener.accept()
            except OSError:
                return
            with conn:
                received.append(conn.recv(65536))
                conn.sendall(answers.pop(0))

    threading.Thread(target=serve, daemon=True).start()
    yield f"127.0.0.1:{listener.getsockname()[1]}", answers, received
    listener.close()


async def test_a_plain_http_answer_to_tls_names_the_scheme_and_is_not_retried(
        raw_server: tuple[str, list[bytes], list[bytes]]) -> None:
    host, answers, received = raw_server
    answers.append(b"HTTP/1.1 400 Bad Request\r\nContent-Length: 0\r\n\r\n")
    async with DatabricksClient(host=host, api_key="t", env={}, max_retries=3,
                                async_http="aiohttp") as client:
        with pytest.raises(APIConnectionError) as info:
            await client.achat(LLAMA, USER)
    assert "plain HTTP" in str(info.value) and f"http://{host}" in (info.value.hint or "")
    assert len(received) == 1  # retrying cannot help


async def test_bodies_are_decoded_as_httpx_decodes_them(
        raw_server: tuple[str, list[bytes], list[bytes]]) -> None:
    host, answers, received = raw_server
    body = gzip.compress(json.dumps({"choices": [{"index": 0, "finish_reason": "stop", "message": {
        "role": "assistant", "content": "unzipped"}}]}).encode())
    answers.append(b"HTTP/1.1 200 OK\r\nContent-Type: application/json\r\n"
                   b"Content-Encoding: gzip\r\nConnection: close\r\n"
                   b"Content-Length: %d\r\n\r\n%s" % (len(body), body))
    async with DatabricksClient(host=f"http://{host}", api_key="t", env={},
                                async_http="aiohttp") as client:
        assert (await client.achat(LLAMA, USER)).text == "unzipped"
    request = received[0].lower()
    assert b"authorization: bearer t" in request and b"accept-encoding: gzip, deflate" in request


async def test_a_body_over_a_megabyte_is_sent_without_a_warning(emulator: Emulator) -> None:
    import warnings

    long = [{"role": "user", "content": "word " * 250_000}]
    async with dbx(emulator) as client:
        with warnings.catch_warnings():
            warnings.simplefilter("error", ResourceWarning)
            assert (await client.achat(LLAMA, long)).text


async def test_sync_calls_keep_httpx_and_their_own_headers(
        raw_server: tuple[str, list[bytes], list[bytes]]) -> None:
    host, answers, received = raw_server
    body = json.dumps({"choices": [{"index": 0, "message": {"content": "hi"}}]}).encode()
    answers.extend([b"HTTP/1.1 200 OK\r\nConnection: close\r\nContent-Length: %d\r\n\r\n%s"
                    % (len(body), body)] * 3)
    async with DatabricksClient(host=f"http://{host}", api_key="t", env={},
                                async_http="aiohttp") as client:
        client.chat(LLAMA, USER)  # the sync call first: the async one must not take its headers
        await client.achat(LLAMA, USER)
        client.chat(LLAMA, USER)
    agents = [next(line for line in r.lower().split(b"\r\n") if line.startswith(b"user-agent"))
              for r in received]
    assert [b"python-httpx" in a for a in agents] == [True, False, True]
    assert b"aiohttp" in agents[1]


async def test_a_stream_left_early_frees_its_connection(emulator: Emulator) -> None:
    async with dbx(emulator, max_connections=1) as client:
        for _ in range(3):  # one connection: a stream left open would block the next call
            stream = client.astream_chat(LLAMA, USER)
            await anext(stream)
            await stream.aclose()
        assert (await client.achat(LLAMA, USER)).text
        assert client.throttle.in_flight == 0


def test_every_loop_gets_sessions_closed_with_it_and_sharing_the_tls_context(
        emulator: Emulator) -> None:
    from sfmodels_core._pool import shared_ssl_context

    client = dbx(emulator)
    pools = []

    async def call() -> str:
        pools.append(await client._transport.apool())
        return (await client.achat(LLAMA, USER)).text

    assert asyncio.run(call()) == asyncio.run(call())
    assert pools[0] is not pools[1] and client._transport._apools == {}
    for pool in pools:
        for session in (pool._session, pool._token_session):
            assert session.closed
            assert session.connector is None or session.connector._ssl is shared_ssl_context()
    client.close()


async def test_aclose_closes_the_sessions(emulator: Emulator) -> None:
    client = dbx(emulator)
    await client.achat(LLAMA, USER)
    pool = await client._transport.apool()
    await client.aclose()
    assert pool._session.closed and pool._token_session.closed
    assert (await client.achat(LLAMA, USER)).text  # a new pool after closing


def test_aiohttp_errors_become_the_httpx_errors_they_correspond_to() -> None:
    from aiohttp.client_reqrep import ConnectionKey

    from sfmodels_core._aiohttp import transport_error

    request = httpx.Request("POST", "https://h.example/x")
    key = ConnectionKey("h.example", 443, True, True, None, None, None)
    cases = [
        (aiohttp.ConnectionTimeoutError("slow"), httpx.ConnectTimeout),
        (aiohttp.SocketTimeoutError("slow read"), httpx.ReadTimeout),
        (aiohttp.ClientConnectorError(key, ConnectionRefusedError(111, "Connection refused")),
         httpx.ConnectError),
        (aiohttp.ClientProxyConnectionError(key, OSError("proxy down")), httpx.ProxyError),
        (aiohttp.ServerDisconnectedError(), httpx.RemoteProtocolError),
        (aiohttp.ClientPayloadError("Response payload is not completed"),
         httpx.RemoteProtocolError),
        (aiohttp.ClientOSError(104, "Connection reset by peer"), httpx.NetworkError),
        (aiohttp.NonHttpUrlClientError("ftp://h.example"), httpx.UnsupportedProtocol),
    ]
    for error, expected in cases:
        mapped = transport_error(error, request)
        assert type(mapped) is expected, (error, mapped)
        assert mapped.request is request
    refused = transport_error(cases[2][0], request)
    assert str(refused) == "[Errno 111] Connection refused"  # worded as httpx words it


def test_proxies_come_from_the_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    from sfmodels_core._aiohttp import AiohttpPool

    monkeypatch.setenv("HTTPS_PROXY", "http://proxy.example:3128")
    monkeypatch.setenv("NO_PROXY", "local.example")

    async def lookups() -> list[str | None]:
        pool = AiohttpPool(headers={}, timeout=httpx.Timeout(5), max_connections=2)
        try:
            return [pool._proxy("https", "api.example"), pool._proxy("https", "local.example"),
                    pool._proxy("http", "api.example")]
        finally:
            await pool.aclose()

    assert asyncio.run(lookups()) == ["http://proxy.example:3128", None, None]


def test_the_option_is_checked_up_front(monkeypatch: pytest.MonkeyPatch) -> None:
    with pytest.raises(InvalidInputError, match="async_http must be one of"):
        ClientOptions(async_http="curl")
    with pytest.raises(InvalidInputError, match="one or the other"):
        DatabricksClient(host="https://h.example", api_key="t", env={}, async_http="aiohttp",
                         async_transport=httpx.MockTransport(lambda r: httpx.Response(200)))
    import importlib.util

    real = importlib.util.find_spec
    monkeypatch.setattr(importlib.util, "find_spec",
                        lambda name, *a: None if name == "aiohttp" else real(name, *a))
    with pytest.raises(ConfigurationError) as info:
        DatabricksClient(host="https://h.example", api_key="t", env={}, async_http="aiohttp")
    assert "pip install 'sfmodels[aiohttp]'" in (info.value.hint or "")


async def test_the_framework_classes_take_the_option(emulator: Emulator) -> None:
    from langchain_sfmodels import ChatDatabricks
    from llama_index_sfmodels import DatabricksLLM

    settings = {"host": emulator.databricks_host, "api_key": emulator.databricks_token,
                "async_http": "aiohttp"}
    async with ChatDatabricks(endpoint=LLAMA, **settings) as chat:
        assert (await chat.ainvoke("Hello there")).content
        assert chat.client.options.async_http == "aiohttp"
    llm = DatabricksLLM(endpoint=LLAMA, **settings)
    assert (await llm.acomplete("Hello there")).text
    assert llm.client.options.async_http == "aiohttp"
    await llm.aclose()
    with pytest.raises(ValueError, match="async_http"):
        ChatDatabricks(endpoint=LLAMA, async_http="aiohttp", client=DatabricksClient(
            host=emulator.databricks_host, api_key="t", env={}))


async def _collect(stream: object) -> list[object]:
    return [chunk async for chunk in stream]  # type: ignore[attr-defined]

"""The retry loop, Retry-After, error mapping and streams, against scripted fake services."""

from __future__ import annotations

import email.utils
import random
import time
from collections.abc import Iterator

import httpx
import pytest

from sfmodels_core import DatabricksClient
from sfmodels_core._retry import backoff_delay, parse_retry_after
from sfmodels_core.errors import (
    APIConnectionError,
    APITimeoutError,
    BadRequestError,
    NotFoundError,
    PermissionDeniedError,
    RateLimitError,
    ServerError,
)
from sfmodels_core.options import RetryPolicy

from .fakes import Recorder

OK = {"choices": [{"index": 0, "message": {"role": "assistant", "content": "fine"},
                   "finish_reason": "stop"}]}
MSGS = [{"role": "user", "content": "hi"}]


def scripted(*answers: httpx.Response | Exception) -> Recorder:
    queue = list(answers)

    def handler(request: httpx.Request) -> httpx.Response:
        answer = queue.pop(0) if queue else httpx.Response(200, json=OK)
        if isinstance(answer, Exception):
            raise answer
        return answer

    return Recorder(handler)


def client_for(rec: Recorder, **kwargs: object) -> DatabricksClient:
    return DatabricksClient(host="https://adb.example.test", api_key="pat", env={},
                            **rec.transports(), **kwargs)  # type: ignore[arg-type]


@pytest.mark.parametrize("use_async", [False, True])
async def test_429_with_retry_after_waits_that_long(sleeps: list[float], use_async: bool) -> None:
    rec = scripted(httpx.Response(429, headers={"Retry-After": "7"},
                                  json={"error_code": "REQUEST_LIMIT_EXCEEDED",
                                        "message": "Exceeded workspace QPS rate limit"}))
    client = client_for(rec)
    result = await client.achat("ep", MSGS) if use_async else client.chat("ep", MSGS)
    assert result.text == "fine"
    assert sleeps == [7.0]
    assert len(rec.requests) == 2


def test_retry_after_as_http_date() -> None:
    now = time.time()
    date = email.utils.formatdate(now + 30, usegmt=True)
    assert parse_retry_after(date, now=now) == pytest.approx(30, abs=1)
    assert parse_retry_after("garbage") is None
    assert parse_retry_after("-3") == 0.0


@pytest.mark.parametrize("status, error", [(500, ServerError), (503, ServerError),
                                           (502, ServerError), (423, ServerError),
                                           (408, ServerError), (409, ServerError),
                                           (429, RateLimitError)])
def test_retryable_statuses_are_retried_up_to_the_limit(
        sleeps: list[float], status: int, error: type[Exception]) -> None:
    rec = scripted(*[httpx.Response(status, json={"error_code": "X", "message": "busy"})] * 10)
    client = client_for(rec, max_retries=3)
    with pytest.raises(error) as info:
        client.chat("ep", MSGS)
    assert len(rec.requests) == 4
    assert len(sleeps) == 3
    assert sleeps == sorted(sleeps) or max(sleeps) <= 8  # backoff grows, within the cap
    assert info.value.status_code == status  # type: ignore[attr-defined]


@pytest.mark.parametrize("exc", [httpx.ConnectError("refused"), httpx.ReadError("reset"),
                                 httpx.RemoteProtocolError("peer closed connection")])
def test_connection_errors_are_retried_then_raised(sleeps: list[float],
                                                   exc: Exception) -> None:
    rec = scripted(exc, exc, exc)
    client = client_for(rec, max_retries=2)
    with pytest.raises(APIConnectionError) as info:
        client.chat("ep", MSGS)
    assert not isinstance(info.value, APITimeoutError)
    assert len(rec.requests) == 3
    recovered = client_for(scripted(exc), max_retries=2)
    assert recovered.chat("ep", MSGS).text == "fine"


def test_timeouts_become_api_timeout_error(sleeps: list[float]) -> None:
    rec = scripted(*[httpx.ReadTimeout("slow")] * 5)
    with pytest.raises(APITimeoutError):
        client_for(rec, max_retries=1).chat("ep", MSGS)
    assert len(rec.requests) == 2


@pytest.mark.parametrize("status, error, code", [
    (400, BadRequestError, "BAD_REQUEST"), (403, PermissionDeniedError, "PERMISSION_DENIED"),
    (404, NotFoundError, "RESOURCE_DOES_NOT_EXIST")])
def test_client_errors_are_not_retried(sleeps: list[float], status: int,
                                       error: type[Exception], code: str) -> None:
    rec = scripted(httpx.Response(status, headers={"x-request-id": "req-42"},
                                  json={"error_code": code, "message": "nope"}))
    with pytest.raises(error) as info:
        client_for(rec).chat("ep", MSGS)
    err = info.value
    assert len(rec.requests) == 1 and sleeps == []
    assert (err.status_code, err.error_code, err.provider_message, err.request_id) == (  # type: ignore[attr-defined]
        status, code, "nope", "req-42")
    assert "req-42" in str(err) and code in str(err)


def test_non_json_error_body_maps_too() -> None:
    rec = scripted(httpx.Response(404, text="<html>Not Found</html>"))
    with pytest.raises(NotFoundError, match="Not Found"):
        client_for(rec).chat("ep", MSGS)


def test_retry_after_beyond_the_cap_gives_up_at_once(sleeps: list[float]) -> None:
    rec = scripted(httpx.Response(429, headers={"Retry-After": "3600"},
                                  json={"error_code": "REQUEST_LIMIT_EXCEEDED", "message": "x"}))
    with pytest.raises(RateLimitError) as info:
        client_for(rec).chat("ep", MSGS)
    assert info.value.retry_after == 3600
    assert sleeps == []


def test_backoff_is_capped_exponential_with_jitter() -> None:
    policy = RetryPolicy(initial_backoff=0.5, max_backoff=8.0)
    rng = random.Random(1)
    for n, ceiling in [(1, 0.5), (2, 1.0), (3, 2.0), (4, 4.0), (5, 8.0), (9, 8.0)]:
        delays = [backoff_delay(n, policy, rng) for _ in range(50)]
        assert all(ceiling / 2 <= d <= ceiling for d in delays)
        assert len(set(delays)) > 1


def test_requests_per_minute_paces_calls(sleeps: list[float],
                                         monkeypatch: pytest.MonkeyPatch) -> None:
    import sfmodels_core._throttle as throttle

    monkeypatch.setattr(throttle.time, "monotonic", lambda: 100.0)  # a clock that stands still
    client = client_for(scripted(), requests_per_minute=600)  # one every 0.1 s
    for _ in range(4):
        client.chat("ep", MSGS)
    # Sleeps are faked and the clock stands still, so each call books the slot after the last.
    assert sleeps == pytest.approx([0.1, 0.2, 0.3], abs=0.01)


# -- streams --------------------------------------------------------------------------------------
class ByteStream(httpx.SyncByteStream):
    def __init__(self, chunks: list[bytes | Exception]) -> None:
        self.chunks = chunks

    def __iter__(self) -> Iterator[bytes]:
        for chunk in self.chunks:
            if isinstance(chunk, Exception):
                raise chunk
            yield chunk


def sse(*events: str) -> list[bytes | Exception]:
    return [f"data: {e}\n\n".encode() for e in events]


CHUNK = '{"id":"c1","choices":[{"index":0,"delta":{"content":"%s"},"finish_reason":null}]}'


def test_stream_is_retried_before_the_first_byte(sleeps: list[float]) -> None:
    rec = scripted(
        httpx.Response(503, json={"error_code": "TEMPORARILY_UNAVAILABLE", "message": "x"}),
        httpx.Response(200, stream=ByteStream([httpx.RemoteProtocolError("closed")])),
        httpx.Response(200, stream=ByteStream(sse(CHUNK % "a", CHUNK % "b", "[DONE]"))))
    chunks = list(client_for(rec).stream_chat("ep", MSGS))
    assert "".join(c.text for c in chunks) == "ab"
    assert len(rec.requests) == 3 and len(sleeps) == 2


def test_stream_broken_after_the_first_byte_is_not_retried(sleeps: list[float]) -> None:
    rec = scripted(httpx.Response(200, stream=ByteStream(
        [*sse(CHUNK % "a"), httpx.ReadError("reset")])))
    seen = []
    with pytest.raises(APIConnectionError):
        for chunk in client_for(rec).stream_chat("ep", MSGS):
            seen.append(chunk.text)
    assert seen == ["a"]
    assert len(rec.requests) == 1 and sleeps == []


def test_one_client_object_serves_successive_event_loops() -> None:
    import asyncio

    client = client_for(scripted())

    async def call() -> str:
        return (await client.achat("ep", MSGS)).text

    # Each asyncio.run has a new loop; connections of the old one must not be reused.
    assert asyncio.run(call()) == "fine"
    assert asyncio.run(call()) == "fine"


async def test_async_pool_gives_each_call_a_client_of_one_free_connection() -> None:
    import asyncio

    from sfmodels_core._pool import AsyncPool

    made: list[int] = []

    def make(limits: httpx.Limits) -> httpx.AsyncClient:
        made.append(limits.max_connections or 0)
        return httpx.AsyncClient()

    pool = AsyncPool(make, httpx.Limits(max_connections=25))
    assert made == [1]  # the first client (its headers start every request); others on use
    held = [await pool.acquire() for _ in range(25)]
    assert sorted(held) == list(range(25))  # never more slots than connections
    pool.client(held[1])
    assert made == [1, 1]
    waiter = asyncio.ensure_future(pool.acquire())
    await asyncio.sleep(0)
    assert not waiter.done()  # the 26th call waits in our queue, not inside httpx
    pool.release(held[3])
    assert await waiter == held[3]
    for index in held:
        pool.release(index)
    # Last in, first out: calls one after another reuse one client and its warm connection.
    for _ in range(3):
        index = await pool.acquire()
        pool.release(index)
        assert index == held[-1]
    assert pool.token_client is pool.token_client  # created on first use, with its own pool
    assert made == [1, 1, 4]
    await pool.aclose()
    assert len(pool.clients) == 3 and all(client.is_closed for client in pool.clients)
    with pytest.raises(RuntimeError, match="closed"):
        pool.client(held[2])  # a closed pool makes no new clients


async def test_calls_one_after_another_use_one_client() -> None:
    client = client_for(scripted())
    for _ in range(5):
        await client.achat("ep", MSGS)
    pool = await client._transport.apool()
    assert len(pool.clients) == 1  # one connection kept warm; no token client for a PAT
    await client.aclose()


async def test_cookies_are_neither_parsed_nor_sent_back() -> None:
    def handler(request: httpx.Request) -> httpx.Response:
        assert "cookie" not in request.headers  # no state carried between calls
        return httpx.Response(200, json=OK, headers={"set-cookie": "BrowserId=abc; Path=/"})

    client = client_for(Recorder(handler))
    for _ in range(2):
        client.chat("ep", MSGS)
        await client.achat("ep", MSGS)
    assert len(client._transport.client.cookies) == 0


@pytest.mark.parametrize("body", [b"<html>gateway</html>", b'["x"]',
                                  b'{"choices": [{"message": "oops"}]}'])
async def test_a_2xx_body_of_the_wrong_shape_is_an_error_of_ours(body: bytes) -> None:
    from sfmodels_core.errors import SFModelsError

    rec = Recorder(lambda r: httpx.Response(200, content=body,
                                            headers={"x-request-id": "req-7"}))
    client = client_for(rec)
    for call in (lambda: client.chat("ep", MSGS),):
        with pytest.raises(SFModelsError) as info:
            call()
        assert info.value.status_code == 200 and info.value.request_id == "req-7"
        assert "cannot use" in str(info.value)
    with pytest.raises(SFModelsError, match="cannot use"):
        await client.achat("ep", MSGS)


@pytest.mark.parametrize("data, problem", [
    ([{"index": 0, "embedding": [1.0]}], "2 texts were sent but 1 vectors came back"),
    ([{"index": 0, "embedding": [1.0]}, {"index": 0, "embedding": [2.0]}], "indexes"),
    ([{"index": 0}, {"index": 1}], "the vector of text 0 is missing"),
])
def test_embedding_answers_must_match_the_texts(data: list, problem: str) -> None:
    from sfmodels_core.errors import SFModelsError

    rec = Recorder(lambda r: httpx.Response(200, json={"data": data}))
    with pytest.raises(SFModelsError, match=problem):
        client_for(rec).embed("gte", ["a", "b"])


def test_a_stream_event_of_the_wrong_shape_is_an_error_of_ours() -> None:
    from sfmodels_core.errors import SFModelsError

    rec = scripted(httpx.Response(200, stream=ByteStream(sse(CHUNK % "a", '["x"]'))))
    with pytest.raises(SFModelsError, match="stream event"):
        list(client_for(rec).stream_chat("ep", MSGS))



def test_each_event_loop_gets_a_pool_closed_when_the_loop_shuts_down() -> None:
    import asyncio
    import threading

    client = client_for(scripted(*[httpx.Response(200, json=OK)] * 20))
    pools = []

    async def call() -> None:
        await client.achat("ep", MSGS)
        pools.append(await client._transport.apool())
        await client.achat("ep", MSGS)

    asyncio.run(call())
    asyncio.run(call())
    assert pools[0] is not pools[1]
    assert all(c.is_closed for p in pools for c in p.clients)  # closed by asyncio.run's end
    assert client._transport._apools == {}

    # Two threads, each with its own loop, keep their own pools while they interleave.
    seen: dict[str, set[int]] = {}

    def worker(name: str) -> None:
        async def run() -> None:
            for _ in range(5):
                await client.achat("ep", MSGS)
                seen.setdefault(name, set()).add(id(await client._transport.apool()))
                await asyncio.sleep(0)
        asyncio.run(run())

    threads = [threading.Thread(target=worker, args=(n,)) for n in ("a", "b")]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert [len(ids) for ids in seen.values()] == [1, 1]

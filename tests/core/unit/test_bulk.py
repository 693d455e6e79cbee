"""Bulk embedding decisions, the adaptive throttle, documented limits and the bulk error, against
fake services (no sockets)."""

from __future__ import annotations

import asyncio
import json
import pickle
import threading
from collections.abc import Callable
from typing import Any

import httpx
import pytest

from sfmodels_core import DatabricksClient, SalesforceClient, defaults
from sfmodels_core._throttle import Throttle, WindowLimiter
from sfmodels_core.bulk import BulkJob, Retry, names_size_limit, should_split
from sfmodels_core.errors import (
    APIConnectionError,
    BadRequestError,
    BulkEmbeddingError,
    InvalidInputError,
    RateLimitError,
    ResponseValidationError,
    ServerError,
    SFModelsError,
)
from sfmodels_core.options import ClientOptions, RetryPolicy

from .fakes import Recorder

HOST = "https://adb.example.test"
MSGS = [{"role": "user", "content": "hi"}]
OK_CHAT = {"choices": [{"index": 0, "message": {"role": "assistant", "content": "fine"},
                        "finish_reason": "stop"}]}


def vector(text: str) -> list[float]:
    return [float(len(text)), float(sum(map(ord, text)) % 97)]


def embeddings_body(texts: list[str]) -> dict[str, Any]:
    return {"object": "list", "model": "gte", "usage": {"prompt_tokens": len(texts),
                                                        "total_tokens": len(texts)},
            "data": [{"index": i, "object": "embedding", "embedding": vector(t)}
                     for i, t in enumerate(texts)]}


def service(answer: Callable[[list[str], int], httpx.Response | None]) -> Recorder:
    """A fake embeddings endpoint: ``answer(texts, call_number)`` or, when it returns None,
    the vectors."""
    calls = [0]

    def handler(request: httpx.Request) -> httpx.Response:
        calls[0] += 1
        texts = json.loads(request.content)["input"] if request.content else []
        return answer(texts, calls[0]) or httpx.Response(200, json=embeddings_body(texts))

    return Recorder(handler)


def client_for(rec: Recorder, **kwargs: Any) -> DatabricksClient:
    return DatabricksClient(host=HOST, api_key="pat", env={}, **rec.transports(), **kwargs)


def sent(rec: Recorder) -> list[list[str]]:
    return [json.loads(r.content)["input"] for r in rec.requests if r.content]


def error(cls: type[SFModelsError], status: int, message: str, **extra: Any) -> SFModelsError:
    return cls(message, status_code=status, provider_message=message, **extra)


TEXTS = [f"text {i}" for i in range(40)]


# -- splitting ------------------------------------------------------------------------------------
@pytest.mark.parametrize("message, names", [
    ("'input' has 151 items; the maximum batch size is 150 inputs", True),
    ("Field input has 20 items; at most 16 are allowed per request", True),
    ("This model's maximum context length is 8192 tokens", True),
    ("Exceeded workspace input tokens per minute rate limit", True),
    ("Exceeded workspace QPS rate limit for serving endpoint gte.", False),
    ("Too many requests for the server to handle", False),
    ("Internal error while serving the request.", False),
])
def test_messages_that_name_a_size_limit(message: str, names: bool) -> None:
    assert names_size_limit(error(BadRequestError, 400, message)) is names


def test_when_a_refused_batch_is_split() -> None:
    policy = RetryPolicy()
    size_400 = error(BadRequestError, 400, "the maximum batch size is 150 inputs")
    other_400 = error(BadRequestError, 400, "unknown field 'foo'")
    too_large = error(BadRequestError, 413, "Request Entity Too Large")
    rate = error(RateLimitError, 429, "Exceeded workspace QPS rate limit")
    tokens = error(RateLimitError, 429, "Exceeded the endpoint's token limit per request")
    busy = error(ServerError, 503, "the maximum batch size is 150 inputs")
    assert should_split(150, size_400, 0, 0, policy) and should_split(150, too_large, 0, 0, policy)
    assert not should_split(150, other_400, 0, 0, policy)
    assert not should_split(1, size_400, 0, 0, policy)  # one text cannot be split
    assert not should_split(150, busy, 5, 0, policy)  # a 503 is retried whole, whatever it says
    assert [should_split(150, tokens, n, 150, policy) for n in (1, 2)] == [False, True]
    # A 429 that names nothing: when nothing this large has ever passed, on the third in a row...
    assert [should_split(150, rate, n, 16, policy) for n in (1, 2, 3)] == [False, False, True]
    # ... on the first once the job has split for size before ...
    assert should_split(75, rate, 1, 16, policy, split_before=True)
    # ... and when batches as large pass, only after many (its texts must be long).
    anyway = defaults.BULK_SPLIT_AFTER_ANYWAY
    assert not should_split(150, rate, anyway - 1, 150, policy)
    assert should_split(150, rate, anyway, 150, policy)


def test_a_batch_over_the_endpoint_limit_is_split_and_the_size_remembered(
        sleeps: list[float]) -> None:
    def answer(texts: list[str], _: int) -> httpx.Response | None:
        if len(texts) > 5:
            return httpx.Response(400, json={"error_code": "BAD_REQUEST", "message":
                                             f"'input' has {len(texts)} items; the maximum "
                                             "batch size is 5 inputs"})
        return None

    rec = service(answer)
    result = client_for(rec, batch_size=20, max_concurrency=1).embed("gte", TEXTS)
    assert result.vectors == [vector(t) for t in TEXTS]
    sizes = [len(batch) for batch in sent(rec)]
    # 20 refused, halves of 10 refused, 5 pass; the rest of the job goes in fives at once.
    assert sizes == [20, 10] + [5] * 8
    assert sleeps == []  # a 400 is not waited on


def test_a_single_text_still_refused_fails_with_its_index_and_the_rest_is_done(
        sleeps: list[float]) -> None:
    poison = 13

    def answer(texts: list[str], _: int) -> httpx.Response | None:
        if TEXTS[poison] in texts:
            return httpx.Response(400, json={"error_code": "BAD_REQUEST", "message":
                                             "This model's maximum context length is 512 "
                                             "tokens"})
        return None

    rec = service(answer)
    with pytest.raises(BadRequestError) as info:
        client_for(rec, batch_size=8, max_concurrency=2).embed("gte", TEXTS)
    err = info.value
    assert isinstance(err, BulkEmbeddingError)
    assert err.missing == [poison] and list(err.refused) == [poison]
    assert err.vectors == {i: vector(t) for i, t in enumerate(TEXTS) if i != poison}
    assert "text 13" in str(err) and "maximum context length" in str(err)
    assert max(len(b) for b in sent(rec) if TEXTS[poison] not in b) <= 8


# -- progress-aware retries -----------------------------------------------------------------------
class Clock:
    def __init__(self) -> None:
        self.now = 0.0

    def __call__(self) -> float:
        return self.now


def test_a_job_gives_up_only_after_no_progress_for_the_set_time() -> None:
    clock = Clock()
    job = BulkJob(list(range(30)), 10, RetryPolicy(max_retries=1), give_up_after=100.0,
                  clock=clock)
    busy = error(ServerError, 503, "busy")
    first, second = job.take(), job.take()
    assert first is not None and second is not None
    # Before any success a batch gets max_retries retries, as a single call does...
    assert isinstance(job.failed(first, busy), Retry)
    job.succeeded(second, ([[0.0]] * 10, "m", None, {}))
    # ... and after one it keeps retrying, far beyond max_retries, while there is progress.
    for _ in range(20):
        clock.now += 4.0
        assert isinstance(job.failed(first, busy), Retry)
    third = job.take()
    assert third is not None
    job.succeeded(third, ([[0.0]] * 10, "m", None, {}))
    clock.now += 100.5  # nothing for longer than give_up_after
    assert job.failed(first, busy) is None
    assert job.stopped and job.error is busy and job.take() is None


def test_errors_that_no_retry_fixes_stop_the_job_at_once() -> None:
    for problem in (error(BadRequestError, 400, "unknown field"),
                    error(SFModelsError, 401, "bad token"),
                    ResponseValidationError("one vector too few"),
                    error(RateLimitError, 429, "hourly", retry_after=3600.0)):
        job = BulkJob(list(range(20)), 10, RetryPolicy(), give_up_after=100.0)
        batch = job.take()
        assert batch is not None
        assert job.failed(batch, problem) is None and job.error is problem
    job = BulkJob(list(range(20)), 10, RetryPolicy(max_retries=10), give_up_after=100.0)
    batch = job.take()
    assert batch is not None
    for transient in (error(ServerError, 503, "busy", retry_after=2.0),
                      APIConnectionError("reset"),
                      ResponseValidationError("cut off", incomplete=True)):
        assert isinstance(job.failed(batch, transient), Retry)
    assert job.failed(batch, error(RateLimitError, 429, "slow down", retry_after=7.0)) == Retry(
        7.0)


def test_a_batch_failing_more_than_max_retries_still_finishes_while_others_succeed(
        sleeps: list[float]) -> None:
    failures = {"left": 6}

    def answer(texts: list[str], _: int) -> httpx.Response | None:
        if TEXTS[20] in texts and failures["left"]:
            failures["left"] -= 1
            return httpx.Response(503, json={"error_code": "TEMPORARILY_UNAVAILABLE",
                                             "message": "busy"})
        return None

    rec = service(answer)
    client = client_for(rec, batch_size=4, max_concurrency=1, max_retries=1)
    assert client.embed("gte", TEXTS).vectors == [vector(t) for t in TEXTS]
    assert sent(rec).count(TEXTS[20:24]) == 7  # one batch, seven tries, with max_retries=1
    assert len(sleeps) == 6


def test_one_batch_alone_keeps_the_single_call_budget(sleeps: list[float]) -> None:
    rec = service(lambda texts, n: httpx.Response(503, json={"message": "busy"}))
    with pytest.raises(ServerError) as info:
        client_for(rec, max_retries=2).embed("gte", ["one"])
    assert len(rec.requests) == 3 and len(sleeps) == 2
    assert isinstance(info.value, BulkEmbeddingError) and info.value.missing == [0]


def test_the_give_up_time_comes_from_timeout_and_retries() -> None:
    assert ClientOptions().bulk_give_up_after == (defaults.MAX_RETRIES + 1) * defaults.TIMEOUT
    assert ClientOptions.build(timeout=10, max_retries=5).bulk_give_up_after == 60
    assert ClientOptions.build(no_progress_timeout=30).bulk_give_up_after == 30
    with pytest.raises(InvalidInputError):
        ClientOptions.build(no_progress_timeout=-1)


# -- the error and the resume ---------------------------------------------------------------------
def failing_after(good_calls: int) -> Recorder:
    return service(lambda texts, n: None if n <= good_calls else httpx.Response(
        403, json={"error_code": "PERMISSION_DENIED", "message": "no"}))


def test_the_error_keeps_its_class_and_fields_and_pickles() -> None:
    rec = failing_after(2)
    with pytest.raises(BulkEmbeddingError) as info:
        client_for(rec, batch_size=10, max_concurrency=1).embed("gte", TEXTS)
    err = info.value
    assert type(err).__name__ == "BulkPermissionDeniedError"
    assert (err.status_code, err.error_code, err.provider_message) == (403, "PERMISSION_DENIED",
                                                                       "no")
    assert err.done == 20 and err.missing == list(range(20, 40)) and err.total == 40
    assert "20 of 40 texts embedded" in str(err) and "0.0" not in str(err)
    copy = pickle.loads(pickle.dumps(err))
    assert type(copy) is type(err) and copy.vectors == err.vectors and copy.missing == err.missing


@pytest.mark.parametrize("use_async", [False, True])
async def test_resume_sends_only_the_missing_texts(sleeps: list[float], use_async: bool) -> None:
    rec = failing_after(1)
    client = client_for(rec, batch_size=10, max_concurrency=1)
    with pytest.raises(BulkEmbeddingError) as info:
        await client.aembed("gte", TEXTS) if use_async else client.embed("gte", TEXTS)
    err = info.value
    good = client_for(service(lambda texts, n: None), batch_size=10)
    for wrong in ([*TEXTS[:-1], "changed"], TEXTS[:-1]):
        with pytest.raises(InvalidInputError, match="other texts"):
            good.embed("gte", wrong, resume_from=err)
    with pytest.raises(InvalidInputError, match="cannot be mixed"):
        good.embed("bge", TEXTS, resume_from=err)
    with pytest.raises(InvalidInputError, match="BulkEmbeddingError"):
        good.embed("gte", TEXTS, resume_from=ValueError("x"))  # type: ignore[arg-type]
    rec = service(lambda texts, n: None)
    client = client_for(rec, batch_size=10)
    result = (await client.aembed("gte", TEXTS, resume_from=err) if use_async
              else client.embed("gte", TEXTS, resume_from=err))
    assert result.vectors == [vector(t) for t in TEXTS]
    assert sorted(t for batch in sent(rec) for t in batch) == sorted(TEXTS[10:])
    assert result.usage is not None and result.usage.total_tokens == 40


# -- the throttle ---------------------------------------------------------------------------------
def test_a_429_halves_the_limit_once_per_round_and_successes_grow_it_back() -> None:
    throttle = Throttle(8)
    tickets = [throttle.acquire() for _ in range(8)]
    throttle.release(tickets[0], 429)
    assert throttle.limit == 4  # half the eight in flight
    throttle.release(tickets[1], 429)  # sent before the cut: the same round, no second cut
    assert throttle.limit == 4
    for ticket in tickets[2:]:
        throttle.release(ticket, 200)
    assert throttle.limit == 4  # successes while under the limit do not grow it
    ticket = throttle.acquire()
    throttle.release(ticket, 429)  # a request of the new round: cut again (1 in flight)
    assert throttle.limit == 1
    stats = throttle.stats()
    assert (stats.rate_limited, stats.decreases, stats.requests, stats.in_flight) == (3, 2, 9, 0)


async def test_successes_grow_the_limit_back_while_calls_wait() -> None:
    throttle = Throttle(8)
    throttle.release(await throttle.aacquire(), 429)
    assert throttle.limit == 1
    for _ in range(5):  # one call at a time: it grows to one more than is used, no further
        throttle.release(await throttle.aacquire(), 200)
    assert throttle.limit == 2
    seen: list[int] = []

    async def call() -> None:
        ticket = await throttle.aacquire()
        seen.append(throttle.stats().in_flight)
        await asyncio.sleep(0)
        throttle.release(ticket, 200)

    await asyncio.gather(*(call() for _ in range(30)))
    # Each success while others wait adds 1/limit: about +1 a round (2, 2.5, 2.9, 3.2, ...).
    assert 5 <= throttle.limit <= 8
    assert seen[:2] == [1, 2] and max(seen) <= throttle.limit


def test_the_limit_never_passes_its_ceiling_and_can_be_off() -> None:
    throttle = Throttle(2)
    for _ in range(50):
        a, b = throttle.acquire(), throttle.acquire()
        throttle.release(a, 200)
        throttle.release(b, 200)
    assert throttle.limit == 2
    fixed = Throttle(4, adaptive=False)
    fixed.release(fixed.acquire(), 429)
    fixed.hold("/x", 5.0)
    assert fixed.limit == 4 and fixed.held_for("/x") == 0.0 and fixed.stats().rate_limited == 1


def test_threads_and_tasks_wait_in_one_queue() -> None:
    throttle = Throttle(1)
    held = throttle.acquire()
    order: list[str] = []

    def thread_call() -> None:
        ticket = throttle.acquire()
        order.append("thread")
        throttle.release(ticket, 200)

    async def task_call() -> None:
        ticket = await throttle.aacquire()
        order.append("task")
        throttle.release(ticket, 200)

    thread = threading.Thread(target=thread_call)
    thread.start()
    while throttle.stats().waiting < 1:
        threading.Event().wait(0.001)
    loop_thread = threading.Thread(target=lambda: asyncio.run(task_call()))
    loop_thread.start()
    while throttle.stats().waiting < 2:
        threading.Event().wait(0.001)
    assert order == []
    throttle.release(held, 200)
    thread.join(5)
    loop_thread.join(5)
    assert order == ["thread", "task"]
    assert throttle.stats().in_flight == 0


async def test_a_cancelled_waiter_gives_its_place_back() -> None:
    throttle = Throttle(1)
    held = await throttle.aacquire()
    waiter = asyncio.ensure_future(throttle.aacquire())
    await asyncio.sleep(0)
    waiter.cancel()
    with pytest.raises(asyncio.CancelledError):
        await waiter
    throttle.release(held, 200)
    assert throttle.stats().in_flight == 0 and throttle.stats().waiting == 0
    again = await asyncio.wait_for(throttle.aacquire(), 5)
    throttle.release(again, 200)


def test_a_retry_after_holds_every_call_to_that_endpoint(sleeps: list[float]) -> None:
    answers = [httpx.Response(429, headers={"Retry-After": "5"},
                              json={"error_code": "REQUEST_LIMIT_EXCEEDED", "message": "slow"})]

    def handler(request: httpx.Request) -> httpx.Response:
        return answers.pop(0) if answers else httpx.Response(200, json=OK_CHAT)

    client = client_for(Recorder(handler))
    client.chat("ep", MSGS)
    assert sleeps == [5.0]  # its own retry
    client.chat("ep", MSGS)  # the next call waits out what is left of the hold
    assert 4.0 < sleeps[1] <= 5.0
    throttle = client._transport.throttle
    assert throttle.held_for("/serving-endpoints/ep/invocations") > 4.0
    assert throttle.held_for("/serving-endpoints/other/invocations") == 0.0
    assert client.throttle.rate_limited == 1 and client.throttle.held_for > 4.0


def test_a_429_with_retry_after_paces_requests_at_half_the_rate_they_were_sent() -> None:
    throttle = Throttle(100)
    for _ in range(10):  # ten sends within the last two seconds: 5 a second
        ticket = throttle.acquire()
        assert throttle.pace() == 0.0
        throttle.release(ticket, 200)
    assert throttle.stats().rate_per_minute is None
    ticket = throttle.acquire()
    throttle.pace()
    throttle.release(ticket, 429, retry_after=1.0)
    rate = throttle.stats().rate_per_minute
    assert rate is not None and 150 <= rate <= 165  # half of the 5-5.5 a second
    waits = [throttle.pace() for _ in range(3)]
    gap = 60.0 / rate
    assert waits[0] == pytest.approx(0.0, abs=0.05)
    assert waits[1] == pytest.approx(gap, abs=0.05) and waits[2] == pytest.approx(2 * gap, abs=0.05)
    ticket = throttle.acquire()
    throttle.pace()
    throttle.release(ticket, 200)  # a success while paced grows the rate by 1/rate a second
    grown = throttle.stats().rate_per_minute
    assert grown is not None and grown == pytest.approx(rate + 60 * 60 / rate, rel=0.01)
    no_signal = Throttle(100)
    ticket = no_signal.acquire()
    no_signal.pace()
    no_signal.release(ticket, 429)  # a 429 without Retry-After cuts concurrency only
    assert no_signal.stats().rate_per_minute is None


# -- documented limits ----------------------------------------------------------------------------
def test_a_window_limiter_lets_a_burst_through_then_waits_for_the_window() -> None:
    limiter = WindowLimiter(3, 60.0)
    waits = [limiter.reserve() for _ in range(4)]
    assert waits[:3] == [0.0, 0.0, 0.0]
    assert 59.0 < waits[3] <= 60.0


def test_salesforce_keeps_to_the_documented_limits_unless_told_otherwise() -> None:
    sf = SalesforceClient(api_key="tok", api_base="https://api.example.test/v1", env={})
    limits = {route: lim.limit for route, lim in sf._transport.route_limiters.items()}
    assert limits == {"embeddings": 1000, "feedback": 1000, "chat-generations": 10000,
                      "generations": 10000}
    assert all(lim.window > 60 for lim in sf._transport.route_limiters.values())
    paced = SalesforceClient(api_key="tok", api_base="https://api.example.test/v1", env={},
                             requests_per_minute=100)
    assert paced._transport.route_limiters == {} and paced._transport.limiter is not None
    assert client_for(service(lambda t, n: None))._transport.route_limiters == {}


def test_an_hourly_window_is_named_and_not_waited_for(sleeps: list[float]) -> None:
    def handler(request: httpx.Request) -> httpx.Response:
        return httpx.Response(429, headers={"Retry-After": "1800"}, json=[{
            "errorCode": "LIMIT_EXCEEDED", "message": "Too many requests"}])

    rec = Recorder(handler)
    sf = SalesforceClient(api_key="tok", api_base="https://api.example.test/v1", env={},
                          **rec.transports())
    with pytest.raises(RateLimitError) as info:
        sf.chat("sfdc_ai__DefaultGPT4Omni", MSGS)
    err = info.value
    assert "hourly request limit is exhausted" in str(err) and "30 min" in str(err)
    assert err.hint is not None and "150 generation requests per hour" in err.hint
    assert err.retry_after == 1800.0 and len(rec.requests) == 1 and sleeps == []
    assert sf.throttle.held_for == 0.0  # other calls are not put to sleep for half an hour
    with pytest.raises(RateLimitError, match="hourly") as bulk:
        sf.embed("sfdc_ai__DefaultOpenAITextEmbeddingAda_002", TEXTS)
    assert isinstance(bulk.value, BulkEmbeddingError) and len(rec.requests) <= 1 + 4

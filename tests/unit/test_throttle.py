"""The throttle's answer to a rate limit that says nothing (429s without Retry-After), and a
call's retries waiting for the shared pace: decisions driven by explicit calls on a fake clock
(nothing sleeps)."""

from __future__ import annotations

import random

import httpx
import pytest

from sfmodels_core import defaults
from sfmodels_core.errors import ErrorDetails, RateLimitError, ServerError
from sfmodels_core.options import RetryPolicy
from sfmodels_core.transport import RetryState, Throttle

HOLD = defaults.ADAPTIVE_RATE_HOLD
WINDOW = defaults.ADAPTIVE_RATE_WINDOW


class Clock:
    def __init__(self, now: float = 1000.0) -> None:
        self.now = now

    def __call__(self) -> float:
        return self.now

    def advance(self, seconds: float) -> None:
        self.now += seconds


def send(throttle: Throttle, status: int, *, count: int = 1) -> None:
    """``count`` requests in flight at once, all answered ``status`` (429s: no Retry-After)."""
    tickets = [throttle.acquire() for _ in range(count)]
    for _ in tickets:
        throttle.pace()
    for ticket in tickets:
        throttle.release(ticket, status)


def warmed(clock: Clock) -> Throttle:
    """A throttle whose client sent 20 requests in the last second, all answered."""
    throttle = Throttle(100, clock=clock)
    for _ in range(20):
        send(throttle, 200)
        clock.advance(0.05)
    return throttle


def test_a_run_of_429s_without_retry_after_starts_pacing_after_a_hold() -> None:
    clock = Clock()
    throttle = warmed(clock)
    send(throttle, 429, count=8)  # a lone cut: 8 in flight -> 4, nothing paced
    assert throttle.limit == 4 and throttle.stats().rate_per_minute is None
    clock.advance(0.05)
    send(throttle, 429, count=4)  # a second in a row: 4 -> 2, still only concurrency
    assert throttle.limit == 2 and throttle.stats().rate_per_minute is None
    clock.advance(0.05)
    send(throttle, 429, count=2)  # the third shows a rate: concurrency cannot find a level
    stats = throttle.stats()
    assert stats.limit == 1 and stats.decreases == 3
    # 34 requests sent in the last two seconds (20 + 8 + 4 + 2): paced at half of 17 a second,
    # after every request is held for ADAPTIVE_RATE_HOLD.
    assert stats.rate_per_minute == pytest.approx(34 / WINDOW * 0.5 * 60)
    assert stats.held_for == pytest.approx(HOLD)
    gap = 1 / (34 / WINDOW * 0.5)
    assert [throttle.pace() for _ in range(3)] == pytest.approx([HOLD, HOLD + gap,
                                                                 HOLD + 2 * gap])
    clock.advance(HOLD + 5)
    assert throttle.stats().held_for == 0.0 and throttle.pace() == 0.0


def test_a_low_limit_cut_again_and_again_shows_a_rate_even_as_it_regrows() -> None:
    # At a limit of one or two, a success between 429s grows the limit a whole slot; those
    # cuts still make a run (a few requests in flight made too many a second).
    clock = Clock()
    throttle = warmed(clock)
    send(throttle, 429, count=2)  # 2 in flight -> 1
    for _ in range(2):
        clock.advance(0.1)
        send(throttle, 200)  # ... and an answer while at the limit grows it back to 2
        assert throttle.limit == 2 and throttle.stats().rate_per_minute is None
        send(throttle, 429, count=2)
    assert throttle.stats().rate_per_minute is not None


def test_a_lone_429_or_cuts_that_find_a_level_do_not_pace() -> None:
    clock = Clock()
    throttle = warmed(clock)
    send(throttle, 429, count=64)  # 64 -> 32
    send(throttle, 429, count=32)  # 32 -> 16, in a row
    # The limit grows back past the level the last cut left: the service accepts that many.
    while throttle.limit <= 16:
        send(throttle, 200, count=throttle.limit)
    send(throttle, 429, count=throttle.limit)
    send(throttle, 429, count=throttle.limit)  # two in a row again, never three
    assert throttle.stats().rate_per_minute is None
    # Cuts further apart than ADAPTIVE_RATE_WINDOW are not a run either.
    slow = Clock()
    spaced = warmed(slow)
    for count in (64, 32, 16, 8):
        send(spaced, 429, count=count)
        slow.advance(WINDOW + 0.1)
        send(spaced, 200)
    assert spaced.stats().rate_per_minute is None and spaced.limit == 4


def test_no_pacing_when_nothing_succeeds() -> None:
    # A service refusing everything (or a batch too large for it) is not a rate to keep to.
    clock = Clock()
    throttle = Throttle(100, clock=clock)
    for count in (8, 4, 2, 1, 1, 1):
        send(throttle, 429, count=count)
    assert throttle.stats().rate_per_minute is None and throttle.stats().held_for == 0.0
    clock.advance(WINDOW + 1)  # successes long ago do not count either
    throttle.release(throttle.acquire(), 200)
    clock.advance(WINDOW + 1)
    for _ in range(3):
        send(throttle, 429)
    assert throttle.stats().rate_per_minute is None


def paced(clock: Clock) -> Throttle:
    throttle = warmed(clock)
    for count in (8, 4, 2):
        send(throttle, 429, count=count)
    assert throttle.stats().rate_per_minute is not None
    return throttle


def test_successes_at_the_pace_grow_it_back_and_a_429_halves_it_again() -> None:
    clock = Clock()
    throttle = paced(clock)
    rate = throttle.stats().rate_per_minute
    assert rate is not None
    for _ in range(5):  # requests that waited for the pace: each success adds 1/rate a second
        ticket = throttle.acquire()
        assert throttle.pace() > 0.0
        throttle.release(ticket, 200)
        per_second = rate / 60
        grown = throttle.stats().rate_per_minute
        assert grown is not None and grown == pytest.approx((per_second + 1 / per_second) * 60)
        rate = grown
    # A 429 (to a request sent after the last cut) while paced: half the pace, and hold again.
    ticket = throttle.acquire()
    throttle.pace()
    throttle.release(ticket, 429)
    halved = throttle.stats().rate_per_minute
    assert halved is not None and halved <= rate * defaults.ADAPTIVE_DECREASE + 1e-9
    assert throttle.stats().held_for == pytest.approx(HOLD)


def test_adaptive_off_never_paces() -> None:
    clock = Clock()
    throttle = Throttle(100, adaptive=False, clock=clock)
    for _ in range(5):
        send(throttle, 200)
        send(throttle, 429, count=4)
    stats = throttle.stats()
    assert stats.rate_per_minute is None and stats.held_for == 0.0 and stats.limit == 100


# -- a call's retries wait for the pace ----------------------------------------------------------
def parse(status: int, body: object) -> ErrorDetails:
    return ErrorDetails(code="REQUEST_LIMIT_EXCEEDED", message="Exceeded workspace QPS rate limit")


def answer(status: int, retry_after: str | None = None) -> httpx.Response:
    headers = {"Retry-After": retry_after} if retry_after is not None else {}
    return httpx.Response(status, headers=headers,
                          request=httpx.Request("POST", "https://adb.example.test/x"))


def state_for(throttle: Throttle | None, clock: Clock, max_retries: int = 2,
              give_up_after: float = 240.0) -> RetryState:
    return RetryState(RetryPolicy(max_retries=max_retries), "Databricks", parse,
                      random.Random(0), throttle=throttle, give_up_after=give_up_after,
                      clock=clock)


def test_a_429_while_paced_and_others_succeed_costs_no_retry() -> None:
    clock = Clock()
    throttle = Throttle(100, clock=clock)
    state = state_for(throttle, clock)
    clock.advance(0.01)
    assert state.delay_after_response(answer(429)) >= defaults.INITIAL_BACKOFF / 2
    assert (state.retries, state.waits) == (1, 0)  # not paced yet: a retry like any other
    send(throttle, 200)  # others succeed, and a run of 429s starts the pace
    for count in (8, 4, 2):
        send(throttle, 429, count=count)
    for _ in range(10):
        assert state.delay_after_response(answer(429)) == defaults.MIN_RETRY_DELAY
    assert (state.retries, state.waits, state.attempts) == (1, 10, 12)
    # Its Retry-After is still waited for; other statuses still count.
    assert state.delay_after_response(answer(429, "3")) == 3.0
    assert state.retries == 1
    state.delay_after_response(answer(503))
    assert state.retries == 2
    with pytest.raises(ServerError):
        state.delay_after_response(answer(503))
    # A wait longer than max_retry_after is not this call's to do, paced or not.
    with pytest.raises(RateLimitError):
        state_for(throttle, clock).delay_after_response(answer(429, "3600"))


def test_waiting_for_the_pace_needs_progress_and_ends() -> None:
    clock = Clock()
    throttle = Throttle(100, clock=clock)
    send(throttle, 200)
    for count in (8, 4, 2):
        send(throttle, 429, count=count)
    assert throttle.pace_progress()[0]
    # No request has succeeded since this call began: its 429s count.
    clock.advance(0.01)
    alone = state_for(throttle, clock, max_retries=1)
    alone.delay_after_response(answer(429))
    with pytest.raises(RateLimitError):
        alone.delay_after_response(answer(429))
    # Others succeed: it waits, until give_up_after from its start; then its retries count.
    waiting = state_for(throttle, clock, max_retries=1, give_up_after=30.0)
    clock.advance(0.01)
    send(throttle, 200)
    clock.advance(29.0)
    assert waiting.delay_after_response(answer(429)) == defaults.MIN_RETRY_DELAY
    clock.advance(1.0)
    waiting.delay_after_response(answer(429))
    with pytest.raises(RateLimitError):
        waiting.delay_after_response(answer(429))
    assert (waiting.retries, waiting.waits) == (1, 1)
    # A call that may not retry (a bulk job's attempt: the job retries) never waits, nor does
    # one without the throttle (a token request).
    no_retries, unthrottled = state_for(throttle, clock, max_retries=0), state_for(None, clock)
    clock.advance(0.01)
    send(throttle, 200)
    with pytest.raises(RateLimitError):
        no_retries.delay_after_response(answer(429))
    unthrottled.delay_after_response(answer(429))
    assert (unthrottled.retries, unthrottled.waits) == (1, 0)

"""The throttle's answer to a rate limit that says nothing (429s without Retry-After), and a
call's retries waiting for the shared pace: decisions driven by explicit calls on a fake clock
(nothing sleeps)."""

from __future__ import annotations

import random

import httpx
import pytest

from sfmodels_core import defaults
from sfmodels_core._retry import RetryState
from sfmodels_core._throttle import Throttle
from sfmodels_core.errors import ErrorDetails, RateLimitError, ServerError
from sfmodels_core.options import RetryPolicy

PAUSE = defaults.ADAPTIVE_QPS_WINDOW
WINDOW = defaults.ADAPTIVE_RATE_WINDOW


class Clock:
    def __init__(self, now: float = 1000.0) -> None:
        self.now = now

    def __call__(self) -> float:
        return self.now

    def advance(self, seconds: float) -> None:
        self.now += seconds


def send(throttle: Throttle, *statuses: int, count: int = 1) -> None:
    """Requests in flight at once, answered in this order (each status ``count`` times; 429s
    without Retry-After)."""
    answers = [status for status in statuses for _ in range(count)]
    tickets = [throttle.acquire() for _ in answers]
    for _ in tickets:
        throttle.pace()
    for ticket, status in zip(tickets, answers, strict=True):
        throttle.release(ticket, status)


def warmed(clock: Clock) -> Throttle:
    """A throttle whose client had four requests answered in the last second."""
    throttle = Throttle(100, clock=clock)
    for _ in range(4):
        send(throttle, 200)
        clock.advance(0.25)
    return throttle


def rate(throttle: Throttle) -> float | None:
    per_minute = throttle.stats().rate_per_minute
    return None if per_minute is None else per_minute / 60


def paced(clock: Clock) -> Throttle:
    """A burst of 64 refused, then 32 and 16 sent after each cut, all refused: pacing."""
    throttle = warmed(clock)
    for count in (64, 32, 16):
        assert rate(throttle) is None
        send(throttle, 429, count=count)
        clock.advance(0.05)
    return throttle


def test_a_run_of_429s_without_retry_after_starts_pacing_after_a_pause() -> None:
    clock = Clock()
    throttle = paced(clock)
    stats = throttle.stats()
    assert stats.limit == 8 and stats.decreases == 3
    # 116 requests sent in the last two seconds (4 + 64 + 32 + 16): half of 58 a second (more
    # than the 3 answered in the last second), after every request is held for a second.
    assert rate(throttle) == pytest.approx(116 / WINDOW * defaults.ADAPTIVE_DECREASE)
    assert stats.held_for == pytest.approx(PAUSE - 0.05)
    gap = 1 / 29
    assert [throttle.pace() for _ in range(3)] == pytest.approx(
        [PAUSE - 0.05, PAUSE - 0.05 + gap, PAUSE - 0.05 + 2 * gap])
    clock.advance(PAUSE + 5)
    assert throttle.stats().held_for == 0.0 and throttle.pace() == 0.0


def test_pacing_starts_no_slower_than_what_the_run_had_answered() -> None:
    clock = Clock()
    throttle = warmed(clock)
    send(throttle, 429, count=64)
    clock.advance(0.05)
    send(throttle, *[429] * 26, *[200] * 6)
    clock.advance(0.05)
    send(throttle, 429, count=16)  # cut at the first: 27 of 33 refused since the run began
    # 6 answered in the 0.1 s since the run began: 60 a second, more than half the 58 sent.
    assert rate(throttle) == pytest.approx(60)


def test_at_a_low_limit_repeated_429s_show_a_rate_even_as_answers_regrow_it() -> None:
    # One request in flight at a time, and still most refused: a few requests in flight make
    # too many a second.
    clock = Clock()
    throttle = warmed(clock)
    send(throttle, 429, count=2)  # 2 in flight -> 1: the run begins
    send(throttle, 200)  # an answer at the limit grows it back to 2
    assert throttle.limit == 2
    send(throttle, 429)
    send(throttle, 429)  # two of three refused since the run began: not yet
    assert rate(throttle) is None
    send(throttle, 429)  # three of four
    assert rate(throttle) is not None


def test_a_lone_429_a_concurrency_limit_and_random_429s_do_not_pace() -> None:
    clock = Clock()
    throttle = warmed(clock)
    send(throttle, 429, count=8)
    assert rate(throttle) is None and throttle.limit == 4
    # A concurrency limit: of the requests sent after each cut, most are answered.
    limited = warmed(clock)
    send(limited, 429, count=64)  # 64 -> 32
    send(limited, *[429] * 12, *[200] * 20)  # 32 -> 16
    send(limited, *[429] * 4, *[200] * 12)  # 16 -> 8: of 48 sent after the first cut, 16 refused
    assert rate(limited) is None and limited.stats().decreases == 3
    # A few requests refused at random, one request in flight at a time.
    unlucky = warmed(clock)
    for _ in range(10):
        send(unlucky, 429)
        for _ in range(3):
            send(unlucky, 200)
    assert rate(unlucky) is None
    # Cuts further apart than ADAPTIVE_RATE_WINDOW are not a run.
    slow = Clock()
    spaced = warmed(slow)
    for count in (64, 32, 16, 8):
        send(spaced, 429, count=count)
        slow.advance(WINDOW + 0.1)
        send(spaced, 200)
    assert rate(spaced) is None and spaced.limit == 4
    # Nor are cuts between which the limit grew back past the level the last one left.
    regrown = warmed(clock)
    send(regrown, 429, count=64)  # 64 -> 32
    send(regrown, 429, count=32)  # 32 -> 16
    while regrown.limit <= 16:
        send(regrown, 200, count=regrown.limit)
    send(regrown, 429, count=regrown.limit)
    send(regrown, 429, count=regrown.limit)
    assert rate(regrown) is None


def test_no_pacing_when_nothing_is_answered() -> None:
    # A service refusing everything (or a batch too large for it) shows no rate to keep to.
    clock = Clock()
    throttle = Throttle(100, clock=clock)
    for count in (8, 4, 2, 1, 1, 1):
        send(throttle, 429, count=count)
    assert rate(throttle) is None and throttle.stats().held_for == 0.0
    send(throttle, 200)  # an answer long ago does not count either
    clock.advance(WINDOW + 1)
    for _ in range(6):
        send(throttle, 429, count=throttle.limit)
    assert rate(throttle) is None


def test_answers_at_the_pace_grow_it_and_a_later_429_halves_it_without_a_pause() -> None:
    clock = Clock()
    throttle = paced(clock)
    pace = rate(throttle)
    assert pace is not None
    for _ in range(5):  # requests that waited for the pace: each answer grows it
        ticket = throttle.acquire()
        assert throttle.pace() > 0.0
        throttle.release(ticket, 200)
        grown = rate(throttle)
        step = max(1 / pace, defaults.ADAPTIVE_QPS_GROWTH)  # about a tenth a second
        assert grown is not None and grown == pytest.approx(pace + step)
        pace = grown
    clock.advance(PAUSE + 0.5)
    # A 429 (to a request sent after the last cut) while paced: half the pace (nothing was
    # answered since the pause), and no new pause.
    send(throttle, 429)
    assert rate(throttle) == pytest.approx(pace * defaults.ADAPTIVE_DECREASE)
    assert throttle.stats().held_for == 0.0


def test_a_429_while_paced_never_paces_below_what_was_just_answered() -> None:
    clock = Clock()
    throttle = paced(clock)
    clock.advance(PAUSE + 0.5)
    for _ in range(40):  # 40 answered in the half second since the pause ended
        send(throttle, 200)
    pace = rate(throttle)
    send(throttle, 429)
    assert rate(throttle) == pace  # 80 a second answered: no cut, and a cut never speeds up


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
    assert rate(throttle) is not None
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

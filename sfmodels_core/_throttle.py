"""Keeping under the services' limits: client-side pacing and the adaptive concurrency limit.

- :class:`RateLimiter`: ``requests_per_minute`` set by the user, spaced evenly.
- :class:`WindowLimiter`: a documented "N requests per minute" limit per route.
- :class:`Throttle`: the 429 throttle, one per client (AIMD concurrency, ``Retry-After``
  holds, pacing once a rate limit shows), and :class:`ThrottleStats`, what it is doing.

What the transport calls, around each attempt of an API call: :meth:`Throttle.acquire` /
:meth:`Throttle.aacquire` (a slot), :meth:`Throttle.pace` (when to send),
:meth:`Throttle.release` (the slot back, with the status), :meth:`Throttle.hold` /
:meth:`Throttle.held_for` (``Retry-After``), and, for the retry decision,
:meth:`Throttle.pace_progress`.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import math
import threading
import time
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass

from . import defaults

logger = logging.getLogger("sfmodels")


class RateLimiter:
    """Client-side request pacing, shared by every call of one client across threads and tasks.

    Requests are spaced evenly at ``(60 + RATE_WINDOW_MARGIN) / requests_per_minute`` seconds,
    so that no minute seen by the service holds more than ``requests_per_minute`` even when
    requests take different times to arrive; ``reserve`` books the next slot and says how long
    the caller must wait for it.
    """

    def __init__(self, requests_per_minute: float) -> None:
        if requests_per_minute <= 0:
            raise ValueError("requests_per_minute must be positive")
        self.interval = (60.0 + defaults.RATE_WINDOW_MARGIN) / requests_per_minute
        self._next = 0.0
        self._lock = threading.Lock()

    def reserve(self) -> float:
        with self._lock:
            now = time.monotonic()
            slot = max(self._next, now)
            self._next = slot + self.interval
            return slot - now


class WindowLimiter:
    """At most ``limit`` requests in any ``window`` seconds: the shape of a documented "N requests
    per minute" limit. Bursts pass at once; the request after the ``limit``-th waits until the
    one ``limit`` back is ``window`` seconds old."""

    def __init__(self, limit: int, window: float) -> None:
        if limit < 1 or window <= 0:
            raise ValueError("a window limit needs a positive count and length")
        self.limit = limit
        self.window = window
        self._booked: deque[float] = deque(maxlen=limit)
        self._lock = threading.Lock()

    def reserve(self) -> float:
        with self._lock:
            now = time.monotonic()
            slot = now
            if len(self._booked) == self.limit:
                slot = max(now, self._booked[0] + self.window)
            self._booked.append(slot)  # the oldest falls out: only the last `limit` matter
            return slot - now


@dataclass(frozen=True)
class ThrottleStats:
    """What a client's adaptive concurrency limit is doing, for logs and progress displays."""

    #: Requests the client lets be in flight now, and the most it ever allows.
    limit: int
    ceiling: int
    in_flight: int
    #: Calls waiting for a slot.
    waiting: int
    #: API requests sent, and how many of them were answered 429.
    requests: int
    rate_limited: int
    #: Times a 429 cut the limit.
    decreases: int
    #: Seconds until the longest hold ends: a ``Retry-After``, or the pause when 429s without
    #: one start the pace (0 when none).
    held_for: float
    #: Requests per minute the client paces itself to since a 429 with ``Retry-After``, or a run
    #: of 429s without it, showed a rate limit (None before).
    rate_per_minute: float | None = None


class _Waiter:
    __slots__ = ("event", "future", "granted", "loop", "ticket")

    def __init__(self, event: threading.Event | None = None,
                 future: asyncio.Future[None] | None = None,
                 loop: asyncio.AbstractEventLoop | None = None) -> None:
        self.event = event
        self.future = future
        self.loop = loop
        self.granted = False
        self.ticket = 0


def _running_loop() -> asyncio.AbstractEventLoop | None:
    try:
        return asyncio.get_running_loop()
    except RuntimeError:
        return None


def _resolve(future: asyncio.Future[None]) -> None:
    if not future.done():
        future.set_result(None)


class Throttle:
    """One adaptive concurrency limit for every API call of a client: threads and tasks, on any
    event loop, wait in one first-come queue.

    AIMD: a 429 cuts the limit to half the requests in flight (once per round: a 429 to a request
    sent before the last cut does not cut again); each success while calls wait for a slot (or
    every slot is taken) adds ``1 / limit``, so it grows back by about one per round, never
    above ``ceiling``. A ``Retry-After`` on a 429 holds every call to the same endpoint until it
    has passed, and shows that the service counts requests over time: from then on requests are
    also paced, at half the rate they were sent at before that 429 (measured over the last
    seconds), and the rate grows back by about one request per second each second while calls
    wait for it. (Few requests in flight can still make many requests a second when answers are
    quick, so a concurrency limit alone cannot keep under a rate limit.)

    A service that counts requests without saying so (429s without ``Retry-After``, as
    Databricks' workspace QPS limit answers) shows it by a run of cuts that find no level it
    accepts: ``ADAPTIVE_RATE_SIGNAL_CUTS`` in a row, each within ``ADAPTIVE_RATE_WINDOW`` of the
    last, the limit not grown back in between (or still low), ``ADAPTIVE_RATE_SIGNAL_SHARE``
    (three in four) of the requests sent since the run began refused, and some request
    answered lately. A lone 429, a
    concurrency limit (it keeps answering its share after each cut), a few refusals at random,
    and a service refusing everything only cut concurrency. Such a limit is taken to count
    per second: pacing starts at half the rate sent, or at the rate answered of the requests
    sent since the run began if more, after every request is held for
    ``ADAPTIVE_QPS_WINDOW`` so that the service's window empties. Each further cut by a 429
    without ``Retry-After`` halves the pace, never below the rate answered over the last
    ``ADAPTIVE_QPS_WINDOW`` (since the pause, if later; the service accepts that much) nor
    above the pace, with no new pause; as a 429 costs so little, the pace grows back faster,
    by ``ADAPTIVE_QPS_GROWTH`` an answer (about a tenth of itself a second). Calls of the
    client wait for the pace rather than spend their retries while others succeed
    (:class:`RetryState`, :meth:`pace_progress`).

    With ``adaptive`` off the limit stays at ``ceiling`` and nothing is held or paced; the
    counts still run.

    Decisions are made under one lock and never block; only :meth:`acquire` (a thread) and
    :meth:`aacquire` (a task) wait.
    """

    def __init__(self, ceiling: int, *, adaptive: bool = True, provider: str = "",
                 clock: Callable[[], float] = time.monotonic) -> None:
        self.ceiling = max(1, ceiling)
        self._clock = clock
        self.adaptive = adaptive
        self.provider = provider
        self._limit = float(self.ceiling)
        self._in_flight = 0
        self._epoch = 0
        self._requests = 0
        self._rate_limited = 0
        self._decreases = 0
        self._holds: dict[str, float] = {}
        self._waiters: deque[_Waiter] = deque()
        self._lock = threading.Lock()
        self._rate: float | None = None  # requests per second, once a rate limit was seen
        self._next_send = 0.0
        self._paced = False  # the last request had to wait for the rate
        self._sends: deque[float] = deque()  # when the requests of the last seconds were sent
        self._hold_until = 0.0  # no request is sent before (429s without Retry-After)
        self._growth = 0.0  # added to the pace by each answer at it, beyond 1 / pace
        self._last_success = -math.inf
        self._answers: deque[float] = deque()  # when requests of the last seconds succeeded
        # The run of cuts by 429s without Retry-After: its length, when the last was, the
        # limit it left, and the answers and refusals of requests sent since it began.
        self._run = 0
        self._last_cut = -math.inf
        self._run_level = 0
        self._run_epoch = 0
        self._run_started = -math.inf
        self._run_answered = self._run_refused = 0

    @property
    def limit(self) -> int:
        return max(1, int(self._limit))

    def stats(self) -> ThrottleStats:
        with self._lock:
            now = self._clock()
            held = max([self._hold_until, *self._holds.values()]) - now
            return ThrottleStats(limit=self.limit, ceiling=self.ceiling,
                                 in_flight=self._in_flight, waiting=len(self._waiters),
                                 requests=self._requests, rate_limited=self._rate_limited,
                                 decreases=self._decreases, held_for=max(0.0, held),
                                 rate_per_minute=None if self._rate is None
                                 else self._rate * 60.0)

    # -- slots -----------------------------------------------------------------------------------
    def _take(self) -> int:
        self._in_flight += 1
        self._requests += 1
        return self._epoch

    def _free_now(self) -> bool:
        return not self._waiters and self._in_flight < self.limit

    def acquire(self) -> int:
        """Wait (this thread) for a slot; returns the ticket to give back to :meth:`release`."""
        with self._lock:
            if self._free_now():
                return self._take()
            waiter = _Waiter(event=threading.Event())
            self._waiters.append(waiter)
        try:
            waiter.event.wait()  # type: ignore[union-attr]
        except BaseException:
            self._abandon(waiter)
            raise
        return waiter.ticket

    async def aacquire(self) -> int:
        """Wait (this task) for a slot; returns the ticket to give back to :meth:`release`."""
        with self._lock:
            if self._free_now():
                return self._take()
            loop = asyncio.get_running_loop()
            waiter = _Waiter(future=loop.create_future(), loop=loop)
            self._waiters.append(waiter)
        try:
            await waiter.future  # type: ignore[misc]
        except BaseException:
            self._abandon(waiter)
            raise
        return waiter.ticket

    def _abandon(self, waiter: _Waiter) -> None:
        """A waiter interrupted or cancelled: leave the queue, or give back the slot it got."""
        with self._lock:
            if waiter.granted:
                self._in_flight -= 1
                self._requests -= 1
                self._wake()
            else:
                with contextlib.suppress(ValueError):
                    self._waiters.remove(waiter)

    def _wake(self) -> None:
        here: asyncio.AbstractEventLoop | None = None
        while self._waiters and self._in_flight < self.limit:
            waiter = self._waiters.popleft()
            waiter.ticket = self._take()
            waiter.granted = True
            if waiter.event is not None:
                waiter.event.set()
                continue
            assert waiter.future is not None and waiter.loop is not None
            if here is None:
                here = _running_loop()
            if waiter.loop is here:
                # A task of this thread's loop: no wake-up write to the loop's socket (the
                # waiters of a fan-out are woken one per answer).
                _resolve(waiter.future)
                continue
            try:
                waiter.loop.call_soon_threadsafe(_resolve, waiter.future)
            except RuntimeError:  # its loop is closed: nobody will use the slot
                self._in_flight -= 1
                self._requests -= 1

    def pace(self) -> float:
        """Book the send time of a request that holds a slot: seconds to wait for it (0 unless
        a rate limit has been seen)."""
        with self._lock:
            now = self._clock()
            sends = self._sends
            sends.append(now)
            while sends and sends[0] < now - defaults.ADAPTIVE_RATE_WINDOW:
                sends.popleft()
            if self._rate is None:
                return 0.0
            slot = max(now, self._next_send, self._hold_until)
            self._next_send = slot + 1.0 / self._rate
            self._paced = slot > now
            return slot - now

    def release(self, ticket: int, status: int | None,
                retry_after: float | None = None) -> None:
        """Give the slot back with what the request got: an HTTP status (and the
        ``Retry-After`` of a 429), or None for no answer."""
        with self._lock:
            before = self._in_flight
            self._in_flight -= 1
            if status == 429:
                self._rate_limited += 1
                if ticket >= self._run_epoch:
                    self._run_refused += 1
                if self.adaptive and ticket == self._epoch:
                    self._cut(before, retry_after)
            elif status is not None and status < 400 and self.adaptive:
                now = self._last_success = self._clock()
                if ticket >= self._run_epoch:
                    self._run_answered += 1
                self._answers.append(now)
                self._recent(self._answers, now)
                # Each grows only while it is what holds calls back.
                if (before >= self.limit or self._waiters) and self._limit < self.ceiling:
                    self._limit = min(float(self.ceiling), self._limit + 1.0 / self._limit)
                if self._rate is not None and self._paced:
                    self._rate += max(1.0 / self._rate, self._growth)
            self._wake()

    def _cut(self, in_flight: int, retry_after: float | None) -> None:
        old = self.limit
        self._limit = max(1.0, math.floor(min(self._limit, in_flight)
                                          * defaults.ADAPTIVE_DECREASE))
        self._epoch += 1
        if self.limit < old:
            self._decreases += 1
            logger.info("%s answered 429 with %d requests in flight: concurrency limit "
                        "%d -> %d", self.provider, in_flight, old, self.limit)
        now = self._clock()
        if retry_after is not None:
            if retry_after > 0:
                self._growth = 0.0
                self._slow_down(now)
                logger.info("%s answered 429 with Retry-After: pacing at %.1f requests a "
                            "minute", self.provider, self._rate_per_minute())
            return
        if self._rate is not None:
            # What was answered over the last window, since the pause (if it ended within it).
            since = max(now - defaults.ADAPTIVE_QPS_WINDOW, self._hold_until)
            answered = self._recent(self._answers, now, now - since) if since < now else 0
            self._slow_down(now, floor=answered / max(now - since, 1e-3))
            logger.info("%s answered 429 without Retry-After: pacing at %.1f requests a "
                        "minute", self.provider, self._rate_per_minute())
        elif self._shows_rate(now, old):
            # What was answered of the requests sent since the run began.
            self._slow_down(now, floor=self._run_answered / max(now - self._run_started, 1e-3))
            self._hold_until = now + defaults.ADAPTIVE_QPS_WINDOW
            self._growth = defaults.ADAPTIVE_QPS_GROWTH
            logger.info("%s answered 429s without Retry-After faster than it accepts: pacing "
                        "at %.1f requests a minute after a %.1f s pause", self.provider,
                        self._rate_per_minute(), defaults.ADAPTIVE_QPS_WINDOW)

    def _shows_rate(self, now: float, old: int) -> bool:
        """Whether this cut by a 429 without Retry-After (from limit ``old``) makes a run that
        shows a rate limit (see the class)."""
        if (now - self._last_cut <= defaults.ADAPTIVE_RATE_WINDOW
                and old <= max(self._run_level, defaults.ADAPTIVE_LOW_LIMIT)):
            self._run += 1
        else:  # a new run: count the answers to what is sent from now on
            self._run, self._run_epoch, self._run_started = 1, self._epoch, now
            self._run_answered = self._run_refused = 0
        self._last_cut = now
        self._run_level = self.limit
        answered, refused = self._run_answered, self._run_refused
        return (self._run >= defaults.ADAPTIVE_RATE_SIGNAL_CUTS
                and refused >= defaults.ADAPTIVE_RATE_SIGNAL_SHARE * (answered + refused)
                and now - self._last_success <= defaults.ADAPTIVE_RATE_WINDOW)

    @staticmethod
    def _recent(times: deque[float], now: float, span: float | None = None) -> int:
        """How many of ``times`` (oldest first) fall in the last ``span`` seconds (at most and
        by default ``ADAPTIVE_RATE_WINDOW``); older ones are dropped."""
        window = defaults.ADAPTIVE_RATE_WINDOW
        while times and times[0] < now - window:
            times.popleft()
        if span is None or span >= window:
            return len(times)
        return sum(1 for when in times if when >= now - span)

    def _slow_down(self, now: float, floor: float = 0.0) -> None:
        """Pace at ``ADAPTIVE_DECREASE`` times the rate requests were sent at (or the pace, if
        lower) over the last ``ADAPTIVE_RATE_WINDOW`` seconds, but not below ``floor`` (a rate
        the service has just answered) nor above the pace already set."""
        sent = self._recent(self._sends, now) / defaults.ADAPTIVE_RATE_WINDOW
        rate = (sent if self._rate is None else min(self._rate, sent)) * defaults.ADAPTIVE_DECREASE
        rate = max(rate, floor)
        if self._rate is not None:
            rate = min(rate, self._rate)
        self._rate = max(defaults.ADAPTIVE_MIN_RATE, rate)

    def _rate_per_minute(self) -> float:
        return 0.0 if self._rate is None else self._rate * 60.0

    def pace_progress(self) -> tuple[bool, float]:
        """Whether requests are paced (a rate limit was seen), and when a request last
        succeeded (on the throttle's clock, -inf before any): what a call's retry decision
        needs to wait for the pace rather than spend its retries."""
        with self._lock:
            return self._rate is not None, self._last_success

    # -- Retry-After holds -----------------------------------------------------------------------
    def hold(self, key: str, seconds: float) -> None:
        """Hold every call to ``key`` (an endpoint's path) for ``seconds``."""
        if not self.adaptive or seconds <= 0:
            return
        with self._lock:
            until = self._clock() + seconds
            if until > self._holds.get(key, 0.0):
                self._holds[key] = until

    def held_for(self, key: str) -> float:
        if not self._holds:
            return 0.0
        with self._lock:
            until = self._holds.get(key)
            if until is None:
                return 0.0
            left = until - self._clock()
            if left <= 0:
                del self._holds[key]
                return 0.0
            return left

"""One retrying HTTP layer for both providers, sync and async.

Every decision (retry or not, how long to wait, which error to raise) lives in pure code shared by
both paths: :class:`RetryState` and :func:`error_from_response`. The sync and async methods of
:class:`Transport` differ only in how they send, sleep and read.
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import email.utils
import functools
import importlib.util
import logging
import math
import os
import random
import re
import ssl
import sys
import threading
import time
from collections import deque
from collections.abc import (
    AsyncGenerator,
    AsyncIterator,
    Awaitable,
    Callable,
    Generator,
    Mapping,
)
from dataclasses import dataclass
from typing import Any, TypeVar

import httpx
import pydantic_core

from . import defaults
from .errors import (
    APIConnectionError,
    APIStatusError,
    APITimeoutError,
    ConfigurationError,
    ErrorDetails,
    InvalidInputError,
    RateLimitError,
    ResponseValidationError,
    ServerError,
    SFModelsError,
    error_class_for_status,
    is_retryable_status,
)
from .options import ClientOptions, RetryPolicy

logger = logging.getLogger("sfmodels")
T = TypeVar("T")

# A provider turns an error response (status, decoded body) into what its body says.
ErrorParser = Callable[[int, Any], ErrorDetails]
JSON = "application/json"


def parse_retry_after(value: str | None, now: float | None = None) -> float | None:
    """Seconds to wait from a ``Retry-After`` header: delta-seconds or an HTTP date."""
    if not value:
        return None
    value = value.strip()
    try:
        return max(0.0, float(value))
    except ValueError:
        pass
    try:
        when = email.utils.parsedate_to_datetime(value)
    except (TypeError, ValueError):
        return None
    if when is None:
        return None
    return max(0.0, float(when.timestamp()) - (time.time() if now is None else now))


def backoff_delay(retry_number: int, policy: RetryPolicy, rng: random.Random) -> float:
    """Capped exponential backoff with full jitter on the upper half: in [d/2, d]."""
    ceiling = min(policy.max_backoff, policy.initial_backoff * 2.0 ** (retry_number - 1))
    return ceiling / 2 + rng.random() * ceiling / 2


def error_from_response(
    response: httpx.Response, provider: str, parse: ErrorParser
) -> APIStatusError:
    """Map an error response to the right error class, with the provider's code and message."""
    status = response.status_code
    try:
        body: Any = pydantic_core.from_json(response.content) if response.content else None
    except ValueError:
        body = response.text or None
    details = parse(status, body)
    request_id = (response.headers.get("x-request-id")
                  or response.headers.get("x-sfdc-request-id") or details.request_id)
    cls = error_class_for_status(status)
    text = details.message or (body if isinstance(body, str) else None) or response.reason_phrase
    kwargs: dict[str, Any] = {
        "status_code": status,
        "error_code": details.code,
        "provider_message": details.message,
        "request_id": request_id,
        "provider": provider,
        "hint": details.hint,
        "body": body,
        "message_code": details.message_code,
    }
    suffix = ""
    if cls is RateLimitError or cls is ServerError:
        retry_after = parse_retry_after(response.headers.get("retry-after"))
        kwargs["retry_after"] = retry_after
        if cls is RateLimitError and is_hourly_limit(retry_after, details.message):
            suffix = " (an hourly request limit is exhausted" + (
                f": the service asks to wait {retry_after / 60:.0f} min)" if retry_after else ")")
            kwargs["hint"] = hourly_hint(provider)
    return cls(f"{provider} returned an error: {text}{suffix}", **kwargs)


def is_hourly_limit(retry_after: float | None, message: str | None) -> bool:
    """A 429 that a per-minute window cannot explain: it asks to wait more than a minute, or
    says it is about an hour."""
    if retry_after is not None and retry_after > 60.0 + defaults.RATE_WINDOW_MARGIN:
        return True
    text = (message or "").lower()
    return "per hour" in text or "hourly" in text


def hourly_hint(provider: str) -> str:
    if provider == "Salesforce":
        return (f"Free and trial orgs may send "
                f"{defaults.SALESFORCE_TRIAL_GENERATIONS_PER_HOUR} generation requests per "
                f"hour (production orgs "
                f"{defaults.SALESFORCE_REQUESTS_PER_MINUTE['generations']:,} per minute per "
                f"endpoint): wait for the window to pass, or use a production org.")
    return ("The endpoint's hourly limit is exhausted: wait for the window to pass, or raise "
            "the endpoint's rate limits.")


#: What an SSL error says when the server answered a TLS handshake in plain HTTP.
_PLAIN_HTTP_SIGNS = ("wrong version number", "wrong_version_number", "record layer failure",
                     "http request")


def _url_of(exc: Exception) -> str:
    try:
        request = exc.request  # type: ignore[attr-defined]
    except (AttributeError, RuntimeError):
        return "the server"
    url = request.url
    return str(url.copy_with(path="/", query=None)) if isinstance(url, httpx.URL) else str(url)


def is_plain_http_answer(exc: Exception) -> bool:
    """A TLS handshake answered in plain HTTP: an https:// URL for an http:// server (a local
    emulator given without a scheme). Retrying cannot help."""
    return isinstance(exc, httpx.ConnectError) and any(
        sign in str(exc).lower() for sign in _PLAIN_HTTP_SIGNS)


def os_error_text(exc: BaseException) -> str | None:
    """The operating system's or the TLS library's words for the failure under ``exc`` (found
    along its chain of causes), such as ``[Errno 111] Connection refused`` or ``TLS: certificate
    has expired``; None when there are none. They never hold anything a request carried."""
    seen: set[int] = set()
    current: BaseException | None = exc
    while current is not None and id(current) not in seen:
        seen.add(id(current))
        if isinstance(current, ssl.SSLCertVerificationError) and isinstance(
                current.verify_message, str) and current.verify_message:
            return f"TLS certificate verification failed: {current.verify_message}"
        if isinstance(current, ssl.SSLError):
            reason = getattr(current, "reason", None)
            return f"TLS error {reason}" if isinstance(reason, str) and _WORD.fullmatch(
                reason) else "TLS error"
        errno = getattr(current, "errno", None)
        if isinstance(current, OSError) and isinstance(errno, int) and not isinstance(
                errno, bool):
            words = os.strerror(errno) if errno > 0 else current.strerror
            if isinstance(words, str) and words:
                return f"[Errno {errno}] {words}"
        current = current.__cause__ or current.__context__
    return None


_WORD = re.compile(r"[A-Z0-9_]{1,80}")
#: Protocol-error texts that hold nothing sent or received (h11's, httpcore's, and the class
#: names the aiohttp sender gives), shown as they are; any other text is left out.
_SAFE_PROTOCOL_TEXT = re.compile(
    r"Server disconnected without sending a response\.|"
    r"peer closed connection without sending complete message body: "
    r"(incomplete chunked read|received \d+ bytes, expected \d+)|"
    r"[A-Z][A-Za-z]{0,60}Error")


def _description(exc: BaseException) -> str:
    """``exc``'s class name and what may be said of it safely. The text of an HTTP library's
    exception may hold header values (h11 quotes an illegal header, ``Bearer`` token and all)
    or bytes from the server, so it is never copied: connection failures are described by the
    operating system's words, protocol errors only by texts known to be safe."""
    name = type(exc).__name__
    if isinstance(exc, (httpx.NetworkError, httpx.ProxyError)):
        words = os_error_text(exc)
        return f"{name}: {words}" if words else name
    if isinstance(exc, httpx.RemoteProtocolError):
        text = str(exc)
        return f"{name}: {text}" if _SAFE_PROTOCOL_TEXT.fullmatch(text) else name
    return name


def is_retryable_exception(exc: Exception) -> bool:
    """Whether another attempt may succeed after ``exc``: a timeout, a connection that failed
    or broke, a protocol error of the server's. Not a request we could not build or send as it
    is (``LocalProtocolError``, ``UnsupportedProtocol``, ``InvalidURL``), a body we could not
    decode, nor a TLS handshake answered in plain HTTP."""
    return (isinstance(exc, (httpx.TimeoutException, httpx.NetworkError,
                             httpx.RemoteProtocolError, httpx.ProxyError))
            and not is_plain_http_answer(exc))


def error_from_exception(exc: Exception, provider: str) -> SFModelsError:
    """The error of our hierarchy for an exception raised while sending or reading.

    Its message names the exception's class and says only what is safe (see
    :func:`_description`): never the exception's own text, which may hold header values.
    Timeouts are ``APITimeoutError``, connection failures and broken connections
    ``APIConnectionError``; a body that could not be decoded (``httpx.DecodingError``)
    ``ResponseValidationError``; a URL httpx cannot send to (``httpx.InvalidURL``,
    ``httpx.UnsupportedProtocol``) ``ConfigurationError``; a request HTTP cannot carry
    (``httpx.LocalProtocolError``) and any other failure ``APIConnectionError``.
    """
    url = _url_of(exc)
    name = type(exc).__name__
    if isinstance(exc, httpx.ConnectTimeout):
        return APITimeoutError(
            f"Could not connect to {provider} at {url} in time: {name}",
            provider=provider,
            hint="Check the host and its scheme (a host given without one is taken as "
                 "https://), or raise connect_timeout for a slow network.")
    if isinstance(exc, AnswerTooSlow):
        return APITimeoutError(f"{provider} did not answer in time: {exc}", provider=provider)
    if isinstance(exc, httpx.TimeoutException):
        return APITimeoutError(f"{provider} did not answer in time: {name}",
                               provider=provider)
    if is_plain_http_answer(exc):
        return APIConnectionError(
            f"{provider} at {url} answered the TLS handshake in plain HTTP", provider=provider,
            hint=f"The server speaks http, not https: use {url.replace('https://', 'http://')} "
                 "(a host given without a scheme is taken as https://).")
    if isinstance(exc, httpx.DecodingError):
        return ResponseValidationError(
            f"{provider} sent a body that could not be decoded as its Content-Encoding says "
            f"({name})", provider=provider, incomplete=True)
    if isinstance(exc, (httpx.InvalidURL, httpx.UnsupportedProtocol)):
        return ConfigurationError(
            f"Could not send to {provider}: the request URL is not one httpx can send to "
            f"({name})", provider=provider,
            hint="Check the host or base URL setting: an http(s) URL such as "
                 "https://example.com.")
    if isinstance(exc, httpx.LocalProtocolError):
        return APIConnectionError(
            f"Could not send the request to {provider}: it holds something HTTP cannot carry "
            f"({name}; its text is not shown, as it may quote header values)",
            provider=provider)
    return APIConnectionError(f"Could not talk to {provider}: {_description(exc)}",
                              provider=provider)


class RetryState:
    """The retry decisions for one logical call. Pure: it never sends or sleeps.

    ``delay_after_response`` / ``delay_after_exception`` return how long to wait before the next
    attempt, or raise the error the call ends with.

    With the client's ``throttle``, a call under fan-out waits for the shared pace rather than
    spend its retries, as a bulk job's batches do: a 429 answered while the throttle paces
    requests (it has seen a rate limit), once some request of the client has succeeded since
    this call began, is not counted against ``max_retries``; the next attempt takes its turn
    at the pace. Waiting ends ``give_up_after`` seconds after the call began (the bulk job's
    ``no_progress_timeout``: as long as a call whose every attempt timed out), and then the
    429s count again. A call that may not retry at all (``max_retries=0``) never waits.
    """

    def __init__(self, policy: RetryPolicy, provider: str, parse: ErrorParser,
                 rng: random.Random, throttle: Throttle | None = None,
                 give_up_after: float = math.inf,
                 clock: Callable[[], float] = time.monotonic) -> None:
        self.policy = policy
        self.provider = provider
        self.parse = parse
        self.rng = rng
        self.retries = 0
        #: 429s this call waited out at the client's pace, not counted in ``retries``.
        self.waits = 0
        self.throttle = throttle
        self.give_up_after = give_up_after
        self.clock = clock
        self.started = clock()

    @property
    def attempts(self) -> int:
        """Attempts made so far, counting the one whose answer is being decided."""
        return self.retries + self.waits + 1

    def _waits_for_pace(self, suggested: float | None) -> bool:
        if self.throttle is None or self.policy.max_retries == 0:
            return False
        if suggested is not None and suggested > self.policy.max_retry_after:
            return False  # e.g. an hourly window: waiting is not this call's to do
        pacing, last_success = self.throttle.pace_progress()
        return (pacing and last_success > self.started
                and self.clock() - self.started < self.give_up_after)

    def _next_delay(self, suggested: float | None) -> float | None:
        if self.retries >= self.policy.max_retries:
            return None
        if suggested is not None and suggested > self.policy.max_retry_after:
            return None
        self.retries += 1
        if suggested is not None:  # "Retry-After: 0" must not spend every retry at once
            return max(suggested, defaults.MIN_RETRY_DELAY)
        return backoff_delay(self.retries, self.policy, self.rng)

    def delay_after_response(self, response: httpx.Response) -> float:
        error = error_from_response(response, self.provider, self.parse)
        if is_retryable_status(response.status_code):
            suggested = parse_retry_after(response.headers.get("retry-after"))
            if response.status_code == 429 and self._waits_for_pace(suggested):
                self.waits += 1
                logger.debug("%s answered 429 while the client paces its requests: waiting "
                             "for the pace (attempt %d)", self.provider, self.attempts)
                return max(suggested or 0.0, defaults.MIN_RETRY_DELAY)
            delay = self._next_delay(suggested)
            if delay is not None:
                logger.debug("%s answered %s; retry %d in %.3fs", self.provider,
                             response.status_code, self.retries, delay)
                return delay
        raise error

    def delay_after_exception(self, exc: Exception) -> float:
        error = error_from_exception(exc, self.provider)
        delay = self._next_delay(None) if is_retryable_exception(exc) else None
        if delay is None:
            raise error from exc
        logger.debug("%s: %s; retry %d in %.3fs", self.provider, type(exc).__name__,
                     self.retries, delay)
        return delay


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


@functools.lru_cache(maxsize=1)
def shared_ssl_context() -> ssl.SSLContext:
    """One TLS context for every HTTP client of the process (httpx's own defaults: certifi, or
    SSL_CERT_FILE / SSL_CERT_DIR), aiohttp's sessions included. Building one costs tens of
    milliseconds, and each event loop's pool holds up to one client per connection."""
    return httpx.create_ssl_context()


def dumps(body: Any) -> bytes:
    """The request body as JSON. Refused as bad input before anything is sent: text JSON cannot
    carry (a lone surrogate, as a bad decode of bytes leaves), and a NaN or an infinity
    anywhere (JSON has no such numbers: they would go out as bare ``NaN`` or ``Infinity``
    tokens, which services refuse or misread)."""
    try:
        data = pydantic_core.to_json(body)
    except pydantic_core.PydanticSerializationError as exc:
        raise InvalidInputError(
            f"The request holds text that cannot be sent as UTF-8 JSON ({exc}); a lone "
            "surrogate usually comes from decoding bytes with errors='surrogateescape'.") from None
    # Only a body whose JSON spells NaN or Infinity (in a text, nearly always) is walked to
    # tell; a large one is walked rather than searched (a walk costs per value, not per byte).
    if len(data) > 65_536 or b"NaN" in data or b"Infinity" in data:
        from .validation import non_finite_number

        found = non_finite_number(body)
        if found is not None:
            where, value = found
            token = "NaN" if math.isnan(value) else "Infinity" if value > 0 else "-Infinity"
            raise InvalidInputError(
                f"The request's {where} is {token}: JSON has no such number (it would be sent "
                f"as a bare {token}, which services refuse or misread); pass a finite number.")
    return data


def loads(content: bytes) -> Any:
    return pydantic_core.from_json(content)


class AnswerTooSlow(httpx.ReadTimeout):
    """An attempt's whole answer did not arrive within its deadline (our own text only)."""


def deadline_passed(request: httpx.Request, seconds: float) -> AnswerTooSlow:
    return AnswerTooSlow(f"the whole answer did not arrive within timeout={seconds:g} s",
                         request=request)


class BodyLimit:
    """The size cap of a plain answer's body (:data:`~.defaults.MAX_BODY_BYTES`): a body that
    announces its length is read in one go when it fits (the HTTP layer stops at that length);
    one that does not is counted as it arrives."""

    __slots__ = ("announced", "request", "size")

    def __init__(self, response: httpx.Response) -> None:
        self.request = response.request
        self.size = 0
        length = response.headers.get("content-length")
        self.announced = length is not None and length.isdigit()
        if self.announced and int(length) > defaults.MAX_BODY_BYTES:
            raise self._refused(int(length))

    def add(self, chunk: bytes) -> None:
        self.size += len(chunk)
        if self.size > defaults.MAX_BODY_BYTES:
            raise self._refused(self.size)

    @staticmethod
    def _refused(size: int) -> ResponseValidationError:
        return ResponseValidationError(
            f"The answer's body holds {size:,} bytes, over the {defaults.MAX_BODY_BYTES:,} "
            "this client reads: refused rather than held in memory")


async def aread_whole(response: httpx.Response) -> httpx.Response:
    """Read an async answer's body within :class:`BodyLimit` (the deadline is the caller's)."""
    try:
        limit = BodyLimit(response)
        if limit.announced:
            await response.aread()
            return response
        chunks = []
        async for chunk in response.aiter_bytes():
            limit.add(chunk)
            chunks.append(chunk)
        response._content = b"".join(chunks)  # as response.aread() keeps it
    finally:
        await response.aclose()
    return response


if sys.version_info >= (3, 11):
    async def within(seconds: float | None, request: httpx.Request, work: Awaitable[T]) -> T:
        """``work``, unless ``seconds`` (None: no limit) pass first: then
        ``httpx.ReadTimeout``."""
        if seconds is None:
            return await work
        timeout = asyncio.timeout(seconds)
        try:
            async with timeout:
                return await work
        except TimeoutError:
            if not timeout.expired():
                raise
            raise deadline_passed(request, seconds) from None
else:  # pragma: no cover - Python 3.10
    async def within(seconds: float | None, request: httpx.Request, work: Awaitable[T]) -> T:
        if seconds is None:
            return await work
        try:
            return await asyncio.wait_for(work, seconds)
        except asyncio.TimeoutError:
            raise deadline_passed(request, seconds) from None


AIOHTTP_EXTRA = "sfmodels[aiohttp]"


def require_aiohttp() -> None:
    """Refuse ``async_http="aiohttp"`` up front, naming the extra, when aiohttp is missing."""
    if importlib.util.find_spec("aiohttp") is None:
        raise ConfigurationError(
            "async_http='aiohttp' needs aiohttp, which is not installed.",
            hint=f"Install the {AIOHTTP_EXTRA} extra: pip install '{AIOHTTP_EXTRA}', or leave "
                 "async_http at its default, 'httpx'.")


class _NoCookies(httpx.Cookies):
    """Both APIs authenticate with bearer tokens; parsing every response's cookies with
    http.cookiejar cost about 100 µs a call for nothing, and kept state between calls."""

    def extract_cookies(self, response: httpx.Response) -> None:
        return None


class Transport:
    """One pooled sync client and one async client per owner, created lazily, and the retry loop.

    ``auth`` is applied to API calls; token calls made by the auth itself go through
    :meth:`send_token_request` / :meth:`asend_token_request` without it.
    """

    def __init__(
        self,
        *,
        provider: str,
        parse_error: ErrorParser,
        headers: Mapping[str, str] | None = None,
        auth: httpx.Auth | None = None,
        options: ClientOptions | None = None,
        transport: httpx.BaseTransport | None = None,
        async_transport: httpx.AsyncBaseTransport | None = None,
        content_type: str = JSON,
        default_rates: Mapping[str, int] | None = None,
    ) -> None:
        """``default_rates``: requests per minute by the last segment of a URL's path (the
        service's documented limits), kept to when ``options.requests_per_minute`` is unset."""
        self.provider = provider
        #: The content type of request bodies (Salesforce's spec names a charset).
        self.content_type = content_type
        self.parse_error = parse_error
        self.headers = dict(headers or {})
        self.auth = auth
        options = options or ClientOptions()
        connect = options.connect_timeout if options.connect_timeout is not None else (
            options.timeout)
        self.timeout = httpx.Timeout(options.timeout, connect=connect)
        #: The most a stream may wait for its next event (see :class:`~.sse.Idle`), and the
        #: most one attempt of a plain request may take, whole.
        self.stream_timeout = self.deadline = options.timeout
        self.policy = options.retry
        self.single_policy = dataclasses.replace(self.policy, max_retries=0)
        self.limiter = (RateLimiter(options.requests_per_minute)
                        if options.requests_per_minute else None)
        self.route_limiters = {} if self.limiter else {
            route: WindowLimiter(rate, 60.0 + defaults.RATE_WINDOW_MARGIN)
            for route, rate in (default_rates or {}).items()}
        self.throttle = Throttle(options.max_connections, adaptive=options.adaptive,
                                 provider=provider)
        #: How long a call may wait for the throttle's pace (see :class:`RetryState`).
        self.give_up_after = options.bulk_give_up_after
        self.limits = httpx.Limits(max_connections=options.max_connections,
                                   max_keepalive_connections=options.max_connections)
        self._transport = transport
        self._async_transport = async_transport
        self.async_http = options.async_http
        if self.async_http == "aiohttp":
            if async_transport is not None:
                raise InvalidInputError(
                    "async_transport= is an httpx transport, and async_http='aiohttp' sends "
                    "with aiohttp: give one or the other")
            require_aiohttp()
        self._client: httpx.Client | None = None
        self._apools: dict[asyncio.AbstractEventLoop, AsyncHTTP] = {}
        self._prepared: dict[tuple[str, bool, bool], tuple[httpx.URL, httpx.Headers]] = {}
        self._timeout_extension = self.timeout.as_dict()
        self._client_lock = threading.Lock()
        self._rng = random.Random()

    # -- clients -------------------------------------------------------------------------------
    @property
    def client(self) -> httpx.Client:
        if self._client is None:
            with self._client_lock:
                if self._client is None:
                    self._client = httpx.Client(
                        headers=self.headers, timeout=self.timeout, limits=self.limits,
                        transport=self._transport, follow_redirects=False,
                        verify=shared_ssl_context())
                    self._client._cookies = _NoCookies()  # the setter would re-wrap it
        return self._client

    async def apool(self) -> AsyncHTTP:
        """The async clients of the running event loop (httpx's, or aiohttp's).

        Connections belong to the loop that opened them, so each loop (each ``asyncio.run``,
        each thread running its own loop) gets a pool of its own, closed when that loop shuts
        down its async generators (``asyncio.run`` does) or by :meth:`aclose`.
        """
        loop = asyncio.get_running_loop()
        pool = self._apools.get(loop)
        if pool is None:
            with self._client_lock:
                for old in [lp for lp in self._apools if lp.is_closed()]:
                    del self._apools[old]  # a loop that ended without shutting down
                pool = self._apools[loop] = self._new_pool()
            await pool.close_with_loop(lambda: self._apools.pop(loop, None))
        return pool

    def _new_pool(self) -> AsyncHTTP:
        if self.async_http == "aiohttp":
            from .aiohttp_pool import AiohttpPool

            return AiohttpPool(headers=self.headers, timeout=self.timeout,
                               max_connections=self.limits.max_connections or 100)
        return AsyncPool(self._make_aclient, self.limits)

    def _make_aclient(self, limits: httpx.Limits) -> httpx.AsyncClient:
        client = httpx.AsyncClient(headers=self.headers, timeout=self.timeout, limits=limits,
                                   transport=self._async_transport, follow_redirects=False,
                                   verify=shared_ssl_context())
        client._cookies = _NoCookies()  # the setter would re-wrap it
        return client

    def close(self) -> None:
        if self._client is not None:
            self._client.close()
            self._client = None

    async def aclose(self) -> None:
        pool = self._apools.pop(asyncio.get_running_loop(), None)
        if pool is not None:
            await pool.aclose()
        self.close()

    def _state(self, retry: bool = True, paced: bool = True) -> RetryState:
        """The retry decisions of one call; ``paced``: an API call, which may wait for the
        throttle's pace (token requests skip the throttle)."""
        return RetryState(self.policy if retry else self.single_policy, self.provider,
                          self.parse_error, self._rng,
                          throttle=self.throttle if paced else None,
                          give_up_after=self.give_up_after)

    def _build(self, base: httpx.Headers, method: str, url: str, body: Any, *,
               sync: bool) -> httpx.Request:
        """The request, built directly rather than by ``client.build_request``: the client's
        headers, the URL and the Host header are prepared once per URL, not per call (merging,
        parsing and httpx's own header preparation were half of a call's client-side time).

        ``base`` is the headers of the client that sends it: the same for every client of one
        side (``sync``), while aiohttp's differ from httpx's."""
        key = (url, body is None, sync)
        prepared = self._prepared.get(key)
        if prepared is None:
            prepared = self._prepare(base, key)
        parsed, headers = prepared
        content = b"" if body is None else dumps(body)
        # stream= rather than content=: httpx then adds no headers of its own, as they are here.
        request = httpx.Request(method, parsed, headers=headers, stream=httpx.ByteStream(content),
                                extensions={"timeout": self._timeout_extension})
        if body is not None or method in ("POST", "PUT", "PATCH"):
            request.headers["Content-Length"] = str(len(content))
        request.read()  # request.content, as httpx would have it
        return request

    def _prepare(self, base: httpx.Headers,
                 key: tuple[str, bool, bool]) -> tuple[httpx.URL, httpx.Headers]:
        url, bodiless, _ = key
        parsed = httpx.URL(url)
        headers = httpx.Headers([(b"Host", parsed.netloc), *base.raw])
        if not bodiless:
            headers["Content-Type"] = self.content_type
        if len(self._prepared) >= 512:  # bounded: URLs carry endpoint names, not inputs
            self._prepared.clear()
        self._prepared[key] = parsed, headers
        return parsed, headers

    def _pace(self, url: httpx.URL, ticket: int | None) -> float:
        """Seconds to wait before sending: the user's pacing or the documented limits, and the
        throttle's own pacing once it has seen a rate limit (API calls only)."""
        wait = self.throttle.pace() if ticket is not None else 0.0
        if self.limiter is not None:
            return max(wait, self.limiter.reserve())
        if self.route_limiters:
            limiter = self.route_limiters.get(url.path.rsplit("/", 1)[-1])
            if limiter is not None:
                return max(wait, limiter.reserve())
        return wait

    # -- the throttle around each attempt of an API call ---------------------------------------
    # An attempt first waits out a Retry-After hold on its endpoint (unless it has just waited
    # for it as its retry delay), then takes a slot of the throttle, then waits for its pacing
    # slot; the slot is given back, with the status, as soon as the answer (or failure) is in.

    def _retry_delay(self, key: str, delay: float) -> float:
        return max(delay, self.throttle.held_for(key))

    def _settle(self, ticket: int | None, key: str, response: httpx.Response | None) -> None:
        if ticket is None:
            return
        status = None if response is None else response.status_code
        wait = None
        if status == 429 and response is not None:
            wait = parse_retry_after(response.headers.get("retry-after"))
            if wait is not None and wait <= self.policy.max_retry_after:
                self.throttle.hold(key, wait)
        self.throttle.release(ticket, status, wait)

    def _enter(self, key: str, held: bool) -> int:
        if not held:
            _sleep(self.throttle.held_for(key))
        return self.throttle.acquire()

    async def _aenter(self, key: str, held: bool) -> int:
        if not held:
            await _asleep(self.throttle.held_for(key))
        return await self.throttle.aacquire()

    # -- plain requests ------------------------------------------------------------------------
    # One attempt is bounded whole by ``deadline``: httpx's timeouts bound each read, so a
    # server trickling its answer a byte at a time would hold a call for as long as it liked.

    def _send_whole(self, request: httpx.Request, auth: httpx.Auth | None) -> httpx.Response:
        """Send and read the whole answer within the deadline (checked as each piece of the
        body arrives, so it is overrun by one read at most) and :data:`~.defaults.MAX_BODY_BYTES`.
        """
        seconds = self.deadline
        deadline = math.inf if seconds is None else time.monotonic() + seconds
        response = self.client.send(request, auth=auth, stream=True)
        try:
            limit = BodyLimit(response)
            chunks = []
            for chunk in response.iter_bytes():
                limit.add(chunk)
                if time.monotonic() > deadline:
                    raise deadline_passed(request, seconds or 0.0)
                chunks.append(chunk)
            response._content = b"".join(chunks)  # as response.read() keeps it
        finally:
            response.close()
        return response

    def request(self, method: str, url: str, body: Any = None, *,
                retry: bool = True) -> httpx.Response:
        """Send with retries (one attempt if ``retry`` is false: bulk calls retry on their own);
        return the successful, fully read response or raise."""
        request = self._build(self.client.headers, method, url, body, sync=True)
        return self._send_with_retries(request, self.auth, retry=retry)

    async def arequest(self, method: str, url: str, body: Any = None, *,
                       retry: bool = True) -> httpx.Response:
        pool = await self.apool()
        request = self._build(pool.headers, method, url, body, sync=False)
        return await self._asend_with_retries(pool, request, self.auth, retry=retry)

    def send_token_request(self, request: httpx.Request) -> httpx.Response:
        return self._send_with_retries(request, None, check=False)

    async def asend_token_request(self, request: httpx.Request) -> httpx.Response:
        return await self._asend_with_retries(await self.apool(), request, None, check=False)

    def _send_with_retries(self, request: httpx.Request, auth: httpx.Auth | None,
                           check: bool = True, retry: bool = True) -> httpx.Response:
        state = self._state(retry, paced=auth is not None)
        key = request.url.path
        held = False
        while True:
            # Token requests skip the throttle: API calls may be holding every slot waiting
            # for the token.
            ticket = None if auth is None else self._enter(key, held)
            response = None
            try:
                _sleep(self._pace(request.url, ticket))
                response = self._send_whole(request, auth)
            except httpx.RequestError as exc:
                self._settle(ticket, key, None)
                delay = state.delay_after_exception(exc)
            except BaseException:
                self._settle(ticket, key, None)
                raise
            else:
                self._settle(ticket, key, response)
                _log_response(response, state)
                if response.is_success or not (check or is_retryable_status(
                        response.status_code)):
                    return response
                delay = state.delay_after_response(response)
            delay, held = self._retry_delay(key, delay), True
            _sleep(delay)

    async def _asend_with_retries(self, pool: AsyncHTTP, request: httpx.Request,
                                  auth: httpx.Auth | None, check: bool = True,
                                  retry: bool = True) -> httpx.Response:
        state = self._state(retry, paced=auth is not None)
        key = request.url.path
        held = False
        while True:
            ticket = None if auth is None else await self._aenter(key, held)
            response = None
            try:
                await _asleep(self._pace(request.url, ticket))
                response = await within(self.deadline, request, pool.send(request, auth))
            except httpx.RequestError as exc:
                self._settle(ticket, key, None)
                delay = state.delay_after_exception(exc)
            except BaseException:
                self._settle(ticket, key, None)
                raise
            else:
                self._settle(ticket, key, response)
                _log_response(response, state)
                if response.is_success or not (check or is_retryable_status(
                        response.status_code)):
                    return response
                delay = state.delay_after_response(response)
            delay, held = self._retry_delay(key, delay), True
            await _asleep(delay)

    # -- streams -------------------------------------------------------------------------------
    # Retries happen only before the first byte: the first chunk is read inside the retry loop.
    # A break after that surfaces as APIConnectionError. A stream holds its throttle slot until
    # it ends.

    def stream(self, method: str, url: str, body: Any = None) -> Generator[bytes, None, None]:
        """Yield the body of a successful response as it arrives."""
        request = self._build(self.client.headers, method, url, body, sync=True)
        state = self._state()
        key = request.url.path
        held = False
        while True:
            ticket = self._enter(key, held)
            response = None
            failure: httpx.Response | Exception
            try:
                _sleep(self._pace(request.url, ticket))
                response = self.client.send(request, auth=self.auth, stream=True)
                if response.is_success:
                    chunks = response.iter_bytes()
                    first = next(chunks, b"")
                    break
                response.read()
                failure = response
            except httpx.RequestError as exc:
                failure = exc
            except BaseException:
                _close(response)
                self._settle(ticket, key, None)
                raise
            _close(response)
            self._settle(ticket, key, response if isinstance(failure, httpx.Response) else None)
            delay = (state.delay_after_exception(failure) if isinstance(failure, Exception)
                     else state.delay_after_response(failure))
            delay, held = self._retry_delay(key, delay), True
            _sleep(delay)
        try:
            yield first
            yield from chunks
        except httpx.RequestError as exc:
            raise error_from_exception(exc, self.provider) from exc
        finally:
            response.close()
            self._settle(ticket, key, response)

    async def astream(self, method: str, url: str, body: Any = None) -> AsyncBody:
        """Send with retries until a successful answer's first bytes arrive; its body as it
        arrives (an :class:`AsyncBody`: close it, or read it to its end)."""
        pool = await self.apool()
        request = self._build(pool.headers, method, url, body, sync=False)
        state = self._state()
        key = request.url.path
        held = False
        while True:
            ticket = await self._aenter(key, held)
            await _asleep(self._pace(request.url, ticket))
            response = None
            failure: httpx.Response | Exception
            try:
                # The response holds its connection slot until it is closed.
                response = await pool.send_stream(request, self.auth)
                if response.is_success:
                    chunks = response.aiter_bytes()
                    first = await anext(chunks, b"")
                    break
                await response.aread()
                failure = response
            except httpx.RequestError as exc:
                failure = exc
            except BaseException:
                await _aclose(response)
                self._settle(ticket, key, None)
                raise
            await _aclose(response)
            self._settle(ticket, key, response if isinstance(failure, httpx.Response) else None)
            delay = (state.delay_after_exception(failure) if isinstance(failure, Exception)
                     else state.delay_after_response(failure))
            delay, held = self._retry_delay(key, delay), True
            await _asleep(delay)
        return AsyncBody(response, chunks, first, self.provider,
                         lambda: self._settle(ticket, key, response))


class AsyncBody:
    """The body of a successful streaming answer, chunk by chunk; closing it (or reading it to
    its end) closes the response and gives back its throttle slot, once.

    An object rather than an async generator: when a caller leaves a stream without closing it,
    the event loop finalizes every async generator of the chain on its own, and a generator
    whose cleanup awaits (closing a response does) would be closed twice at once ("aclose():
    asynchronous generator is already running"). Closing this twice is harmless.
    """

    def __init__(self, response: httpx.Response, chunks: AsyncIterator[bytes], first: bytes,
                 provider: str, settle: Callable[[], None]) -> None:
        self._response = response
        self._chunks = chunks
        self._first: bytes | None = first
        self._provider = provider
        self._settle: Callable[[], None] | None = settle

    def __aiter__(self) -> AsyncBody:
        return self

    async def __anext__(self) -> bytes:
        if self._first is not None:
            first, self._first = self._first, None
            return first
        try:
            return await anext(self._chunks)
        except StopAsyncIteration:
            await self.aclose()
            raise
        except httpx.RequestError as exc:
            await self.aclose()
            raise error_from_exception(exc, self._provider) from exc

    async def aclose(self) -> None:
        settle, self._settle = self._settle, None
        if settle is None:
            return
        try:
            await self._response.aclose()
        finally:
            settle()


class AsyncHTTP:
    """The HTTP of one event loop, as the retry loop uses it: httpx's (:class:`AsyncPool`), or
    aiohttp's with ``async_http="aiohttp"`` (:mod:`.aiohttp_pool`)."""

    #: The headers every request starts from.
    headers: httpx.Headers

    def __init__(self) -> None:
        self._closed = False
        self._watcher: AsyncGenerator[None, None] | None = None

    async def send(self, request: httpx.Request, auth: httpx.Auth | None) -> httpx.Response:
        """An API request with its ``auth``, or a token request (``auth`` None) apart from
        them; the response read in full."""
        raise NotImplementedError

    async def send_stream(self, request: httpx.Request,
                          auth: httpx.Auth | None) -> httpx.Response:
        """An API request whose body is read as it arrives; it holds its connection until the
        response is closed."""
        raise NotImplementedError

    async def aclose(self) -> None:
        raise NotImplementedError

    async def close_with_loop(self, forget: Callable[[], object]) -> None:
        """Close this pool when the running loop shuts down its async generators."""

        async def watcher() -> AsyncGenerator[None, None]:
            try:
                yield
            finally:
                forget()
                await self.aclose()

        self._watcher = watcher()  # kept here: dropping it would run its cleanup at once
        await self._watcher.asend(None)


class AsyncPool(AsyncHTTP):
    """The async HTTP clients of one event loop: API calls spread over clients of one
    connection each.

    httpcore's pool checks every one of its connections (a system call for each idle one) each
    time a request enters or leaves it, and counts its idle connections once per connection
    while doing so: one pool of 100 connections took 5.9 s for 500 concurrent calls at 50 ms
    instead of 0.25 s. Clients of ``SHARD_SIZE`` connections, entered through a free list of
    slots so that no request ever waits inside httpcore, check one connection a request: at
    2,000 concurrent calls, 0.96 ms of CPU a call, against 1.6 ms with clients of 10
    connections and 7.2 ms with one of 100 (``benchmarks/fanout.py --options``). The free list
    is last-in first-out, so that calls one after another reuse one warm connection rather than
    opening one per client; clients are created when first needed (0.2 ms each). Token
    requests use a client of their own, so API calls holding every slot while they wait for a
    token cannot starve them.
    """

    SHARD_SIZE = 1

    def __init__(self, make_client: Callable[[httpx.Limits], httpx.AsyncClient],
                 limits: httpx.Limits) -> None:
        super().__init__()
        self._make = make_client
        total = max(1, limits.max_connections or 100)
        self._sizes = [min(self.SHARD_SIZE, total - start)
                       for start in range(0, total, self.SHARD_SIZE)]
        self._clients: list[httpx.AsyncClient | None] = [None] * len(self._sizes)
        self._token_client: httpx.AsyncClient | None = None
        #: The headers every request starts from (the clients' own: httpx's defaults and ours).
        self.headers = self.client(0).headers
        self._slots: asyncio.LifoQueue[int] = asyncio.LifoQueue()
        for index in reversed(range(len(self._sizes))):  # the first client comes out first
            for _ in range(self._sizes[index]):
                self._slots.put_nowait(index)

    def client(self, index: int) -> httpx.AsyncClient:
        """The client of slot ``index``, created on first use."""
        client = self._clients[index]
        if client is None:
            self._check_open()
            size = self._sizes[index]
            client = self._clients[index] = self._make(
                httpx.Limits(max_connections=size, max_keepalive_connections=size))
        return client

    @property
    def token_client(self) -> httpx.AsyncClient:
        if self._token_client is None:
            self._check_open()
            self._token_client = self._make(httpx.Limits(max_connections=4))
        return self._token_client

    @property
    def clients(self) -> list[httpx.AsyncClient]:
        """The clients created so far."""
        return [client for client in [*self._clients, self._token_client] if client is not None]

    def _check_open(self) -> None:
        if self._closed:
            raise RuntimeError("Cannot send a request, as the client has been closed.")

    async def acquire(self) -> int:
        slots = self._slots
        return slots.get_nowait() if slots.qsize() else await slots.get()

    def release(self, index: int) -> None:
        self._slots.put_nowait(index)

    async def send(self, request: httpx.Request, auth: httpx.Auth | None) -> httpx.Response:
        """An API request with its ``auth`` on a free shard, or a token request (``auth``
        None) on the token client; the response read in full."""
        if auth is None:
            return await aread_whole(await self.token_client.send(request, stream=True))
        index = await self.acquire()
        try:
            return await aread_whole(await self.client(index).send(request, auth=auth,
                                                                   stream=True))
        finally:
            self.release(index)

    async def send_stream(self, request: httpx.Request,
                          auth: httpx.Auth | None) -> httpx.Response:
        """An API request whose body is read as it arrives: the shard's slot is held until
        the response is closed."""
        index = await self.acquire()
        try:
            response = await self.client(index).send(request, auth=auth, stream=True)
        except BaseException:
            self.release(index)
            raise
        response.stream = _Releasing(response.stream, lambda: self.release(index))
        return response

    async def aclose(self) -> None:
        if self._closed:
            return
        self._closed = True
        for client in self.clients:
            await client.aclose()


class _Releasing(httpx.AsyncByteStream):
    """A response body that runs ``release`` once, when it is closed."""

    def __init__(self, stream: Any, release: Callable[[], None]) -> None:
        self._stream = stream
        self._release: Callable[[], None] | None = release

    async def __aiter__(self) -> AsyncIterator[bytes]:
        async for chunk in self._stream:
            yield chunk

    async def aclose(self) -> None:
        try:
            await self._stream.aclose()
        finally:
            release, self._release = self._release, None
            if release is not None:
                release()


def _close(response: httpx.Response | None) -> None:
    if response is not None:
        response.close()


async def _aclose(response: httpx.Response | None) -> None:
    if response is not None:
        await response.aclose()


def _log_response(response: httpx.Response, state: RetryState) -> None:
    if logger.isEnabledFor(logging.DEBUG):
        # Method, URL and status only: headers and bodies may hold secrets.
        logger.debug("%s %s %s -> %s (attempt %d)", state.provider, response.request.method,
                     response.request.url.copy_with(query=None), response.status_code,
                     state.attempts)


def _sleep(delay: float) -> None:
    if delay > 0:
        time.sleep(delay)


async def _asleep(delay: float) -> None:
    if delay > 0:
        await asyncio.sleep(delay)

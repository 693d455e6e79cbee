"""The retry decision: whether another attempt may help, how long to wait, and which error a
call ends with.

Pure code shared by the sync and async paths of :class:`~._transport.Transport`:
:class:`RetryState` (one call's retries), :func:`parse_retry_after` and :func:`backoff_delay`
(how long), :func:`error_from_response` (an error body to the error class for its status, with
the provider's code, message and request id) and :func:`error_from_exception` (a failure while
sending or reading, described without anything the request carried).
"""

from __future__ import annotations

import email.utils
import logging
import math
import os
import random
import re
import ssl
import time
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

import httpx
import pydantic_core

from . import defaults
from .errors import (
    APIConnectionError,
    APIStatusError,
    APITimeoutError,
    ConfigurationError,
    ErrorDetails,
    RateLimitError,
    ResponseValidationError,
    ServerError,
    SFModelsError,
    error_class_for_status,
    is_retryable_status,
)
from .options import RetryPolicy

if TYPE_CHECKING:
    from ._throttle import Throttle

logger = logging.getLogger("sfmodels")

# A provider turns an error response (status, decoded body) into what its body says.
ErrorParser = Callable[[int, Any], ErrorDetails]


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


class AnswerTooSlow(httpx.ReadTimeout):
    """An attempt's whole answer did not arrive within its deadline (our own text only)."""


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

"""One retrying HTTP layer for both providers, sync and async.

Every decision (retry or not, how long to wait, which error to raise) lives in pure code shared by
both paths: :class:`RetryState` and :func:`error_from_response`. The sync and async methods of
:class:`Transport` differ only in how they send, sleep and read.
"""

from __future__ import annotations

import asyncio
import contextlib
import email.utils
import functools
import logging
import random
import threading
import time
from collections.abc import AsyncGenerator, AsyncIterator, Callable, Iterator, Mapping
from typing import Any

import httpx
import pydantic_core

from . import defaults
from .errors import (
    APIConnectionError,
    APIStatusError,
    APITimeoutError,
    ErrorDetails,
    InvalidInputError,
    RateLimitError,
    error_class_for_status,
    is_retryable_status,
)
from .options import ClientOptions, RetryPolicy

logger = logging.getLogger("sfmodels")

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
    if cls is RateLimitError:
        kwargs["retry_after"] = parse_retry_after(response.headers.get("retry-after"))
    return cls(f"{provider} returned an error: {text}", **kwargs)


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


def error_from_exception(exc: Exception, provider: str) -> APIConnectionError:
    url = _url_of(exc)
    if isinstance(exc, httpx.ConnectTimeout):
        return APITimeoutError(
            f"Could not connect to {provider} at {url} in time: {type(exc).__name__}",
            provider=provider,
            hint="Check the host and its scheme (a host given without one is taken as "
                 "https://), or raise connect_timeout for a slow network.")
    if isinstance(exc, httpx.TimeoutException):
        return APITimeoutError(f"{provider} did not answer in time: {type(exc).__name__}",
                               provider=provider)
    if is_plain_http_answer(exc):
        return APIConnectionError(
            f"{provider} at {url} answered the TLS handshake in plain HTTP", provider=provider,
            hint=f"The server speaks http, not https: use {url.replace('https://', 'http://')} "
                 "(a host given without a scheme is taken as https://).")
    return APIConnectionError(
        f"Could not talk to {provider}: {type(exc).__name__}: {exc}", provider=provider
    )


class RetryState:
    """The retry decisions for one logical call. Pure: it never sends or sleeps.

    ``delay_after_response`` / ``delay_after_exception`` return how long to wait before the next
    attempt, or raise the error the call ends with.
    """

    def __init__(self, policy: RetryPolicy, provider: str, parse: ErrorParser,
                 rng: random.Random) -> None:
        self.policy = policy
        self.provider = provider
        self.parse = parse
        self.rng = rng
        self.retries = 0

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
            delay = self._next_delay(parse_retry_after(response.headers.get("retry-after")))
            if delay is not None:
                logger.debug("%s answered %s; retry %d in %.3fs", self.provider,
                             response.status_code, self.retries, delay)
                return delay
        raise error

    def delay_after_exception(self, exc: Exception) -> float:
        error = error_from_exception(exc, self.provider)
        delay = None if is_plain_http_answer(exc) else self._next_delay(None)
        if delay is None:
            raise error from exc
        logger.debug("%s: %s; retry %d in %.3fs", self.provider, type(exc).__name__,
                     self.retries, delay)
        return delay


class RateLimiter:
    """Client-side request pacing, shared by every call of one client across threads and tasks.

    Requests are spaced evenly at ``60 / requests_per_minute`` seconds; ``reserve`` books the next
    slot and says how long the caller must wait for it.
    """

    def __init__(self, requests_per_minute: float) -> None:
        if requests_per_minute <= 0:
            raise ValueError("requests_per_minute must be positive")
        self.interval = 60.0 / requests_per_minute
        self._next = 0.0
        self._lock = threading.Lock()

    def reserve(self) -> float:
        with self._lock:
            now = time.monotonic()
            slot = max(self._next, now)
            self._next = slot + self.interval
            return slot - now


@functools.lru_cache(maxsize=512)
def _parsed_url(url: str) -> httpx.URL:
    return httpx.URL(url)  # immutable, so one parse serves every call to the same URL


def dumps(body: Any) -> bytes:
    """The request body as JSON; text JSON cannot carry (a lone surrogate, as a bad decode of
    bytes leaves) is bad input, refused before anything is sent."""
    try:
        return pydantic_core.to_json(body)
    except pydantic_core.PydanticSerializationError as exc:
        raise InvalidInputError(
            f"The request holds text that cannot be sent as UTF-8 JSON ({exc}); a lone "
            "surrogate usually comes from decoding bytes with errors='surrogateescape'.") from None


def loads(content: bytes) -> Any:
    return pydantic_core.from_json(content)


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
    ) -> None:
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
        self.policy = options.retry
        self.limiter = (RateLimiter(options.requests_per_minute)
                        if options.requests_per_minute else None)
        self.limits = httpx.Limits(max_connections=options.max_connections,
                                   max_keepalive_connections=options.max_connections)
        self._transport = transport
        self._async_transport = async_transport
        self._client: httpx.Client | None = None
        self._apools: dict[asyncio.AbstractEventLoop, AsyncPool] = {}
        self._json_headers: httpx.Headers | None = None
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
                        transport=self._transport, follow_redirects=False)
                    self._client._cookies = _NoCookies()  # the setter would re-wrap it
        return self._client

    async def apool(self) -> AsyncPool:
        """The async clients of the running event loop.

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
                pool = self._apools[loop] = AsyncPool(self._make_aclient, self.limits)
            await pool.close_with_loop(lambda: self._apools.pop(loop, None))
        return pool

    def _make_aclient(self, limits: httpx.Limits) -> httpx.AsyncClient:
        client = httpx.AsyncClient(headers=self.headers, timeout=self.timeout, limits=limits,
                                   transport=self._async_transport, follow_redirects=False)
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

    def _state(self) -> RetryState:
        return RetryState(self.policy, self.provider, self.parse_error, self._rng)

    def _build(self, client: httpx.Client | httpx.AsyncClient, method: str, url: str,
               body: Any) -> httpx.Request:
        """The request, built directly rather than by ``client.build_request``: the client's
        headers and timeout are merged once, not per call, and URLs are parsed once (a third
        of a call's client-side time went into merging and parsing)."""
        if self._json_headers is None:
            self._json_headers = httpx.Headers(client.headers)
            self._json_headers["content-type"] = self.content_type
        return httpx.Request(method, _parsed_url(url),
                             headers=client.headers if body is None else self._json_headers,
                             content=None if body is None else dumps(body),
                             extensions={"timeout": self._timeout_extension})

    def _pace(self) -> float:
        return self.limiter.reserve() if self.limiter else 0.0

    # -- plain requests ------------------------------------------------------------------------
    def request(self, method: str, url: str, body: Any = None) -> httpx.Response:
        """Send with retries; return the successful, fully read response or raise."""
        return self._send_with_retries(self._build(self.client, method, url, body), self.auth)

    async def arequest(self, method: str, url: str, body: Any = None) -> httpx.Response:
        pool = await self.apool()
        request = self._build(pool.token_client, method, url, body)
        return await self._asend_with_retries(pool, request, self.auth)

    def send_token_request(self, request: httpx.Request) -> httpx.Response:
        return self._send_with_retries(request, None, check=False)

    async def asend_token_request(self, request: httpx.Request) -> httpx.Response:
        return await self._asend_with_retries(await self.apool(), request, None, check=False)

    def _send_with_retries(self, request: httpx.Request, auth: httpx.Auth | None,
                           check: bool = True) -> httpx.Response:
        state = self._state()
        while True:
            _sleep(self._pace())
            try:
                response = self.client.send(request, auth=auth)
            except httpx.TransportError as exc:
                delay = state.delay_after_exception(exc)
            else:
                _log_response(response, state)
                if response.is_success or not (check or is_retryable_status(
                        response.status_code)):
                    return response
                delay = state.delay_after_response(response)
            _sleep(delay)

    async def _asend_with_retries(self, pool: AsyncPool, request: httpx.Request,
                                  auth: httpx.Auth | None,
                                  check: bool = True) -> httpx.Response:
        state = self._state()
        while True:
            await _asleep(self._pace())
            try:
                if auth is None:  # token requests skip the slots: API calls may be waiting on them
                    response = await pool.token_client.send(request)
                else:
                    async with pool.slot() as client:
                        response = await client.send(request, auth=auth)
            except httpx.TransportError as exc:
                delay = state.delay_after_exception(exc)
            else:
                _log_response(response, state)
                if response.is_success or not (check or is_retryable_status(
                        response.status_code)):
                    return response
                delay = state.delay_after_response(response)
            await _asleep(delay)

    # -- streams -------------------------------------------------------------------------------
    # Retries happen only before the first byte: the first chunk is read inside the retry loop.
    # A break after that surfaces as APIConnectionError.

    def stream(self, method: str, url: str, body: Any = None) -> Iterator[bytes]:
        """Yield the body of a successful response as it arrives."""
        request = self._build(self.client, method, url, body)
        state = self._state()
        while True:
            _sleep(self._pace())
            response = None
            failure: httpx.Response | Exception
            try:
                response = self.client.send(request, auth=self.auth, stream=True)
                if response.is_success:
                    chunks = response.iter_bytes()
                    first = next(chunks, b"")
                    break
                response.read()
                failure = response
            except httpx.TransportError as exc:
                failure = exc
            except BaseException:
                _close(response)
                raise
            _close(response)
            delay = (state.delay_after_exception(failure) if isinstance(failure, Exception)
                     else state.delay_after_response(failure))
            _sleep(delay)
        try:
            yield first
            yield from chunks
        except httpx.TransportError as exc:
            raise error_from_exception(exc, self.provider) from exc
        finally:
            response.close()

    async def astream(self, method: str, url: str, body: Any = None
                      ) -> AsyncGenerator[bytes, None]:
        pool = await self.apool()
        request = self._build(pool.token_client, method, url, body)
        state = self._state()
        while True:
            await _asleep(self._pace())
            slot = await pool.acquire()  # held for the whole stream once it succeeds
            response = None
            failure: httpx.Response | Exception
            try:
                response = await pool.clients[slot].send(request, auth=self.auth, stream=True)
                if response.is_success:
                    chunks = response.aiter_bytes()
                    first = await anext(chunks, b"")
                    break
                await response.aread()
                failure = response
            except httpx.TransportError as exc:
                failure = exc
            except BaseException:
                await _free(pool, slot, response)
                raise
            await _free(pool, slot, response)
            delay = (state.delay_after_exception(failure) if isinstance(failure, Exception)
                     else state.delay_after_response(failure))
            await _asleep(delay)
        try:
            yield first
            async for chunk in chunks:
                yield chunk
        except httpx.TransportError as exc:
            raise error_from_exception(exc, self.provider) from exc
        finally:
            await _free(pool, slot, response)


class AsyncPool:
    """The async HTTP clients of one event loop: API calls spread over shards of 10 connections.

    httpcore's pool scans every connection for every waiting request, so one pool of 100
    connections under full load spends its time scanning: 500 concurrent calls at 50 ms took
    5.9 s here instead of 0.25 s. Shards of 10 connections, entered through a queue of slots so
    that no request ever waits inside httpcore, took 0.37 s. Token requests use a client of
    their own, so API calls holding every slot while they wait for a token cannot starve them.
    """

    SHARD_SIZE = 10

    def __init__(self, make_client: Callable[[httpx.Limits], httpx.AsyncClient],
                 limits: httpx.Limits) -> None:
        self._closed = False
        self._watcher: AsyncGenerator[None, None] | None = None
        total = max(1, limits.max_connections or 100)
        sizes = [min(self.SHARD_SIZE, total - start) for start in range(0, total, self.SHARD_SIZE)]
        self.clients = [make_client(httpx.Limits(max_connections=n, max_keepalive_connections=n))
                        for n in sizes]
        self.token_client = make_client(httpx.Limits(max_connections=4))
        self._slots: asyncio.Queue[int] = asyncio.Queue()
        for round_ in range(self.SHARD_SIZE):  # interleaved, so light load spreads over shards
            for index, size in enumerate(sizes):
                if round_ < size:
                    self._slots.put_nowait(index)

    async def acquire(self) -> int:
        return await self._slots.get()

    def release(self, index: int) -> None:
        self._slots.put_nowait(index)

    @contextlib.asynccontextmanager
    async def slot(self) -> AsyncIterator[httpx.AsyncClient]:
        index = await self.acquire()
        try:
            yield self.clients[index]
        finally:
            self.release(index)

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

    async def aclose(self) -> None:
        if self._closed:
            return
        self._closed = True
        for client in [*self.clients, self.token_client]:
            await client.aclose()


def _close(response: httpx.Response | None) -> None:
    if response is not None:
        response.close()


async def _free(pool: AsyncPool, slot: int, response: httpx.Response | None) -> None:
    if response is not None:
        await response.aclose()
    pool.release(slot)


def _log_response(response: httpx.Response, state: RetryState) -> None:
    if logger.isEnabledFor(logging.DEBUG):
        # Method, URL and status only: headers and bodies may hold secrets.
        logger.debug("%s %s %s -> %s (attempt %d)", state.provider, response.request.method,
                     response.request.url.copy_with(query=None), response.status_code,
                     state.retries + 1)


def _sleep(delay: float) -> None:
    if delay > 0:
        time.sleep(delay)


async def _asleep(delay: float) -> None:
    if delay > 0:
        await asyncio.sleep(delay)

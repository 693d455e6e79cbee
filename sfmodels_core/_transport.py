"""One retrying HTTP layer for both providers, sync and async.

:class:`Transport` owns one pooled sync client and one async pool per event loop (:mod:`._pool`),
and the retry loop. Every decision (retry or not, how long to wait, which error to raise) is the
pure code of :mod:`._retry`; pacing and the 429 throttle are :mod:`._throttle`. The sync and
async methods differ only in how they send, sleep and read.
"""

from __future__ import annotations

import asyncio
import dataclasses
import importlib.util
import logging
import math
import random
import sys
import threading
import time
import weakref
from collections.abc import AsyncIterator, Awaitable, Callable, Generator, Mapping
from typing import Any, TypeVar

import httpx
import pydantic_core

from . import defaults
from ._pool import AsyncHTTP, AsyncPool, BodyLimit, shared_ssl_context
from ._retry import AnswerTooSlow, ErrorParser, RetryState, error_from_exception, parse_retry_after
from ._throttle import RateLimiter, Throttle, WindowLimiter
from .errors import ConfigurationError, InvalidInputError, is_retryable_status
from .options import ClientOptions

logger = logging.getLogger("sfmodels")
T = TypeVar("T")
JSON = "application/json"


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
        from ._validation import non_finite_number

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


def deadline_passed(request: httpx.Request, seconds: float) -> AnswerTooSlow:
    return AnswerTooSlow(f"the whole answer did not arrive within timeout={seconds:g} s",
                         request=request)


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
        #: The most a stream may wait for its next event (see :class:`~._sse.Idle`), and the
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
                    # Its connections close with this transport when nobody closed it (a
                    # framework object dropped without close()), not as unclosed sockets.
                    weakref.finalize(self, self._client.close)
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
            from ._aiohttp import AiohttpPool

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
            body = bytearray()
            for chunk in response.iter_bytes():
                limit.add(chunk)
                if time.monotonic() > deadline:
                    raise deadline_passed(request, seconds or 0.0)
                body += chunk
            response._content = bytes(body)  # as response.read() keeps it
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

    def _answered(self, state: RetryState, ticket: int | None, key: str,
                  response: httpx.Response, check: bool) -> float | None:
        """An attempt's answer is in: give back its slot, and say how long to wait before the
        next attempt, or None when this answer is the call's (a success, or an error status a
        token request reads itself); or raise the error the call ends with."""
        self._settle(ticket, key, response)
        _log_response(response, state)
        if response.is_success or not (check or is_retryable_status(response.status_code)):
            return None
        return state.delay_after_response(response)

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
                wait = self._answered(state, ticket, key, response, check)
                if wait is None:
                    return response
                delay = wait
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
                wait = self._answered(state, ticket, key, response, check)
                if wait is None:
                    return response
                delay = wait
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

"""The async HTTP of one event loop, as the retry loop uses it, and what every sender shares:
the process's TLS context and reading a whole answer within its size cap.

:class:`AsyncPool` sends with httpx; :mod:`._aiohttp` implements the same :class:`AsyncHTTP`
with aiohttp.
"""

from __future__ import annotations

import asyncio
import functools
import ssl
from collections.abc import AsyncGenerator, AsyncIterator, Callable
from typing import Any

import httpx

from . import defaults
from .errors import ResponseValidationError


@functools.lru_cache(maxsize=1)
def shared_ssl_context() -> ssl.SSLContext:
    """One TLS context for every HTTP client of the process (httpx's own defaults: certifi, or
    SSL_CERT_FILE / SSL_CERT_DIR), aiohttp's sessions included. Building one costs tens of
    milliseconds, and each event loop's pool holds up to one client per connection."""
    return httpx.create_ssl_context()

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
            "this client reads: refused rather than held in memory",
            hint="For embeddings, a smaller batch_size makes smaller answers.")


async def aread_whole(response: httpx.Response) -> httpx.Response:
    """Read an async answer's body within :class:`BodyLimit` (the deadline is the caller's)."""
    try:
        limit = BodyLimit(response)
        if limit.announced:
            await response.aread()
            return response
        body = bytearray()
        async for chunk in response.aiter_bytes():
            limit.add(chunk)
            body += chunk
        response._content = bytes(body)  # as response.aread() keeps it
    finally:
        await response.aclose()
    return response


class AsyncHTTP:
    """The HTTP of one event loop, as the retry loop uses it: httpx's (:class:`AsyncPool`), or
    aiohttp's with ``async_http="aiohttp"`` (:mod:`._aiohttp`)."""

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

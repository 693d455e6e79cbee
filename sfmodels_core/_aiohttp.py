"""Async HTTP on aiohttp: what ``async_http="aiohttp"`` uses (``pip install sfmodels[aiohttp]``).

In a large fan-out, a call through httpx's async stack (httpcore's pool, anyio's streams, h11)
costs about twice the CPU of one through aiohttp, whose connector keeps its free connections in
a list per host and parses HTTP in C: 2,000 concurrent ``achat`` at 1.0 ms against 0.45 ms a
call (``benchmarks/fanout.py``). Only the sending changes: requests and responses stay httpx
objects, so the retry loop, the throttle, the error mapping and every parser are the ones the
httpx path uses, and:

- aiohttp's errors become the httpx errors they correspond to (a refused connection or a failed
  TLS handshake ``ConnectError``, no connection in time ``ConnectTimeout``, a read timeout
  ``ReadTimeout``, a dropped connection or a truncated body ``RemoteProtocolError``), so they
  end as the same ``APIConnectionError`` and ``APITimeoutError`` and are retried alike;
- timeouts mean what they mean for httpx: ``connect_timeout`` to open a connection (TLS
  included), ``timeout`` for each read and for a free connection;
- bodies are decoded by httpx (aiohttp hands them over as sent), streamed as they arrive;
- the TLS context is the process's shared one, proxies come from the environment
  (``HTTPS_PROXY``, ``ALL_PROXY``, ``NO_PROXY``) as with httpx, and no cookies are kept.

Sync calls use httpx whatever this option says.
"""

from __future__ import annotations

import asyncio
import io
import urllib.request
from collections.abc import AsyncIterator, Mapping

import aiohttp
import httpx

from ._pool import AsyncHTTP, aread_whole, shared_ssl_context
from ._retry import os_error_text

#: What the base headers add to the client's own: the encodings httpx decodes on every install.
BASE_HEADERS = {"Accept": "*/*", "Accept-Encoding": "gzip, deflate"}
#: Connections for token requests, apart from API calls (as the httpx pool's token client).
TOKEN_CONNECTIONS = 4
#: Seconds an idle connection is kept (httpx's default keep-alive expiry).
KEEPALIVE = 5.0
#: Bodies larger than this go to aiohttp as a file object (aiohttp's own threshold).
LARGE_BODY = 2**20
_ERRORS = (aiohttp.ClientError, asyncio.TimeoutError)


class AiohttpPool(AsyncHTTP):
    """The aiohttp sessions of one event loop: one for API calls, one for token requests."""

    def __init__(self, *, headers: Mapping[str, str], timeout: httpx.Timeout,
                 max_connections: int) -> None:
        super().__init__()
        self.headers = httpx.Headers(BASE_HEADERS)
        self.headers.update(headers)
        self._timeouts = timeout.as_dict()
        self._timeout = _client_timeout(self._timeouts)
        self._session = _session(max_connections, self._timeout)
        self._token_session = _session(TOKEN_CONNECTIONS, self._timeout)
        self._proxies: dict[tuple[str, str], str | None] = {}

    def _proxy(self, scheme: str, host: str) -> str | None:
        """The proxy the environment names for ``scheme://host`` (``HTTPS_PROXY``,
        ``ALL_PROXY``, ``NO_PROXY`` and their kin), looked up once per host. aiohttp's own
        lookup (``trust_env``) runs in a thread for every request, netrc included."""
        key = (scheme, host)
        if key not in self._proxies:
            proxies = urllib.request.getproxies()
            proxy = proxies.get(scheme) or proxies.get("all")
            self._proxies[key] = None if proxy and urllib.request.proxy_bypass(host) else proxy
        return self._proxies[key]

    async def send(self, request: httpx.Request, auth: httpx.Auth | None) -> httpx.Response:
        if auth is None:
            return await self._send(self._token_session, request, stream=False)
        return await self._authorized(request, auth, stream=False)

    async def send_stream(self, request: httpx.Request,
                          auth: httpx.Auth | None) -> httpx.Response:
        if auth is None:
            return await self._send(self._session, request, stream=True)
        return await self._authorized(request, auth, stream=True)

    async def _authorized(self, request: httpx.Request, auth: httpx.Auth,
                          stream: bool) -> httpx.Response:
        """Send through ``auth``'s flow, as ``httpx.AsyncClient.send`` does: the flow may
        answer a response with another request (a 401 with a refreshable token)."""
        if auth.requires_request_body:
            await request.aread()
        flow = auth.async_auth_flow(request)
        try:
            request = await flow.__anext__()
            while True:
                response = await self._send(self._session, request, stream)
                if auth.requires_response_body:
                    await response.aread()
                try:
                    request = await flow.asend(response)
                except StopAsyncIteration:
                    return response
                await response.aclose()
        finally:
            await flow.aclose()

    async def _send(self, session: aiohttp.ClientSession, request: httpx.Request,
                    stream: bool) -> httpx.Response:
        try:
            content = request.content
        except httpx.RequestNotRead:
            content = await request.aread()
        # Above a megabyte aiohttp warns that bytes are sent in one go (ResourceWarning); a file
        # object it sends piece by piece.
        data = io.BytesIO(content) if len(content) > LARGE_BODY else content or None
        timeouts = request.extensions.get("timeout")
        timeout = (self._timeout if not timeouts or timeouts == self._timeouts
                   else _client_timeout(timeouts))
        url = request.url
        try:
            answer = await session.request(
                request.method, str(url), headers=request.headers.multi_items(),
                data=data, allow_redirects=False, timeout=timeout,
                proxy=self._proxy(url.scheme, url.host))
        except _ERRORS as exc:
            raise transport_error(exc, request) from exc
        extensions = {"http_version": b"HTTP/1.1"}
        if answer.reason:
            extensions["reason_phrase"] = answer.reason.encode("ascii", "replace")
        if stream:
            return httpx.Response(answer.status, headers=answer.raw_headers,
                                  stream=_Body(answer, request), request=request,
                                  extensions=extensions)
        response = httpx.Response(answer.status, headers=answer.raw_headers,
                                  stream=_Body(answer, request), request=request,
                                  extensions=extensions)
        # Read within the size cap and decoded by httpx, as its own transport's bodies are.
        return await aread_whole(response)

    async def aclose(self) -> None:
        if self._closed:
            return
        self._closed = True
        await self._session.close()
        await self._token_session.close()


class _Body(httpx.AsyncByteStream):
    """A streamed response body, chunks as they arrive; closing it frees the connection (or
    drops it, when the body was not read to its end)."""

    def __init__(self, answer: aiohttp.ClientResponse, request: httpx.Request) -> None:
        self._answer = answer
        self._request = request

    async def __aiter__(self) -> AsyncIterator[bytes]:
        try:
            async for chunk in self._answer.content.iter_any():
                yield chunk
        except _ERRORS as exc:
            raise transport_error(exc, self._request) from exc

    async def aclose(self) -> None:
        self._answer.release()


def _session(limit: int, timeout: aiohttp.ClientTimeout) -> aiohttp.ClientSession:
    connector = aiohttp.TCPConnector(limit=limit, ssl=shared_ssl_context(),
                                     keepalive_timeout=KEEPALIVE)
    return aiohttp.ClientSession(connector=connector, timeout=timeout, auto_decompress=False,
                                 cookie_jar=aiohttp.DummyCookieJar())


def _client_timeout(timeouts: Mapping[str, float | None]) -> aiohttp.ClientTimeout:
    """httpx's timeouts in aiohttp's terms: ``connect`` bounds opening a connection (aiohttp's
    ``sock_connect``), ``pool`` waiting for a free one (aiohttp's ``connect``), ``read`` each
    read (``sock_read``); aiohttp has no write timeout."""
    return aiohttp.ClientTimeout(total=None, connect=timeouts.get("pool"),
                                 sock_connect=timeouts.get("connect"),
                                 sock_read=timeouts.get("read"))


def transport_error(exc: BaseException, request: httpx.Request) -> httpx.TransportError:
    """The httpx error an aiohttp error corresponds to, for the request it happened to.

    Its text is only what is safe to show: the operating system's words for a failed
    connection (``[Errno 111] Connection refused``, as httpx words it), else the aiohttp
    error's class name; never aiohttp's own text, which may quote the request."""
    kind: type[httpx.TransportError]
    message = type(exc).__name__
    if isinstance(exc, aiohttp.ConnectionTimeoutError):
        kind = httpx.ConnectTimeout
    elif isinstance(exc, asyncio.TimeoutError):  # aiohttp's SocketTimeoutError: a read
        kind = httpx.ReadTimeout
    elif isinstance(exc, (aiohttp.ClientProxyConnectionError, aiohttp.ClientHttpProxyError)):
        kind = httpx.ProxyError
    elif isinstance(exc, aiohttp.ClientConnectorError):  # refused, DNS, TLS
        kind = httpx.ConnectError
        message = os_error_text(exc.os_error) or message
    elif isinstance(exc, (aiohttp.NonHttpUrlClientError, aiohttp.InvalidUrlClientError)):
        kind = httpx.UnsupportedProtocol
    elif isinstance(exc, (aiohttp.ServerDisconnectedError, aiohttp.ClientPayloadError,
                          aiohttp.ClientResponseError)):
        kind = httpx.RemoteProtocolError
    else:  # a connection reset while sending or reading, and aiohttp's other errors
        kind = httpx.NetworkError
        message = os_error_text(exc) or message
    error = kind(message)
    error.request = request
    return error

"""A small, fast HTTP/1.1 server on asyncio streams.

It knows nothing about the emulated APIs: a handler turns each :class:`Request` into a reply,
which is a plain response, a server-sent-event stream, or one of the faults (:class:`Abort`,
:class:`Hang`, :class:`Truncate`) that real networks produce, or one of the hostile senders
(:class:`Drip`: a whole answer a few bytes at a time; :class:`Endless`: a body that does not end),
which stop as soon as the client goes away.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import socket
import struct
import time
import uuid
from collections.abc import Sequence
from dataclasses import dataclass
from email.utils import formatdate
from http import HTTPStatus
from typing import Protocol, Union

__all__ = [
    "Abort",
    "Drip",
    "Endless",
    "Handler",
    "Hang",
    "HttpServer",
    "Reply",
    "Request",
    "Response",
    "StreamResponse",
    "Truncate",
]

_log = logging.getLogger(__name__)

_REASONS = {status.value: status.phrase for status in HTTPStatus}
_HEAD_LIMIT = 64 * 1024
_MAX_BODY = 64 * 1024 * 1024
_BACKLOG = 2048


class Request:
    """One parsed HTTP request."""

    __slots__ = ("body", "headers", "keep_alive", "method", "path", "query", "request_id", "route")

    def __init__(
        self,
        method: str,
        path: str,
        query: str,
        headers: dict[str, str],
        body: bytes,
        keep_alive: bool,
    ) -> None:
        self.method = method
        self.path = path
        self.query = query
        self.headers = headers
        self.body = body
        self.keep_alive = keep_alive
        self.request_id = str(uuid.uuid4())
        # Set by the handler when it tracks the request as in flight.
        self.route: str | None = None


@dataclass(slots=True)
class Response:
    status: int
    body: bytes = b""
    content_type: str = "application/json"
    headers: Sequence[tuple[str, str]] = ()


@dataclass(slots=True)
class StreamResponse:
    """A ``text/event-stream`` body sent with chunked encoding, ``delay_s`` between events."""

    events: Sequence[bytes]
    delay_s: float = 0.0
    status: int = 200
    headers: Sequence[tuple[str, str]] = ()


@dataclass(slots=True)
class Abort:
    """Reset the TCP connection without answering."""


@dataclass(slots=True)
class Hang:
    """Answer nothing for ``seconds`` (or until the client goes away), then close."""

    seconds: float


@dataclass(slots=True)
class Truncate:
    """Start sending ``inner`` but close the connection before its body is complete."""

    inner: Response | StreamResponse


@dataclass(slots=True)
class Drip:
    """Send ``inner`` whole and well framed, but its body ``size`` bytes at a time with
    ``interval_s`` between pieces (a stream's pieces are chunks of ``size`` bytes). Every read
    is quick, the whole answer slow; it stops when the client goes away."""

    inner: Response | StreamResponse
    interval_s: float
    size: int = 1


@dataclass(slots=True)
class Endless:
    """A chunked body: ``prefix``, then ``filler`` again and again until ``limit`` bytes are
    sent in all (then the body ends and the connection is closed) or the client goes away."""

    prefix: bytes
    filler: bytes
    limit: int
    content_type: str = "text/event-stream"
    status: int = 200
    headers: Sequence[tuple[str, str]] = ()


Reply = Union[  # noqa: UP007 (runtime alias)
    Response, StreamResponse, Abort, Hang, Truncate, Drip, Endless
]


class Handler(Protocol):
    async def handle(self, request: Request) -> Reply: ...

    def finished(self, request: Request) -> None: ...


class _BadRequest(Exception):
    def __init__(self, status: int, message: str) -> None:
        super().__init__(message)
        self.status = status


_date_cache: tuple[int, str] = (0, "")


def _http_date() -> str:
    global _date_cache
    now = int(time.time())
    if _date_cache[0] != now:
        _date_cache = (now, formatdate(now, usegmt=True))
    return _date_cache[1]


def _head(
    status: int,
    request_id: str,
    content_type: str,
    length: int | None,
    headers: Sequence[tuple[str, str]],
    keep_alive: bool,
) -> bytes:
    lines = [
        f"HTTP/1.1 {status} {_REASONS.get(status, 'Unknown')}",
        f"date: {_http_date()}",
        "server: sfmodels-emulator",
        f"content-type: {content_type}",
        f"x-request-id: {request_id}",
    ]
    if length is None:
        lines.append("transfer-encoding: chunked")
        lines.append("cache-control: no-cache")
    else:
        lines.append(f"content-length: {length}")
    lines.extend(f"{name}: {value}" for name, value in headers)
    lines.append("connection: keep-alive" if keep_alive else "connection: close")
    return ("\r\n".join(lines) + "\r\n\r\n").encode("latin-1")


def _reset(writer: asyncio.StreamWriter) -> None:
    sock = writer.get_extra_info("socket")
    if sock is not None:
        with contextlib.suppress(OSError):
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
    writer.transport.abort()


def _gone(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> bool:
    """Whether the client closed its side (or the connection is closing)."""
    return reader.at_eof() or writer.transport.is_closing()


class HttpServer:
    """Serves ``handler`` on one listening socket until :meth:`close`."""

    def __init__(self, handler: Handler) -> None:
        self._handler = handler
        self._server: asyncio.base_events.Server | None = None
        self._connections: set[asyncio.Task[None]] = set()
        self._writers: set[asyncio.StreamWriter] = set()
        self.port = 0

    async def start(self, host: str, port: int) -> int:
        self._server = await asyncio.start_server(
            self._connection, host, port, backlog=_BACKLOG, limit=_HEAD_LIMIT, reuse_address=True
        )
        self.port = int(self._server.sockets[0].getsockname()[1])
        return self.port

    async def close(self) -> None:
        """Stop listening, cancel every connection (streams, hangs included) and wait."""
        if self._server is not None:
            self._server.close()
        for writer in list(self._writers):
            writer.transport.abort()
        tasks = list(self._connections)
        for task in tasks:
            task.cancel()
        if tasks:
            await asyncio.gather(*tasks, return_exceptions=True)
        if self._server is not None:
            with contextlib.suppress(Exception):
                await asyncio.wait_for(self._server.wait_closed(), timeout=2.0)
            self._server = None

    # ---- connections ---------------------------------------------------------------------

    async def _connection(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        task = asyncio.current_task()
        if task is not None:
            self._connections.add(task)
        self._writers.add(writer)
        sock = writer.get_extra_info("socket")
        if sock is not None:
            with contextlib.suppress(OSError):
                sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        close = True
        try:
            while True:
                try:
                    request = await self._read_request(reader, writer)
                except _BadRequest as exc:
                    body = json.dumps({"error": "bad_request", "message": str(exc)}).encode()
                    writer.write(
                        _head(
                            exc.status, str(uuid.uuid4()), "application/json", len(body), (), False
                        )
                        + body
                    )
                    await writer.drain()
                    break
                if request is None:
                    break
                try:
                    keep_going = await self._serve(request, reader, writer)
                finally:
                    if request.route is not None:
                        self._handler.finished(request)
                if not keep_going:
                    if keep_going is None:
                        close = False  # already aborted
                    break
        except (ConnectionError, asyncio.IncompleteReadError, TimeoutError):
            pass
        except asyncio.CancelledError:
            # Only close() cancels connections. Ending normally (rather than re-raising) keeps
            # asyncio's stream callback from reporting the cancelled task as an error.
            writer.transport.abort()
            close = False
        finally:
            self._writers.discard(writer)
            if task is not None:
                self._connections.discard(task)
            if close:
                with contextlib.suppress(Exception):
                    writer.close()

    async def _read_request(
        self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter
    ) -> Request | None:
        try:
            head = await reader.readuntil(b"\r\n\r\n")
        except asyncio.IncompleteReadError:
            return None
        except asyncio.LimitOverrunError as exc:
            raise _BadRequest(431, "request header too large") from exc
        lines = head.decode("latin-1").split("\r\n")
        while lines and not lines[0]:
            lines.pop(0)
        if not lines:
            return None
        parts = lines[0].split(" ")
        if len(parts) != 3 or not parts[2].startswith("HTTP/1."):
            raise _BadRequest(400, "malformed request line")
        method, target, version = parts
        headers: dict[str, str] = {}
        for line in lines[1:]:
            if not line:
                continue
            name, sep, value = line.partition(":")
            if not sep:
                raise _BadRequest(400, "malformed header line")
            headers[name.strip().lower()] = value.strip()
        connection = headers.get("connection", "").lower()
        if version == "HTTP/1.0":
            keep_alive = "keep-alive" in connection
        else:
            keep_alive = "close" not in connection
        if headers.get("expect", "").lower() == "100-continue":
            writer.write(b"HTTP/1.1 100 Continue\r\n\r\n")
        transfer = headers.get("transfer-encoding")
        if transfer is not None and "chunked" in transfer.lower():
            body = await self._read_chunked(reader)
        else:
            length_text = headers.get("content-length")
            try:
                length = int(length_text) if length_text else 0
            except ValueError as exc:
                raise _BadRequest(400, "invalid content-length") from exc
            if length < 0:
                raise _BadRequest(400, "invalid content-length")
            if length > _MAX_BODY:
                raise _BadRequest(413, "request body too large")
            body = await reader.readexactly(length) if length else b""
        path, _, query = target.partition("?")
        return Request(method, path, query, headers, body, keep_alive)

    async def _read_chunked(self, reader: asyncio.StreamReader) -> bytes:
        parts: list[bytes] = []
        total = 0
        while True:
            line = await reader.readuntil(b"\r\n")
            try:
                size = int(line.split(b";", 1)[0].strip(), 16)
            except ValueError as exc:
                raise _BadRequest(400, "malformed chunk size") from exc
            if size == 0:
                while await reader.readuntil(b"\r\n") != b"\r\n":
                    pass  # trailers are read and ignored
                return b"".join(parts)
            total += size
            if total > _MAX_BODY:
                raise _BadRequest(413, "request body too large")
            parts.append(await reader.readexactly(size))
            await reader.readexactly(2)

    async def _serve(
        self, request: Request, reader: asyncio.StreamReader, writer: asyncio.StreamWriter
    ) -> bool | None:
        """Answer one request; True to keep the connection, False to close, None if aborted."""
        try:
            reply = await self._handler.handle(request)
        except asyncio.CancelledError:
            raise
        except Exception:
            _log.exception("emulator handler failed for %s %s", request.method, request.path)
            body = b'{"error":"internal_error","message":"the emulator failed to handle this"}'
            reply = Response(500, body)
        keep_alive = request.keep_alive
        rid = request.request_id
        if isinstance(reply, Response):
            writer.write(
                _head(
                    reply.status,
                    rid,
                    reply.content_type,
                    len(reply.body),
                    reply.headers,
                    keep_alive,
                )
                + reply.body
            )
            await writer.drain()
            return keep_alive
        if isinstance(reply, StreamResponse):
            writer.write(
                _head(reply.status, rid, "text/event-stream", None, reply.headers, keep_alive)
            )
            for i, event in enumerate(reply.events):
                if i and reply.delay_s > 0:
                    await asyncio.sleep(reply.delay_s)
                writer.write(b"%x\r\n%s\r\n" % (len(event), event))
                await writer.drain()
            writer.write(b"0\r\n\r\n")
            await writer.drain()
            return keep_alive
        if isinstance(reply, Abort):
            _reset(writer)
            return None
        if isinstance(reply, Hang):
            await self._hang(reader, reply.seconds)
            return False
        if isinstance(reply, Drip):
            return await self._drip(reply, rid, keep_alive, reader, writer) and keep_alive
        if isinstance(reply, Endless):
            await self._endless(reply, rid, reader, writer)
            return False
        inner = reply.inner
        if isinstance(inner, Response):
            body = inner.body or b"{}"
            writer.write(
                _head(inner.status, rid, inner.content_type, len(body) + 1, inner.headers, True)
                + body[: max(1, len(body) // 2)]
            )
        else:
            writer.write(_head(inner.status, rid, "text/event-stream", None, inner.headers, True))
        await writer.drain()
        return False

    @staticmethod
    async def _drip(
        reply: Drip,
        rid: str,
        keep_alive: bool,
        reader: asyncio.StreamReader,
        writer: asyncio.StreamWriter,
    ) -> bool:
        """Send a :class:`Drip`; False if the client went away before the end."""
        inner = reply.inner
        if isinstance(inner, Response):
            body, chunked = inner.body, False
            head = _head(inner.status, rid, inner.content_type, len(body), inner.headers,
                         keep_alive)
        else:
            body, chunked = b"".join(inner.events), True
            head = _head(inner.status, rid, "text/event-stream", None, inner.headers, keep_alive)
        writer.write(head)
        await writer.drain()
        size = max(1, reply.size)
        for start in range(0, len(body), size):
            if start:
                await asyncio.sleep(reply.interval_s)
            if _gone(reader, writer):
                return False
            piece = body[start : start + size]
            writer.write(b"%x\r\n%s\r\n" % (len(piece), piece) if chunked else piece)
            await writer.drain()
        if chunked:
            writer.write(b"0\r\n\r\n")
            await writer.drain()
        return True

    @staticmethod
    async def _endless(
        reply: Endless, rid: str, reader: asyncio.StreamReader, writer: asyncio.StreamWriter
    ) -> None:
        writer.write(_head(reply.status, rid, reply.content_type, None, reply.headers, False))
        sent = 0
        piece = reply.prefix
        while sent < reply.limit and piece:
            if _gone(reader, writer):
                return
            piece = piece[: reply.limit - sent]
            writer.write(b"%x\r\n%s\r\n" % (len(piece), piece))
            await writer.drain()
            # drain() does not yield while the client keeps up: let the other requests run.
            await asyncio.sleep(0)
            sent += len(piece)
            piece = reply.filler
        writer.write(b"0\r\n\r\n")
        await writer.drain()

    @staticmethod
    async def _hang(reader: asyncio.StreamReader, seconds: float) -> None:
        loop = asyncio.get_running_loop()
        deadline = loop.time() + seconds
        while True:
            remaining = deadline - loop.time()
            if remaining <= 0:
                return
            try:
                data = await asyncio.wait_for(reader.read(65536), timeout=remaining)
            except asyncio.TimeoutError:
                return
            if not data:
                return  # the client went away

"""Server-sent events: an incremental decoder fed raw bytes, shared by sync and async streams,
and a reader that also takes a streaming request answered with one plain JSON body.

Nothing from the wire is trusted: one event (or one line of one) larger than
:data:`~sfmodels_core.defaults.MAX_EVENT_BYTES`, bytes that are not UTF-8, and a body that is
neither events nor JSON are :class:`~sfmodels_core.errors.ResponseValidationError`; a stream
whose next event does not come within ``timeout`` seconds of waiting is an
:class:`~sfmodels_core.errors.APITimeoutError`, however the bytes trickle in. A UTF-8 byte
order mark before the first event is skipped. An event named ``error`` (``event: error``)
reaches the parser as an :class:`ErrorEvent`, whatever its data says.
"""

from __future__ import annotations

import time
from collections.abc import AsyncGenerator, AsyncIterable, Iterable, Iterator

from . import defaults
from .errors import APITimeoutError, ResponseValidationError

DONE = "[DONE]"
BOM = b"\xef\xbb\xbf"


def _text(data: bytes) -> str:
    try:
        return data.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise ResponseValidationError(
            f"The streaming answer was not UTF-8 text (byte {exc.start} of a line: "
            f"{data[exc.start:exc.start + 1]!r})", incomplete=False) from None


def _too_large(size: int, limit: int) -> ResponseValidationError:
    return ResponseValidationError(
        f"One event of the streaming answer grew past {limit:,} bytes "
        f"({size:,} so far) without ending: refused rather than held in memory")


class ErrorEvent(str):
    """The data of an event the server named ``error``: an error, whatever the data holds."""


class SSEDecoder:
    """Turns network chunks into the ``data`` payloads of complete events.

    Events may be split anywhere across chunks (even inside a UTF-8 character or a ``\\r\\n``).
    Multiple ``data:`` lines of one event are joined with newlines; comments and fields other
    than ``data`` and ``event`` are ignored. An event is capped at ``max_bytes``.
    """

    def __init__(self, max_bytes: int = defaults.MAX_EVENT_BYTES) -> None:
        self._buffer = b""
        self._data: list[str] = []
        self._size = 0  # bytes of the data lines of the event being read
        self._error = False  # the event being read is named "error"
        self._max = max_bytes

    def feed(self, chunk: bytes) -> list[str]:
        self._buffer += chunk
        events: list[str] = []
        start = 0
        while (newline := self._buffer.find(b"\n", start)) >= 0:
            self._line(_text(self._buffer[start:newline].rstrip(b"\r")), events)
            start = newline + 1
        self._buffer = self._buffer[start:]  # one copy per chunk, not one per line
        if len(self._buffer) + self._size > self._max:
            raise _too_large(len(self._buffer) + self._size, self._max)
        return events

    def close(self) -> list[str]:
        """Flush an event the server ended without a trailing blank line."""
        events: list[str] = []
        if self._buffer:
            self._line(_text(self._buffer.rstrip(b"\r")), events)
            self._buffer = b""
        self._line("", events)
        return events

    def _line(self, line: str, events: list[str]) -> None:
        if not line:
            if self._data:
                data = "\n".join(self._data)
                events.append(ErrorEvent(data) if self._error else data)
                self._data = []
                self._size = 0
            self._error = False
            return
        if line.startswith(":"):
            return
        field, _, value = line.partition(":")
        if field == "data":
            self._data.append(value[1:] if value.startswith(" ") else value)
            self._size += len(value)
            if self._size > self._max:
                raise _too_large(self._size, self._max)
        elif field == "event":
            self._error = value.strip() == "error"


class WholeBody(str):
    """The whole body of a streaming request that was answered with one ordinary JSON document
    (``content-type: application/json``) instead of events, as custom and pyfunc serving
    endpoints do: readers take it as a stream of that one payload."""


class EventReader:
    """Data payloads from the bytes of a streaming answer, whatever its form.

    An event stream gives its events until ``[DONE]``. A body whose first byte (after
    whitespace) opens a JSON object or array is no event stream: it is given whole, once, as a
    :class:`WholeBody`. A body that holds neither (an HTML page, nothing at all) raises
    :class:`~sfmodels_core.errors.ResponseValidationError` rather than reading as an empty
    stream.
    """

    def __init__(self, max_bytes: int = defaults.MAX_EVENT_BYTES) -> None:
        self._decoder = SSEDecoder(max_bytes)
        self._max = max_bytes
        self._pending = b""
        self._sniffed = False
        self._whole: bytearray | None = None
        self._count = 0
        self._head = b""
        self.done = False

    def feed(self, chunk: bytes) -> list[str]:
        if len(self._head) < 200:
            self._head += chunk[:200]
        if self._whole is not None:
            self._whole += chunk
            if len(self._whole) > self._max:
                raise _too_large(len(self._whole), self._max)
            return []
        if not self._sniffed:
            chunk, self._pending = self._pending + chunk, b""
            if chunk.startswith(BOM):
                chunk = chunk[3:]
            elif BOM.startswith(chunk):  # a part of a byte order mark, so far
                self._pending = chunk
                return []
            if not chunk.strip():  # only white space so far
                if len(chunk) > self._max:
                    raise _too_large(len(chunk), self._max)
                self._pending = chunk
                return []
            self._sniffed = True
            if chunk.lstrip()[:1] in (b"{", b"["):
                self._whole = bytearray(chunk)
                return []
        return self._take(self._decoder.feed(chunk))

    def close(self) -> list[str]:
        if self._whole is not None:
            self.done = True  # whole JSON or not at all: the parser says which
            return [WholeBody(_text(bytes(self._whole)))]
        events = [] if self.done else self._take(self._decoder.close())
        if not self._count and not self.done:
            raise ResponseValidationError(
                "The streaming answer held no event and no JSON body"
                + (f": {self._head.decode('utf-8', 'replace')!r}" if self._head.strip()
                   else " (it was empty)"))
        return events

    def _take(self, events: list[str]) -> list[str]:
        out = []
        for event in events:
            if event == DONE:
                self.done = True
                break
            out.append(event)
        self._count += len(out)
        return out


class Idle:
    """The time a stream has waited for its next event, from its first bytes, counted only while
    it waits for bytes (not while the caller handles the events it got): over ``timeout`` it is an
    :class:`~sfmodels_core.errors.APITimeoutError`."""

    __slots__ = ("since", "timeout")

    def __init__(self, timeout: float | None) -> None:
        self.timeout = timeout
        # The clock starts at the first bytes: until then the transport's retries and read
        # timeout bound the wait.
        self.since: float | None = None

    def check(self, got_events: bool) -> None:
        """After a chunk: fail once the events waited for took too long."""
        if self.timeout is None or got_events:
            return
        now = time.monotonic()
        if self.since is None:
            self.since = now
        elif now - self.since > self.timeout:
            raise APITimeoutError(
                f"The stream sent no complete event for {self.timeout:g} s (bytes may still "
                f"trickle in): given up rather than held open")

    def restart(self) -> None:
        if self.timeout is not None:
            self.since = time.monotonic()


def iter_events(chunks: Iterable[bytes], reader: EventReader | None = None,
                timeout: float | None = None) -> Iterator[str]:
    """Data payloads until ``[DONE]`` or the end of the stream (see :class:`EventReader`); the
    wait for each event is bounded by ``timeout`` (see :class:`Idle`). Pass a ``reader`` to ask
    it afterwards whether the stream ended with its terminal marker (``reader.done``)."""
    reader = reader or EventReader()
    idle = Idle(timeout)
    for chunk in chunks:
        events = reader.feed(chunk)
        idle.check(bool(events))
        if events:
            yield from events
            idle.restart()
        if reader.done:
            return
    yield from reader.close()


async def aiter_events(chunks: AsyncIterable[bytes], reader: EventReader | None = None,
                       timeout: float | None = None) -> AsyncGenerator[str, None]:
    reader = reader or EventReader()
    idle = Idle(timeout)
    async for chunk in chunks:
        events = reader.feed(chunk)
        idle.check(bool(events))
        if events:
            for event in events:
                yield event
            idle.restart()
        if reader.done:
            return
    for event in reader.close():
        yield event

"""Server-sent events: an incremental decoder fed raw bytes, shared by sync and async streams,
and a reader that also takes a streaming request answered with one plain JSON body."""

from __future__ import annotations

from collections.abc import AsyncIterable, AsyncIterator, Iterable, Iterator

from .errors import ResponseValidationError

DONE = "[DONE]"


class SSEDecoder:
    """Turns network chunks into the ``data`` payloads of complete events.

    Events may be split anywhere across chunks (even inside a UTF-8 character or a ``\\r\\n``).
    Multiple ``data:`` lines of one event are joined with newlines; comments and other fields
    are ignored.
    """

    def __init__(self) -> None:
        self._buffer = b""
        self._data: list[str] = []

    def feed(self, chunk: bytes) -> list[str]:
        self._buffer += chunk
        events: list[str] = []
        start = 0
        while (newline := self._buffer.find(b"\n", start)) >= 0:
            self._line(self._buffer[start:newline].rstrip(b"\r").decode("utf-8"), events)
            start = newline + 1
        self._buffer = self._buffer[start:]  # one copy per chunk, not one per line
        return events

    def close(self) -> list[str]:
        """Flush an event the server ended without a trailing blank line."""
        events: list[str] = []
        if self._buffer:
            self._line(self._buffer.rstrip(b"\r").decode("utf-8"), events)
            self._buffer = b""
        self._line("", events)
        return events

    def _line(self, line: str, events: list[str]) -> None:
        if not line:
            if self._data:
                events.append("\n".join(self._data))
                self._data = []
            return
        if line.startswith(":"):
            return
        field, _, value = line.partition(":")
        if field == "data":
            self._data.append(value[1:] if value.startswith(" ") else value)


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

    def __init__(self) -> None:
        self._decoder = SSEDecoder()
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
            return []
        if not self._sniffed:
            if not chunk.strip():
                self._pending += chunk
                return []
            self._sniffed = True
            chunk, self._pending = self._pending + chunk, b""
            if chunk.lstrip()[:1] in (b"{", b"["):
                self._whole = bytearray(chunk)
                return []
        return self._take(self._decoder.feed(chunk))

    def close(self) -> list[str]:
        if self._whole is not None:
            try:
                return [WholeBody(bytes(self._whole).decode("utf-8"))]
            except UnicodeDecodeError as exc:
                raise ResponseValidationError(
                    f"The streaming answer was not UTF-8 text: {exc}") from exc
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


def iter_events(chunks: Iterable[bytes]) -> Iterator[str]:
    """Data payloads until ``[DONE]`` or the end of the stream (see :class:`EventReader`)."""
    reader = EventReader()
    for chunk in chunks:
        yield from reader.feed(chunk)
        if reader.done:
            return
    yield from reader.close()


async def aiter_events(chunks: AsyncIterable[bytes]) -> AsyncIterator[str]:
    reader = EventReader()
    async for chunk in chunks:
        for event in reader.feed(chunk):
            yield event
        if reader.done:
            return
    for event in reader.close():
        yield event

"""Server-sent events: an incremental decoder fed raw bytes, shared by sync and async streams."""

from __future__ import annotations

from collections.abc import AsyncIterable, AsyncIterator, Iterable, Iterator

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


def iter_events(chunks: Iterable[bytes]) -> Iterator[str]:
    """Data payloads until ``[DONE]`` or the end of the stream."""
    decoder = SSEDecoder()
    for chunk in chunks:
        for event in decoder.feed(chunk):
            if event == DONE:
                return
            yield event
    for event in decoder.close():
        if event == DONE:
            return
        yield event


async def aiter_events(chunks: AsyncIterable[bytes]) -> AsyncIterator[str]:
    decoder = SSEDecoder()
    async for chunk in chunks:
        for event in decoder.feed(chunk):
            if event == DONE:
                return
            yield event
    for event in decoder.close():
        if event == DONE:
            return
        yield event

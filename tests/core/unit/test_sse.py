from __future__ import annotations

import pytest

from sfmodels_core._sse import SSEDecoder, aiter_events, iter_events


def test_events_split_anywhere_across_chunks() -> None:
    stream = 'data: {"a": 1}\r\n\r\ndata: {"b": "é"}\n\n: comment\ndata: [DONE]\n\n'.encode()
    for size in range(1, len(stream)):
        chunks = [stream[i:i + size] for i in range(0, len(stream), size)]
        assert list(iter_events(chunks)) == ['{"a": 1}', '{"b": "é"}'], size


def test_multi_line_data_is_joined_and_other_fields_ignored() -> None:
    decoder = SSEDecoder()
    assert decoder.feed(b"event: x\nid: 3\ndata: line one\ndata:line two\n\n") == [
        "line one\nline two"]


def test_stream_without_done_or_final_blank_line_is_flushed() -> None:
    assert list(iter_events([b"data: one\n\ndata: two"])) == ["one", "two"]


def test_nothing_after_done_is_read() -> None:
    consumed = []

    def chunks():
        for chunk in (b"data: one\n\n", b"data: [DONE]\n\n", b"data: late\n\n"):
            consumed.append(chunk)
            yield chunk

    assert list(iter_events(chunks())) == ["one"]
    assert len(consumed) == 2


@pytest.mark.asyncio
async def test_async_decoder_matches_sync() -> None:
    async def chunks():
        for chunk in (b"da", b"ta: x\n", b"\ndata: [DO", b"NE]\n\n"):
            yield chunk

    assert [e async for e in aiter_events(chunks())] == ["x"]

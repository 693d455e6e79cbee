"""Property-based fuzzing of everything that reads the wire: whatever bytes or JSON a server
sends, the result is a correct answer or one of our typed errors, never another exception and
never a hang. Bounded: a few hundred examples per property, with a per-example deadline.
"""

from __future__ import annotations

import contextlib
import itertools
import json
from typing import Any

import httpx
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from sfmodels_core import DatabricksClient, SalesforceClient
from sfmodels_core._sse import EventReader, iter_events
from sfmodels_core.databricks import StreamAccumulator
from sfmodels_core.databricks import _responses as responses
from sfmodels_core.databricks import _wire as dbx
from sfmodels_core.errors import SFModelsError
from sfmodels_core.salesforce import _wire as sfw

FUZZ = settings(max_examples=150, deadline=2000,
                suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large])

# JSON values, with the keys and values the real answers use mixed in so the fuzz reaches deep.
KEYS = st.sampled_from(["choices", "message", "delta", "content", "text", "tool_calls",
                        "function", "name", "arguments", "index", "finish_reason", "usage",
                        "type", "error", "error_code", "data", "embedding", "embeddings",
                        "generationDetails", "generations", "generation", "parameters",
                        "output", "status", "summary", "id", "model", "role", "item",
                        "response", "refusal", "custom_outputs"]) | st.text(max_size=8)
SCALARS = (st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False)
           | st.text(max_size=20)
           | st.sampled_from(["stop", "assistant", "text", "message", "function_call",
                              "response.completed", "response.output_text.delta", "error",
                              "reasoning", "function"]))
JSON = st.recursive(SCALARS, lambda inner: st.lists(inner, max_size=4)
                    | st.dictionaries(KEYS, inner, max_size=6), max_leaves=40)


def read(client: Any, body: bytes, parse: Any) -> Any:
    """What the client makes of a 200 answer with this body (the path every plain call takes)."""
    request = httpx.Request("POST", "https://h/x")
    return client._read(httpx.Response(200, content=body, request=request), parse)


@pytest.fixture(scope="module")
def clients() -> dict[str, Any]:
    return {"dbx": DatabricksClient(host="https://h", api_key="k", env={}),
            "sf": SalesforceClient(api_key="t", api_base="https://h/v1", env={})}


READERS = {
    "databricks chat": ("dbx", dbx.parse_chat),
    "databricks completion": ("dbx", dbx.parse_completion),
    "databricks embeddings": ("dbx", dbx.parse_embeddings),
    "responses": ("dbx", responses.parse_response),
    "salesforce chat": ("sf", sfw.parse_chat),
    "salesforce generation": ("sf", sfw.parse_generation),
    "salesforce embeddings": ("sf", sfw.parse_embeddings),
}


@pytest.mark.parametrize("reader", list(READERS))
@FUZZ
@given(value=JSON)
def test_any_json_answer_reads_as_an_answer_or_a_typed_error(
        clients: dict[str, Any], reader: str, value: Any) -> None:
    side, parse = READERS[reader]
    try:
        result = read(clients[side], json.dumps(value).encode(), parse)
    except SFModelsError:
        return
    if hasattr(result, "text"):
        assert isinstance(result.text, str)


@pytest.mark.parametrize("reader", list(READERS))
@FUZZ
@given(body=st.binary(max_size=200))
def test_any_bytes_read_as_an_answer_or_a_typed_error(
        clients: dict[str, Any], reader: str, body: bytes) -> None:
    side, parse = READERS[reader]
    with contextlib.suppress(SFModelsError):
        read(clients[side], body, parse)


EVENT_BYTES = st.lists(
    st.sampled_from([b"data: ", b"data:", b"event: error\n", b": ping\n", b"\n", b"\r\n",
                     b"\xef\xbb\xbf", b"[DONE]", b'{"choices": []}', b"\xff", b"{", b"}",
                     b'{"choices": [{"delta": {"content": "x"}, "finish_reason": "stop"}]}'])
    | st.binary(max_size=12), max_size=30).map(b"".join)


@FUZZ
@given(body=EVENT_BYTES, cuts=st.lists(st.integers(min_value=0, max_value=400), max_size=6))
def test_the_event_reader_gives_events_or_a_typed_error_however_split(
        body: bytes, cuts: list[int]) -> None:
    points = sorted({0, len(body), *(c for c in cuts if c < len(body))})
    chunks = [body[a:b] for a, b in itertools.pairwise(points)]
    try:
        whole = list(iter_events([body]))
    except SFModelsError:
        whole = None
    try:
        split = list(iter_events(chunks))
    except SFModelsError:
        split = None
    assert split == whole  # how the bytes were cut never changes what they say
    assert all(isinstance(event, str) for event in whole or [])


@FUZZ
@given(events=st.lists(JSON.map(json.dumps) | st.text(max_size=30), max_size=8))
def test_stream_events_fold_into_an_answer_or_a_typed_error(events: list[str]) -> None:
    stream = StreamAccumulator()
    try:
        for event in events:
            stream.add(dbx.parse_event(event, dbx.parse_chat_chunk))
        dbx.ensure_complete(EventReader(), stream.complete, stream.answered,
                            stream.completion)
    except SFModelsError:
        return
    assert isinstance(stream.completion().text, str)


@FUZZ
@given(events=st.lists(JSON, max_size=8))
def test_responses_stream_events_fold_into_an_answer_or_a_typed_error(events: list[Any]) -> None:
    state = responses.ResponsesStream()
    try:
        for event in events:
            dbx._fed(state, dbx.parse_event(json.dumps(event), dbx._identity))
        dbx.ensure_complete(EventReader(), state.complete, state.answered, state.partial)
        state.finish()
    except SFModelsError:
        return

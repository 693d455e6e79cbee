"""Hostile mode: answers in the broken wire shapes a client must survive.

The setting ``hostile`` names one case (globally, or for one model or endpoint through
``model_settings``); ``None``, the default, turns it off. The emulator first answers as usual;
then, if the answer is a successful one the case applies to, the case's builder in :data:`CASES`
rebuilds it. Errors (auth, validation, rate limits, injected faults) are never touched, and an
answer a case does not apply to is sent as it is. ``GET /_emulator/counters`` counts the answers
each case rebuilt under ``"hostile"``.

Streams (Databricks chat, completions and the Responses API, with ``"stream": true``):

* ``cut_stream`` — some content events, then the body ends cleanly (a proper last chunk):
  no ``[DONE]``, no chunk with a ``finish_reason`` or ``"choices": []``, no
  ``response.completed``;
* ``stream_error_event`` — some content, then ``event: error`` with
  ``data: {"error_code": ..., "message": ...}``, then the body ends (no ``[DONE]``);
* ``stream_error_payload`` — some content, then ``data: {"type": "error", "error":
  {"message": ..., "code": ...}}`` (no ``choices``), then ``data: [DONE]``;
* ``stream_bom`` — a complete stream whose body starts with a UTF-8 BOM (``EF BB BF``);
* ``stream_non_utf8`` — a complete stream with one content event whose text holds the byte
  ``FF`` (not UTF-8);
* ``endless_line`` — after the headers, one ``data:`` line that never ends: the start of a
  content event, then text without a newline until ``hostile_endless_bytes`` bytes (default
  256 MiB) or until the client goes away. A plain (not streamed) answer, on any API route, is a
  JSON body that never ends the same way (inside the text, or inside the vector of embeddings).

Any answer (every API route, streamed or not):

* ``trickle`` — the normal complete answer, its body sent one byte every ``hostile_trickle_s``
  seconds (default 0.2): each read is quick, the whole call slow. Stops if the client goes away;
* ``bad_encoding`` — the normal answer sent with ``Content-Encoding: gzip``, not gzipped.

Bodies (plain 200 answers: Databricks chat, completions, Responses, embeddings; Salesforce chat,
generations, embeddings):

* ``empty_object`` — ``{}``;
* ``empty_choices`` — the list of answers empty: ``"choices": []`` (Databricks chat and
  completions), ``"output": []`` (Responses), ``"data": []`` (Databricks embeddings),
  ``generationDetails.generations: []`` (Salesforce chat), no ``generation`` at all (Salesforce
  generations), ``"embeddings": []`` (Salesforce embeddings);
* ``no_content`` — every answer without its text (``message.content``, ``text``, an
  ``output_text`` part's ``text``, ``content``, ``generatedText``), every embedding item without
  ``embedding``;
* ``content_wrong_type`` — every text is the number ``42``; ``content_object`` — every text is
  an object, ``{"value": "<the text>"}`` (text answers only).

Vectors (embeddings, both services; the *last* vector of the batch, so that a client checking
only the first one misses it; lists of floats, and base64 of float32 where the request asked for
``encoding_format: "base64"``):

* ``vector_null`` — ``null``; ``vector_strings`` — the numbers as strings
  (``["0.0", "0.031", ...]``, also when base64 was asked for); ``vector_bools`` — ``true`` and
  ``false``; ``vector_nested`` — the vector inside another list (``[[...]]``, ``["<base64>"]``);
  ``vector_empty`` — ``[]`` (base64: ``""``); ``vector_mixed_dims`` — half as long as the others
  (with one input: half the endpoint's dimension); ``vector_nan`` and ``vector_inf`` — one element
  ``NaN`` / ``Infinity`` (JSON literals; in base64 the float32 NaN / +inf).

Credentials (the token routes; a per-model setting does not reach them, only the global one):

* ``token_control_chars`` — Salesforce's and Databricks' token routes mint an access token with
  a newline in the middle (the token is valid, if a client manages to send it);
* ``instance_url_http`` — Salesforce's token answer gives ``api_instance_url`` as
  ``http://api.evil.example``; ``instance_url_userinfo`` — as
  ``https://127.0.0.1@evil.example``.
"""

from __future__ import annotations

import base64
import dataclasses
import json
import math
import sys
from array import array
from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from .common import SSE_DONE, dumps
from .server import Drip, Endless, Reply, Response, StreamResponse

if TYPE_CHECKING:
    from .state import State


Answer = Response | StreamResponse
#: A case's builder: the hostile reply for a successful answer, or None where it does not apply.
Builder = Callable[[Answer, "Context"], Reply | None]

BOM = b"\xef\xbb\xbf"
EVIL_HTTP_URL = "http://api.evil.example"
EVIL_USERINFO_URL = "https://127.0.0.1@evil.example"
STREAM_ERROR_CODE = "INTERNAL_ERROR"
STREAM_ERROR_MESSAGE = "The model failed while generating the response."
_ENDLESS_TEXT = b"endless " * 8192  # 64 KiB, no newline
_ENDLESS_VECTOR = b"0.0," * 16384
_SENTINEL = "@@sfmodels-emulator-endless@@"
_RESPONSE_ENDS = ("response.completed", "response.incomplete", "response.failed")
_ANSWER_DELTAS = ("response.output_text.delta", "response.function_call_arguments.delta")


@dataclass(frozen=True)
class Context:
    """What a builder may need besides the answer."""

    route: str  # the route's name, e.g. "databricks.chat" (see state.ROUTE_NAMES)
    state: State
    trickle_s: float
    endless_bytes: int


@dataclass(frozen=True)
class Case:
    on: str  # "api" (the API routes) or "token" (the token routes)
    build: Builder


# ---- server-sent events ------------------------------------------------------------------

_DONE = object()


def _split(event: bytes) -> tuple[bytes, bytes]:
    """(the lines before the ``data:`` line, the data)."""
    head, sep, rest = event.partition(b"data: ")
    if not sep:
        return event, b""
    return head, rest.rstrip(b"\n")


def _data(event: bytes) -> Any:
    """An event's data: its JSON, ``_DONE`` for ``[DONE]``, None if neither."""
    data = _split(event)[1]
    if data == b"[DONE]":
        return _DONE
    try:
        return json.loads(data)
    except ValueError:
        return None


def _choices(obj: Any) -> list[Any]:
    choices = obj.get("choices") if isinstance(obj, dict) else None
    return choices if isinstance(choices, list) else []


def _is_end(obj: Any) -> bool:
    """``[DONE]``, a chunk with a finish reason or ``"choices": []``, or a Responses end."""
    if obj is _DONE:
        return True
    if not isinstance(obj, dict):
        return False
    if isinstance(obj.get("choices"), list):
        return not obj["choices"] or any(
            isinstance(c, dict) and c.get("finish_reason") is not None for c in obj["choices"])
    return obj.get("type") in _RESPONSE_ENDS


def _slot(obj: Any) -> tuple[dict[str, Any], str] | None:
    """Where an event's answer text is (chat or tool-call delta, completion text, Responses
    text or arguments delta), or None for an event without any (roles, reasoning, ends)."""
    for choice in _choices(obj):
        if not isinstance(choice, dict):
            continue
        delta = choice.get("delta")
        if isinstance(delta, dict):
            if isinstance(delta.get("content"), str) and delta["content"]:
                return delta, "content"
            for call in delta.get("tool_calls") or ():
                function = call.get("function") if isinstance(call, dict) else None
                if isinstance(function, dict) and isinstance(function.get("arguments"), str) \
                        and function["arguments"]:
                    return function, "arguments"
        if isinstance(choice.get("text"), str) and choice["text"]:
            return choice, "text"
    if isinstance(obj, dict) and obj.get("type") in _ANSWER_DELTAS \
            and isinstance(obj.get("delta"), str) and obj["delta"]:
        return obj, "delta"
    return None


def _cut(events: list[bytes]) -> int:
    """How many events a cut stream keeps: up to the middle answer-text event, and always
    before the first end (``[DONE]``, a finish reason, a usage-only chunk, a Responses end)."""
    parsed = [_data(event) for event in events]
    end = next((i for i, obj in enumerate(parsed) if _is_end(obj)), len(events))
    content = [i for i in range(end) if _slot(parsed[i]) is not None]
    return content[(len(content) - 1) // 2] + 1 if content else end


def _encode(head: bytes, obj: Any) -> bytes:
    """An event again; lone surrogates in strings become the raw bytes they stand for."""
    text = json.dumps(obj, separators=(",", ":"), ensure_ascii=False)
    return head + b"data: " + text.encode("utf-8", "surrogateescape") + b"\n\n"


def _stream(build: Callable[[list[bytes], Context], list[bytes] | None]) -> Builder:
    """A builder that rewrites the events of a stream (plain answers pass)."""

    def builder(answer: Answer, context: Context) -> Reply | None:
        if not isinstance(answer, StreamResponse):
            return None
        events = build(list(answer.events), context)
        if events is None:
            return None
        return StreamResponse(events, answer.delay_s, answer.status, answer.headers)

    return builder


def _cut_stream(events: list[bytes], context: Context) -> list[bytes]:
    return events[: _cut(events)]


def _stream_error_event(events: list[bytes], context: Context) -> list[bytes]:
    error = {"error_code": STREAM_ERROR_CODE, "message": STREAM_ERROR_MESSAGE}
    return [*events[: _cut(events)], b"event: error\ndata: " + dumps(error) + b"\n\n"]


def _stream_error_payload(events: list[bytes], context: Context) -> list[bytes]:
    error = {"type": "error", "error": {"message": STREAM_ERROR_MESSAGE, "code": "server_error"}}
    return [*events[: _cut(events)], b"data: " + dumps(error) + b"\n\n", SSE_DONE]


def _stream_bom(events: list[bytes], context: Context) -> list[bytes] | None:
    if not events:
        return None
    return [BOM + events[0], *events[1:]]


def _stream_non_utf8(events: list[bytes], context: Context) -> list[bytes] | None:
    middle = _cut(events) - 1
    order = [*range(max(middle, 0), len(events)), *range(0, max(middle, 0))]
    for i in order:
        obj = _data(events[i])
        slot = _slot(obj)
        if slot is None:
            continue
        container, key = slot
        text = container[key]
        half = len(text) // 2
        container[key] = text[:half] + "\udcff" + text[half:]  # encodes as the byte FF
        return [*events[:i], _encode(_split(events[i])[0], obj), *events[i + 1 :]]
    return None


# ---- plain JSON bodies -------------------------------------------------------------------


def _kind(obj: Any) -> str | None:
    """What a 200 body answers: ``chat.completion``, ``text_completion``, ``response``,
    ``embeddings`` (Databricks), ``sf_chat``, ``sf_generation``, ``sf_embeddings``."""
    if not isinstance(obj, dict):
        return None
    kind = obj.get("object")
    if kind in ("chat.completion", "text_completion", "response"):
        return str(kind)
    if kind == "list" and isinstance(obj.get("data"), list):
        return "embeddings"
    if isinstance(obj.get("generationDetails"), dict):
        return "sf_chat"
    if isinstance(obj.get("generation"), dict):
        return "sf_generation"
    if isinstance(obj.get("embeddings"), list):
        return "sf_embeddings"
    return None


def _dicts(value: Any) -> list[dict[str, Any]]:
    return [item for item in value if isinstance(item, dict)] if isinstance(value, list) else []


def _texts(obj: dict[str, Any], kind: str) -> list[tuple[dict[str, Any], str]]:
    """Where every answer's text is."""
    if kind == "chat.completion":
        return [(c["message"], "content") for c in _dicts(obj.get("choices"))
                if isinstance(c.get("message"), dict)]
    if kind == "text_completion":
        return [(c, "text") for c in _dicts(obj.get("choices"))]
    if kind == "response":
        return [(part, "text") for item in _dicts(obj.get("output"))
                if item.get("type") == "message"
                for part in _dicts(item.get("content")) if part.get("type") == "output_text"]
    if kind == "sf_chat":
        return [(g, "content") for g in _dicts(obj["generationDetails"].get("generations"))]
    if kind == "sf_generation":
        return [(obj["generation"], "generatedText")]
    return []


def _vector_items(obj: dict[str, Any], kind: str) -> list[dict[str, Any]]:
    """The embedding items (each with an ``embedding``) of an embeddings answer."""
    items = obj.get("data") if kind == "embeddings" else obj.get("embeddings")
    return [item for item in _dicts(items) if "embedding" in item]


def _body(build: Callable[[dict[str, Any], str], Any]) -> Builder:
    """A builder that rewrites a plain JSON answer (streams pass). ``build`` changes the body
    in place and returns None, returns a new body, or returns ``False`` where it does not
    apply."""

    def builder(answer: Answer, context: Context) -> Reply | None:
        if not isinstance(answer, Response):
            return None
        try:
            obj = json.loads(answer.body)
        except ValueError:
            return None
        kind = _kind(obj)
        if kind is None:
            return None
        result = build(obj, kind)
        if result is False:
            return None
        body = obj if result is None else result
        return Response(answer.status, dumps(body), answer.content_type, answer.headers)

    return builder


def _empty_object(obj: dict[str, Any], kind: str) -> Any:
    return {}


def _empty_choices(obj: dict[str, Any], kind: str) -> Any:
    if kind == "sf_generation":
        del obj["generation"]
    elif kind == "sf_chat":
        obj["generationDetails"]["generations"] = []
    else:
        key = {"response": "output", "embeddings": "data", "sf_embeddings": "embeddings"}
        obj[key.get(kind, "choices")] = []
    return None


def _no_content(obj: dict[str, Any], kind: str) -> Any:
    fields = _texts(obj, kind) or [(item, "embedding") for item in _vector_items(obj, kind)]
    for container, key in fields:
        container.pop(key, None)
    return None if fields else False


def _retype(make: Callable[[Any], Any]) -> Callable[[dict[str, Any], str], Any]:
    def build(obj: dict[str, Any], kind: str) -> Any:
        fields = _texts(obj, kind)
        for container, key in fields:
            container[key] = make(container.get(key))
        return None if fields else False

    return build


# ---- vectors -----------------------------------------------------------------------------


def _floats(vector: Any) -> list[float]:
    """A vector's numbers, from a list or from base64 of little-endian float32."""
    if isinstance(vector, str):
        numbers = array("f")
        numbers.frombytes(base64.b64decode(vector))
        if sys.byteorder != "little":  # pragma: no cover
            numbers.byteswap()
        return [round(x, 8) for x in numbers.tolist()]
    return [float(x) for x in vector]


def _base64(numbers: list[float]) -> str:
    packed = array("f", numbers)
    if sys.byteorder != "little":  # pragma: no cover
        packed.byteswap()
    return base64.b64encode(packed.tobytes()).decode("ascii")


def _same_form(vector: Any, numbers: list[float]) -> Any:
    """``numbers`` as ``vector`` was sent: base64 or a list."""
    return _base64(numbers) if isinstance(vector, str) else numbers


def _half(numbers: list[float]) -> list[float]:
    return numbers[: len(numbers) // 2]


def _with(value: float) -> Callable[[Any], Any]:
    def change(vector: Any) -> Any:
        numbers = _floats(vector)
        if numbers:
            numbers[len(numbers) // 2] = value
        return _same_form(vector, numbers)

    return change


_VECTOR_CHANGES: dict[str, Callable[[Any], Any]] = {
    "vector_null": lambda v: None,
    "vector_strings": lambda v: [repr(x) for x in _floats(v)],
    "vector_bools": lambda v: [x != 0.0 for x in _floats(v)],
    "vector_nested": lambda v: [v],
    "vector_empty": lambda v: "" if isinstance(v, str) else [],
    "vector_mixed_dims": lambda v: _same_form(v, _half(_floats(v))),
    "vector_nan": _with(math.nan),
    "vector_inf": _with(math.inf),
}


def _vector(name: str) -> Builder:
    change = _VECTOR_CHANGES[name]

    def build(obj: dict[str, Any], kind: str) -> Any:
        items = _vector_items(obj, kind)
        if not items:
            return False
        items[-1]["embedding"] = change(items[-1]["embedding"])
        return None

    return _body(build)


# ---- any answer --------------------------------------------------------------------------


def _trickle(answer: Answer, context: Context) -> Reply:
    return Drip(answer, context.trickle_s)


def _bad_encoding(answer: Answer, context: Context) -> Reply:
    return dataclasses.replace(answer, headers=(*answer.headers, ("content-encoding", "gzip")))


def _endless(answer: Answer, context: Context) -> Reply:
    """A ``data:`` line (or a JSON body) that starts like the answer and never ends."""
    limit = context.endless_bytes
    if isinstance(answer, StreamResponse):
        events = list(answer.events)
        for event in events:
            obj = _data(event)
            slot = _slot(obj)
            if slot is not None:
                slot[0][slot[1]] = _SENTINEL
                start = _encode(_split(event)[0], obj)
                prefix = start[: start.index(_SENTINEL.encode())]
                break
        else:
            prefix = b'data: {"choices":[{"index":0,"delta":{"content":"'
        return Endless(prefix, _ENDLESS_TEXT, limit, "text/event-stream", answer.status,
                       answer.headers)
    filler = _ENDLESS_TEXT
    try:
        obj = json.loads(answer.body)
    except ValueError:
        obj = None
    kind = _kind(obj)
    slots = [] if kind is None else _texts(obj, kind)
    if kind is not None and not slots:
        items = _vector_items(obj, kind)
        if items and isinstance(items[0]["embedding"], list):
            slots, filler = [(items[0], "embedding")], _ENDLESS_VECTOR
        elif items:
            slots = [(items[0], "embedding")]
    if slots:
        container, key = slots[0]
        container[key] = _SENTINEL
        body = dumps(obj)
        prefix = body[: body.index(_SENTINEL.encode())]
        if filler is _ENDLESS_VECTOR:
            prefix = prefix[:-1] + b"["  # the vector's opening quote becomes a bracket
    else:
        prefix = answer.body[: len(answer.body) // 2]
    return Endless(prefix, filler, limit, answer.content_type, answer.status, answer.headers)


# ---- credentials -------------------------------------------------------------------------


def _token_control_chars(answer: Answer, context: Context) -> Reply | None:
    if not isinstance(answer, Response):
        return None
    body = json.loads(answer.body)
    token = body.get("access_token")
    if not isinstance(token, str):
        return None
    half = len(token) // 2
    hostile = token[:half] + "\n" + token[half:]
    state = context.state
    for issued in (state.salesforce_tokens, state.databricks_tokens):
        if token in issued:
            issued[hostile] = issued[token]
    body["access_token"] = hostile
    return Response(answer.status, dumps(body), answer.content_type, answer.headers)


def _instance_url(url: str) -> Builder:
    def build(answer: Answer, context: Context) -> Reply | None:
        if context.route != "salesforce.token" or not isinstance(answer, Response):
            return None
        body = json.loads(answer.body)
        body["api_instance_url"] = url
        return Response(answer.status, dumps(body), answer.content_type, answer.headers)

    return build


#: Every case: where it applies and how it rebuilds an answer.
CASES: dict[str, Case] = {
    "cut_stream": Case("api", _stream(_cut_stream)),
    "stream_error_event": Case("api", _stream(_stream_error_event)),
    "stream_error_payload": Case("api", _stream(_stream_error_payload)),
    "stream_bom": Case("api", _stream(_stream_bom)),
    "stream_non_utf8": Case("api", _stream(_stream_non_utf8)),
    "endless_line": Case("api", _endless),
    "trickle": Case("api", _trickle),
    "bad_encoding": Case("api", _bad_encoding),
    "empty_object": Case("api", _body(_empty_object)),
    "empty_choices": Case("api", _body(_empty_choices)),
    "no_content": Case("api", _body(_no_content)),
    "content_wrong_type": Case("api", _body(_retype(lambda text: 42))),
    "content_object": Case("api", _body(_retype(lambda text: {"value": text}))),
    **{name: Case("api", _vector(name)) for name in _VECTOR_CHANGES},
    "token_control_chars": Case("token", _token_control_chars),
    "instance_url_http": Case("token", _instance_url(EVIL_HTTP_URL)),
    "instance_url_userinfo": Case("token", _instance_url(EVIL_USERINFO_URL)),
}
HOSTILE_CASES: tuple[str, ...] = tuple(CASES)


def apply(case: str, answer: Reply, kind: str, context: Context) -> Reply | None:
    """The hostile reply for ``answer`` (from a route of ``kind``, ``api`` or ``token``), or
    None when the case leaves it as it is: not a successful answer, or not one it applies to."""
    entry = CASES[case]
    if entry.on != kind or not isinstance(answer, (Response, StreamResponse)):
        return None
    if answer.status != 200:
        return None
    return entry.build(answer, context)


__all__ = [
    "BOM",
    "CASES",
    "EVIL_HTTP_URL",
    "EVIL_USERINFO_URL",
    "HOSTILE_CASES",
    "STREAM_ERROR_CODE",
    "STREAM_ERROR_MESSAGE",
    "Answer",
    "Builder",
    "Case",
    "Context",
    "apply",
]

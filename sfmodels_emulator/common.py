"""Helpers shared by the two emulated providers."""

from __future__ import annotations

import base64
import binascii
import json
import random
import string
import time
import urllib.parse
from collections.abc import Sequence
from typing import Any

from .server import Request, Response

_ALPHABET = string.ascii_letters + string.digits
_id_random = random.Random()


def dumps(obj: Any) -> bytes:
    return json.dumps(obj, separators=(",", ":"), ensure_ascii=False).encode("utf-8")


def json_response(status: int, obj: Any, headers: Sequence[tuple[str, str]] = ()) -> Response:
    return Response(status, dumps(obj), "application/json", headers)


def sse_event(obj: Any) -> bytes:
    return b"data: " + dumps(obj) + b"\n\n"


SSE_DONE = b"data: [DONE]\n\n"


def random_id(length: int) -> str:
    """A random alphanumeric id, like the ``chatcmpl-...`` ids providers hand out."""
    return "".join(_id_random.choices(_ALPHABET, k=length))


def now_s() -> int:
    return int(time.time())


class BodyError(Exception):
    """The request body is not what the route expects."""

    def __init__(self, message: str, *, field: str | None = None, missing: bool = False) -> None:
        super().__init__(message)
        self.message = message
        self.field = field
        self.missing = missing


def parse_json_object(request: Request) -> dict[str, Any]:
    if not request.body.strip():
        raise BodyError("Request body is missing", missing=True)
    try:
        data = json.loads(request.body)
    except (ValueError, UnicodeDecodeError) as exc:
        raise BodyError(f"Malformed JSON request body: {exc}") from exc
    if not isinstance(data, dict):
        raise BodyError("Request body must be a JSON object")
    return data


def parse_form(request: Request) -> dict[str, str]:
    try:
        text = request.body.decode("utf-8")
    except UnicodeDecodeError:
        return {}
    return {k: v[-1] for k, v in urllib.parse.parse_qs(text, keep_blank_values=True).items()}


def basic_auth(request: Request) -> tuple[str, str] | None:
    header = request.headers.get("authorization", "")
    scheme, _, value = header.partition(" ")
    if scheme.lower() != "basic" or not value:
        return None
    try:
        decoded = base64.b64decode(value.strip(), validate=True).decode("utf-8")
    except (binascii.Error, UnicodeDecodeError):
        return None
    user, sep, password = decoded.partition(":")
    if not sep:
        return None
    return urllib.parse.unquote(user), urllib.parse.unquote(password)


def bearer_token(request: Request) -> str | None:
    header = request.headers.get("authorization")
    if not header:
        return None
    scheme, _, value = header.partition(" ")
    if scheme.lower() != "bearer":
        return None
    token = value.strip()
    return token or None


def is_int(value: Any) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


def is_number(value: Any) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool)


__all__ = [
    "SSE_DONE",
    "BodyError",
    "basic_auth",
    "bearer_token",
    "dumps",
    "is_int",
    "is_number",
    "json_response",
    "now_s",
    "parse_form",
    "parse_json_object",
    "random_id",
    "sse_event",
]

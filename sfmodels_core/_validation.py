"""Checks of user input that can be made before anything is sent, and the one-time warnings
about input we had to adjust or cannot honour."""

from __future__ import annotations

import dataclasses
import functools
import ipaddress
import math
import re
import threading
import unicodedata
import warnings
from collections.abc import Iterable, Mapping, Sequence
from typing import TYPE_CHECKING, Any
from urllib.parse import quote

from .errors import InvalidInputError

if TYPE_CHECKING:  # importing httpx is kept for when a client is made
    import httpx

_warned: set[str] = set()
_warned_lock = threading.Lock()


def warn_once(key: str, message: str, category: type[Warning] = UserWarning) -> None:
    """Warn with ``message`` the first time ``key`` is seen in this process."""
    with _warned_lock:
        if key in _warned:
            return
        _warned.add(key)
    warnings.warn(message, category, stacklevel=3)


#: Characters a model or endpoint name is sent as they are: RFC 3986's unreserved set.
_PLAIN_NAME = re.compile(r"[A-Za-z0-9._~-]+")


def require_name(value: Any, what: str) -> str:
    """A model or endpoint name, checked before anything is sent; white space around it removed.

    Refused (``InvalidInputError``): a name that is not a string, an empty one, ``.`` and
    ``..`` (in a URL path they mean "this" and "the parent" route), and one holding ``/``, white
    space or any other character that is not printable (control characters such as NUL or a
    line break, format characters). Any other name is accepted: :func:`url_segment` makes it one
    path segment of the request URL.
    """
    if not isinstance(value, str):
        raise InvalidInputError(f"{what} must be a string, got {type(value).__name__}")
    name = value.strip()
    if _PLAIN_NAME.fullmatch(name) and name not in (".", ".."):
        return name  # the usual case: nothing more to check
    if not name:
        raise InvalidInputError(f"{what} must not be empty")
    if name in (".", ".."):
        raise InvalidInputError(f"{what} must be a name, not {name!r}")
    if "/" in name or any(c.isspace() or not c.isprintable() for c in name):
        raise InvalidInputError(f"{what} must not contain '/', spaces or control characters, "
                                f"got {value!r}")
    return name


@functools.lru_cache(maxsize=1024)
def url_segment(name: str) -> str:
    """``name`` (already checked by :func:`require_name`) as one path segment of a URL: every
    character outside RFC 3986's unreserved set (``A-Z a-z 0-9 - . _ ~``) percent-encoded as
    UTF-8, so a name can never change the route nor add a query or a fragment (``m?x=1`` is
    sent as ``m%3Fx%3D1``, ``a%b`` as ``a%25b``). Names are few: each is encoded once."""
    return quote(name, safe="")


def name_segment(value: Any, what: str) -> str:
    """A model or endpoint name, checked (:func:`require_name`) and made a URL path segment
    (:func:`url_segment`)."""
    return url_segment(require_name(value, what))


# -- secrets and hosts ---------------------------------------------------------------------------
_CHARACTER_NAMES = {"\x00": "a NUL character", "\t": "a tab", "\n": "a line feed",
                    "\r": "a carriage return", " ": "a space", "\x7f": "a DEL character"}


def character_kind(char: str) -> str:
    """What a character is, in words, without showing it when it might be part of a secret:
    control and space characters are named, any other one is only said to be non-ASCII."""
    named = _CHARACTER_NAMES.get(char)
    if named is not None:
        return f"{named} (U+{ord(char):04X})"
    if ord(char) < 0x20 or 0x80 <= ord(char) < 0xA0:
        return f"a control character (U+{ord(char):04X})"
    if unicodedata.category(char) in ("Zs", "Zl", "Zp"):
        return "a white-space character"
    return "a non-ASCII character"


def unprintable_at(value: str) -> tuple[int, str] | None:
    """The position (from 1) and kind of the first character of a token or secret outside
    printable ASCII without space (0x21-0x7E), which no header or token holds; None if none."""
    if value.isascii() and value.isprintable() and " " not in value:
        return None
    for index, char in enumerate(value, 1):
        if not "\x21" <= char <= "\x7e":
            return index, character_kind(char)
    return None  # pragma: no cover - the test above found one


def secret_problem(value: str, setting: str) -> str | None:
    """Why ``value`` cannot be the token or secret ``setting`` names (never showing it), or
    None when it can."""
    found = unprintable_at(value)
    if found is None:
        return None
    position, kind = found
    return (f"{setting} holds {kind} at character {position}: tokens, client ids and "
            "secrets are printable ASCII without spaces, so it was refused (its value is not "
            "shown)")


def is_loopback(host: str) -> bool:
    """Whether ``host`` (as :class:`httpx.URL` gives it) is this machine: 127.0.0.0/8, ::1 or
    ``localhost``."""
    if host.lower().rstrip(".") == "localhost":
        return True
    try:
        return ipaddress.ip_address(host.strip("[]")).is_loopback
    except ValueError:
        return False


def url_problem(url: httpx.URL, *, allow_insecure_http: bool) -> str | None:
    """Why credentials must not be sent to ``url``, or None when they may: a user-info part
    (``user@host``: its host is not what it looks like), or plain ``http://`` to a host other
    than this machine without ``allow_insecure_http``."""
    if url.userinfo:
        return ("has a user-info part (text and '@' before the host, as in user@host), which "
                "makes the host another one than it looks; credentials never go in a URL")
    if url.scheme == "http" and not allow_insecure_http and not is_loopback(url.host):
        return (f"is plain http:// to {url.host}, which would send credentials unencrypted; "
                "use https://, or pass allow_insecure_http=True to allow it (loopback hosts "
                "such as 127.0.0.1 and localhost are always allowed)")
    return None


def warn_insecure_http(url: httpx.URL) -> None:
    """Warn once per host that credentials go over plain http (``allow_insecure_http=True``)."""
    if url.scheme == "http" and not is_loopback(url.host):
        warn_once(f"insecure-http:{url.host}",
                  f"allow_insecure_http=True: credentials are sent to {url.host} over plain "
                  "http://, unencrypted; anyone on the network path can read them.")


def require_texts(texts: Any) -> list[str]:
    if isinstance(texts, (str, bytes)):
        raise InvalidInputError("texts must be a list of strings, not a single string "
                                "(wrap it in a list)")
    if not isinstance(texts, Iterable):
        raise InvalidInputError(f"texts must be a list of strings, got {type(texts).__name__}")
    out = list(texts)
    for i, text in enumerate(out):
        if not isinstance(text, str):
            raise InvalidInputError(
                f"texts[{i}] must be a string, got {type(text).__name__}")
    return out


def message_dict(message: Any, index: int) -> dict[str, Any]:
    """A plain dict from a dict or a typed message model (anything with ``model_dump``)."""
    if isinstance(message, Mapping):
        return dict(message)
    dump = getattr(message, "model_dump", None)
    if callable(dump):
        data = dump(exclude_none=True)
        if isinstance(data, dict):
            return data
    raise InvalidInputError(
        f"messages[{index}] must be a dict with 'role' and 'content', got "
        f"{type(message).__name__}")


def require_messages(messages: Any, roles: Sequence[str], *,
                     content_may_be_list: bool = False) -> list[dict[str, Any]]:
    if isinstance(messages, (str, bytes, Mapping)) or not isinstance(messages, Iterable):
        raise InvalidInputError("messages must be a list of {'role': ..., 'content': ...} dicts")
    out = [message_dict(m, i) for i, m in enumerate(messages)]
    if not out:
        raise InvalidInputError("messages must not be empty")
    for i, message in enumerate(out):
        role = message.get("role")
        if role not in roles:
            raise InvalidInputError(
                f"messages[{i}] has role {role!r}; this API accepts only "
                f"{', '.join(repr(r) for r in roles)}")
        content = message.get("content")
        ok = isinstance(content, str) or (content_may_be_list and (
            isinstance(content, list) or (content is None and (
                message.get("tool_calls") or role == "assistant"))))
        if not ok:
            kinds = "a string or a list of content parts" if content_may_be_list else "a string"
            raise InvalidInputError(
                f"messages[{i}].content must be {kinds}, got {type(content).__name__}")
    return out


def non_finite_number(body: Any) -> tuple[str, float] | None:
    """Where the first NaN or infinity of a request body is (``temperature``,
    ``tools[0].function.parameters.properties.x.maximum``, or ``body`` for the body itself)
    and what it is; None if there is none. JSON has no such numbers: serialized, they would be
    bare ``NaN`` tokens. Pydantic models are not looked into: they serialize such numbers as
    their configuration says (``null`` by default)."""
    found = _non_finite(body)
    if found is None:
        return None
    value, *keys = found
    path = "".join(f"[{key}]" if isinstance(key, int) else f".{key}" for key in reversed(keys))
    return path.lstrip(".") or "body", value


_ATOMS = (str, int, bool, type(None))


def _non_finite(node: Any) -> list[Any] | None:
    """[the value, then the keys from the innermost out], or None."""
    if isinstance(node, float):
        return None if math.isfinite(node) else [node]
    if isinstance(node, _ATOMS):
        return None
    if isinstance(node, Mapping):
        items: Iterable[tuple[Any, Any]] = node.items()
    elif isinstance(node, (list, tuple)):
        items = enumerate(node)
    elif dataclasses.is_dataclass(node) and not isinstance(node, type):
        return _non_finite(dataclasses.asdict(node))
    else:
        return None
    for key, value in items:
        if type(value) in _ATOMS:
            continue
        found = _non_finite(value)
        if found is not None:
            found.append(key)
            return found
    return None

"""Checks of user input that can be made before anything is sent, and the one-time warnings
about input we had to adjust or cannot honour."""

from __future__ import annotations

import dataclasses
import math
import threading
import warnings
from collections.abc import Iterable, Mapping, Sequence
from typing import Any

from .errors import InvalidInputError

_warned: set[str] = set()
_warned_lock = threading.Lock()


def warn_once(key: str, message: str, category: type[Warning] = UserWarning) -> None:
    """Warn with ``message`` the first time ``key`` is seen in this process."""
    with _warned_lock:
        if key in _warned:
            return
        _warned.add(key)
    warnings.warn(message, category, stacklevel=3)


def require_name(value: Any, what: str) -> str:
    if not isinstance(value, str):
        raise InvalidInputError(f"{what} must be a string, got {type(value).__name__}")
    name = value.strip()
    if not name:
        raise InvalidInputError(f"{what} must not be empty")
    if "/" in name or any(c.isspace() for c in name):
        raise InvalidInputError(f"{what} must not contain '/' or spaces, got {value!r}")
    return name


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

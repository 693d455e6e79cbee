"""Lenient readers for the non-essential fields of response bodies.

An index, a timestamp, a count, a score or a fingerprint that is null, a float where an int was
documented, missing, or of another type must never fail a whole call: the parsers read such
fields through these helpers, which return ``None`` (or the given default) for what they cannot
read. The raw body, kept on every result, still holds the field as it came.
"""

from __future__ import annotations

import math
from typing import Annotated, Any

import pydantic
from pydantic import BeforeValidator

from .types import Usage


def opt_int(value: Any, default: int | None = None) -> int | None:
    """An int from an int, a whole float or a numeric string; else ``default``."""
    if isinstance(value, bool):
        return default
    if isinstance(value, int):
        return value
    if isinstance(value, float) and math.isfinite(value):
        return int(value)
    if isinstance(value, str):
        try:
            number = float(value.strip())
        except ValueError:
            return default
        return int(number) if math.isfinite(number) else default
    return default


def opt_float(value: Any) -> float | None:
    """A finite float from a number (ints included) or a numeric string; else ``None``."""
    if isinstance(value, bool):
        return None
    if isinstance(value, (int, float)):
        number = float(value)
    elif isinstance(value, str):
        try:
            number = float(value.strip())
        except ValueError:
            return None
    else:
        return None
    return number if math.isfinite(number) else None


def opt_str(value: Any) -> str | None:
    """A string as it is, a number as its text; anything else ``None``."""
    if isinstance(value, str):
        return value
    if isinstance(value, (int, float)) and not isinstance(value, bool):
        return str(value)
    return None


def opt_bool(value: Any) -> bool | None:
    return value if isinstance(value, bool) else None


def opt_dict(value: Any) -> dict[str, Any]:
    return value if isinstance(value, dict) else {}


def usage(data: Any) -> Usage | None:
    """Token counts, keeping every field the service sent (``completion_tokens_details`` and
    the like stay readable as extra fields); a count that is not a number is left out rather
    than failing the call."""
    if not isinstance(data, dict):
        return None
    try:
        return Usage.from_wire(data)
    except pydantic.ValidationError:
        counts = ("prompt_tokens", "completion_tokens", "total_tokens")
        kept = {k: v for k, v in data.items() if k not in counts}
        kept.update({k: opt_int(data[k]) for k in counts if opt_int(data.get(k)) is not None})
        return Usage.from_wire(kept)


def vector_items(items: Any, what: str) -> list[dict[str, Any]]:
    """Embedding items with their ``index`` read leniently (``0.0`` is 0); when no item has a
    readable index they stay in the order sent. Items that are not objects cannot be used."""
    if not isinstance(items, list):
        raise ValueError(f"{what} is not a list")
    out: list[dict[str, Any]] = []
    for item in items:
        if not isinstance(item, dict):
            raise ValueError(f"an item of {what} is not an object")
        index = item.get("index")
        if type(index) is not int:  # read leniently, on a copy (the usual int needs neither)
            index = opt_int(index)
            item = {k: v for k, v in item.items() if k != "index"}
            if index is not None:
                item["index"] = index
        out.append(item)
    return out


#: Field types that read leniently when a model is validated: an unreadable value becomes
#: ``None`` (or 0 for an index) instead of failing the call.
LenientInt = Annotated["int | None", BeforeValidator(opt_int)]
LenientStr = Annotated["str | None", BeforeValidator(opt_str)]
Index = Annotated[int, BeforeValidator(lambda value: opt_int(value, 0))]

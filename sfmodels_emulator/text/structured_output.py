"""Structured output: JSON valid for the caller's JSON schema (``$ref``, ``allOf``, ``anyOf``,
enums, bounds and formats honoured), filled with values taken from the prompt where possible;
and JSON mode's object. Tool-call arguments are built the same way (:mod:`.tool_calls`)."""

from __future__ import annotations

import json
import math
import re
from collections.abc import Mapping
from typing import Any

from .prompt_values import QUOTED_RE, Extractor

_DATE_RE = re.compile(r"\b\d{4}-\d{2}-\d{2}\b")
_EMAIL_RE = re.compile(r"\b[\w.+-]+@[\w-]+\.[\w.-]+\b")
_QUERY_NAMES = frozenset(
    {
        "query",
        "q",
        "search",
        "search_query",
        "question",
        "text",
        "input",
        "prompt",
        "message",
        "keywords",
        "terms",
        "search_term",
        "search_terms",
        "topic",
        "subject",
    }
)
_ANSWER_NAMES = frozenset(
    {
        "answer",
        "response",
        "reply",
        "result",
        "summary",
        "content",
        "output",
        "explanation",
        "text",
        "message",
    }
)
_MAX_DEPTH = 8


def _resolve(schema: Any, root: Mapping[str, Any]) -> dict[str, Any]:
    """Follow ``$ref`` (local ``#/...`` pointers) and merge ``allOf``."""
    seen = 0
    while isinstance(schema, Mapping) and "$ref" in schema and seen < _MAX_DEPTH:
        ref = schema["$ref"]
        target: Any = root
        if isinstance(ref, str) and ref.startswith("#"):
            for part in ref.lstrip("#").strip("/").split("/"):
                if not part:
                    continue
                part = part.replace("~1", "/").replace("~0", "~")
                target = target.get(part, {}) if isinstance(target, Mapping) else {}
        else:
            target = {}
        merged = {k: v for k, v in schema.items() if k != "$ref"}
        schema = {**target, **merged} if isinstance(target, Mapping) else merged
        seen += 1
    if not isinstance(schema, Mapping):
        return {}
    result = dict(schema)
    all_of = result.pop("allOf", None)
    if isinstance(all_of, list):
        for part in all_of:
            sub = _resolve(part, root)
            for key, value in sub.items():
                if key == "properties" and isinstance(value, Mapping):
                    result["properties"] = {**result.get("properties", {}), **value}
                elif key == "required" and isinstance(value, list):
                    result["required"] = [*result.get("required", []), *value]
                else:
                    result.setdefault(key, value)
    return result


def _schema_type(schema: Mapping[str, Any]) -> str:
    kind = schema.get("type")
    if isinstance(kind, list):
        kinds = [k for k in kind if k != "null"]
        kind = kinds[0] if kinds else "null"
    if isinstance(kind, str):
        return kind
    if "properties" in schema:
        return "object"
    if "items" in schema:
        return "array"
    return "string"


def _clamp_number(value: float, schema: Mapping[str, Any], integer: bool) -> float:
    step = 1.0 if integer else 0.5
    low = schema.get("minimum")
    high = schema.get("maximum")
    xlow = schema.get("exclusiveMinimum")
    xhigh = schema.get("exclusiveMaximum")
    if isinstance(low, (int, float)) and value < low:
        value = float(math.ceil(low) if integer else low)
    if isinstance(xlow, (int, float)) and not isinstance(xlow, bool) and value <= xlow:
        value = float(math.floor(xlow) + 1 if integer else xlow + step)
    if isinstance(high, (int, float)) and value > high:
        value = float(math.floor(high) if integer else high)
    if isinstance(xhigh, (int, float)) and not isinstance(xhigh, bool) and value >= xhigh:
        value = float(math.ceil(xhigh) - 1 if integer else xhigh - step)
    return value


def _string_value(name: str, schema: Mapping[str, Any], ex: Extractor) -> tuple[str, bool]:
    fmt = schema.get("format")
    value: str | None = None
    found = False
    if fmt == "date":
        match = _DATE_RE.search(ex.text)
        value, found = (match.group(0), True) if match else ("2025-01-01", False)
    elif fmt == "date-time":
        match = _DATE_RE.search(ex.text)
        value, found = (
            (match.group(0) + "T00:00:00Z", True) if match else ("2025-01-01T00:00:00Z", False)
        )
    elif fmt == "email":
        match = _EMAIL_RE.search(ex.text)
        value, found = (match.group(0), True) if match else ("user@example.com", False)
    elif fmt in ("uri", "url"):
        value = "https://example.com"
    elif fmt == "uuid":
        value = "00000000-0000-4000-8000-000000000000"
    else:
        lowered = name.lower()
        if lowered in _ANSWER_NAMES and ex.answer:
            value, found = ex.answer, True
        elif lowered in _QUERY_NAMES:
            if ex.quoted:
                value, found = ex.quoted[0], True
            elif ex.keywords:
                value, found = ex.keywords, True
        if value is None:
            picked = ex.string()
            if picked is not None:
                value, found = picked, True
            elif ex.answer:
                value = ex.answer
            elif ex.keywords:
                value = ex.keywords
            else:
                value = name or "value"
    min_length = schema.get("minLength")
    max_length = schema.get("maxLength")
    if isinstance(min_length, int) and len(value) < min_length:
        value = value + "x" * (min_length - len(value))
    if isinstance(max_length, int) and len(value) > max_length:
        value = value[:max_length]
    return value, found


def schema_value(
    schema: Any,
    ex: Extractor,
    *,
    root: Mapping[str, Any] | None = None,
    name: str = "",
    fill_optional: bool = True,
    depth: int = 0,
) -> tuple[Any, bool]:
    """A value valid for ``schema``; the flag says whether it came from the prompt.

    Objects get every required property, and the optional ones too when ``fill_optional`` is
    set or when the prompt supplied a value for them.
    """
    root = root if root is not None else (schema if isinstance(schema, Mapping) else {})
    spec = _resolve(schema, root)
    if depth > _MAX_DEPTH:
        return None, False
    if "const" in spec:
        return spec["const"], False
    enum = spec.get("enum")
    if isinstance(enum, list) and enum:
        return ex.enum(enum)
    for key in ("anyOf", "oneOf"):
        options = spec.get(key)
        if isinstance(options, list) and options:
            resolved = [_resolve(o, root) for o in options]
            usable = [o for o in resolved if o.get("type") != "null"] or resolved
            return schema_value(
                usable[0], ex, root=root, name=name, fill_optional=fill_optional, depth=depth + 1
            )
    kind = _schema_type(spec)
    if kind == "object":
        props = spec.get("properties")
        required = spec.get("required")
        required_set = set(required) if isinstance(required, list) else set()
        result: dict[str, Any] = {}
        any_found = False
        if isinstance(props, Mapping):
            for prop, sub in props.items():
                value, found = schema_value(
                    sub,
                    ex,
                    root=root,
                    name=str(prop),
                    fill_optional=fill_optional,
                    depth=depth + 1,
                )
                if fill_optional or prop in required_set or found:
                    result[str(prop)] = value
                any_found = any_found or found
        return result, any_found
    if kind == "array":
        items = spec.get("items", {})
        min_items = spec.get("minItems")
        max_items = spec.get("maxItems")
        count = min_items if isinstance(min_items, int) and min_items > 1 else 1
        if isinstance(max_items, int):
            count = min(count, max_items)
        values = []
        found_any = False
        for _ in range(count):
            value, found = schema_value(
                items, ex, root=root, name=name, fill_optional=fill_optional, depth=depth + 1
            )
            values.append(value)
            found_any = found_any or found
        return values, found_any
    if kind in ("integer", "number"):
        number = ex.number()
        found = number is not None
        default = spec.get("default")
        if number is None:
            number = float(default) if isinstance(default, (int, float)) else 1.0
        integer = kind == "integer"
        number = _clamp_number(number, spec, integer)
        if integer or number.is_integer():
            return round(number), found
        return number, found
    if kind == "boolean":
        return ex.boolean(), False
    if kind == "null":
        return None, False
    return _string_value(name, spec, ex)


def structured_output(schema: Any, text: str, answer: str = "") -> str:
    """JSON text valid for ``schema``, filled from ``text`` (and ``answer`` for answer fields)."""
    value, _ = schema_value(schema, Extractor(text, answer=answer))
    return json.dumps(value, ensure_ascii=False)


def json_object_output(conversation: str, answer: str) -> str:
    """A JSON object for JSON mode: keys quoted in the prompt, else ``{"answer": ...}``."""
    keys: list[str] = []
    for match in QUOTED_RE.finditer(conversation):
        key = next(g for g in match.groups() if g is not None).strip()
        if key.isidentifier() and key not in keys:
            keys.append(key)
    if not keys:
        return json.dumps({"answer": answer}, ensure_ascii=False)
    ex = Extractor(conversation, answer=answer, exclude=keys)
    topic = ex.phrases[0] if ex.phrases else ex.string()
    obj: dict[str, Any] = {}
    for key in keys:
        if key.lower() in _ANSWER_NAMES or topic is None:
            obj[key] = answer
        else:
            obj[key] = f"A {key.replace('_', ' ')} about {topic}"
    return json.dumps(obj, ensure_ascii=False)

"""A small JSON Schema validator for tool arguments and structured output.

It covers what tool and response schemas use in practice (pydantic's and OpenAI's): ``type``
(one or a list), ``enum``, ``const``, ``properties``, ``required``, ``additionalProperties``,
``items``, ``prefixItems``, ``anyOf``/``oneOf``/``allOf``, ``$ref`` into ``$defs``/``definitions``,
numeric and length bounds. Unknown keywords are ignored, as JSON Schema says.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

_TYPES: dict[str, Any] = {
    "string": str,
    "integer": int,
    "number": (int, float),
    "boolean": bool,
    "array": list,
    "object": dict,
    "null": type(None),
}


def _type_ok(value: Any, name: str) -> bool:
    if name in ("integer", "number") and isinstance(value, bool):
        return False
    if name == "integer" and isinstance(value, float):
        return value.is_integer()
    expected = _TYPES.get(name)
    return True if expected is None else isinstance(value, expected)


def _resolve(schema: Mapping[str, Any], root: Mapping[str, Any]) -> Mapping[str, Any]:
    seen = 0
    while "$ref" in schema and seen < 32:
        ref = schema["$ref"]
        if not isinstance(ref, str) or not ref.startswith("#/"):
            return {}
        target: Any = root
        for part in ref[2:].split("/"):
            target = target.get(part.replace("~1", "/").replace("~0", "~"), {}) if isinstance(
                target, Mapping) else {}
        schema = {**target, **{k: v for k, v in schema.items() if k != "$ref"}}
        seen += 1
    return schema


def validate(instance: Any, schema: Mapping[str, Any] | bool,
             root: Mapping[str, Any] | None = None, path: str = "$") -> list[str]:
    """Every way ``instance`` breaks ``schema``, as readable messages with JSON paths."""
    if schema is True or schema == {}:
        return []
    if schema is False:
        return [f"{path}: no value is allowed here"]
    assert isinstance(schema, Mapping)
    root = schema if root is None else root
    schema = _resolve(schema, root)
    errors: list[str] = []

    types = schema.get("type")
    if types is not None:
        names = [types] if isinstance(types, str) else list(types)
        if not any(_type_ok(instance, n) for n in names):
            return [f"{path}: expected {' or '.join(names)}, got {_kind(instance)}"]
    if "const" in schema and instance != schema["const"]:
        errors.append(f"{path}: must be {schema['const']!r}")
    if "enum" in schema and instance not in schema["enum"]:
        errors.append(f"{path}: must be one of {schema['enum']!r}, got {instance!r}")

    for keyword in ("anyOf", "oneOf"):
        options = schema.get(keyword)
        if options and not any(not validate(instance, s, root, path) for s in options):
            errors.append(f"{path}: matches none of the allowed shapes")
    for sub in schema.get("allOf") or []:
        errors.extend(validate(instance, sub, root, path))

    if isinstance(instance, dict):
        errors.extend(_object(instance, schema, root, path))
    elif isinstance(instance, list):
        errors.extend(_array(instance, schema, root, path))
    elif isinstance(instance, str):
        if len(instance) < schema.get("minLength", 0):
            errors.append(f"{path}: shorter than {schema['minLength']} characters")
        if "maxLength" in schema and len(instance) > schema["maxLength"]:
            errors.append(f"{path}: longer than {schema['maxLength']} characters")
    elif isinstance(instance, (int, float)) and not isinstance(instance, bool):
        errors.extend(_bounds(instance, schema, path))
    return errors


def _object(instance: dict[str, Any], schema: Mapping[str, Any], root: Mapping[str, Any],
            path: str) -> list[str]:
    errors = [f"{path}: missing required property {name!r}"
              for name in schema.get("required") or [] if name not in instance]
    properties = schema.get("properties") or {}
    extra = schema.get("additionalProperties", True)
    for key, value in instance.items():
        if key in properties:
            errors.extend(validate(value, properties[key], root, f"{path}.{key}"))
        elif extra is False:
            errors.append(f"{path}: unexpected property {key!r}")
        elif isinstance(extra, Mapping):
            errors.extend(validate(value, extra, root, f"{path}.{key}"))
    return errors


def _array(instance: list[Any], schema: Mapping[str, Any], root: Mapping[str, Any],
           path: str) -> list[str]:
    errors = []
    if len(instance) < schema.get("minItems", 0):
        errors.append(f"{path}: fewer than {schema['minItems']} items")
    if "maxItems" in schema and len(instance) > schema["maxItems"]:
        errors.append(f"{path}: more than {schema['maxItems']} items")
    prefix = schema.get("prefixItems") or []
    for i, item in enumerate(instance):
        sub = prefix[i] if i < len(prefix) else schema.get("items")
        if isinstance(sub, (Mapping, bool)):
            errors.extend(validate(item, sub, root, f"{path}[{i}]"))
    return errors


def _bounds(number: float, schema: Mapping[str, Any], path: str) -> list[str]:
    errors = []
    for key in ("minimum", "maximum", "exclusiveMinimum", "exclusiveMaximum"):
        bound = schema.get(key)
        if not isinstance(bound, (int, float)) or isinstance(bound, bool):
            continue
        ok = {"minimum": number >= bound, "maximum": number <= bound,
              "exclusiveMinimum": number > bound, "exclusiveMaximum": number < bound}[key]
        if not ok:
            errors.append(f"{path}: {number} breaks {key} {bound}")
    return errors


def _kind(value: Any) -> str:
    for name, expected in _TYPES.items():
        if name not in ("number",) and isinstance(value, expected) and not (
                name == "integer" and isinstance(value, bool)):
            return name
    return type(value).__name__

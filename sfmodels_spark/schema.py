"""Structured answers: a JSON Schema for the model, a Spark type for the parsed column.

Users give either; the other is derived. A Spark ``StructType`` becomes a strict JSON Schema (every
field required, no other properties, a nullable field may be null). A JSON Schema becomes the
Spark type its answers parse into: objects with properties are structs, arrays are arrays,
``integer`` is ``bigint``, ``number`` is ``double``; anything a Spark type cannot hold exactly
(an object without properties, a union of different types) is kept as its JSON text.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from pyspark.sql import types as T

from sfmodels_core.errors import InvalidInputError

__all__ = [
    "answer_schemas",
    "json_schema_of",
    "spark_type_of",
]

_MAX_DEPTH = 16
_SIMPLE: dict[type[T.DataType], dict[str, Any]] = {
    T.StringType: {"type": "string"},
    T.BooleanType: {"type": "boolean"},
    T.ByteType: {"type": "integer"},
    T.ShortType: {"type": "integer"},
    T.IntegerType: {"type": "integer"},
    T.LongType: {"type": "integer"},
    T.FloatType: {"type": "number"},
    T.DoubleType: {"type": "number"},
    T.DecimalType: {"type": "number"},
    T.DateType: {"type": "string", "format": "date"},
    T.TimestampType: {"type": "string", "format": "date-time"},
}


def json_schema_of(spark_type: T.DataType, nullable: bool = False) -> dict[str, Any]:
    """The JSON Schema whose values parse into ``spark_type``."""
    schema: dict[str, Any]
    if isinstance(spark_type, T.StructType):
        if not spark_type.fields:
            raise InvalidInputError("a struct for structured output needs at least one field")
        schema = {
            "type": "object",
            "properties": {f.name: json_schema_of(f.dataType, f.nullable)
                           for f in spark_type.fields},
            "required": [f.name for f in spark_type.fields],
            "additionalProperties": False,
        }
    elif isinstance(spark_type, T.ArrayType):
        schema = {"type": "array",
                  "items": json_schema_of(spark_type.elementType, spark_type.containsNull)}
    elif isinstance(spark_type, T.MapType) and isinstance(spark_type.keyType, T.StringType):
        schema = {"type": "object",
                  "additionalProperties": json_schema_of(spark_type.valueType,
                                                         spark_type.valueContainsNull)}
    else:
        simple = next((s for kind, s in _SIMPLE.items() if isinstance(spark_type, kind)), None)
        if simple is None:
            raise InvalidInputError(
                f"structured output cannot use the Spark type {spark_type.simpleString()}")
        schema = dict(simple)
    if nullable:
        schema["type"] = [schema["type"], "null"]
    return schema


def spark_type_of(schema: Mapping[str, Any]) -> T.DataType:
    """The Spark type that answers valid for ``schema`` parse into."""
    if not isinstance(schema, Mapping):
        raise InvalidInputError("schema must be a JSON Schema (a dict) or a Spark StructType")
    spark_type = _convert(schema, schema, 0)
    if not isinstance(spark_type, T.StructType):
        raise InvalidInputError("the schema of a structured answer must describe an object "
                                "with properties")
    return spark_type


def _resolve(schema: Mapping[str, Any], root: Mapping[str, Any]) -> Mapping[str, Any]:
    for _ in range(_MAX_DEPTH):
        ref = schema.get("$ref")
        if not isinstance(ref, str) or not ref.startswith("#/"):
            return schema
        target: Any = root
        for part in ref[2:].split("/"):
            target = target.get(part.replace("~1", "/").replace("~0", "~"), {}) if isinstance(
                target, Mapping) else {}
        schema = {**(target if isinstance(target, Mapping) else {}),
                  **{k: v for k, v in schema.items() if k != "$ref"}}
    return schema


def _types(schema: Mapping[str, Any]) -> list[str]:
    kind = schema.get("type")
    names = [kind] if isinstance(kind, str) else [k for k in kind or [] if isinstance(k, str)]
    if not names:
        if "properties" in schema:
            names = ["object"]
        elif "items" in schema:
            names = ["array"]
        elif isinstance(schema.get("enum"), list) and all(
                isinstance(v, str) for v in schema["enum"]):
            names = ["string"]
    return [n for n in names if n != "null"]


def _convert(schema: Any, root: Mapping[str, Any], depth: int) -> T.DataType:
    if depth > _MAX_DEPTH or not isinstance(schema, Mapping):
        return T.StringType()
    schema = _resolve(schema, root)
    for key in ("anyOf", "oneOf"):
        options = schema.get(key)
        if isinstance(options, list) and options:
            kinds: list[T.DataType] = []
            for option in options:
                if isinstance(option, Mapping) and _resolve(option, root).get("type") == "null":
                    continue
                kind = _convert(option, root, depth + 1)
                if kind not in kinds:
                    kinds.append(kind)
            return kinds[0] if len(kinds) == 1 else T.StringType()
    names = _types(schema)
    if len(names) != 1:
        return T.StringType()
    name = names[0]
    if name == "object":
        properties = schema.get("properties")
        if not isinstance(properties, Mapping) or not properties:
            return T.StringType()
        return T.StructType([T.StructField(str(key), _convert(sub, root, depth + 1), True)
                             for key, sub in properties.items()])
    if name == "array":
        items = schema.get("items")
        return T.ArrayType(_convert(items, root, depth + 1) if isinstance(items, Mapping)
                           else T.StringType(), True)
    atomic: dict[str, T.DataType] = {"integer": T.LongType(), "number": T.DoubleType(),
                                     "boolean": T.BooleanType()}
    return atomic.get(name, T.StringType())


def answer_schemas(schema: Any) -> tuple[dict[str, Any], T.StructType] | None:
    """(the JSON Schema for the model, the Spark type of the parsed answer), from either."""
    if schema is None:
        return None
    if isinstance(schema, T.StructType):
        return json_schema_of(schema), schema
    spark_type = spark_type_of(schema)
    assert isinstance(spark_type, T.StructType)
    return dict(schema), spark_type

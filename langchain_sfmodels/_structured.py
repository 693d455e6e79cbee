"""``ChatSalesforce.with_structured_output``: a bound model and a strict parser.

The model is bound to the JSON protocol (``response_format``) or to one forced tool; the parser
turns the answer into a validated object, or raises ``OutputParserException`` naming what was
wrong (a reply still unusable after the protocol's repair round included): never ``None`` or an
unvalidated dict in place of the object asked for.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from langchain_core.exceptions import OutputParserException
from langchain_core.messages import AIMessage, BaseMessage
from langchain_core.runnables import Runnable, RunnableLambda
from langchain_core.utils.pydantic import is_basemodel_subclass
from typing_extensions import is_typeddict

from ._common import with_raw

if TYPE_CHECKING:
    from langchain_core.language_models import BaseChatModel, LanguageModelInput

METHODS = ("json_schema", "function_calling", "json_mode")


def json_schema_of(schema: Any, strict: bool | None) -> dict[str, Any]:
    """The JSON Schema the reply must fit: LangChain's conversion (titles, descriptions, no
    ``$ref``), or a plain JSON Schema dict as it is."""
    from langchain_core.utils.function_calling import convert_to_json_schema

    try:
        return convert_to_json_schema(schema, strict=strict)
    except ValueError:
        if isinstance(schema, dict) and ("properties" in schema or "type" in schema):
            return dict(schema)
        raise


def _validated(schema: Any, value: Any, text: str) -> Any:
    """``value`` as the user's type reads it: a Pydantic instance (v1 or v2), a TypedDict's
    validated dict; a JSON Schema gives the dict as it is."""
    validate = _checked_by(schema).get("output_validator")
    if validate is None:
        return value
    try:
        return validate(value)
    except Exception as exc:  # pydantic v1 and v2 raise different ValidationError classes
        raise OutputParserException(
            f"The model's JSON does not validate as {getattr(schema, '__name__', schema)}: "
            f"{exc}", llm_output=text) from exc


def _checked_by(schema: Any) -> dict[str, Any]:
    """The call option that has the reply checked by the user's own type (a Pydantic class or a
    TypedDict) in the protocol's repair round: what the type accepts is accepted, what it
    refuses goes back to the model once, as in LlamaIndex."""
    if isinstance(schema, type) and is_basemodel_subclass(schema):
        model: Any = schema
        validate = getattr(model, "model_validate", None) or model.parse_obj
        return {"output_validator": validate}
    if is_typeddict(schema):
        from pydantic import TypeAdapter

        return {"output_validator": TypeAdapter(schema).validate_python}
    return {}


def _problems(message: AIMessage) -> list[str]:
    problems = message.response_metadata.get("protocol_errors")
    return [str(p) for p in problems] if isinstance(problems, list) else []


def json_parser(schema: Any) -> Callable[[BaseMessage], Any]:
    """Reads a JSON-protocol answer (``json_schema`` and ``json_mode``)."""

    def parse(message: BaseMessage) -> Any:
        if not isinstance(message, AIMessage):
            raise OutputParserException(f"expected an AI message, got {type(message).__name__}")
        text = message.text
        if problems := _problems(message):
            raise OutputParserException(
                "The model did not reply with a usable JSON object, even after one repair "
                "round: " + "; ".join(problems), llm_output=text)
        try:
            value = json.loads(text)
        except ValueError as exc:
            raise OutputParserException(f"The reply is not JSON: {exc}", llm_output=text) from exc
        return _validated(schema, value, text)

    return parse


def tool_parser(schema: Any, tool_name: str) -> Callable[[BaseMessage], Any]:
    """Reads a forced-tool answer (``function_calling``): the first call of the tool."""

    def parse(message: BaseMessage) -> Any:
        if not isinstance(message, AIMessage):
            raise OutputParserException(f"expected an AI message, got {type(message).__name__}")
        for call in message.tool_calls:
            if call["name"] == tool_name:
                return _validated(schema, call["args"], json.dumps(call["args"]))
        errors = [str(c.get("error")) for c in message.invalid_tool_calls if c.get("error")]
        errors = errors or _problems(message) or [f"the model did not call {tool_name}"]
        raise OutputParserException(
            f"The model did not call {tool_name} with valid arguments, even after one repair "
            "round: " + "; ".join(errors), llm_output=message.text)

    return parse


def structured_output_runnable(
    llm: BaseChatModel, schema: Any, *, method: str, include_raw: bool, strict: bool | None,
) -> Runnable[LanguageModelInput, Any]:
    from langchain_core.utils.function_calling import convert_to_openai_tool

    if method not in METHODS:
        raise ValueError(f"method must be 'json_schema', 'function_calling' or 'json_mode', "
                         f"got {method!r}")
    if schema is None and method != "json_mode":
        raise ValueError(f"schema is required for method={method!r}")
    trace: dict[str, Any] = {"kwargs": {"method": method, "strict": strict}, "schema": schema}
    bound: Runnable[LanguageModelInput, Any]
    if method == "function_calling":
        tool_name = convert_to_openai_tool(schema)["function"]["name"]
        bound = llm.bind_tools([schema], tool_choice=tool_name, strict=strict,
                               ls_structured_output_format=trace)
        parse = tool_parser(schema, tool_name)
    elif method == "json_schema":
        spec = json_schema_of(schema, strict)
        bound = llm.bind(response_format={"type": "json_schema", "json_schema": {
            "name": spec.get("title") or "output", "schema": spec}},
            ls_structured_output_format=trace, **_checked_by(schema))
        parse = json_parser(schema)
    else:
        options: dict[str, Any] = {"response_format": {"type": "json_object"},
                                   **_checked_by(schema)}
        if schema is not None:
            options["ls_structured_output_format"] = {"kwargs": {"method": method},
                                                      "schema": schema}
        bound = llm.bind(**options)
        parse = json_parser(schema)
    parser = RunnableLambda(parse, name="SalesforceStructuredOutputParser")
    return with_raw(bound, parser) if include_raw else bound | parser

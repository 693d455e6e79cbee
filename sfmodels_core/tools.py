"""Tools: their definitions checked, and tool choice in every spelling, read one way.

Tool definitions are checked before anything is sent, for Databricks chat, the Responses API
and the Salesforce prompted protocol alike (:func:`function_of`, :func:`check_tools`): a list of
objects, each function with a non-empty string name and, if given, ``parameters`` that are a
JSON object. :func:`check_tool_choice` checks a ``tool_choice`` as the wire takes it.

LangChain passes ``"any"``, ``True`` or a tool name; LlamaIndex ``tool_required`` and a name or
an OpenAI-style dict; users write ``"required"`` or ``{"type": "function", ...}``. Both
Databricks (sent natively) and Salesforce (stated by the prompted protocol) read them here
(:func:`normalize_tool_choice`).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from .errors import InvalidInputError

__all__ = [
    "MODES",
    "check_tool_choice",
    "check_tools",
    "function_names",
    "function_of",
    "normalize_tool_choice",
    "wire_tool_choice",
]

MODES = ("auto", "required", "none")


def normalize_tool_choice(choice: Any, names: Sequence[str], *, required: bool = False) -> str:
    """``"auto"``, ``"required"``, ``"none"`` or the name of the one tool that must be called.

    ``None`` means ``"required"`` when ``required`` (LlamaIndex's ``tool_required``), else
    ``"auto"``; ``"any"`` means ``"required"``; ``True`` means the tool when one is bound, else
    ``"required"``; ``False`` means ``"none"``; a dict names a tool like OpenAI's
    ``{"type": "function", "function": {"name": ...}}``. A name that is not a bound tool is
    refused before anything is sent.
    """
    if choice is None:
        return "required" if required else "auto"
    if choice is True:
        return names[0] if len(names) == 1 else "required"
    if choice is False:
        return "none"
    if choice == "any":
        return "required"
    if isinstance(choice, str) and choice in MODES:
        return choice
    name = choice
    if isinstance(choice, Mapping):
        function = choice.get("function")
        name = (function.get("name") if isinstance(function, Mapping) else None) or choice.get(
            "name")
    if isinstance(name, str) and name in names:
        return name
    raise InvalidInputError(
        f"tool_choice must be 'auto', 'none', 'any'/'required', True/False or one of the bound "
        f"tools ({', '.join(names) or 'none bound'}), got {choice!r}")


def wire_tool_choice(choice: Any, names: Sequence[str], *,
                     required: bool = False) -> str | dict[str, Any]:
    """The OpenAI-style ``tool_choice`` value for a chat request."""
    mode = normalize_tool_choice(choice, names, required=required)
    if mode in MODES:
        return mode
    return {"type": "function", "function": {"name": mode}}


# -- definitions ----------------------------------------------------------------------------------
def check_tools(tools: Any) -> list[Any]:
    """``tools`` as a list, if it is a list (or tuple) of objects; each is checked by
    :func:`function_of` where it is used."""
    if isinstance(tools, (str, bytes, Mapping)) or not isinstance(tools, (list, tuple)):
        raise InvalidInputError(
            f"tools must be a list of tool definitions ({{'type': 'function', 'function': "
            f"{{'name': ..., 'parameters': {{...}}}}}}), got {type(tools).__name__}")
    return list(tools)


def function_of(tool: Any, where: str) -> Mapping[str, Any] | None:
    """The function a tool defines, checked: its ``function`` object, or the tool itself when
    the name is at the top (the Responses API's form, and a bare function); None for a tool of
    another ``type`` (a hosted tool), which is sent as it is.

    A function has a non-empty string ``name``; ``parameters``, if given, is a JSON object (a
    JSON Schema); ``description``, if given, is a string.
    """
    if not isinstance(tool, Mapping):
        raise InvalidInputError(f"{where} must be a tool definition (a dict), got "
                                f"{type(tool).__name__}")
    kind = tool.get("type", "function")
    if not isinstance(kind, str) or not kind:
        raise InvalidInputError(f"{where}: type must be a non-empty string, got {kind!r}")
    if kind != "function":
        return None
    if "function" in tool:
        function = tool["function"]
        where = f"{where}.function"
        if not isinstance(function, Mapping):
            raise InvalidInputError(f"{where} must be an object with the function's name and "
                                    f"parameters, got {type(function).__name__}")
    else:
        function = tool
    name = function.get("name")
    if not isinstance(name, str) or not name.strip():
        raise InvalidInputError(f"{where} needs a name, a non-empty string; got {name!r}")
    parameters = function.get("parameters")
    if parameters is not None and not isinstance(parameters, Mapping):
        raise InvalidInputError(f"{where}.parameters must be a JSON Schema object (a dict), "
                                f"got {type(parameters).__name__}")
    description = function.get("description")
    if description is not None and not isinstance(description, str):
        raise InvalidInputError(f"{where}.description must be a string, got "
                                f"{type(description).__name__}")
    return function


def function_names(tools: Any) -> list[str] | None:
    """The names of the function tools among ``tools`` (None when no tools were given);
    nothing is checked here."""
    if not isinstance(tools, (list, tuple)):
        return None
    names = []
    for tool in tools:
        if isinstance(tool, Mapping) and tool.get("type", "function") == "function":
            function = tool.get("function", tool)
            if isinstance(function, Mapping) and isinstance(function.get("name"), str):
                names.append(function["name"])
    return names


def check_tool_choice(choice: Any, names: Sequence[str] | None) -> str | None:
    """Check a wire ``tool_choice``: ``"auto"``, ``"none"``, ``"required"``, or an object with
    a string ``type``: for ``"function"``, naming one of the function tools (``names``; None
    when no tools were given) as ``{"function": {"name": ...}}`` or ``{"name": ...}``. Returns
    the function's name (None for a mode or another type of object)."""
    if isinstance(choice, str):
        if choice not in MODES:
            raise InvalidInputError(
                f"tool_choice must be 'auto', 'none', 'required' or an object naming a "
                f"function ({{'type': 'function', 'function': {{'name': ...}}}}), got "
                f"{choice!r}")
        if choice == "required" and not names:
            raise InvalidInputError("tool_choice='required' was given without tools: pass "
                                    "the tools the model must choose from")
        return None
    if not isinstance(choice, Mapping) or not isinstance(choice.get("type"), str):
        raise InvalidInputError(
            f"tool_choice must be 'auto', 'none', 'required' or an object with a type "
            f"({{'type': 'function', 'function': {{'name': ...}}}}), got {choice!r}")
    if choice["type"] != "function":
        return None
    function = choice.get("function")
    name = function.get("name") if isinstance(function, Mapping) else choice.get("name")
    if not isinstance(name, str) or not name:
        raise InvalidInputError(f"tool_choice names no function: {dict(choice)!r}")
    if names is None or name not in names:
        raise InvalidInputError(
            f"tool_choice names the function {name!r}, which is not among the tools "
            f"({', '.join(names or []) or 'none given'})")
    return name

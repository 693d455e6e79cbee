"""Tool choice: every spelling users and frameworks pass, read one way for both providers.

LangChain passes ``"any"``, ``True`` or a tool name; LlamaIndex ``tool_required`` and a name or
an OpenAI-style dict; users write ``"required"`` or ``{"type": "function", ...}``. Both
Databricks (sent natively) and Salesforce (stated by the prompted protocol) read them here.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from ..errors import InvalidInputError

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

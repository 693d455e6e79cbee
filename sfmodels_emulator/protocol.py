"""How the emulated Salesforce models answer under sfmodels' prompted tool and JSON protocols.

The Models API has no tool or response-format fields, so the client states tools and reply
formats in a system message (see ``sfmodels_core.tool_protocol``). This module reads those
messages the way a capable model would, from the documented text alone, and answers in the
protocol's JSON, reusing the Databricks tool planner and structured-output filler.
"""

from __future__ import annotations

import json
import re
from collections.abc import Mapping, Sequence
from typing import Any

from .text.replies import generate_reply
from .text.structured_output import json_object_output, structured_output
from .text.tool_calls import plan_tool_calls
from .text.turns import Turn

TOOLS_HEADER = "# Tools (sfmodels tool protocol v1)"
JSON_HEADER = "# Reply format (sfmodels JSON protocol v1)"
RESULT_PREFIX = "Tool result"
_RESULT_RE = re.compile(r"^Tool result from [^\n]*:\n", re.MULTILINE)
_NAMED_RE = re.compile(r"You must call the tool '([^']+)'")


def _json_after(text: str, start: int, opener: str) -> Any:
    at = text.find(opener, start)
    if at < 0:
        return None
    try:
        value, _ = json.JSONDecoder().raw_decode(text, at)
    except ValueError:
        return None
    return value


def _tool_choice(instructions: str) -> Any:
    if "must call at least one tool" in instructions:
        return "required"
    if "Do not call any tool" in instructions:
        return "none"
    named = _NAMED_RE.search(instructions)
    if named:
        return {"type": "function", "function": {"name": named.group(1)}}
    return "auto"


def _plain_turns(turns: Sequence[Turn], header: str) -> list[Turn]:
    """The conversation without the protocol text, tool results back in the ``tool`` role."""
    plain: list[Turn] = []
    for role, text in turns:
        if role == "system" and header in text:
            text = text[:text.index(header)].strip()
            if not text:
                continue
        if role == "user" and text.startswith(RESULT_PREFIX):
            for result in _RESULT_RE.split(text):
                if result.strip():
                    plain.append(("tool", result.strip()))
            continue
        if role == "assistant" and text.lstrip().startswith('{"tool_calls"'):
            plain.append(("assistant", ""))  # the model's own calls: their results follow
            continue
        if role == "user" and text.startswith("Your reply could not be used"):
            continue
        plain.append((role, text))
    return plain


def protocol_reply(turns: Sequence[Turn]) -> str | None:
    """The reply under a protocol stated in a system message, or None when there is none."""
    system = next((text for role, text in turns if role == "system" and (
        TOOLS_HEADER in text or JSON_HEADER in text)), None)
    if system is None:
        return None
    if TOOLS_HEADER in system:
        start = system.index(TOOLS_HEADER)
        listed = _json_after(system, start, "[")
        tools = [{"type": "function", "function": t} for t in listed or []
                 if isinstance(t, Mapping)]
        plain = _plain_turns(turns, TOOLS_HEADER)
        plans = plan_tool_calls(tools, _tool_choice(system[start:]), plain)
        if "Call at most one tool per reply." in system[start:]:
            plans = plans[:1]  # as a model that follows the instruction does
        if plans:
            return json.dumps({"tool_calls": [
                {"name": p.name, "arguments": json.loads(p.arguments)} for p in plans]})
        return json.dumps({"final_answer": generate_reply(plain)})
    start = system.index(JSON_HEADER)
    schema = _json_after(system, start, "{")
    plain = _plain_turns(turns, JSON_HEADER)
    answer = generate_reply(plain)
    question = next((text for role, text in reversed(plain) if role == "user"), "")
    if isinstance(schema, Mapping):
        return structured_output(schema, question, answer)
    conversation = "\n".join(text for role, text in plain if role in ("system", "user"))
    return json_object_output(conversation, answer)


__all__ = [
    "JSON_HEADER",
    "RESULT_PREFIX",
    "TOOLS_HEADER",
    "protocol_reply",
]

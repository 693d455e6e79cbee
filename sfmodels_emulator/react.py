"""How the emulated models answer a ReAct prompt (Thought / Action / Action Input / Answer).

ReAct agents (LlamaIndex's ``ReActAgent`` and the like) call no tool API: a system message lists
the tools (``> Tool Name:``, ``Tool Description:``, ``Tool Args:`` with a JSON Schema) and asks
for replies in the ReAct format; each tool result comes back as a message starting with
``Observation:``. This module reads such a conversation the way a capable model would and
answers in that format, with the same deterministic tool planner as the native and prompted
tool calls (``text.plan_tool_calls``): one ``Action`` per reply (calls the planner would make
together are made one reply after the other), then an ``Answer`` from the observations.
"""

from __future__ import annotations

import json
import re
from collections.abc import Mapping, Sequence
from typing import Any

from .text.replies import generate_reply
from .text.tool_calls import plan_tool_calls
from .text.turns import Turn

_TOOL_RE = re.compile(
    r"^> Tool Name: (?P<name>[^\n]+)\nTool Description: (?P<description>.*?)\n"
    r"Tool Args: (?P<args>[^\n]*)$",
    re.MULTILINE | re.DOTALL,
)
_CONTEXT_RE = re.compile(
    r"Here is some context to help you answer the question and plan:\n(?P<context>.*?)"
    r"\n\s*## Output Format",
    re.DOTALL,
)
_MARKS = ("Thought:", "Action:", "Action Input:", "Observation:", "Answer:")
OBSERVATION = "Observation:"


def is_react_prompt(text: str) -> bool:
    """Whether a system message asks for replies in the ReAct format."""
    return all(mark in text for mark in _MARKS)


def react_tools(system: str) -> list[dict[str, Any]]:
    """The tools a ReAct system message lists, as OpenAI-style function tools."""
    tools: list[dict[str, Any]] = []
    for match in _TOOL_RE.finditer(system):
        try:
            parameters = json.loads(match.group("args"))
        except ValueError:
            parameters = None
        if not isinstance(parameters, Mapping):
            parameters = {"type": "object", "properties": {}}
        tools.append({"type": "function", "function": {
            "name": match.group("name").strip(),
            "description": match.group("description").strip(),
            "parameters": parameters,
        }})
    return tools


_RETRY_STARTS = ("Error while parsing the output", "FAILURE: Your previous response")


def _conversation(turns: Sequence[Turn]) -> tuple[list[Turn], list[str]]:
    """The conversation up to the last request, and the observations made for it since."""
    head: list[Turn] = []
    observations: list[str] = []
    for role, text in turns:
        stripped = text.lstrip()
        if role == "system" and is_react_prompt(text):
            context = _CONTEXT_RE.search(text)
            if context is not None and context.group("context").strip():
                head.append(("system", context.group("context").strip()))
        elif role in ("user", "tool") and stripped.startswith(OBSERVATION):
            observations.append(stripped[len(OBSERVATION):].strip())
        elif role == "assistant" or stripped.startswith(_RETRY_STARTS):
            continue  # the agent's own steps (actions, earlier answers) and format reminders
        else:
            head.append((role, text))
            observations = []  # a new request: what came before it is history
    return head, observations


def _answer(answer: str) -> str:
    return ("Thought: I can answer without using any more tools. I'll use the user's language to "
            f"answer\nAnswer: {answer}")


def react_reply(turns: Sequence[Turn]) -> str | None:
    """The ReAct-format reply to a conversation, or None when it is not a ReAct conversation."""
    system = next((text for role, text in turns if role == "system" and is_react_prompt(text)),
                  None)
    if system is None:
        return None
    tools = react_tools(system)
    conversation, observations = _conversation(turns)
    used = 0
    while True:
        plans = plan_tool_calls(tools, "auto", conversation)
        if not plans:
            return _answer(generate_reply(conversation))
        pending = len(observations) - used
        if pending < len(plans):
            plan = plans[pending]
            return ("Thought: The current language of the user is: English. I need to use a tool "
                    f"to help me answer the question.\nAction: {plan.name}\n"
                    f"Action Input: {plan.arguments}")
        # The planner's calls of this round have all been made: their observations are a round.
        conversation.append(("assistant", ""))
        conversation.extend(("tool", o) for o in observations[used:used + len(plans)])
        used += len(plans)


__all__ = [
    "OBSERVATION",
    "is_react_prompt",
    "react_reply",
    "react_tools",
]

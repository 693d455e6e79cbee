"""Tool calls: which of the caller's tools to call for a conversation, honouring
``tool_choice``, in one or several rounds, with arguments that satisfy each tool's parameter
schema."""

from __future__ import annotations

import json
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from .prompt_values import Extractor
from .structured_output import schema_value
from .turns import Turn, last_user
from .words import INSTRUCTION_WORDS, STOPWORDS, content_words, stem

_GENERIC_NAME_WORDS = frozenset({"get", "set", "tool", "function", "fetch", "call", "run", "do"})
_NAME_SPLIT_RE = re.compile(r"[A-Z]?[a-z]+|[A-Z]+(?![a-z])|\d+")


def name_words(name: str) -> set[str]:
    """Words of an identifier such as ``get_weather`` or ``getWeather``."""
    words = {stem(w.lower()) for w in _NAME_SPLIT_RE.findall(name)}
    return {w for w in words if w not in STOPWORDS and w not in _GENERIC_NAME_WORDS}


@dataclass(frozen=True)
class ToolCallPlan:
    name: str
    arguments: str


def _tool_function(tool: Mapping[str, Any]) -> Mapping[str, Any]:
    function = tool.get("function")
    return function if isinstance(function, Mapping) else {}


def _tool_score(tool: Mapping[str, Any], words: set[str]) -> int:
    function = _tool_function(tool)
    name = str(function.get("name", ""))
    description = str(function.get("description", ""))
    name_hits = len(name_words(name) & words)
    described = {
        w for w in content_words(description) if w not in _GENERIC_NAME_WORDS
    } - INSTRUCTION_WORDS
    return 2 * name_hits + len(described & words)


def _single_string_parameter(parameters: Mapping[str, Any]) -> str | None:
    props = parameters.get("properties")
    required = parameters.get("required")
    if not isinstance(props, Mapping) or not isinstance(required, list) or len(required) != 1:
        return None
    sub = props.get(required[0])
    if isinstance(sub, Mapping) and sub.get("type") == "string" and "enum" not in sub:
        return str(required[0])
    return None


_STEP_SPLIT_RE = re.compile(
    r"(?:[,;]\s*|(?<=[.!?])\s*|\s+)(?:and\s+)?(?:then|after that|afterwards)\b,?\s*", re.I
)


def request_steps(text: str) -> list[str]:
    """The steps of a request, in order: "Look up X, then do Y" has two."""
    return [part.strip() for part in _STEP_SPLIT_RE.split(text) if part.strip()]


def _best_tool(tools: Sequence[Mapping[str, Any]], text: str) -> tuple[int, Mapping[str, Any]]:
    words = set(content_words(text))
    ranked = sorted(((_tool_score(t, words), -i, t) for i, t in enumerate(tools)),
                    key=lambda item: (item[0], item[1]), reverse=True)
    return ranked[0][0], ranked[0][2]


def _tool_steps(
    tools: Sequence[Mapping[str, Any]], prompt: str
) -> list[tuple[str, Mapping[str, Any]]]:
    """The steps of the request that a tool serves, each with that tool."""
    steps = []
    for step in request_steps(prompt):
        score, tool = _best_tool(tools, step)
        if score >= 2:
            steps.append((step, tool))
    return steps


def _rounds_after(turns: Sequence[Turn], index: int) -> int:
    """How many rounds of tool results came after turn ``index`` (one run of results each)."""
    rounds, previous = 0, ""
    for role, _ in turns[index + 1 :]:
        if role == "tool" and previous != "tool":
            rounds += 1
        previous = role
    return rounds


def _latest_results(turns: Sequence[Turn]) -> str:
    results: list[str] = []
    for role, text in reversed(turns):
        if role != "tool":
            break
        results.append(text.strip())
    return "\n".join(reversed(results))


def plan_tool_calls(
    tools: Sequence[Mapping[str, Any]],
    tool_choice: Any,
    turns: Sequence[Turn],
) -> list[ToolCallPlan]:
    """Which tools to call for this conversation, with schema-valid JSON arguments.

    ``tool_choice`` ``"none"`` never calls; a named function is always called; ``"required"``
    calls the best-matching tool (after tool results, the best other one); ``"auto"`` calls a
    tool only when the last user message calls for one, and answers in text right after tool
    results.

    A request in steps that tools serve ("Look up the capital of France, then get the weather
    there") is a chain: one step per round of tool results since the request, its arguments
    taken from the step's words and then from the latest results (a value the request itself
    gave to another step is not reused), then the answer.
    """
    if not tools or tool_choice == "none":
        return []
    forced_name: str | None = None
    if isinstance(tool_choice, Mapping):
        forced = tool_choice.get("function")
        if isinstance(forced, Mapping) and isinstance(forced.get("name"), str):
            forced_name = forced["name"]
    required = tool_choice == "required" or forced_name is not None
    last = last_user(turns)
    prompt = turns[last][1] if last >= 0 else ""
    if forced_name is None:
        steps = _tool_steps(tools, prompt)
        if len(steps) > 1:
            done = _rounds_after(turns, last)
            if done < len(steps):
                step, tool = steps[done]
                given = Extractor(prompt).strings
                elsewhere = [v for v in given if v.lower() not in step.lower()]
                results = _latest_results(turns) if done else ""
                return _calls_for(tool, step, results, elsewhere)
            if not required:
                return []
    if not required and turns and turns[-1][0] == "tool":
        return []
    chosen: Mapping[str, Any] | None = None
    if forced_name is not None:
        chosen = next((t for t in tools if _tool_function(t).get("name") == forced_name), None)
    else:
        words = set(content_words(prompt))
        ranked = sorted(((_tool_score(t, words), -i, t) for i, t in enumerate(tools)),
                        key=lambda item: (item[0], item[1]), reverse=True)
        if required and turns and turns[-1][0] == "tool" and len(ranked) > 1:
            # The question's own tool has answered; a call forced now goes to another tool
            # (e.g. the one an agent uses to return its structured answer).
            ranked = ranked[1:]
        score, _, best = ranked[0]
        if score >= 2 or required:
            chosen = best
    if chosen is None:
        return []
    return _calls_for(chosen, prompt)


def _calls_for(
    tool: Mapping[str, Any], prompt: str, results: str = "", exclude: Sequence[str] = ()
) -> list[ToolCallPlan]:
    """Calls of ``tool`` for ``prompt``: arguments from its words, then from ``results``."""
    function = _tool_function(tool)
    name = str(function.get("name", ""))
    parameters = function.get("parameters")
    if not isinstance(parameters, Mapping):
        parameters = {"type": "object", "properties": {}}
    exclude = [name, *name.split("_"), *exclude]
    text = f"{prompt}\n{results}" if results else prompt
    extractor = Extractor(text, exclude=exclude)
    single = _single_string_parameter(parameters)
    if single is not None and re.search(r"\band\b|&", prompt):
        values = [*extractor.quoted, *extractor.capitalized]
        values = list(dict.fromkeys(values))[:4]
        if len(values) >= 2:
            calls = []
            for value in values:
                args, _ = schema_value(
                    parameters, Extractor(text, exclude=exclude), fill_optional=False
                )
                args[single] = value
                calls.append(ToolCallPlan(name, json.dumps(args, ensure_ascii=False)))
            return calls
    args, _ = schema_value(parameters, extractor, fill_optional=False)
    if not isinstance(args, dict):
        args = {}
    return [ToolCallPlan(name, json.dumps(args, ensure_ascii=False))]

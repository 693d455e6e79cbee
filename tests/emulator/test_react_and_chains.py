"""The emulator's answers to ReAct prompts and to requests that need tools in sequence.

Pure functions over ``(role, text)`` turns, shaped as each API delivers them: Databricks with an
empty assistant turn before each round of ``tool`` results, Salesforce with the prompted
protocol's text, LlamaIndex's ReAct agent with ``Observation:`` messages.
"""

from __future__ import annotations

import json
from typing import Any

import pytest

from sfmodels_core.tool_protocol import ToolSpec, render_history, tool_instructions
from sfmodels_emulator.protocol import protocol_reply
from sfmodels_emulator.react import is_react_prompt, react_reply, react_tools
from sfmodels_emulator.text.tool_calls import plan_tool_calls, request_steps


def function(name: str, description: str, **properties: str) -> dict[str, Any]:
    return {"type": "function", "function": {
        "name": name, "description": description,
        "parameters": {"type": "object",
                       "properties": {k: {"type": v} for k, v in properties.items()},
                       "required": list(properties)}}}


CAPITAL = function("capital_of", "Look up the capital city of a country.", country="string")
WEATHER = function("get_weather", "Get the current weather for a city.", city="string")
ADD = function("add", "Add two integers a and b.", a="integer", b="integer")
MULTIPLY = function("multiply", "Multiply two integers a and b.", a="integer", b="integer")
CHAIN = "Look up the capital of France, then get the weather there."


def planned(tools: list[dict[str, Any]], turns: list[tuple[str, str]],
            choice: Any = "auto") -> list[tuple[str, dict[str, Any]]]:
    return [(p.name, json.loads(p.arguments)) for p in plan_tool_calls(tools, choice, turns)]


@pytest.mark.parametrize("text, steps", [
    (CHAIN, ["Look up the capital of France", "get the weather there."]),
    ("Add 2 and 3, and then multiply the result by 4.", ["Add 2 and 3",
                                                         "multiply the result by 4."]),
    ("What is the weather in Rome? Then tell me the time.", ["What is the weather in Rome?",
                                                             "tell me the time."]),
    ("Find the city; after that, book a hotel", ["Find the city", "book a hotel"]),
    ("What is the weather in Rome and Madrid?", ["What is the weather in Rome and Madrid?"]),
])
def test_request_steps(text: str, steps: list[str]) -> None:
    assert request_steps(text) == steps


def test_a_chain_is_planned_one_step_per_round_of_results() -> None:
    tools = [CAPITAL, WEATHER]
    turns = [("user", CHAIN)]
    assert planned(tools, turns) == [("capital_of", {"country": "France"})]
    turns += [("assistant", ""), ("tool", "The capital of France is Paris.")]
    assert planned(tools, turns) == [("get_weather", {"city": "Paris"})]
    turns += [("assistant", ""), ("tool", "Sunny in Paris")]
    assert planned(tools, turns) == []
    # required: after every step, the existing rule (another tool than the question's)
    assert [name for name, _ in planned(tools, turns, "required")] == ["get_weather"]


def test_numbers_of_a_result_feed_the_next_step() -> None:
    turns = [("user", "Add 2 and 3, and then multiply the result by 4.")]
    assert planned([ADD, MULTIPLY], turns) == [("add", {"a": 2, "b": 3})]
    turns += [("assistant", ""), ("tool", "5")]
    assert planned([ADD, MULTIPLY], turns) == [("multiply", {"a": 4, "b": 5})]


def test_a_chain_of_three_steps() -> None:
    turns = [("user", "Add 2 and 3, then multiply the result by 4, then add 1 to the result.")]
    expected = [("add", {"a": 2, "b": 3}), ("multiply", {"a": 4, "b": 5}),
                ("add", {"a": 1, "b": 20})]
    for call, result in zip(expected, ["5", "20", "21"], strict=True):
        assert planned([ADD, MULTIPLY], turns) == [call]
        turns += [("assistant", ""), ("tool", result)]
    assert planned([ADD, MULTIPLY], turns) == []


def test_a_step_no_tool_serves_ends_the_chain() -> None:
    turns = [("user", "What is the weather in Rome? Then tell me if I need a coat.")]
    assert planned([CAPITAL, WEATHER], turns) == [("get_weather", {"city": "Rome"})]
    turns += [("assistant", ""), ("tool", "Rainy in Rome")]
    assert planned([CAPITAL, WEATHER], turns) == []


def test_the_prompted_protocol_plans_the_chain_from_its_text_history() -> None:
    specs = [ToolSpec.from_dict(t) for t in (CAPITAL, WEATHER)]
    instructions = tool_instructions(specs, "auto")
    history: list[dict[str, Any]] = [{"role": "user", "content": CHAIN}]

    def reply() -> dict[str, Any]:
        rendered = render_history(history, instructions)
        text = protocol_reply([(m["role"], m["content"]) for m in rendered])
        assert text is not None
        value: dict[str, Any] = json.loads(text)
        return value

    first = reply()
    assert first == {"tool_calls": [{"name": "capital_of", "arguments": {"country": "France"}}]}
    history += [{"role": "assistant", "content": "", "tool_calls": [
        {"id": "1", "name": "capital_of", "arguments": {"country": "France"}}]},
        {"role": "tool", "tool_call_id": "1", "content": "Paris"}]
    second = reply()
    assert second == {"tool_calls": [{"name": "get_weather", "arguments": {"city": "Paris"}}]}
    history += [{"role": "assistant", "content": "", "tool_calls": [
        {"id": "2", "name": "get_weather", "arguments": {"city": "Paris"}}]},
        {"role": "tool", "tool_call_id": "2", "content": "Sunny in Paris"}]
    assert reply() == {"final_answer": "Based on the tool result: Sunny in Paris"}


# -- ReAct ----------------------------------------------------------------------------------------
REACT_SYSTEM = """You are designed to help with a variety of tasks.

## Tools

You have access to the following tools:
> Tool Name: get_weather
Tool Description: get_weather(city: str) -> str
Get the current weather for a city.
Tool Args: {"properties": {"city": {"title": "City", "type": "string"}}, "required": ["city"], \
"type": "object"}

> Tool Name: capital_of
Tool Description: capital_of(country: str) -> str
Look up the capital city of a country.
Tool Args: {"properties": {"country": {"title": "Country", "type": "string"}}, \
"required": ["country"], "type": "object"}


## Output Format

```
Thought: The current language of the user is: (user's language). I need to use a tool.
Action: tool name (one of get_weather, capital_of) if using a tool.
Action Input: the input to the tool, in a JSON format representing the kwargs
```

```
Observation: tool response
```

```
Thought: I can answer without using any more tools. I'll use the user's language to answer
Answer: [your answer here (In the same language as the user's question)]
```
"""


def test_react_prompts_and_their_tools_are_recognised() -> None:
    assert is_react_prompt(REACT_SYSTEM) and not is_react_prompt("You are helpful.")
    tools = react_tools(REACT_SYSTEM)
    assert [t["function"]["name"] for t in tools] == ["get_weather", "capital_of"]
    assert tools[0]["function"]["description"].endswith("Get the current weather for a city.")
    assert tools[1]["function"]["parameters"]["required"] == ["country"]
    assert react_reply([("system", "You are helpful."), ("user", "hi")]) is None


def test_react_replies_act_then_answer_from_the_observation() -> None:
    turns = [("system", REACT_SYSTEM), ("user", "What is the weather in Berlin?")]
    action = react_reply(turns)
    assert action is not None
    assert action.startswith("Thought: ")
    assert action.endswith('\nAction: get_weather\nAction Input: {"city": "Berlin"}')
    turns += [("assistant", action), ("user", "Observation: Sunny in Berlin")]
    answer = react_reply(turns)
    assert answer == ("Thought: I can answer without using any more tools. I'll use the user's "
                      "language to answer\nAnswer: Based on the tool result: Sunny in Berlin")


def test_react_runs_a_chain_and_parallel_calls_one_reply_at_a_time() -> None:
    turns = [("system", REACT_SYSTEM), ("user", CHAIN)]
    expected = ['Action: capital_of\nAction Input: {"country": "France"}',
                'Action: get_weather\nAction Input: {"city": "Paris"}']
    observations = ["Paris", "Sunny in Paris"]
    for action, observation in zip(expected, observations, strict=True):
        reply = react_reply(turns)
        assert reply is not None and reply.endswith(action)
        turns += [("assistant", reply), ("user", f"Observation: {observation}")]
    assert (react_reply(turns) or "").endswith("Answer: Based on the tool result: Sunny in Paris")
    turns = [("system", REACT_SYSTEM), ("user", "What is the weather in Rome and Madrid?")]
    for city in ("Rome", "Madrid"):
        reply = react_reply(turns)
        assert reply is not None and reply.endswith(f'Action Input: {{"city": "{city}"}}')
        turns += [("assistant", reply), ("user", f"Observation: Sunny in {city}")]
    assert (react_reply(turns) or "").endswith(
        "Answer: Based on the tool result: Sunny in Rome; Sunny in Madrid")


def test_a_new_request_starts_afresh_after_an_earlier_answer() -> None:
    earlier = ("Thought: I need a tool.\nAction: get_weather\nAction Input: {'city': 'Oslo'}\n"
               "Observation: Snow in Oslo\nThought: I can answer.\nAnswer: Snow in Oslo")
    turns = [("system", REACT_SYSTEM), ("user", "What is the weather in Oslo?"),
             ("assistant", earlier), ("user", "And what is the weather in Lima?")]
    reply = react_reply(turns)
    assert reply is not None and reply.endswith('Action Input: {"city": "Lima"}')

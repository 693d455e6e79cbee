"""The prompted tool and JSON protocols, end to end with Salesforce models on the emulator."""

from __future__ import annotations

from typing import Any

import pytest

from sfmodels_core import SalesforceClient
from sfmodels_core.tool_protocol import arun, json_protocol, run, tools_protocol
from sfmodels_emulator import Emulator

MODEL = "sfdc_ai__DefaultOpenAIGPT4OmniMini"
WEATHER = {"type": "function", "function": {
    "name": "get_weather", "description": "Get the current weather in a city",
    "parameters": {"type": "object", "properties": {
        "city": {"type": "string", "description": "the city"},
        "unit": {"type": "string", "enum": ["celsius", "fahrenheit"]}}, "required": ["city"]}}}
ADD = {"type": "function", "function": {
    "name": "add", "description": "Add two integers",
    "parameters": {"type": "object", "properties": {"a": {"type": "integer"},
                                                    "b": {"type": "integer"}},
                   "required": ["a", "b"]}}}


@pytest.fixture
def client(emulator: Emulator) -> SalesforceClient:
    return SalesforceClient(api_key=emulator.mint_salesforce_token(),
                            api_base=emulator.salesforce_api_base, env={})


def send_with(client: SalesforceClient) -> Any:
    return lambda messages: client.chat(MODEL, messages)


def test_a_tool_call_then_an_answer_from_its_result(client: SalesforceClient) -> None:
    messages: list[dict[str, Any]] = [
        {"role": "system", "content": "You are a weather assistant."},
        {"role": "user", "content": "What is the weather in Paris?"}]
    first = run(send_with(client), messages, tools_protocol([WEATHER, ADD]))
    assert not first.repaired
    call = first.reply.tool_calls[0]
    assert call.name == "get_weather" and call.arguments["city"] == "Paris"
    messages += [{"role": "assistant", "content": "", "tool_calls": [
        {"id": call.id, "name": call.name, "arguments": call.arguments}]},
        {"role": "tool", "tool_call_id": call.id, "content": "Sunny and 21 degrees"}]
    final = run(send_with(client), messages, tools_protocol([WEATHER, ADD]))
    assert final.reply.tool_calls == []
    assert "Sunny and 21 degrees" in final.reply.text


@pytest.mark.parametrize("choice, expected", [
    ("auto", "add"), ("required", "add"), ("get_weather", "get_weather"), ("none", None)])
def test_tool_choice_is_followed(client: SalesforceClient, choice: str,
                                 expected: str | None) -> None:
    outcome = run(send_with(client), [{"role": "user", "content": "Please add 2 and 3"}],
                  tools_protocol([WEATHER, ADD], choice))
    names = [c.name for c in outcome.reply.tool_calls]
    assert names == ([expected] if expected else [])
    assert not outcome.reply.errors
    if expected == "add":
        assert outcome.reply.tool_calls[0].arguments == {"a": 2, "b": 3}
    if expected is None:
        assert outcome.reply.text


async def test_structured_output_matches_the_schema(client: SalesforceClient) -> None:
    schema = {"type": "object", "properties": {"name": {"type": "string"},
                                               "age": {"type": "integer"}},
              "required": ["name", "age"]}

    async def send(messages: list[dict[str, str]]) -> Any:
        return await client.achat(MODEL, messages)

    outcome = await arun(send, [{"role": "user", "content": "Ann is 31 years old."}],
                         json_protocol(schema))
    assert not outcome.reply.errors
    assert outcome.reply.value["age"] == 31 and isinstance(outcome.reply.value["name"], str)
    plain = run(send_with(client), [{"role": "user", "content": "Describe Paris"}],
                json_protocol(None))
    assert isinstance(plain.reply.value, dict) and not plain.reply.errors

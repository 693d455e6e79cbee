"""SalesforceLLM under the tool and JSON protocols with scripted replies: tolerant reading, the
one repair round, and what surfaces when a reply is still unusable. No connection is made."""

from __future__ import annotations

import json
from collections.abc import Iterator
from typing import Any

import httpx
import pytest
from llama_index.core.base.llms.types import ChatMessage, ImageBlock, TextBlock, ToolCallBlock
from llama_index.core.prompts import PromptTemplate
from llama_index.core.tools import FunctionTool
from llama_index.core.types import PydanticProgramMode
from llama_index_instrumentation import get_dispatcher
from pydantic import BaseModel, field_validator

from llama_index_sfmodels import ModelReplyError, SalesforceFeedbackHandler, SalesforceLLM
from sfmodels_core.errors import InvalidInputError
from sfmodels_core.salesforce import SalesforceClient
from sfmodels_core.tool_protocol import JSON_HEADER, TOOLS_HEADER

# No host may be reached (event loops may still make their internal socket pair).
pytestmark = pytest.mark.allow_hosts([])

REPAIR = "Your reply could not be used"


def add(a: int, b: int) -> int:
    """Add two integers a and b."""
    return a + b


def get_weather(city: str) -> str:
    """Get the current weather for a city."""
    return f"Sunny in {city}"


TOOLS = [FunctionTool.from_defaults(fn=add), FunctionTool.from_defaults(fn=get_weather)]
GOOD = '{"tool_calls": [{"name": "add", "arguments": {"a": 2, "b": 3}}]}'
BAD = '{"tool_calls": [{"name": "add", "arguments": {"a": "two", "b": 3}}]}'


class Script:
    """A Models API that answers with the given texts in turn and keeps every request body.

    Request n answers with generation id ``gen-n`` and usage (10n prompt, n completion)."""

    def __init__(self, *replies: str) -> None:
        self.replies = list(replies)
        self.bodies: list[dict[str, Any]] = []

    def __call__(self, request: httpx.Request) -> httpx.Response:
        self.bodies.append(json.loads(request.read()))
        n = len(self.bodies)
        return httpx.Response(200, json={"id": f"chat-{n}", "generationDetails": {
            "generations": [{"id": f"gen-{n}", "role": "assistant",
                             "content": self.replies.pop(0),
                             "parameters": {"finish_reason": "stop", "index": 0}}],
            "parameters": {"model": "gpt-4o-mini", "usage": {
                "prompt_tokens": 10 * n, "completion_tokens": n, "total_tokens": 11 * n}}}})

    def last_messages(self) -> list[dict[str, str]]:
        messages: list[dict[str, str]] = self.bodies[-1]["messages"]
        return messages


def scripted(*replies: str, **settings: Any) -> tuple[SalesforceLLM, Script]:
    script = Script(*replies)
    client = SalesforceClient(api_key="t", api_base="https://api.example/einstein/platform/v1",
                              max_retries=0, transport=httpx.MockTransport(script),
                              async_transport=httpx.MockTransport(script))
    return SalesforceLLM(client=client, **settings), script


@pytest.fixture
def recorded() -> Iterator[SalesforceFeedbackHandler]:
    handler = SalesforceFeedbackHandler(api_key="t").register()
    yield handler
    handler.unregister()


# -- tools --------------------------------------------------------------------------------------
def test_tolerant_reading_needs_no_repair() -> None:
    fenced = ('Sure! Here is the call:\n```json\n{"tool_calls": [{"name": "add", '
              '"arguments": "{\\"a\\": 2, \\"b\\": 3}"},]}\n```')
    llm, script = scripted(fenced)
    response = llm.chat_with_tools(TOOLS, user_msg="2+3?")
    (call,) = llm.get_tool_calls_from_response(response)
    assert (call.tool_name, call.tool_kwargs) == ("add", {"a": 2, "b": 3})
    assert response.additional_kwargs["repaired"] is False and len(script.bodies) == 1


def test_a_bad_tool_call_is_repaired_once(recorded: SalesforceFeedbackHandler) -> None:
    llm, script = scripted(BAD, GOOD)
    response = llm.chat_with_tools(TOOLS, user_msg="What is 2 plus 3?")
    (call,) = llm.get_tool_calls_from_response(response)
    assert (call.tool_name, call.tool_kwargs) == ("add", {"a": 2, "b": 3})
    first, second = script.bodies
    assert second["messages"][:2] == first["messages"]
    assert second["messages"][2] == {"role": "assistant", "content": BAD}
    repair = second["messages"][3]
    assert repair["role"] == "user" and repair["content"].startswith(REPAIR)
    assert "$.a: expected integer" in repair["content"]
    extra = response.additional_kwargs
    assert extra["repaired"] is True
    assert (extra["generation_id"], extra["generation_ids"]) == ("gen-2", ["gen-1", "gen-2"])
    assert (extra["prompt_tokens"], extra["completion_tokens"], extra["total_tokens"]) == (
        30, 3, 33)
    assert response.raw["id"] == extra["id"] == "chat-2"
    # feedback refers to the generation that answered; the repaired one is recorded too
    latest = recorded.latest
    assert latest is not None and latest.generation_ids == ["gen-2", "gen-1"]
    assert recorded.find_generation_id(response) == "gen-2"


def test_still_bad_after_the_repair_is_a_clear_error_never_a_call() -> None:
    llm, script = scripted(BAD, BAD)
    response = llm.chat_with_tools(TOOLS, user_msg="What is 2 plus 3?")
    assert len(script.bodies) == 2
    assert not [b for b in response.message.blocks if isinstance(b, ToolCallBlock)]
    (invalid,) = response.additional_kwargs["invalid_tool_calls"]
    assert invalid["name"] == "add" and json.loads(invalid["arguments"]) == {"a": "two", "b": 3}
    assert "$.a: expected integer" in invalid["error"]
    assert response.additional_kwargs["protocol_errors"] == [invalid["error"]]
    for error_on_no_tool_call in (True, False):
        with pytest.raises(ModelReplyError, match="even after one repair round") as caught:
            llm.get_tool_calls_from_response(response, error_on_no_tool_call)
        assert caught.value.problems == [invalid["error"]]
        assert caught.value.body == response.raw
    assert isinstance(caught.value, ValueError)


def test_predict_and_call_does_not_guess() -> None:
    unknown = '{"tool_calls": [{"name": "multiply", "arguments": {"a": 2, "b": 3}}]}'
    llm, script = scripted(unknown, unknown)
    with pytest.raises(ModelReplyError, match="unknown tool 'multiply'; the tools are add"):
        llm.predict_and_call(TOOLS, user_msg="What is 2 times 3?")
    assert len(script.bodies) == 2


def test_prose_instead_of_a_required_call_is_repaired() -> None:
    llm, script = scripted("I would add them: 5.", GOOD)
    response = llm.chat_with_tools(TOOLS, user_msg="2+3?", tool_required=True)
    assert [c.tool_name for c in llm.get_tool_calls_from_response(response)] == ["add"]
    assert "a tool call is required" in script.last_messages()[-1]["content"]


def test_a_forbidden_call_is_never_returned() -> None:
    llm, _ = scripted(GOOD, GOOD)
    response = llm.chat_with_tools(TOOLS, user_msg="2+3?", tool_choice="none")
    with pytest.raises(ModelReplyError, match="no tool may be called now"):
        llm.get_tool_calls_from_response(response, error_on_no_tool_call=False)


def test_parallel_calls_are_repaired_unless_allowed() -> None:
    both = ('{"tool_calls": [{"name": "get_weather", "arguments": {"city": "Paris"}}, '
            '{"name": "get_weather", "arguments": {"city": "Oslo"}}]}')
    one = '{"tool_calls": [{"name": "get_weather", "arguments": {"city": "Paris"}}]}'
    llm, script = scripted(both, one, both, both, both)
    repaired = llm.chat_with_tools(TOOLS, user_msg="Weather in Paris and Oslo?")
    assert [c.tool_kwargs for c in llm.get_tool_calls_from_response(repaired)] == [
        {"city": "Paris"}]
    assert repaired.additional_kwargs["repaired"] is True
    assert "at most one tool per reply" in script.bodies[1]["messages"][-1]["content"]
    # still several after the repair round: an error, never the first call kept silently
    failed = llm.chat_with_tools(TOOLS, user_msg="Weather in Paris and Oslo?")
    with pytest.raises(ModelReplyError, match="at most one tool"):
        llm.get_tool_calls_from_response(failed)
    two = llm.chat_with_tools(TOOLS, user_msg="Weather in Paris and Oslo?",
                              allow_parallel_tool_calls=True)
    assert len(llm.get_tool_calls_from_response(two)) == 2


def test_stop_cuts_the_final_answer_not_the_protocol_json() -> None:
    llm, _ = scripted('{"final_answer": "It is sunny. Anything else?"}',
                      '{"tool_calls": [{"name": "get_weather", "arguments": {"city": "Nice"}}]}',
                      stop=[" Anything", "Nice"])
    answer = llm.chat_with_tools(TOOLS, user_msg="Weather?")
    assert answer.message.content == "It is sunny."
    assert answer.additional_kwargs["finish_reason"] == "stop"
    call = llm.chat_with_tools(TOOLS, user_msg="Weather in Nice?")
    assert llm.get_tool_calls_from_response(call)[0].tool_kwargs == {"city": "Nice"}


def test_history_from_other_integrations_round_trips() -> None:
    """Tool calls kept in additional_kwargs (as OpenAI-style integrations store them)."""
    llm, script = scripted('{"final_answer": "It is 5."}')
    history = [
        ChatMessage(role="user", content="What is 2 plus 3?"),
        ChatMessage(role="assistant", content="", additional_kwargs={"tool_calls": [
            {"id": "c1", "type": "function",
             "function": {"name": "add", "arguments": '{"a": 2, "b": 3}'}}]}),
        ChatMessage(role="tool", content="5", additional_kwargs={"tool_call_id": "c1"}),
    ]
    response = llm.chat_with_tools(TOOLS, chat_history=history)
    assert response.message.content == "It is 5."
    system, user, assistant, result = script.last_messages()
    assert user == {"role": "user", "content": "What is 2 plus 3?"}
    assert system["content"].startswith(TOOLS_HEADER)
    assert json.loads(assistant["content"]) == {"tool_calls": [
        {"name": "add", "arguments": {"a": 2, "b": 3}}]}
    assert result == {"role": "user",
                      "content": 'Tool result from add called with {"a": 2, "b": 3}:\n5'}


def test_media_is_refused_before_sending() -> None:
    llm, script = scripted()
    image = ChatMessage(role="user", blocks=[TextBlock(text="What is this?"),
                                             ImageBlock(url="https://example.com/a.png")])
    with pytest.raises(InvalidInputError, match="image block"):
        llm.chat_with_tools(TOOLS, chat_history=[image])
    assert script.bodies == []


async def test_async_repair_matches_sync() -> None:
    llm, script = scripted(BAD, GOOD, BAD, BAD)
    response = await llm.achat_with_tools(TOOLS, user_msg="What is 2 plus 3?")
    assert llm.get_tool_calls_from_response(response)[0].tool_kwargs == {"a": 2, "b": 3}
    assert response.additional_kwargs["generation_ids"] == ["gen-1", "gen-2"]
    with pytest.raises(ModelReplyError):
        await llm.apredict_and_call(TOOLS, user_msg="What is 2 plus 3?")
    assert len(script.bodies) == 4
    assert script.bodies[1]["messages"][-1]["content"].startswith(REPAIR)


# -- structured output --------------------------------------------------------------------------
class City(BaseModel):
    """A city and where it is."""

    name: str
    country: str
    population: int

    @field_validator("name")
    @classmethod
    def capitalised(cls, value: str) -> str:
        if not value[:1].isupper():
            raise ValueError("a city name starts with a capital letter")
        return value


PROMPT = PromptTemplate("{text}\nExtract the city.")
PARIS = '{"name": "Paris", "country": "France", "population": 2100000}'


def test_structured_predict_states_the_schema() -> None:
    llm, script = scripted("Here it is:\n```json\n" + PARIS + "\n```")
    city = llm.structured_predict(City, PROMPT, text="Paris, France: 2.1M people.")
    assert city == City(name="Paris", country="France", population=2100000)
    system, user = script.last_messages()
    assert system["role"] == "system" and system["content"].startswith(JSON_HEADER)
    assert '"population"' in system["content"] and '"required"' in system["content"]
    assert user == {"role": "user", "content": "Paris, France: 2.1M people.\nExtract the city."}


def test_bad_json_is_repaired_once(recorded: SalesforceFeedbackHandler) -> None:
    llm, script = scripted('{"name": "Paris", "country": "France"}', PARIS)
    city = llm.structured_predict(City, PROMPT, text="Paris")
    assert city.population == 2100000
    repair = script.last_messages()[-1]["content"]
    assert repair.startswith(REPAIR) and "population" in repair
    latest = recorded.latest
    assert latest is not None and latest.generation_ids == ["gen-2", "gen-1"]


def test_pydantic_validators_take_part_in_the_repair() -> None:
    llm, script = scripted(PARIS.replace("Paris", "paris"), PARIS)
    assert llm.structured_predict(City, PROMPT, text="paris").name == "Paris"
    assert "$.name: Value error, a city name starts with a capital letter" in (
        script.last_messages()[-1]["content"])


def test_bad_twice_names_the_problem() -> None:
    llm, script = scripted("Paris is in France.", '{"name": "Paris", "country": "France"}')
    with pytest.raises(ModelReplyError, match="did not reply with a valid City, even after one "
                                              "repair round") as caught:
        llm.structured_predict(City, PROMPT, text="Paris")
    assert "population" in str(caught.value)
    assert len(script.bodies) == 2


async def test_async_structured_predict_repairs_and_fails_the_same_way() -> None:
    llm, script = scripted("no JSON here", PARIS, "nope", "still nope")
    city = await llm.astructured_predict(City, PROMPT, text="Paris")
    assert city.name == "Paris"
    with pytest.raises(ModelReplyError, match="the reply holds no JSON object"):
        await llm.astructured_predict(City, PROMPT, text="Paris")
    assert len(script.bodies) == 4


def test_another_program_mode_is_honoured() -> None:
    llm, script = scripted(PARIS, pydantic_program_mode=PydanticProgramMode.LLM)
    assert llm.structured_predict(City, PROMPT, text="Paris").name == "Paris"
    assert JSON_HEADER not in json.dumps(script.bodies)


def test_structured_calls_fire_one_chat_event_each() -> None:
    from .conftest import EventLog

    log = EventLog()
    dispatcher = get_dispatcher()
    dispatcher.add_event_handler(log)
    try:
        llm, _ = scripted("{}", PARIS)
        llm.structured_predict(City, PROMPT, text="Paris")
    finally:
        dispatcher.event_handlers = [h for h in dispatcher.event_handlers if h is not log]
    (end,) = [e for e in log.events if type(e).__name__ == "LLMChatEndEvent"]
    assert end.response.additional_kwargs["generation_ids"] == ["gen-1", "gen-2"]
    assert end.response.additional_kwargs["structured_output"] == json.loads(PARIS)

"""ChatSalesforce tools and structured output over the prompted protocol.

Against the emulator (which answers under the protocol): agent loops, ``tool_choice``, the three
structured-output methods, streaming and feedback. Against scripted replies (no sockets): what a
well-behaved model never shows, i.e. tolerant reading, the one repair round with the problem
named, summed usage and both generation ids, and invalid calls or parser errors, never a guessed
call or object, when the second reply is no better.
"""

from __future__ import annotations

import json
import uuid
from typing import TYPE_CHECKING, Any

import httpx
import pytest
from langchain_core.callbacks import BaseCallbackHandler
from langchain_core.exceptions import OutputParserException
from langchain_core.messages import (
    AIMessage,
    AIMessageChunk,
    BaseMessage,
    HumanMessage,
    SystemMessage,
    ToolMessage,
)
from langchain_core.prompts import ChatPromptTemplate
from langchain_core.runnables import Runnable
from langchain_core.tools import tool
from pydantic import BaseModel, Field, field_validator
from typing_extensions import TypedDict

from langchain_sfmodels import ChatSalesforce, SalesforceFeedbackHandler
from sfmodels_core import SalesforceClient
from sfmodels_core.errors import InvalidInputError
from sfmodels_core.tool_protocol import JSON_HEADER, TOOLS_HEADER

from .fakes import FakeService, salesforce_client, sf_chat

if TYPE_CHECKING:
    from sfmodels_emulator import Emulator


def salesforce(emulator: Emulator) -> dict[str, Any]:
    return {"api_key": emulator.mint_salesforce_token(),
            "api_base": emulator.salesforce_api_base}


class _Recorder(httpx.HTTPTransport):
    """Sends to the emulator and keeps the JSON bodies of what was sent."""

    def __init__(self) -> None:
        super().__init__()
        self.bodies: list[Any] = []

    def handle_request(self, request: httpx.Request) -> httpx.Response:
        self.bodies.append(json.loads(request.read() or b"null"))
        return super().handle_request(request)


def recorded(emulator: Emulator) -> tuple[ChatSalesforce, _Recorder]:
    """A model whose sync requests to the emulator are recorded."""
    recorder = _Recorder()
    client = SalesforceClient(transport=recorder, max_retries=0, **salesforce(emulator))
    return ChatSalesforce(client=client), recorder


@tool
def get_weather(city: str) -> str:
    """Get the current weather in a city."""
    return f"It is 21 degrees and sunny in {city}."


@tool
def get_time(city: str) -> str:
    """Get the local time in a city."""
    return f"It is 10:00 in {city}."


def add(a: int, b: int) -> int:
    """Add two integers."""
    return a + b


class Person(BaseModel):
    """A person mentioned in the text."""

    name: str = Field(description="The person's name")
    age: int = Field(description="The person's age in years")


class PersonDict(TypedDict):
    """A person mentioned in the text."""

    name: str
    age: int


class Contact(BaseModel):
    """Only strings: JSON mode promises a JSON object, not the schema's types."""

    name: str
    age: str


QUESTION = "Alice Smith is 42 years old. Return a JSON object with 'name' and 'age' keys."


# -- agent loops against the emulator -------------------------------------------------------------
def _run_agent(llm: Runnable[Any, BaseMessage], question: str) -> list[BaseMessage]:
    tools = {"get_weather": get_weather, "get_time": get_time}
    messages: list[BaseMessage] = [SystemMessage("You are a travel assistant."),
                                   HumanMessage(question)]
    for _ in range(4):
        answer = llm.invoke(messages)
        assert isinstance(answer, AIMessage)
        messages.append(answer)
        if not answer.tool_calls:
            return messages
        for call in answer.tool_calls:
            messages.append(tools[call["name"]].invoke(call))
    raise AssertionError("the agent did not finish")


def test_agent_loop_calls_the_tool_and_answers_from_its_result(emulator: Emulator) -> None:
    chat, recorder = recorded(emulator)
    messages = _run_agent(chat.bind_tools([get_weather, get_time]),
                          "What is the weather in Paris?")
    call_message = messages[2]
    assert isinstance(call_message, AIMessage) and call_message.content == ""
    call = call_message.tool_calls[0]
    assert (call["name"], call["args"], call["type"]) == ("get_weather", {"city": "Paris"},
                                                          "tool_call")
    assert call["id"] and call["id"].startswith("call_")
    assert call_message.response_metadata["finish_reason"] == "tool_calls"
    result = messages[3]
    assert isinstance(result, ToolMessage) and result.tool_call_id == call["id"]
    final = messages[-1]
    assert isinstance(final, AIMessage) and not final.tool_calls
    assert "21 degrees and sunny in Paris" in final.text
    # The API saw three roles only: the call and its result were written out as text.
    sent = recorder.bodies[-1]["messages"]
    assert [m["role"] for m in sent] == ["system", "user", "assistant", "user"]
    assert sent[0]["content"].startswith("You are a travel assistant.\n\n" + TOOLS_HEADER)
    assert json.loads(sent[2]["content"]) == {
        "tool_calls": [{"name": "get_weather", "arguments": {"city": "Paris"}}]}
    assert sent[3]["content"] == ('Tool result from get_weather called with {"city": "Paris"}:\n'
                                  "It is 21 degrees and sunny in Paris.")


async def test_agent_loop_async_and_streamed(emulator: Emulator) -> None:
    llm = ChatSalesforce(**salesforce(emulator)).bind_tools([get_weather])
    messages: list[BaseMessage] = [HumanMessage("What is the weather in Rome?")]
    chunks = [c async for c in llm.astream(messages)]
    assert len(chunks) == 1  # the API does not stream: one last chunk holds everything
    chunk = chunks[0]
    assert isinstance(chunk, AIMessageChunk) and chunk.chunk_position == "last"
    assert chunk.tool_call_chunks[0]["name"] == "get_weather"
    assert json.loads(chunk.tool_call_chunks[0]["args"] or "") == {"city": "Rome"}
    assert chunk.tool_calls[0]["args"] == {"city": "Rome"}
    assert chunk.usage_metadata and chunk.usage_metadata["total_tokens"] > 0
    messages += [chunk, await get_weather.ainvoke(chunk.tool_calls[0])]
    final = await llm.ainvoke(messages)
    assert "21 degrees and sunny in Rome" in final.text and not final.tool_calls


def test_create_agent_uses_the_tool(emulator: Emulator) -> None:
    agents = pytest.importorskip("langchain.agents", reason="langchain is not installed")
    agent = agents.create_agent(ChatSalesforce(**salesforce(emulator)), tools=[get_weather])
    state = agent.invoke({"messages": [HumanMessage("What is the weather in Oslo?")]})
    messages = state["messages"]
    assert any(isinstance(m, ToolMessage) for m in messages)
    assert "21 degrees and sunny in Oslo" in messages[-1].text


# -- tool_choice ----------------------------------------------------------------------------------
def test_tool_choice_variants_against_the_emulator(emulator: Emulator) -> None:
    llm = ChatSalesforce(**salesforce(emulator))
    both = [get_weather, get_time]
    auto = llm.bind_tools(both)
    assert not auto.invoke("Hello there").tool_calls  # nothing to do: a final answer
    assert auto.invoke("What is the weather in Paris?").tool_calls[0]["name"] == "get_weather"
    for choice in ("any", "required"):
        assert llm.bind_tools(both, tool_choice=choice).invoke("Hello there").tool_calls
    named = llm.bind_tools(both, tool_choice="get_time").invoke("Weather in Paris please")
    assert [c["name"] for c in named.tool_calls] == ["get_time"]
    forced = llm.bind_tools([get_time], tool_choice=True).invoke("Hello")
    assert [c["name"] for c in forced.tool_calls] == ["get_time"]
    none = llm.bind_tools(both, tool_choice="none").invoke("What is the weather in Paris?")
    assert not none.tool_calls and none.text


@pytest.mark.parametrize("choice, sentence", [
    (None, "Call tools when they help you answer; otherwise answer directly."),
    ("auto", "Call tools when they help you answer; otherwise answer directly."),
    ("any", "You must call at least one tool now; do not answer directly."),
    ("required", "You must call at least one tool now; do not answer directly."),
    ("add", "You must call the tool 'add' now; do not answer directly."),
    (True, "You must call the tool 'add' now; do not answer directly."),
    ("none", "Do not call any tool now: answer directly with a final answer."),
])
def test_tool_choice_changes_the_instruction(choice: Any, sentence: str) -> None:
    service = FakeService(sf_chat('{"final_answer": "done"}'))
    llm = ChatSalesforce(client=salesforce_client(service))
    tools: list[Any] = [add] if choice is True else [add, get_time]
    answer = llm.bind_tools(tools, tool_choice=choice).invoke("hi")
    system = service.bodies()[0]["messages"][0]
    assert system["role"] == "system" and system["content"].startswith(TOOLS_HEADER)
    assert sentence in system["content"]
    if choice in (None, "auto", "none"):
        assert answer.content == "done" and not answer.invalid_tool_calls


def test_tool_choice_and_tools_are_checked_before_anything_is_sent() -> None:
    service = FakeService(sf_chat())
    llm = ChatSalesforce(client=salesforce_client(service))
    with pytest.raises(ValueError, match="one of the bound tools"):
        llm.bind_tools([add], tool_choice="multiply")
    with pytest.raises(InvalidInputError, match="without tools"):
        llm.invoke("hi", tool_choice="any")
    with pytest.raises(InvalidInputError, match="cannot be combined"):
        llm.bind_tools([add]).invoke("hi", response_format={"type": "json_object"})
    with pytest.raises(InvalidInputError, match="response_format must be"):
        llm.invoke("hi", response_format={"type": "xml"})
    assert service.requests == []
    # No tools bound: a plain call, with no protocol text.
    llm.bind_tools([]).invoke("hi")
    assert service.bodies()[0]["messages"] == [{"role": "user", "content": "hi"}]


# -- scripted replies: tolerant reading, one repair round, then invalid calls ----------------------
def _scripted(*texts: str) -> tuple[FakeService, ChatSalesforce]:
    service = FakeService()
    service.replies = [sf_chat(text, generation_id=f"gen-{i}", response_id=f"chatcmpl-{i}")
                       for i, text in enumerate(texts)]
    return service, ChatSalesforce(client=salesforce_client(service))


@pytest.mark.parametrize("reply", [
    'Sure! ```json\n{"tool_calls": [{"name": "add", "arguments": {"a": 1, "b": 2,}}]}\n```',
    "{'name': 'add', 'arguments': {'a': 1, 'b': 2}}",
    '{"tool_calls": [{"type": "function", "function": {"name": "add", '
    '"arguments": "{\\"a\\": 1, \\"b\\": 2}"}}]}',
])
def test_what_real_models_write_is_read_without_a_repair(reply: str) -> None:
    service, llm = _scripted(reply)
    message = llm.bind_tools([add]).invoke("What is 1 + 2?")
    assert [(c["name"], c["args"]) for c in message.tool_calls] == [("add", {"a": 1, "b": 2})]
    assert len(service.requests) == 1 and message.response_metadata["repaired"] is False


def test_bad_arguments_are_repaired_once_with_the_error_shown() -> None:
    service, llm = _scripted(
        '{"tool_calls": [{"name": "add", "arguments": {"a": "one", "b": 2}}]}',
        '{"tool_calls": [{"name": "add", "arguments": {"a": 1, "b": 2}}]}')
    message = llm.bind_tools([add]).invoke("What is 1 + 2?")
    assert [(c["name"], c["args"]) for c in message.tool_calls] == [("add", {"a": 1, "b": 2})]
    assert message.invalid_tool_calls == []
    first, second = service.bodies()
    assert second["messages"][:2] == first["messages"]
    assert second["messages"][2] == {"role": "assistant", "content": (
        '{"tool_calls": [{"name": "add", "arguments": {"a": "one", "b": 2}}]}')}
    repair = second["messages"][3]
    assert repair["role"] == "user" and repair["content"].startswith("Your reply could not be used")
    assert "arguments of add do not fit its schema: $.a: expected integer, got string" in \
        repair["content"]
    metadata = message.response_metadata
    assert metadata["repaired"] is True and "protocol_errors" not in metadata
    assert metadata["generation_id"] == "gen-1" and metadata["generation_ids"] == ["gen-0", "gen-1"]
    assert message.id == "chatcmpl-1"
    assert message.usage_metadata == {"input_tokens": 10, "output_tokens": 14,
                                      "total_tokens": 24}


def test_bad_twice_gives_invalid_tool_calls_with_the_error() -> None:
    bad = '{"tool_calls": [{"name": "add", "arguments": {"a": "one"}}]}'
    service, llm = _scripted(bad, bad)
    message = llm.bind_tools([add]).invoke("What is 1 + 2?")
    assert message.tool_calls == []
    [invalid] = message.invalid_tool_calls
    assert invalid["name"] == "add" and invalid["args"] == '{"a": "one"}'
    assert invalid["id"] and invalid["type"] == "invalid_tool_call"
    assert "$.a: expected integer, got string" in (invalid["error"] or "")
    assert "missing required property 'b'" in (invalid["error"] or "")
    assert message.response_metadata["protocol_errors"] == [invalid["error"]]
    assert len(service.requests) == 2  # one repair round, no more


@pytest.mark.parametrize("replies, choice, error", [
    (["I think it is 3.", "It is 3."], "any", "a tool call is required"),
    (['{"tool_calls": [{"name": "get_time", "arguments": {"city": "Oslo"}}]}'] * 2, "add",
     "the tool 'add' must be called"),
    (['{"tool_calls": [{"name": "add", "arguments": {"a": 1, "b": 2}}]}'] * 2, "none",
     "no tool may be called now"),
    (['{"tool_calls": [{"name": "multiply", "arguments": {}}]}'] * 2, "auto",
     "unknown tool 'multiply'"),
    (["not json {", "still not json"], "any", "a tool call is required"),
])
def test_a_reply_still_wrong_after_the_repair_is_never_a_valid_call(
        replies: list[str], choice: str, error: str) -> None:
    service, llm = _scripted(*replies)
    message = llm.bind_tools([add, get_time], tool_choice=choice).invoke("What is 1 + 2?")
    assert message.tool_calls == [] and len(service.requests) == 2
    assert message.invalid_tool_calls and all(
        error in (c["error"] or "") for c in message.invalid_tool_calls)
    assert any(error in p for p in message.response_metadata["protocol_errors"])


def test_a_plain_answer_is_a_final_answer_when_calls_are_optional() -> None:
    service, llm = _scripted("It is 3.")
    message = llm.bind_tools([add]).invoke("What is 1 + 2?")
    assert message.content == "It is 3." and not message.tool_calls
    assert not message.invalid_tool_calls and len(service.requests) == 1


def test_stop_applies_to_the_final_answer_only() -> None:
    _service, llm = _scripted('{"final_answer": "One. Two."}',
                             '{"tool_calls": [{"name": "add", "arguments": {"a": 1, "b": 2}}]}')
    bound = llm.bind_tools([add])
    answer = bound.invoke("count", stop=["Two"])
    assert answer.content == "One. " and answer.response_metadata["finish_reason"] == "stop"
    call = bound.invoke("add", stop=["a"])  # the protocol's JSON is never cut
    assert call.tool_calls[0]["args"] == {"a": 1, "b": 2}


def test_invalid_calls_stay_invalid_when_stream_chunks_are_added_up() -> None:
    bad = '{"tool_calls": [{"name": "add", "arguments": {"a": "one", "b": 2}}]}'
    service, llm = _scripted(bad, bad, bad, bad)
    bound = llm.bind_tools([add])
    [chunk] = list(bound.stream("What is 1 + 2?"))
    assert isinstance(chunk, AIMessageChunk)
    assert chunk.chunk_position == "last" and chunk.tool_calls == []
    [invalid] = chunk.invalid_tool_calls
    assert invalid["args"] == '{"a": "one", "b": 2}' and "$.a" in (invalid["error"] or "")
    # LangChain re-reads tool_call_chunks when chunks are added: the call must not become valid.
    added = chunk + AIMessageChunk(content="")
    assert added.tool_calls == [] and len(added.invalid_tool_calls) == 1
    assert "protocol_errors" in added.response_metadata
    # invoke through the stream (streaming=True) adds the chunks up too.
    streamed = ChatSalesforce(client=llm.client, streaming=True).bind_tools([add])
    message = streamed.invoke("What is 1 + 2?")
    assert message.tool_calls == [] and len(message.invalid_tool_calls) == 1
    assert len(service.requests) == 4


def test_one_call_per_reply_when_parallel_calls_are_off() -> None:
    two = ('{"tool_calls": [{"name": "add", "arguments": {"a": 1, "b": 2}}, '
           '{"name": "add", "arguments": {"a": 3, "b": 4}}]}')
    one = '{"tool_calls": [{"name": "add", "arguments": {"a": 1, "b": 2}}]}'
    service, llm = _scripted(two, one, two, two, two)
    single = llm.bind_tools([add], parallel_tool_calls=False)
    message = single.invoke("1 + 2 and 3 + 4?")
    assert [c["args"] for c in message.tool_calls] == [{"a": 1, "b": 2}]
    bodies = service.bodies()
    assert "Call at most one tool per reply." in bodies[0]["messages"][0]["content"]
    assert "call at most one tool per reply" in bodies[1]["messages"][-1]["content"]
    stubborn = single.invoke("1 + 2 and 3 + 4?")
    assert stubborn.tool_calls == [] and len(stubborn.invalid_tool_calls) == 2
    # Parallel calls are allowed by default, and then several calls are fine.
    assert len(llm.bind_tools([add]).invoke("1 + 2 and 3 + 4?").tool_calls) == 2
    assert "Call at most one tool" not in service.bodies()[-1]["messages"][0]["content"]


async def test_async_repair_matches_sync() -> None:
    service, llm = _scripted('{"tool_calls": [{"name": "add", "arguments": {"a": 1}}]}',
                             '{"tool_calls": [{"name": "add", "arguments": {"a": 1, "b": 2}}]}')
    message = await llm.bind_tools([add]).ainvoke("What is 1 + 2?")
    assert message.tool_calls[0]["args"] == {"a": 1, "b": 2}
    assert message.response_metadata["generation_ids"] == ["gen-0", "gen-1"]
    assert "missing required property 'b'" in service.bodies()[1]["messages"][-1]["content"]


def test_strict_tools_refuse_arguments_the_schema_does_not_list() -> None:
    extra = '{"tool_calls": [{"name": "add", "arguments": {"a": 1, "b": 2, "c": 3}}]}'
    _service, llm = _scripted(extra, extra, extra)
    assert llm.bind_tools([add]).invoke("1 + 2").tool_calls  # extra keys are allowed by default
    strict = llm.bind_tools([add], strict=True).invoke("1 + 2")
    assert strict.tool_calls == []
    assert "unexpected property 'c'" in (strict.invalid_tool_calls[0]["error"] or "")


# -- structured output ----------------------------------------------------------------------------
class _Options(BaseCallbackHandler):
    def __init__(self) -> None:
        self.options: list[Any] = []

    def on_chat_model_start(self, serialized: Any, messages: Any, *,
                            options: dict[str, Any] | None = None, **kwargs: Any) -> None:
        self.options.append(options)


@pytest.mark.parametrize("method", ["json_schema", "function_calling", "json_mode"])
async def test_structured_output_methods(emulator: Emulator, method: str) -> None:
    llm, recorder = recorded(emulator)
    schema = Contact if method == "json_mode" else Person
    structured = llm.with_structured_output(schema, method=method)  # type: ignore[arg-type]
    seen = _Options()
    person = structured.invoke(QUESTION, config={"callbacks": [seen]})
    assert isinstance(person, schema)
    if isinstance(person, Person):
        assert person.age == 42
    trace = seen.options[0]["ls_structured_output_format"]
    assert trace["kwargs"]["method"] == method and trace["schema"]["title"] == schema.__name__
    assert isinstance(await structured.ainvoke(QUESTION), schema)
    streamed = list(structured.stream(QUESTION))
    assert len(streamed) == 1 and isinstance(streamed[0], schema)
    assert isinstance([c async for c in structured.astream(QUESTION)][-1], schema)
    if method != "json_mode":  # json_mode states no schema: a TypedDict's checks could fail
        as_dict = llm.with_structured_output(PersonDict, method=method)  # type: ignore[arg-type]
        assert set(as_dict.invoke(QUESTION)) >= {"name", "age"}
    header = TOOLS_HEADER if method == "function_calling" else JSON_HEADER
    assert all(header in body["messages"][0]["content"] for body in recorder.bodies)


@pytest.mark.parametrize("method", ["json_schema", "function_calling", "json_mode"])
async def test_structured_output_include_raw(emulator: Emulator, method: str) -> None:
    llm = ChatSalesforce(**salesforce(emulator))
    structured = llm.with_structured_output(Person, method=method,  # type: ignore[arg-type]
                                            include_raw=True)
    for out in (structured.invoke(QUESTION), await structured.ainvoke(QUESTION)):
        assert isinstance(out, dict) and isinstance(out["raw"], AIMessage)
        assert out["raw"].response_metadata["generation_id"]
        if method == "json_mode":
            # JSON mode asks for any JSON object: the class is checked when the answer is read.
            assert out["parsed"] is None
            assert isinstance(out["parsing_error"], OutputParserException)
        else:
            assert isinstance(out["parsed"], Person) and out["parsing_error"] is None


def test_structured_output_options_are_checked() -> None:
    llm = ChatSalesforce(client=salesforce_client(FakeService(sf_chat("{}"))))
    with pytest.raises(ValueError, match="method"):
        llm.with_structured_output(Person, method="xml")  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="schema is required"):
        llm.with_structured_output(None)
    with pytest.raises(ValueError, match="Unexpected arguments"):
        llm.with_structured_output(Person, mode="x")


def test_json_mode_without_a_schema_gives_a_dict() -> None:
    service, llm = _scripted('Here: {"greeting": "hello"}')
    assert llm.with_structured_output(None, method="json_mode").invoke("Greet me") == {
        "greeting": "hello"}
    system = service.bodies()[0]["messages"][0]["content"]
    assert system.startswith(JSON_HEADER) and "Schema" not in system


def test_json_schema_is_repaired_once_then_validated() -> None:
    service, llm = _scripted('{"name": "Alice", "age": "forty-two"}',
                             '```json\n{"name": "Alice", "age": 42}\n```')
    out = llm.with_structured_output(Person, include_raw=True).invoke(QUESTION)
    assert isinstance(out, dict)
    assert out == {"raw": out["raw"], "parsed": Person(name="Alice", age=42),
                   "parsing_error": None}
    raw = out["raw"]
    assert raw.content == '{"name": "Alice", "age": 42}'
    assert raw.response_metadata["generation_ids"] == ["gen-0", "gen-1"]
    assert raw.usage_metadata["total_tokens"] == 24
    system, question, _bad, repair = service.bodies()[1]["messages"]
    assert system["content"].startswith(JSON_HEADER) and '"age"' in system["content"]
    assert question == {"role": "user", "content": QUESTION}
    # checked by the user's type (pydantic), so its own words go back to the model
    assert "$.age: Input should be a valid integer" in repair["content"]


@pytest.mark.parametrize("method", ["json_schema", "function_calling"])
async def test_structured_output_bad_twice_raises_or_reports(method: str) -> None:
    bad = ('{"tool_calls": [{"name": "Person", "arguments": {"name": "Alice"}}]}'
           if method == "function_calling" else '{"name": "Alice"}')
    service, llm = _scripted(bad, bad, bad, bad)
    structured = llm.with_structured_output(Person, method=method)  # type: ignore[arg-type]
    with pytest.raises(OutputParserException,
                       match=r"missing required property 'age'|\$\.age: Field required"):
        structured.invoke(QUESTION)
    out = await llm.with_structured_output(
        Person, method=method, include_raw=True).ainvoke(QUESTION)  # type: ignore[arg-type]
    assert out["parsed"] is None  # type: ignore[index]
    assert "even after one repair round" in str(out["parsing_error"])  # type: ignore[index]
    assert len(service.requests) == 4


def test_a_pydantic_validator_the_schema_cannot_express_is_repaired_then_an_error() -> None:
    class Adult(BaseModel):
        name: str
        age: int

        @field_validator("age")
        @classmethod
        def _adult(cls, value: int) -> int:
            if value < 18:
                raise ValueError("must be an adult")
            return value

    service, llm = _scripted('{"name": "Tom", "age": 9}', '{"name": "Tom", "age": 9}')
    out = llm.with_structured_output(Adult, include_raw=True).invoke("Tom is 9.")
    assert out["parsed"] is None  # type: ignore[index]
    assert "must be an adult" in str(out["parsing_error"])  # type: ignore[index]
    assert len(service.requests) == 2  # the validator's objection went back once
    assert "must be an adult" in service.bodies()[1]["messages"][-1]["content"]


# -- feedback under tools -------------------------------------------------------------------------
def test_feedback_records_every_generation_of_a_repaired_answer() -> None:
    replies = iter([
        '{"tool_calls": [{"name": "add", "arguments": {"a": "x", "b": 2}}]}',
        '{"tool_calls": [{"name": "add", "arguments": {"a": 1, "b": 2}}]}'])
    counter = iter(range(100))

    def answer(request: httpx.Request) -> Any:
        if request.url.path.endswith("/feedback"):
            return httpx.Response(202, json={"message": "Feedback received"})
        return sf_chat(next(replies), generation_id=f"gen-{next(counter)}")

    service = FakeService(answer)
    client = salesforce_client(service)
    handler = SalesforceFeedbackHandler(client)
    chain = (ChatPromptTemplate.from_messages([("human", "{q}")])
             | ChatSalesforce(client=client).bind_tools([add]))
    run = uuid.uuid4()
    chain.invoke({"q": "1 + 2?"}, config={"callbacks": [handler], "run_id": run})
    assert handler.find(run).generation_ids == ["gen-1", "gen-0"]  # the answering one first
    handler.submit("GOOD", run_id=run)
    sent = [b["generationId"] for r, b in zip(service.requests, service.bodies(), strict=True)
            if r.url.path.endswith("/feedback")]
    assert sent == ["gen-1", "gen-0"]


async def test_feedback_sees_tool_and_structured_runs(emulator: Emulator) -> None:
    handler = SalesforceFeedbackHandler(api_key=emulator.mint_salesforce_token(),
                                        api_base=emulator.salesforce_api_base)
    llm = ChatSalesforce(**salesforce(emulator))
    run = uuid.uuid4()
    message = llm.bind_tools([get_weather]).invoke(
        "What is the weather in Paris?", config={"callbacks": [handler], "run_id": run})
    assert handler.find(run).generation_ids == [message.response_metadata["generation_id"]]
    handler.submit("GOOD", run_id=run)
    assert emulator.feedback()[-1]["generationId"] == message.response_metadata["generation_id"]

    for structured in (llm.with_structured_output(Person),
                       llm.with_structured_output(Person, method="function_calling")):
        run = uuid.uuid4()
        chunks = [c async for c in structured.astream(
            QUESTION, config={"callbacks": [handler], "run_id": run})]
        assert isinstance(chunks[-1], Person)
        await handler.asubmit("BAD", run_id=run)
        assert emulator.feedback()[-1]["generationId"] == handler.find(run).generation_ids[0]
    assert len(emulator.feedback()) == 3

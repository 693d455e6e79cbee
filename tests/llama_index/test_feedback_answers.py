"""Every answer object LlamaIndex hands a user is rated as the generation whose text it shows.

Chat engines of every mode and every way of calling them, agents, query engines, concurrent
answers with the same text, and the answers that cannot be tied to a generation: real LlamaIndex
objects against the emulator. The generation an answer should rate is read from the LLM end
events of its turn (the model call that ended last), never from the handler.
"""

from __future__ import annotations

import asyncio
import dataclasses
import threading
from collections.abc import AsyncIterator
from typing import TYPE_CHECKING, Any

import pytest
from llama_index.core import Document, Settings, VectorStoreIndex
from llama_index.core.agent.workflow import FunctionAgent, ReActAgent
from llama_index.core.base.llms.types import ChatMessage
from llama_index.core.tools import FunctionTool
from pydantic import BaseModel, Field

from llama_index_sfmodels import (
    DatabricksLLM,
    SalesforceEmbedding,
    SalesforceFeedbackHandler,
    SalesforceLLM,
)
from sfmodels_core.errors import InvalidInputError

from .conftest import EventLog, salesforce_settings

if TYPE_CHECKING:

    from sfmodels_emulator import Emulator

DOCUMENTS = [
    "The Nile is the longest river in Africa. It flows north into the Mediterranean Sea.",
    "Mount Everest is the highest mountain on Earth. Its summit is 8849 metres high.",
    "The Pacific is the largest ocean. It covers about a third of the surface of the Earth.",
]
MODES = ["condense_plus_context", "context", "simple", "condense_question"]
METHODS = ["chat", "achat", "stream_chat", "astream_chat"]
#: What every refusal offers instead.
ALTERNATIVES = ("Response", "StreamingAgentChatResponse", "AgentOutput", "ChatResponse",
                "generation_id=", "no response at all")


@dataclasses.dataclass
class Rig:
    llm: SalesforceLLM
    index: VectorStoreIndex
    handler: SalesforceFeedbackHandler


@pytest.fixture
async def rig(emulator: Emulator, monkeypatch: pytest.MonkeyPatch) -> AsyncIterator[Rig]:
    """An index over Salesforce models and a registered handler sharing the LLM's client; the
    async clients are closed inside the test's event loop."""
    llm = SalesforceLLM(**salesforce_settings(emulator))
    embedding = SalesforceEmbedding(**salesforce_settings(emulator))
    monkeypatch.setattr(Settings, "_llm", None)
    monkeypatch.setattr(Settings, "_embed_model", None)
    Settings.llm, Settings.embed_model = llm, embedding
    index = VectorStoreIndex.from_documents([Document(text=t) for t in DOCUMENTS])
    handler = SalesforceFeedbackHandler(client=llm.client).register()
    yield Rig(llm, index, handler)
    handler.unregister()
    await llm.aclose()
    await embedding.aclose()
    llm.close()
    embedding.close()


def generation_ids(events: EventLog, since: int = 0) -> list[str]:
    """The generations of the model calls that ended, in order, from event ``since`` on."""
    return [e.response.additional_kwargs["generation_id"] for e in events.events[since:]
            if type(e).__name__ in ("LLMChatEndEvent", "LLMCompletionEndEvent")]


def rated(emulator: Emulator) -> list[str]:
    return [f["generationId"] for f in emulator.feedback()]


async def ask(engine: Any, method: str, message: str) -> tuple[Any, str]:
    """Call ``engine.<method>(message)`` and read the answer to the end: (answer, its text)."""
    answer = getattr(engine, method)(message)
    if method.startswith("a"):
        answer = await answer
    if method == "stream_chat":
        return answer, "".join(answer.response_gen)
    if method == "astream_chat":
        return answer, "".join([token async for token in answer.async_response_gen()])
    return answer, str(answer)


# -- chat engines ---------------------------------------------------------------------------------
@pytest.mark.parametrize("method", METHODS)
@pytest.mark.parametrize("mode", MODES)
async def test_a_chat_engine_answer_rates_its_answering_generation(
        rig: Rig, emulator: Emulator, events: EventLog, mode: str, method: str) -> None:
    engine = rig.index.as_chat_engine(chat_mode=mode, similarity_top_k=1)
    first, _ = await ask(engine, method, "How high is Mount Everest?")
    first_turn = generation_ids(events)
    mark = len(events.events)
    # A second turn has history, so the condensing modes condense it in a call of its own.
    second, text = await ask(engine, method, "And which river is the longest in Africa?")
    turn = generation_ids(events, since=mark)
    assert text
    if mode in ("condense_plus_context", "condense_question"):
        assert len(turn) == 2  # the condensed question, then the answer
    else:
        assert len(turn) == 1

    if method.startswith("a"):
        await rig.handler.asubmit("GOOD", response=second)
        await rig.handler.asubmit("BAD", response=first)
    else:
        rig.handler.submit("GOOD", response=second)
        rig.handler.submit("BAD", response=first)
    assert rated(emulator) == [turn[-1], first_turn[-1]]
    if len(turn) == 2:
        assert turn[0] not in rated(emulator)  # never the condensing call


async def test_a_streamed_chat_answer_is_rateable_once_read(rig: Rig, emulator: Emulator,
                                                            events: EventLog) -> None:
    engine = rig.index.as_chat_engine(chat_mode="condense_plus_context", similarity_top_k=1)
    await engine.achat("How high is Mount Everest?")
    answer = await engine.astream_chat("And which ocean is the largest?")
    # Its history writer has not run yet: the answering call has not been made.
    with pytest.raises(InvalidInputError, match="has not been read to the end yet") as refused:
        rig.handler.find(answer)
    assert "Read it first" in str(refused.value)
    condensed = generation_ids(events)[-1]
    assert rig.handler.find_generation_id() == condensed  # the condense call is the latest
    text = "".join([token async for token in answer.async_response_gen()])
    assert "Pacific" in text
    answering = generation_ids(events)[-1]
    assert answering != condensed
    await rig.handler.asubmit("GOOD", response=answer)
    assert rated(emulator) == [answering]


async def test_a_partly_read_query_stream_is_refused(rig: Rig, events: EventLog) -> None:
    answer = rig.index.as_query_engine(similarity_top_k=1, streaming=True).query(
        "How large is the Pacific ocean?")
    tokens = iter(answer.response_gen)
    first = next(tokens)
    with pytest.raises(InvalidInputError, match="not been read to the end"):
        rig.handler.find(answer)
    assert "third" in first + "".join(tokens)
    assert rig.handler.find_generation_id(answer) == generation_ids(events)[-1]


# -- query engines --------------------------------------------------------------------------------
class Height(BaseModel):
    metres: int = Field(description="The height in metres")


async def test_every_kind_of_query_answer(rig: Rig, emulator: Emulator, events: EventLog) -> None:
    answers = [
        rig.index.as_query_engine(similarity_top_k=1).query("How high is Mount Everest?"),
        rig.index.as_query_engine(similarity_top_k=1, output_cls=Height).query(
            "How high is Mount Everest?"),
        await rig.index.as_query_engine(similarity_top_k=1).aquery("Which ocean is largest?")]
    expected = generation_ids(events)
    streamed = rig.index.as_query_engine(similarity_top_k=1, streaming=True)
    answers.append(streamed.query("Which river is the longest in Africa?"))
    assert "Nile" in str(answers[-1])
    expected.append(generation_ids(events)[-1])
    answers.append(await streamed.aquery("How large is the Pacific ocean?"))
    assert "third" in "".join([t async for t in answers[-1].async_response_gen()])
    expected.append(generation_ids(events)[-1])
    assert [type(a).__name__ for a in answers] == [
        "Response", "PydanticResponse", "Response", "StreamingResponse",
        "AsyncStreamingResponse"]
    assert answers[1].response == Height(metres=8849)
    for answer in answers:
        await rig.handler.asubmit("GOOD", response=answer)
    assert rated(emulator) == expected


# -- agents ---------------------------------------------------------------------------------------
def get_weather(city: str) -> str:
    """Get the current weather for a city."""
    return f"Sunny and 22 degrees in {city}"


@pytest.mark.filterwarnings("ignore::DeprecationWarning")  # pydantic, building the workflow
@pytest.mark.parametrize("agent_class", [FunctionAgent, ReActAgent])
@pytest.mark.parametrize("streaming", [False, True])
async def test_an_agent_output_and_its_message_rate_the_final_generation(
        rig: Rig, emulator: Emulator, events: EventLog, agent_class: type[Any],
        streaming: bool) -> None:
    agent = agent_class(tools=[FunctionTool.from_defaults(fn=get_weather)], llm=rig.llm,
                        streaming=streaming)
    output = await agent.run(user_msg="What is the weather in Berlin?")
    assert "Sunny and 22 degrees in Berlin" in str(output.response.content)
    tool_call, answer = generation_ids(events)  # the tool call, then the answer
    await rig.handler.asubmit("GOOD", response=output)
    await rig.handler.asubmit("BAD", response=output.response)
    assert rated(emulator) == [answer, answer]
    assert tool_call not in rated(emulator)


async def test_a_chat_response_and_its_message(rig: Rig) -> None:
    reply = await rig.llm.achat([ChatMessage(role="user", content="Which ocean is largest?")])
    generation_id = reply.additional_kwargs["generation_id"]
    assert rig.handler.find_generation_id(reply) == generation_id
    assert rig.handler.find_generation_id(reply.message) == generation_id
    completion = rig.llm.complete("How high is Mount Everest?")
    assert rig.handler.find_generation_id(completion) == completion.additional_kwargs[
        "generation_id"]


# -- concurrency ----------------------------------------------------------------------------------
WINDOWS = {"alpha": 100_000, "beta": 120_000}


def engines_with_their_own_llm(rig: Rig) -> dict[str, Any]:
    """Two chat engines, each with an LLM of its own (sharing one client) that its model calls
    can be told by: their start events carry its context window."""
    return {name: rig.index.as_chat_engine(
        chat_mode="context", similarity_top_k=1,
        llm=SalesforceLLM(client=rig.llm.client, context_window=window))
        for name, window in WINDOWS.items()}


def generations_by_engine(events: EventLog, since: int) -> dict[str, str]:
    """The generation each engine's LLM made, read from the events; both calls overlapped."""
    starts = [e for e in events.events[since:] if type(e).__name__ == "LLMChatStartEvent"]
    ends = [e for e in events.events[since:] if type(e).__name__ == "LLMChatEndEvent"]
    assert len(starts) == len(ends) == 2
    assert max(e.timestamp for e in starts) < min(e.timestamp for e in ends)  # both in flight
    window = {e.span_id: e.model_dict["context_window"] for e in starts}
    engine = {w: name for name, w in WINDOWS.items()}
    return {engine[window[e.span_id]]: e.response.additional_kwargs["generation_id"]
            for e in ends}


async def test_two_chat_engines_answering_at_once_in_threads(
        rig: Rig, emulator: Emulator, events: EventLog) -> None:
    engines = engines_with_their_own_llm(rig)
    emulator.configure(latency_ms=300)  # both calls are in flight together
    mark = len(events.events)
    answers: dict[str, Any] = {}
    start = threading.Barrier(2)

    def turn(name: str) -> None:
        start.wait()
        answers[name] = engines[name].chat("How high is Mount Everest?")

    threads = [threading.Thread(target=turn, args=(name,)) for name in engines]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    made = generations_by_engine(events, mark)
    assert str(answers["alpha"]) == str(answers["beta"])  # the same text, two generations
    assert made["alpha"] != made["beta"]
    rig.handler.submit("GOOD", response=answers["beta"])
    rig.handler.submit("BAD", response=answers["alpha"])
    assert rated(emulator) == [made["beta"], made["alpha"]]


@pytest.mark.parametrize("method", ["achat", "astream_chat"])
async def test_two_chat_engines_answering_at_once_in_tasks(
        rig: Rig, emulator: Emulator, events: EventLog, method: str) -> None:
    engines = engines_with_their_own_llm(rig)
    emulator.configure(latency_ms=300)
    mark = len(events.events)
    (alpha, alpha_text), (beta, beta_text) = await asyncio.gather(
        *(ask(engines[name], method, "How high is Mount Everest?") for name in WINDOWS))
    made = generations_by_engine(events, mark)
    assert alpha_text == beta_text and made["alpha"] != made["beta"]
    await rig.handler.asubmit("GOOD", response=beta)
    await rig.handler.asubmit("BAD", response=alpha)
    assert rated(emulator) == [made["beta"], made["alpha"]]


# -- nothing of the user's changes ----------------------------------------------------------------
async def test_answers_are_left_as_they_were(rig: Rig, emulator: Emulator) -> None:
    query_engine = rig.index.as_query_engine(similarity_top_k=1)
    engine = rig.index.as_chat_engine(chat_mode="context", similarity_top_k=1)
    with_handler = query_engine.query("How high is Mount Everest?")
    chatted = engine.chat("How high is Mount Everest?")
    reply = rig.llm.chat([ChatMessage(role="user", content="Which ocean is largest?")])
    rig.handler.unregister()
    without = query_engine.query("How high is Mount Everest?")
    engine.reset()
    chatted_without = engine.chat("How high is Mount Everest?")
    reply_without = rig.llm.chat([ChatMessage(role="user", content="Which ocean is largest?")])
    rig.handler.register()

    assert with_handler.metadata == without.metadata
    for node_id, meta in with_handler.metadata.items():  # node id -> that node's metadata
        assert isinstance(node_id, str) and isinstance(meta, dict)
    assert vars(with_handler) == vars(without)
    assert vars(chatted).keys() == vars(chatted_without).keys()
    assert chatted.metadata is None and chatted.response == chatted_without.response
    assert vars(reply).keys() == vars(reply_without).keys()
    assert reply.model_dump().keys() == reply_without.model_dump().keys()
    assert reply.model_extra == reply_without.model_extra
    assert rig.handler.find_generation_id(with_handler) != ""


async def test_a_tag_goes_with_its_answer(rig: Rig) -> None:
    answer = rig.index.as_query_engine(similarity_top_k=1).query("How high is Mount Everest?")
    tags = rig.handler._answers
    assert tags.get(id(answer)) is not None
    answer_id = id(answer)
    del answer  # no cycle holds it: it dies here, and its entry with it
    assert tags.get(answer_id) is None and answer_id not in tags._entries


# -- refusals -------------------------------------------------------------------------------------
async def test_answers_that_cannot_be_tied_to_a_generation_are_refused_precisely(
        rig: Rig, emulator: Emulator, db_llm: DatabricksLLM) -> None:
    engine = rig.index.as_chat_engine(chat_mode="context", similarity_top_k=1)
    rig.handler.unregister()
    before = engine.chat("How high is Mount Everest?")
    rig.handler.register()
    after = engine.chat("And the Nile?")

    with pytest.raises(InvalidInputError) as text_refused:
        rig.handler.submit("GOOD", response=str(after))
    assert str(text_refused.value).startswith(
        "Cannot tell which SalesforceLLM call a str came from: a str is not an answer object, "
        "and text is no identity. Pass instead: a query engine answer (Response,")

    with pytest.raises(InvalidInputError) as old_refused:
        rig.handler.submit("GOOD", response=before)
    message = str(old_refused.value)
    assert message.startswith(
        "Cannot tell which SalesforceLLM call this AgentChatResponse came from: no LlamaIndex "
        "call returned it while this handler was registered (it was made before "
        "handler.register(), built by hand, or taken from inside LlamaIndex, such as a chat "
        "history).")
    assert all(alternative in message for alternative in ALTERNATIVES)

    remembered = engine.chat_history[-1]  # the answer's text, kept in the engine's memory
    assert remembered.content == str(after)
    with pytest.raises(InvalidInputError, match="such as a chat history"):
        rig.handler.submit("GOOD", response=remembered)

    foreign = db_llm.chat([ChatMessage(role="user", content="Which ocean is largest?")])
    with pytest.raises(InvalidInputError) as foreign_refused:
        rig.handler.submit("GOOD", response=foreign)
    message = str(foreign_refused.value)
    assert message.startswith(
        "No SalesforceLLM generation is recorded for this ChatResponse: it was produced without "
        "a SalesforceLLM call")
    assert all(alternative in message for alternative in ALTERNATIVES)
    assert emulator.feedback() == []
    rig.handler.submit("GOOD", response=after)  # what can be rated still is
    assert len(emulator.feedback()) == 1

"""SalesforceFeedbackHandler: generation ids recorded from every kind of call, feedback sent."""

from __future__ import annotations

from collections.abc import Iterator
from typing import TYPE_CHECKING

import pytest
from llama_index.core import Document, Settings, VectorStoreIndex
from llama_index.core.base.llms.types import ChatMessage, ChatResponse
from llama_index.core.base.response.schema import Response
from llama_index.core.callbacks import CallbackManager

from llama_index_sfmodels import SalesforceEmbedding, SalesforceFeedbackHandler, SalesforceLLM
from sfmodels_core.errors import InvalidInputError

from .conftest import EventLog, salesforce_settings

if TYPE_CHECKING:
    from sfmodels_emulator import Emulator

DOCUMENTS = [
    "The Nile is the longest river in Africa. It flows north into the Mediterranean Sea.",
    "Mount Everest is the highest mountain on Earth. Its summit is 8849 metres high.",
    "The Pacific is the largest ocean. It covers about a third of the surface of the Earth.",
]


def ask(text: str) -> list[ChatMessage]:
    return [ChatMessage(role="system", content="Context: " + " ".join(DOCUMENTS)),
            ChatMessage(role="user", content=text)]


@pytest.fixture
def index(sf_llm: SalesforceLLM, emulator: Emulator,
          monkeypatch: pytest.MonkeyPatch) -> Iterator[VectorStoreIndex]:
    embedding = SalesforceEmbedding(**salesforce_settings(emulator))
    monkeypatch.setattr(Settings, "_llm", None)
    monkeypatch.setattr(Settings, "_embed_model", None)
    Settings.llm, Settings.embed_model = sf_llm, embedding
    yield VectorStoreIndex.from_documents([Document(text=t) for t in DOCUMENTS])
    embedding.close()


def generation_ids(events: EventLog) -> list[str]:
    return [e.response.additional_kwargs["generation_id"] for e in events.events
            if type(e).__name__ in ("LLMChatEndEvent", "LLMCompletionEndEvent")]


def test_feedback_through_a_query_engine(index: VectorStoreIndex,
                                         feedback_handler: SalesforceFeedbackHandler,
                                         emulator: Emulator, events: EventLog) -> None:
    query_engine = index.as_query_engine(similarity_top_k=1)
    everest = query_engine.query("How high is Mount Everest?")
    nile = query_engine.query("Which river is the longest in Africa?")
    assert "8849 metres" in str(everest) and "Nile" in str(nile)
    everest_id, nile_id = generation_ids(events)

    result = feedback_handler.submit("GOOD", response=everest, text="Exactly right")
    feedback_handler.submit("BAD", response=nile, source="app")
    feedback_handler.submit("GOOD")  # the latest call
    sent = emulator.feedback()
    assert [(f["generationId"], f["feedback"]) for f in sent] == [
        (everest_id, "GOOD"), (nile_id, "BAD"), (nile_id, "GOOD")]
    assert sent[0]["feedbackText"] == "Exactly right" and sent[0]["source"] == "human"
    assert sent[1]["source"] == "app"
    assert result.generation_id == everest_id and sent[0]["id"] == result.feedback_id
    assert emulator.counters()["feedback"] == 3


def test_streaming_query_engine_response(index: VectorStoreIndex,
                                         feedback_handler: SalesforceFeedbackHandler,
                                         events: EventLog) -> None:
    query_engine = index.as_query_engine(similarity_top_k=1, streaming=True)
    response = query_engine.query("How large is the Pacific ocean?")
    with pytest.raises(InvalidInputError, match="not been read"):
        feedback_handler.find_generation_id(response)
    assert "third" in str(response)
    assert feedback_handler.find_generation_id(response) == generation_ids(events)[-1]


def test_every_kind_of_call_is_recorded(sf_llm: SalesforceLLM,
                                        feedback_handler: SalesforceFeedbackHandler) -> None:
    chat = sf_llm.chat(ask("How high is Mount Everest?"))
    assert feedback_handler.latest.generation_ids == [chat.additional_kwargs["generation_id"]]
    (streamed,) = list(sf_llm.stream_chat(ask("Which ocean is the largest?")))
    assert feedback_handler.find_generation_id() == streamed.additional_kwargs["generation_id"]
    completion = sf_llm.complete("Which river flows into the Mediterranean Sea?")
    (piece,) = list(sf_llm.stream_complete("Tell me about Mount Everest"))
    for response in (chat, streamed, completion, piece):
        assert feedback_handler.find_generation_id(response) == \
            response.additional_kwargs["generation_id"]
    assert feedback_handler.find_generation_id() == piece.additional_kwargs["generation_id"]
    with pytest.raises(InvalidInputError, match="Cannot tell which"):  # text is no identity
        feedback_handler.find_generation_id(chat.message.content)


async def test_async_calls_and_asubmit(asf_llm: SalesforceLLM, emulator: Emulator) -> None:
    handler = SalesforceFeedbackHandler(**salesforce_settings(emulator)).register()
    try:
        chat = await asf_llm.achat(ask("How high is Mount Everest?"))
        assert handler.find_generation_id() == chat.additional_kwargs["generation_id"]
        (streamed,) = [c async for c in await asf_llm.astream_chat(ask("Longest river?"))]
        assert handler.find_generation_id() == streamed.additional_kwargs["generation_id"]
        completion = await asf_llm.acomplete("Which ocean is the largest?")
        (piece,) = [c async for c in await asf_llm.astream_complete("Largest ocean?")]
        assert handler.find_generation_id() == piece.additional_kwargs["generation_id"]
        await handler.asubmit("BAD", response=completion, text="too vague")
        await handler.asubmit("GOOD", response=chat)
        await handler.aclose()
    finally:
        handler.unregister()
    assert [(f["generationId"], f["feedback"]) for f in emulator.feedback()] == [
        (completion.additional_kwargs["generation_id"], "BAD"),
        (chat.additional_kwargs["generation_id"], "GOOD")]


def test_unknown_responses_are_refused(feedback_handler: SalesforceFeedbackHandler,
                                       sf_llm: SalesforceLLM, emulator: Emulator) -> None:
    with pytest.raises(InvalidInputError, match="No SalesforceLLM call has been recorded"):
        feedback_handler.submit("GOOD")
    sf_llm.chat(ask("How high is Mount Everest?"))
    with pytest.raises(InvalidInputError, match="Cannot tell which SalesforceLLM call"):
        feedback_handler.submit("GOOD", response=Response(response="Something else entirely"))
    foreign = ChatResponse(message=ChatMessage(role="assistant", content="hi"))
    with pytest.raises(InvalidInputError, match="built by hand"):
        feedback_handler.submit("GOOD", response=foreign)
    with pytest.raises(InvalidInputError, match="a int is not an answer object"):
        feedback_handler.submit("GOOD", response=42)
    with pytest.raises(InvalidInputError, match="feedback must be"):
        feedback_handler.submit("MEH")
    assert emulator.feedback() == []
    feedback_handler.submit(None, generation_id="explicit-id", text="just a note")
    assert emulator.feedback()[0]["generationId"] == "explicit-id"
    assert emulator.feedback()[0]["feedback"] is None


def test_legacy_callback_manager(emulator: Emulator) -> None:
    handler = SalesforceFeedbackHandler(**salesforce_settings(emulator))
    llm = SalesforceLLM(callback_manager=CallbackManager([handler.callback_handler]),
                        **salesforce_settings(emulator))
    chat = llm.chat(ask("How high is Mount Everest?"))
    assert handler.find_generation_id(chat) == chat.additional_kwargs["generation_id"]
    (piece,) = list(llm.stream_complete("Which ocean is the largest?"))
    assert handler.find_generation_id() == piece.additional_kwargs["generation_id"]
    handler.submit("GOOD")
    assert emulator.feedback()[0]["generationId"] == piece.additional_kwargs["generation_id"]
    llm.close()
    handler.close()


def test_memory_is_bounded(sf_llm: SalesforceLLM) -> None:
    handler = SalesforceFeedbackHandler(client=sf_llm.client, max_runs=2).register()
    try:
        answers = [sf_llm.chat(ask(q)) for q in (
            "How high is Mount Everest?", "Which river is the longest in Africa?",
            "Which ocean is the largest?")]
    finally:
        handler.unregister()
    assert len(handler._log) == 2  # model runs, not keys
    assert handler.latest.generation_ids == [answers[2].additional_kwargs["generation_id"]]


def test_registering_twice_records_once(sf_llm: SalesforceLLM) -> None:
    handler = SalesforceFeedbackHandler(client=sf_llm.client)
    handler.register().register()
    try:
        sf_llm.chat(ask("Which ocean is the largest?"))
    finally:
        handler.unregister()
    assert len(handler._log) == 1
    sf_llm.chat(ask("How high is Mount Everest?"))
    assert len(handler._log) == 1  # unregistered: no longer recording


def test_same_text_answers_are_rated_by_their_own_generation(
        index: VectorStoreIndex, feedback_handler: SalesforceFeedbackHandler, emulator: Emulator,
        events: EventLog) -> None:
    query_engine = index.as_query_engine(similarity_top_k=1)
    first = query_engine.query("How high is Mount Everest?")
    second = query_engine.query("How high is Mount Everest?")
    assert str(first) == str(second)  # the same text, two generations
    first_id, second_id = generation_ids(events)
    assert first_id != second_id
    feedback_handler.submit("BAD", response=second)
    feedback_handler.submit("GOOD", response=first)
    assert [(f["generationId"], f["feedback"]) for f in emulator.feedback()] == [
        (second_id, "BAD"), (first_id, "GOOD")]
    assert first.metadata == second.metadata  # nothing of the handler's is written into them


def test_a_stream_read_token_by_token_and_a_chat_engine_answer(
        index: VectorStoreIndex, feedback_handler: SalesforceFeedbackHandler, emulator: Emulator,
        events: EventLog) -> None:
    streamed = index.as_query_engine(similarity_top_k=1, streaming=True).query(
        "Which river is the longest in Africa?")
    text = "".join(token for token in streamed.response_gen)
    assert "Nile" in text
    stream_id = generation_ids(events)[-1]
    assert feedback_handler.submit("GOOD", response=streamed).generation_ids == [stream_id]

    # A chat engine builds its answer from the text of the synthesizer's: it is rated by the span
    # that returned it, never matched by text.
    chat_engine = index.as_chat_engine(chat_mode="condense_plus_context", similarity_top_k=1)
    answer = chat_engine.chat("How high is Mount Everest?")
    assert "8849" in str(answer)
    feedback_handler.submit("BAD", response=answer)
    assert emulator.feedback()[-1]["generationId"] == generation_ids(events)[-1]


def test_comment_and_user_are_the_same_on_both_providers(
        sf_llm: SalesforceLLM, feedback_handler: SalesforceFeedbackHandler,
        emulator: Emulator) -> None:
    answer = sf_llm.chat(ask("How high is Mount Everest?"))
    feedback_handler.submit("good", response=answer, comment="Spot on", user="ann")
    (sent,) = emulator.feedback()
    assert sent["feedbackText"] == "Spot on" and sent["appFeedback"] == {"user": "ann"}
    with pytest.raises(InvalidInputError, match="not both"):
        feedback_handler.submit("GOOD", response=answer, comment="a", text="b")
    assert len(emulator.feedback()) == 1

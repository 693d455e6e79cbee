"""DatabricksFeedbackHandler: an MLflow span per DatabricksLLM call, ratings as MLflow
assessments, against a real local tracking store."""

from __future__ import annotations

import asyncio
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from typing import TYPE_CHECKING, Any

import pytest
from llama_index.core.chat_engine import SimpleChatEngine
from llama_index.core.llms import ChatMessage

from llama_index_sfmodels import DatabricksFeedbackHandler, DatabricksLLM
from sfmodels_core.errors import APIStatusError, InvalidInputError

from .conftest import CHAT_ENDPOINT, databricks_settings

if TYPE_CHECKING:
    from sfmodels_emulator import Emulator

mlflow = pytest.importorskip("mlflow")
pytestmark = pytest.mark.usefixtures("mlflow_tracking")


@pytest.fixture
def handler() -> Iterator[DatabricksFeedbackHandler]:
    handler = DatabricksFeedbackHandler().register()
    yield handler
    handler.unregister()


def span_of(trace_id: str, span_id: str) -> Any:
    (span,) = [s for s in mlflow.get_trace(trace_id).data.spans if s.span_id == span_id]
    return span


def assessments(trace_id: str) -> list[Any]:
    return list(mlflow.get_trace(trace_id).info.assessments)


def test_a_chat_engine_answer_is_rated_on_its_own_span(
        handler: DatabricksFeedbackHandler, db_llm: DatabricksLLM) -> None:
    engine = SimpleChatEngine.from_defaults(llm=db_llm)
    answer = engine.chat("Tell me about rivers")
    engine.chat("And about mountains?")  # a later turn: the first answer keeps its span
    submission = handler.submit("GOOD", response=answer, comment="Spot on", user="ann")
    (logged,) = submission.results
    span = span_of(logged.trace_id, logged.generation_id)
    assert span.name == "DatabricksLLM" and span.outputs == {"text": answer.response}
    assert span.attributes["model"] == CHAT_ENDPOINT
    assert span.inputs["messages"][-1]["blocks"][0]["text"] == "Tell me about rivers"
    (assessment,) = assessments(logged.trace_id)
    assert (assessment.name, assessment.value, assessment.rationale) == (
        "user_feedback", True, "Spot on")
    assert (assessment.source.source_type, assessment.source.source_id) == ("HUMAN", "ann")
    assert assessment.span_id == logged.generation_id
    assert assessment.assessment_id == submission.feedback_id
    again = handler.submit("good", response=answer, comment="Spot on", user="ann")
    assert again.feedback_ids == submission.feedback_ids and len(assessments(logged.trace_id)) == 1


async def test_async_and_streamed_answers(adb_llm: DatabricksLLM) -> None:
    handler = DatabricksFeedbackHandler().register()
    try:
        engine = SimpleChatEngine.from_defaults(llm=adb_llm)
        said = await engine.achat("Tell me about rivers")
        streamed = await engine.astream_chat("Tell me about oceans")
        text = "".join([token async for token in streamed.async_response_gen()])
        for answer, shown in ((said, said.response), (streamed, text)):
            logged = (await handler.asubmit("BAD", response=answer)).results[0]
            assert span_of(logged.trace_id, logged.generation_id).outputs == {"text": shown}
            assert [a.value for a in assessments(logged.trace_id)] == [False]
    finally:
        handler.unregister()


def test_a_call_inside_the_users_trace_is_rated_there(
        handler: DatabricksFeedbackHandler, db_llm: DatabricksLLM) -> None:
    with mlflow.start_span("support bot") as outer:
        reply = db_llm.chat([ChatMessage(role="user", content="Tell me about rivers")])
    logged = handler.submit("GOOD", response=reply).results[0]
    assert logged.trace_id == outer.trace_id
    assert span_of(outer.trace_id, logged.generation_id).parent_id == outer.span_id
    assert assessments(outer.trace_id)[0].span_id == logged.generation_id


def test_under_llama_index_autolog_the_span_joins_its_trace(
        handler: DatabricksFeedbackHandler, db_llm: DatabricksLLM) -> None:
    mlflow.llama_index.autolog()
    try:
        answer = SimpleChatEngine.from_defaults(llm=db_llm).chat("Tell me about rivers")
    finally:
        mlflow.llama_index.autolog(disable=True)
    logged = handler.submit("GOOD", response=answer).results[0]
    spans = mlflow.get_trace(logged.trace_id).data.spans
    mine = span_of(logged.trace_id, logged.generation_id)
    assert len(spans) > 1 and mine.parent_id is not None  # inside the autolog trace
    assert any(s.name.startswith("SimpleChatEngine") for s in spans)


def test_concurrent_engines_with_the_same_answer_rate_their_own_spans(
        handler: DatabricksFeedbackHandler, emulator: Emulator) -> None:
    emulator.configure(latency_ms=200)
    llms = [DatabricksLLM(endpoint=CHAT_ENDPOINT, **databricks_settings(emulator))
            for _ in range(2)]
    engines = [SimpleChatEngine.from_defaults(llm=llm) for llm in llms]
    with ThreadPoolExecutor(2) as pool:
        answers = list(pool.map(lambda e: e.chat("Tell me about rivers"), engines))
    assert answers[0].response == answers[1].response
    logged = [handler.submit(rating, response=answer).results[0]
              for rating, answer in zip(("GOOD", "BAD"), answers, strict=True)]
    assert logged[0].generation_id != logged[1].generation_id
    for item, value in zip(logged, (True, False), strict=True):
        assert [(a.span_id, a.value) for a in assessments(item.trace_id)] == [
            (item.generation_id, value)]
    for llm in llms:
        llm.close()


def test_a_failed_call_is_not_rateable(handler: DatabricksFeedbackHandler,
                                       db_llm: DatabricksLLM, emulator: Emulator) -> None:
    emulator.configure(fault_next=1, fault_kinds=["500"])
    with pytest.raises(APIStatusError):
        db_llm.chat([ChatMessage(role="user", content="hi")])
    assert not handler._open  # its span was closed, as failed
    with pytest.raises(InvalidInputError, match="No DatabricksLLM call has been recorded"):
        handler.submit("GOOD")
    reply = db_llm.complete("Tell me about rivers")
    assert handler.submit("GOOD", response=reply).results[0].value is True
    with pytest.raises(InvalidInputError, match="trace_id="):
        handler.submit("GOOD", response="Tell me about rivers")
    with pytest.raises(InvalidInputError, match="GOOD"):
        handler.submit("meh", response=reply)


def test_a_known_trace_is_rated_directly(handler: DatabricksFeedbackHandler) -> None:
    with mlflow.start_span("an app's own call") as span:
        pass
    logged = handler.submit(False, trace_id=span.trace_id, user="bo").results[0]
    (assessment,) = assessments(span.trace_id)
    assert assessment.span_id is None and logged.generation_id is None
    with pytest.raises(InvalidInputError, match="span_id= needs the trace_id="):
        handler.submit("GOOD", span_id=span.span_id)



def test_asyncio_gather_of_two_answers(adb_llm: DatabricksLLM) -> None:
    async def main() -> list[Any]:
        engines = [SimpleChatEngine.from_defaults(llm=adb_llm) for _ in range(2)]
        return list(await asyncio.gather(*(e.achat("Tell me about rivers") for e in engines)))

    handler = DatabricksFeedbackHandler().register()
    try:
        answers = asyncio.run(main())
        spans = {handler.find(a).generation_ids[0] for a in answers}
    finally:
        handler.unregister()
    assert len(spans) == 2

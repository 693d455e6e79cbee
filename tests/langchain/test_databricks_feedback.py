"""DatabricksFeedbackHandler against the emulator and a real local MLflow store (no mocks):
each Databricks call is one span, in the user's trace when there is one, and a rating is a HUMAN
feedback assessment on the span of the call that answered."""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pytest
from langchain_core.messages import AIMessage, ToolMessage
from langchain_core.runnables import RunnableLambda

from langchain_sfmodels import (
    ChatDatabricks,
    ChatSalesforce,
    DatabricksFeedbackHandler,
    DatabricksLLM,
    FeedbackSubmission,
)
from sfmodels_core.errors import InvalidInputError, NotFoundError
from sfmodels_core.integration.mlflow_feedback import FEEDBACK_NAME, Assessment

if TYPE_CHECKING:
    from sfmodels_emulator import Emulator

mlflow = pytest.importorskip("mlflow")
pytestmark = pytest.mark.usefixtures("mlflow_tracking")

ENDPOINT = "databricks-meta-llama-3-3-70b-instruct"


def chat(emulator: Emulator, endpoint: str = ENDPOINT) -> ChatDatabricks:
    return ChatDatabricks(endpoint=endpoint, host=emulator.databricks_host,
                          api_key=emulator.databricks_token, max_retries=0)


def config(handler: DatabricksFeedbackHandler, run_id: uuid.UUID | None = None) -> Any:
    return {"callbacks": [handler], **({"run_id": run_id} if run_id else {})}


def spans(trace_id: str) -> dict[str, Any]:
    return {s.span_id: s for s in mlflow.get_trace(trace_id).data.spans}


def span_of(handler: DatabricksFeedbackHandler, run_id: object = None) -> Any:
    record = handler.find(run_id)
    assert record.trace_id is not None
    return spans(record.trace_id)[record.generation_ids[0]]


def assessments(trace_id: str) -> list[Any]:
    return list(mlflow.get_trace(trace_id).info.assessments)


@pytest.fixture
def autolog() -> Iterator[None]:
    mlflow.langchain.autolog()
    yield
    mlflow.langchain.autolog(disable=True)


# -- what is recorded and rated -------------------------------------------------------------------
def test_the_rating_lands_on_the_span_of_the_call(emulator: Emulator) -> None:
    handler = DatabricksFeedbackHandler()
    run = uuid.uuid4()
    answer = chat(emulator).invoke("Tell me about rivers", config=config(handler, run))
    submission = handler.submit("good", run_id=run, comment="Spot on", user="ann@example.com")

    record = handler.find(run)
    assert isinstance(submission, FeedbackSubmission)
    (result,) = submission.results
    assert isinstance(result, Assessment) and result.value is True
    assert submission.generation_ids == record.generation_ids == [result.generation_id]
    (assessment,) = assessments(record.trace_id)
    assert submission.feedback_ids == [assessment.assessment_id]
    assert assessment.name == FEEDBACK_NAME and assessment.value is True
    assert assessment.span_id == submission.generation_id
    assert assessment.source.source_type == "HUMAN"
    assert assessment.source.source_id == "ann@example.com"
    assert assessment.rationale == "Spot on"
    span = span_of(handler, run)
    assert span.name == "ChatDatabricks" and span.span_type == "CHAT_MODEL"
    assert span.parent_id is None  # no trace of the user's: one of its own
    assert span.inputs == {"messages": [{"role": "user", "content": "Tell me about rivers"}]}
    assert span.outputs["content"] == answer.content
    assert span.attributes["model"] == ENDPOINT == record.model


def test_a_chain_with_two_model_calls_rates_the_answering_one(emulator: Emulator) -> None:
    handler = DatabricksFeedbackHandler()
    llm = chat(emulator)
    chain = llm | RunnableLambda(lambda m: f"Summarise: {m.content}") | llm
    run = uuid.uuid4()
    answer = chain.invoke("Tell me about rivers", config=config(handler, run))
    handler.submit("BAD", run_id=run, comment="too vague")

    record = handler.find(run)
    answering = span_of(handler, run)
    assert answering.outputs["content"] == answer.content
    assert answering.inputs["messages"][0]["content"].startswith("Summarise: ")
    (assessment,) = assessments(record.trace_id)
    assert (assessment.span_id, assessment.value) == (record.generation_ids[0], False)
    assert handler.find().run_id == record.run_id  # the latest call by default


def test_only_databricks_models_are_recorded(emulator: Emulator) -> None:
    handler = DatabricksFeedbackHandler()
    ChatSalesforce(api_key=emulator.mint_salesforce_token(),
                   api_base=emulator.salesforce_api_base).invoke("hi", config=config(handler))
    assert len(handler.log) == 0
    with pytest.raises(InvalidInputError, match="No Databricks generation has been recorded"):
        handler.submit("GOOD")

    run = uuid.uuid4()
    text = DatabricksLLM(endpoint=ENDPOINT, host=emulator.databricks_host,
                         api_key=emulator.databricks_token).invoke("Delta Lake",
                                                                   config=config(handler, run))
    span = span_of(handler, run)
    assert span.span_type == "LLM" and span.name == "DatabricksLLM"
    assert span.inputs == {"prompt": "Delta Lake"} and span.outputs == text


def test_streaming_is_recorded(emulator: Emulator) -> None:
    handler = DatabricksFeedbackHandler()
    run = uuid.uuid4()
    chunks = list(chat(emulator).stream("Tell me about rivers", config=config(handler, run)))
    assert len(chunks) > 1
    assert span_of(handler, run).outputs["content"] == "".join(str(c.content) for c in chunks)
    handler.submit(True, run_id=run)
    assert [a.value for a in assessments(handler.find(run).trace_id)] == [True]


def test_a_failed_run_is_not_rateable(emulator: Emulator) -> None:
    handler = DatabricksFeedbackHandler()
    run = uuid.uuid4()
    with pytest.raises(NotFoundError):
        chat(emulator, "no-such-endpoint").invoke("hi", config=config(handler, run))
    with pytest.raises(InvalidInputError, match=f"run {run}: .* it failed"):
        handler.submit("GOOD", run_id=run)
    # A chain whose answering call failed: the call before it is not rated in its place.
    chain = (chat(emulator) | RunnableLambda(lambda m: m.content)
             | chat(emulator, "no-such-endpoint"))
    with pytest.raises(NotFoundError):
        chain.invoke("hi", config=config(handler, run))
    with pytest.raises(InvalidInputError, match="has been recorded yet"):
        handler.submit("GOOD")
    assert handler._calls == {}


async def test_the_same_submission_made_again_is_not_logged_twice(emulator: Emulator) -> None:
    handler = DatabricksFeedbackHandler()
    run = uuid.uuid4()
    await chat(emulator).ainvoke("hi", config=config(handler, run))
    trace_id = handler.find(run).trace_id
    first = handler.submit("BAD", run_id=run, comment="wrong", user="bo")
    again = await handler.asubmit("bad", run_id=run, comment="wrong", user="bo")
    assert again.feedback_ids == first.feedback_ids and len(assessments(trace_id)) == 1
    handler.submit("GOOD", run_id=run, user="bo")  # a new opinion is new feedback
    keyed = handler.submit("GOOD", run_id=run, feedback_id="fb-1")
    assert handler.submit("GOOD", run_id=run, feedback_id="fb-1").feedback_ids == \
        keyed.feedback_ids
    assert len(assessments(trace_id)) == 3


def test_bad_input_is_refused_before_any_lookup(emulator: Emulator) -> None:
    handler = DatabricksFeedbackHandler()
    for rating in ("meh", None, 1):
        with pytest.raises(InvalidInputError, match="'GOOD' or 'BAD'"):
            handler.submit(rating)  # type: ignore[arg-type]
    with pytest.raises(InvalidInputError, match="recorded for run"):
        handler.submit("GOOD", run_id=uuid.uuid4())
    chat(emulator).invoke("hi", config=config(handler))
    with pytest.raises(InvalidInputError, match="user"):
        handler.submit("GOOD", user=" ")


# -- concurrency ----------------------------------------------------------------------------------
def rated_by_each(handler: DatabricksFeedbackHandler, runs: list[uuid.UUID]) -> None:
    """Each run rated by its own user: each assessment on its own span, one per span."""
    records = [handler.find(run) for run in runs]
    assert len({r.generation_ids[0] for r in records}) == len(runs)
    for n, run in enumerate(runs):
        handler.submit("GOOD", run_id=run, user=f"user-{n}")
    for n, record in enumerate(records):
        mine = [a for a in assessments(record.trace_id)
                if a.span_id == record.generation_ids[0]]
        assert [a.source.source_id for a in mine] == [f"user-{n}"]


async def test_concurrent_calls_with_identical_answers_each_rate_their_own_span(
        emulator: Emulator) -> None:
    handler = DatabricksFeedbackHandler()
    llm = chat(emulator)
    runs = [uuid.uuid4() for _ in range(4)]
    answers = await asyncio.gather(*(llm.ainvoke("same", config=config(handler, run))
                                     for run in runs))
    assert len({a.content for a in answers}) == 1
    rated_by_each(handler, runs)

    batches = [[uuid.uuid4() for _ in range(3)] for _ in range(2)]
    await llm.abatch(["same"] * 3, config=[config(handler, run) for run in batches[0]])
    await asyncio.to_thread(llm.batch, ["same"] * 3,
                            config=[config(handler, run) for run in batches[1]])
    for batch in batches:
        rated_by_each(handler, batch)


def test_calls_that_never_end_are_forgotten(emulator: Emulator) -> None:
    handler = DatabricksFeedbackHandler(max_runs=2)
    meta = {"ls_provider": "databricks", "ls_model_name": ENDPOINT}
    for _ in range(handler._max_calls + 50):  # cancelled runs: started, never ended
        handler.on_chat_model_start({}, [[]], run_id=uuid.uuid4(), metadata=meta)
    assert len(handler._calls) == handler._max_calls
    for _ in range(3):
        chat(emulator).invoke("hi", config=config(handler))
    assert len(handler.log) == 2 and len(handler._calls) == handler._max_calls - 1


def test_traces_of_their_own_go_to_the_experiment_given(emulator: Emulator,
                                                       tmp_path: Path) -> None:
    experiment = mlflow.create_experiment(f"feedback-{uuid.uuid4()}",
                                          artifact_location=tmp_path.as_uri())
    handler = DatabricksFeedbackHandler(experiment_id=experiment)
    chat(emulator).invoke("hi", config=config(handler))
    assert mlflow.get_trace(handler.find().trace_id).info.experiment_id == experiment


def test_nothing_is_recorded_while_tracing_is_disabled(emulator: Emulator) -> None:
    handler = DatabricksFeedbackHandler()
    mlflow.tracing.disable()
    chat(emulator).invoke("hi", config=config(handler))
    assert len(handler.log) == 0 and handler._calls == {}


# -- inside the user's MLflow trace ---------------------------------------------------------------
def parent_in(record_span: Any, trace_id: str) -> Any:
    """The span ``record_span`` hangs under in the trace ``trace_id``."""
    return spans(trace_id)[record_span.parent_id]


@pytest.mark.usefixtures("autolog")
@pytest.mark.parametrize("how", ["invoke model", "invoke chain", "stream model", "stream chain",
                                 "batch model"])
def test_with_autolog_the_span_joins_the_users_trace(emulator: Emulator, how: str) -> None:
    handler = DatabricksFeedbackHandler()
    llm = chat(emulator)
    runnable = llm if how.endswith("model") else RunnableLambda(lambda x: x) | llm
    runs = [uuid.uuid4(), uuid.uuid4()] if how.startswith("batch") else [uuid.uuid4()]
    if how.startswith("invoke"):
        runnable.invoke("hi", config=config(handler, runs[0]))
    elif how.startswith("stream"):
        list(runnable.stream("hi", config=config(handler, runs[0])))
    else:
        runnable.batch(["hi", "hi"], config=[config(handler, run) for run in runs])
    traces = set()
    for run in runs:
        record = handler.find(run)
        mine = span_of(handler, run)
        # A child of autolog's span for the same call, in autolog's trace.
        autologged = parent_in(mine, record.trace_id)
        assert autologged.name == "ChatDatabricks" and autologged.span_id != mine.span_id
        root = next(s for s in spans(record.trace_id).values() if s.parent_id is None)
        assert root.name == ("ChatDatabricks" if how.endswith("model") else "RunnableSequence")
        handler.submit("GOOD", run_id=run)
        (assessment,) = assessments(record.trace_id)
        assert assessment.span_id == mine.span_id
        traces.add(record.trace_id)
    assert len(traces) == len(runs)


@pytest.mark.usefixtures("autolog")
async def test_with_autolog_async_calls_and_chain_batches_get_traces_of_their_own(
        emulator: Emulator) -> None:
    """Autolog's tracer runs outside the task for async calls, and makes no span active in a
    chain's batch: the call is then a trace of its own, never another call's."""
    handler = DatabricksFeedbackHandler()
    llm = chat(emulator)
    chain = RunnableLambda(lambda x: x) | llm
    runs = [uuid.uuid4() for _ in range(5)]
    await asyncio.gather(llm.ainvoke("hi", config=config(handler, runs[0])),
                         chain.ainvoke("hi", config=config(handler, runs[1])))
    [_ async for _ in llm.astream("hi", config=config(handler, runs[2]))]
    await asyncio.to_thread(chain.batch, ["hi", "hi"],
                            config=[config(handler, run) for run in runs[3:]])
    for run in runs:
        record = handler.find(run)
        assert list(spans(record.trace_id)) == record.generation_ids  # alone in its trace
    rated_by_each(handler, runs)


async def test_with_autolog_running_its_tracer_inline_async_calls_join_the_users_trace(
        emulator: Emulator) -> None:
    mlflow.langchain.autolog(run_tracer_inline=True)
    try:
        handler = DatabricksFeedbackHandler()
        llm = chat(emulator)
        chain = RunnableLambda(lambda x: x) | llm
        runs = [uuid.uuid4() for _ in range(3)]
        await asyncio.gather(llm.ainvoke("same", config=config(handler, runs[0])),
                             chain.ainvoke("same", config=config(handler, runs[1])))
        [_ async for _ in chain.astream("same", config=config(handler, runs[2]))]
    finally:
        mlflow.langchain.autolog(disable=True)
    for run in runs:
        record = handler.find(run)
        assert parent_in(span_of(handler, run), record.trace_id).name == "ChatDatabricks"
    assert len({handler.find(run).trace_id for run in runs}) == 3
    rated_by_each(handler, runs)


@pytest.mark.usefixtures("autolog")
async def test_a_span_of_the_users_own_is_joined_also_in_async_code(emulator: Emulator) -> None:
    """Autolog's default tracer does not hide a span the user opened in the task."""
    handler = DatabricksFeedbackHandler()
    run = uuid.uuid4()
    with mlflow.start_span("my app") as outer:
        await chat(emulator).ainvoke("hi", config=config(handler, run))
    mine = span_of(handler, run)
    assert (mine.trace_id, mine.parent_id) == (outer.trace_id, outer.span_id)
    assert {s.name for s in spans(outer.trace_id).values()} == {"my app", "ChatDatabricks"}
    assert len(spans(outer.trace_id)) == 3  # the user's, autolog's and this handler's


@pytest.mark.usefixtures("autolog")
def test_a_span_of_the_users_own_is_joined_also_by_a_chains_batch(emulator: Emulator) -> None:
    handler = DatabricksFeedbackHandler()
    runs = [uuid.uuid4(), uuid.uuid4()]
    chain = RunnableLambda(lambda x: x) | chat(emulator)
    with mlflow.start_span("my app") as outer:
        chain.batch(["same", "same"], config=[config(handler, run) for run in runs])
    assert {span_of(handler, run).trace_id for run in runs} == {outer.trace_id}
    rated_by_each(handler, runs)



def test_a_message_without_content_is_recorded(emulator: Emulator) -> None:
    """Inputs are stored JSON-friendly whatever the messages hold (here a bare tool call)."""
    handler = DatabricksFeedbackHandler()
    history = [("human", "hi"), AIMessage("", tool_calls=[{"name": "f", "args": {"x": 1},
                                                           "id": "c1"}]),
               ToolMessage("42", tool_call_id="c1")]
    run = uuid.uuid4()
    chat(emulator).invoke(history, config=config(handler, run))  # type: ignore[arg-type]
    inputs = span_of(handler, run).inputs["messages"]
    assert [m["role"] for m in inputs] == ["user", "assistant", "tool"]


def test_a_known_trace_is_rated_directly() -> None:
    handler = DatabricksFeedbackHandler()
    with mlflow.start_span("an app's own call") as span:
        pass
    logged = handler.submit("BAD", trace_id=span.trace_id, span_id=span.span_id).results[0]
    (assessment,) = mlflow.get_trace(span.trace_id).info.assessments
    assert assessment.span_id == span.span_id == logged.generation_id
    with pytest.raises(InvalidInputError, match="span_id= needs the trace_id="):
        handler.submit("GOOD", span_id=span.span_id)

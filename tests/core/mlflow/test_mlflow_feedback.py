"""Databricks feedback as MLflow assessments, against a real local tracking store."""

from __future__ import annotations

import pytest

from sfmodels_core.errors import InvalidInputError
from sfmodels_core.integration.feedback import GenerationRecord
from sfmodels_core.integration.mlflow_feedback import (
    FEEDBACK_ID_KEY,
    FEEDBACK_NAME,
    end_generation_span,
    feedback_value,
    log_feedback,
    start_generation_span,
)

mlflow = pytest.importorskip("mlflow")
pytestmark = pytest.mark.usefixtures("mlflow_tracking")


def generation(parent: object = None) -> GenerationRecord:
    span = start_generation_span("ChatDatabricks", {"messages": ["hi"]}, model="m",
                                 parent=parent)  # type: ignore[arg-type]
    assert span is not None
    record = end_generation_span(span, "run-1", outputs={"text": "hello"}, model="m")
    assert record is not None
    return record


def assessments(trace_id: str) -> list[object]:
    return list(mlflow.get_trace(trace_id).info.assessments)


def test_a_rating_lands_on_the_span_with_user_and_comment() -> None:
    record = generation()
    logged = log_feedback(record, "good", comment="Spot on", user="ann@example.com")
    (assessment,) = assessments(record.trace_id)
    assert assessment.assessment_id == logged.feedback_id
    assert assessment.name == FEEDBACK_NAME and assessment.value is True
    assert assessment.span_id == record.generation_ids[0] == logged.generation_id
    assert assessment.source.source_type == "HUMAN"
    assert assessment.source.source_id == "ann@example.com"
    assert assessment.rationale == "Spot on"
    span = mlflow.get_trace(record.trace_id).data.spans[0]
    assert span.name == "ChatDatabricks" and span.outputs == {"text": "hello"}


def test_a_repeated_submission_is_not_logged_twice() -> None:
    record = generation()
    first = log_feedback(record, "BAD", comment="wrong", user="bo")
    again = log_feedback(record, "bad", comment="wrong", user="bo")
    assert again.feedback_id == first.feedback_id and len(assessments(record.trace_id)) == 1
    other = log_feedback(record, "GOOD", user="bo")  # a new opinion is new feedback
    assert other.feedback_id != first.feedback_id and len(assessments(record.trace_id)) == 2
    keyed = log_feedback(record, True, feedback_id="fb-1")
    assert log_feedback(record, True, feedback_id="fb-1").feedback_id == keyed.feedback_id
    (mine,) = [a for a in assessments(record.trace_id)
               if a.metadata.get(FEEDBACK_ID_KEY) == "fb-1"]
    assert mine.source.source_id == "anonymous"


def test_a_generation_inside_the_users_trace_joins_it() -> None:
    with mlflow.start_span("my app") as outer:
        record = generation()
    assert record.trace_id == outer.trace_id
    log_feedback(record, "GOOD")
    spans = {s.span_id: s for s in mlflow.get_trace(outer.trace_id).data.spans}
    assert spans[record.generation_ids[0]].parent_id == outer.span_id
    (assessment,) = assessments(outer.trace_id)
    assert assessment.span_id == record.generation_ids[0]


def test_a_failed_call_is_not_rateable_and_disabled_tracing_records_nothing() -> None:
    span = start_generation_span("ChatDatabricks", {"messages": []})
    assert span is not None
    assert end_generation_span(span, "run", error=RuntimeError("boom")) is None
    mlflow.tracing.disable()
    assert start_generation_span("ChatDatabricks", {"messages": []}) is None


def test_bad_input_fails_before_mlflow_is_asked() -> None:
    record = generation()
    for rating in ("meh", None, 1, ""):
        with pytest.raises(InvalidInputError, match="GOOD"):
            log_feedback(record, rating)
    with pytest.raises(InvalidInputError, match="user"):
        log_feedback(record, "GOOD", user="  ")
    with pytest.raises(InvalidInputError, match="MLflow trace"):
        log_feedback(GenerationRecord("run", ["span"]), "GOOD")
    with pytest.raises(InvalidInputError, match="no trace"):
        log_feedback(GenerationRecord("run", ["span"], trace_id="tr-" + "0" * 32), "GOOD")
    assert assessments(record.trace_id) == []
    assert feedback_value("Good") is True and feedback_value(False) is False



def test_a_trace_still_on_its_way_to_the_store_is_waited_for(
        monkeypatch: pytest.MonkeyPatch) -> None:
    """MLflow writes traces from a queue by default: a rating right after the call waits."""
    from mlflow.tracing.provider import reset

    monkeypatch.setenv("MLFLOW_ENABLE_ASYNC_TRACE_LOGGING", "true")
    reset()
    try:
        record = generation()
        log_feedback(record, "GOOD", user="ann")
        assert [a.value for a in assessments(record.trace_id)] == [True]
    finally:
        monkeypatch.setenv("MLFLOW_ENABLE_ASYNC_TRACE_LOGGING", "false")
        mlflow.flush_trace_async_logging(terminate=True)
        reset()


def test_a_span_opened_after_the_call_keeps_the_time_it_started() -> None:
    import time

    started = time.time_ns() - 2_000_000_000
    span = start_generation_span("DatabricksLLM", {"prompt": "hi"}, span_type="LLM",
                                 start_time_ns=started)
    assert span is not None
    record = end_generation_span(span, "run", outputs="hello")
    assert record is not None
    (stored,) = mlflow.get_trace(record.trace_id).data.spans
    assert stored.start_time_ns == started and stored.span_type == "LLM"
    assert stored.end_time_ns - started >= 2_000_000_000

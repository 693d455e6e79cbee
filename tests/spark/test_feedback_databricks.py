"""``submit_feedback(provider="databricks")``: ratings as MLflow assessments, logged by the
executors into a real local tracking store (sqlite) that the driver wrote the traces to."""

from __future__ import annotations

import os
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pandas as pd
import pytest
from pydantic import SecretStr
from pyspark.sql.functions import pandas_udf

from sfmodels_core.errors import ConfigurationError, InvalidInputError
from sfmodels_core.integration.batch.connection import Tracking
from sfmodels_core.integration.feedback import GenerationRecord
from sfmodels_core.integration.mlflow_feedback import (
    FEEDBACK_ID_KEY,
    FEEDBACK_NAME,
    end_generation_span,
    feedback_key,
    start_generation_span,
)
from sfmodels_spark import submit_feedback
from sfmodels_spark.dataframe import resolve_tracking_uri

mlflow = pytest.importorskip("mlflow")
# Starting Spark and its first Python workers takes tens of seconds on a busy 2-core machine.
pytestmark = pytest.mark.timeout(300)

COLUMNS = "id long, trace_id string, span_id string, rating string, comment string, user string"
UNKNOWN = "tr-" + "0" * 32


@pytest.fixture(scope="module")
def experiment(mlflow_store: Any, tmp_path_factory: pytest.TempPathFactory) -> str:
    """An experiment whose trace artifacts stay in a temporary folder (the store's default one
    keeps them in ./mlruns of the directory the tests run from)."""
    folder = tmp_path_factory.mktemp("spark-feedback")
    return str(mlflow.create_experiment("spark-feedback",
                                        artifact_location=(folder / "artifacts").as_uri()))


@pytest.fixture
def traced(mlflow_tracking: str, experiment: str) -> Iterator[str]:
    mlflow.set_experiment(experiment_id=experiment)
    yield mlflow_tracking


def generation(name: str = "ChatDatabricks") -> GenerationRecord:
    span = start_generation_span(name, {"messages": ["hi"]}, model="m")
    assert span is not None
    record = end_generation_span(span, "run", outputs={"text": "hello"}, model="m")
    assert record is not None
    return record


def worker_tracking(spark: Any) -> set[str]:
    """What the Python workers of pandas UDFs (those the feedback job ran on, as Spark reuses
    them) hold: MLFLOW_TRACKING_URI, and whether MLflow has a URI set."""
    @pandas_udf("string")  # type: ignore[call-overload,misc]
    def probe(ids: pd.Series) -> pd.Series:
        import mlflow as worker_mlflow

        held = f"{os.environ.get('MLFLOW_TRACKING_URI')} {worker_mlflow.is_tracking_uri_set()}"
        return pd.Series([held] * len(ids))

    return {r.held for r in spark.range(0, 4, 1, 2).select(probe("id").alias("held")).collect()}


def test_ratings_become_assessments_once(spark: Any, traced: str) -> None:
    answered, traced_only = generation(), generation()
    with mlflow.start_span("my app") as outer:
        nested = generation()
    span = answered.generation_ids[0]
    df = spark.createDataFrame([
        (0, answered.trace_id, span, "good", "Spot on", "ann@example.com"),
        (1, traced_only.trace_id, None, "BAD", None, None),
        (2, nested.trace_id, nested.generation_ids[0], "bad", "wrong city", "bo"),
        (3, UNKNOWN, None, "GOOD", None, "ann@example.com"),
        (4, answered.trace_id, span, "meh", None, "ann@example.com"),
        (5, None, None, "GOOD", None, None),
        (6, answered.trace_id, span, None, "no rating", None),
        (7, answered.trace_id, span, "GOOD", None, " "),
    ], COLUMNS).repartition(2)
    before = worker_tracking(spark)

    def run() -> dict[int, Any]:
        out = submit_feedback(df, "trace_id", "rating", comment="comment", span_id="span_id",
                              user="user", provider="databricks")
        return {r.id: r.feedback for r in out.collect()}

    first = run()
    assert {i: f.error for i, f in first.items() if i < 3} == {0: None, 1: None, 2: None}
    assert f"no trace {UNKNOWN!r} at {traced!r}" in first[3].error
    assert "rating must be 'GOOD', 'BAD', true or false" in first[4].error
    assert first[5].error == "InvalidInputError: the trace id is null"
    assert "got None" in first[6].error
    assert "user" in first[7].error
    assert all(first[i].feedback_id is None for i in range(3, 8))

    (good,) = mlflow.get_trace(answered.trace_id).info.assessments
    assert (good.assessment_id, good.name, good.value, good.rationale, good.span_id) == (
        first[0].feedback_id, FEEDBACK_NAME, True, "Spot on", span)
    assert (good.source.source_type, good.source.source_id) == ("HUMAN", "ann@example.com")
    assert good.metadata[FEEDBACK_ID_KEY] == feedback_key(
        GenerationRecord(answered.trace_id, [span], trace_id=answered.trace_id), True,
        "Spot on", "ann@example.com")
    (whole,) = mlflow.get_trace(traced_only.trace_id).info.assessments
    assert (whole.assessment_id, whole.value, whole.span_id, whole.source.source_id) == (
        first[1].feedback_id, False, None, "anonymous")
    (inside,) = mlflow.get_trace(outer.trace_id).info.assessments
    assert nested.trace_id == outer.trace_id
    assert (inside.assessment_id, inside.value, inside.span_id, inside.rationale) == (
        first[2].feedback_id, False, nested.generation_ids[0], "wrong city")

    # The same DataFrame again: the same assessments come back, none is logged twice.
    again = run()
    assert {i: (f.feedback_id, f.error) for i, f in again.items()} == {
        i: (f.feedback_id, f.error) for i, f in first.items()}
    for trace_id in (answered.trace_id, traced_only.trace_id, outer.trace_id):
        assert len(mlflow.get_trace(trace_id).info.assessments) == 1
    # The workers logged to the store, then went back to what they had before.
    assert worker_tracking(spark) == before


def test_everything_is_checked_on_the_driver_before_any_job(
        spark: Any, traced: str, monkeypatch: pytest.MonkeyPatch) -> None:
    df = spark.createDataFrame([(0, "tr-1", None, "GOOD", None, "ann")], COLUMNS)
    args = (df, "trace_id", "rating")
    with pytest.raises(InvalidInputError, match="provider must be"):
        submit_feedback(*args, provider="mlflow")
    with pytest.raises(InvalidInputError, match=r"F\.lit\('ann@example.com'\)"):
        submit_feedback(*args, provider="databricks", user="ann@example.com")
    with pytest.raises(InvalidInputError, match="host, source"):
        submit_feedback(*args, provider="databricks", source="human", host="https://x")
    with pytest.raises(InvalidInputError, match="span_id must be a string column"):
        submit_feedback(*args, provider="databricks", span_id="id")
    with pytest.raises(InvalidInputError, match="span_id, user are for provider='databricks'"):
        submit_feedback(*args, span_id="span_id", user="user")
    with pytest.raises(InvalidInputError, match="not both"):
        submit_feedback(*args, "comment", comment="comment", provider="databricks")
    monkeypatch.setitem(sys.modules, "mlflow", None)
    with pytest.raises(ConfigurationError, match=r"pip install 'sfmodels\[mlflow\]'"):
        submit_feedback(*args, provider="databricks")


def test_the_tracking_uri_reaches_no_plan_and_relative_stores_are_made_absolute(
        spark: Any, traced: str, capfd: pytest.CaptureFixture[str]) -> None:
    df = spark.createDataFrame([(0, "tr-1", None, "GOOD", None, "ann")], COLUMNS)
    secret = "pw-feedback-5Rt8"
    out = submit_feedback(df, "trace_id", "rating", provider="databricks",
                          tracking_uri=f"postgresql://mlflow:{secret}@127.0.0.1:1/mlflow")
    plan = out._jdf.queryExecution().toString()
    out.explain("extended")
    assert "sfmodels_mlflow_feedback" in plan and secret not in plan
    assert secret not in capfd.readouterr().out

    tracking = Tracking(SecretStr(f"postgresql://mlflow:{secret}@db/mlflow"))
    assert repr(tracking) == "Tracking('postgresql://mlflow:***@db/mlflow')"
    assert tracking.scrub(f"no trace at '{tracking.uri}'") == (
        "no trace at 'postgresql://mlflow:***@db/mlflow'")
    assert resolve_tracking_uri("sqlite:///feedback.db") == (
        f"sqlite:///{Path('feedback.db').absolute()}")
    assert resolve_tracking_uri(None) == traced

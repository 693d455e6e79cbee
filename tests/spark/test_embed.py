"""``sfmodels_spark.embed`` on local Spark against the emulator."""

from __future__ import annotations

import random
from typing import Any

import numpy as np
import pytest

from sfmodels_core import DatabricksClient, SalesforceClient
from sfmodels_core.errors import InvalidInputError
from sfmodels_emulator import Emulator
from sfmodels_spark import embed

from .conftest import MODELS, api_requests, settings

# Starting Spark and its first Python workers takes tens of seconds on a busy 2-core machine.
pytestmark = pytest.mark.timeout(300)


PROVIDERS = ["salesforce", "databricks"]


def texts(n: int) -> list[str]:
    return [f"Ticket {i}: the customer asks about topic {i % 7} and order {i}" for i in range(n)]


def core_vectors(emulator: Emulator, provider: str, items: list[str]) -> list[list[float]]:
    model = MODELS[provider][0]
    client = (SalesforceClient(env={}, **settings(emulator, "salesforce")) if
              provider == "salesforce" else DatabricksClient(env={}, **settings(emulator,
                                                                                 "databricks")))
    with client:
        return client.embed(model, items).vectors


def frame(spark: Any, items: list[Any], partitions: int = 3) -> Any:
    rows = spark.sparkContext.parallelize(list(enumerate(items)), partitions)
    return spark.createDataFrame(rows, "id long, text string")


@pytest.mark.parametrize("provider", PROVIDERS)
def test_vectors_equal_the_core_clients_in_row_order(spark: Any, emulator: Emulator,
                                                     provider: str) -> None:
    items = texts(40)
    df = frame(spark, items)
    before = df.collect()
    out = embed(df, "text", provider=provider, model=MODELS[provider][0], batch_size=4,
                **settings(emulator, provider))
    assert out.columns == ["id", "text", "embedding", "embedding_error"]
    assert out.schema["embedding"].dataType.simpleString() == "array<float>"
    got = out.collect()
    # Batches of at most 4 per partition: one request each, never one per row.
    assert 40 // 4 <= api_requests(emulator) <= 40 // 4 + 3
    # Same rows in the same order, one vector each, the one the core client gives.
    assert [(r.id, r.text) for r in got] == [(r.id, r.text) for r in before]
    expected = core_vectors(emulator, provider, items)
    for row in got:
        assert row.embedding_error is None
        assert np.array_equal(np.asarray(row.embedding, dtype=np.float32),
                              np.asarray(expected[row.id], dtype=np.float32))


@pytest.mark.parametrize("provider", PROVIDERS)
def test_bad_rows_get_errors_and_the_others_vectors(spark: Any, emulator: Emulator,
                                                    provider: str) -> None:
    emulator.configure(max_input_tokens=40, blocked_terms=["forbidden topic"])
    good = texts(12)
    items: list[Any] = [*good[:4], None, "", "   ", *good[4:8], "word " * 60,
                        "a question on the Forbidden Topic", *good[8:]]
    out = embed(frame(spark, items, 2), "text", provider=provider, model=MODELS[provider][0],
                batch_size=5, **settings(emulator, provider)).collect()
    by_id = {row.id: row for row in out}
    expected = dict(zip([i for i, t in enumerate(items) if t in good],
                        core_vectors(emulator, provider, good), strict=True))
    for i, item in enumerate(items):
        row = by_id[i]
        if i in expected:
            assert row.embedding_error is None, row.embedding_error
            assert np.array_equal(np.asarray(row.embedding, dtype=np.float32),
                                  np.asarray(expected[i], dtype=np.float32))
        else:
            assert row.embedding is None and row.embedding_error, (i, item)
    assert "null" in by_id[4].embedding_error and "empty" in by_id[5].embedding_error
    assert "empty" in by_id[6].embedding_error
    assert "BadRequestError" in by_id[11].embedding_error
    assert "maximum context length" in by_id[11].embedding_error
    assert "content management policy" in by_id[12].embedding_error


def test_rerun_redoes_only_the_failed_rows(spark: Any, emulator: Emulator) -> None:
    emulator.configure(blocked_terms=["refund"])
    items = [*texts(10), "refund please", "another refund"]
    creds = settings(emulator, "databricks")
    first = embed(frame(spark, items, 2), "text", provider="databricks", model=MODELS[
        "databricks"][0], **creds).cache()
    assert first.where("embedding_error is not null").count() == 2
    emulator.reset()  # the service stops refusing
    again = embed(first, "text", provider="databricks", model=MODELS["databricks"][0],
                  batch_size=1, **creds).collect()
    assert api_requests(emulator) == 2  # only the two failed rows were sent again
    assert all(r.embedding_error is None and r.embedding for r in again)
    kept = {r.id: r.embedding for r in first.collect() if r.embedding is not None}
    assert all(r.embedding == kept[r.id] for r in again if r.id in kept)
    first.unpersist()


@pytest.mark.parametrize("provider", PROVIDERS)
def test_faults_and_rate_limits_are_ridden_out(spark: Any, emulator: Emulator,
                                               provider: str) -> None:
    emulator.configure(fault_rate=0.3, retry_after_s=0,
                       fault_kinds=["429", "500", "503", "reset", "truncated"])
    items = texts(60)
    from sfmodels_core.options import ClientOptions, RetryPolicy

    patient = ClientOptions(retry=RetryPolicy(max_retries=15, initial_backoff=0.01,
                                              max_backoff=0.05))
    out = embed(frame(spark, items), "text", provider=provider, model=MODELS[provider][0],
                batch_size=2, options=patient, **settings(emulator, provider)).collect()
    # The emulator's draws are seeded: 30 requests or more always meet these faults.
    faults = emulator.counters()["faults"]
    assert faults["429"] > 0 and sum(faults.values()) >= 6
    emulator.configure(fault_rate=0.0)
    expected = core_vectors(emulator, provider, items)
    for row in out:
        assert row.embedding_error is None
        assert np.array_equal(np.asarray(row.embedding, dtype=np.float32),
                              np.asarray(expected[row.id], dtype=np.float32))


def test_a_token_is_minted_once_per_worker_process_not_per_task_or_batch(
        spark: Any, emulator: Emulator) -> None:
    # Settings no other test uses, so this test's clients start without a token.
    creds = settings(emulator, "salesforce", timeout=random.uniform(50, 59))
    spark.conf.set("spark.sql.execution.arrow.maxRecordsPerBatch", "3")
    try:
        df = frame(spark, texts(48), partitions=8)  # 8 tasks, 2 batches of 3 rows each
        for _ in range(2):  # and two jobs
            out = embed(df, "text", provider="salesforce", model=MODELS["salesforce"][0],
                        **creds).collect()
            assert all(r.embedding_error is None for r in out)
    finally:
        spark.conf.unset("spark.sql.execution.arrow.maxRecordsPerBatch")
    minted = emulator.counters()["tokens_minted"]["salesforce"]
    assert 1 <= minted <= 2  # local[2]: two Python workers, reused for all 16 tasks


def test_the_rate_budget_holds_across_tasks(spark: Any, emulator: Emulator) -> None:
    budget = 600.0  # a minute, for the job: two tasks at once, 300 a minute (5 a second) each
    out = embed(frame(spark, texts(36), partitions=4), "text", provider="databricks",
                model=MODELS["databricks"][0], batch_size=1, requests_per_minute=budget,
                **settings(emulator, "databricks")).collect()
    assert all(r.embedding_error is None for r in out)
    times = [t for t, route in emulator.arrivals() if route == "databricks.invocations"]
    assert len(times) == 36
    tasks = 2  # spark.sparkContext.defaultParallelism of local[2]
    # In any stretch of time, no more requests than the budget allows, plus one per task at
    # the start (each task's first request goes at once).
    for i in range(len(times)):
        for j in range(i + 1, len(times)):
            allowed = budget / 60 * (times[j] - times[i]) + tasks + 0.5
            assert j - i + 1 <= allowed, (i, j, times[j] - times[i])


def test_bad_calls_are_refused_on_the_driver(spark: Any, emulator: Emulator) -> None:
    df = frame(spark, texts(3))
    creds = settings(emulator, "databricks")
    gte = MODELS["databricks"][0]
    with pytest.raises(InvalidInputError, match="string column"):
        embed(df, "id", provider="databricks", model=gte, **creds)
    with pytest.raises(InvalidInputError, match="not a column"):
        embed(df, "body", provider="databricks", model=gte, **creds)
    with pytest.raises(InvalidInputError, match="provider"):
        embed(df, "text", provider="openai", model=gte, **creds)
    with pytest.raises(InvalidInputError, match="domain"):
        embed(df, "text", provider="databricks", model=gte, domain="x", **creds)
    with pytest.raises(InvalidInputError, match="localization and tags"):
        embed(df, "text", provider="salesforce", model=MODELS["salesforce"][0],
              params={"instruction": "x"}, **settings(emulator, "salesforce"))
    with pytest.raises(InvalidInputError, match="already exists"):
        embed(df.withColumn("embedding", df.text), "text", provider="databricks", model=gte,
              **creds)
    vectors = embed(df, "text", provider="databricks", model=gte, **creds)
    with pytest.raises(InvalidInputError, match="both"):
        embed(vectors.drop("embedding_error"), "text", provider="databricks", model=gte,
              **creds)
    assert api_requests(emulator) == 0

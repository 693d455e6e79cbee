"""The parts of sfmodels_spark that need no Spark session: the budget arithmetic, settings,
the per-process client cache, structured-output types and the per-row work itself."""

from __future__ import annotations

from array import array
from typing import Any

import httpx
import pytest
from pyspark.sql import types as T

from sfmodels_core import DatabricksClient, SalesforceClient
from sfmodels_core.errors import (
    ConfigurationError,
    InvalidInputError,
    NotFoundError,
    SFModelsError,
)
from sfmodels_core.integration.batch import connection as conn
from sfmodels_core.integration.batch import rows
from sfmodels_core.integration.batch.budget import parallel_tasks, per_task_rate
from sfmodels_core.options import ClientOptions, RetryPolicy
from sfmodels_emulator import Emulator
from sfmodels_spark.budget import task_slots
from sfmodels_spark.schema import answer_schemas, json_schema_of, spark_type_of

from .conftest import MODELS, api_requests, settings


# -- the budget -----------------------------------------------------------------------------------
class Conf:
    def __init__(self, values: dict[str, str]) -> None:
        self.values = values

    def get(self, key: str, default: str | None = None) -> str:
        if key in self.values:
            return self.values[key]
        if default is None:
            raise KeyError(key)
        return default


class Session:
    """A stand-in for a SparkSession: classic (with a SparkContext) or Connect (without)."""

    def __init__(self, parallelism: int | None, conf: dict[str, str]) -> None:
        self.parallelism = parallelism
        self.conf = Conf(conf)

    @property
    def sparkContext(self) -> Any:
        if self.parallelism is None:
            raise NotImplementedError("Spark Connect has no SparkContext")
        return type("Context", (), {"defaultParallelism": self.parallelism})()


def test_the_budget_is_split_across_the_tasks_that_run_at_once() -> None:
    assert task_slots(Session(16, {})) == 16
    assert task_slots(Session(16, {"spark.task.cpus": "4"})) == 4
    assert task_slots(Session(None, {"spark.default.parallelism": "8"})) == 8
    assert task_slots(Session(None, {})) is None
    assert parallel_tasks(task_slots(Session(16, {})), None) == 16
    assert parallel_tasks(task_slots(Session(None, {})), 6) == 6
    with pytest.raises(ConfigurationError, match="max_parallel_tasks"):
        parallel_tasks(task_slots(Session(None, {})), None)
    for bad in (0, -1, 2.5, True):
        with pytest.raises(InvalidInputError):
            parallel_tasks(4, bad)  # type: ignore[arg-type]
    assert per_task_rate(1200, 16) == 75.0  # 1,200 a minute for the job: 75 for each task
    assert per_task_rate(None, 16) is None
    with pytest.raises(InvalidInputError):
        per_task_rate(0, 4)


# -- settings and the client cache ----------------------------------------------------------------
def test_settings_resolve_on_the_driver_from_arguments_then_environment() -> None:
    env = {"SALESFORCE_DOMAIN": "https://acme.my.salesforce.com",
           "SALESFORCE_CLIENT_ID": "key", "SALESFORCE_CLIENT_SECRET": "secret"}
    sf = conn.resolve("salesforce", {}, env=env)
    assert (sf.url, sf.client_id, sf.token) == ("https://acme.my.salesforce.com", "key", None)
    assert sf.client_secret is not None and sf.client_secret.get_secret_value() == "secret"
    token = conn.resolve("salesforce", {"access_token": "jwt"}, env=env)
    assert token.token is not None and token.client_secret is None
    db = conn.resolve("databricks", {"host": "adb-1.azuredatabricks.net", "token": "dapi"},
                      env={})
    assert db.url == "https://adb-1.azuredatabricks.net" and db.token is not None
    with pytest.raises(InvalidInputError, match="unknown databricks setting"):
        conn.resolve("databricks", {"domain": "x"}, env={})
    with pytest.raises(ConfigurationError):
        conn.resolve("databricks", {}, env={"DATABRICKS_CONFIG_FILE": "/nonexistent"})


def test_one_client_per_connection_and_options_is_kept() -> None:
    connection = conn.resolve("databricks", {"host": "https://h.example", "api_key": "t"},
                              env={})
    first = conn.client_for(connection, ClientOptions(timeout=11.0))
    assert conn.client_for(connection, ClientOptions(timeout=11.0)) is first
    assert isinstance(first, DatabricksClient) and first.host == "https://h.example"
    assert conn.client_for(connection, ClientOptions(timeout=12.0)) is not first
    for i in range(conn.MAX_CLIENTS):
        conn.client_for(connection, ClientOptions(timeout=20.0 + i))
    assert conn.client_for(connection, ClientOptions(timeout=11.0)) is not first  # evicted


# -- structured-output types ----------------------------------------------------------------------
def test_a_struct_becomes_a_strict_json_schema_and_back() -> None:
    struct = T.StructType([T.StructField("name", T.StringType(), False),
                           T.StructField("tags", T.ArrayType(T.StringType(), False), True),
                           T.StructField("score", T.DoubleType(), False)])
    schema = json_schema_of(struct)
    assert schema == {"type": "object", "additionalProperties": False,
                      "required": ["name", "tags", "score"],
                      "properties": {"name": {"type": "string"},
                                     "tags": {"type": ["array", "null"],
                                              "items": {"type": "string"}},
                                     "score": {"type": "number"}}}
    assert spark_type_of(schema).simpleString() == \
        "struct<name:string,tags:array<string>,score:double>"
    assert answer_schemas(struct) == (schema, struct)
    with pytest.raises(InvalidInputError):
        spark_type_of({"type": "string"})
    with pytest.raises(InvalidInputError):
        json_schema_of(T.StructType([T.StructField("b", T.BinaryType())]))


def test_json_schemas_map_to_the_spark_types_their_answers_fit() -> None:
    schema = {"type": "object", "$defs": {"item": {"type": "object", "properties": {
        "sku": {"type": "string"}, "qty": {"type": "integer"}}}},
        "properties": {"items": {"type": "array", "items": {"$ref": "#/$defs/item"}},
                       "note": {"anyOf": [{"type": "string"}, {"type": "null"}]},
                       "mixed": {"anyOf": [{"type": "string"}, {"type": "integer"}]},
                       "free": {"type": "object"},
                       "level": {"enum": ["low", "high"]}}}
    assert spark_type_of(schema).simpleString() == (
        "struct<items:array<struct<sku:string,qty:bigint>>,note:string,mixed:string,"
        "free:string,level:string>")


# -- the per-row work, on the emulator without Spark ----------------------------------------------
def client(emulator: Emulator, provider: str, **options: Any) -> Any:
    cls = SalesforceClient if provider == "salesforce" else DatabricksClient
    return cls(env={}, **settings(emulator, provider), **options)


def test_one_refused_text_costs_a_few_requests_not_the_batch(emulator: Emulator) -> None:
    emulator.configure(blocked_terms=["secret plan"])
    texts = [f"text number {i}" for i in range(40)]
    texts[13] = "the secret plan"
    with client(emulator, "databricks", batch_size=8, max_concurrency=1) as db:
        vectors, errors = rows.embed_rows(db, MODELS["databricks"][0], texts, [True] * 40, {})
    assert [i for i, e in enumerate(errors) if e] == [13]
    assert all(v is not None for i, v in enumerate(vectors) if i != 13)
    # The bulk call stops at its second batch; then each of the 5 batches alone; then the
    # refused batch of 8 is halved down to the row: two requests for each of 8→4→2→1.
    assert api_requests(emulator) == 2 + 5 + 2 * 3


def test_a_batch_the_service_finds_too_large_is_split_until_it_fits(emulator: Emulator) -> None:
    emulator.configure(embedding_max_batch=3)
    texts = [f"text number {i}" for i in range(10)]
    with client(emulator, "salesforce", batch_size=8) as sf:
        vectors, errors = rows.embed_rows(sf, MODELS["salesforce"][0], texts, [True] * 10, {})
    assert errors == [None] * 10
    with client(emulator, "salesforce", batch_size=3) as small:
        expected = small.embed(MODELS["salesforce"][0], texts).vectors
    assert vectors == [array("f", vector).tolist() for vector in expected]


def test_a_failure_after_retries_marks_its_rows_and_an_unknown_model_ends_the_task(
        emulator: Emulator) -> None:
    emulator.configure(fault_rate=1.0, fault_kinds=["503"], retry_after_s=0)
    quick = ClientOptions(retry=RetryPolicy(max_retries=0))
    with client(emulator, "databricks", options=quick) as db:
        vectors, errors = rows.embed_rows(db, MODELS["databricks"][0], ["a", "b", None],
                                          [True, True, True], {})
        assert vectors == [None, None, None]
        assert errors[0] == errors[1] and errors[0] is not None and "ServerError" in errors[0]
        assert "null" in str(errors[2])
        assert api_requests(emulator) == 1  # not retried row by row: a rerun redoes them
        emulator.configure(fault_rate=0.0)
        with pytest.raises(NotFoundError):
            rows.embed_rows(db, "no-such-endpoint", ["a"], [True], {})
        with pytest.raises(NotFoundError):
            rows.generate_rows(db, rows.ChatSpec("no-such-endpoint"), ["hi"], [True])


def test_rows_not_to_do_are_not_sent(emulator: Emulator) -> None:
    with client(emulator, "databricks") as db:
        vectors, errors = rows.embed_rows(db, MODELS["databricks"][0], ["a", "b"],
                                          [False, True], {})
        answers = rows.generate_rows(db, rows.ChatSpec(MODELS["databricks"][1]), ["a", "b"],
                                     [True, False])
    assert vectors[0] is None and errors[0] is None and vectors[1] is not None
    assert answers[1] is None and answers[0] is not None and answers[0].text
    assert api_requests(emulator) == 2


def test_a_content_filtered_answer_is_an_error() -> None:
    def answer(request: httpx.Request) -> httpx.Response:
        return httpx.Response(200, json={
            "id": "chatcmpl_1", "model": "m", "usage": {"prompt_tokens": 3},
            "choices": [{"index": 0, "finish_reason": "content_filter",
                         "message": {"role": "assistant", "content": ""}}]})

    with DatabricksClient(host="https://h.example", api_key="t", env={},
                          transport=httpx.MockTransport(answer)) as db:
        [result] = rows.generate_rows(db, rows.ChatSpec("llm"), ["hi"], [True])
    assert result is not None and result.generation_id == "chatcmpl_1"
    assert result.error is not None and "content filter" in result.error


def test_feedback_ids_are_derived_from_the_row() -> None:
    a = rows.feedback_id("gen", "GOOD", "nice")
    assert a == rows.feedback_id("gen", "GOOD", "nice")
    assert len({a, rows.feedback_id("gen", "BAD", "nice"), rows.feedback_id("gen", "GOOD", None),
                rows.feedback_id("gen2", "GOOD", "nice")}) == 4
    assert [rows.rating_value(v) for v in ("good", " Bad ", True, False, None)] == [
        "GOOD", "BAD", "GOOD", "BAD", None]
    with pytest.raises(InvalidInputError):
        rows.rating_value("5 stars")


def test_the_mlflow_rows_and_the_errors_that_end_a_task(
        monkeypatch: pytest.MonkeyPatch) -> None:
    answers: dict[str, Exception] = {"tr-gone": SFModelsError("no such trace",
                                                              error_code="NOT_FOUND")}
    sent: list[tuple[Any, ...]] = []

    def log(record: Any, rating: str, **kwargs: Any) -> Any:
        if record.trace_id in answers:
            raise answers[record.trace_id]
        sent.append((record.trace_id, record.generation_ids, rating, kwargs))
        return type("Logged", (), {"feedback_id": f"a-{len(sent)}"})()

    monkeypatch.setattr(rows, "log_feedback", log)
    ids, errors = rows.assessment_rows(
        ["tr-1", "tr-gone", None, "tr-2", "tr-3", "tr-4"], [None, None, None, 7, "s", "s"],
        ["good", True, "GOOD", "BAD", None, "BAD"], ["ok", None, None, None, None, 1.5],
        [None, "ann", None, None, None, None], [True] * 6, max_concurrency=3,
        scrub=lambda text: text.replace("trace", "TRACE"))
    assert ids == ["a-1", None, None, None, None, None]
    assert errors[0] is None and errors[1] == "SFModelsError: no such TRACE (code NOT_FOUND)"
    assert [e and e.split(":")[1].strip() for e in errors[2:]] == [
        "the trace id is null", "the span id is a int, not a string",
        "the rating must be 'GOOD', 'BAD', true or false (an MLflow assessment needs a value), "
        "got None", "the comment is a float, not a string"]
    assert sent == [("tr-1", [], "GOOD", {"comment": "ok", "user": None})]
    answers["tr-1"] = SFModelsError("refused", error_code="UNAUTHENTICATED")
    with pytest.raises(SFModelsError, match="refused"):
        rows.assessment_rows(["tr-1"], [None], ["GOOD"], [None], [None], [True])
    assert rows.assessment_rows(["tr-1"], [None], ["GOOD"], [None], [None], [False]) == (
        [None], [None])

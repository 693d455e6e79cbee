"""``sfmodels_spark.generate`` and ``submit_feedback`` on local Spark against the emulator."""

from __future__ import annotations

from typing import Any

import pytest
from pyspark.sql import types as T

from sfmodels_core import DatabricksClient, SalesforceClient
from sfmodels_core.errors import InvalidInputError
from sfmodels_core.integration.batch.rows import feedback_id
from sfmodels_emulator import Emulator
from sfmodels_spark import generate, submit_feedback

from .conftest import MODELS, api_requests, settings

# Starting Spark and its first Python workers takes tens of seconds on a busy 2-core machine.
pytestmark = pytest.mark.timeout(300)


PROVIDERS = ["salesforce", "databricks"]
SYSTEM = "Answer in one sentence."
QUESTIONS = [
    "Context: Orders ship within 3 days. Question: How fast do orders ship?",
    "Context: Returns are free for 30 days. Question: Are returns free?",
    "Context: Support is open from 9 to 5. Question: When is support open?",
    "Context: The warranty lasts 2 years. Question: How long is the warranty?",
    "Context: Shipping to Canada costs 10 dollars. Question: What does Canada shipping cost?",
    "Context: Gift cards never expire. Question: Do gift cards expire?",
]


def frame(spark: Any, items: list[Any], partitions: int = 2) -> Any:
    rows = spark.sparkContext.parallelize(list(enumerate(items)), partitions)
    return spark.createDataFrame(rows, "id long, prompt string")


def core_answers(emulator: Emulator, provider: str, prompts: list[str]) -> list[Any]:
    model = MODELS[provider][1]
    if provider == "salesforce":
        with SalesforceClient(env={}, **settings(emulator, provider)) as sf:
            return [sf.chat(model, [{"role": "system", "content": SYSTEM},
                                    {"role": "user", "content": p}]) for p in prompts]
    with DatabricksClient(env={}, **settings(emulator, provider)) as db:
        return [db.chat(model, [{"role": "system", "content": SYSTEM},
                                {"role": "user", "content": p}]) for p in prompts]


@pytest.mark.parametrize("provider", PROVIDERS)
def test_answers_equal_the_core_clients(spark: Any, emulator: Emulator, provider: str) -> None:
    out = generate(frame(spark, QUESTIONS), "prompt", provider=provider,
                   model=MODELS[provider][1], system=SYSTEM, **settings(emulator, provider))
    assert out.schema["response"].dataType.simpleString() == (
        "struct<text:string,generation_id:string,finish_reason:string,usage:struct<"
        "prompt_tokens:bigint,completion_tokens:bigint,total_tokens:bigint>,error:string>")
    got = sorted(out.collect(), key=lambda r: r.id)
    assert api_requests(emulator) == len(QUESTIONS)  # once per row
    expected = core_answers(emulator, provider, QUESTIONS)
    for row, core in zip(got, expected, strict=True):
        answer = row.response
        assert answer.error is None
        assert answer.text == core.text and answer.finish_reason == core.finish_reason
        assert answer.usage.asDict() == {"prompt_tokens": core.usage.prompt_tokens,
                                         "completion_tokens": core.usage.completion_tokens,
                                         "total_tokens": core.usage.total_tokens}
        assert answer.generation_id
    assert len({r.response.generation_id for r in got}) == len(got)


@pytest.mark.parametrize("provider", PROVIDERS)
def test_bad_rows_get_errors_and_the_others_answers(spark: Any, emulator: Emulator,
                                                    provider: str) -> None:
    emulator.configure(max_input_tokens=60, blocked_terms=["forbidden topic"])
    items = [QUESTIONS[0], None, "", "word " * 80, "Tell me about the forbidden topic",
             QUESTIONS[1]]
    got = sorted(generate(frame(spark, items), "prompt", provider=provider,
                          model=MODELS[provider][1], **settings(emulator, provider)).collect(),
                 key=lambda r: r.id)
    answers = [r.response for r in got]
    assert answers[0].error is None and answers[0].text
    assert answers[5].error is None and answers[5].text
    assert "null" in answers[1].error and "empty" in answers[2].error
    assert "BadRequestError" in answers[3].error and "context length" in answers[3].error
    assert "content management policy" in answers[4].error
    assert all(a.text is None for a in answers[1:5])
    assert api_requests(emulator) == 4  # null and empty prompts are never sent


def test_a_column_of_messages(spark: Any, emulator: Emulator) -> None:
    rows = [(0, [("system", SYSTEM), ("user", QUESTIONS[0])]), (1, [("user", QUESTIONS[1])])]
    df = spark.createDataFrame(rows, "id long, chat array<struct<role:string, content:string>>")
    out = sorted(generate(df, "chat", provider="databricks", model=MODELS["databricks"][1],
                          **settings(emulator, "databricks")).collect(), key=lambda r: r.id)
    assert [r.response.error for r in out] == [None, None]
    assert out[0].response.text == core_answers(emulator, "databricks", QUESTIONS[:1])[0].text


SCHEMA = T.StructType([T.StructField("answer", T.StringType()),
                       T.StructField("days", T.LongType()),
                       T.StructField("confident", T.BooleanType())])


@pytest.mark.parametrize("provider", PROVIDERS)
@pytest.mark.parametrize("kind", ["struct", "json_schema"])
def test_structured_answers_are_parsed_into_a_struct(spark: Any, emulator: Emulator,
                                                     provider: str, kind: str) -> None:
    schema: Any = SCHEMA if kind == "struct" else {
        "type": "object", "properties": {"answer": {"type": "string"},
                                         "days": {"type": "integer"},
                                         "confident": {"type": "boolean"}},
        "required": ["answer", "days", "confident"], "additionalProperties": False}
    out = generate(frame(spark, QUESTIONS[:3]), "prompt", provider=provider,
                   model=MODELS[provider][1], schema=schema, **settings(emulator, provider))
    parsed = out.schema["response"].dataType["parsed"].dataType
    assert parsed.simpleString() == "struct<answer:string,days:bigint,confident:boolean>"
    got = sorted(out.collect(), key=lambda r: r.id)
    for row in got:
        assert row.response.error is None, row.response.error
        assert isinstance(row.response.parsed.answer, str)
        assert isinstance(row.response.parsed.days, int)
    assert got[0].response.parsed.days == 3  # "Orders ship within 3 days"


def test_rerun_redoes_only_the_failed_rows(spark: Any, emulator: Emulator) -> None:
    emulator.configure(blocked_terms=["returns"])
    creds = settings(emulator, "salesforce")
    first = generate(frame(spark, QUESTIONS), "prompt", provider="salesforce",
                     model=MODELS["salesforce"][1], **creds).cache()
    failed = first.where("response.error is not null").count()
    assert failed == 1
    emulator.reset()
    again = sorted(generate(first, "prompt", provider="salesforce",
                            model=MODELS["salesforce"][1], **creds).collect(),
                   key=lambda r: r.id)
    assert api_requests(emulator) == failed
    assert all(r.response.error is None for r in again)
    before = {r.id: r.response.generation_id for r in first.collect()}
    assert sum(before[r.id] == r.response.generation_id for r in again) == len(QUESTIONS) - 1
    first.unpersist()


def test_bad_calls_are_refused_on_the_driver(spark: Any, emulator: Emulator) -> None:
    df = frame(spark, QUESTIONS[:2])
    with pytest.raises(InvalidInputError, match="no generation parameters"):
        generate(df, "prompt", provider="salesforce", model=MODELS["salesforce"][1],
                 params={"temperature": 0.2}, **settings(emulator, "salesforce"))
    with pytest.raises(InvalidInputError, match="prompt must be a string column"):
        generate(df, "id", provider="databricks", model=MODELS["databricks"][1],
                 **settings(emulator, "databricks"))
    with pytest.raises(InvalidInputError, match="stream"):
        generate(df, "prompt", provider="databricks", model=MODELS["databricks"][1],
                 params={"stream": True}, **settings(emulator, "databricks"))
    assert api_requests(emulator) == 0


# -- feedback -------------------------------------------------------------------------------------
def test_feedback_goes_once_per_row_with_ids_that_do_not_change(spark: Any,
                                                                emulator: Emulator) -> None:
    creds = settings(emulator, "salesforce")
    ratings = spark.createDataFrame(
        [(0, "gen-a", "good", "Accurate"), (1, "gen-b", "BAD", None), (2, "gen-c", None, "meh"),
         (3, None, "GOOD", None), (4, "gen-e", "great", None)],
        "id long, generation_id string, rating string, comment string")
    first = submit_feedback(ratings, "generation_id", "rating", "comment", **creds).cache()
    rows = {r.id: r.feedback for r in first.collect()}
    assert [rows[i].error for i in range(3)] == [None, None, None]
    assert "generation id is null" in rows[3].error and "rating" in rows[4].error
    stored = emulator.feedback()
    assert len(stored) == 3
    assert {(f["id"], f["generationId"], f["feedback"], f.get("feedbackText"))
            for f in stored} == {
        (feedback_id("gen-a", "GOOD", "Accurate"), "gen-a", "GOOD", "Accurate"),
        (feedback_id("gen-b", "BAD", None), "gen-b", "BAD", None),
        (feedback_id("gen-c", None, "meh"), "gen-c", None, "meh")}
    assert rows[0].feedback_id == feedback_id("gen-a", "GOOD", "Accurate")
    # Rerun on the result: only the rows in error are tried again (and fail again, locally).
    emulator.reset()
    again = submit_feedback(first, "generation_id", "rating", "comment", **creds).collect()
    assert emulator.feedback() == [] and api_requests(emulator) == 0
    assert {r.id: r.feedback.feedback_id for r in again} == {
        i: f.feedback_id for i, f in rows.items()}
    first.unpersist()


def test_feedback_ids_follow_the_generations_of_a_generate_run(spark: Any,
                                                               emulator: Emulator) -> None:
    creds = settings(emulator, "salesforce")
    answered = generate(frame(spark, QUESTIONS[:3]), "prompt", provider="salesforce",
                        model=MODELS["salesforce"][1], **creds)
    rated = answered.selectExpr("id", "response.generation_id AS gen",
                                "id % 2 = 0 AS thumbs_up")
    out = submit_feedback(rated, "gen", "thumbs_up", **creds).collect()
    assert all(r.feedback.error is None for r in out)
    assert sorted(f["feedback"] for f in emulator.feedback()) == ["BAD", "GOOD", "GOOD"]

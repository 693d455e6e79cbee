"""The work of one task, on plain Python lists (no Spark, no pandas).

Each function takes the rows of one Arrow batch with a ``todo`` flag per row (False: a previous
run's result stands, nothing is sent) and returns one result and one error message per row.
Rows go through the core client's bulk path (``embed`` for embeddings, the core's batch runner
for chats and feedback) with the client's concurrency, retries and pacing; Databricks feedback
goes to MLflow instead, through the kit's ``log_feedback`` (MLflow's own client retries).

An error that concerns some rows is returned on those rows and the others carry on; an error
that concerns every row (credentials refused, model or endpoint unknown) ends the task, since
every other row would fail the same way. A shipped token that expired
(:class:`~sfmodels_core.errors.TokenExpiredError`) is the exception: the rows done before it
keep their results, the others get it as their error, and a rerun on the saved output redoes
them.
"""

from __future__ import annotations

import json
import math
import uuid
from collections.abc import Callable, Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from typing import Any, TypeVar

from sfmodels_core import bulk
from sfmodels_core._schema import validate
from sfmodels_core.databricks import DatabricksClient
from sfmodels_core.errors import (
    AuthenticationError,
    BadRequestError,
    ConfigurationError,
    InvalidInputError,
    ModelReplyError,
    NotFoundError,
    PermissionDeniedError,
    SFModelsError,
    TokenExpiredError,
)
from sfmodels_core.integration.feedback import GenerationRecord, normalize_rating
from sfmodels_core.integration.mlflow_feedback import log_feedback
from sfmodels_core.integration.salesforce import SalesforceChat
from sfmodels_core.salesforce import SalesforceClient
from sfmodels_core.tool_protocol import json_protocol
from sfmodels_core.types import EmbeddingResult, Usage
from sfmodels_core.vectors import Vectors

__all__ = [
    "FEEDBACK_NAMESPACE",
    "JOB_ERRORS",
    "MAX_ERROR",
    "MLFLOW_JOB_CODES",
    "ROUNDS_PER_CALL",
    "Answer",
    "ChatSpec",
    "Client",
    "assessment_rows",
    "chat_one",
    "describe",
    "each",
    "each_at",
    "embed_rows",
    "feedback_id",
    "feedback_rows",
    "generate_rows",
    "messages_for",
    "rating_value",
    "text_problem",
]

T = TypeVar("T")
R = TypeVar("R")
Client = SalesforceClient | DatabricksClient

#: Errors that end the task: they would be the same for every row (but see :func:`_ends_task`).
JOB_ERRORS = (ConfigurationError, AuthenticationError, PermissionDeniedError, NotFoundError)
#: One bulk embedding call covers this many rounds of ``max_concurrency`` requests. A call that
#: still fails after its retries marks its rows with the error (a rerun redoes them).
ROUNDS_PER_CALL = 4
#: Error messages longer than this are cut.
MAX_ERROR = 2000
#: Feedback ids are UUIDs derived from the row, so a rerun sends the same id again.
FEEDBACK_NAMESPACE = uuid.UUID("6f1d7c2a-41c9-5b7e-9a53-2f0e8d6b4c11")


def _ends_task(exc: SFModelsError) -> bool:
    """Whether ``exc`` ends the task: one of :data:`JOB_ERRORS`, except an expired shipped
    token, which stays on the rows it hit so that the rows already done keep their results."""
    return isinstance(exc, JOB_ERRORS) and not isinstance(exc, TokenExpiredError)


def describe(exc: BaseException) -> str:
    """The row's error message: the error's class and its text (which never holds a secret)."""
    text = f"{type(exc).__name__}: {exc}"
    return text if len(text) <= MAX_ERROR else text[:MAX_ERROR - 3] + "..."


def each(client: Client, items: Sequence[T], fn: Callable[[T], R]) -> list[R | SFModelsError]:
    """``fn`` over every item, ``max_concurrency`` at a time over the client's shared pool and
    adaptive limit; an item's error is its result, except the errors that end the task."""
    return each_at(client.max_concurrency, items, fn)


def each_at(max_concurrency: int, items: Sequence[T], fn: Callable[[T], R],
            ends_task: Callable[[SFModelsError], bool] = _ends_task,
            ) -> list[R | SFModelsError]:
    """``fn`` over every item, ``max_concurrency`` at a time; an item's error is its result,
    except an error for which ``ends_task`` is true (and any error that is not ours)."""

    def one(item: T) -> R | SFModelsError:
        try:
            return fn(item)
        except SFModelsError as exc:
            if ends_task(exc):
                raise
            return exc

    workers = min(max_concurrency, len(items))
    if workers <= 1:
        return [one(item) for item in items]
    with ThreadPoolExecutor(max_workers=workers, thread_name_prefix="sfmodels-spark") as pool:
        return list(pool.map(one, items))


# -- embeddings -----------------------------------------------------------------------------------
def text_problem(text: Any, what: str = "text") -> str | None:
    if text is None or (isinstance(text, float) and math.isnan(text)):
        return f"InvalidInputError: the {what} is null"
    if not isinstance(text, str):
        return f"InvalidInputError: the {what} is a {type(text).__name__}, not a string"
    if not text.strip():
        return f"InvalidInputError: the {what} is empty"
    return None


def embed_rows(client: Client, model: str, texts: Sequence[Any], todo: Sequence[bool],
               params: Mapping[str, Any],
               convert: Callable[[Vectors], Sequence[Any]] = Vectors.tolist,
               ) -> tuple[list[Any], list[str | None]]:
    """One vector (or None and an error) per row to do; None and None for the others.

    Each bulk call returns compact float32 vectors (base64 on the wire where the endpoint
    allows); ``convert`` turns them into the rows' values as the call returns (default: lists).
    """
    vectors: list[Any] = [None] * len(texts)
    errors: list[str | None] = [None] * len(texts)
    pending = []
    for i, (text, do) in enumerate(zip(texts, todo, strict=True)):
        if do:
            problem = text_problem(text)
            if problem is None:
                pending.append(i)
            else:
                errors[i] = problem
    size = client.batch_size * client.max_concurrency * ROUNDS_PER_CALL

    def send(rows: Sequence[int]) -> Vectors:
        result: EmbeddingResult[Vectors] = client.embed(model, [texts[i] for i in rows],
                                                        compact=True, **params)
        return result.vectors

    def settle(rows: Sequence[int], result: Vectors | SFModelsError) -> None:
        if not isinstance(result, SFModelsError):
            for i, vector in zip(rows, convert(result), strict=True):
                vectors[i] = vector
        elif isinstance(result, BadRequestError) and len(rows) > 1:
            # The service refused the request: find the rows it refuses, one request's worth
            # at a time, then halving. Refused rows get the error; the others their vectors.
            parts = (bulk.split(rows, client.batch_size) if len(rows) > client.batch_size
                     else [rows[:len(rows) // 2], rows[len(rows) // 2:]])
            for part, outcome in zip(parts, each(client, parts, send), strict=True):
                settle(part, outcome)
        else:
            message = describe(result)
            for i in rows:
                errors[i] = message

    for start in range(0, len(pending), size):
        unit = pending[start:start + size]
        try:
            outcome: Vectors | SFModelsError = send(unit)
        except SFModelsError as exc:
            if _ends_task(exc):
                raise
            outcome = exc
        settle(unit, outcome)
    return vectors, errors


# -- chat -----------------------------------------------------------------------------------------
@dataclass(frozen=True)
class ChatSpec:
    """What every row's chat sends besides its own prompt. ``schema`` is the JSON Schema of a
    structured answer; ``params`` are Databricks generation parameters."""

    model: str
    system: str | None = None
    schema: Mapping[str, Any] | None = None
    params: Mapping[str, Any] = field(default_factory=dict)


@dataclass
class Answer:
    text: str | None = None
    generation_id: str | None = None
    finish_reason: str | None = None
    usage: Usage | None = None
    error: str | None = None


def messages_for(value: Any, system: str | None) -> list[dict[str, Any]]:
    """The chat messages of one row: its prompt, or its list of messages, after ``system``."""
    head = [{"role": "system", "content": system}] if system else []
    if isinstance(value, str) or value is None or isinstance(value, float):
        problem = text_problem(value, "prompt")
        if problem is not None:
            raise InvalidInputError(problem.removeprefix("InvalidInputError: "))
        return [*head, {"role": "user", "content": value}]
    if not isinstance(value, Sequence) or not value:
        raise InvalidInputError("the messages are empty")
    return [*head, *(dict(m) if isinstance(m, Mapping) else m for m in value)]


def _structured(text: str, schema: Mapping[str, Any]) -> tuple[str, str | None]:
    """(the answer as canonical JSON, or as given when unusable; the problem, if any)."""
    try:
        value = json.loads(text)
    except ValueError:
        return text, "the reply is not JSON"
    problems = validate(value, schema)
    if problems:
        return text, "the reply does not fit the schema: " + "; ".join(problems[:5])
    return json.dumps(value, ensure_ascii=False), None


def chat_one(client: Client, spec: ChatSpec, value: Any) -> Answer:
    messages = messages_for(value, spec.system)
    if isinstance(client, SalesforceClient):
        # The kit's Salesforce call and answer reader, as the framework classes use them.
        protocol = None if spec.schema is None else json_protocol(spec.schema)
        said = SalesforceChat(spec.model, messages, {}, protocol=protocol).run(client.chat)
        answer = Answer(said.text, said.generation_id, said.finish_reason, said.usage)
        if said.problems:
            answer.error = describe(ModelReplyError(
                "the reply did not follow the JSON format, even after one repair: "
                + "; ".join(said.problems[:5]), problems=said.problems))
    else:
        params = dict(spec.params)
        if spec.schema is not None:
            params["response_format"] = {"type": "json_schema", "json_schema": {
                "name": "answer", "schema": dict(spec.schema), "strict": True}}
        completion = client.chat(spec.model, messages, **params)
        answer = Answer(completion.text, completion.id, completion.finish_reason,
                        completion.usage)
        if spec.schema is not None:
            answer.text, problem = _structured(completion.text, spec.schema)
            if problem is not None:
                answer.error = describe(ModelReplyError(problem))
    if answer.finish_reason == "content_filter" and answer.error is None:
        answer.error = ("ContentFilterError: the provider's content filter withheld the answer "
                        "(finish_reason content_filter)")
    return answer


def generate_rows(client: Client, spec: ChatSpec, values: Sequence[Any],
                  todo: Sequence[bool]) -> list[Answer | None]:
    """One answer per row to do (its error set when it failed); None for the others."""
    rows = [i for i, do in enumerate(todo) if do]
    answers: list[Answer | None] = [None] * len(values)

    def one(i: int) -> Answer:
        return chat_one(client, spec, values[i])

    for i, outcome in zip(rows, each(client, rows, one), strict=True):
        answers[i] = Answer(error=describe(outcome)) if isinstance(
            outcome, SFModelsError) else outcome
    return answers


# -- feedback -------------------------------------------------------------------------------------
def rating_value(rating: Any) -> str | None:
    """GOOD, BAD or None from a rating cell: a null (or NaN) cell is no rating, a boolean
    column's True/False is GOOD/BAD, and a string is read by the kit's one rating rule
    (:func:`~sfmodels_core.integration.feedback.normalize_rating`: any letter case)."""
    if rating is None or (isinstance(rating, float) and math.isnan(rating)):
        return None
    if isinstance(rating, bool):
        return "GOOD" if rating else "BAD"
    try:
        return normalize_rating(rating)
    except InvalidInputError:
        raise InvalidInputError(f"the rating must be 'GOOD', 'BAD', true, false or null, got "
                                f"{rating!r}") from None


def feedback_id(generation_id: str, rating: str | None, text: str | None) -> str:
    """The same id for the same generation, rating and text, on every run."""
    return str(uuid.uuid5(FEEDBACK_NAMESPACE, json.dumps([generation_id, rating, text])))


def feedback_rows(client: SalesforceClient, generation_ids: Sequence[Any],
                  ratings: Sequence[Any], texts: Sequence[Any], todo: Sequence[bool],
                  source: str | None) -> tuple[list[str | None], list[str | None]]:
    """(feedback id, error) per row to do; None and None for the others."""
    ids: list[str | None] = [None] * len(todo)
    errors: list[str | None] = [None] * len(todo)
    work: list[tuple[int, str, str | None, str | None]] = []
    for i, do in enumerate(todo):
        if not do:
            continue
        gen_id, text = generation_ids[i], texts[i]
        text = None if text is None or (isinstance(text, float) and math.isnan(text)) else text
        problem = text_problem(gen_id, "generation id")
        try:
            rating = rating_value(ratings[i])
            if text is not None and not isinstance(text, str):
                raise InvalidInputError(f"the feedback text is a {type(text).__name__}, "
                                        "not a string")
        except InvalidInputError as exc:
            problem = problem or describe(exc)
        if problem is not None:
            errors[i] = problem
            continue
        ids[i] = feedback_id(gen_id, rating, text)
        work.append((i, gen_id, rating, text))

    def send(item: tuple[int, str, str | None, str | None]) -> None:
        i, gen_id, rating, text = item
        client.submit_feedback(gen_id, rating, text=text, source=source, feedback_id=ids[i])

    for item, outcome in zip(work, each(client, work, send), strict=True):
        if isinstance(outcome, SFModelsError):
            errors[item[0]] = describe(outcome)
    return ids, errors


# -- feedback as MLflow assessments (Databricks) --------------------------------------------------
#: MLflow error codes that end the task: every other row would get the same answer.
MLFLOW_JOB_CODES = frozenset({"UNAUTHENTICATED"})


def _ends_mlflow_task(exc: SFModelsError) -> bool:
    return isinstance(exc, ConfigurationError) or exc.error_code in MLFLOW_JOB_CODES


def _required_rating(value: Any) -> str:
    """GOOD or BAD from a rating cell, as :func:`rating_value` reads it; an MLflow assessment
    needs a value, so null is refused too."""
    try:
        rating = rating_value(value)
    except InvalidInputError:
        rating = None
    if rating is None:
        raise InvalidInputError("the rating must be 'GOOD', 'BAD', true or false (an MLflow "
                                f"assessment needs a value), got {value!r}")
    return rating


def _optional_text(value: Any, what: str) -> str | None:
    """A nullable string cell: None for null (or NaN); an error for another type or blank."""
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return None
    if not isinstance(value, str):
        raise InvalidInputError(f"the {what} is a {type(value).__name__}, not a string")
    if not value.strip():
        raise InvalidInputError(f"the {what} is empty")
    return value


def assessment_rows(trace_ids: Sequence[Any], span_ids: Sequence[Any], ratings: Sequence[Any],
                    comments: Sequence[Any], users: Sequence[Any], todo: Sequence[bool], *,
                    max_concurrency: int = 1,
                    scrub: Callable[[str], str] | None = None,
                    ) -> tuple[list[str | None], list[str | None]]:
    """(assessment id, error) per row to do, each rating logged on its MLflow trace (and span,
    when the row names one) as a HUMAN feedback assessment by its user, with its comment as the
    rationale; None and None for the others.

    Logs to MLflow's current tracking URI. Each row's assessment carries the kit's
    ``feedback_key`` of its trace, span, rating, comment and user, so a row already logged
    returns the assessment logged before (from a handler or the command line too).
    ``scrub`` rewrites error messages (to keep a secret in the tracking URI out of them).
    """
    ids: list[str | None] = [None] * len(todo)
    errors: list[str | None] = [None] * len(todo)
    work: list[tuple[int, GenerationRecord, str, str | None, str | None]] = []
    for i, do in enumerate(todo):
        if not do:
            continue
        trace_id = trace_ids[i]
        problem = text_problem(trace_id, "trace id")
        try:
            span_id = _optional_text(span_ids[i], "span id")
            rating = _required_rating(ratings[i])
            comment = comments[i]
            comment = None if comment is None or (
                isinstance(comment, float) and math.isnan(comment)) else comment
            if comment is not None and not isinstance(comment, str):
                raise InvalidInputError(f"the comment is a {type(comment).__name__}, "
                                        "not a string")
            user = _optional_text(users[i], "user")
        except InvalidInputError as exc:
            problem = problem or describe(exc)
        if problem is not None:
            errors[i] = problem
            continue
        work.append((i, GenerationRecord(trace_id, [span_id] if span_id else [],
                                         trace_id=trace_id), rating, comment, user))

    def send(item: tuple[int, GenerationRecord, str, str | None, str | None]) -> str:
        _, record, rating, comment, user = item
        return log_feedback(record, rating, comment=comment, user=user).feedback_id

    for item, outcome in zip(work, each_at(max_concurrency, work, send, _ends_mlflow_task),
                             strict=True):
        if isinstance(outcome, SFModelsError):
            message = describe(outcome)
            errors[item[0]] = scrub(message) if scrub is not None else message
        else:
            ids[item[0]] = outcome
    return ids, errors

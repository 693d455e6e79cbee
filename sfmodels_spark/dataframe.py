"""``embed``, ``generate`` and ``submit_feedback`` over Spark DataFrames.

Each adds its result columns with a pandas UDF (an iterator of Arrow batches per task): the
task's rows go through one cached core client per Python worker process, so every task keeps
``max_concurrency`` requests in flight, retries and paces them, and mints tokens once per
process. Settings are resolved here, on the driver, and shipped inside the UDF. Databricks
feedback is the exception: it goes to MLflow (ratings as assessments on traces), with the
tracking URI resolved here and set in the worker around each batch only.

Per-row results never fail the job: a row the service refuses, or that still fails after its
retries, gets an error message and the other rows carry on. Calling a function again on its
own output redoes only the rows whose error is not null.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Mapping
from contextlib import nullcontext
from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd
from pydantic import SecretStr
from pyspark.sql import Column, DataFrame
from pyspark.sql import functions as F
from pyspark.sql import types as T
from pyspark.sql.pandas.functions import pandas_udf

from sfmodels_core._validation import require_name
from sfmodels_core.databricks import _wire as databricks_wire
from sfmodels_core.errors import InvalidInputError
from sfmodels_core.integration._mlflow_tracking import resolve_tracking_uri, use_tracking_uri
from sfmodels_core.integration.batch import rows
from sfmodels_core.integration.batch.budget import parallel_tasks, per_task_rate
from sfmodels_core.integration.batch.connection import (
    Connection,
    Tracking,
    check_provider,
    client_for,
    resolve,
)
from sfmodels_core.integration.mlflow_feedback import require_mlflow
from sfmodels_core.options import ClientOptions
from sfmodels_core.salesforce import SalesforceClient
from sfmodels_core.salesforce import _wire as salesforce_wire
from sfmodels_core.vectors import Vectors

from .budget import task_slots
from .schema import answer_schemas

__all__ = [
    "ANSWER_TYPE",
    "EMBED_TYPE",
    "FEEDBACK_TYPE",
    "MLFLOW_CONCURRENCY",
    "RAW_ANSWER_TYPE",
    "REDO",
    "RESULT",
    "USAGE_TYPE",
    "VECTOR_TYPE",
    "Job",
    "embed",
    "generate",
    "submit_feedback",
]

RESULT = "__sfmodels_result"
REDO = "__sfmodels_redo"

VECTOR_TYPE = T.ArrayType(T.FloatType(), True)
EMBED_TYPE = T.StructType([T.StructField("vector", VECTOR_TYPE, True),
                           T.StructField("error", T.StringType(), True)])
USAGE_TYPE = T.StructType([T.StructField(name, T.LongType(), True)
                           for name in ("prompt_tokens", "completion_tokens", "total_tokens")])
ANSWER_TYPE = T.StructType([
    T.StructField("text", T.StringType(), True),
    T.StructField("generation_id", T.StringType(), True),
    T.StructField("finish_reason", T.StringType(), True),
    T.StructField("usage", USAGE_TYPE, True),
    T.StructField("error", T.StringType(), True),
])
#: What the generate UDF returns: flat, as Arrow batches of pyspark 3.5 cannot hold a struct
#: inside a struct; the ``usage`` struct is assembled in Spark.
RAW_ANSWER_TYPE = T.StructType([
    *ANSWER_TYPE.fields[:3], *USAGE_TYPE.fields, ANSWER_TYPE["error"]])
FEEDBACK_TYPE = T.StructType([T.StructField("feedback_id", T.StringType(), True),
                              T.StructField("error", T.StringType(), True)])
#: Chat parameters refused because the answer would not be one whole text per row.
_REFUSED_PARAMS = {"stream": "answers are read whole", "n": "each row gets one answer",
                   "tools": "tool calls are not read", "tool_choice": "tool calls are not read"}


@dataclass(frozen=True)
class Job:
    """What every task of one call needs: where to send, and how."""

    connection: Connection
    options: ClientOptions


def _job(df: DataFrame, provider: Any, settings: Mapping[str, Any], *,
         requests_per_minute: float | None, max_parallel_tasks: int | None,
         options: ClientOptions | None, **client_options: Any) -> Job:
    connection = resolve(provider, settings)
    if options is not None and not isinstance(options, ClientOptions):
        raise InvalidInputError(f"options must be a ClientOptions, got {options!r}")
    if options is not None and options.requests_per_minute is not None:
        raise InvalidInputError(
            "requests_per_minute is the whole job's budget: pass it to the function itself, "
            "not inside options (it is split across the tasks that run at once)")
    rate = None
    if requests_per_minute is not None or max_parallel_tasks is not None:
        tasks = parallel_tasks(task_slots(df.sparkSession), max_parallel_tasks)
        rate = per_task_rate(requests_per_minute, tasks)
    built = ClientOptions.build(options, requests_per_minute=rate, **client_options)
    return Job(connection, built)


def _column(df: DataFrame, column: Any, what: str) -> tuple[Column, T.DataType]:
    if isinstance(column, str):
        if column not in df.columns:
            raise InvalidInputError(f"{what} {column!r} is not a column of the DataFrame; it has "
                                    f"{', '.join(df.columns)}")
        col = F.col(column)
    elif isinstance(column, Column):
        col = column
    else:
        raise InvalidInputError(f"{what} must be a column name or a Column, got "
                                f"{type(column).__name__}")
    return col, df.select(col).schema.fields[0].dataType


def _output_name(name: Any, what: str) -> str:
    if not isinstance(name, str) or not name or name.startswith("__sfmodels"):
        raise InvalidInputError(f"{what} must be a column name, got {name!r}")
    return name


def _previous(df: DataFrame, output: str, expected: T.DataType) -> bool:
    """Whether ``df`` holds an earlier run's ``output`` to resume from."""
    if output not in df.columns:
        return False
    found = df.schema[output].dataType
    if found.simpleString() != expected.simpleString():
        raise InvalidInputError(
            f"the column {output!r} already exists as {found.simpleString()}, not as this call's "
            f"result ({expected.simpleString()}): name another output, or drop it")
    return True


def _finish(df: DataFrame, outputs: dict[str, Column], resume: bool) -> DataFrame:
    for name, value in outputs.items():
        df = df.withColumn(name, F.when(F.col(REDO), value).otherwise(F.col(name))
                           if resume else value)
    return df.drop(RESULT, REDO)


def _udf(fn: Callable[..., Iterator[Any]], return_type: T.StructType) -> Any:
    """A scalar-iterator pandas UDF (one call per task, over its Arrow batches), marked
    nondeterministic: it calls a service, and Spark must run it exactly once per row."""
    return pandas_udf(fn, return_type).asNondeterministic()  # type: ignore[call-overload]


def _texts(series: pd.Series) -> list[Any]:
    return [None if value is None or value is pd.NA else value for value in series.tolist()]


# -- embed ----------------------------------------------------------------------------------------
def embed(df: DataFrame, column: str | Column, *, provider: str, model: str,
          output: str = "embedding", error_column: str | None = None,
          params: Mapping[str, Any] | None = None, requests_per_minute: float | None = None,
          max_parallel_tasks: int | None = None, batch_size: int | None = None,
          max_concurrency: int | None = None, timeout: float | None = None,
          max_retries: int | None = None, options: ClientOptions | None = None,
          **settings: Any) -> DataFrame:
    """``df`` with an ``array<float>`` column ``output`` (one vector per text, in row order) and
    a string column ``error_column`` (default ``{output}_error``), null where the row succeeded.

    A null or empty text, or one the service refuses, gets a null vector and an error; the
    other rows carry on. ``params`` go into each request (Databricks: ``instruction`` and any
    endpoint field; Salesforce: ``localization``, ``tags``). ``settings`` are the provider's
    credentials and URLs as the core clients take them (``host``, ``api_key``, ``domain``,
    ``client_id``, ``client_secret``, ``allow_insecure_http``, ...); what is not given comes
    from the driver's environment. ``requests_per_minute`` is for the whole job (see
    :mod:`sfmodels_core.integration.batch.budget`). Given a DataFrame that already has both
    columns, only rows whose error is not null (or whose vector is null) are sent again.
    """
    name = require_name(model, "model")
    text, data_type = _column(df, column, "column")
    if not isinstance(data_type, T.StringType):
        raise InvalidInputError(f"the texts to embed must be a string column, got "
                                f"{data_type.simpleString()}")
    output = _output_name(output, "output")
    errors_to = _output_name(error_column or f"{output}_error", "error_column")
    job = _job(df, provider, settings, requests_per_minute=requests_per_minute,
               max_parallel_tasks=max_parallel_tasks, options=options, batch_size=batch_size,
               max_concurrency=max_concurrency, timeout=timeout, max_retries=max_retries)
    extra = _embed_params(job.connection.provider, name, params)
    resume = _previous(df, output, VECTOR_TYPE)
    if resume != (errors_to in df.columns) or (
            resume and not isinstance(df.schema[errors_to].dataType, T.StringType)):
        raise InvalidInputError(
            f"to redo the failed rows of an earlier run, the DataFrame needs both {output!r} "
            f"and {errors_to!r} (a string column); it has only one of them")
    redo = (F.col(errors_to).isNotNull() | F.col(output).isNull()) if resume else F.lit(True)

    def sfmodels_embed(batches: Iterator[tuple[pd.Series, pd.Series]]
                       ) -> Iterator[pd.DataFrame]:
        client = client_for(job.connection, job.options)
        for texts, todo in batches:
            vectors, errors = rows.embed_rows(client, name, _texts(texts), todo.tolist(), extra,
                                              _float32)
            yield pd.DataFrame({"vector": vectors, "error": errors})

    udf = _udf(sfmodels_embed, EMBED_TYPE)
    out = df.withColumn(REDO, redo).withColumn(RESULT, udf(text, F.col(REDO)))
    return _finish(out, {output: F.col(f"{RESULT}.vector"),
                         errors_to: F.col(f"{RESULT}.error")}, resume)


def _float32(vectors: Vectors) -> list[Any]:
    """One float32 array per vector: rows of the bulk call's block, not copied until Arrow
    takes them."""
    return list(np.asarray(vectors))


def _embed_params(provider: str, model: str, params: Mapping[str, Any] | None) -> dict[str, Any]:
    extra = dict(params or {})
    if provider == "salesforce":
        unknown = sorted(set(extra) - {"localization", "tags"})
        if unknown:
            raise InvalidInputError(f"Salesforce embeddings take only localization and tags as "
                                    f"params, got {', '.join(unknown)}")
        salesforce_wire.embedding_request(model, ["x"], extra.get("localization"),
                                          extra.get("tags"))
    else:
        rest = {k: v for k, v in extra.items() if k != "instruction"}
        instruction = extra.get("instruction")
        if instruction is not None and not isinstance(instruction, str):
            raise InvalidInputError("instruction must be a string")
        databricks_wire.embedding_request(model, ["x"], instruction, rest)
    return extra


# -- generate -------------------------------------------------------------------------------------
def generate(df: DataFrame, prompt: str | Column, *, provider: str, model: str,
             system: str | None = None, output: str = "response", schema: Any = None,
             params: Mapping[str, Any] | None = None, requests_per_minute: float | None = None,
             max_parallel_tasks: int | None = None, max_concurrency: int | None = None,
             timeout: float | None = None, max_retries: int | None = None,
             options: ClientOptions | None = None, **settings: Any) -> DataFrame:
    """``df`` with a struct column ``output``: ``text``, ``generation_id`` (Salesforce's is what
    feedback refers to), ``finish_reason``, ``usage`` (``prompt_tokens``, ``completion_tokens``,
    ``total_tokens``) and ``error`` (null when the row succeeded), one chat per row.

    ``prompt`` is a string column, or a column of messages (``array<struct<role, content>>``);
    ``system`` a system prompt for every row. With ``schema`` (a JSON Schema dict or a Spark
    ``StructType``) the answer is structured: the struct gains ``parsed``, the answer parsed
    into that type (native ``response_format`` on Databricks, the prompted JSON protocol with
    one repair round on Salesforce); an answer that does not fit gets an error. ``params`` are
    Databricks generation parameters (``temperature``, ``max_tokens``, ...); Salesforce takes
    none. Settings, the rate budget and resuming as for :func:`embed`.
    """
    name = require_name(model, "model")
    value, data_type = _column(df, prompt, "prompt")
    messages = _is_messages(data_type)
    if not messages and not isinstance(data_type, T.StringType):
        raise InvalidInputError(
            "prompt must be a string column or a column of messages "
            f"(array<struct<role: string, content: string>>), got {data_type.simpleString()}")
    if system is not None and not isinstance(system, str):
        raise InvalidInputError(f"system must be a string, got {type(system).__name__}")
    output = _output_name(output, "output")
    schemas = answer_schemas(schema)
    job = _job(df, provider, settings, requests_per_minute=requests_per_minute,
               max_parallel_tasks=max_parallel_tasks, options=options,
               max_concurrency=max_concurrency, timeout=timeout, max_retries=max_retries)
    spec = rows.ChatSpec(name, system, schemas[0] if schemas else None,
                         _chat_params(job.connection.provider, name, params, schemas is not None))
    result_type = ANSWER_TYPE if schemas is None else T.StructType(
        [ANSWER_TYPE["text"], T.StructField("parsed", schemas[1], True),
         *ANSWER_TYPE.fields[1:]])
    resume = _previous(df, output, result_type)
    redo = (F.col(output).isNull() | F.col(f"{output}.error").isNotNull()) if resume \
        else F.lit(True)

    def sfmodels_generate(batches: Iterator[tuple[pd.Series, pd.Series]]
                          ) -> Iterator[pd.DataFrame]:
        client = client_for(job.connection, job.options)
        for values, todo in batches:
            inputs = [_messages(v) for v in values] if messages else _texts(values)
            answers = rows.generate_rows(client, spec, inputs, todo.tolist())
            usage = [_usage(a) for a in answers]
            yield pd.DataFrame({
                "text": [a and a.text for a in answers],
                "generation_id": [a and a.generation_id for a in answers],
                "finish_reason": [a and a.finish_reason for a in answers],
                **{f.name: pd.array([u and u[f.name] for u in usage], dtype="Int64")
                   for f in USAGE_TYPE.fields},
                "error": [a and a.error for a in answers]})

    udf = _udf(sfmodels_generate, RAW_ANSWER_TYPE)
    out = df.withColumn(REDO, redo).withColumn(RESULT, udf(value, F.col(REDO)))
    raw = F.col(RESULT)
    fields = [raw["text"].alias("text")]
    if schemas is not None:
        parsed = F.when(raw["error"].isNull() & raw["text"].isNotNull(),
                        F.from_json(raw["text"], schemas[1]))
        fields.append(parsed.alias("parsed"))
    fields += [raw["generation_id"].alias("generation_id"),
               raw["finish_reason"].alias("finish_reason"),
               F.when(raw["total_tokens"].isNotNull(), F.struct(
                   *(raw[f.name].alias(f.name) for f in USAGE_TYPE.fields))).alias("usage"),
               raw["error"].alias("error")]
    return _finish(out, {output: F.when(raw.isNotNull(), F.struct(*fields))}, resume)


def _is_messages(data_type: T.DataType) -> bool:
    if not isinstance(data_type, T.ArrayType):
        return False
    element = data_type.elementType
    if isinstance(element, T.MapType):
        return isinstance(element.keyType, T.StringType) and isinstance(
            element.valueType, T.StringType)
    return isinstance(element, T.StructType) and {"role", "content"} <= set(element.names)


def _messages(value: Any) -> Any:
    """A row's messages as a list of dicts (Arrow gives arrays of dicts, Rows or pairs)."""
    if value is None:
        return None
    out = []
    for message in list(value):
        if hasattr(message, "asDict"):
            message = message.asDict()
        elif isinstance(message, (list, tuple, np.ndarray)):
            message = dict(list(message))
        out.append({k: v for k, v in dict(message).items() if v is not None})
    return out


def _usage(answer: rows.Answer | None) -> dict[str, int] | None:
    if answer is None or answer.usage is None:
        return None
    usage = answer.usage
    return {"prompt_tokens": usage.prompt_tokens, "completion_tokens": usage.completion_tokens,
            "total_tokens": usage.total_tokens}


def _chat_params(provider: str, model: str, params: Mapping[str, Any] | None,
                 structured: bool) -> dict[str, Any]:
    given = dict(params or {})
    if provider == "salesforce":
        if given:
            raise InvalidInputError(
                "The Salesforce Models API takes no generation parameters (got "
                f"{', '.join(sorted(given))}): set them on a model configured in Einstein "
                "Studio and call it by its API name.")
        return given
    for key, why in _REFUSED_PARAMS.items():
        if key in given and not (key == "n" and given[key] == 1):
            raise InvalidInputError(f"{key} cannot be used here: {why}")
    if structured and "response_format" in given:
        raise InvalidInputError("give either schema= or a response_format in params, not both")
    databricks_wire.chat_request(model, [{"role": "user", "content": "x"}], given)
    return given


# -- feedback -------------------------------------------------------------------------------------
#: Concurrent MLflow calls per task for Databricks feedback, unless max_concurrency says.
MLFLOW_CONCURRENCY = 4


def submit_feedback(df: DataFrame, generation_id: str | Column, rating: str | Column,
                    text: str | Column | None = None, *, comment: str | Column | None = None,
                    provider: str = "salesforce", span_id: str | Column | None = None,
                    user: str | Column | None = None, tracking_uri: str | None = None,
                    output: str = "feedback", source: str | None = None,
                    requests_per_minute: float | None = None,
                    max_parallel_tasks: int | None = None, max_concurrency: int | None = None,
                    timeout: float | None = None, max_retries: int | None = None,
                    options: ClientOptions | None = None, **settings: Any) -> DataFrame:
    """Record every row's rating of a generation. Adds a struct column ``output`` with
    ``feedback_id`` and ``error`` (null when the row succeeded); a row that fails gets its
    error and the others carry on.

    ``rating`` is GOOD/BAD (any letter case) or a boolean column; ``comment`` (or ``text``, its
    older name: give one) an optional string column of free-text comments.

    ``provider="salesforce"`` (the default): ``generation_id`` is the Salesforce generation id
    (``generate``'s ``response.generation_id``); a null rating sends feedback with only its
    text; ``source`` says who gives it. The feedback id is derived from the row's generation
    id, rating and text, so every run sends the same id for the same row and the service can
    tell a repeat from new feedback. Settings and the rate budget as for :func:`embed`.

    ``provider="databricks"``: each rating becomes an MLflow feedback assessment
    (``user_feedback``, source HUMAN) on a trace, and ``generation_id`` is the **MLflow trace
    id** of the generation (``tr-...``); ``span_id`` an optional string column naming the span
    rated (null: the trace as a whole); ``user`` a column of who rated it (a column name or a
    Column; ``F.lit("ann@example.com")`` for one user on every row; null: ``anonymous``); the
    comment becomes the assessment's rationale, and ``feedback_id`` is the assessment id. A row
    whose trace MLflow does not have, or whose rating is null or not GOOD/BAD, gets an error.
    Each assessment carries a key derived from the row's trace, span, rating, comment and user,
    and a row whose key is already on its trace returns that assessment: running the same
    DataFrame again logs nothing twice. ``tracking_uri`` is where (default: the driver's
    ``mlflow.get_tracking_uri()``, ``databricks`` in a workspace), resolved on the driver and
    shipped to the executors, which set it around their own work only. It carries no
    credentials: with ``databricks`` MLflow on each node reads them from that node's
    environment or Databricks config, as Databricks documents for MLflow in Spark tasks (a
    Databricks cluster provides them). ``max_concurrency`` MLflow calls are in flight per task
    (default 4); MLflow's own client retries. Needs MLflow (``pip install 'sfmodels[mlflow]'``)
    on the driver and the executors.

    Calling this again on its own output sends only the rows whose error is not null.
    """
    name = check_provider(provider)
    if text is not None and comment is not None:
        raise InvalidInputError("give the comment column as comment= or as text=, not both")
    named = "text" if text is not None else "comment"
    comment = text if comment is None else comment
    if name == "databricks":
        return _mlflow_feedback(
            df, generation_id, rating, comment, named, span_id=span_id, user=user,
            tracking_uri=tracking_uri, output=output, max_concurrency=max_concurrency,
            refused={"source": source, "requests_per_minute": requests_per_minute,
                     "max_parallel_tasks": max_parallel_tasks, "timeout": timeout,
                     "max_retries": max_retries, "options": options, **settings})
    given = [k for k, v in (("span_id", span_id), ("user", user),
                            ("tracking_uri", tracking_uri)) if v is not None]
    if given:
        raise InvalidInputError(f"{', '.join(given)} {'is' if len(given) == 1 else 'are'} for "
                                "provider='databricks' (MLflow feedback); Salesforce feedback "
                                "takes source= for who gives it")
    gen, rated, note = _feedback_columns(df, generation_id, rating, comment, named)
    if source is not None and not isinstance(source, str):
        raise InvalidInputError(f"source must be a string, got {type(source).__name__}")
    output = _output_name(output, "output")
    job = _job(df, "salesforce", settings, requests_per_minute=requests_per_minute,
               max_parallel_tasks=max_parallel_tasks, options=options,
               max_concurrency=max_concurrency, timeout=timeout, max_retries=max_retries)
    resume = _previous(df, output, FEEDBACK_TYPE)

    def sfmodels_feedback(batches: Iterator[tuple[pd.Series, pd.Series, pd.Series, pd.Series]]
                          ) -> Iterator[pd.DataFrame]:
        client = client_for(job.connection, job.options)
        assert isinstance(client, SalesforceClient)
        for ids, ratings, texts, todo in batches:
            sent, errors = rows.feedback_rows(client, _texts(ids), _texts(ratings),
                                              _texts(texts), todo.tolist(), source)
            yield pd.DataFrame({"feedback_id": sent, "error": errors})

    return _feedback_result(df, output, resume, _udf(sfmodels_feedback, FEEDBACK_TYPE),
                            gen, rated, note)


def _feedback_columns(df: DataFrame, generation_id: str | Column, rating: str | Column,
                      comment: str | Column | None, comment_name: str
                      ) -> tuple[Column, Column, Column]:
    id_name = "generation_id"
    gen, gen_type = _column(df, generation_id, id_name)
    rated, rating_type = _column(df, rating, "rating")
    if not isinstance(gen_type, T.StringType):
        raise InvalidInputError(f"{id_name} must be a string column, got "
                                f"{gen_type.simpleString()}")
    if not isinstance(rating_type, (T.StringType, T.BooleanType, T.NullType)):
        raise InvalidInputError(f"rating must be a string or boolean column, got "
                                f"{rating_type.simpleString()}")
    return gen, rated, _optional_column(df, comment, comment_name)


def _optional_column(df: DataFrame, column: str | Column | None, what: str) -> Column:
    """A string column, or a null one when none is given."""
    if column is None:
        return F.lit(None).cast("string")
    col, data_type = _column(df, column, what)
    if not isinstance(data_type, (T.StringType, T.NullType)):
        raise InvalidInputError(f"{what} must be a string column, got {data_type.simpleString()}")
    return col


def _feedback_result(df: DataFrame, output: str, resume: bool, udf: Any,
                     *columns: Column) -> DataFrame:
    redo = (F.col(output).isNull() | F.col(f"{output}.error").isNotNull()) if resume \
        else F.lit(True)
    out = df.withColumn(REDO, redo).withColumn(RESULT, udf(*columns, F.col(REDO)))
    raw = F.col(RESULT)
    return _finish(out, {output: F.when(raw.isNotNull(), raw)}, resume)


def _mlflow_feedback(df: DataFrame, trace_id: str | Column, rating: str | Column,
                     comment: str | Column | None, comment_name: str, *,
                     span_id: str | Column | None, user: str | Column | None,
                     tracking_uri: str | None, output: str,
                     max_concurrency: int | None, refused: Mapping[str, Any]) -> DataFrame:
    """``submit_feedback(provider="databricks")``: every check on the driver, then one UDF."""
    unused = sorted(k for k, v in refused.items() if v is not None)
    if unused:
        raise InvalidInputError(
            f"provider='databricks' feedback goes to MLflow, which takes none of "
            f"{', '.join(unused)}: MLflow reads the workspace credentials itself (on each "
            "node), and user= says who gives the feedback")
    require_mlflow()  # on the driver, before any job: the error says how to install it
    if isinstance(user, str) and user not in df.columns:
        raise InvalidInputError(
            f"user {user!r} is not a column of the DataFrame; for the same user on every row, "
            f"pass F.lit({user!r})")
    trace, rated, note = _feedback_columns(df, trace_id, rating, comment, comment_name)
    span = _optional_column(df, span_id, "span_id")
    who = _optional_column(df, user, "user")
    if max_concurrency is None:
        max_concurrency = MLFLOW_CONCURRENCY
    if isinstance(max_concurrency, bool) or not isinstance(max_concurrency, int) or \
            max_concurrency < 1:
        raise InvalidInputError(f"max_concurrency must be at least 1, got {max_concurrency!r}")
    output = _output_name(output, "output")
    tracking = Tracking(SecretStr(resolve_tracking_uri(tracking_uri)))
    resume = _previous(df, output, FEEDBACK_TYPE)
    workers = max_concurrency

    def sfmodels_mlflow_feedback(batches: Iterator[tuple[pd.Series, ...]]
                                 ) -> Iterator[pd.DataFrame]:
        for traces, spans, ratings, comments, users, todo in batches:
            to_do = todo.tolist()
            with use_tracking_uri(tracking.uri) if any(to_do) else nullcontext():
                sent, errors = rows.assessment_rows(
                    _texts(traces), _texts(spans), _texts(ratings), _texts(comments),
                    _texts(users), to_do, max_concurrency=workers, scrub=tracking.scrub)
            yield pd.DataFrame({"feedback_id": sent, "error": errors})

    return _feedback_result(df, output, resume, _udf(sfmodels_mlflow_feedback, FEEDBACK_TYPE),
                            trace, span, rated, note, who)

"""Feedback on Databricks generations, as MLflow assessments, the same in both frameworks.

On Databricks a user's rating of a generation is an MLflow *feedback assessment* on the trace,
and the span, the generation ran in. The Databricks feedback handlers open one span per model
call with :func:`start_generation_span` (inside the caller's active MLflow span when there is
one, so that it joins a trace the user already records, e.g. with ``mlflow.langchain.autolog()``;
otherwise as a trace of its own), close it with :func:`end_generation_span`, and rate it with
:func:`log_feedback`. Everything goes to MLflow's current tracking URI: ``databricks`` in a
workspace, ``sqlite:///...`` or a tracking server elsewhere.

MLflow is optional (``pip install 'sfmodels[mlflow]'``) and imported only when used.
"""

from __future__ import annotations

import hashlib
from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

from ..errors import ConfigurationError, InvalidInputError, SFModelsError
from .feedback import RATINGS, Assessment, GenerationRecord

if TYPE_CHECKING:
    from types import ModuleType

    from mlflow.entities import LiveSpan

__all__ = [
    "FEEDBACK_ID_KEY",
    "FEEDBACK_NAME",
    "MLFLOW_EXTRA",
    "Assessment",
    "end_generation_span",
    "feedback_key",
    "feedback_value",
    "log_feedback",
    "named_record",
    "require_mlflow",
    "start_generation_span",
]

#: The assessment name a rating is logged under (MLflow's review app uses the same).
FEEDBACK_NAME = "user_feedback"
#: The assessment metadata key that holds a submission's idempotency key.
FEEDBACK_ID_KEY = "sfmodels.feedback_id"
MLFLOW_EXTRA = "sfmodels[mlflow]"
#: The trace id of the span MLflow hands out while tracing is disabled.
_NO_OP_TRACE_ID = "MLFLOW_NO_OP_SPAN_TRACE_ID"


def require_mlflow() -> ModuleType:
    """The ``mlflow`` module, or a ConfigurationError that says how to install it."""
    try:
        import mlflow
    except ImportError:
        raise ConfigurationError(
            "Databricks feedback is recorded as MLflow assessments, and MLflow is not "
            "installed.", hint=f"Install the mlflow extra: pip install '{MLFLOW_EXTRA}'."
        ) from None
    return mlflow


def feedback_value(rating: Any) -> bool:
    """``True`` for ``"GOOD"``, ``False`` for ``"BAD"`` (any letter case); booleans as they are."""
    if isinstance(rating, bool):
        return rating
    if isinstance(rating, str) and rating.strip().upper() in RATINGS:
        return rating.strip().upper() == "GOOD"
    raise InvalidInputError(f"feedback must be 'GOOD' or 'BAD' (any letter case) or a boolean, "
                            f"got {rating!r}")


def named_record(trace_id: str | None, span_id: str | None) -> GenerationRecord | None:
    """The record for a trace (and a span of it) named directly; None when none is named."""
    if trace_id is None:
        if span_id is not None:
            raise InvalidInputError("span_id= needs the trace_id= of its trace")
        return None
    if not isinstance(trace_id, str) or not trace_id.strip():
        raise InvalidInputError(f"trace_id must be a non-empty string, got {trace_id!r}")
    return GenerationRecord(trace_id, [span_id] if span_id else [], trace_id=trace_id)


def start_generation_span(name: str, inputs: Any, *, model: str | None = None,
                          parent: LiveSpan | None = None, span_type: str | None = None,
                          start_time_ns: int | None = None,
                          experiment_id: str | None = None) -> LiveSpan | None:
    """An open MLflow span for one model call: a child of ``parent`` or of the active span,
    else the root of a new trace (in ``experiment_id`` when given, else MLflow's active
    experiment). ``None`` while MLflow tracing is disabled.

    ``span_type`` defaults to ``CHAT_MODEL``; ``start_time_ns`` (``time.time_ns()`` when the
    call started) lets a span be opened once the call is over, inside whatever span is active
    then."""
    mlflow = require_mlflow()
    from mlflow.entities import SpanType

    span = mlflow.start_span_no_context(
        name=name, span_type=span_type or SpanType.CHAT_MODEL, inputs=inputs,
        parent_span=parent if parent is not None else mlflow.get_current_active_span(),
        attributes={"model": model} if model else None, start_time_ns=start_time_ns,
        experiment_id=experiment_id)
    return None if span.trace_id == _NO_OP_TRACE_ID else span


def end_generation_span(span: LiveSpan, run_id: str, *, outputs: Any = None,
                        error: BaseException | None = None,
                        model: str | None = None) -> GenerationRecord | None:
    """Close ``span`` with the call's outputs (or its error); the record that rates it, for a
    call that answered."""
    if error is not None:
        from mlflow.entities import SpanEvent, SpanStatusCode

        span.add_event(SpanEvent.from_exception(error))  # type: ignore[arg-type]
        span.end(status=SpanStatusCode.ERROR)
        return None
    span.end(outputs=outputs)
    return GenerationRecord(run_id, [span.span_id], model, trace_id=span.trace_id)


def feedback_key(record: GenerationRecord, value: bool, comment: str | None,
                 user: str | None) -> str:
    """The idempotency key of a rating: the same for the same span (or trace), value, comment
    and user, wherever it is given from (a handler, Spark, the command line)."""
    parts = (record.trace_id or "", *record.generation_ids[:1], str(value), comment or "",
             user or "")
    return hashlib.sha256("\x1f".join(parts).encode()).hexdigest()[:32]


def log_feedback(record: GenerationRecord, rating: Any, *, comment: str | None = None,
                 user: str | None = None, feedback_id: str | None = None,
                 name: str = FEEDBACK_NAME,
                 metadata: Mapping[str, str] | None = None) -> Assessment:
    """Log ``rating`` on the trace and span of ``record`` as a HUMAN feedback assessment by
    ``user``, with ``comment`` as its rationale.

    Idempotent: the assessment carries ``feedback_id`` (by default derived from the span, the
    value, the comment and the user), and a submission whose id is already on the trace returns
    that assessment instead of logging a second one.
    """
    value = feedback_value(rating)
    if not record.trace_id:
        raise InvalidInputError("Databricks feedback needs the MLflow trace of a generation: "
                                f"{record.run_id!r} has none.")
    if user is not None and (not isinstance(user, str) or not user.strip()):
        raise InvalidInputError(f"user must be a non-empty string, got {user!r}")
    mlflow = require_mlflow()
    from mlflow.entities import AssessmentSource
    from mlflow.exceptions import MlflowException

    key = feedback_id or feedback_key(record, value, comment, user)
    span_id = record.generation_ids[0] if record.generation_ids else None
    try:
        # A trace that has just ended may still be on its way to the store: flush=True waits
        # for MLflow's queue when (and only when) the trace is not there yet.
        trace = mlflow.get_trace(record.trace_id, silent=True, flush=True)
        if trace is None:
            raise InvalidInputError(
                f"MLflow has no trace {record.trace_id!r} at {mlflow.get_tracking_uri()!r}: "
                "it was recorded under another tracking URI, or has not ended yet.")
        for logged in trace.info.assessments or ():
            if (logged.metadata or {}).get(FEEDBACK_ID_KEY) == key:
                return Assessment(logged.assessment_id, record.trace_id, span_id, value)
        logged = mlflow.log_feedback(
            trace_id=record.trace_id, name=name, value=value, rationale=comment,
            source=AssessmentSource(source_type="HUMAN", source_id=user or "anonymous"),
            metadata={**(metadata or {}), FEEDBACK_ID_KEY: key}, span_id=span_id)
    except MlflowException as exc:
        raise SFModelsError(f"MLflow refused the feedback on trace {record.trace_id!r}: "
                            f"{exc.error_code}", error_code=exc.error_code,
                            provider="mlflow") from None
    return Assessment(logged.assessment_id, record.trace_id, span_id, value)

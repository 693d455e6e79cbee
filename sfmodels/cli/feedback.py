"""``sfmodels feedback``: GOOD or BAD feedback on one generation, sent to Salesforce or logged as
an MLflow feedback assessment on a Databricks generation's trace."""

from __future__ import annotations

import argparse

DESCRIPTION = (
    "Records GOOD or BAD feedback on one generation. With Salesforce (the default) ID is a "
    "generation id (printed by `sfmodels chat` and the demo) and the feedback goes to the "
    "Models API. With --provider databricks ID is the MLflow trace id of the generation "
    "(tr-...), and the rating is logged as an MLflow feedback assessment (user_feedback, "
    "source HUMAN) on that trace, or on one of its spans with --span-id, at the MLflow "
    "tracking URI; the same feedback given again is logged once.")


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("generation_id", metavar="ID",
                        help="the Salesforce generation id; with --provider databricks, the "
                             "MLflow trace id")
    parser.add_argument("verdict", choices=("good", "bad"), type=str.lower)
    parser.add_argument("--provider", choices=("salesforce", "databricks"), default="salesforce",
                        help="where the feedback goes (default %(default)s)")
    parser.add_argument("--comment", "--text", dest="comment", default=None, metavar="TEXT",
                        help="a free-text comment (--text is its older name): Salesforce "
                             "stores it as the feedback text (up to 1024 chars), MLflow as the "
                             "assessment's rationale")
    parser.add_argument("--user", default=None,
                        help="who gives it: Salesforce stores it as appFeedback.user, MLflow "
                             "as the assessment's source id (default anonymous)")
    salesforce = parser.add_argument_group("Salesforce only")
    salesforce.add_argument("--source", default=None, help="the kind of source (default human)")
    databricks = parser.add_argument_group("Databricks only (MLflow)")
    databricks.add_argument("--span-id", default=None,
                            help="the span of the trace rated (default: the trace as a whole)")
    databricks.add_argument("--tracking-uri", default=None, metavar="URI",
                            help="where the trace is: databricks, databricks://PROFILE, "
                                 "sqlite:///mlflow.db, http(s)://... (default: "
                                 "MLFLOW_TRACKING_URI, else MLflow's own default); with "
                                 "databricks, MLflow reads the workspace credentials from the "
                                 "DATABRICKS_* variables or ~/.databrickscfg")


def run(args: argparse.Namespace) -> int:
    from sfmodels_core.errors import InvalidInputError

    if args.provider == "databricks":
        return _databricks(args)
    given = [flag for flag, value in (("--span-id", args.span_id),
                                      ("--tracking-uri", args.tracking_uri)) if value is not None]
    if given:
        raise InvalidInputError(f"{', '.join(given)}: only with --provider databricks (MLflow)")
    from sfmodels_core import SalesforceClient
    from sfmodels_core.integration.feedback import GenerationRecord, feedback_requests

    record = GenerationRecord(args.generation_id, [args.generation_id])  # as a handler's
    (request,) = feedback_requests(record, args.verdict,
                                   comment=args.comment, user=args.user,
                                   source=args.source or "human")
    with SalesforceClient() as client:
        result = client.submit_feedback(**request)
    print(f"feedback {result.feedback_id} recorded for generation {result.generation_id}: "
          f"{result.message or 'accepted'}")
    return 0


def _databricks(args: argparse.Namespace) -> int:
    import logging

    from sfmodels_core.errors import InvalidInputError, SFModelsError
    from sfmodels_core.integration._mlflow_tracking import (
        resolve_tracking_uri,
        scrub,
        shown_uri,
        use_tracking_uri,
    )
    from sfmodels_core.integration.mlflow_feedback import log_feedback, named_record

    if args.source is not None:
        raise InvalidInputError("--source is for Salesforce feedback; with --provider databricks "
                                "--user says who gives it")
    uri = resolve_tracking_uri(args.tracking_uri)  # needs MLflow: the error says how to install
    trace_id, span_id = args.generation_id, args.span_id
    record = named_record(trace_id, span_id)
    assert record is not None
    # MLflow warns about a trace it cannot find, besides the one error line printed here.
    quiet = logging.getLogger("mlflow")
    level = quiet.level
    quiet.setLevel(logging.ERROR)
    try:
        with use_tracking_uri(uri):
            if span_id:
                _check_span(trace_id, span_id)
            logged = log_feedback(record, args.verdict, comment=args.comment, user=args.user)
    except SFModelsError as exc:
        exc.message = scrub(exc.message, uri)
        raise
    finally:
        quiet.setLevel(level)
    where = f"span {span_id} of trace {trace_id}" if span_id else f"trace {trace_id}"
    print(f"feedback {logged.feedback_id} ({args.verdict.upper()}, by "
          f"{args.user or 'anonymous'}) recorded on {where} in MLflow at {shown_uri(uri)}")
    return 0


def _check_span(trace_id: str, span_id: str) -> None:
    """An error when the trace is there but has no such span (MLflow would log the assessment
    anyway, on a span that does not exist). A missing trace is left to ``log_feedback``."""
    from mlflow.exceptions import MlflowException

    from sfmodels_core.errors import InvalidInputError
    from sfmodels_core.integration.mlflow_feedback import require_mlflow

    try:
        trace = require_mlflow().get_trace(trace_id)
    except MlflowException:
        return
    spans = [] if trace is None else list(trace.data.spans)
    if spans and span_id not in {span.span_id for span in spans}:
        known = ", ".join(f"{span.span_id} ({span.name})" for span in spans[:10])
        raise InvalidInputError(f"trace {trace_id!r} has no span {span_id!r}; its spans are "
                                f"{known}{', ...' if len(spans) > 10 else ''}")


__all__ = [
    "DESCRIPTION",
    "add_arguments",
    "run",
]

"""Where each provider's calls go: the real service when its credentials are set (the
SALESFORCE_* and DATABRICKS_* variables), otherwise the built-in emulator."""

from __future__ import annotations

import contextlib
import logging
import os
import tempfile
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from sfmodels_core import defaults
from sfmodels_core.credentials import resolve_databricks, resolve_salesforce
from sfmodels_core.errors import ConfigurationError


@dataclass
class Setup:
    """Where each provider's calls go: keyword settings for every class, and a description."""

    salesforce: dict[str, Any]
    databricks: dict[str, Any]
    salesforce_where: str
    databricks_where: str
    emulator: Any = None  # the running emulator, when one was started
    salesforce_model: str = defaults.SALESFORCE_CHAT_MODEL
    databricks_endpoint: str = defaults.DATABRICKS_CHAT_ENDPOINT
    databricks_embedding_endpoint: str = defaults.DATABRICKS_EMBEDDING_ENDPOINT
    #: The MLflow tracking URI Databricks feedback goes to (None: MLflow is not installed).
    mlflow_uri: str | None = None

    def assessed(self, trace_id: str, assessment_id: str) -> str:
        """What the MLflow store holds for an assessment, read back from it."""
        import mlflow

        trace = mlflow.get_trace(trace_id)
        mine = [a for a in (trace.info.assessments if trace else ())
                if a.assessment_id == assessment_id]
        return (f"MLflow holds it: {mine[0].name}={mine[0].value} by {mine[0].source.source_id} "
                f"on span {mine[0].span_id} of {trace_id}, in {self.mlflow_uri}"
                if mine else f"NOT found in MLflow at {self.mlflow_uri}")

    def acknowledged(self, feedback_id: str) -> str:
        """What the emulator recorded for a feedback id (nothing to check on the real service)."""
        if self.emulator is None:
            return "accepted by Salesforce"
        mine = [f for f in self.emulator.feedback() if f.get("id") == feedback_id]
        return (f"emulator recorded it: {mine[0]['feedback']} on {mine[0]['generationId']}"
                if mine else "NOT recorded by the emulator")


def _configured(resolve: Callable[[], Any]) -> bool:
    try:
        resolve()
    except ConfigurationError:
        return False
    return True


def _configured_where(provider: str) -> str:
    """Where the settings in the environment point: the real service, or an emulator started
    elsewhere (``sfmodels emulator`` prints the variables; its credentials give it away)."""
    from sfmodels_emulator import state

    if provider == "salesforce":
        host = os.environ.get("SALESFORCE_DOMAIN") or os.environ.get("SALESFORCE_API_BASE")
        emulated = os.environ.get("SALESFORCE_CLIENT_ID") == state.DEFAULT_SALESFORCE_CLIENT_ID
    else:
        host = os.environ.get("DATABRICKS_HOST")
        emulated = os.environ.get("DATABRICKS_TOKEN") == state.DEFAULT_DATABRICKS_TOKEN or (
            os.environ.get("DATABRICKS_CLIENT_ID") == state.DEFAULT_DATABRICKS_CLIENT_ID)
    if emulated:
        return f"the emulator at {host}"
    return f"the real service ({provider.upper()}_* settings)"


@contextlib.contextmanager
def mlflow_store() -> Iterator[str | None]:
    """Where the demo's Databricks feedback goes: ``MLFLOW_TRACKING_URI`` when it is set, else a
    new local MLflow store in a temporary folder (kept, so it can be looked at afterwards).
    None when MLflow is not installed."""
    try:
        import mlflow
    except ImportError:
        yield None
        return
    if os.environ.get("MLFLOW_TRACKING_URI"):
        yield mlflow.get_tracking_uri()
        return
    from sfmodels_core.integration._mlflow_tracking import use_tracking_uri

    folder = Path(tempfile.mkdtemp(prefix="sfmodels-demo-mlflow-"))
    uri = f"sqlite:///{folder / 'mlflow.db'}"
    quiet = logging.getLogger("mlflow")
    level = quiet.level
    quiet.setLevel(logging.WARNING)  # not its "creating tables" lines in the demo's output
    try:
        with use_tracking_uri(uri):
            mlflow.set_experiment(experiment_id=mlflow.create_experiment(
                "sfmodels demo", artifact_location=(folder / "artifacts").as_uri()))
            yield uri
    finally:
        quiet.setLevel(level)


@contextlib.contextmanager
def setup(force_emulator: bool) -> Iterator[Setup]:
    """The Setup for this run, with the built-in emulator running while it is in use when a
    provider has no credentials (or ``force_emulator``)."""
    real_sf = not force_emulator and _configured(resolve_salesforce)
    real_dbx = not force_emulator and _configured(resolve_databricks)
    if real_sf and real_dbx:
        yield Setup({}, {}, _configured_where("salesforce"), _configured_where("databricks"))
        return
    from sfmodels_emulator import Emulator

    with Emulator() as emu:
        where = f"the built-in emulator at {emu.url}"
        yield Setup(
            salesforce={} if real_sf else {
                "domain": emu.salesforce_domain, "client_id": emu.salesforce_client_id,
                "client_secret": emu.salesforce_client_secret},
            databricks={} if real_dbx else {
                "host": emu.databricks_host, "api_key": emu.databricks_token},
            salesforce_where=_configured_where("salesforce") if real_sf else where,
            databricks_where=_configured_where("databricks") if real_dbx else where,
            emulator=emu)

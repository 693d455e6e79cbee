"""``sfmodels feedback``: MLflow assessments on Databricks traces in a local store made here, and
the shared options on the Salesforce side (against the emulator)."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from sfmodels.cli import main
from sfmodels_core.integration._mlflow_tracking import ENV, use_tracking_uri
from sfmodels_emulator import Emulator

from .test_demo import CREDENTIALS

UNKNOWN = "tr-" + "0" * 32


@pytest.fixture(scope="module")
def store(tmp_path_factory: pytest.TempPathFactory) -> tuple[str, str]:
    """A sqlite tracking store of its own, and an experiment that keeps its artifacts beside
    it: (the tracking URI, the experiment id)."""
    mlflow = pytest.importorskip("mlflow")
    folder = tmp_path_factory.mktemp("feedback-command")
    uri = f"sqlite:///{folder / 'mlflow.db'}"
    with use_tracking_uri(uri):
        experiment = mlflow.create_experiment("cli", artifact_location=(folder / "a").as_uri())
    return uri, str(experiment)


@pytest.fixture
def quiet_mlflow(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    """No tracking URI set in this process nor in the environment (the command's default is
    then MLflow's own); the session's comes back after the test."""
    pytest.importorskip("mlflow")
    from mlflow.tracking._tracking_service import utils

    monkeypatch.setattr(utils, "_tracking_uri", None)
    monkeypatch.delenv(ENV, raising=False)
    yield


def trace(store: tuple[str, str]) -> tuple[str, str]:
    """A finished generation in ``store``: (its trace id, its span id)."""
    import mlflow

    uri, experiment = store
    with use_tracking_uri(uri):
        span = mlflow.start_span_no_context("ChatDatabricks", span_type="CHAT_MODEL",
                                            inputs={"messages": ["hi"]}, experiment_id=experiment)
        span.end(outputs={"text": "hello"})
    return span.trace_id, span.span_id


def assessments(store: tuple[str, str], trace_id: str) -> list[Any]:
    import mlflow

    with use_tracking_uri(store[0]):
        return list(mlflow.get_trace(trace_id).info.assessments)


def test_a_rating_is_logged_on_the_span_once(store: tuple[str, str], quiet_mlflow: None,
                                             capsys: pytest.CaptureFixture[str]) -> None:
    trace_id, span_id = trace(store)
    command = ["feedback", "--provider", "databricks", trace_id, "BAD", "--span-id", span_id,
               "--user", "ann@example.com", "--tracking-uri", store[0]]
    assert main([*command, "--comment", "wrong city"]) == 0
    out = capsys.readouterr().out
    (logged,) = assessments(store, trace_id)
    assert out == (f"feedback {logged.assessment_id} (BAD, by ann@example.com) recorded on span "
                   f"{span_id} of trace {trace_id} in MLflow at {store[0]}\n")
    assert (logged.value, logged.rationale, logged.span_id) == (False, "wrong city", span_id)
    assert (logged.source.source_type, logged.source.source_id) == ("HUMAN", "ann@example.com")
    # The same feedback again (--text is the comment's older name): the same assessment.
    assert main([*command, "--text", "wrong city"]) == 0
    assert logged.assessment_id in capsys.readouterr().out
    assert len(assessments(store, trace_id)) == 1


def test_the_tracking_uri_defaults_to_mlflows(store: tuple[str, str], quiet_mlflow: None,
                                              monkeypatch: pytest.MonkeyPatch,
                                              capsys: pytest.CaptureFixture[str]) -> None:
    trace_id, _ = trace(store)
    monkeypatch.setenv(ENV, store[0])
    assert main(["feedback", trace_id, "good", "--provider", "databricks"]) == 0
    assert capsys.readouterr().out.endswith(
        f"(GOOD, by anonymous) recorded on trace {trace_id} in MLflow at {store[0]}\n")
    (logged,) = assessments(store, trace_id)
    assert (logged.value, logged.span_id, logged.source.source_id) == (True, None, "anonymous")
    import os

    assert os.environ[ENV] == store[0]  # the command left the process as it found it


def test_an_unknown_trace_or_span_is_one_error_line(store: tuple[str, str], quiet_mlflow: None,
                                                    capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["feedback", "--provider", "databricks", UNKNOWN, "good",
                 "--tracking-uri", store[0]]) == 1
    err = capsys.readouterr().err
    assert err.startswith(f"error: MLflow has no trace {UNKNOWN!r} at {store[0]!r}")
    assert err.count("\n") == 1
    trace_id, span_id = trace(store)
    assert main(["feedback", "--provider", "databricks", trace_id, "good",
                 "--span-id", "0123456789abcdef", "--tracking-uri", store[0]]) == 1
    err = capsys.readouterr().err
    assert f"has no span '0123456789abcdef'; its spans are {span_id} (ChatDatabricks)" in err
    assert assessments(store, trace_id) == []


def test_a_secret_in_the_tracking_uri_is_never_printed(quiet_mlflow: None,
                                                       monkeypatch: pytest.MonkeyPatch,
                                                       capfd: pytest.CaptureFixture[str]) -> None:
    monkeypatch.setenv("MLFLOW_HTTP_REQUEST_MAX_RETRIES", "0")
    uri = "http://mlflow:hunter2-secret@127.0.0.1:1/"  # nothing listens on port 1
    assert main(["feedback", "--provider", "databricks", UNKNOWN, "good",
                 "--tracking-uri", uri]) == 1
    printed = capfd.readouterr()
    assert "hunter2" not in printed.out + printed.err
    assert "http://mlflow:***@127.0.0.1:1/" in printed.err




def test_salesforce_takes_the_comment_and_the_user_and_refuses_mlflow_options(
        emulator: Emulator, monkeypatch: pytest.MonkeyPatch, tmp_path: Path,
        capsys: pytest.CaptureFixture[str]) -> None:
    for var in CREDENTIALS:
        monkeypatch.delenv(var, raising=False)
    for key, value in emulator.env().items():
        monkeypatch.setenv(key, value)
    assert main(["feedback", "gen-7", "good", "--comment", "right city", "--user", "ann"]) == 0
    recorded = emulator.feedback()[-1]
    assert (recorded["generationId"], recorded["feedback"], recorded["feedbackText"],
            recorded["source"], recorded["appFeedback"]) == (
        "gen-7", "GOOD", "right city", "human", {"user": "ann"})
    assert main(["feedback", "gen-7", "good", "--span-id", "s", "--user", "ann"]) == 1
    assert "--span-id: only with --provider databricks" in capsys.readouterr().err
    assert main(["feedback", "--provider", "databricks", "tr-1", "good", "--source", "x",
                 "--tracking-uri", f"sqlite:///{tmp_path / 'unused.db'}"]) == 1
    assert "--user says who gives it" in capsys.readouterr().err
    assert len(emulator.feedback()) == 1

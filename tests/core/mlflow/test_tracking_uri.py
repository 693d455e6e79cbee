"""The MLflow tracking URI of a feedback job: shown without secrets, set only for a while."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from sfmodels_core.errors import InvalidInputError
from sfmodels_core.integration._mlflow_tracking import (
    ENV,
    absolute_uri,
    resolve_tracking_uri,
    scrub,
    shown_uri,
    use_tracking_uri,
)

mlflow = pytest.importorskip("mlflow")


@pytest.mark.parametrize("uri, shown", [
    ("databricks", "databricks"),
    ("databricks://my-profile", "databricks://my-profile"),
    ("sqlite:////tmp/mlflow.db", "sqlite:////tmp/mlflow.db"),
    ("https://mlflow.example.com:5000/", "https://mlflow.example.com:5000/"),
    ("postgresql://mlflow:hunter2@db.example.com:5432/mlflow",
     "postgresql://mlflow:***@db.example.com:5432/mlflow"),
    ("https://dapi0123abcd@mlflow.example.com", "https://***@mlflow.example.com"),
    ("https://mlflow.example.com/?token=abc&experiment=7&X-Amz-Signature=ff",
     "https://mlflow.example.com/?token=***&experiment=7&X-Amz-Signature=***"),
    ("mysql+pymysql://u:p%40ss@h/db?password=x", "mysql+pymysql://u:***@h/db?password=***"),
])
def test_secret_parts_of_a_uri_are_never_shown(uri: str, shown: str) -> None:
    assert shown_uri(uri) == shown
    assert scrub(f"no trace at {uri!r}.", uri) == f"no trace at {shown!r}."


def test_relative_local_stores_are_made_absolute() -> None:
    cwd = Path.cwd()
    assert absolute_uri("sqlite:///mlflow.db") == f"sqlite:///{cwd / 'mlflow.db'}"
    assert absolute_uri("sqlite:///x.db?mode=ro") == f"sqlite:///{cwd / 'x.db'}?mode=ro"
    assert absolute_uri("./mlruns") == str(cwd / "mlruns")
    for kept in ("sqlite:////tmp/a.db", "sqlite:///:memory:", "databricks", "databricks://p",
                 "https://h", "file:///tmp/mlruns"):
        assert absolute_uri(kept) == kept
    with pytest.raises(InvalidInputError, match="empty"):
        resolve_tracking_uri("  ")
    with pytest.raises(InvalidInputError, match="string"):
        resolve_tracking_uri(42)
    assert resolve_tracking_uri(Path("store")) == (cwd / "store").as_uri()


@pytest.mark.parametrize("env, set_too", [(None, False), ("sqlite:////tmp/env.db", False),
                                           (None, True), ("sqlite:////tmp/env.db", True)])
def test_a_uri_used_for_a_while_leaves_the_process_as_it_was(
        monkeypatch: pytest.MonkeyPatch, env: str | None, set_too: bool) -> None:
    from mlflow.tracking._tracking_service import utils

    # The session's URI and environment are put back after the test by monkeypatch.
    monkeypatch.setattr(utils, "_tracking_uri", None)
    if env is None:
        monkeypatch.delenv(ENV, raising=False)
    else:
        monkeypatch.setenv(ENV, env)
    if set_too:
        mlflow.set_tracking_uri("sqlite:////tmp/set.db")
        if env is not None:
            os.environ[ENV] = env  # MLflow wrote its own there
    held = (os.environ.get(ENV), mlflow.get_tracking_uri(), mlflow.is_tracking_uri_set())
    with use_tracking_uri("sqlite:////tmp/job.db"):
        assert mlflow.get_tracking_uri() == "sqlite:////tmp/job.db"
    assert (os.environ.get(ENV), mlflow.get_tracking_uri(), mlflow.is_tracking_uri_set()) == held


def test_mlflows_own_warnings_show_a_secret_uri_masked(
        monkeypatch: pytest.MonkeyPatch, capfd: pytest.CaptureFixture[str]) -> None:
    from mlflow.tracking._tracking_service import utils

    monkeypatch.setattr(utils, "_tracking_uri", None)
    monkeypatch.delenv(ENV, raising=False)
    monkeypatch.setenv("MLFLOW_HTTP_REQUEST_MAX_RETRIES", "0")
    uri = "http://mlflow:hunter2-secret@127.0.0.1:1/"  # nothing listens on port 1
    with use_tracking_uri(uri):
        assert mlflow.get_trace("tr-" + "0" * 32) is None  # MLflow warns that it failed
    err = capfd.readouterr().err
    assert "127.0.0.1" in err and "http://mlflow:***@127.0.0.1:1/" in err
    assert "hunter2" not in err

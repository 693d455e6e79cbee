"""Shared fixtures.

The emulator runs once per test session on 127.0.0.1; each test that asks for ``emulator`` gets
it back in its start state (configuration, counters and recorded feedback reset).
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from typing import TYPE_CHECKING

import pytest

if TYPE_CHECKING:
    from sfmodels_emulator import Emulator


@pytest.fixture(scope="session")
def emulator_server() -> Iterator[Emulator]:
    from sfmodels_emulator import Emulator

    with Emulator() as emu:
        yield emu


@pytest.fixture
def emulator(emulator_server: Emulator) -> Iterator[Emulator]:
    emulator_server.reset()
    yield emulator_server
    emulator_server.reset()


@pytest.fixture(scope="session")
def mlflow_store(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[str, str]]:
    """A real local MLflow tracking store (sqlite, in a temporary folder) for the whole session,
    and the experiment the tests trace to: created once, as creating the tables takes seconds.
    Traces are written as their spans end (MLflow's default queue takes seconds to flush, in
    every test that reads one back). MLflow's model price catalogue is not fetched: a span with
    token usage (autolog's) would look it up on the internet, which the tests must not use.
    The experiment keeps trace artifacts in the same folder (the default one keeps them in
    ./mlruns, under the directory the tests run from)."""
    os.environ["MLFLOW_ENABLE_ASYNC_TRACE_LOGGING"] = "false"
    os.environ["MLFLOW_MODEL_CATALOG_URI"] = ""
    mlflow = pytest.importorskip("mlflow")
    folder = tmp_path_factory.mktemp("mlflow")
    uri = f"sqlite:///{folder / 'mlflow.db'}"
    before = mlflow.get_tracking_uri() if mlflow.is_tracking_uri_set() else None
    mlflow.set_tracking_uri(uri)
    experiment = mlflow.create_experiment("sfmodels-tests",
                                          artifact_location=(folder / "artifacts").as_uri())
    yield uri, experiment
    mlflow.set_tracking_uri(before)


@pytest.fixture
def mlflow_tracking(mlflow_store: tuple[str, str]) -> Iterator[str]:
    """The session's MLflow store and experiment, set again for each test (a test may have
    pointed MLflow elsewhere), with tracing left enabled after it."""
    import mlflow

    uri, experiment = mlflow_store
    mlflow.set_tracking_uri(uri)
    mlflow.set_experiment(experiment_id=experiment)
    yield uri
    mlflow.tracing.enable()

"""The main job: `sfmodels demo` must work end to end on the built-in emulator."""

from __future__ import annotations

import sys

import pytest

from sfmodels.cli import main

CREDENTIALS = ("SALESFORCE_DOMAIN", "SALESFORCE_CLIENT_ID", "SALESFORCE_CLIENT_SECRET",
               "SALESFORCE_ACCESS_TOKEN", "SALESFORCE_API_BASE", "DATABRICKS_HOST",
               "DATABRICKS_TOKEN", "DATABRICKS_CLIENT_ID", "DATABRICKS_CLIENT_SECRET",
               "DATABRICKS_CONFIG_PROFILE")


def mlflow_installed() -> bool:
    try:
        import mlflow  # noqa: F401
    except ImportError:
        return False
    return True


@pytest.fixture
def no_credentials(monkeypatch: pytest.MonkeyPatch) -> None:
    for var in CREDENTIALS:
        monkeypatch.delenv(var, raising=False)
    monkeypatch.setenv("DATABRICKS_CONFIG_FILE", "/nonexistent")


def test_demo_runs_every_section_on_the_emulator(capsys: pytest.CaptureFixture[str],
                                                 no_credentials: None) -> None:
    assert main(["demo"]) == 0
    out = capsys.readouterr().out
    assert out.count("the built-in emulator at http://127.0.0.1:") == 2
    assert out.count("== ") == 4
    assert out.count("within 30 days of delivery for a full refund") == 4
    assert out.count("sources     returns.md") == 4
    assert out.count("emulator recorded it: GOOD on") == 2
    if mlflow_installed():
        assert out.count("MLflow holds it: user_feedback=True by demo on span") == 2
        assert "Databricks feedback: MLflow at sqlite:///" in out
    else:
        assert out.count("skipped: Databricks feedback is recorded in MLflow") == 2
    assert "get_order_status({'order_number': 1042})" in out
    assert "arrives tomorrow" in out
    assert "(reported once for the stream)" in out
    assert out.count("usage       ") == 4 and "not reported" not in out
    assert "FAILED" not in out and "All sections worked." in out


def test_demo_without_mlflow_says_how_to_record_databricks_feedback(
        capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch,
        no_credentials: None) -> None:
    monkeypatch.setitem(sys.modules, "mlflow", None)  # as if it were not installed
    assert main(["demo"]) == 0
    out = capsys.readouterr().out
    assert "Databricks feedback: MLflow at (not installed)" in out
    assert "skipped: Databricks feedback is recorded in MLflow (pip install " \
           "'sfmodels[mlflow]')" in out
    assert "All sections worked." in out


def test_demo_uses_the_emulator_when_asked_even_with_credentials(
        capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("SALESFORCE_ACCESS_TOKEN", "a-real-looking-token")
    monkeypatch.setenv("DATABRICKS_HOST", "https://adb-1.2.azuredatabricks.net")
    monkeypatch.setenv("DATABRICKS_TOKEN", "real-token")
    assert main(["demo", "--emulator"]) == 0
    assert capsys.readouterr().out.count("the built-in emulator") == 2


def test_demo_exit_code_says_when_a_step_failed(capsys: pytest.CaptureFixture[str],
                                                no_credentials: None) -> None:
    assert main(["demo", "--salesforce-model", "sfdc_ai__NoSuchModel"]) == 1
    out = capsys.readouterr().out
    assert "FAILED" in out and "2 of 4 sections failed" in out


def test_demo_says_emulator_for_an_emulator_started_elsewhere(
        capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch,
        no_credentials: None) -> None:
    from sfmodels_emulator import Emulator

    with Emulator() as emu:
        for name, value in emu.env().items():  # what `sfmodels emulator` tells users to export
            monkeypatch.setenv(name, value)
        url = emu.url
        assert main(["demo"]) == 0
    out = capsys.readouterr().out
    assert out.count(f"the emulator at {url}") == 2
    assert "real service" not in out and "built-in" not in out

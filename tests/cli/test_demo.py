"""The main job: `sfmodels demo` must work end to end on the built-in emulator."""

from __future__ import annotations

import pytest

from sfmodels_core.cli import main


def test_demo_runs_every_step_on_the_emulator(capsys: pytest.CaptureFixture[str],
                                              monkeypatch: pytest.MonkeyPatch) -> None:
    for var in ("SALESFORCE_DOMAIN", "SALESFORCE_ACCESS_TOKEN", "DATABRICKS_HOST",
                "DATABRICKS_TOKEN"):
        monkeypatch.delenv(var, raising=False)
    monkeypatch.setenv("DATABRICKS_CONFIG_FILE", "/nonexistent")
    assert main(["demo"]) == 0
    out = capsys.readouterr().out
    assert out.count("on the built-in emulator") == 2
    assert "within 30 days of delivery" in out
    assert "Feedback received, Thank you!" in out
    assert "emulator recorded 1 matching entry" in out
    assert "get_order_status" in out and "1042" in out
    assert "(reported once)" in out
    assert "FAILED" not in out and "All steps worked." in out

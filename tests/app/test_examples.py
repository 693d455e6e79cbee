"""The examples run against the emulator, so they cannot rot."""

from __future__ import annotations

import importlib.util
from pathlib import Path
from types import ModuleType

import pytest

from sfmodels_emulator import Emulator

from .test_commands import env  # noqa: F401  (the fixture pointing the environment at it)

EXAMPLES = Path(__file__).resolve().parents[2] / "examples"


def load(name: str) -> ModuleType:
    spec = importlib.util.spec_from_file_location(f"example_{name}", EXAMPLES / f"{name}.py")
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_rag_chain(env: Emulator, capsys: pytest.CaptureFixture[str]) -> None:  # noqa: F811
    answer = load("rag_chain").main("How long does express shipping take?")
    assert "one business day" in answer
    assert env.feedback()[-1]["feedback"] == "GOOD"
    assert "feedback ids:" in capsys.readouterr().out


@pytest.mark.parametrize("provider", ["databricks", "salesforce"])
def test_agent_with_tools(env: Emulator, provider: str) -> None:  # noqa: F811
    answer = load("agent_with_tools").main(["--provider", provider, "Multiply 12 by 7, please."])
    assert "84" in answer


def test_bulk_indexing_with_feedback(env: Emulator,  # noqa: F811
                                     capsys: pytest.CaptureFixture[str]) -> None:
    answer = load("bulk_indexing_with_feedback").main(["--passages", "1200"])
    assert "Saturday" in answer
    recorded = env.feedback()[-1]
    assert recorded["feedback"] == "GOOD" and recorded["generationId"]
    assert env.counters()["requests"]["databricks.invocations"] >= 8

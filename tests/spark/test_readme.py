"""The Spark page of the documentation: the open-source example runs as written against the
emulator; the Databricks, resume and MLflow feedback examples, which need a workspace or traces,
at least compile."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import pytest

from sfmodels_emulator import Emulator

from .conftest import api_requests

pytestmark = pytest.mark.timeout(300)

ROOT = Path(__file__).resolve().parents[2]
PAGE = (ROOT / "docs" / "spark.md").read_text(encoding="utf-8")
SNIPPETS = re.findall(r"```python\n(.*?)```", PAGE, re.DOTALL)


def test_the_section_has_the_four_examples() -> None:
    assert len(SNIPPETS) == 4
    for snippet in SNIPPETS:
        compile(snippet, "docs/spark.md", "exec")


def test_the_open_source_example_runs(spark: Any, emulator: Emulator,
                                      monkeypatch: pytest.MonkeyPatch,
                                      capsys: pytest.CaptureFixture[str]) -> None:
    for key in ("SALESFORCE_ACCESS_TOKEN", "SALESFORCE_API_BASE"):
        monkeypatch.delenv(key, raising=False)
    for key, value in emulator.env().items():
        monkeypatch.setenv(key, value)
    exec(compile(SNIPPETS[1], "docs/spark.md", "exec"), {"__name__": "docs"})
    printed = capsys.readouterr().out
    assert "2 vectors" in printed
    assert len(emulator.feedback()) == 2
    # Two answers (cached, so not asked again), an embedding batch for each of the two
    # partitions, two ratings.
    assert api_requests(emulator) == 2 + 2 + 2

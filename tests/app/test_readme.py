"""The README's Python snippets run as written against the emulator, so they stay true."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from sfmodels_emulator import Emulator

from .test_commands import env  # noqa: F401  (the fixture pointing the environment at it)

ROOT = Path(__file__).resolve().parents[2]
README = (ROOT / "README.md").read_text(encoding="utf-8")
QUICK_START = README[README.index("## Quick start"):README.index("## What each class does")]
SNIPPETS = re.findall(r"```python\n(.*?)```", QUICK_START, re.DOTALL)


def test_the_quick_start_has_one_snippet_per_framework_and_provider_and_the_core() -> None:
    assert len(SNIPPETS) == 5


@pytest.mark.parametrize("snippet", SNIPPETS, ids=[f"snippet{i}" for i in range(len(SNIPPETS))])
def test_snippet_runs(snippet: str, env: Emulator,  # noqa: F811
                      monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(ROOT)  # the LlamaIndex snippet reads the docs/ folder
    exec(compile(snippet, "README.md", "exec"), {"__name__": "readme"})

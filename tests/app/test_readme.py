"""The Python blocks of the README and of every documentation page run as written against the
emulator, so they stay true.

The blocks of one page run in order in one namespace, as a reader pastes them one after the
other, with the environment that `sfmodels emulator` prints. A block preceded by
``<!-- compile-only: reason -->`` (one that needs a Databricks workspace, say) is only compiled.
"""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from sfmodels_emulator import Emulator

from .test_commands import env  # noqa: F401  (the fixture pointing the environment at it)

ROOT = Path(__file__).resolve().parents[2]
BLOCK = re.compile(r"(?:<!-- compile-only: (?P<reason>[^>]*?) -->\n)?```python\n(?P<code>.*?)```",
                   re.DOTALL)
#: Pages whose blocks another test runs, and why there.
OWN_TEST = {
    "docs/spark.md": "tests/spark/test_readme.py: the open-source example needs a Spark session",
}
PAGES = ["README.md",
         *sorted(p.relative_to(ROOT).as_posix() for p in (ROOT / "docs").rglob("*.md"))]


def blocks(text: str) -> list[tuple[str, str | None]]:
    """Each Python block's code, with the reason it is only compiled (or None)."""
    return [(m["code"], m["reason"]) for m in BLOCK.finditer(text)]


def section(text: str, heading: str) -> str:
    start = text.index(f"\n{heading}\n")
    level = heading.split(" ")[0]
    end = text.find(f"\n{level} ", start + len(heading) + 2)
    return text[start:] if end == -1 else text[start:end]


def read(page: str) -> str:
    return (ROOT / page).read_text(encoding="utf-8")


def test_the_quick_start_has_one_snippet_per_framework_and_provider_and_the_core() -> None:
    readme = blocks(section(read("README.md"), "## Quick start"))
    assert len(readme) == 5
    # The front page's quick starts are the documentation's, word for word.
    assert readme == blocks(section(read("docs/getting-started.md"), "## Quick start"))


def test_compile_only_blocks_say_why() -> None:
    for page in PAGES:
        for code, reason in blocks(read(page)):
            compile(code, page, "exec")
            assert reason is None or reason.strip(), page


RUN = [page for page in PAGES if page not in OWN_TEST and blocks(read(page))]


@pytest.mark.timeout(300)
@pytest.mark.parametrize("page", RUN)
def test_page_runs(page: str, env: Emulator,  # noqa: F811
                   monkeypatch: pytest.MonkeyPatch, mlflow_tracking: str) -> None:
    monkeypatch.chdir(ROOT)  # the LlamaIndex quick start reads the docs/ folder
    namespace = {"__name__": "docs"}
    for code, reason in blocks(read(page)):
        compiled = compile(code, page, "exec")
        if reason is None:
            exec(compiled, namespace)

"""Without MLflow installed, every way in to Databricks feedback says how to install it, and
nothing else needs it."""

from __future__ import annotations

import subprocess
import sys

import pytest

ENTRY_POINTS = {
    "the kit": "from sfmodels_core.integration.mlflow_feedback import require_mlflow\n"
               "require_mlflow()",
    "LangChain": "from langchain_sfmodels import DatabricksFeedbackHandler\n"
                 "DatabricksFeedbackHandler()",
    "LlamaIndex": "from llama_index_sfmodels import DatabricksFeedbackHandler\n"
                  "DatabricksFeedbackHandler().register()",
    "the command line": "from sfmodels.cli import main\n"
                        "raise SystemExit(main(['feedback', '--provider', 'databricks', "
                        "'tr-1', 'good']))",
}


def without_mlflow(code: str) -> subprocess.CompletedProcess[str]:
    """``code`` run in a new interpreter in which ``import mlflow`` fails."""
    return subprocess.run([sys.executable, "-c", "import sys; sys.modules['mlflow'] = None\n"
                           + code], capture_output=True, text=True, check=False)


@pytest.mark.parametrize("entry", ENTRY_POINTS)
def test_each_way_in_says_how_to_install_mlflow(entry: str) -> None:
    done = without_mlflow(ENTRY_POINTS[entry])
    assert done.returncode != 0
    assert "pip install 'sfmodels[mlflow]'" in done.stdout + done.stderr
    # An exception from the libraries; one line, no traceback, from the command line.
    assert "ConfigurationError" in done.stderr or (
        done.stderr.startswith("error: Databricks feedback is recorded as MLflow assessments")
        and "Traceback" not in done.stderr)


def test_the_salesforce_handlers_do_not_need_it() -> None:
    done = without_mlflow("from langchain_sfmodels import SalesforceFeedbackHandler\n"
                          "from llama_index_sfmodels import SalesforceFeedbackHandler as S\n"
                          "SalesforceFeedbackHandler(); S().register()\n")
    assert done.returncode == 0, done.stderr

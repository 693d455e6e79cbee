"""The table of how workers get Databricks credentials (docs/configuration.md) names settings
and numbers that exist; the behaviour each row states is tested where noted."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from sfmodels_core import defaults
from sfmodels_core.credentials import OIDC_AUTH_TYPES, OIDC_TOKEN_ENV
from sfmodels_core.integration.batch.connection import SETTINGS

pytestmark = pytest.mark.disable_socket

ROOT = Path(__file__).resolve().parents[3]
PAGE = (ROOT / "docs" / "configuration.md").read_text(encoding="utf-8")
#: Each row's behaviour, and where it is tested.
ROWS = {
    "personal access token": "test_ship_token.py::test_the_rows_keep_an_expired_token_per_row"
                             "_and_a_refused_pat_ends_the_task",
    "service principal (OAuth M2M)": "tests/spark/test_embed.py (a mint per worker process), "
                                     "test_auth.py::test_token_is_refreshed_ahead_of_expiry",
    "shipped token": "test_ship_token.py (core) and tests/spark/test_ship_token.py",
    "workload identity": "test_ship_token.py::test_a_workload_identity_travels_only_as_a_shipped"
                         "_token",
}


def table() -> list[list[str]]:
    start = PAGE.index("## How workers get Databricks credentials")
    lines = PAGE[start:].splitlines()
    rows = [line for line in lines if line.startswith("| ")]
    return [[cell.strip() for cell in row.strip("|").split("|")] for row in rows[1:5]]


def test_the_table_has_a_row_for_each_way() -> None:
    assert [row[0] for row in table()] == list(ROWS)


def test_the_settings_and_numbers_it_names_are_the_codes() -> None:
    text = " ".join(" ".join(row) for row in table())
    for setting in re.findall(r"`(\w+)=", text):
        assert setting in SETTINGS["databricks"], setting
    assert "ship_token" in SETTINGS["databricks"] and "ship_token" not in SETTINGS["salesforce"]
    assert f"{defaults.SHIPPED_TOKEN_MARGIN:g} s before its expiry" in text
    assert "`SHIPPED_TOKEN_MARGIN`" in text
    assert defaults.DATABRICKS_TOKEN_LIFETIME == 3600 and "an hour" in text
    assert OIDC_TOKEN_ENV in text and "DATABRICKS_OIDC_TOKEN_FILEPATH" in text
    for auth_type in OIDC_AUTH_TYPES:
        assert f"`{auth_type}`" in text


def test_the_spark_page_points_at_it() -> None:
    spark = (ROOT / "docs" / "spark.md").read_text(encoding="utf-8")
    assert "(configuration.md#how-workers-get-databricks-credentials)" in spark

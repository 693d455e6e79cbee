"""``ship_token=True`` on local Spark: the driver mints the only token and the executors send it;
once it has expired, the rows get the error and a rerun on the saved output finishes them."""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

import pytest

from sfmodels_core import defaults
from sfmodels_emulator import Emulator
from sfmodels_spark import embed

from .conftest import GTE, api_requests

# Starting Spark and its first Python workers takes tens of seconds on a busy 2-core machine.
pytestmark = pytest.mark.timeout(300)


def service_principal(emulator: Emulator) -> dict[str, Any]:
    return {"host": emulator.url, "client_id": emulator.databricks_client_id,
            "client_secret": emulator.databricks_client_secret, "ship_token": True}


def frame(spark: Any, n: int) -> Any:
    rows = spark.sparkContext.parallelize([(i, f"ticket {i} asks about order {i}")
                                           for i in range(n)], 3)
    return spark.createDataFrame(rows, "id long, text string")


def test_the_executors_send_the_one_token_the_driver_minted(spark: Any,
                                                            emulator: Emulator) -> None:
    out = embed(frame(spark, 12), "text", provider="databricks", model=GTE, batch_size=4,
                **service_principal(emulator)).collect()
    assert len(out) == 12 and all(r.embedding_error is None and r.embedding for r in out)
    # Every executor task sent requests, and not one of them minted a token.
    assert api_requests(emulator) >= 3
    assert emulator.counters()["tokens_minted"]["databricks"] == 1


def test_an_expired_token_marks_the_rows_and_a_rerun_finishes_them(
        spark: Any, emulator: Emulator, tmp_path: Path) -> None:
    emulator.configure(token_ttl_s=defaults.SHIPPED_TOKEN_MARGIN + 1.0)
    first = embed(frame(spark, 6), "text", provider="databricks", model=GTE,
                  **service_principal(emulator))  # minted now, on the driver
    time.sleep(1.2)  # the job runs once the token is within its margin
    first.write.parquet(str(tmp_path / "run1"))  # the job finishes: no task failed
    saved = spark.read.parquet(str(tmp_path / "run1"))
    assert api_requests(emulator) == 0  # nothing was sent with it
    assert all(r.embedding is None and "TokenExpiredError" in r.embedding_error
               and "Rerun the job on its saved output" in r.embedding_error
               for r in saved.collect())
    emulator.configure(token_ttl_s=3600)
    again = embed(saved, "text", provider="databricks", model=GTE,
                  **service_principal(emulator)).collect()
    assert len(again) == 6
    assert all(r.embedding_error is None and r.embedding for r in again)
    assert emulator.counters()["tokens_minted"]["databricks"] == 2  # one per job, on the driver

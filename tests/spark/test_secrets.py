"""Credentials reach the executors but no plan string, log line or error."""

from __future__ import annotations

import logging
import pickle
import re
from typing import Any

import pytest

from sfmodels_core.integration.batch.connection import resolve
from sfmodels_emulator import Emulator
from sfmodels_spark import embed, generate, submit_feedback

from .conftest import MODELS

# Starting Spark and its first Python workers takes tens of seconds on a busy 2-core machine.
pytestmark = pytest.mark.timeout(300)


SECRET = "sf-consumer-secret-spark-5Zq9"
PAT = "dapi-spark-personal-token-8Wn2"
WRONG = "sf-wrong-secret-spark-3Kd7"
JWT = re.compile(r"eyJ[A-Za-z0-9_-]{10,}\.[A-Za-z0-9_-]{10,}")
MODES = ("simple", "extended", "codegen", "cost", "formatted")


def test_secrets_stay_out_of_plans_logs_and_errors(spark: Any, capfd: pytest.CaptureFixture[str],
                                                   caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.DEBUG)
    with Emulator(salesforce_client_secret=SECRET, databricks_token=PAT) as emu:
        sf = {"domain": emu.salesforce_domain, "client_id": emu.salesforce_client_id,
              "client_secret": SECRET}
        db = {"host": emu.databricks_host, "api_key": PAT}
        df = spark.createDataFrame([(0, "what ships fast?"), (1, "")], "id long, text string")
        outputs = [
            embed(df, "text", provider="salesforce", model=MODELS["salesforce"][0], **sf),
            generate(df, "text", provider="databricks", model=MODELS["databricks"][1], **db),
            submit_feedback(df.selectExpr("id", "'gen-1' AS gen", "'GOOD' AS rating"), "gen",
                            "rating", **sf),
        ]
        plans = []
        for out in outputs:
            plans.append(out._jdf.queryExecution().toString())
            for mode in MODES:
                out.explain(mode)
            assert len(out.collect()) == 2
        with pytest.raises(Exception) as failed:
            embed(df, "text", provider="salesforce", model=MODELS["salesforce"][0],
                  **{**sf, "client_secret": WRONG}).collect()
        assert "TokenError" in str(failed.value)  # the job failed, and says why
        shown = [*plans, str(failed.value), repr(failed.value), repr(resolve("salesforce", sf)),
                 str(resolve("databricks", db))]
    printed = capfd.readouterr()
    shown += [printed.out, printed.err, caplog.text]
    assert "sfmodels_embed" in printed.out  # the plans were printed, and name the function
    for text in shown:
        for secret in (SECRET, PAT, WRONG):
            assert secret not in text
        assert not JWT.search(text)


def test_a_connection_pickles_with_its_secrets_masked() -> None:
    connection = resolve("databricks", {"host": "https://example.cloud.databricks.com",
                                        "client_id": "sp-id", "client_secret": SECRET}, env={})
    copy = pickle.loads(pickle.dumps(connection))
    assert copy == connection and hash(copy) == hash(connection)
    assert copy.client_secret is not None and copy.client_secret.get_secret_value() == SECRET
    assert SECRET not in repr(copy) and SECRET not in str(copy)

"""A local Spark session (``local[2]``) for the whole test session, and helpers.

Spark needs a Java runtime (17 or newer for pyspark 4): without one, every test that asks for
``spark`` is skipped with that reason. The driver, the executors and the Python workers all
stay on 127.0.0.1, so the loopback-only socket rule of the suite holds.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from collections.abc import Iterator
from typing import Any

import pytest

from sfmodels_emulator import Emulator

SF_CHAT = "sfdc_ai__DefaultOpenAIGPT4OmniMini"
ADA = "sfdc_ai__DefaultOpenAITextEmbeddingAda_002"
LLAMA = "databricks-meta-llama-3-3-70b-instruct"
GTE = "databricks-gte-large-en"
MODELS = {"salesforce": (ADA, SF_CHAT), "databricks": (GTE, LLAMA)}


def java_problem() -> str | None:
    """Why Spark cannot start here, or None."""
    home = os.environ.get("JAVA_HOME")
    java = os.path.join(home, "bin", "java") if home else shutil.which("java")
    if not java or not os.path.exists(java):
        return "no Java runtime found (Spark needs Java 17 or newer): install one or set JAVA_HOME"
    try:
        subprocess.run([java, "-version"], capture_output=True, check=True, timeout=30)
    except (OSError, subprocess.SubprocessError) as exc:
        return f"the Java runtime at {java} does not run: {exc}"
    return None


@pytest.fixture(scope="session")
def spark() -> Iterator[Any]:
    problem = java_problem()
    if problem is not None:
        pytest.skip(problem)
    from pyspark.sql import SparkSession

    saved = {k: os.environ.get(k) for k in ("SPARK_LOCAL_IP", "PYSPARK_PYTHON")}
    os.environ["SPARK_LOCAL_IP"] = "127.0.0.1"
    os.environ["PYSPARK_PYTHON"] = sys.executable
    session = (SparkSession.builder.master("local[2]").appName("sfmodels-tests")
               .config("spark.driver.host", "127.0.0.1")
               .config("spark.driver.bindAddress", "127.0.0.1")
               .config("spark.ui.enabled", "false")
               .config("spark.ui.showConsoleProgress", "false")
               .config("spark.sql.shuffle.partitions", "2")
               .config("spark.sql.session.timeZone", "UTC")
               .getOrCreate())
    session.sparkContext.setLogLevel("ERROR")
    try:
        yield session
    finally:
        session.stop()
        for key, value in saved.items():
            if value is None:
                os.environ.pop(key, None)
            else:
                os.environ[key] = value


def settings(emulator: Emulator, provider: str, **extra: Any) -> dict[str, Any]:
    """Credentials for ``provider`` on the emulator, as the Spark functions take them."""
    if provider == "salesforce":
        return {"domain": emulator.salesforce_domain, "client_id": emulator.salesforce_client_id,
                "client_secret": emulator.salesforce_client_secret, **extra}
    return {"host": emulator.databricks_host, "api_key": emulator.databricks_token, **extra}


def api_requests(emulator: Emulator) -> int:
    """API calls the emulator served (token requests left out)."""
    counts = emulator.counters()["requests"]
    return sum(n for route, n in counts.items() if not route.endswith(".token"))

"""How many tasks a Spark session runs at once: its share of a job's request budget
(``sfmodels_core.integration.batch.budget``) is divided by this."""

from __future__ import annotations

from typing import Any

__all__ = [
    "task_slots",
]


def task_slots(spark: Any) -> int | None:
    """How many tasks the session runs at once, or None when it cannot tell (Spark Connect)."""
    try:
        parallelism = int(spark.sparkContext.defaultParallelism)
    except Exception:  # Spark Connect sessions have no SparkContext
        try:
            parallelism = int(spark.conf.get("spark.default.parallelism"))
        except Exception:
            return None
    try:
        cpus = max(1, int(spark.conf.get("spark.task.cpus", "1")))
    except Exception:
        cpus = 1
    return max(1, parallelism // cpus)

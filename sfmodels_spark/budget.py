"""One request budget for a whole job, split across the tasks that run at the same time.

A job given ``requests_per_minute=R`` runs at most ``T`` tasks at once (``T`` is
``max_parallel_tasks``, else the session's task slots: its default parallelism divided by
``spark.task.cpus``). Each task's client paces its own requests at ``R / T`` a minute, one every
``60 * T / R`` seconds, so all tasks together stay within ``R`` a minute. A Python worker runs
one task at a time and keeps its client (and its pacing) from one task to the next.
"""

from __future__ import annotations

from typing import Any

from sfmodels_core.errors import ConfigurationError, InvalidInputError

__all__ = [
    "parallel_tasks",
    "per_task_rate",
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


def parallel_tasks(spark: Any, max_parallel_tasks: int | None) -> int:
    if max_parallel_tasks is not None:
        if not isinstance(max_parallel_tasks, int) or isinstance(max_parallel_tasks, bool) or \
                max_parallel_tasks < 1:
            raise InvalidInputError(
                f"max_parallel_tasks must be a positive integer, got {max_parallel_tasks!r}")
        return max_parallel_tasks
    slots = task_slots(spark)
    if slots is None:
        raise ConfigurationError(
            "requests_per_minute is for the whole job, but this session does not say how many "
            "tasks run at once.",
            hint="Pass max_parallel_tasks= (the number of tasks the cluster runs at the same "
                 "time, e.g. its total executor cores).")
    return slots


def per_task_rate(requests_per_minute: float | None, tasks: int) -> float | None:
    """Each task's share of the job's budget."""
    if requests_per_minute is None:
        return None
    if not isinstance(requests_per_minute, (int, float)) or isinstance(
            requests_per_minute, bool) or requests_per_minute <= 0:
        raise InvalidInputError(
            f"requests_per_minute must be a positive number, got {requests_per_minute!r}")
    return float(requests_per_minute) / tasks

"""One request budget for a whole job, split across the tasks that run at the same time.

A job given ``requests_per_minute=R`` runs at most ``T`` tasks at once. Each task's client paces
its own requests at ``R / T`` a minute, one every ``60 * T / R`` seconds, so all tasks together
stay within ``R`` a minute. A worker process runs one task at a time and keeps its client (and
its pacing) from one task to the next. The engine says what ``T`` is (its task slots), unless
``max_parallel_tasks`` does.
"""

from __future__ import annotations

from sfmodels_core.errors import ConfigurationError, InvalidInputError

__all__ = [
    "parallel_tasks",
    "per_task_rate",
]


def parallel_tasks(slots: int | None, max_parallel_tasks: int | None) -> int:
    """``max_parallel_tasks`` when given, else the engine's ``slots`` (None: it cannot tell)."""
    if max_parallel_tasks is not None:
        if not isinstance(max_parallel_tasks, int) or isinstance(max_parallel_tasks, bool) or \
                max_parallel_tasks < 1:
            raise InvalidInputError(
                f"max_parallel_tasks must be a positive integer, got {max_parallel_tasks!r}")
        return max_parallel_tasks
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

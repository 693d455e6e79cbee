"""What every batch engine (Spark, Ray) runs, with no engine in it.

- :mod:`.connection`: settings resolved once on the driver into a picklable :class:`Connection`
  (secrets masked), and one core client per worker process built from it.
- :mod:`.rows`: the work of one batch on plain Python lists: one result and one error per row,
  errors that concern every row ending the task.
- :mod:`.budget`: a job's request budget split across the tasks that run at once.

An engine package keeps only how its rows arrive and leave (Arrow batches, pandas frames) and
how it learns its parallelism.
"""

__all__: list[str] = []

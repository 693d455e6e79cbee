"""Batch inference and bulk embedding on Apache Spark, for Salesforce and Databricks models.

``embed``, ``generate`` and ``submit_feedback`` take a DataFrame and return it with their result
columns added: per-row results and errors, one request budget for the whole job, one client per
executor process, and reruns that redo only the rows that failed. Needs the ``spark`` extra
(pyspark, pandas, pyarrow); depends on ``sfmodels_core`` only.
"""

from __future__ import annotations

from .dataframe import embed, generate, submit_feedback

__all__ = ["embed", "generate", "submit_feedback"]

"""The integration kit every front end is built from: what LangChain, LlamaIndex and Spark share.

- :mod:`.fields`: the mixins declaring the core client's fields (``SalesforceClientFields``,
  ``DatabricksClientFields``) with the lazy, thread-safe core client, ``client=``, copy and
  pickle rules, ``close()``.
- :class:`~sfmodels_core.databricks.StreamAccumulator`: the one accumulator of Databricks
  streams (text, tool-call pieces, usage once, finish reason), with the Databricks provider.
- :mod:`sfmodels_core.tools` (beside the kit, as the providers check tools too): tool
  definitions checked, and tool choice in every spelling, read one way.
- :mod:`.salesforce`: a Salesforce chat call, plain or through the prompted protocol, and its
  answer (stop sequences, unsupported settings, generation ids, usage summed).
- :mod:`.feedback`: the generation log, the ratings and the Salesforce submission both
  feedback handlers use; :mod:`.mlflow_feedback`: the MLflow span per Databricks generation and
  the assessment a rating becomes.
- :mod:`.tokens`: token counts for trimming a history, with no tokenizer download.
- :mod:`.batch`: what a batch engine (Spark, Ray) runs on each worker, with no engine in it:
  the rows of one batch, the connection shipped to the workers, the job's request budget.

A front end keeps only its field declarations and its conversions to and from its own types;
a behaviour two need is written here once, and a parity test (``tests/parity``) pins that they
agree.
"""

__all__ = []

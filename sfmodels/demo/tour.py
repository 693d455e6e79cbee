"""The tour: the four sections on the chosen services, in order, and the summary."""

from __future__ import annotations

import argparse

from .langchain_tour import databricks_agent, salesforce_rag
from .llama_index_tour import databricks_query_engine, salesforce_query_engine
from .question import QUESTION
from .report import Report
from .services import mlflow_store, setup


def run(args: argparse.Namespace) -> int:
    """Run every section; 0 only when each worked."""
    report = Report()
    with setup(args.emulator) as where, mlflow_store() as where.mlflow_uri:
        where.salesforce_model = args.salesforce_model or where.salesforce_model
        where.databricks_endpoint = args.databricks_endpoint or where.databricks_endpoint
        where.databricks_embedding_endpoint = (args.databricks_embedding_endpoint
                                               or where.databricks_embedding_endpoint)
        print(f"sfmodels demo\nQuestion: {QUESTION}\n"
              f"Salesforce: {where.salesforce_where}\nDatabricks: {where.databricks_where}\n"
              f"Databricks feedback: MLflow at {where.mlflow_uri or '(not installed)'}")
        report.section(f"LangChain: retriever + ChatSalesforce ({where.salesforce_model})",
                       lambda r: salesforce_rag(where, r))
        report.section(f"LangChain: ChatDatabricks streaming, then calling a tool "
                       f"({where.databricks_endpoint})", lambda r: databricks_agent(where, r))
        report.section("LlamaIndex: VectorStoreIndex query engine on Salesforce",
                       lambda r: salesforce_query_engine(where, r))
        report.section("LlamaIndex: VectorStoreIndex query engine on Databricks",
                       lambda r: databricks_query_engine(where, r))
    print()
    if report.failures:
        print(f"{len(report.failures)} of 4 sections failed: {'; '.join(report.failures)}")
        return 1
    print("All sections worked.")
    return 0

"""``sfmodels demo``: a question answered from a small bundled corpus, four ways.

LangChain (a retriever with ``ChatSalesforce``, and ``ChatDatabricks`` streaming and calling a
tool) and LlamaIndex (a ``VectorStoreIndex`` query engine on each provider), with feedback sent
through each framework's feedback handler. Each provider runs against the real service when its
credentials are set (the SALESFORCE_* and DATABRICKS_* variables), otherwise against the
built-in emulator; the output says which. The exit code is 0 only when every step worked.
"""

from __future__ import annotations

import argparse
import contextlib
import os
import time
import traceback
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from importlib import resources
from typing import Any

from sfmodels_core import defaults
from sfmodels_core.config import resolve_databricks, resolve_salesforce
from sfmodels_core.errors import ConfigurationError, SFModelsError

QUESTION = "How many days do customers have to return a product?"


def corpus() -> list[tuple[str, str]]:
    """(name, text) of the bundled documents."""
    folder = resources.files(__package__).joinpath("corpus")
    return sorted((item.name, item.read_text(encoding="utf-8")) for item in folder.iterdir()
                  if item.name.endswith(".md"))


@dataclass
class Report:
    """Prints sections as they run and remembers which ones failed."""

    failures: list[str] = field(default_factory=list)

    def line(self, label: str, text: str) -> None:
        print(f"  {label:<11} {text}".replace("\n", "\n" + " " * 14))

    def section(self, title: str, body: Callable[[Report], None]) -> None:
        print(f"\n== {title}")
        started = time.perf_counter()
        try:
            body(self)
        except SFModelsError as exc:
            self.fail(title, str(exc))
        except ImportError as exc:
            self.fail(title, f"{exc} (install the frameworks: pip install 'sfmodels[all]')")
        except Exception as exc:  # an unexpected failure still ends in a clear report
            self.fail(title, "".join(traceback.format_exception_only(exc)).strip())
        else:
            print(f"  {'':<11} ({(time.perf_counter() - started) * 1000:.0f} ms)")

    def fail(self, title: str, why: str) -> None:
        self.failures.append(title)
        self.line("FAILED", why)


@dataclass
class Setup:
    """Where each provider's calls go: keyword settings for every class, and a description."""

    salesforce: dict[str, Any]
    databricks: dict[str, Any]
    salesforce_where: str
    databricks_where: str
    emulator: Any = None  # the running emulator, when one was started
    salesforce_model: str = defaults.SALESFORCE_CHAT_MODEL
    databricks_endpoint: str = defaults.DATABRICKS_CHAT_ENDPOINT
    databricks_embedding_endpoint: str = defaults.DATABRICKS_EMBEDDING_ENDPOINT

    def acknowledged(self, feedback_id: str) -> str:
        """What the emulator recorded for a feedback id (nothing to check on the real service)."""
        if self.emulator is None:
            return "accepted by Salesforce"
        mine = [f for f in self.emulator.feedback() if f.get("id") == feedback_id]
        return (f"emulator recorded it: {mine[0]['feedback']} on {mine[0]['generationId']}"
                if mine else "NOT recorded by the emulator")


def _configured(resolve: Callable[[], Any]) -> bool:
    try:
        resolve()
    except ConfigurationError:
        return False
    return True


def _configured_where(provider: str) -> str:
    """Where the settings in the environment point: the real service, or an emulator started
    elsewhere (``sfmodels emulator`` prints the variables; its credentials give it away)."""
    from sfmodels_emulator import state

    if provider == "salesforce":
        host = os.environ.get("SALESFORCE_DOMAIN") or os.environ.get("SALESFORCE_API_BASE")
        emulated = os.environ.get("SALESFORCE_CLIENT_ID") == state.DEFAULT_SALESFORCE_CLIENT_ID
    else:
        host = os.environ.get("DATABRICKS_HOST")
        emulated = os.environ.get("DATABRICKS_TOKEN") == state.DEFAULT_DATABRICKS_TOKEN or (
            os.environ.get("DATABRICKS_CLIENT_ID") == state.DEFAULT_DATABRICKS_CLIENT_ID)
    if emulated:
        return f"the emulator at {host}"
    return f"the real service ({provider.upper()}_* settings)"


@contextlib.contextmanager
def setup(force_emulator: bool) -> Iterator[Setup]:
    real_sf = not force_emulator and _configured(resolve_salesforce)
    real_dbx = not force_emulator and _configured(resolve_databricks)
    if real_sf and real_dbx:
        yield Setup({}, {}, _configured_where("salesforce"), _configured_where("databricks"))
        return
    from sfmodels_emulator import Emulator

    with Emulator() as emu:
        where = f"the built-in emulator at {emu.url}"
        yield Setup(
            salesforce={} if real_sf else {
                "domain": emu.salesforce_domain, "client_id": emu.salesforce_client_id,
                "client_secret": emu.salesforce_client_secret},
            databricks={} if real_dbx else {
                "host": emu.databricks_host, "api_key": emu.databricks_token},
            salesforce_where=_configured_where("salesforce") if real_sf else where,
            databricks_where=_configured_where("databricks") if real_dbx else where,
            emulator=emu)


def run(args: argparse.Namespace) -> int:
    from .langchain_tour import databricks_agent, salesforce_rag
    from .llama_index_tour import databricks_query_engine, salesforce_query_engine

    report = Report()
    with setup(args.emulator) as where:
        where.salesforce_model = args.salesforce_model or where.salesforce_model
        where.databricks_endpoint = args.databricks_endpoint or where.databricks_endpoint
        where.databricks_embedding_endpoint = (args.databricks_embedding_endpoint
                                               or where.databricks_embedding_endpoint)
        print(f"sfmodels demo\nQuestion: {QUESTION}\n"
              f"Salesforce: {where.salesforce_where}\nDatabricks: {where.databricks_where}")
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

"""``sfmodels demo``: answer questions from a small bundled corpus through both providers.

Each provider runs against the real service when its credentials are set (the SALESFORCE_* and
DATABRICKS_* variables), otherwise against the built-in emulator; the output says which. The exit
code is 0 only when every step worked.
"""

from __future__ import annotations

import argparse
import contextlib
import math
import os
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from importlib import resources
from typing import Any

from ..config import resolve_databricks, resolve_salesforce
from ..databricks import DatabricksClient, merge_chunks
from ..errors import ConfigurationError, SFModelsError
from ..salesforce import DEFAULT_CHAT_MODEL, DEFAULT_EMBEDDING_MODEL, SalesforceClient

QUESTION = "How many days do customers have to return a product?"
DATABRICKS_CHAT = "databricks-meta-llama-3-3-70b-instruct"
DATABRICKS_EMBEDDING = "databricks-gte-large-en"
WEATHER_TOOL = {"type": "function", "function": {
    "name": "get_order_status",
    "description": "Look up the shipping status of an order by its order number",
    "parameters": {"type": "object", "properties": {
        "order_number": {"type": "integer", "description": "the order number"}},
        "required": ["order_number"]}}}


def corpus() -> list[tuple[str, str]]:
    """(name, text) of the bundled documents."""
    folder = resources.files(__package__).joinpath("corpus")
    return sorted((item.name, item.read_text(encoding="utf-8")) for item in folder.iterdir()
                  if item.name.endswith(".md"))


def cosine(a: list[float], b: list[float]) -> float:
    dot = sum(x * y for x, y in zip(a, b, strict=True))
    norm = math.sqrt(sum(x * x for x in a)) * math.sqrt(sum(y * y for y in b))
    return dot / norm if norm else 0.0


@dataclass
class Report:
    """Prints steps as they finish and remembers whether all of them worked."""

    failures: list[str] = field(default_factory=list)

    def section(self, title: str) -> None:
        print(f"\n== {title}")

    def line(self, label: str, text: str) -> None:
        print(f"  {label:<12} {text}")

    def step(self, label: str, action: Callable[[], str]) -> None:
        started = time.perf_counter()
        try:
            text = action()
        except SFModelsError as exc:
            self.failures.append(label)
            self.line(label, f"FAILED: {exc}".replace("\n", "\n" + " " * 15))
            return
        self.line(label, f"{text}  ({(time.perf_counter() - started) * 1000:.0f} ms)")


@dataclass
class Targets:
    """Where each provider's calls go, and how to build its clients."""

    salesforce: Callable[[], SalesforceClient]
    databricks: Callable[[], DatabricksClient]
    salesforce_where: str
    databricks_where: str
    emulator: Any = None  # the running emulator, when one was started


def _configured(resolve: Callable[[], Any]) -> bool:
    try:
        resolve()
    except ConfigurationError:
        return False
    return True


@contextlib.contextmanager
def targets(force_emulator: bool) -> Iterator[Targets]:
    real_sf = not force_emulator and _configured(resolve_salesforce)
    real_dbx = not force_emulator and _configured(resolve_databricks)
    if real_sf and real_dbx:
        yield Targets(SalesforceClient, DatabricksClient, "the real service",
                      "the real service")
        return
    from ..emulator import Emulator

    with Emulator() as emu:
        where = f"the built-in emulator at {emu.url}"
        yield Targets(
            salesforce=SalesforceClient if real_sf else lambda: SalesforceClient(
                domain=emu.salesforce_domain, client_id=emu.salesforce_client_id,
                client_secret=emu.salesforce_client_secret, env={}),
            databricks=DatabricksClient if real_dbx else lambda: DatabricksClient(
                host=emu.databricks_host, api_key=emu.databricks_token, env={}),
            salesforce_where="the real service" if real_sf else where,
            databricks_where="the real service" if real_dbx else where,
            emulator=emu)


def _context(question_vector: list[float], vectors: list[list[float]],
             docs: list[tuple[str, str]], report: Report) -> str:
    ranked = sorted(zip(docs, vectors, strict=True),
                    key=lambda item: cosine(question_vector, item[1]), reverse=True)[:2]
    for (name, _), vector in ranked:
        report.line("source", f"{name}  (cosine {cosine(question_vector, vector):.3f})")
    return "\n\n".join(text for (_, text), _ in ranked)


def _rag_messages(context: str) -> list[dict[str, str]]:
    return [{"role": "system", "content": "Answer the question using only this context.\n\n"
                                          f"Context:\n{context}"},
            {"role": "user", "content": QUESTION}]


def salesforce_tour(client: SalesforceClient, model: str, report: Report,
                    emulator: Any) -> None:
    docs = corpus()
    state: dict[str, Any] = {}

    def embed() -> str:
        result = client.embed(DEFAULT_EMBEDDING_MODEL, [QUESTION] + [text for _, text in docs])
        state["context"] = _context(result.vectors[0], result.vectors[1:], docs, report)
        return (f"{len(docs)} documents and the question -> {len(result.vectors[0])}-dim "
                f"vectors with {DEFAULT_EMBEDDING_MODEL}")

    def chat() -> str:
        result = client.chat(model, _rag_messages(state.get("context", "")))
        state["generation_id"] = result.generation_id
        usage = result.usage
        tokens = f"{usage.prompt_tokens}+{usage.completion_tokens} tokens" if usage else "no usage"
        return f"{result.text!r}\n{'':15}generation {result.generation_id}, {tokens}"

    def generate() -> str:
        result = client.generate(model, "Write a one-line greeting for Northwind customers.")
        return f"{result.text!r} (generation {result.generation_id})"

    def feedback() -> str:
        generation_id = state.get("generation_id")
        if not generation_id:
            raise SFModelsError("no generation id to give feedback on (the chat step failed)")
        result = client.submit_feedback(generation_id, "GOOD", text="Correct and grounded.",
                                        source="human")
        recorded = ""
        if emulator is not None:
            mine = [f for f in emulator.feedback() if f.get("id") == result.feedback_id]
            recorded = f"; emulator recorded {len(mine)} matching entry"
        return f"GOOD on {generation_id} -> {result.message!r} (id {result.feedback_id}{recorded})"

    report.step("embeddings", embed)
    report.step("chat (RAG)", chat)
    report.step("generation", generate)
    report.step("feedback", feedback)


def databricks_tour(client: DatabricksClient, endpoint: str, embedding_endpoint: str,
                    report: Report) -> None:
    docs = corpus()
    state: dict[str, Any] = {}

    def embed() -> str:
        result = client.embed(embedding_endpoint, [QUESTION] + [text for _, text in docs])
        state["context"] = _context(result.vectors[0], result.vectors[1:], docs, report)
        return (f"{len(docs)} documents and the question -> {len(result.vectors[0])}-dim "
                f"vectors with {embedding_endpoint}")

    def stream() -> str:
        started = time.perf_counter()
        first: float | None = None
        chunks = []
        for chunk in client.stream_chat(endpoint, _rag_messages(state.get("context", "")),
                                        max_tokens=200):
            if first is None and chunk.text:
                first = time.perf_counter() - started
            chunks.append(chunk)
        merged = merge_chunks(chunks)
        usage = merged.usage
        tokens = f"{usage.prompt_tokens}+{usage.completion_tokens} tokens" if usage else "no usage"
        return (f"{merged.text!r}\n{'':15}{len(chunks)} chunks, first after "
                f"{(first or 0) * 1000:.0f} ms, {tokens} (reported once)")

    def tool_call() -> str:
        question = "Where is my order 1042?"
        messages: list[dict[str, Any]] = [{"role": "user", "content": question}]
        first = client.chat(endpoint, messages, tools=[WEATHER_TOOL], tool_choice="auto")
        if not first.tool_calls:
            raise SFModelsError(f"the model answered without calling the tool: {first.text!r}")
        call = first.tool_calls[0]
        args = call.parsed_arguments()
        status = f"Order {args.get('order_number')} left the warehouse and arrives tomorrow."
        messages += [
            {"role": "assistant", "content": None, "tool_calls": [
                {"id": call.id, "type": "function",
                 "function": {"name": call.name, "arguments": call.arguments}}]},
            {"role": "tool", "tool_call_id": call.id, "content": status}]
        final = client.chat(endpoint, messages, tools=[WEATHER_TOOL])
        return f"{call.name}({call.arguments}) -> {final.text!r}"

    report.step("embeddings", embed)
    report.step("stream (RAG)", stream)
    report.step("tool call", tool_call)


def run(args: argparse.Namespace) -> int:
    report = Report()
    model = args.salesforce_model or os.environ.get("SFMODELS_DEMO_SALESFORCE_MODEL") or \
        DEFAULT_CHAT_MODEL
    endpoint = args.databricks_endpoint or DATABRICKS_CHAT
    embedding_endpoint = args.databricks_embedding_endpoint or DATABRICKS_EMBEDDING
    print(f"sfmodels demo\nQuestion: {QUESTION}")
    with targets(args.emulator) as where:
        report.section(f"Salesforce Models API ({model}) on {where.salesforce_where}")
        with where.salesforce() as sf:
            salesforce_tour(sf, model, report, where.emulator)
        report.section(f"Databricks ({endpoint}) on {where.databricks_where}")
        with where.databricks() as dbx:
            databricks_tour(dbx, endpoint, embedding_endpoint, report)
    print()
    if report.failures:
        print(f"{len(report.failures)} step(s) failed: {', '.join(report.failures)}")
        return 1
    print("All steps worked.")
    return 0

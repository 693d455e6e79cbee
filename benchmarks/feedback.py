"""Feedback: which LlamaIndex answers can be rated (and to which generation), before and after a
change, and what recording costs per call on each provider.

    python benchmarks/feedback.py [--before REF] [--calls N]

Part 1 runs one script of LlamaIndex answers against the emulator with the Salesforce feedback
handler registered, in the code at REF and in this checkout, and says for each answer whether
``submit(response=answer)`` rated the generation whose text the answer shows, another one, or
refused it; and whether registering the handler changed ``Response.metadata``. Part 2 times N
sequential LangChain ``invoke`` calls with no handler and with each feedback handler (the
Databricks one against a local MLflow store, with MLflow's default asynchronous trace writes).
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _common import LLAMA, ROOT, code_at, run_worker, table

QUESTION = "How high is Mount Everest?"
DOCS = ["Mount Everest is the highest mountain on Earth. Its summit is 8849 metres high.",
        "The Nile is the longest river in Africa."]


def _answers(llm: Any, events: list[Any]) -> list[tuple[str, Any, Any]]:
    """(what, answer, the generation id its text came from) for each kind of answer."""
    import asyncio

    from llama_index.core import Document, VectorStoreIndex
    from llama_index.core.agent.workflow import FunctionAgent
    from llama_index.core.llms import ChatMessage

    def last() -> Any:
        ends = [e for e in events if type(e).__name__ in ("LLMChatEndEvent",
                                                          "LLMCompletionEndEvent")]
        return ends[-1].response.additional_kwargs.get("generation_id")

    index = VectorStoreIndex.from_documents([Document(text=t) for t in DOCS])
    out: list[tuple[str, Any, Any]] = []
    answer = index.as_query_engine(similarity_top_k=1).query(QUESTION)
    out.append(("query engine Response", answer, last()))
    streamed = index.as_query_engine(similarity_top_k=1, streaming=True).query(QUESTION)
    "".join(streamed.response_gen)
    out.append(("query engine StreamingResponse, read", streamed, last()))
    for mode in ("condense_plus_context", "context", "simple"):
        for method in ("chat", "achat", "stream_chat", "astream_chat"):
            engine = index.as_chat_engine(chat_mode=mode, similarity_top_k=1)
            engine.chat("Tell me about rivers")  # a first turn: the second one condenses
            if method == "chat":
                answer = engine.chat(QUESTION)
            elif method == "achat":
                answer = asyncio.run(engine.achat(QUESTION))
            elif method == "stream_chat":
                answer = engine.stream_chat(QUESTION)
                "".join(answer.response_gen)
            else:
                async def read(engine: Any = engine) -> Any:
                    streaming = await engine.astream_chat(QUESTION)
                    async for _ in streaming.async_response_gen():
                        pass
                    return streaming
                answer = asyncio.run(read())
            out.append((f"chat engine {mode}.{method}", answer, last()))
    agent = FunctionAgent(tools=[], llm=llm, system_prompt="Answer briefly.")

    async def run_agent() -> Any:
        return await agent.run(user_msg=QUESTION)
    output = asyncio.run(run_agent())
    generation = last()
    out.append(("agent AgentOutput", output, generation))
    out.append(("agent AgentOutput.response (ChatMessage)", output.response, generation))
    reply = llm.chat([ChatMessage(role="user", content=QUESTION)])
    out.append(("ChatResponse", reply, last()))
    completion = llm.complete(QUESTION)
    out.append(("CompletionResponse", completion, last()))
    return out


def worker_rateable() -> dict[str, Any]:
    """Run in the code under test: each answer's outcome, and whether metadata stayed whole."""
    from llama_index.core import Settings
    from llama_index.core.instrumentation.event_handlers import BaseEventHandler
    from llama_index_instrumentation import get_dispatcher

    from llama_index_sfmodels import SalesforceEmbedding, SalesforceFeedbackHandler, SalesforceLLM
    from sfmodels_emulator import Emulator

    with Emulator() as emu:
        settings = {"domain": emu.salesforce_domain, "client_id": emu.salesforce_client_id,
                    "client_secret": emu.salesforce_client_secret}
        llm = SalesforceLLM(**settings)
        Settings.llm, Settings.embed_model = llm, SalesforceEmbedding(**settings)
        events: list[Any] = []

        class Events(BaseEventHandler):
            def handle(self, event: Any, **kwargs: Any) -> None:
                events.append(event)

        get_dispatcher().add_event_handler(Events())
        handler = SalesforceFeedbackHandler(**settings).register()
        results = {}
        answers = _answers(llm, events)
        for what, answer, generation in answers:
            before = len(emu.feedback())
            try:
                handler.submit("GOOD", response=answer)
            except Exception as exc:  # the outcome being measured
                results[what] = f"refused: {type(exc).__name__}"
                continue
            rated = [f["generationId"] for f in emu.feedback()[before:]]
            results[what] = "rated the answer's generation" if rated == [generation] else \
                f"rated another generation ({len(rated)} sent)"
        # What LlamaIndex puts in a query answer's metadata: node id -> node metadata, no more.
        answer = answers[0][1]
        built = {n.node.node_id: n.node.metadata for n in answer.source_nodes}
    return {"answers": results, "metadata kept": answer.metadata == built}


def rateable(before: str) -> None:
    script = Path(__file__).resolve()
    rows: dict[str, list[str]] = {}
    kept = []
    for where, label in ((before, before), (str(ROOT), "now")):
        with code_at(where) as tree:
            env = {**os.environ, "PYTHONPATH": str(tree)}
            result = run_worker(script, ["rateable"], env, f"rateable answers at {label}")
        for what, outcome in result["answers"].items():
            rows.setdefault(what, []).append(outcome)
        kept.append("unchanged" if result["metadata kept"] else "changed")
    table(f"LlamaIndex answers rated with SalesforceFeedbackHandler.submit(response=...): "
          f"{before} vs now", ("answer", before, "now"),
          [(what, *(outcomes + ["-"] * (2 - len(outcomes)))) for what, outcomes in rows.items()])
    good = [sum(row[i] == "rated the answer's generation" for row in rows.values())
            for i in range(2)]
    print(f"rated exactly: {good[0]} of {len(rows)} before, {good[1]} of {len(rows)} now; "
          f"Response.metadata with the handler registered: {kept[0]} before, {kept[1]} now")


def _per_call(model: Any, handler: Any, calls: int) -> tuple[float, float, float]:
    """Median µs per invoke without and with ``handler`` (interleaved, so both see the same
    machine), and the ms of one ``submit`` right after the last call."""
    timings: dict[bool, list[float]] = {False: [], True: []}
    model.invoke("warm up", config={"callbacks": [handler]})
    for i in range(calls):
        for recorded in (False, True):
            config = {"callbacks": [handler]} if recorded else {}
            started = time.perf_counter()
            model.invoke(f"Question {i}", config=config)
            timings[recorded].append((time.perf_counter() - started) * 1e6)
    started = time.perf_counter()
    handler.submit("GOOD", comment="fine", user="bench")
    return (statistics.median(timings[False]), statistics.median(timings[True]),
            (time.perf_counter() - started) * 1000)


def overhead(calls: int) -> None:
    """What recording costs per call, on each provider (Databricks with MLflow's default
    queued trace writes, and with traces written as each call ends)."""
    import mlflow
    from mlflow.tracing.provider import reset

    from langchain_sfmodels import (
        ChatDatabricks,
        ChatSalesforce,
        DatabricksFeedbackHandler,
        SalesforceFeedbackHandler,
    )
    from sfmodels_emulator import Emulator

    folder = Path(tempfile.mkdtemp(prefix="sfmodels-bench-mlflow-"))
    mlflow.set_tracking_uri(f"sqlite:///{folder / 'mlflow.db'}")
    mlflow.set_experiment(experiment_id=mlflow.create_experiment(
        "bench", artifact_location=(folder / "artifacts").as_uri()))
    rows = []
    with Emulator(mode="process") as emu:
        sf = {"domain": emu.salesforce_domain, "client_id": emu.salesforce_client_id,
              "client_secret": emu.salesforce_client_secret}
        rows.append(("Salesforce", *_per_call(ChatSalesforce(**sf),
                                              SalesforceFeedbackHandler(**sf), calls)))
        databricks = ChatDatabricks(endpoint=LLAMA, host=emu.databricks_host,
                                    api_key=emu.databricks_token)
        for queued in ("true", "false"):
            os.environ["MLFLOW_ENABLE_ASYNC_TRACE_LOGGING"] = queued
            reset()
            label = "queued (MLflow's default)" if queued == "true" else "written at once"
            rows.append((f"Databricks, traces {label}",
                         *_per_call(databricks, DatabricksFeedbackHandler(), calls)))
            mlflow.flush_trace_async_logging()
    table(f"Recording cost per LangChain invoke ({calls} interleaved calls each, median; "
          "Databricks: an MLflow span per call, to a local sqlite store)",
          ("handler", "no handler µs", "with handler µs", "one submit right after, ms"),
          [(name, none, recorded, submit) for name, none, recorded, submit in rows])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--before", default=None, help="a git ref (or folder) to compare with")
    parser.add_argument("--calls", type=int, default=200)
    parser.add_argument("--worker", default=None, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.worker == "rateable":
        print(json.dumps(worker_rateable()))
        return
    if args.before:
        rateable(args.before)
    overhead(args.calls)


if __name__ == "__main__":
    main()

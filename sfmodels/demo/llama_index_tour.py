"""The demo's LlamaIndex sections: a VectorStoreIndex query engine on each provider."""

from __future__ import annotations

from typing import Any

from .question import QUESTION, corpus
from .report import Report
from .services import Setup


def _query(embed_model: Any, llm: Any, report: Report) -> Any:
    """Index the corpus, ask the question, print sources, answer and the LLM call's usage."""
    from llama_index.core import Document, VectorStoreIndex
    from llama_index.core.instrumentation.event_handlers import BaseEventHandler
    from llama_index.core.instrumentation.events.llm import LLMChatEndEvent
    from llama_index_instrumentation import get_dispatcher

    calls: list[Any] = []

    class LastChat(BaseEventHandler):
        def handle(self, event: Any, **kwargs: Any) -> None:
            if isinstance(event, LLMChatEndEvent) and event.response is not None:
                calls.append(event.response)

    watcher = LastChat()
    dispatcher = get_dispatcher()
    dispatcher.add_event_handler(watcher)
    try:
        documents = [Document(text=text, metadata={"source": name}) for name, text in corpus()]
        index = VectorStoreIndex.from_documents(documents, embed_model=embed_model)
        response = index.as_query_engine(llm=llm, similarity_top_k=2).query(QUESTION)
    finally:
        dispatcher.event_handlers = [h for h in dispatcher.event_handlers if h is not watcher]
    report.line("sources", ", ".join(f"{n.node.metadata['source']} (score {n.score:.3f})"
                                     for n in response.source_nodes))
    report.line("answer", repr(str(response)))
    report.line("usage", _usage(calls[-1]) if calls else "not reported")
    return response


def _usage(llm_response: Any) -> str:
    extra = getattr(llm_response, "additional_kwargs", {}) or {}
    if "prompt_tokens" not in extra:
        return "not reported"
    return f"{extra['prompt_tokens']} prompt + {extra['completion_tokens']} completion tokens"


def salesforce_query_engine(where: Setup, report: Report) -> None:
    from llama_index_sfmodels import SalesforceEmbedding, SalesforceFeedbackHandler, SalesforceLLM

    handler = SalesforceFeedbackHandler(**where.salesforce).register()
    try:
        llm = SalesforceLLM(model=where.salesforce_model, **where.salesforce)
        response = _query(SalesforceEmbedding(**where.salesforce), llm, report)
        generation_id = handler.find_generation_id(response)
        report.line("generation", generation_id)
        result = handler.submit("GOOD", response=response, comment="Answered from returns.md",
                                user="demo")
        report.line("feedback", f"GOOD through SalesforceFeedbackHandler, id "
                                f"{result.feedback_id}; {where.acknowledged(result.feedback_id)}")
    finally:
        handler.unregister()


def databricks_query_engine(where: Setup, report: Report) -> None:
    from llama_index_sfmodels import DatabricksEmbedding, DatabricksFeedbackHandler, DatabricksLLM
    from sfmodels_core.integration.feedback import Assessment

    llm = DatabricksLLM(endpoint=where.databricks_endpoint, **where.databricks)
    embed = DatabricksEmbedding(endpoint=where.databricks_embedding_endpoint, **where.databricks)
    if where.mlflow_uri is None:
        _query(embed, llm, report)
        report.line("feedback", "skipped: Databricks feedback is recorded in MLflow (pip "
                                "install 'sfmodels[mlflow]')")
        return
    handler = DatabricksFeedbackHandler().register()
    try:
        response = _query(embed, llm, report)
        logged = handler.submit("GOOD", response=response, comment="Answered from returns.md",
                                user="demo").results[0]
    finally:
        handler.unregister()
    assert isinstance(logged, Assessment)
    report.line("feedback", f"GOOD through DatabricksFeedbackHandler, assessment "
                            f"{logged.feedback_id}; "
                            f"{where.assessed(logged.trace_id, logged.feedback_id)}")

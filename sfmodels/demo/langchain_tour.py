"""The demo's LangChain sections: a retrieval chain on Salesforce, a streaming tool user on
Databricks."""

from __future__ import annotations

import time
from typing import TYPE_CHECKING, Any

from .question import QUESTION, corpus
from .report import Report
from .services import Setup

if TYPE_CHECKING:
    from langchain_core.messages import BaseMessage

SYSTEM = "Answer the question using only this context.\n\nContext:\n{context}"


def _usage(message: BaseMessage) -> str:
    usage = getattr(message, "usage_metadata", None)
    if not usage:
        return "not reported"
    return f"{usage['input_tokens']} input + {usage['output_tokens']} output tokens"


def _store(embeddings: Any, report: Report) -> Any:
    from langchain_core.documents import Document
    from langchain_core.vectorstores import InMemoryVectorStore

    store = InMemoryVectorStore(embeddings)
    store.add_documents([Document(page_content=text, metadata={"source": name})
                         for name, text in corpus()])
    hits = store.similarity_search_with_score(QUESTION, k=2)
    report.line("sources", ", ".join(f"{doc.metadata['source']} (score {score:.3f})"
                                     for doc, score in hits))
    return store


def _rag_chain(store: Any, llm: Any) -> Any:
    from langchain_core.prompts import ChatPromptTemplate
    from langchain_core.runnables import RunnablePassthrough

    def joined(docs: list[Any]) -> str:
        return "\n\n".join(doc.page_content for doc in docs)

    prompt = ChatPromptTemplate.from_messages([("system", SYSTEM), ("human", "{question}")])
    retriever = store.as_retriever(search_kwargs={"k": 2})
    return {"context": retriever | joined, "question": RunnablePassthrough()} | prompt | llm


def salesforce_rag(where: Setup, report: Report) -> None:
    from langchain_sfmodels import (
        ChatSalesforce,
        SalesforceEmbeddings,
        SalesforceFeedbackHandler,
    )

    store = _store(SalesforceEmbeddings(**where.salesforce), report)
    llm = ChatSalesforce(model=where.salesforce_model, **where.salesforce)
    handler = SalesforceFeedbackHandler(**where.salesforce)
    answer = _rag_chain(store, llm).invoke(QUESTION, config={"callbacks": [handler]})
    report.line("answer", repr(answer.content))
    report.line("usage", _usage(answer))
    report.line("generation", str(answer.response_metadata.get("generation_id")))
    # The handler knows the generation behind the chain run: feedback needs no ids from us.
    feedback_id = handler.submit("GOOD", comment="Correct and grounded in returns.md",
                                 user="demo").feedback_id
    report.line("feedback", f"GOOD through SalesforceFeedbackHandler, id {feedback_id}; "
                            f"{where.acknowledged(feedback_id)}")


def get_order_status(order_number: int) -> str:
    """Look up the shipping status of an order by its order number."""
    return f"Order {order_number} left the warehouse yesterday and arrives tomorrow."


def databricks_agent(where: Setup, report: Report) -> None:
    from langchain_core.messages import HumanMessage, ToolMessage
    from langchain_core.tools import tool

    from langchain_sfmodels import ChatDatabricks, DatabricksEmbeddings, DatabricksFeedbackHandler
    from sfmodels_core.integration.feedback import Assessment

    store = _store(DatabricksEmbeddings(endpoint=where.databricks_embedding_endpoint,
                                        **where.databricks), report)
    llm = ChatDatabricks(endpoint=where.databricks_endpoint, max_tokens=200, **where.databricks)
    handler = DatabricksFeedbackHandler() if where.mlflow_uri else None
    started = time.perf_counter()
    first: float | None = None
    chunks: list[Any] = []
    for chunk in _rag_chain(store, llm).stream(
            QUESTION, config={"callbacks": [handler] if handler else []}):
        if first is None and chunk.content:
            first = time.perf_counter() - started
        chunks.append(chunk)
    whole = chunks[0]
    for chunk in chunks[1:]:
        whole = whole + chunk
    report.line("answer", f"{whole.content!r}\n{len(chunks)} chunks streamed, first after "
                          f"{(first or 0) * 1000:.0f} ms")
    report.line("usage", f"{_usage(whole)} (reported once for the stream)")
    if handler is None:
        report.line("feedback", "skipped: Databricks feedback is recorded in MLflow (pip "
                                "install 'sfmodels[mlflow]')")
    else:
        # The streamed chain's answer, rated through the span its model call ran in.
        logged = handler.submit("GOOD", comment="Grounded in returns.md", user="demo").results[0]
        assert isinstance(logged, Assessment)
        report.line("feedback", f"GOOD through DatabricksFeedbackHandler, assessment "
                                f"{logged.feedback_id}; "
                                f"{where.assessed(logged.trace_id, logged.feedback_id)}")

    lookup = tool(get_order_status)
    with_tools = llm.bind_tools([lookup])
    messages: list[Any] = [HumanMessage("Where is my order 1042?")]
    reply = with_tools.invoke(messages)
    if not reply.tool_calls:
        raise RuntimeError(f"the model answered without calling the tool: {reply.content!r}")
    call = reply.tool_calls[0]
    report.line("tool call", f"{call['name']}({call['args']})")
    messages += [reply, ToolMessage(lookup.invoke(call["args"]), tool_call_id=call["id"])]
    final = with_tools.invoke(messages)
    report.line("answer", repr(final.content))

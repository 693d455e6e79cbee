"""SalesforceFeedbackHandler over a scripted fake service: run tree, bounds, errors."""

from __future__ import annotations

import uuid
from typing import Any

import httpx
import pytest
from langchain_core.outputs import ChatGeneration, LLMResult
from langchain_core.prompts import ChatPromptTemplate
from langchain_core.runnables import RunnableLambda

from langchain_sfmodels import ChatDatabricks, ChatSalesforce, SalesforceFeedbackHandler
from langchain_sfmodels.feedback import generation_ids
from sfmodels_core.errors import InvalidInputError

from .fakes import FakeService, databricks_client, db_chat, salesforce_client, sf_chat


def _feedback_service() -> FakeService:
    counter = iter(range(1000))

    def answer(request: httpx.Request) -> Any:
        if request.url.path.endswith("/feedback"):
            return httpx.Response(202, json={"message": "Feedback received, Thank you!"})
        return sf_chat(generation_id=f"gen-{next(counter)}")

    return FakeService(answer)


def test_chain_run_ids_find_the_generation_and_submit() -> None:
    service = _feedback_service()
    client = salesforce_client(service)
    handler = SalesforceFeedbackHandler(client)
    chain = (ChatPromptTemplate.from_messages([("human", "{q}")])
             | ChatSalesforce(client=client) | RunnableLambda(lambda m: m.content))
    first, second = uuid.uuid4(), uuid.uuid4()
    chain.invoke({"q": "one"}, config={"callbacks": [handler], "run_id": first})
    chain.invoke({"q": "two"}, config={"callbacks": [handler], "run_id": second})
    assert handler.find(first).generation_ids == ["gen-0"]
    assert handler.find(str(second)).generation_ids == ["gen-1"]
    assert handler.find().generation_ids == ["gen-1"]  # the latest run by default

    feedback_id = handler.submit("BAD", run_id=first, text="Wrong answer",
                                 app_feedback={"score": 1}).feedback_id
    body = service.bodies()[-1]
    assert service.requests[-1].url.path.endswith("/feedback")
    assert body["id"] == feedback_id and body["generationId"] == "gen-0"
    assert body["feedback"] == "BAD" and body["feedbackText"] == "Wrong answer"
    assert body["source"] == "human" and body["appFeedback"] == {"score": 1}
    assert body["appGenerationId"] == handler.find(first).run_id


def test_unknown_runs_and_bad_values_are_clear_errors() -> None:
    handler = SalesforceFeedbackHandler(salesforce_client(_feedback_service()))
    with pytest.raises(InvalidInputError, match="No Salesforce generation has been recorded"):
        handler.submit("GOOD")
    run = uuid.uuid4()
    with pytest.raises(InvalidInputError, match=f"No Salesforce generation is recorded for run "
                                                f"{run}"):
        handler.submit("GOOD", run_id=run)
    with pytest.raises(InvalidInputError, match="'GOOD' or 'BAD'"):
        handler.submit("MEH")


def test_a_chain_that_failed_is_not_rateable() -> None:
    """Not even by the call that answered before the step that failed."""
    service = _feedback_service()
    client = salesforce_client(service)
    handler = SalesforceFeedbackHandler(client)

    def fail(message: object) -> str:
        raise ValueError("parser failed")

    run = uuid.uuid4()
    with pytest.raises(ValueError, match="parser failed"):
        (ChatSalesforce(client=client) | RunnableLambda(fail)).invoke(
            "hi", config={"callbacks": [handler], "run_id": run})
    with pytest.raises(InvalidInputError, match=f"run {run}: .* it failed"):
        handler.submit("GOOD", run_id=run)
    with pytest.raises(InvalidInputError, match="has been recorded yet"):
        handler.submit("GOOD")


def test_a_langgraph_interrupt_is_a_pause_not_a_failure() -> None:
    """An answer a graph paused on (for a human to review it) can be rated."""
    service = _feedback_service()
    client = salesforce_client(service)
    handler = SalesforceFeedbackHandler(client)

    class GraphBubbleUp(Exception):  # LangGraph's names
        pass

    class GraphInterrupt(GraphBubbleUp):
        pass

    def pause(message: object) -> str:
        raise GraphInterrupt("waiting for review")

    run = uuid.uuid4()
    with pytest.raises(GraphInterrupt):
        (ChatSalesforce(client=client) | RunnableLambda(pause)).invoke(
            "hi", config={"callbacks": [handler], "run_id": run})
    assert handler.find(run).generation_ids == ["gen-0"]


def test_only_salesforce_generations_are_recorded() -> None:
    handler = SalesforceFeedbackHandler(salesforce_client(_feedback_service()))
    llm = ChatDatabricks(client=databricks_client(FakeService(db_chat())), endpoint="ep")
    llm.invoke("hi", config={"callbacks": [handler]})
    assert len(handler.log) == 0


def test_memory_is_bounded() -> None:
    handler = SalesforceFeedbackHandler(salesforce_client(FakeService()), max_runs=3)
    from langchain_core.messages import AIMessage

    runs = []
    for i in range(10):
        chain_id, model_id = uuid.uuid4(), uuid.uuid4()
        handler.on_chain_start({}, {}, run_id=chain_id)
        handler.on_chat_model_start({}, [], run_id=model_id, parent_run_id=chain_id)
        message = AIMessage("x", response_metadata={"model_provider": "salesforce",
                                                    "generation_id": f"g{i}"})
        handler.on_llm_end(LLMResult(generations=[[ChatGeneration(message=message)]]),
                           run_id=model_id, parent_run_id=chain_id)
        runs.append(chain_id)
    assert len(handler.log) <= 3
    assert len(handler._parents) <= handler._max_links
    assert handler.find(runs[-1]).generation_ids == ["g9"]
    with pytest.raises(InvalidInputError):
        handler.find(runs[0])


def test_deep_run_trees_are_followed_with_a_bound() -> None:
    handler = SalesforceFeedbackHandler(salesforce_client(FakeService()))
    from langchain_core.messages import AIMessage

    ids = [uuid.uuid4() for _ in range(5)]
    for parent, child in zip([None, *ids[:-1]], ids, strict=True):
        handler.on_chain_start({}, {}, run_id=child, parent_run_id=parent)
    model = uuid.uuid4()
    handler.on_llm_start({}, ["p"], run_id=model, parent_run_id=ids[-1])
    message = AIMessage("x", response_metadata={"model_provider": "salesforce",
                                                "generation_id": "deep"})
    handler.on_llm_end(LLMResult(generations=[[ChatGeneration(message=message)]]),
                       run_id=model, parent_run_id=ids[-1])
    assert all(handler.find(i).generation_ids == ["deep"] for i in ids)


def test_generation_ids_from_text_generations() -> None:
    from langchain_core.outputs import Generation

    result = LLMResult(generations=[[Generation(text="t", generation_info={
        "model_provider": "salesforce", "generation_id": "g-text"})],
        [Generation(text="other", generation_info={"generation_id": "not-ours"})]])
    assert generation_ids(result) == ["g-text"]


async def test_asubmit() -> None:
    service = _feedback_service()
    client = salesforce_client(service)
    handler = SalesforceFeedbackHandler(client=client)
    await ChatSalesforce(client=client).ainvoke("hi", config={"callbacks": [handler]})
    feedback_id = (await handler.asubmit("GOOD", source="app")).feedback_id
    assert service.bodies()[-1]["id"] == feedback_id
    assert service.bodies()[-1]["source"] == "app"


def test_handler_settings_create_the_client_lazily(monkeypatch: pytest.MonkeyPatch) -> None:
    handler = SalesforceFeedbackHandler(access_token="tok", api_base="https://x.example.test")
    assert "tok" not in repr(handler)
    assert handler.client.api_base() == "https://x.example.test"

"""Feedback on a chain run reaches the Salesforce generation whose answer the chain returned."""

from __future__ import annotations

from langchain_core.runnables import RunnableLambda

from langchain_sfmodels import ChatSalesforce, SalesforceFeedbackHandler
from sfmodels_emulator import Emulator


def test_feedback_on_a_chain_with_two_model_calls_rates_the_answer(emulator: Emulator) -> None:
    settings = {"domain": emulator.salesforce_domain, "client_id": emulator.salesforce_client_id,
                "client_secret": emulator.salesforce_client_secret}
    llm = ChatSalesforce(**settings)
    handler = SalesforceFeedbackHandler(**settings)
    chain = llm | RunnableLambda(lambda m: f"Summarise: {m.content}") | llm
    seen: list[str] = []

    def on_start(run: object) -> None:
        seen.append(str(getattr(run, "id", "")))

    answer = chain.with_listeners(on_start=on_start).invoke("Tell me about rivers",
                                                            config={"callbacks": [handler]})
    chain_run = seen[0]
    answering = answer.response_metadata["generation_id"]
    assert handler.find(chain_run).generation_ids == [answering]
    handler.submit("BAD", run_id=chain_run, text="too vague")
    recorded = emulator.feedback()
    assert [(r["generationId"], r["feedback"]) for r in recorded] == [(answering, "BAD")]

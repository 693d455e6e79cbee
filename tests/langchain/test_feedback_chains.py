"""Feedback on a chain run reaches the Salesforce generation whose answer the chain returned,
with the comment and the user given."""

from __future__ import annotations

import pytest
from langchain_core.runnables import RunnableLambda

from langchain_sfmodels import ChatSalesforce, SalesforceFeedbackHandler
from sfmodels_core.errors import InvalidInputError
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


def test_comment_and_user_reach_salesforce_as_feedback_text_and_app_feedback(
        emulator: Emulator) -> None:
    handler = SalesforceFeedbackHandler(api_key=emulator.mint_salesforce_token(),
                                        api_base=emulator.salesforce_api_base)
    llm = ChatSalesforce(client=handler.client)
    llm.invoke("Tell me about rivers", config={"callbacks": [handler]})
    handler.submit("GOOD", comment="Spot on", user="ann@example.com")
    handler.submit("bad", text="Too long", user="bo", app_feedback={"score": 1})
    sent = [(r["feedback"], r["feedbackText"], r["appFeedback"]) for r in emulator.feedback()]
    assert sent == [("GOOD", "Spot on", {"user": "ann@example.com"}),
                    ("BAD", "Too long", {"score": 1, "user": "bo"})]


async def test_comment_and_text_together_or_two_users_are_refused_before_sending(
        emulator: Emulator) -> None:
    handler = SalesforceFeedbackHandler(api_key=emulator.mint_salesforce_token(),
                                        api_base=emulator.salesforce_api_base)
    await ChatSalesforce(client=handler.client).ainvoke("hi", config={"callbacks": [handler]})
    with pytest.raises(InvalidInputError, match="not both"):
        await handler.asubmit("GOOD", text="a", comment="b")
    with pytest.raises(InvalidInputError, match="differ"):
        handler.submit("GOOD", user="ann", app_feedback={"user": "bo"})
    with pytest.raises(InvalidInputError, match="user must be"):
        handler.submit("GOOD", user="")
    assert emulator.feedback() == []
    await handler.asubmit(None, comment="no rating, just a note", user="ann")
    (sent,) = emulator.feedback()
    assert sent["feedbackText"] == "no rating, just a note" and sent["feedback"] is None
    assert sent["appFeedback"] == {"user": "ann"}

"""SalesforceLLM and SalesforceEmbedding against the emulator: sync, async and stream."""

from __future__ import annotations

import asyncio
from typing import TYPE_CHECKING, Any

import pytest
from llama_index.core.base.llms.types import ChatMessage
from llama_index.core.callbacks import CallbackManager, CBEventType, LlamaDebugHandler
from llama_index.core.prompts import PromptTemplate

from llama_index_sfmodels import SalesforceEmbedding, SalesforceLLM
from sfmodels_core.errors import InvalidInputError, NotFoundError

from .conftest import EventLog, salesforce_settings

if TYPE_CHECKING:
    from sfmodels_emulator import Emulator

CONTEXT = ("Context: The Eiffel Tower is 330 metres tall. The Louvre is the world's most "
           "visited museum. Mont Blanc is the highest mountain in the Alps.")
QUESTION = "How tall is the Eiffel Tower?"
ANSWER = "The Eiffel Tower is 330 metres tall."


def grounded() -> list[ChatMessage]:
    return [ChatMessage(role="system", content=CONTEXT),
            ChatMessage(role="user", content=QUESTION)]


def assert_salesforce_response(response: Any) -> None:
    extra = response.additional_kwargs
    assert isinstance(extra["generation_id"], str) and extra["generation_id"]
    assert extra["total_tokens"] == extra["prompt_tokens"] + extra["completion_tokens"] > 0
    assert isinstance(response.raw, dict) and response.raw["id"] == extra["id"]


def test_chat(sf_llm: SalesforceLLM, emulator: Emulator) -> None:
    response = sf_llm.chat(grounded())
    assert response.message.content == ANSWER
    assert_salesforce_response(response)
    generation = response.raw["generationDetails"]["generations"][0]
    assert generation["id"] == response.additional_kwargs["generation_id"]
    assert emulator.counters()["requests"]["salesforce.chat"] == 1


def test_complete_uses_generations(sf_llm: SalesforceLLM, emulator: Emulator) -> None:
    response = sf_llm.complete(f"{CONTEXT}\n\nQuestion: {QUESTION}")
    assert response.text == ANSWER
    assert_salesforce_response(response)
    assert response.raw["generation"]["id"] == response.additional_kwargs["generation_id"]
    requests = emulator.counters()["requests"]
    assert requests["salesforce.generations"] == 1 and requests["salesforce.chat"] == 0


def test_streams_yield_the_whole_answer_once(sf_llm: SalesforceLLM) -> None:
    chunks = list(sf_llm.stream_chat(grounded()))
    assert len(chunks) == 1
    assert chunks[0].delta == chunks[0].message.content == ANSWER
    assert_salesforce_response(chunks[0])
    pieces = list(sf_llm.stream_complete(f"{CONTEXT}\n\n{QUESTION}"))
    assert [p.delta for p in pieces] == [ANSWER] and pieces[0].text == ANSWER
    assert_salesforce_response(pieces[0])


async def test_async(asf_llm: SalesforceLLM, emulator: Emulator) -> None:
    chat = await asf_llm.achat(grounded())
    complete = await asf_llm.acomplete(f"{CONTEXT}\n\n{QUESTION}")
    stream = [c async for c in await asf_llm.astream_chat(grounded())]
    stream_complete = [c async for c in await asf_llm.astream_complete(QUESTION)]
    assert chat.message.content == complete.text == stream[0].delta == ANSWER
    assert len(stream) == len(stream_complete) == 1
    ids = {r.additional_kwargs["generation_id"]
           for r in (chat, complete, stream[0], stream_complete[0])}
    assert len(ids) == 4
    many = await asyncio.gather(*(asf_llm.achat(grounded()) for _ in range(5)))
    assert {r.message.content for r in many} == {ANSWER}
    assert emulator.counters()["tokens_minted"]["salesforce"] == 1


def test_stop_is_enforced_here(sf_llm: SalesforceLLM) -> None:
    response = sf_llm.chat(grounded(), stop=["330"])
    assert response.message.content == "The Eiffel Tower is "
    assert response.additional_kwargs["finish_reason"] == "stop"
    llm = SalesforceLLM(stop=["metres"], client=sf_llm.client)
    assert llm.complete(f"{CONTEXT}\n\n{QUESTION}").text == "The Eiffel Tower is 330 "
    assert next(iter(llm.stream_chat(grounded()))).delta == "The Eiffel Tower is 330 "


def test_instrumentation_and_callbacks_fire(sf_llm: SalesforceLLM, events: EventLog) -> None:
    debug = LlamaDebugHandler()
    sf_llm.callback_manager = CallbackManager([debug])
    sf_llm.chat(grounded())
    list(sf_llm.stream_chat(grounded()))
    sf_llm.complete(QUESTION)
    list(sf_llm.stream_complete(QUESTION))
    names = events.names()
    assert names.count("LLMChatStartEvent") == names.count("LLMChatEndEvent") == 2
    assert names.count("LLMCompletionStartEvent") == names.count("LLMCompletionEndEvent") == 2
    ends = [e for e in events.events if type(e).__name__.endswith("EndEvent")]
    assert all(e.response.additional_kwargs["generation_id"] for e in ends)
    starts = [e for e in events.events if type(e).__name__ == "LLMChatStartEvent"]
    assert starts[0].model_dict["model_name"] == sf_llm.model
    assert len(debug.get_event_pairs(CBEventType.LLM)) == 4


def test_system_prompt_and_predict(emulator: Emulator) -> None:
    llm = SalesforceLLM(system_prompt=CONTEXT, **salesforce_settings(emulator))
    assert llm.predict(PromptTemplate("{question}"), question=QUESTION) == ANSWER


def test_pre_minted_token_and_api_base(emulator: Emulator) -> None:
    llm = SalesforceLLM(access_token=emulator.mint_salesforce_token(),
                        api_base=emulator.salesforce_api_base, max_retries=0)
    assert llm.chat(grounded()).message.content == ANSWER
    assert emulator.counters()["requests"]["salesforce.token"] == 0


def test_environment_settings(emulator: Emulator, monkeypatch: pytest.MonkeyPatch) -> None:
    for name, value in emulator.env().items():
        monkeypatch.setenv(name, value)
    assert SalesforceLLM().complete(QUESTION).text
    assert len(SalesforceEmbedding().get_query_embedding("hello")) == 1536


def test_token_refresh(sf_llm: SalesforceLLM, emulator: Emulator) -> None:
    sf_llm.chat(grounded())
    emulator.expire_tokens()
    assert sf_llm.chat(grounded()).message.content == ANSWER
    assert emulator.counters()["tokens_minted"]["salesforce"] == 2


def test_bad_input_fails_before_sending(sf_llm: SalesforceLLM, emulator: Emulator) -> None:
    with pytest.raises(InvalidInputError, match="role 'developer'"):
        sf_llm.chat([ChatMessage(role="developer", content="4")])
    with pytest.raises(InvalidInputError, match="must not be empty"):
        list(sf_llm.stream_chat([]))
    assert sum(emulator.counters()["requests"].values()) == 0


def test_unknown_model_is_a_typed_error(emulator: Emulator) -> None:
    llm = SalesforceLLM(model="sfdc_ai__NoSuchModel", **salesforce_settings(emulator))
    with pytest.raises(NotFoundError) as caught:
        llm.chat(grounded())
    assert caught.value.status_code == 404


# -- embeddings ---------------------------------------------------------------------------------
def cosine(a: list[float], b: list[float]) -> float:
    dot = sum(x * y for x, y in zip(a, b, strict=True))
    return dot / ((sum(x * x for x in a) ** 0.5) * (sum(y * y for y in b) ** 0.5))


def test_embeddings(sf_embedding: SalesforceEmbedding) -> None:
    query = sf_embedding.get_query_embedding("tall tower in Paris")
    texts = sf_embedding.get_text_embedding_batch(
        ["The Eiffel Tower is a tall tower in Paris.", "Bananas are yellow fruit."])
    assert len(query) == 1536 and len(texts) == 2
    assert cosine(query, texts[0]) > cosine(query, texts[1])
    assert sf_embedding.get_text_embedding(
        "The Eiffel Tower is a tall tower in Paris.") == texts[0]


def test_embedding_batches_follow_embed_batch_size(emulator: Emulator) -> None:
    embedding = SalesforceEmbedding(embed_batch_size=4, **salesforce_settings(emulator))
    vectors = embedding.get_text_embedding_batch([f"text number {i}" for i in range(10)])
    assert len(vectors) == 10
    assert emulator.counters()["requests"]["salesforce.embeddings"] == 3
    # a longer list handed straight to the model is split by the core the same way
    assert len(embedding._get_text_embeddings([f"t {i}" for i in range(9)])) == 9
    assert emulator.counters()["requests"]["salesforce.embeddings"] == 6
    embedding.close()


async def test_async_embeddings_respect_num_workers(emulator: Emulator) -> None:
    emulator.configure(latency_ms=40)
    embedding = SalesforceEmbedding(embed_batch_size=2, num_workers=2,
                                    **salesforce_settings(emulator))
    texts = [f"document {i} about towers" for i in range(12)]
    vectors = await embedding.aget_text_embedding_batch(texts)
    assert len(vectors) == 12
    assert vectors[3] == await embedding.aget_text_embedding(texts[3])
    assert len(await embedding.aget_query_embedding("towers")) == 1536
    counters = emulator.counters()
    assert counters["requests"]["salesforce.embeddings"] == 8
    assert counters["max_in_flight"] <= 2
    await embedding.aclose()


def test_token_counting_handler_reads_salesforce_usage(emulator: Emulator) -> None:
    from llama_index.core.callbacks import CallbackManager, TokenCountingHandler

    counter = TokenCountingHandler()
    llm = SalesforceLLM(callback_manager=CallbackManager([counter]),
                        **salesforce_settings(emulator))
    response = llm.chat([ChatMessage(role="user", content="Tell me about towers")])
    llm.complete("Tell me about bridges")
    usage = response.raw["generationDetails"]["parameters"]["usage"]
    assert response.raw["usage"]["prompt_tokens"] == usage["prompt_tokens"]
    first = counter.llm_token_counts[0]
    assert (first.prompt_token_count, first.completion_token_count) == (
        usage["prompt_tokens"], usage["completion_tokens"])  # the service's, not estimates
    assert len(counter.llm_token_counts) == 2

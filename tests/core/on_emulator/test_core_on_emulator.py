"""The core clients against the emulator: every route, every error path, faults and expiry."""

from __future__ import annotations

import asyncio
import json
import math
import time

import pytest

from sfmodels_core import DatabricksClient, SalesforceClient
from sfmodels_core.databricks import merge_chunks
from sfmodels_core.errors import (
    APITimeoutError,
    AuthenticationError,
    BadRequestError,
    NotFoundError,
    RateLimitError,
    TokenError,
)
from sfmodels_emulator import Emulator

CHAT = "sfdc_ai__DefaultOpenAIGPT4OmniMini"
ADA = "sfdc_ai__DefaultOpenAITextEmbeddingAda_002"
LLAMA = "databricks-meta-llama-3-3-70b-instruct"
GTE = "databricks-gte-large-en"
USER = [{"role": "user", "content": "Hello there"}]


def sf(emu: Emulator, **kwargs: object) -> SalesforceClient:
    return SalesforceClient(domain=emu.salesforce_domain, client_id=emu.salesforce_client_id,
                            client_secret=emu.salesforce_client_secret, env={},
                            **kwargs)  # type: ignore[arg-type]


def dbx(emu: Emulator, **kwargs: object) -> DatabricksClient:
    return DatabricksClient(host=emu.databricks_host, api_key=emu.databricks_token, env={},
                            **kwargs)  # type: ignore[arg-type]


def cosine(a: list[float], b: list[float]) -> float:
    return sum(x * y for x, y in zip(a, b, strict=True)) / math.sqrt(
        sum(x * x for x in a) * sum(y * y for y in b))


# -- Salesforce -----------------------------------------------------------------------------------
def test_salesforce_round_trip(emulator: Emulator) -> None:
    with sf(emulator) as client:
        assert client.api_base() == emulator.salesforce_api_base
        chat = client.chat(CHAT, [{"role": "system", "content": "Be brief."}, *USER],
                           localization={"defaultLocale": "en_US"}, tags={"team": "docs"})
        assert chat.text and chat.generation_id and chat.finish_reason == "stop"
        assert chat.usage and chat.usage.total_tokens == (
            chat.usage.prompt_tokens + chat.usage.completion_tokens)
        assert chat.generations[0].content_quality is not None
        gen = client.generate(CHAT, "Write a haiku about the sea")
        assert gen.text and gen.generation_id
        texts = ["the cat sat on the mat", "a cat sat on a mat", "quarterly revenue grew"]
        vectors = client.embed(ADA, texts).vectors
        assert [len(v) for v in vectors] == [1536] * 3
        assert cosine(vectors[0], vectors[1]) > cosine(vectors[0], vectors[2])
        fb = client.submit_feedback(chat.generation_id, "BAD", text="too short")
    recorded = emulator.feedback()
    assert [(f["id"], f["generationId"], f["feedback"]) for f in recorded] == [
        (fb.feedback_id, chat.generation_id, "BAD")]
    assert emulator.counters()["tokens_minted"]["salesforce"] == 1


async def test_salesforce_async_twins(emulator: Emulator) -> None:
    async with sf(emulator) as client:
        chat, gen, emb = await asyncio.gather(
            client.achat(CHAT, USER), client.agenerate(CHAT, "Hi"),
            client.aembed(ADA, [f"text {i}" for i in range(40)]))
        fb = await client.asubmit_feedback(chat.generation_id, "GOOD")
    assert chat.text and gen.text and len(emb.vectors) == 40
    assert emulator.feedback()[0]["id"] == fb.feedback_id


def test_salesforce_error_paths(emulator: Emulator) -> None:
    with sf(emulator) as client:
        with pytest.raises(NotFoundError) as info:
            client.chat("sfdc_ai__NoSuchModel", USER)
        assert info.value.error_code == "NOT_FOUND"
        with pytest.raises(BadRequestError):
            client.chat(ADA, USER)  # an embedding model on the chat route
        with pytest.raises(BadRequestError):
            client.embed(CHAT, ["x"])  # a chat model on the embeddings route
    bad = SalesforceClient(domain=emulator.salesforce_domain,
                           client_id=emulator.salesforce_client_id, client_secret="wrong", env={})
    with pytest.raises(TokenError) as info:
        bad.chat(CHAT, USER)
    assert info.value.error_code == "invalid_client" and "consumer" in str(info.value)
    login = SalesforceClient(domain=emulator.salesforce_login_url,
                             client_id=emulator.salesforce_client_id,
                             client_secret=emulator.salesforce_client_secret, env={})
    with pytest.raises(TokenError, match="My Domain"):
        login.chat(CHAT, USER)
    static = SalesforceClient(api_key="not-a-token", api_base=emulator.salesforce_api_base,
                              env={})
    with pytest.raises(AuthenticationError) as auth:
        static.chat(CHAT, USER)
    assert auth.value.error_code == "INVALID_AUTH"


def test_expired_token_is_survived_with_one_new_mint(emulator: Emulator) -> None:
    with sf(emulator) as client:
        client.chat(CHAT, USER)
        emulator.expire_tokens()
        assert client.chat(CHAT, USER).text
    assert emulator.counters()["tokens_minted"]["salesforce"] == 2


def test_short_token_lifetime_refreshes_before_expiry(emulator: Emulator) -> None:
    emulator.configure(token_ttl_s=1.5)
    with sf(emulator) as client:
        client.chat(CHAT, USER)
        time.sleep(1.5)
        client.chat(CHAT, USER)
    counters = emulator.counters()
    assert counters["tokens_minted"]["salesforce"] == 2
    assert counters["requests"]["salesforce.chat"] == 2  # no 401 round trip was needed


# -- Databricks -----------------------------------------------------------------------------------
def test_databricks_round_trip(emulator: Emulator) -> None:
    with dbx(emulator) as client:
        answer = client.chat(LLAMA, USER, max_tokens=3)
        assert answer.finish_reason == "length" and answer.usage.completion_tokens == 3
        chunks = list(client.stream_chat(LLAMA, USER))
        assert sum(c.usage is not None for c in chunks) == 1
        merged = merge_chunks(chunks)
        assert merged.text == client.chat(LLAMA, USER).text
        assert client.complete(LLAMA, "Once upon a time").text
        pieces = list(client.stream_complete(LLAMA, "Once upon a time"))
        assert "".join(p.text for p in pieces) == client.complete(LLAMA, "Once upon a time").text
        vectors = client.embed(GTE, ["alpha beta", "alpha beta gamma"], instruction="Query:")
        assert [len(v) for v in vectors.vectors] == [1024, 1024]


def test_databricks_tools_and_structured_output(emulator: Emulator) -> None:
    tool = {"type": "function", "function": {
        "name": "get_weather", "description": "Get the weather in a city",
        "parameters": {"type": "object", "properties": {"city": {"type": "string"}},
                       "required": ["city"]}}}
    with dbx(emulator) as client:
        first = client.chat(LLAMA, [{"role": "user", "content": "What is the weather in Paris?"}],
                            tools=[tool], tool_choice="auto")
        assert first.finish_reason == "tool_calls"
        call = first.tool_calls[0]
        assert call.name == "get_weather" and "city" in call.parsed_arguments()
        streamed = merge_chunks(client.stream_chat(
            LLAMA, [{"role": "user", "content": "What is the weather in Paris?"}], tools=[tool],
            tool_choice="required"))
        assert streamed.tool_calls[0].parsed_arguments() == call.parsed_arguments()
        schema = {"type": "object", "properties": {"name": {"type": "string"},
                                                   "age": {"type": "integer"}},
                  "required": ["name", "age"]}
        shaped = client.chat(LLAMA, [{"role": "user", "content": "Ann is 31 years old"}],
                             response_format={"type": "json_schema", "json_schema": {
                                 "name": "person", "schema": schema}})
        person = json.loads(shaped.text)
        assert isinstance(person["name"], str) and isinstance(person["age"], int)


def test_databricks_m2m_and_error_paths(emulator: Emulator) -> None:
    m2m = DatabricksClient(host=emulator.databricks_host, client_id=emulator.databricks_client_id,
                           client_secret=emulator.databricks_client_secret, env={})
    assert m2m.chat(LLAMA, USER).text
    assert emulator.counters()["tokens_minted"]["databricks"] == 1
    with dbx(emulator, batch_size=200) as client:
        with pytest.raises(NotFoundError) as info:
            client.chat("no-such-endpoint", USER)
        assert info.value.error_code == "RESOURCE_DOES_NOT_EXIST"
        # A batch over the endpoint's 150 is refused with a 400 naming the limit: it is split.
        before = emulator.counters()["requests"]["databricks.invocations"]
        assert len(client.embed(GTE, ["x"] * 151).vectors) == 151
        assert emulator.counters()["requests"]["databricks.invocations"] - before == 3
        with pytest.raises(BadRequestError, match="does not accept"):
            client.embed(LLAMA, ["x"])  # not a size problem: nothing to split
    bad = DatabricksClient(host=emulator.databricks_host, client_id="who",
                           client_secret="nope", env={})
    with pytest.raises(TokenError):
        bad.chat(LLAMA, USER)


# -- faults, limits, concurrency ------------------------------------------------------------------
def test_bulk_embedding_survives_a_30_percent_fault_rate(emulator: Emulator) -> None:
    texts = [f"document {i} about topic {i % 17}" for i in range(5000)]
    with dbx(emulator, max_concurrency=4) as client:
        clean = client.embed(GTE, texts).vectors
    emulator.configure(fault_rate=0.3, fault_kinds=["429", "500", "503", "reset", "truncated"])
    with dbx(emulator, max_concurrency=4, max_retries=10) as client:
        faulty = client.embed(GTE, texts).vectors
    assert faulty == clean
    assert sum(emulator.counters()["faults"].values()) > 0


async def test_chat_and_streams_survive_faults(emulator: Emulator) -> None:
    emulator.configure(fault_rate=0.3, fault_kinds=["429", "500", "503", "reset", "truncated"])
    async with dbx(emulator, max_retries=10) as client:
        answers = await asyncio.gather(*(client.achat(LLAMA, USER) for _ in range(20)))
        streams = []
        for _ in range(10):
            chunks = [c async for c in client.astream_chat(LLAMA, USER)]
            streams.append(merge_chunks(chunks).text)
    assert len({a.text for a in answers}) == 1
    assert set(streams) == {answers[0].text}


def test_beyond_the_retry_budget_the_typed_error_comes_promptly(emulator: Emulator) -> None:
    emulator.configure(fault_rate=1.0, fault_kinds=["503"])
    with dbx(emulator, max_retries=2) as client, pytest.raises(Exception) as info:
        client.chat(LLAMA, USER)
    assert type(info.value).__name__ == "ServerError" and info.value.status_code == 503
    assert emulator.counters()["requests"]["databricks.invocations"] == 3


def test_a_hanging_server_times_out(emulator: Emulator) -> None:
    emulator.configure(fault_rate=1.0, fault_kinds=["hang"], hang_s=30)
    started = time.monotonic()
    with dbx(emulator, timeout=0.5, max_retries=1) as client, pytest.raises(APITimeoutError):
        client.chat(LLAMA, USER)
    assert time.monotonic() - started < 4


def test_server_rate_limit_maps_to_rate_limit_error(emulator: Emulator) -> None:
    emulator.configure(rate_limit_rpm=3)
    with sf(emulator, max_retries=0) as client:
        for _ in range(3):
            client.chat(CHAT, USER)
        with pytest.raises(RateLimitError) as info:
            client.chat(CHAT, USER)
    assert info.value.error_code == "LIMIT_EXCEEDED"


async def test_fan_out_runs_concurrently(emulator: Emulator) -> None:
    emulator.configure(latency_ms=50)
    async with dbx(emulator) as client:
        await asyncio.gather(*(client.achat(LLAMA, USER) for _ in range(100)))
    # Seen by the server, not timed here: 100 calls were in flight together, not one by one.
    assert emulator.counters()["max_in_flight"] >= 50


def test_one_client_serves_successive_event_loops(emulator: Emulator) -> None:
    client = dbx(emulator)

    async def call() -> str:
        return (await client.achat(LLAMA, USER)).text

    # Pooled connections belong to the loop that opened them: a second asyncio.run must work.
    first = asyncio.run(call())
    assert asyncio.run(call()) == first
    client.close()

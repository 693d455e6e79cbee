"""Bulk work that finishes, against the emulator's fault and limit modes (fixed seeds).

Completion under faults with default settings, batch splitting, the adaptive limit (read from
the client's state, never from timing), partial results and resume, the hourly window.
"""

from __future__ import annotations

import asyncio
from typing import Any

import pytest

from sfmodels_core import DatabricksClient, SalesforceClient
from sfmodels_core.errors import BulkEmbeddingError, RateLimitError, ServerError
from sfmodels_emulator import Emulator

ADA = "sfdc_ai__DefaultOpenAITextEmbeddingAda_002"
GTE = "databricks-gte-large-en"
LLAMA = "databricks-meta-llama-3-3-70b-instruct"
SF_CHAT = "sfdc_ai__DefaultOpenAIGPT4OmniMini"
FAULTS = ["429", "500", "503", "reset", "truncated"]
USER = [{"role": "user", "content": "Hello"}]
TEXTS = [f"passage {i} about subject {i % 23} and detail {i % 7}" for i in range(1200)]


def sf(emu: Emulator, **options: Any) -> SalesforceClient:
    return SalesforceClient(domain=emu.salesforce_domain, client_id=emu.salesforce_client_id,
                            client_secret=emu.salesforce_client_secret, env={}, **options)


def dbx(emu: Emulator, **options: Any) -> DatabricksClient:
    return DatabricksClient(host=emu.databricks_host, api_key=emu.databricks_token, env={},
                            **options)


CLIENTS = {"salesforce": (sf, ADA, "salesforce.embeddings"),
           "databricks": (dbx, GTE, "databricks.invocations")}


@pytest.mark.parametrize("provider, copies", [("salesforce", 1), ("databricks", 2)])
def test_a_bulk_embedding_finishes_under_a_30_percent_fault_mix_with_defaults(
        emulator: Emulator, provider: str, copies: int) -> None:
    make, model, _ = CLIENTS[provider]
    texts = TEXTS * copies  # Databricks' batches are larger: more of them to meet faults
    with make(emulator) as client:
        clean = client.embed(model, texts).vectors
    emulator.configure(fault_rate=0.3, fault_kinds=FAULTS)
    with make(emulator) as client:  # default retries, concurrency, batch size
        faulty = client.embed(model, texts).vectors
    assert faulty == clean
    assert sum(emulator.counters()["faults"].values()) >= 3


async def test_an_async_bulk_embedding_finishes_under_faults_with_defaults(
        emulator: Emulator) -> None:
    async with sf(emulator) as client:
        clean = (await client.aembed(ADA, TEXTS[:400])).vectors
    emulator.configure(fault_rate=0.3, fault_kinds=FAULTS)
    async with sf(emulator) as client:
        assert (await client.aembed(ADA, TEXTS[:400])).vectors == clean


@pytest.mark.parametrize("provider", list(CLIENTS))
def test_batches_refused_with_429_for_their_size_are_split_once_for_the_job(
        emulator: Emulator, provider: str) -> None:
    make, model, route = CLIENTS[provider]
    with make(emulator) as client:
        clean = client.embed(model, TEXTS[:600]).vectors
    emulator.reset()
    emulator.configure_model(model, embedding_max_inputs_429=6)
    with make(emulator, batch_size=40) as client:
        assert client.embed(model, TEXTS[:600]).vectors == clean
    counters = emulator.counters()
    refused, requests = counters["input_limited"], counters["requests"][route]
    # 40 -> 20 -> 10 -> 5: a few refusals while the size is found, then batches of 5 only.
    assert 0 < refused <= 20
    assert requests - refused == 600 // 5


def test_a_batch_over_the_endpoint_maximum_is_split(emulator: Emulator) -> None:
    emulator.configure(embedding_max_batch=50)  # a 400 that names the limit
    with dbx(emulator, batch_size=150) as client:
        assert len(client.embed(GTE, TEXTS[:300]).vectors) == 300
    assert emulator.counters()["requests"]["databricks.invocations"] < 300 // 38 + 6


def test_the_adaptive_limit_drops_on_429s_and_grows_back(emulator: Emulator) -> None:
    emulator.configure(fault_rate=1.0, fault_kinds=["429"])
    client = dbx(emulator, max_retries=3)

    async def calls(n: int) -> list[Any]:
        return await asyncio.gather(*(client.achat(LLAMA, USER) for _ in range(n)),
                                    return_exceptions=True)

    failed = asyncio.run(calls(8))
    assert all(isinstance(result, RateLimitError) for result in failed)
    state = client.throttle
    assert (state.requests, state.rate_limited) == (32, 32)  # every attempt counted
    assert state.limit == 1 and state.decreases >= 2 and state.ceiling == 100
    emulator.configure(fault_rate=0.0)
    answers = asyncio.run(calls(40))
    assert all(a.text for a in answers)  # type: ignore[union-attr]
    state = client.throttle
    assert 4 <= state.limit <= 100 and state.rate_limited == 32 and state.in_flight == 0


def test_a_bulk_embedding_shares_the_limit_with_its_batches(emulator: Emulator) -> None:
    emulator.configure(fault_rate=0.5, fault_kinds=["429"])
    with dbx(emulator, batch_size=10, max_concurrency=4) as client:
        assert len(client.embed(GTE, TEXTS[:400]).vectors) == 400
        state = client.throttle
    counters = emulator.counters()
    assert state.rate_limited == counters["faults"]["429"] > 0 and state.decreases > 0
    assert state.requests == counters["requests"]["databricks.invocations"]


@pytest.mark.parametrize("use_async", [False, True])
async def test_a_failed_job_hands_back_its_vectors_and_resumes_with_only_the_missing(
        emulator: Emulator, use_async: bool) -> None:
    texts = TEXTS[:200]
    options = {"batch_size": 10, "max_concurrency": 1, "max_retries": 0,
               "no_progress_timeout": 0}
    client = dbx(emulator, **options)
    clean = client.embed(GTE, texts)
    emulator.reset()
    emulator.configure(fault_rate=0.3, fault_kinds=["500"])  # seed 0: the 4th request fails
    with pytest.raises(BulkEmbeddingError) as info:
        await client.aembed(GTE, texts) if use_async else client.embed(GTE, texts)
    err = info.value
    assert isinstance(err, ServerError) and err.status_code == 500
    assert err.vectors == {i: clean.vectors[i] for i in range(30)}
    assert err.missing == list(range(30, 200)) and err.total == 200
    emulator.reset()  # no faults, counters zeroed
    resumed = (await client.aembed(GTE, texts, resume_from=err) if use_async
               else client.embed(GTE, texts, resume_from=err))
    assert resumed.vectors == clean.vectors and resumed.usage == clean.usage
    counters = emulator.counters()
    assert counters["inputs"]["databricks.embeddings"] == 170
    assert counters["requests"]["databricks.invocations"] == 17


def test_an_exhausted_hourly_window_is_named_and_ends_the_job_at_once(
        emulator: Emulator) -> None:
    client = sf(emulator)
    assert client.chat(SF_CHAT, USER).text  # mint the token before the window closes
    emulator.configure(fault_rate=1.0, fault_kinds=["429"], retry_after_s=1800)
    with pytest.raises(RateLimitError) as info:
        client.chat(SF_CHAT, USER)
    assert "hourly request limit is exhausted" in str(info.value)
    assert info.value.hint is not None and "150 generation requests per hour" in info.value.hint
    with pytest.raises(RateLimitError, match="hourly") as bulk:
        client.embed(ADA, TEXTS[:160])
    assert isinstance(bulk.value, BulkEmbeddingError) and bulk.value.missing == list(range(160))
    counters = emulator.counters()["requests"]
    assert counters["salesforce.chat"] == 2 and counters["salesforce.embeddings"] <= 4

"""A LangChain ``abatch`` fan-out shares its core client's adaptive limit (no cassettes: live
emulator)."""

from __future__ import annotations

import asyncio
from typing import TYPE_CHECKING

from langchain_sfmodels import ChatDatabricks
from sfmodels_core import DatabricksClient

if TYPE_CHECKING:
    from sfmodels_emulator import Emulator

ENDPOINT = "databricks-meta-llama-3-3-70b-instruct"


def test_abatch_against_a_rate_limited_service_converges(emulator: Emulator) -> None:
    emulator.configure(fault_rate=0.25, fault_kinds=["429"], retry_after_s=0)
    client = DatabricksClient(host=emulator.databricks_host, api_key=emulator.databricks_token,
                              env={}, max_retries=10)
    llm = ChatDatabricks(endpoint=ENDPOINT, client=client)
    prompts = [f"Question {i}: what is a river?" for i in range(80)]
    answers = llm.batch(prompts[:2])  # a warm-up through the sync path shares it too
    answers += asyncio.run(llm.abatch(prompts[2:]))
    assert len(answers) == 80 and all(str(a.content) for a in answers)
    state = client.throttle
    refused = emulator.counters()["faults"]["429"]
    assert state.rate_limited == refused > 0  # every 429 the service sent reached the limit
    assert state.decreases > 0 and state.limit < state.ceiling  # ... and cut it
    assert state.requests == 80 + refused and state.in_flight == 0


def test_abatch_under_a_rate_limit_without_retry_after_succeeds(emulator: Emulator) -> None:
    # Databricks' workspace QPS limit: 429 without Retry-After past 40 requests a second. At
    # this latency a single request in flight makes more than that, so only pacing keeps under
    # it, and each call waits for the pace rather than spend its retries. Default settings.
    emulator.configure(rate_limit_rps=40, rate_limit_retry_after=False, latency_ms=10)
    llm = ChatDatabricks(endpoint=ENDPOINT, host=emulator.databricks_host,
                         api_key=emulator.databricks_token)
    prompts = [f"Question {i}: what is a river?" for i in range(300)]
    answers = asyncio.run(llm.abatch(prompts))
    assert len(answers) == 300 and all(str(a.content) for a in answers)
    state = llm.client.throttle
    assert state.rate_limited == emulator.counters()["rate_limited"] > 0
    assert state.rate_per_minute is not None  # it paced itself
    assert state.requests == 300 + state.rate_limited and state.in_flight == 0

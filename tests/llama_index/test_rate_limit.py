"""LlamaIndex calls fanned out against a rate limit that sends no Retry-After (live emulator)."""

from __future__ import annotations

import asyncio
from typing import TYPE_CHECKING

from llama_index.core.llms import ChatMessage

from llama_index_sfmodels import DatabricksLLM

from .conftest import CHAT_ENDPOINT

if TYPE_CHECKING:
    from sfmodels_core import ThrottleStats
    from sfmodels_emulator import Emulator


def test_gathered_achat_under_a_rate_limit_without_retry_after_succeeds(
        emulator: Emulator) -> None:
    emulator.configure(rate_limit_rps=40, rate_limit_retry_after=False, latency_ms=10)
    llm = DatabricksLLM(endpoint=CHAT_ENDPOINT, host=emulator.databricks_host,
                        api_key=emulator.databricks_token)  # default retries and timeout

    async def fan_out() -> tuple[list[str], ThrottleStats]:
        try:
            answers = await asyncio.gather(*(
                llm.achat([ChatMessage(role="user", content=f"Question {i}: a river?")])
                for i in range(150)))
            return [str(a.message.content) for a in answers], llm.client.throttle
        finally:
            await llm.aclose()

    texts, state = asyncio.run(fan_out())
    assert len(texts) == 150 and all(texts)
    assert state.rate_limited == emulator.counters()["rate_limited"] > 0
    assert state.rate_per_minute is not None and state.in_flight == 0

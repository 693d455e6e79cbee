"""The core clients fanned out against a rate limit that sends no Retry-After (Databricks'
workspace QPS limit), with default settings: threads (as Spark's ``generate`` sends) and
streams. The async fan-outs are in tests/langchain/test_adaptive_fanout.py and
tests/llama_index/test_rate_limit.py."""

from __future__ import annotations

import asyncio
from concurrent.futures import ThreadPoolExecutor

from sfmodels_core import DatabricksClient
from sfmodels_emulator import Emulator

LLAMA = "databricks-meta-llama-3-3-70b-instruct"


def limited(emu: Emulator) -> DatabricksClient:
    emu.configure(rate_limit_rps=40, rate_limit_retry_after=False, latency_ms=10)
    return DatabricksClient(host=emu.databricks_host, api_key=emu.databricks_token, env={})


def test_threads_wait_for_the_pace(emulator: Emulator) -> None:
    client = limited(emulator)
    with ThreadPoolExecutor(max_workers=32) as pool:
        texts = list(pool.map(
            lambda i: client.chat(LLAMA, [{"role": "user", "content": f"Question {i}"}]).text,
            range(150)))
    client.close()
    assert len(texts) == 150 and all(texts)
    state = client.throttle
    assert state.rate_limited == emulator.counters()["rate_limited"] > 0
    assert state.rate_per_minute is not None and state.requests == 150 + state.rate_limited


def test_streams_wait_for_the_pace(emulator: Emulator) -> None:
    client = limited(emulator)

    async def one(i: int) -> str:
        chunks = [chunk async for chunk in client.astream_chat(
            LLAMA, [{"role": "user", "content": f"Question {i}"}])]
        return "".join(chunk.text or "" for chunk in chunks)

    async def fan_out() -> list[str]:
        try:
            return await asyncio.gather(*(one(i) for i in range(200)))
        finally:
            await client.aclose()

    texts = asyncio.run(fan_out())
    assert len(texts) == 200 and all(texts)
    assert client.throttle.rate_limited == emulator.counters()["rate_limited"] > 0

"""What async costs beyond sync: the result's repr that asyncio.run takes, and the TLS contexts a
new event loop's pool builds. Before and after, side by side in one run (medians of 5).

- repr of a 10,000 x 1,024 EmbeddingResult: pydantic's full repr (before) vs the short one.
- one new event loop's pool of eleven async clients: each building its own TLS context (before,
  httpx's default) vs all sharing the process's one.
- asyncio.run(aembed) vs the sync embed of the same 10,000 texts against the emulator in its
  own process (after).

Run: python benchmarks/async_startup.py
"""

from __future__ import annotations

import asyncio
import statistics
import time
from collections.abc import Callable
from typing import Any

import httpx
from _common import GTE, emulator
from pydantic import BaseModel

from sfmodels_core import DatabricksClient
from sfmodels_core._pool import shared_ssl_context
from sfmodels_core.types import EmbeddingResult


def median_ms(fn: Callable[[], Any], runs: int = 5) -> float:
    times = []
    for _ in range(runs):
        started = time.perf_counter()
        fn()
        times.append((time.perf_counter() - started) * 1000)
    return statistics.median(times)


def pool(verify: Any) -> None:
    async def build() -> None:
        clients = [httpx.AsyncClient(verify=verify) for _ in range(11)]
        for client in clients:
            await client.aclose()

    asyncio.run(build())


def main() -> None:
    result = EmbeddingResult.model_construct(
        vectors=[[0.1] * 1024 for _ in range(10_000)], model=GTE, usage=None, raw=[])
    print("| measurement | before | after |")
    print("|---|---|---|")
    full = median_ms(lambda: BaseModel.__repr__(result), 3)
    print(f"| repr of 10,000 x 1,024 vectors | {full:,.0f} ms | "
          f"{median_ms(lambda: repr(result)):.3f} ms |")
    shared_ssl_context()  # built once per process, before the timing
    print(f"| a new event loop's pool of 11 async clients | {median_ms(lambda: pool(True)):.0f} ms"
          f" | {median_ms(lambda: pool(shared_ssl_context())):.1f} ms |")
    texts = [f"passage {i}" for i in range(10_000)]
    with emulator() as emu:
        client = DatabricksClient(host=emu.databricks_host, api_key=emu.databricks_token, env={})
        client.embed(GTE, texts[:300])  # warm the pool and the token
        sync = median_ms(lambda: client.embed(GTE, texts), 3)
        run = median_ms(lambda: asyncio.run(client.aembed(GTE, texts)), 3)
        client.close()
    print(f"| 10,000 texts, after: sync `embed` (left), `asyncio.run(aembed)` (right) | "
          f"{sync:,.0f} ms | {run:,.0f} ms ({run / sync:.2f}x) |")


if __name__ == "__main__":
    main()

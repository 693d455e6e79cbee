"""Scenario 3: async fan-out. 500 concurrent ainvoke at 50 ms emulator latency.

Target: wall time within 1.5x of (calls / concurrency limit) x latency, where the limit is our
connection pool (``max_connections``, 100 by default).

    python benchmarks/fanout.py [--calls 500] [--latency-ms 50]
"""

from __future__ import annotations

import argparse
import asyncio
import time
from collections.abc import Awaitable, Callable
from typing import Any

import httpx
from _common import LLAMA, emulator, peer, table


async def fan_out(call: Callable[[str], Awaitable[Any]], calls: int, repeat: int) -> float:
    """Best of ``repeat`` fan-outs, in one event loop (connections live as long as their loop)."""
    await asyncio.gather(*(call(f"Warm {i}") for i in range(100)))
    best = float("inf")
    for _ in range(repeat):
        start = time.perf_counter()
        await asyncio.gather(*(call(f"Hello {i}") for i in range(calls)))
        best = min(best, time.perf_counter() - start)
    return best


async def raw_httpx(emu: Any, calls: int, repeat: int, connections: int) -> float:
    """What a plain script gets from one httpx.AsyncClient with the same connection limit."""
    limits = httpx.Limits(max_connections=connections, max_keepalive_connections=connections)
    url = f"{emu.databricks_host}/serving-endpoints/{LLAMA}/invocations"
    async with httpx.AsyncClient(limits=limits, timeout=60, headers={
            "Authorization": f"Bearer {emu.databricks_token}"}) as client:
        async def call(text: str) -> Any:
            response = await client.post(url, json={"messages": [
                {"role": "user", "content": text}]})
            return response.json()

        return await fan_out(call, calls, repeat)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--calls", type=int, default=500)
    parser.add_argument("--latency-ms", type=float, default=50)
    parser.add_argument("--max-connections", type=int, default=100,
                        help="our connection limit (the core's default) for the ideal time")
    args = parser.parse_args()
    ideal = args.calls / args.max_connections * args.latency_ms / 1000
    with emulator(latency_ms=args.latency_ms) as emu:
        from langchain_sfmodels import ChatDatabricks

        ours = ChatDatabricks(endpoint=LLAMA, host=emu.databricks_host,
                              api_key=emu.databricks_token)

        def peer_chat() -> Any:
            from databricks_langchain import ChatDatabricks as Theirs
            return Theirs(endpoint=LLAMA)

        from sfmodels_core import DatabricksClient

        core = DatabricksClient(env={}, host=emu.databricks_host, api_key=emu.databricks_token)
        rows: list[tuple[Any, ...]] = []
        cases: list[tuple[str, Callable[[], Awaitable[float]] | None]] = [
            ("raw httpx, one AsyncClient", lambda: raw_httpx(emu, args.calls, 1,
                                                             args.max_connections)),
            ("sfmodels_core DatabricksClient.achat", lambda: fan_out(
                lambda text: core.achat(LLAMA, [{"role": "user", "content": text}]),
                args.calls, 3)),
            ("langchain_sfmodels ChatDatabricks", lambda: fan_out(ours.ainvoke, args.calls, 3)),
        ]
        # Ours first: importing the peer loads mlflow and its hooks.
        for name, run in cases:
            emu.reset()
            wall = asyncio.run(run()) if run else None
            rows.append((name, wall, wall / ideal if wall else None,
                         emu.counters()["max_in_flight"]))
        theirs = peer(peer_chat)
        emu.reset()
        wall = asyncio.run(fan_out(theirs.ainvoke, args.calls, 1)) if theirs else None
        rows.append(("databricks_langchain ChatDatabricks", wall,
                     wall / ideal if wall else None,
                     emu.counters()["max_in_flight"] if theirs else None))
    table(f"Async fan-out: {args.calls} concurrent ainvoke, {args.latency_ms:.0f} ms latency; "
          f"ideal {ideal:.3f}s at {args.max_connections} connections (target <= 1.5x)",
          ("client", "seconds", "x ideal", "max in flight"), rows)


if __name__ == "__main__":
    main()

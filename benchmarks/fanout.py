"""Scenario 3: async fan-out. 500 concurrent ainvoke at 50 ms emulator latency.

Target: wall time within 1.5x of (calls / concurrency limit) x latency, where the limit is our
connection pool (``max_connections``, 100 by default).

    python benchmarks/fanout.py [--calls 500] [--latency-ms 50]
"""

from __future__ import annotations

import argparse
import asyncio
import time
from typing import Any

from _common import LLAMA, emulator, peer, table


async def fan_out(model: Any, calls: int, repeat: int) -> float:
    """Best of ``repeat`` fan-outs, in one event loop (connections live as long as their loop)."""
    await asyncio.gather(*(model.ainvoke(f"Warm {i}") for i in range(100)))
    best = float("inf")
    for _ in range(repeat):
        start = time.perf_counter()
        await asyncio.gather(*(model.ainvoke(f"Hello {i}") for i in range(calls)))
        best = min(best, time.perf_counter() - start)
    return best


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

        theirs = peer(peer_chat)
        rows: list[tuple[Any, ...]] = []
        for name, model in (("langchain_sfmodels ChatDatabricks", ours),
                            ("databricks_langchain ChatDatabricks", theirs)):
            if model is None:
                rows.append((name, None, None, None))
                continue
            emu.reset()
            wall = asyncio.run(fan_out(model, args.calls, 3))
            rows.append((name, wall, wall / ideal, emu.counters()["max_in_flight"]))
    table(f"Async fan-out: {args.calls} concurrent ainvoke, {args.latency_ms:.0f} ms latency; "
          f"ideal {ideal:.3f}s at {args.max_connections} connections (target <= 1.5x)",
          ("client", "seconds", "x ideal", "max in flight"), rows)


if __name__ == "__main__":
    main()

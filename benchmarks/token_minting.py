"""Scenario 6: token minting under load.

256 concurrent calls (8 threads, each running 32 asyncio tasks) share one SalesforceClient with
OAuth client credentials for 10 seconds, while the emulator's tokens live 2 seconds. Target:
mints equal the number of token lifetimes elapsed (+-1), with zero failed calls.

    python benchmarks/token_minting.py [--seconds 10] [--ttl 2]
"""

from __future__ import annotations

import argparse
import asyncio
import math
import threading
import time

from _common import SF_CHAT, emulator, table

from sfmodels_core import SalesforceClient


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--seconds", type=float, default=10)
    parser.add_argument("--ttl", type=float, default=2)
    parser.add_argument("--threads", type=int, default=8)
    parser.add_argument("--tasks", type=int, default=32)
    args = parser.parse_args()
    with emulator(token_ttl_s=args.ttl) as emu:
        client = SalesforceClient(domain=emu.salesforce_domain,
                                  client_id=emu.salesforce_client_id,
                                  client_secret=emu.salesforce_client_secret, env={})
        deadline = time.monotonic() + args.seconds
        done = [0] * args.threads
        failed: list[str] = []

        async def worker(slot: int) -> None:
            while time.monotonic() < deadline:
                try:
                    await client.achat(SF_CHAT, [{"role": "user", "content": "ping"}])
                    done[slot] += 1
                except Exception as exc:  # counted, never hidden
                    failed.append(f"{type(exc).__name__}: {exc}")

        def thread(slot: int) -> None:
            async def run() -> None:
                await asyncio.gather(*(worker(slot) for _ in range(args.tasks)))
            asyncio.run(run())

        threads = [threading.Thread(target=thread, args=(i,)) for i in range(args.threads)]
        started = time.monotonic()
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        elapsed = time.monotonic() - started
        counters = emu.counters()
    lifetimes = math.ceil(elapsed / args.ttl)
    mints = counters["tokens_minted"]["salesforce"]
    table(f"Token minting: {args.threads * args.tasks} concurrent calls over {args.threads} "
          f"threads x {args.tasks} tasks, {args.ttl:g} s tokens, {elapsed:.1f} s",
          ("calls", "failed", "401s resent", "mints", "lifetimes elapsed", "within +-1"),
          [(sum(done), len(failed), counters["requests"]["salesforce.chat"] - sum(done),
            mints, lifetimes, "yes" if abs(mints - lifetimes) <= 1 else "NO")])
    for line in sorted(set(failed))[:5]:
        print("  failure:", line)


if __name__ == "__main__":
    main()

"""Scenario 3: async fan-out. 2,000 concurrent calls at 50 ms emulator latency.

The ideal is (calls / concurrency limit) x latency, the limit being our connection pool
(``max_connections``, 100 by default): 1.0 s for 2,000 calls. Targets: ``ChatDatabricks.ainvoke``
within 1.5x of it, the core client (``DatabricksClient.achat``) within 1.3x. Past the waiting,
what is left is CPU, so each row also gives the client's CPU time per call.

Every row runs in a child process of its own (the emulator in another), one row after the other
in rounds; a row shows its best round. ``--before REF`` adds the rows of the code at git ``REF``
(exported with ``git archive``), measured in the same rounds as the rest, so before and after
compare within one run. ``--options`` adds the transport variants (shard sizes, one pool, the
httpx-aiohttp transport).

    python benchmarks/fanout.py [--calls 2000] [--latency-ms 50] [--rounds 3] [--before main]
                                [--options]
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import os
import sys
import time
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

from _common import LLAMA, SF_CHAT, code_at, emulator, run_worker, table

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent

# (label, case): a case is a kind and options, "kind:name=value,name=value".
RAW = [
    ("raw httpx, one AsyncClient", "raw_httpx"),
    ("raw aiohttp, one ClientSession", "raw_aiohttp"),
    ("LangChain alone: ainvoke of a model that sleeps", "langchain_alone"),
]
OURS = [
    ("core DatabricksClient.achat", "core"),
    ("ChatDatabricks.ainvoke", "databricks"),
    ("ChatSalesforce.ainvoke", "salesforce"),
]
AIOHTTP = [(f"{label}, async_http='aiohttp'", f"{case}:async_http=aiohttp")
           for label, case in OURS]
OPTIONS = [
    *((f"core achat, shards of {n}", f"core:shards={n}") for n in (1, 2, 5, 10, 20)),
    ("core achat, one pool of 100", "core:shards=100"),
    ("core achat, httpx-aiohttp AiohttpTransport", "core:httpx_aiohttp=1"),
    ("ChatDatabricks, httpx-aiohttp AiohttpTransport", "databricks:httpx_aiohttp=1"),
]
PEER = ("databricks_langchain ChatDatabricks", "peer")


# -- the child process: one case, measured ------------------------------------------------------
async def fan_out(call: Callable[[str], Awaitable[Any]], calls: int,
                  repeat: int) -> tuple[float, float]:
    """Best wall time and least CPU per call (µs) of ``repeat`` fan-outs in one event loop
    (connections live as long as their loop), after a warm-up that opens the connections."""
    await asyncio.gather(*(call(f"Warm {i}") for i in range(100)))
    best, cpu = float("inf"), float("inf")
    for _ in range(repeat):
        cpu_start, start = time.process_time(), time.perf_counter()
        await asyncio.gather(*(call(f"Hello {i}") for i in range(calls)))
        best = min(best, time.perf_counter() - start)
        cpu = min(cpu, (time.process_time() - cpu_start) / calls * 1e6)
    return best, cpu


def parse_case(case: str) -> tuple[str, dict[str, str]]:
    kind, _, rest = case.partition(":")
    return kind, dict(item.split("=", 1) for item in rest.split(",") if item)


def client_settings(options: dict[str, str]) -> dict[str, Any]:
    settings: dict[str, Any] = {}
    if "async_http" in options:
        settings["async_http"] = options["async_http"]
    if "shards" in options:
        from sfmodels_core import _pool

        _pool.AsyncPool.SHARD_SIZE = int(options["shards"])
    return settings


def httpx_aiohttp_transport() -> Any:
    import aiohttp
    from httpx_aiohttp import AiohttpTransport

    return AiohttpTransport(client=lambda: aiohttp.ClientSession(
        connector=aiohttp.TCPConnector(limit=100)))


def sleeping_chat_model(latency: float, limit: int) -> Any:
    """A LangChain chat model that answers after ``latency`` seconds, ``limit`` at a time, with
    no HTTP at all: what LangChain's own per-call work costs a fan-out."""
    from langchain_core.language_models.chat_models import BaseChatModel
    from langchain_core.messages import AIMessage
    from langchain_core.outputs import ChatGeneration, ChatResult

    gate = asyncio.Semaphore(limit)

    class Sleeping(BaseChatModel):
        @property
        def _llm_type(self) -> str:
            return "sleeping"

        def _generate(self, *args: Any, **kwargs: Any) -> ChatResult:
            raise NotImplementedError

        async def _agenerate(self, *args: Any, **kwargs: Any) -> ChatResult:
            async with gate:
                await asyncio.sleep(latency)
            return ChatResult(generations=[ChatGeneration(message=AIMessage(
                content="Hello! How can I help you today?", id="chatcmpl-1"))])

    return Sleeping()


async def run_case(case: str, calls: int, repeat: int) -> tuple[float, float]:
    kind, options = parse_case(case)
    env = os.environ
    host, token = env["DATABRICKS_HOST"], env["DATABRICKS_TOKEN"]
    url = f"{host}/serving-endpoints/{LLAMA}/invocations"
    headers = {"Authorization": f"Bearer {token}"}
    if kind == "raw_httpx":
        import httpx

        limits = httpx.Limits(max_connections=100, max_keepalive_connections=100)
        async with httpx.AsyncClient(limits=limits, timeout=60, headers=headers) as client:
            async def raw(text: str) -> Any:
                response = await client.post(url, json={"messages": [
                    {"role": "user", "content": text}]})
                return response.json()

            return await fan_out(raw, calls, repeat)
    if kind == "raw_aiohttp":
        import aiohttp

        async with aiohttp.ClientSession(connector=aiohttp.TCPConnector(limit=100),
                                         headers=headers) as session:
            async def raw_aio(text: str) -> Any:
                async with session.post(url, json={"messages": [
                        {"role": "user", "content": text}]}) as response:
                    return await response.json()

            return await fan_out(raw_aio, calls, repeat)
    if kind == "langchain_alone":
        model = sleeping_chat_model(float(env["FANOUT_LATENCY"]), 100)
        return await fan_out(model.ainvoke, calls, repeat)
    settings = client_settings(options)
    if kind == "core":
        from sfmodels_core import DatabricksClient

        if "httpx_aiohttp" in options:
            settings["async_transport"] = httpx_aiohttp_transport()
        core = DatabricksClient(env={}, host=host, api_key=token, **settings)
        return await fan_out(
            lambda text: core.achat(LLAMA, [{"role": "user", "content": text}]), calls, repeat)
    if kind == "databricks":
        from langchain_sfmodels import ChatDatabricks

        if "httpx_aiohttp" in options:
            from sfmodels_core import DatabricksClient

            ours = ChatDatabricks(endpoint=LLAMA, client=DatabricksClient(
                env={}, host=host, api_key=token, async_transport=httpx_aiohttp_transport()))
        else:
            ours = ChatDatabricks(endpoint=LLAMA, host=host, api_key=token, **settings)
        return await fan_out(ours.ainvoke, calls, repeat)
    if kind == "salesforce":
        from langchain_sfmodels import ChatSalesforce

        sf = ChatSalesforce(model=SF_CHAT, domain=env["SALESFORCE_DOMAIN"],
                            client_id=env["SALESFORCE_CLIENT_ID"],
                            client_secret=env["SALESFORCE_CLIENT_SECRET"], **settings)
        return await fan_out(sf.ainvoke, calls, repeat)
    if kind == "peer":
        from databricks_langchain import ChatDatabricks as Theirs

        return await fan_out(Theirs(endpoint=LLAMA).ainvoke, calls, 1)
    raise SystemExit(f"unknown case {case!r}")


def worker(case: str, calls: int, repeat: int) -> None:
    try:
        wall, cpu = asyncio.run(run_case(case, calls, repeat))
    except Exception as exc:  # a peer, an extra or an option the code measured lacks
        print(json.dumps({"missing": f"{type(exc).__name__}: {exc}"}))
        return
    print(json.dumps({"wall": wall, "cpu_us": cpu}))


# -- the parent: the emulator, the rounds, the table -------------------------------------------
def measure(case: str, tree: Path, emu: Any, calls: int, repeat: int,
            latency: float) -> dict[str, Any]:
    path = [str(tree), str(HERE), *filter(None, os.environ.get("PYTHONPATH", "").split(os.pathsep))]
    env = {**os.environ, **emu.env(), "PYTHONPATH": os.pathsep.join(path),
           "FANOUT_LATENCY": str(latency)}
    emu.reset()
    result = run_worker(HERE / "fanout.py", [case, "--calls", str(calls), "--repeat", str(repeat)],
                        env, case)
    result["max_in_flight"] = emu.counters()["max_in_flight"]
    return result


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--calls", type=int, default=2000)
    parser.add_argument("--latency-ms", type=float, default=50)
    parser.add_argument("--max-connections", type=int, default=100,
                        help="our connection limit (the core's default) for the ideal time")
    parser.add_argument("--rounds", type=int, default=3,
                        help="each row runs once a round; the table shows its best round")
    parser.add_argument("--repeat", type=int, default=2, help="fan-outs per row and round")
    parser.add_argument("--before", metavar="REF",
                        help="also measure the code at this git ref (e.g. main)")
    parser.add_argument("--options", action="store_true",
                        help="also measure shard sizes and the httpx-aiohttp transport")
    parser.add_argument("--only", help="measure only the rows whose case starts with this")
    parser.add_argument("--worker", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.worker:
        worker(args.worker, args.calls, args.repeat)
        return

    ideal = args.calls / args.max_connections * args.latency_ms / 1000
    with contextlib.ExitStack() as stack:
        rows: list[tuple[str, Path, str, int]] = [(label, ROOT, case, args.rounds)
                                                  for label, case in RAW]
        if args.before:
            before = stack.enter_context(code_at(args.before))
            rows += [(f"{label} ({args.before})", before, case, args.rounds)
                     for label, case in OURS]
        rows += [(label, ROOT, case, args.rounds) for label, case in OURS + AIOHTTP]
        if args.options:
            rows += [(label, ROOT, case, args.rounds) for label, case in OPTIONS]
        rows.append((PEER[0], ROOT, PEER[1], 1))
        if args.only:
            rows = [row for row in rows if row[2].startswith(args.only)]
        emu = stack.enter_context(emulator(latency_ms=args.latency_ms))
        results: dict[int, list[dict[str, Any]]] = {i: [] for i in range(len(rows))}
        for round_ in range(args.rounds):
            for i, (label, tree, case, rounds) in enumerate(rows):
                if round_ < rounds and not any("missing" in r for r in results[i]):
                    results[i].append(measure(case, tree, emu, args.calls, args.repeat,
                                              args.latency_ms / 1000))
                    print(f"round {round_ + 1}: {label}: {results[i][-1]}", file=sys.stderr)
    out: list[tuple[Any, ...]] = []
    for i, (label, *_rest) in enumerate(rows):
        measured = [r for r in results[i] if "wall" in r]
        if not measured:
            missing = [r["missing"] for r in results[i] if "missing" in r]
            print(f"{label}: not measured ({missing[0] if missing else 'no rounds'})",
                  file=sys.stderr)
            out.append((label, None, None, None, None))
            continue
        wall = min(r["wall"] for r in measured)
        out.append((label, wall, wall / ideal, min(r["cpu_us"] for r in measured),
                    max(r["max_in_flight"] for r in measured)))
    table(f"Async fan-out: {args.calls} concurrent calls, {args.latency_ms:.0f} ms latency; "
          f"ideal {ideal:.3f}s at {args.max_connections} connections (targets: ChatDatabricks "
          f"<= 1.5x, core client <= 1.3x); best of {args.rounds} rounds x {args.repeat}",
          ("client", "seconds", "x ideal", "CPU µs/call", "max in flight"), out)


if __name__ == "__main__":
    main()

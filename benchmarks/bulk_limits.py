"""Bulk work against faults and limits, with default settings: does it finish, and how fast.

Four measurements, each against the emulator in its own process:

- ``faults``: 10 runs of a 1,200-text embedding at a 30% fault mix (429, 500, 503, reset,
  truncated body) on each provider; how many finish with vectors identical to a clean run.
- ``rate``: a 20,000-text Databricks embedding against 600 requests/min, with no rate settings
  and with ``requests_per_minute=600``: time against the ideal (requests / rate) and the share
  of requests answered 429. Run at the default batch size (150: 134 requests, under a minute's
  allowance) and at ``--small-batch`` (16: 1,250 requests, which the limit does hold back).
- ``split``: the same job against a workspace that answers 429 to batches over 16 inputs.
- ``fanout``: 2,000 concurrent ``ainvoke`` on ``ChatDatabricks`` against 1,200 requests/min.

The emulator's limit is a sliding one-minute window, as the services document theirs, so a
burst of up to the limit passes at once: "ideal" is the issue's requests / rate, which a job
smaller than one minute's allowance can beat.

    python benchmarks/bulk_limits.py [faults|rate|split|fanout ...] [--runs 10]

It only uses what every version of the clients has, so running it with an older checkout on
``PYTHONPATH`` measures that version under the same conditions. Peers (databricks-langchain)
come from the ``bench`` extra; a missing one prints "not installed".
"""

from __future__ import annotations

import argparse
import asyncio
import time
from collections.abc import Callable
from typing import Any

from _common import GTE, LLAMA, emulator, peer, table

ADA = "sfdc_ai__DefaultOpenAITextEmbeddingAda_002"
FAULTS = ["429", "500", "503", "reset", "truncated"]


def texts(n: int) -> list[str]:
    return [f"Passage {i} on subject {i % 97}, part {i % 13}." for i in range(n)]


def throttle(client: Any) -> str:
    state = getattr(client, "throttle", None)
    return "-" if state is None else f"limit {state.limit}, {state.rate_limited} 429s seen"


def attempt(fn: Callable[[], Any]) -> tuple[Any, float, str | None]:
    start = time.perf_counter()
    try:
        result = fn()
    except Exception as exc:  # a benchmark reports failures, it does not stop
        return None, time.perf_counter() - start, f"{type(exc).__name__}"
    return result, time.perf_counter() - start, None


# -- 1. faults ------------------------------------------------------------------------------------
def faults(args: argparse.Namespace) -> None:
    from sfmodels_core import DatabricksClient, SalesforceClient

    items = texts(1200)
    rows: list[tuple[Any, ...]] = []
    with emulator() as emu:
        def sf() -> Any:
            return SalesforceClient(domain=emu.salesforce_domain,
                                    client_id=emu.salesforce_client_id,
                                    client_secret=emu.salesforce_client_secret, env={})

        def dbx() -> Any:
            return DatabricksClient(host=emu.databricks_host, api_key=emu.databricks_token,
                                    env={})

        def peer_dbx() -> Any:
            from databricks_langchain import DatabricksEmbeddings
            return DatabricksEmbeddings(endpoint=GTE)

        cases: list[tuple[str, Callable[[], Any], Callable[[Any], Any]]] = [
            ("sfmodels SalesforceClient.embed", sf, lambda c: c.embed(ADA, items).vectors),
            ("sfmodels DatabricksClient.embed", dbx, lambda c: c.embed(GTE, items).vectors),
            ("databricks_langchain.DatabricksEmbeddings", peer_dbx,
             lambda c: c.embed_documents(items)),
        ]
        for name, make, run in cases:
            emu.reset()
            client = peer(make)
            if client is None:
                rows.append((name, "not installed", None, None, None, None))
                continue
            clean, clean_s, _ = attempt(lambda: run(client))  # noqa: B023
            emu.configure(fault_rate=0.3, fault_kinds=FAULTS)  # the fault draws go on run to run
            outcomes, times = [], []
            for _ in range(args.runs):
                client = make()
                result, seconds, failure = attempt(lambda: run(client))  # noqa: B023
                outcomes.append(failure or ("identical" if result == clean else "DIFFERENT"))
                times.append(seconds)
            finished = outcomes.count("identical")
            failures = sorted({o for o in outcomes if o != "identical"})
            rows.append((name, f"{finished}/{args.runs}", clean_s, sorted(times)[len(times) // 2],
                         max(times), ", ".join(failures) or "-"))
    table(f"1,200 texts at a 30% fault mix, default settings, {args.runs} runs each",
          ("client", "identical", "clean s", "median s", "max s", "failures"), rows)


# -- 2. rate limit and 3. split -------------------------------------------------------------------
def embed_job(emu: Any, items: list[str], rate: int | None, settings: dict[str, Any] | None = None,
              **options: Any) -> tuple[Any, ...]:
    from sfmodels_core import DatabricksClient

    emu.reset()
    if settings:
        emu.configure(**settings)
    client = DatabricksClient(host=emu.databricks_host, api_key=emu.databricks_token, env={},
                              **options)
    result, seconds, failure = attempt(lambda: client.embed(GTE, items).vectors)
    counters = emu.counters()
    requests = counters["requests"]["databricks.invocations"]
    refused = counters["rate_limited"] + counters.get("input_limited", 0)
    ok = requests - refused
    ideal = ok / rate * 60 if rate else None
    done = failure or ("complete" if result is not None and len(result) == len(items)
                       else "INCOMPLETE")
    return (done, seconds, ideal, ideal and seconds / ideal, requests, refused,
            f"{refused / requests:.1%}" if requests else "-", throttle(client))


def rate(args: argparse.Namespace) -> None:
    items = texts(args.texts)
    rows: list[tuple[Any, ...]] = []
    with emulator(rate_limit_rpm=600) as emu:
        for batch in (None, args.small_batch):
            for rpm in (None, 600):
                label = (f"batch {batch or 'default'}, "
                         f"{'requests_per_minute=600' if rpm else 'no rate settings'}")
                options: dict[str, Any] = {"requests_per_minute": rpm}
                if batch:
                    options["batch_size"] = batch
                rows.append((label, *embed_job(emu, items, 600, **options)))
    table(f"Databricks embedding of {args.texts:,} texts against 600 requests/min",
          ("settings", "outcome", "seconds", "ideal s", "x ideal", "requests", "429s",
           "429 share", "client's limit"), rows)


def split(args: argparse.Namespace) -> None:
    items = texts(args.texts)
    rows: list[tuple[Any, ...]] = []
    with emulator(rate_limit_rpm=args.split_rate) as emu:
        rows.append(("default settings", *embed_job(
            emu, items, args.split_rate,
            {"model_settings": {GTE: {"embedding_max_inputs_429": 16}}})))
    note = f", and {args.split_rate} requests/min" if args.split_rate else ""
    table(f"Databricks embedding of {args.texts:,} texts, workspace refusing batches over 16 "
          f"with 429{note}",
          ("settings", "outcome", "seconds", "ideal s", "x ideal", "requests", "429s",
           "429 share", "client's limit"), rows)


# -- 4. fan-out -----------------------------------------------------------------------------------
def fanout(args: argparse.Namespace) -> None:
    rows: list[tuple[Any, ...]] = []
    with emulator(rate_limit_rpm=1200) as emu:
        from langchain_sfmodels import ChatDatabricks

        def ours() -> Any:
            return ChatDatabricks(endpoint=LLAMA, host=emu.databricks_host,
                                  api_key=emu.databricks_token)

        def theirs() -> Any:
            from databricks_langchain import ChatDatabricks as Peer
            return Peer(endpoint=LLAMA)

        for name, make in (("langchain_sfmodels.ChatDatabricks", ours),
                           ("databricks_langchain.ChatDatabricks", theirs)):
            emu.reset()
            chat = peer(make)
            if chat is None:
                rows.append((name, "not installed", None, None, None, None, None))
                continue

            async def run(model: Any = chat) -> list[Any]:
                return await asyncio.gather(
                    *(model.ainvoke(f"Question {i}?") for i in range(args.calls)),
                    return_exceptions=True)

            start = time.perf_counter()
            answers = asyncio.run(run())
            seconds = time.perf_counter() - start
            failed = [a for a in answers if isinstance(a, BaseException)]
            counters = emu.counters()
            requests = counters["requests"]["databricks.invocations"]
            ideal = args.calls / 1200 * 60
            kinds = sorted({type(a).__name__ for a in failed})
            rows.append((name, f"{args.calls - len(failed)}/{args.calls} ok"
                         + (f" ({', '.join(kinds)})" if kinds else ""), seconds, ideal,
                         seconds / ideal, requests, counters["rate_limited"]))
    table(f"{args.calls:,} concurrent ainvoke against 1,200 requests/min (ideal: calls / rate)",
          ("client", "outcome", "seconds", "ideal s", "x ideal", "requests", "429s"), rows)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("scenarios", nargs="*", default=["faults", "rate", "split", "fanout"],
                        choices=["faults", "rate", "split", "fanout"])
    parser.add_argument("--runs", type=int, default=10)
    parser.add_argument("--texts", type=int, default=20_000)
    parser.add_argument("--small-batch", type=int, default=16)
    parser.add_argument("--split-rate", type=int, default=None,
                        help="also apply this requests/min limit in the split scenario")
    parser.add_argument("--calls", type=int, default=2000)
    args = parser.parse_args()
    for name in args.scenarios:
        {"faults": faults, "rate": rate, "split": split, "fanout": fanout}[name](args)


if __name__ == "__main__":
    main()

"""What checking the wire costs a bulk embedding job: every vector checked, every attempt bounded
by its deadline, every body by its size cap, against the same job by code that checks none of it.

Each row is one core ``embed`` (sync, threads) or ``aembed`` (async) of ``--texts`` (30,000)
texts at ``--latency-ms`` (50), batches of 150, 4 in flight, in a child process of its own with
that code first on its path; the emulator runs in another process, from this checkout. Rows of
``--before`` (a checkout directory or a git ref) and of this checkout alternate, ``--rounds``
times; the table shows medians of wall time and of the child's CPU per text.

    python benchmarks/wire_checks_cost.py --before 2e74707 [--texts 30000] [--rounds 5]
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import os
import resource
import statistics
import sys
import time
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent
GTE = "databricks-gte-large-en"
MODES = ("sync lists", "async lists", "sync compact", "async compact")


def worker(mode: str, texts: int) -> None:
    from sfmodels_core import DatabricksClient

    items = [f"Document {i} discusses topic {i % 97} and the related subject {i % 13}."
             for i in range(texts)]
    compact = mode.endswith("compact")
    kwargs: dict[str, Any] = {"compact": True} if compact else {}
    before = resource.getrusage(resource.RUSAGE_SELF)
    started = time.perf_counter()
    with DatabricksClient(host=os.environ["DATABRICKS_HOST"],
                          api_key=os.environ["DATABRICKS_TOKEN"]) as client:
        if mode.startswith("sync"):
            result = client.embed(GTE, items, **kwargs)
        else:
            result = asyncio.run(client.aembed(GTE, items, **kwargs))
    wall = time.perf_counter() - started
    after = resource.getrusage(resource.RUSAGE_SELF)
    assert len(result.vectors) == texts
    cpu = (after.ru_utime + after.ru_stime) - (before.ru_utime + before.ru_stime)
    print(json.dumps({"wall": wall, "cpu_us_per_text": cpu / texts * 1e6}))


def measure(tree: Path, emu: Any, mode: str, texts: int) -> dict[str, Any]:
    from _common import child_env, run_worker

    return run_worker(HERE / Path(__file__).name, [mode, "--texts", str(texts)],
                      {**child_env(emu), "PYTHONPATH": str(tree)}, f"{mode} with {tree}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--texts", type=int, default=30_000)
    parser.add_argument("--latency-ms", type=float, default=50)
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--before", metavar="DIR_OR_REF", required=False,
                        help="the code to compare with: a checkout directory or a git ref")
    parser.add_argument("--modes", nargs="+", default=list(MODES), choices=MODES)
    parser.add_argument("--worker", action="store_true", help=argparse.SUPPRESS)
    parser.add_argument("mode", nargs="?", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.worker:
        worker(args.mode, args.texts)
        return

    sys.path.insert(0, str(HERE))
    from _common import code_at, emulator, table

    with contextlib.ExitStack() as stack:
        trees = [("this checkout", ROOT)]
        if args.before:
            trees.insert(0, (f"before ({args.before})", stack.enter_context(code_at(args.before))))
        emu = stack.enter_context(emulator(latency_ms=args.latency_ms))
        runs: dict[tuple[str, str], list[dict[str, Any]]] = {}
        for round_ in range(args.rounds):
            for mode in args.modes:
                for label, tree in trees:
                    result = measure(tree, emu, mode, args.texts)
                    runs.setdefault((mode, label), []).append(result)
                    print(f"round {round_ + 1}: {mode}: {label}: {result}", file=sys.stderr)
    rows: list[tuple[Any, ...]] = []
    for mode in args.modes:
        base = None
        for label, _ in trees:
            results = runs[(mode, label)]
            wall = statistics.median(r["wall"] for r in results)
            cpu = statistics.median(r["cpu_us_per_text"] for r in results)
            base = base or (wall, cpu)
            rows.append((mode, label, wall, f"{wall / base[0]:.3f}", cpu,
                         f"{cpu / base[1]:.3f}"))
    table(f"Bulk embed of {args.texts:,} texts at {args.latency_ms:g} ms, median of "
          f"{args.rounds} alternating rounds",
          ("mode", "code", "seconds", "x first", "CPU us/text", "x first"), rows)


if __name__ == "__main__":
    main()

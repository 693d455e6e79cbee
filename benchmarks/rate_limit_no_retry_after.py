"""A fan-out against a rate limit that sends no Retry-After: Databricks' workspace QPS limit.

The emulator refuses requests past ``--rps`` (40) a second per endpoint with ``429
REQUEST_LIMIT_EXCEEDED`` and no ``Retry-After``, and answers after ``--latency-ms`` (20), so
that even one request in flight makes more than the limit a second. ``ChatDatabricks(...)
.abatch(prompts)`` with default settings sends ``--prompts`` (300) of them. Each row prints how
many succeeded, the time against the ideal (prompts / rps: 7.5 s), and the share of the
client's requests answered 429 (``client.throttle``: ``requests``, ``rate_limited``).

``--before`` adds the rows of other code, measured in the same rounds: a directory (a checkout,
such as ``/work/main``) or a git ref (exported with ``git archive``). Every row runs in a child
process of its own with that code first on its path; the emulator runs in another, from this
checkout, and its windows are cleared between rows.

    python benchmarks/rate_limit_no_retry_after.py [--before main] [--prompts 300] [--rps 40]
                                                   [--latency-ms 20] [--rounds 3]
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import os
import statistics
import sys
import time
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent
LLAMA = "databricks-meta-llama-3-3-70b-instruct"


# -- the child process: one abatch, measured ----------------------------------------------------
def worker(prompts: int) -> None:
    import sfmodels_core
    from langchain_sfmodels import ChatDatabricks

    llm = ChatDatabricks(endpoint=LLAMA, host=os.environ["DATABRICKS_HOST"],
                         api_key=os.environ["DATABRICKS_TOKEN"])
    questions = [f"Question {i}: what is a river?" for i in range(prompts)]
    started = time.perf_counter()
    answers = asyncio.run(llm.abatch(questions, return_exceptions=True))
    wall = time.perf_counter() - started
    errors = [a for a in answers if isinstance(a, BaseException)]
    state = llm.client.throttle
    print(json.dumps({
        "ok": len(answers) - len(errors), "wall": wall, "requests": state.requests,
        "rate_limited": state.rate_limited, "rate_per_minute": state.rate_per_minute,
        "error": f"{type(errors[0]).__name__}: {errors[0]}"[:200] if errors else None,
        "code": str(Path(sfmodels_core.__file__).parent.parent)}))


# -- the parent: the emulator, the rounds, the table -------------------------------------------
def measure(tree: Path, emu: Any, prompts: int) -> dict[str, Any]:
    from _common import child_env, run_worker

    emu.reset()  # settings stay; the rate windows and counters start empty
    result = run_worker(HERE / Path(__file__).name, ["--prompts", str(prompts)],
                        {**child_env(emu), "PYTHONPATH": str(tree)}, f"the run with {tree}")
    result["emulator_429"] = emu.counters()["rate_limited"]
    return result


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--prompts", type=int, default=300)
    parser.add_argument("--rps", type=int, default=40, help="the emulator's limit a second")
    parser.add_argument("--latency-ms", type=float, default=20)
    parser.add_argument("--rounds", type=int, default=3,
                        help="each row runs once a round; the table shows the median")
    parser.add_argument("--before", metavar="DIR_OR_REF",
                        help="also measure this code: a checkout directory or a git ref")
    parser.add_argument("--worker", action="store_true", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.worker:
        worker(args.prompts)
        return

    sys.path.insert(0, str(ROOT))
    from _common import code_at, emulator, table  # benchmarks/ is this script's directory

    ideal = args.prompts / args.rps
    with contextlib.ExitStack() as stack:
        rows: list[tuple[str, Path]] = []
        if args.before:
            rows.append((f"before ({args.before})", stack.enter_context(code_at(args.before))))
        rows.append(("after (this checkout)", ROOT))
        emu = stack.enter_context(emulator(rate_limit_rps=args.rps, rate_limit_retry_after=False,
                                           latency_ms=args.latency_ms))
        results: dict[str, list[dict[str, Any]]] = {label: [] for label, _ in rows}
        for round_ in range(args.rounds):
            for label, tree in rows:
                result = measure(tree, emu, args.prompts)
                results[label].append(result)
                print(f"round {round_ + 1}: {label}: {result}", file=sys.stderr)
    out: list[tuple[Any, ...]] = []
    for label, _ in rows:
        runs = results[label]
        wall = statistics.median(r["wall"] for r in runs)
        requests = statistics.median(r["requests"] for r in runs)
        refused = statistics.median(r["rate_limited"] for r in runs)
        oks = sorted(r["ok"] for r in runs)
        share = sum(r["rate_limited"] for r in runs) / sum(r["requests"] for r in runs)
        out.append((label, "/".join(map(str, oks)) + f" of {args.prompts}", wall, wall / ideal,
                    int(requests), int(refused), f"{share:.0%}"))
        errors = [r["error"] for r in runs if r["error"]]
        if errors:
            print(f"{label}: first error: {errors[0]}", file=sys.stderr)
    table(f"ChatDatabricks.abatch({args.prompts} prompts), default settings, against "
          f"{args.rps} requests/s answered 429 without Retry-After past it, "
          f"{args.latency_ms:.0f} ms latency; ideal {ideal:.1f} s; median of {args.rounds} rounds",
          ("code", "succeeded (each round)", "seconds", "x ideal", "requests", "answered 429",
           "429 share"), out)


if __name__ == "__main__":
    main()

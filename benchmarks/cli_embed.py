"""`sfmodels embed` against the core's `embed` for the same texts, side by side in one run.

For each size: the core (`DatabricksClient.embed` over the file's lines, in calls of
``--core-chunk`` texts because a million vectors as Python lists would take about 33 GB), then
`sfmodels embed` on the same file, then the same command again with nothing left to do (a resume
that only reads the keys of the records), plain and with ``--vectors base64``. Each runs in its
own process, the emulator in another (50 ms latency, batches of 150, 4 requests at once by
default); the table gives wall time (process start to exit), the ratio to the core, and peak RSS.
``--before DIR`` adds the same two command runs from another source tree (e.g. an older commit
unpacked with `git archive`).

    python benchmarks/cli_embed.py [--lines 10000,100000,1000000] [--latency-ms 50]
        [--before /tmp/sfmodels-before] [--workdir /tmp]
"""

from __future__ import annotations

import argparse
import math
import sys
import tempfile
from pathlib import Path
from typing import Any

from _common import GTE, child_env, emulator, measure, table, write_input

ROOT = Path(__file__).resolve().parents[1]
BATCH = 150

CORE = """
import sys
from sfmodels_core import DatabricksClient
path, endpoint, chunk = sys.argv[1], sys.argv[2], int(sys.argv[3])
with open(path, encoding="utf-8") as handle:
    texts = [line.strip() for line in handle if line.strip()]
done = 0
with DatabricksClient() as client:
    for start in range(0, len(texts), chunk):
        done += len(client.embed(endpoint, texts[start:start + chunk]).vectors)
assert done == len(texts), (done, len(texts))
"""


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--lines", default="10000,100000",
                        help="comma-separated input sizes (default %(default)s)")
    parser.add_argument("--latency-ms", type=float, default=50)
    parser.add_argument("--concurrency", type=int, default=4)
    parser.add_argument("--core-chunk", type=int, default=30_000)
    parser.add_argument("--before", type=Path, default=None,
                        help="another source tree whose `sfmodels embed` to run too")
    parser.add_argument("--workdir", type=Path, default=Path(tempfile.gettempdir()))
    args = parser.parse_args()
    sizes = [int(n) for n in args.lines.split(",")]
    rows: list[tuple[Any, ...]] = []

    def add(*row: Any) -> None:  # shown as it comes, then in the table at the end
        rows.append(row)
        print(*row, sep="  ", flush=True)

    with emulator(latency_ms=args.latency_ms, embedding_max_batch=BATCH) as emu, \
            tempfile.TemporaryDirectory(dir=args.workdir) as tmp:
        env = child_env(emu)
        for n in sizes:
            source = Path(tmp) / f"input-{n}.txt"
            write_input(source, n)
            floor = math.ceil(n / BATCH) / args.concurrency * args.latency_ms / 1000
            core, core_rss = measure(
                [sys.executable, "-c", CORE, str(source), GTE, str(args.core_chunk)], ROOT, env)
            add(n, f"core embed (calls of {min(n, args.core_chunk)})", core, 1.0, core_rss,
                floor)
            trees = [("sfmodels embed", ROOT, []),
                     ("sfmodels embed --vectors base64", ROOT, ["--vectors", "base64"])]
            if args.before is not None:
                trees.append(("before: sfmodels embed", args.before.resolve(), []))
            for label, tree, extra in trees:
                out = Path(tmp) / f"out-{n}.jsonl"
                command = [sys.executable, "-m", "sfmodels.cli", "embed", str(source),
                           "--out", str(out), "--no-progress", "--batch-size", str(BATCH),
                           "--max-concurrency", str(args.concurrency), *extra]
                t, rss = measure(command, tree, env)
                add(n, label, t, t / core, rss, floor)
                size_mb = out.stat().st_size / 1e6
                t, rss = measure(command, tree, env)
                add(n, f"{label}, nothing left to do ({size_mb:.0f} MB file)", t, None, rss,
                    None)
                out.unlink()
            source.unlink()
    table(f"sfmodels embed vs the core's embed: {args.latency_ms:.0f} ms latency, batches of "
          f"{BATCH}, {args.concurrency} in flight; emulator in its own process",
          ("lines", "run", "seconds", "x core", "peak RSS MB", "request floor s"), rows)


if __name__ == "__main__":
    main()

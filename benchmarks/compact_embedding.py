"""Compact vectors: peak memory and time of one core `embed` call over many Databricks texts.

Each run is one `DatabricksClient.embed(endpoint, texts)` call in its own process (the emulator in
another: 50 ms latency, batches of 150, 4 requests at once), beside a plain httpx script sending
the same requests and dropping the answers (what this machine allows), with:

- lists: the default, a Python list of floats per vector (about 41 KB at 1,024 dimensions);
- compact, base64: ``compact=True`` against an endpoint that honours ``encoding_format``;
- compact, lists on the wire: ``compact=True`` against an endpoint that ignores it (each list
  packed into float32 as it is read).

The table gives the call's seconds, their ratio to the request floor (requests / concurrency x
latency), the client process's CPU time per text, and its peak RSS. A lists run that would not
fit in this machine's memory is skipped and its need estimated. The texts repeat every 4,000
(each is still sent and gets its own vector): the emulator then answers from its cache, so on a
2-core machine the client is measured rather than the emulator making a million vectors on the
other core.

    python benchmarks/compact_embedding.py [--texts 100000,1000000] [--latency-ms 50]
"""

from __future__ import annotations

import argparse
import math
import os
import sys
import tempfile
from pathlib import Path
from typing import Any

from _common import GTE, child_env, emulator, measure, table

ROOT = Path(__file__).resolve().parents[1]
BATCH = 150
LIST_BYTES_PER_VECTOR = 41_000

CHILD = """
import sys, time
from concurrent.futures import ThreadPoolExecutor
import httpx
from sfmodels_core import DatabricksClient
count, endpoint, mode, report = int(sys.argv[1]), sys.argv[2], sys.argv[3], sys.argv[4]
concurrency, batch = int(sys.argv[5]), int(sys.argv[6])
texts = [f"Document {j} discusses topic {j % 97} and the related subject {j % 13}."
         for j in (i % 4000 for i in range(count))]
started, cpu = time.perf_counter(), time.process_time()
if mode == "raw":  # what the machine allows: the same requests, each answer read and dropped
    import os
    url = f"{os.environ['DATABRICKS_HOST']}/serving-endpoints/{endpoint}/invocations"
    with httpx.Client(headers={"Authorization": f"Bearer {os.environ['DATABRICKS_TOKEN']}"},
                      timeout=60) as http, ThreadPoolExecutor(concurrency) as pool:
        def one(start):
            body = {"input": texts[start:start + batch], "encoding_format": "base64"}
            return len(http.post(url, json=body).content)
        list(pool.map(one, range(0, count, batch)))
else:
    with DatabricksClient(max_concurrency=concurrency) as client:
        result = client.embed(endpoint, texts, compact=mode == "compact")
    assert len(result.vectors) == len(texts)
elapsed, cpu = time.perf_counter() - started, time.process_time() - cpu
with open(report, "w") as handle:
    handle.write(f"{elapsed} {cpu}")
"""


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--texts", default="100000,1000000",
                        help="comma-separated sizes (default %(default)s)")
    parser.add_argument("--latency-ms", type=float, default=50)
    parser.add_argument("--concurrency", type=int, default=4)
    parser.add_argument("--workdir", type=Path, default=Path(tempfile.gettempdir()))
    args = parser.parse_args()
    available = os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_AVPHYS_PAGES")
    rows: list[tuple[Any, ...]] = []

    def add(*row: Any) -> None:  # shown as it comes, then in the table at the end
        rows.append(row)
        print(*row, sep="  ", flush=True)

    with emulator(latency_ms=args.latency_ms, embedding_max_batch=BATCH) as emu, \
            tempfile.TemporaryDirectory(dir=args.workdir) as tmp:
        env = child_env(emu)
        report = Path(tmp) / "seconds"
        for n in (int(size) for size in args.texts.split(",")):
            floor = math.ceil(n / BATCH) / args.concurrency * args.latency_ms / 1000
            runs = [("raw httpx, base64 answers read and dropped", "raw", "honor"),
                    ("lists", "lists", "honor"), ("compact, base64", "compact", "honor"),
                    ("compact, lists on the wire", "compact", "ignore")]
            for label, mode, base64_mode in runs:
                if mode == "lists" and n * LIST_BYTES_PER_VECTOR > 0.8 * available:
                    add(n, label, None, None, None,
                        f"skipped: needs about {n * LIST_BYTES_PER_VECTOR / 1e9:.0f} GB", floor)
                    continue
                emu.configure(embedding_base64=base64_mode)
                _, rss = measure([sys.executable, "-c", CHILD, str(n), GTE, mode, str(report),
                                  str(args.concurrency), str(BATCH)], ROOT, env)
                seconds, cpu = map(float, report.read_text().split())
                add(n, label, seconds, seconds / floor, cpu / n * 1e6, f"{rss:,.0f}", floor)
    table(f"One core embed call: {args.latency_ms:.0f} ms latency, batches of {BATCH}, "
          f"{args.concurrency} in flight; emulator in its own process",
          ("texts", "vectors", "seconds", "x floor", "client CPU µs/text", "peak RSS MB",
           "request floor s"), rows)


if __name__ == "__main__":
    main()

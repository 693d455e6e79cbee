"""Scenario: bulk embedding on Spark (local[2]) at 50 ms latency, batches of 150.

Three ways to embed the same texts against the emulator (in its own process):

- ``sfmodels_spark.embed``: two tasks at once, each keeping ``--concurrency`` batches in flight;
- the single-process core ``DatabricksClient.embed`` with the same total concurrency
  (2 x ``--concurrency``);
- a hand-written ``pandas_udf`` calling the core client one batch at a time, as users write
  today (a client per Arrow batch, one request after another);

then ``sfmodels_spark.embed`` with a job-wide ``requests_per_minute``, to compare the rate the
emulator saw with the budget. Each scenario runs in a fresh process (and a fresh Spark session),
so its peak memory is its own: for Spark, the largest Python worker's peak RSS and the JVM's
(local mode: the driver is the executor).

    python benchmarks/spark_embedding.py [--texts 100000] [--latency-ms 50] [--concurrency 4]
                                         [--budget 300] [--budget-texts 15000]
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import pandas as pd  # at module level: pandas_udf reads the type hints through it
from _common import GTE, emulator, table

BATCH = 150
TASKS = 2  # local[2]


def texts(n: int) -> list[str]:
    return [f"Document {i} discusses topic {i % 97} and the related subject {i % 13}."
            for i in range(n)]


# -- one scenario, in its own process -------------------------------------------------------------
def _peak_kb(pid: int | str) -> int:
    try:
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            if line.startswith("VmHWM:"):
                return int(line.split()[1])
    except OSError:
        pass
    return 0


def _spark_peaks() -> tuple[int, int]:
    """(largest Python worker's peak RSS, the JVM's), in MB, of this machine's Spark processes
    started by this process."""
    workers = jvm = 0
    me = str(os.getpid())
    for proc in Path("/proc").iterdir():
        if not proc.name.isdigit():
            continue
        try:
            cmd = (proc / "cmdline").read_bytes().replace(b"\0", b" ").decode(errors="replace")
            env = (proc / "environ").read_bytes()
        except OSError:
            continue
        if f"SFMODELS_BENCH_PARENT={me}".encode() not in env:
            continue
        if "pyspark.daemon" in cmd or "pyspark.worker" in cmd:
            workers = max(workers, _peak_kb(proc.name))
        elif "SparkSubmit" in cmd:
            jvm = max(jvm, _peak_kb(proc.name))
    return workers // 1024, jvm // 1024


def _session() -> Any:
    os.environ["SPARK_LOCAL_IP"] = "127.0.0.1"
    os.environ["PYSPARK_PYTHON"] = sys.executable
    os.environ["SFMODELS_BENCH_PARENT"] = str(os.getpid())  # to find our workers in /proc
    from pyspark.sql import SparkSession

    spark = (SparkSession.builder.master(f"local[{TASKS}]")
             .config("spark.driver.host", "127.0.0.1")
             .config("spark.driver.bindAddress", "127.0.0.1")
             .config("spark.ui.enabled", "false")
             .config("spark.ui.showConsoleProgress", "false")
             .config("spark.driver.memory", "4g")
             .getOrCreate())
    spark.sparkContext.setLogLevel("ERROR")
    return spark


def _frame(spark: Any, n: int, partitions: int) -> Any:
    rows = spark.sparkContext.parallelize([(i, t) for i, t in enumerate(texts(n))], partitions)
    return spark.createDataFrame(rows, "id long, text string")


def run_scenario(name: str, host: str, token: str, n: int, concurrency: int,
                 budget: float | None) -> dict[str, Any]:
    creds = {"host": host, "api_key": token}
    if name == "core":
        from sfmodels_core import DatabricksClient

        items = texts(n)
        with DatabricksClient(**creds, batch_size=BATCH,
                              max_concurrency=TASKS * concurrency) as client:
            client.embed(GTE, items[:3])
            start = time.perf_counter()
            vectors = client.embed(GTE, items).vectors
            seconds = time.perf_counter() - start
        assert len(vectors) == n
        peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss // 1024
        return {"seconds": seconds, "workers_mb": peak, "jvm_mb": None}

    spark = _session()
    df = _frame(spark, n, 2 * TASKS).cache()
    df.count()
    warm = _frame(spark, 2 * TASKS, TASKS)  # starts the Python workers before the clock does
    if name in ("spark", "budget"):
        from sfmodels_spark import embed

        def job(frame: Any, rate: float | None) -> Any:
            return embed(frame, "text", provider="databricks", model=GTE, batch_size=BATCH,
                         max_concurrency=concurrency, requests_per_minute=rate, **creds)

        job(warm, None).collect()
        out = job(df, budget)
    else:  # what users write today
        from pyspark.sql.functions import pandas_udf

        from sfmodels_core import DatabricksClient

        @pandas_udf("array<float>")  # type: ignore[call-overload, untyped-decorator]
        def embed_udf(column: pd.Series) -> pd.Series:
            vectors: list[list[float]] = []
            with DatabricksClient(**creds) as client:
                for start in range(0, len(column), BATCH):
                    batch = column.iloc[start:start + BATCH].tolist()
                    vectors.extend(client.embed(GTE, batch).vectors)
            return pd.Series(vectors)

        warm.withColumn("embedding", embed_udf("text")).collect()
        out = df.withColumn("embedding", embed_udf("text"))
    sink = out.selectExpr("count(*) AS n", "count(embedding) AS ok",
                          "sum(size(embedding)) AS floats")
    start = time.perf_counter()
    total = sink.collect()[0]
    seconds = time.perf_counter() - start
    assert total.n == n and total.ok == n, total
    workers, jvm = _spark_peaks()
    spark.stop()
    return {"seconds": seconds, "workers_mb": workers, "jvm_mb": jvm}


# -- the driver of the benchmark ------------------------------------------------------------------
def scenario(emu: Any, name: str, n: int, args: argparse.Namespace,
             budget: float | None = None) -> dict[str, Any]:
    emu.reset()
    emu.configure(latency_ms=args.latency_ms, embedding_max_batch=BATCH)
    # Warm-up requests come first: the core's one, or one per partition of the Spark warm-up.
    warmup = 1 if name == "core" else TASKS
    command = [sys.executable, __file__, "--run", name, "--host", emu.databricks_host,
               "--token", emu.databricks_token, "--texts", str(n),
               "--concurrency", str(args.concurrency)]
    if budget is not None:
        command += ["--budget", str(budget)]
    root = str(Path(__file__).resolve().parents[1])  # this checkout's packages, also on workers
    env = {**os.environ, "PYTHONPATH": os.pathsep.join(
        p for p in (root, os.environ.get("PYTHONPATH", "")) if p)}
    done = subprocess.run(command, capture_output=True, text=True, check=False, env=env)
    if done.returncode != 0:
        raise RuntimeError(f"scenario {name} failed:\n{done.stderr[-3000:]}")
    result: dict[str, Any] = json.loads(done.stdout.strip().splitlines()[-1])
    arrivals = [t for t, route in emu.arrivals() if route == "databricks.invocations"][warmup:]
    result["requests"] = len(arrivals)
    result["rows_per_s"] = n / result["seconds"]
    if len(arrivals) > TASKS + 1:
        span = arrivals[-1] - arrivals[0]
        # Leave out the first request of each task, which goes at once.
        result["rate_per_min"] = (len(arrivals) - TASKS) / span * 60 if span else None
        window = 10.0
        j = 0
        peak = 0
        for i, t in enumerate(arrivals):
            while arrivals[j] < t - window:
                j += 1
            peak = max(peak, i - j + 1)
        result["peak_10s_per_min"] = peak * 60 / window
    return result


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--texts", type=int, default=100_000)
    parser.add_argument("--latency-ms", type=float, default=50)
    parser.add_argument("--concurrency", type=int, default=4)
    parser.add_argument("--budget", type=float, default=300.0,
                        help="job-wide requests_per_minute of the last scenario")
    parser.add_argument("--budget-texts", type=int, default=15_000)
    parser.add_argument("--run", help=argparse.SUPPRESS)
    parser.add_argument("--host", help=argparse.SUPPRESS)
    parser.add_argument("--token", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.run:
        budget = args.budget if args.run == "budget" else None
        print(json.dumps(run_scenario(args.run, args.host, args.token, args.texts,
                                      args.concurrency, budget)))
        return

    with emulator(latency_ms=args.latency_ms, embedding_max_batch=BATCH) as emu:
        runs = [
            (f"sfmodels_spark.embed, 2 tasks x {args.concurrency} in flight",
             scenario(emu, "spark", args.texts, args)),
            (f"core DatabricksClient.embed, one process, {TASKS * args.concurrency} in flight",
             scenario(emu, "core", args.texts, args)),
            ("hand-written pandas_udf, one batch at a time",
             scenario(emu, "udf", args.texts, args)),
        ]
        budgeted = scenario(emu, "budget", args.budget_texts, args, args.budget)
    rows = [(label, r["rows_per_s"], r["seconds"], r["requests"], r["workers_mb"], r["jvm_mb"])
            for label, r in runs]
    table(f"Embedding {args.texts:,} texts on local[{TASKS}], {args.latency_ms:.0f} ms latency, "
          f"batches of {BATCH}",
          ("how", "rows/s", "seconds", "requests", "peak MB (Python)", "peak MB (JVM)"), rows)
    table(f"Job-wide requests_per_minute={args.budget:.0f}: {args.budget_texts:,} texts",
          ("budget/min", "measured/min (whole run)", "peak 10 s window, per min", "requests",
           "seconds"),
          [(args.budget, budgeted.get("rate_per_min"), budgeted.get("peak_10s_per_min"),
            budgeted["requests"], budgeted["seconds"])])


if __name__ == "__main__":
    main()

"""Shared pieces of the benchmarks: the emulator in its own process, timing, and the tables.

The emulator runs in a child process so it never competes with the measured client for the
GIL. Peers (databricks-langchain, llama-index-llms-databricks, llama-index-embeddings-databricks)
are installed by ``install_peers.sh``; a scenario whose peer is not installed prints the row as
"not installed" instead of failing.
"""

from __future__ import annotations

import contextlib
import io
import os
import statistics
import subprocess
import tarfile
import tempfile
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

from sfmodels_emulator import Emulator

GTE = "databricks-gte-large-en"
LLAMA = "databricks-meta-llama-3-3-70b-instruct"
SF_CHAT = "sfdc_ai__DefaultOpenAIGPT4OmniMini"
ROOT = Path(__file__).resolve().parent.parent


@contextlib.contextmanager
def emulator(**settings: Any) -> Iterator[Emulator]:
    """A process-mode emulator, with the environment pointing the peers' clients at it."""
    with Emulator(mode="process", **settings) as emu:
        saved = {k: os.environ.get(k) for k in ("DATABRICKS_HOST", "DATABRICKS_TOKEN")}
        os.environ["DATABRICKS_HOST"] = emu.databricks_host
        os.environ["DATABRICKS_TOKEN"] = emu.databricks_token
        try:
            yield emu
        finally:
            for key, value in saved.items():
                if value is None:
                    os.environ.pop(key, None)
                else:
                    os.environ[key] = value


def best_of(fn: Callable[[], Any], repeat: int = 3) -> float:
    """The fastest of ``repeat`` runs, in seconds (the least disturbed by a noisy machine)."""
    times = []
    for _ in range(repeat):
        start = time.perf_counter()
        fn()
        times.append(time.perf_counter() - start)
    return min(times)


def median_us(fn: Callable[[], Any], calls: int) -> float:
    samples = []
    for _ in range(calls):
        start = time.perf_counter_ns()
        fn()
        samples.append((time.perf_counter_ns() - start) / 1000)
    return statistics.median(samples)


def peer(factory: Callable[[], Any]) -> Any:
    """Build a peer object, or None when its package is not installed."""
    try:
        return factory()
    except ImportError:
        return None


def table(title: str, header: tuple[str, ...], rows: list[tuple[Any, ...]]) -> None:
    print(f"\n{title}")
    widths = [max(len(str(h)), *(len(_fmt(r[i])) for r in rows)) for i, h in enumerate(header)]
    print("  ".join(str(h).ljust(w) for h, w in zip(header, widths, strict=True)))
    for row in rows:
        print("  ".join(_fmt(v).ljust(w) for v, w in zip(row, widths, strict=True)))


def _fmt(value: Any) -> str:
    if isinstance(value, float):
        return f"{value:.3f}" if value < 100 else f"{value:.0f}"
    return "-" if value is None else str(value)


def write_input(path: Path, n: int) -> None:
    with path.open("w", encoding="utf-8") as handle:
        for i in range(n):
            handle.write(f"Document {i} discusses topic {i % 97} and the related subject "
                         f"{i % 13}.\n")


def child_env(emu: Emulator) -> dict[str, str]:
    """This process's environment for a child run, with Databricks pointed at ``emu`` and no
    other credentials or config file."""
    env = {k: v for k, v in os.environ.items()
           if not k.startswith(("DATABRICKS_", "SALESFORCE_"))}
    env.update(DATABRICKS_HOST=emu.databricks_host, DATABRICKS_TOKEN=emu.databricks_token,
               DATABRICKS_CONFIG_FILE="/nonexistent")
    return env


def measure(command: list[str], cwd: Path, env: dict[str, str]) -> tuple[float, float]:
    """Wall seconds from start to exit, and the process's peak RSS in MB."""
    started = time.perf_counter()
    process = subprocess.Popen(command, cwd=cwd, env={**env, "PYTHONPATH": str(cwd)},
                               stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    assert process.stderr is not None
    _, status, usage = os.wait4(process.pid, 0)
    elapsed = time.perf_counter() - started
    err = process.stderr.read().decode()
    process.stderr.close()
    process.returncode = os.waitstatus_to_exitcode(status)
    if process.returncode != 0:
        raise SystemExit(f"{' '.join(command)} failed ({process.returncode}):\n{err}")
    return elapsed, usage.ru_maxrss / 1024  # ru_maxrss is in KB on Linux


@contextlib.contextmanager
def code_at(before: str) -> Iterator[Path]:
    """A checkout directory as it is, or the tree of a git ref in a temporary directory."""
    if Path(before).is_dir():
        yield Path(before).resolve()
        return
    with tempfile.TemporaryDirectory(prefix="sfmodels-before-") as tmp:
        archive = subprocess.run(["git", "-C", str(ROOT), "archive", before],
                                 check=True, capture_output=True).stdout
        with tarfile.open(fileobj=io.BytesIO(archive)) as tar:
            tar.extractall(tmp, filter="data")
        yield Path(tmp)


def run_worker(script: Path, args: list[str], env: dict[str, str], what: str) -> dict[str, Any]:
    """Run ``script --worker ARGS`` in a child process; what it printed last, as JSON."""
    import json
    import sys

    done = subprocess.run([sys.executable, str(script), "--worker", *args], env=env,
                          capture_output=True, text=True, check=False)
    lines = done.stdout.strip().splitlines()
    if done.returncode != 0 or not lines:
        raise SystemExit(f"{what} failed:\n{done.stderr}")
    result: dict[str, Any] = json.loads(lines[-1])
    return result


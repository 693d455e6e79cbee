"""Databricks credentials through databricks-sdk: what they cost per call and at start.

- Per call: median time of a sequential chat with a personal access token given directly, and
  with the same token through a ``WorkspaceClient`` (the SDK's headers are cached, so the two
  should match).
- Concurrency: 64 threads and 64 asyncio tasks make their first call at once through one client
  with OAuth M2M from the SDK; how often the SDK was asked for credentials and how many tokens
  the workspace minted (target: 1 and 1).
- Start: importing ``sfmodels_core.databricks`` (the SDK stays unimported), and building a
  client with the SDK's default authentication (which imports the SDK and resolves a profile).

    python benchmarks/databricks_sdk_auth.py [--calls 300]
"""

from __future__ import annotations

import argparse
import asyncio
import subprocess
import sys
import threading
import time
from pathlib import Path

from _common import LLAMA, emulator, median_us, table

from sfmodels_core import DatabricksClient

HI = [{"role": "user", "content": "hi"}]
ROOT = Path(__file__).resolve().parents[1]


def seconds(code: str) -> tuple[float, str]:
    start = time.perf_counter()
    out = subprocess.run([sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True,
                         check=True)
    return time.perf_counter() - start, out.stdout.strip()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--calls", type=int, default=300)
    args = parser.parse_args()
    try:
        from databricks.sdk import WorkspaceClient
    except ImportError:
        sys.exit("install the databricks-sdk extra first: pip install -e '.[databricks-sdk]'")
    with emulator() as emu:
        direct = DatabricksClient(host=emu.url, api_key=emu.databricks_token, env={})
        via_sdk = DatabricksClient(workspace_client=WorkspaceClient(
            host=emu.url, token=emu.databricks_token))
        for client in (direct, via_sdk):
            client.chat(LLAMA, HI)
        table("per call, sequential chat, zero latency (median)", ("credentials", "µs"), [
            ("api_key", median_us(lambda: direct.chat(LLAMA, HI), args.calls)),
            ("workspace_client (PAT)", median_us(lambda: via_sdk.chat(LLAMA, HI), args.calls)),
        ])

        wc = WorkspaceClient(host=emu.url, client_id=emu.databricks_client_id,
                             client_secret=emu.databricks_client_secret, auth_type="oauth-m2m")
        asked = 0
        authenticate = wc.config.authenticate

        def counted() -> dict[str, str]:
            nonlocal asked
            asked += 1
            return authenticate()  # type: ignore[no-any-return]

        wc.config.authenticate = counted  # type: ignore[method-assign]
        minted_before = emu.counters()["tokens_minted"]["databricks"]
        client = DatabricksClient(workspace_client=wc)
        barrier = threading.Barrier(65)

        def thread() -> None:
            barrier.wait()
            client.chat(LLAMA, HI)

        async def tasks() -> None:
            barrier.wait()
            await asyncio.gather(*(client.achat(LLAMA, HI) for _ in range(64)))
            await client.aclose()

        threads = [threading.Thread(target=thread) for _ in range(64)]
        for t in threads:
            t.start()
        asyncio.run(tasks())
        for t in threads:
            t.join()
        minted = emu.counters()["tokens_minted"]["databricks"] - minted_before
        table("128 first calls at once (64 threads + 64 tasks), OAuth M2M through the SDK",
              ("SDK asked", "tokens minted"), [(asked, minted)])

    import_time, imported = seconds(
        "import sys, sfmodels_core.databricks; print('databricks.sdk' in sys.modules)")
    table("start", ("what", "s", "note"), [
        ("import sfmodels_core.databricks", import_time, f"databricks.sdk imported: {imported}"),
        ("import databricks.sdk (paid only when the SDK is used)",
         seconds("import databricks.sdk.core")[0], ""),
    ])


if __name__ == "__main__":
    main()

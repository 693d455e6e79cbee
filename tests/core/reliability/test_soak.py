"""A bounded soak: clients created and closed, streams left and cancelled midway, on every
sender, round after round; open files, threads and memory come back to where they started."""

from __future__ import annotations

import asyncio
import gc
import os
import threading
import time

import pytest

from sfmodels_core import DatabricksClient
from sfmodels_emulator import Emulator

LLAMA = "databricks-meta-llama-3-3-70b-instruct"
USER = [{"role": "user", "content": "Write a long story about the sea"}]
ROUNDS = 40

pytestmark = pytest.mark.skipif(not os.path.isdir("/proc/self/fd"),
                                reason="counts open files through /proc")


def usage() -> tuple[int, int, int]:
    """Open files, threads, resident memory in bytes."""
    with open("/proc/self/statm") as statm:
        rss = int(statm.read().split()[1]) * os.sysconf("SC_PAGE_SIZE")
    return len(os.listdir("/proc/self/fd")), threading.active_count(), rss


def settled(baseline: tuple[int, int, int]) -> tuple[int, int, int]:
    """Usage once closed connections are gone on both ends (the emulator's too), within 5 s."""
    deadline = time.monotonic() + 5
    while True:
        gc.collect()
        now = usage()
        if (now[0] <= baseline[0] and now[1] <= baseline[1]) or time.monotonic() > deadline:
            return now
        time.sleep(0.05)


def sync_round(emu: Emulator) -> None:
    with DatabricksClient(host=emu.databricks_host, api_key=emu.databricks_token,
                          env={}) as client:
        assert client.chat(LLAMA, USER).text
        for _ in client.stream_chat(LLAMA, USER):
            break  # left midway


async def async_round(emu: Emulator, sender: str) -> None:
    client = DatabricksClient(host=emu.databricks_host, api_key=emu.databricks_token, env={},
                              async_http=sender)
    try:
        assert (await client.achat(LLAMA, USER)).text
        async for _ in client.astream_chat(LLAMA, USER):
            break  # left midway

        started = asyncio.Event()

        async def consume() -> None:
            async for _ in client.astream_chat(LLAMA, USER):
                started.set()
                await asyncio.sleep(10)

        task = asyncio.create_task(consume())
        await started.wait()
        task.cancel()  # cancelled midway
        with pytest.raises(asyncio.CancelledError):
            await task
    finally:
        await client.aclose()


def test_nothing_leaks_over_many_rounds(emulator: Emulator) -> None:
    emulator.configure(latency_ms=0)

    def one_round() -> None:
        sync_round(emulator)
        for sender in ("httpx", "aiohttp"):
            asyncio.run(async_round(emulator, sender))

    one_round()  # warm: imports, TLS contexts, the emulator's own buffers
    baseline = settled(usage())
    for _ in range(ROUNDS):
        one_round()
    files, threads, rss = settled(baseline)
    assert files <= baseline[0], f"open files {baseline[0]} -> {files}"
    assert threads <= baseline[1], f"threads {baseline[1]} -> {threads}"
    assert rss - baseline[2] < 32 * 2**20, f"memory grew by {(rss - baseline[2]) / 2**20:.1f} MB"
    assert emulator.counters()["in_flight"] == 0


def test_a_client_dropped_without_close_closes_its_connections(emulator: Emulator) -> None:
    import warnings

    with warnings.catch_warnings(record=True) as seen:
        warnings.simplefilter("always")
        client = DatabricksClient(host=emulator.databricks_host,
                                  api_key=emulator.databricks_token, env={})
        assert client.chat(LLAMA, USER).text
        del client
        gc.collect()
    assert [w for w in seen if issubclass(w.category, ResourceWarning)] == []

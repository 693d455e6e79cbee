"""Client-side cost of one call: the core clients against an in-memory MockTransport.

No network and no server, so what is measured is our own work per call (building the request,
auth, the retry loop, httpx, JSON, parsing). Prints the median and p90 over many calls.

    python benchmarks/core_overhead.py [--calls 3000]
"""

from __future__ import annotations

import argparse
import json
import statistics
import time
from collections.abc import Callable

import httpx

from sfmodels_core import DatabricksClient, SalesforceClient

SF_CHAT = json.dumps({"id": "chatcmpl-1", "generationDetails": {
    "generations": [{"id": "gen-1", "role": "assistant", "content": "Hello there!",
                     "timestamp": 1, "parameters": {"finish_reason": "stop", "index": 0},
                     "contentQuality": {"scanToxicity": {"isDetected": False, "categories": [
                         {"categoryName": "profanity", "score": 0.0}]}}}],
    "parameters": {"model": "gpt-4o-mini", "usage": {
        "prompt_tokens": 5, "completion_tokens": 3, "total_tokens": 8}}}}).encode()
DBX_CHAT = json.dumps({"id": "chatcmpl_1", "model": "llama", "choices": [
    {"index": 0, "message": {"role": "assistant", "content": "Hello there!"},
     "finish_reason": "stop"}],
    "usage": {"prompt_tokens": 5, "completion_tokens": 3, "total_tokens": 8}}).encode()


def measure(call: Callable[[], object], calls: int) -> tuple[float, float]:
    for _ in range(200):  # warm up pools, caches and the token
        call()
    samples = []
    for _ in range(calls):
        start = time.perf_counter_ns()
        call()
        samples.append((time.perf_counter_ns() - start) / 1000)
    samples.sort()
    return statistics.median(samples), samples[int(len(samples) * 0.9)]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--calls", type=int, default=3000)
    args = parser.parse_args()

    def answer(body: bytes) -> httpx.MockTransport:
        return httpx.MockTransport(lambda request: httpx.Response(
            200, content=body, headers={"content-type": "application/json"}))

    sf = SalesforceClient(api_key="token", env={}, transport=answer(SF_CHAT))
    dbx = DatabricksClient(host="https://h.example.test", api_key="token", env={},
                           transport=answer(DBX_CHAT))
    msgs = [{"role": "user", "content": "Say hello"}]
    raw = httpx.Client(transport=answer(DBX_CHAT))
    rows = [
        ("httpx alone (POST + json())", lambda: raw.post(
            "https://h.example.test/x", json={"messages": msgs}).json()),
        ("SalesforceClient.chat", lambda: sf.chat("sfdc_ai__DefaultGPT4Omni", msgs)),
        ("DatabricksClient.chat", lambda: dbx.chat("databricks-llama", msgs)),
    ]
    print(f"{'call':<32}{'median µs':>12}{'p90 µs':>10}")
    for name, call in rows:
        median, p90 = measure(call, args.calls)
        print(f"{name:<32}{median:>12.1f}{p90:>10.1f}")


if __name__ == "__main__":
    main()

"""Scenario 1: bulk embedding of 3,000 texts at 50 ms latency, endpoint max batch 150.

Ours vs databricks-langchain's DatabricksEmbeddings.embed_documents, ours vs LlamaIndex's
DatabricksEmbedding.get_text_embedding_batch, against a floor: the faster of two minimal raw
httpx scripts (threads, asyncio) with the same batch size and concurrency. Target: within 1.2x
of the floor.

    python benchmarks/bulk_embedding.py [--texts 3000] [--latency-ms 50] [--concurrency 4]
"""

from __future__ import annotations

import argparse
import asyncio
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import httpx
from _common import GTE, best_of, emulator, peer, table

BATCH = 150


def texts(n: int) -> list[str]:
    return [f"Document {i} discusses topic {i % 97} and the related subject {i % 13}."
            for i in range(n)]


def floor_threads(emu: Any, items: list[str], concurrency: int) -> list[list[float]]:
    """A minimal sync script: batches of 150 on ``concurrency`` threads sharing one client."""
    url = f"{emu.databricks_host}/serving-endpoints/{GTE}/invocations"
    headers = {"Authorization": f"Bearer {emu.databricks_token}"}
    with httpx.Client(headers=headers, timeout=60) as client, \
            ThreadPoolExecutor(concurrency) as pool:
        def one(batch: list[str]) -> list[list[float]]:
            response = client.post(url, json={"input": batch})
            return [d["embedding"] for d in response.json()["data"]]

        parts = pool.map(one, [items[i:i + BATCH] for i in range(0, len(items), BATCH)])
        return [v for part in parts for v in part]


def floor_async(emu: Any, items: list[str], concurrency: int) -> list[list[float]]:
    """A minimal asyncio script: batches of 150, ``concurrency`` in flight."""
    url = f"{emu.databricks_host}/serving-endpoints/{GTE}/invocations"
    headers = {"Authorization": f"Bearer {emu.databricks_token}"}

    async def run() -> list[list[float]]:
        limit = asyncio.Semaphore(concurrency)
        async with httpx.AsyncClient(headers=headers, timeout=60) as client:
            async def one(batch: list[str]) -> list[list[float]]:
                async with limit:
                    response = await client.post(url, json={"input": batch})
                    return [d["embedding"] for d in response.json()["data"]]

            parts = await asyncio.gather(*(one(items[i:i + BATCH])
                                           for i in range(0, len(items), BATCH)))
        return [v for part in parts for v in part]

    return asyncio.run(run())


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--texts", type=int, default=3000)
    parser.add_argument("--latency-ms", type=float, default=50)
    parser.add_argument("--concurrency", type=int, default=4)
    parser.add_argument("--repeat", type=int, default=3)
    args = parser.parse_args()
    items = texts(args.texts)
    with emulator(latency_ms=args.latency_ms, embedding_max_batch=BATCH) as emu:
        creds = {"host": emu.databricks_host, "api_key": emu.databricks_token}
        threads = best_of(lambda: floor_threads(emu, items, args.concurrency), args.repeat)
        tasks = best_of(lambda: floor_async(emu, items, args.concurrency), args.repeat)
        base = min(threads, tasks)  # the floor is the faster of the two minimal scripts
        rows: list[tuple[Any, ...]] = [("raw httpx, threads", threads, threads / base),
                                       ("raw httpx, asyncio", tasks, tasks / base)]

        from langchain_sfmodels import DatabricksEmbeddings as OurLC
        ours_lc = OurLC(endpoint=GTE, max_concurrency=args.concurrency, **creds)
        assert len(ours_lc.embed_documents(items[:3])) == 3
        t = best_of(lambda: ours_lc.embed_documents(items), args.repeat)
        rows.append(("langchain_sfmodels.DatabricksEmbeddings", t, t / base))

        def peer_lc() -> Any:
            from databricks_langchain import DatabricksEmbeddings
            return DatabricksEmbeddings(endpoint=GTE)

        theirs = peer(peer_lc)
        t = best_of(lambda: theirs.embed_documents(items), args.repeat) if theirs else None
        rows.append(("databricks_langchain.DatabricksEmbeddings", t, t and t / base))

        from llama_index_sfmodels import DatabricksEmbedding as OurLI
        ours_li = OurLI(endpoint=GTE, num_workers=args.concurrency, **creds)
        t = best_of(lambda: ours_li.get_text_embedding_batch(items), args.repeat)
        rows.append(("llama_index_sfmodels.DatabricksEmbedding", t, t / base))

        def peer_li() -> Any:
            from llama_index.embeddings.databricks import DatabricksEmbedding
            return DatabricksEmbedding(model=GTE, api_key=emu.databricks_token,
                                       endpoint=f"{emu.databricks_host}/serving-endpoints")

        theirs_li = peer(peer_li)
        t = (best_of(lambda: theirs_li.get_text_embedding_batch(items), 1)
             if theirs_li else None)
        rows.append(("llama_index.embeddings.databricks.DatabricksEmbedding", t,
                     t and t / base))
    table(f"Bulk embedding: {args.texts} texts, {args.latency_ms:.0f} ms latency, batch {BATCH}, "
          f"concurrency {args.concurrency} (best of {args.repeat})",
          ("client", "seconds", "x floor"), rows)


if __name__ == "__main__":
    main()

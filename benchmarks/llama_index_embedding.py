"""LlamaIndex bulk paths: ``get_text_embedding_batch`` against the core's ``embed``, before and
after hand-offs were served from whole-segment jobs, in one run.

Against the emulator in its own process (50 ms latency), runs interleaved, best of ``--repeat``:

- the core client's ``embed`` / ``aembed`` of the same texts (requests of 150, its default, and
  of 128, the size the LlamaIndex class now sends);
- ``DatabricksEmbedding.get_text_embedding_batch`` and ``aget_text_embedding_batch``, *before*:
  LlamaIndex's own methods with every hand-off sent as its own core ``embed``, at the earlier
  defaults (hand-offs of 600, requests of 150), which is what the class did; *after*: the class
  as it is (hand-offs of 512, requests of 128, one job per segment);
- the class after with ``request_batch_size=150`` too, which takes the request size out of the
  comparison: the default's requests of 128 divide the hand-off (and the insert batch) evenly but
  are more requests, and each waits the emulator's fixed latency;
- the same for ``SalesforceEmbedding`` (earlier hand-off 64, now 512; requests of 16), with the
  client's own pacing switched off so that the emulator, not the documented limit, sets the pace,
  and asynchronously with ``num_workers=16`` (the earlier async method had every hand-off in
  flight at once);
- ``VectorStoreIndex`` over 4,096 nodes (two insert batches of 2,048): the requests each insert
  batch made and their sizes;
- the peer, ``llama-index-embeddings-databricks``, when installed.

The ``max in flight`` column is the emulator's count: ``num_workers`` (4) is what each call
should keep in flight.

    python benchmarks/llama_index_embedding.py [--texts 10000] [--sf-texts 2048] [--repeat 5]
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import time
from collections.abc import Callable
from typing import Any

import httpx
from _common import GTE, emulator, peer, table
from llama_index.core import VectorStoreIndex
from llama_index.core.schema import TextNode

from llama_index_sfmodels import DatabricksEmbedding, SalesforceEmbedding
from llama_index_sfmodels._bulk import WholeList
from sfmodels_core import DatabricksClient, SalesforceClient

ADA = "sfdc_ai__DefaultOpenAITextEmbeddingAda_002"
UNPACED = 10.0**9  # requests a minute: the client's pacing out of the way


def texts(n: int) -> list[str]:
    return [f"Document {i} discusses topic {i % 97} and the related subject {i % 13}."
            for i in range(n)]


class DatabricksBefore(DatabricksEmbedding):
    """The class as it was: LlamaIndex's own batch methods, each hand-off its own core call."""

    def get_text_embedding_batch(self, texts: list[str], show_progress: bool = False,
                                 **kwargs: Any) -> list[list[float]]:
        return super(WholeList, self).get_text_embedding_batch(texts, show_progress, **kwargs)

    async def aget_text_embedding_batch(self, texts: list[str], show_progress: bool = False,
                                        **kwargs: Any) -> list[list[float]]:
        return await super(WholeList, self).aget_text_embedding_batch(texts, show_progress,
                                                                      **kwargs)


class SalesforceBefore(SalesforceEmbedding):
    get_text_embedding_batch = DatabricksBefore.get_text_embedding_batch
    aget_text_embedding_batch = DatabricksBefore.aget_text_embedding_batch


class Runs:
    """Variants timed in turn, ``repeat`` rounds; the best time and the most in flight of each."""

    def __init__(self, emu: Any) -> None:
        self.emu = emu
        self.variants: list[tuple[str, Callable[[], Any]]] = []
        self.best: dict[str, float] = {}
        self.in_flight: dict[str, int] = {}

    def add(self, name: str, fn: Callable[[], Any]) -> None:
        fn()  # warm: token, connections
        self.variants.append((name, fn))

    def run(self, repeat: int) -> None:
        for _ in range(repeat):
            for name, fn in self.variants:
                self.emu.reset()
                self.emu.configure(latency_ms=self.latency_ms)
                started = time.perf_counter()
                fn()
                elapsed = time.perf_counter() - started
                self.best[name] = min(elapsed, self.best.get(name, elapsed))
                flight = int(self.emu.counters()["max_in_flight"])
                self.in_flight[name] = max(flight, self.in_flight.get(name, 0))

    latency_ms = 50.0


class Sizes(httpx.HTTPTransport):
    """Records how many texts each embeddings request carried."""

    def __init__(self) -> None:
        super().__init__()
        self.sizes: list[int] = []

    def handle_request(self, request: httpx.Request) -> httpx.Response:
        if request.content:
            body = json.loads(request.content)
            if isinstance(body, dict) and isinstance(body.get("input"), list):
                self.sizes.append(len(body["input"]))
        return super().handle_request(request)


def per_insert_batch(sizes: list[int], batch: int) -> list[list[int]]:
    out: list[list[int]] = [[]]
    count = 0
    for size in sizes:
        if count == batch:
            out.append([])
            count = 0
        out[-1].append(size)
        count += size
    return out


def describe(sizes: list[int]) -> str:
    groups: dict[int, int] = {}
    for size in sizes:
        groups[size] = groups.get(size, 0) + 1
    return " + ".join(f"{n}x{size}" for size, n in sorted(groups.items(), reverse=True))


def index_rows(emu: Any, nodes: int) -> list[tuple[Any, ...]]:
    rows: list[tuple[Any, ...]] = []
    items = [TextNode(text=text) for text in texts(nodes)]
    for label, hand_off, size in (("before", 600, 150), ("after", 512, 128)):
        sizes = Sizes()
        client = DatabricksClient(host=emu.databricks_host, api_key=emu.databricks_token,
                                  env={}, batch_size=size, transport=sizes)
        kind = DatabricksBefore if label == "before" else DatabricksEmbedding
        model = kind(endpoint=GTE, embed_batch_size=hand_off, client=client)
        emu.reset()
        emu.configure(latency_ms=Runs.latency_ms)
        started = time.perf_counter()
        VectorStoreIndex(nodes=[n.model_copy() for n in items], embed_model=model)
        elapsed = time.perf_counter() - started
        batches = per_insert_batch(sizes.sizes, 2048)
        rows.append((f"{label}: hand-off {hand_off}, requests of {size}", elapsed,
                     " | ".join(f"{len(b)} requests: {describe(b)}" for b in batches)))
        client.close()
    return rows


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--texts", type=int, default=10_000)
    parser.add_argument("--sf-texts", type=int, default=2048)
    parser.add_argument("--nodes", type=int, default=4096)
    parser.add_argument("--latency-ms", type=float, default=50)
    parser.add_argument("--repeat", type=int, default=5)
    args = parser.parse_args()
    Runs.latency_ms = args.latency_ms
    items, sf_items = texts(args.texts), texts(args.sf_texts)
    print(f"load average at start: {os.getloadavg()[0]:.2f} ({os.cpu_count()} cores)")
    with emulator(latency_ms=args.latency_ms) as emu:
        dbx = {"host": emu.databricks_host, "api_key": emu.databricks_token}
        sf = {"domain": emu.salesforce_domain, "client_id": emu.salesforce_client_id,
              "client_secret": emu.salesforce_client_secret}
        core = DatabricksClient(env={}, **dbx)
        core128 = DatabricksClient(env={}, batch_size=128, **dbx)
        before = DatabricksBefore(endpoint=GTE, embed_batch_size=600, request_batch_size=150,
                                  **dbx)
        after = DatabricksEmbedding(endpoint=GTE, **dbx)
        after150 = DatabricksEmbedding(endpoint=GTE, request_batch_size=150, **dbx)
        sf_core = SalesforceClient(env={}, requests_per_minute=UNPACED, **sf)
        sf_before = SalesforceBefore(embed_batch_size=64, requests_per_minute=UNPACED, **sf)
        sf_after = SalesforceEmbedding(requests_per_minute=UNPACED, **sf)
        sf_after16 = SalesforceEmbedding(requests_per_minute=UNPACED, num_workers=16, **sf)

        runs = Runs(emu)
        runs.add("core embed, requests of 150", lambda: core.embed(GTE, items))
        runs.add("core embed, requests of 128", lambda: core128.embed(GTE, items))
        runs.add("get_text_embedding_batch, before",
                 lambda: before.get_text_embedding_batch(items))
        runs.add("get_text_embedding_batch, after", lambda: after.get_text_embedding_batch(items))
        runs.add("get_text_embedding_batch, after, 150",
                 lambda: after150.get_text_embedding_batch(items))
        runs.add("core aembed, requests of 150", lambda: asyncio.run(core.aembed(GTE, items)))
        runs.add("aget_text_embedding_batch, before",
                 lambda: asyncio.run(before.aget_text_embedding_batch(items)))
        runs.add("aget_text_embedding_batch, after",
                 lambda: asyncio.run(after.aget_text_embedding_batch(items)))
        runs.add("aget_text_embedding_batch, after, 150",
                 lambda: asyncio.run(after150.aget_text_embedding_batch(items)))
        runs.add("sf core embed", lambda: sf_core.embed(ADA, sf_items))
        runs.add("sf get_text_embedding_batch, before",
                 lambda: sf_before.get_text_embedding_batch(sf_items))
        runs.add("sf get_text_embedding_batch, after",
                 lambda: sf_after.get_text_embedding_batch(sf_items))
        runs.add("sf core aembed", lambda: asyncio.run(sf_core.aembed(ADA, sf_items)))
        runs.add("sf aget_text_embedding_batch, before",
                 lambda: asyncio.run(sf_before.aget_text_embedding_batch(sf_items)))
        runs.add("sf aget_text_embedding_batch, after",
                 lambda: asyncio.run(sf_after.aget_text_embedding_batch(sf_items)))
        runs.add("sf aget_text_embedding_batch, after, 16",
                 lambda: asyncio.run(sf_after16.aget_text_embedding_batch(sf_items)))

        def peer_li() -> Any:
            from llama_index.embeddings.databricks import (  # type: ignore[import-not-found]
                DatabricksEmbedding as Peer,
            )
            return Peer(model=GTE, api_key=emu.databricks_token,
                        endpoint=f"{emu.databricks_host}/serving-endpoints")

        theirs = peer(peer_li)
        if theirs is not None:
            runs.add("llama-index-embeddings-databricks",
                     lambda: theirs.get_text_embedding_batch(items))
        runs.run(args.repeat)
        index = index_rows(emu, args.nodes)

    best, flight = runs.best, runs.in_flight

    def rows(ref: str, *names: tuple[str, str]) -> list[tuple[Any, ...]]:
        return [(label, best[name], best[name] / best[ref], flight[name])
                for label, name in names]

    dbx_rows = rows("core embed, requests of 150",
                    ("core embed (requests of 150)", "core embed, requests of 150"),
                    ("core embed (requests of 128)", "core embed, requests of 128"),
                    ("get_text_embedding_batch, before", "get_text_embedding_batch, before"),
                    ("get_text_embedding_batch, after", "get_text_embedding_batch, after"),
                    ("get_text_embedding_batch, after, request_batch_size=150",
                     "get_text_embedding_batch, after, 150"))
    if theirs is None:
        dbx_rows.append(("llama-index-embeddings-databricks", "not installed", None, None))
    else:
        dbx_rows += rows("core embed, requests of 150", ("llama-index-embeddings-databricks",
                                                        "llama-index-embeddings-databricks"))
    dbx_rows += rows("core aembed, requests of 150",
                     ("core aembed (requests of 150)", "core aembed, requests of 150"),
                     ("aget_text_embedding_batch, before", "aget_text_embedding_batch, before"),
                     ("aget_text_embedding_batch, after", "aget_text_embedding_batch, after"),
                     ("aget_text_embedding_batch, after, request_batch_size=150",
                      "aget_text_embedding_batch, after, 150"))
    table(f"DatabricksEmbedding, {args.texts:,} texts, {args.latency_ms:.0f} ms latency "
          f"(best of {args.repeat}; x core: to the core call, sync or async, of requests of 150)",
          ("call", "seconds", "x core", "max in flight"), dbx_rows)
    sf_rows = rows("sf core embed",
                   ("core embed (requests of 16)", "sf core embed"),
                   ("get_text_embedding_batch, before (hand-off 64)",
                    "sf get_text_embedding_batch, before"),
                   ("get_text_embedding_batch, after (hand-off 512)",
                    "sf get_text_embedding_batch, after"))
    sf_rows += rows("sf core aembed",
                    ("core aembed", "sf core aembed"),
                    ("aget_text_embedding_batch, before", "sf aget_text_embedding_batch, before"),
                    ("aget_text_embedding_batch, after", "sf aget_text_embedding_batch, after"),
                    ("aget_text_embedding_batch, after, num_workers=16",
                     "sf aget_text_embedding_batch, after, 16"))
    table(f"SalesforceEmbedding, {args.sf_texts:,} texts (best of {args.repeat})",
          ("call", "seconds", "x core", "max in flight"), sf_rows)
    table(f"VectorStoreIndex over {args.nodes:,} nodes (insert batches of 2,048), "
          "DatabricksEmbedding", ("model", "seconds", "each insert batch"), index)


if __name__ == "__main__":
    main()

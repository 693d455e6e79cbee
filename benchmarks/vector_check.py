"""What checking every vector costs, beside what reading it costs, and in a bulk embed call.

Every vector a service sends is checked (``sfmodels_core.vectors``): a non-empty flat list of
finite numbers, or base64 of finite float32, of the job's dimension. This prints, per vector of
an answer of 150 vectors of 1,024 dimensions:

- lists (the default): reading the body with ``pydantic_core.from_json``, and the check: a
  ``memchr`` of the body for the letters of ``true`` and ``false`` (a bool is the one thing a
  sum takes that is not a number), then a sum of each vector in C (null, strings and lists
  raise; NaN and infinities make it NaN or infinite). A body that spells ``true`` or ``false``
  somewhere gets the full check instead, ``pydantic_core``'s strict float list in one pass,
  shown too;
- compact, lists on the wire: reading and packing into float32, and the check: the same
  ``memchr``, then NaN and infinities looked for in the packed bytes (``struct`` refuses the
  rest as it packs), or the full check before packing;
- compact, base64: reading and decoding, and the check of the float32 bytes (every fourth
  byte, the one with the exponent's top bits, searched for 0x7F and 0xFF with ``memchr``);

then one ``DatabricksClient.embed`` call of ``--texts`` texts against the emulator in its own
process (50 ms latency, batches of 150, 4 in flight, as ``bulk_embedding.py``), with the
checks and with them replaced by no-ops, runs alternated, best of ``--repeat`` each; and what
the checks' measured cost per vector is of that call's time per text.

    PYTHONPATH=. python benchmarks/vector_check.py [--texts 3000] [--repeat 7]
"""

from __future__ import annotations

import argparse
import base64
import contextlib
import gc
import random
import statistics
import time
from array import array
from collections.abc import Callable, Iterator
from typing import Any

import pydantic_core
from _common import GTE, emulator, table

from sfmodels_core import DatabricksClient
from sfmodels_core import bulk as bulk_module
from sfmodels_core import vectors as vectors_module
from sfmodels_core.vectors import VectorCheck, VectorSink, check_float32, may_hold_bools

COUNT, DIM, BATCH = 150, 1024, 150


def bodies() -> tuple[bytes, bytes]:
    rng = random.Random(1)
    vectors = [[round(rng.gauss(0, 0.03), 8) for _ in range(DIM)] for _ in range(COUNT)]
    as_json = pydantic_core.to_json({"data": [
        {"object": "embedding", "index": i, "embedding": v} for i, v in enumerate(vectors)]})
    as_base64 = pydantic_core.to_json({"data": [
        {"object": "embedding", "index": i,
         "embedding": base64.b64encode(array("f", v).tobytes()).decode()}
        for i, v in enumerate(vectors)]})
    return as_json, as_base64


def per_vector_us(work: Callable[[], Any], repeat: int = 25) -> float:
    best = float("inf")
    for _ in range(repeat):
        gc.collect()
        start = time.perf_counter()
        work()
        best = min(best, time.perf_counter() - start)
    return best / COUNT * 1e6


@contextlib.contextmanager
def checks_off() -> Iterator[None]:
    """The checks replaced by no-ops (what the client did before it had them)."""
    saved = (vectors_module.check_list, vectors_module.check_float32,
             bulk_module.may_hold_bools)
    vectors_module.check_list = lambda vector, index, bools=True: None  # type: ignore[assignment]
    vectors_module.check_float32 = lambda data, index: None  # type: ignore[assignment]
    bulk_module.may_hold_bools = lambda content: False  # type: ignore[assignment]
    try:
        yield
    finally:
        (vectors_module.check_list, vectors_module.check_float32,
         bulk_module.may_hold_bools) = saved


def reading(as_json: bytes, as_base64: bytes) -> list[tuple[Any, ...]]:
    lists = [item["embedding"] for item in pydantic_core.from_json(as_json)["data"]]
    strings = [item["embedding"] for item in pydantic_core.from_json(as_base64)["data"]]
    raw = [vectors_module.decode_base64(s) for s in strings]
    indices = list(range(COUNT))

    def read_lists() -> None:
        pydantic_core.from_json(as_json)

    def check_lists() -> None:
        VectorCheck().lists(indices, lists, may_hold_bools(as_json))

    def check_lists_fully() -> None:
        VectorCheck().lists(indices, lists, True)

    def pack() -> None:
        with checks_off():
            VectorSink(COUNT).put(indices, lists, False)

    def pack_checked() -> None:
        VectorSink(COUNT).put(indices, lists, may_hold_bools(as_json))

    def pack_fully_checked() -> None:
        VectorSink(COUNT).put(indices, lists, True)

    def read_base64() -> None:
        for item in pydantic_core.from_json(as_base64)["data"]:
            vectors_module.decode_base64(item["embedding"])

    def check_base64() -> None:
        for index, data in enumerate(raw):
            check_float32(data, index)

    decode, check, full = (per_vector_us(f) for f in (read_lists, check_lists,
                                                      check_lists_fully))
    packing = per_vector_us(pack)
    packed, packed_fully = per_vector_us(pack_checked) - packing, \
        per_vector_us(pack_fully_checked) - packing
    decode64, check64 = per_vector_us(read_base64), per_vector_us(check_base64)
    return [
        ("lists", "from_json", decode, "memchr of the body + sum", check, check / decode),
        ("lists, body spelling a bool", "from_json", decode, "strict float list", full,
         full / decode),
        ("compact, lists on the wire", "from_json + struct pack", decode + packing,
         "memchr of the body + of the packed bytes", packed, packed / (decode + packing)),
        ("compact, lists, body spelling a bool", "from_json + struct pack", decode + packing,
         "strict float list", packed_fully, packed_fully / (decode + packing)),
        ("compact, base64", "from_json + base64 decode", decode64, "memchr of top bytes",
         check64, check64 / decode64),
    ]


def bulk(texts: int, repeat: int) -> list[tuple[Any, ...]]:
    items = [f"Document {i} discusses topic {i % 97} and the related subject {i % 13}."
             for i in range(texts)]
    rows: list[tuple[Any, ...]] = []
    with emulator(latency_ms=50, embedding_max_batch=BATCH) as emu:
        for compact, base64_mode in ((False, "honor"), (True, "ignore"), (True, "honor")):
            emu.configure(embedding_base64=base64_mode)
            wall = {True: float("inf"), False: float("inf")}
            cpu: dict[bool, list[float]] = {True: [], False: []}
            with DatabricksClient(host=emu.databricks_host, api_key=emu.databricks_token,
                                  env={}, max_concurrency=4) as client:
                client.embed(GTE, items[:BATCH], compact=compact)  # connections and caches
                for _ in range(repeat):
                    for checked in (True, False):
                        with contextlib.nullcontext() if checked else checks_off():
                            gc.collect()
                            start, used = time.perf_counter(), time.process_time()
                            client.embed(GTE, items, compact=compact)
                            cpu[checked].append(time.process_time() - used)
                            wall[checked] = min(wall[checked], time.perf_counter() - start)
            label = ("lists" if not compact else
                     f"compact, {'base64' if base64_mode == 'honor' else 'lists on the wire'}")
            cpu_on, cpu_off = (statistics.median(cpu[k]) / texts * 1e6 for k in (True, False))
            rows.append((label, wall[False], wall[True],
                         (wall[True] - wall[False]) / wall[False], wall[True] / texts * 1e6,
                         cpu_off, cpu_on, cpu_on - cpu_off))
    return rows


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--texts", type=int, default=3000)
    parser.add_argument("--repeat", type=int, default=7)
    args = parser.parse_args()
    as_json, as_base64 = bodies()
    read = reading(as_json, as_base64)
    table(f"The check beside the reading, per vector ({COUNT} vectors of {DIM} dimensions)",
          ("vectors", "read by", "µs to read", "checked by", "µs to check", "check / read"),
          read)
    calls = bulk(args.texts, args.repeat)
    table(f"One embed call of {args.texts} texts, 50 ms latency, batches of {BATCH}, 4 in "
          f"flight (checks on and off alternated; seconds: best of {args.repeat}, client CPU: "
          "median)",
          ("vectors", "s, no checks", "s, checked", "difference", "µs per text, checked",
           "CPU µs/text, no checks", "checked", "difference"), calls)
    typical = [row for row in read if "bool" not in row[0]]  # the rows the calls measure
    shares = [(label, check, per_text, check / per_text)
              for (label, *_, check, _), (_, _, _, _, per_text, *_) in zip(typical, calls,
                                                                           strict=True)]
    table("The check's µs per vector (measured alone), of the checked call's µs per text",
          ("vectors", "µs to check", "µs per text of the call", "share"), shares)


if __name__ == "__main__":
    main()

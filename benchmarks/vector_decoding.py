"""The ways to read one embeddings response into float32, per vector, side by side.

A Databricks answer of 150 vectors of 1,024 dimensions, as JSON numbers (dense, as real models
send) and as base64 (``encoding_format: "base64"``), read by:

- pydantic_core's JSON parser into lists (what the default path keeps);
- the same, then packed into float32 (struct, array, numpy): what ``compact=True`` does with
  lists on the wire;
- finding each vector's text in the body and parsing the numbers without the JSON parser
  (``float()`` per number, or numpy's text reader): no faster, since pydantic_core's number
  parsing beats both;
- base64, with the standard library's codec and with pybase64's.

    python benchmarks/vector_decoding.py
"""

from __future__ import annotations

import base64
import binascii
import gc
import random
import re
import struct
import time
import warnings
from array import array
from collections.abc import Callable
from typing import Any

import pydantic_core
from _common import table

COUNT, DIM = 150, 1024
VECTOR = re.compile(rb'"embedding"\s*:\s*\[([^\]]*)\]')


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


def per_vector_us(read: Callable[[bytes], Any], body: bytes, repeat: int = 15) -> float:
    best = float("inf")
    for _ in range(repeat):
        gc.collect()  # the garbage of the previous read is not this one's cost
        start = time.perf_counter()
        read(body)
        best = min(best, time.perf_counter() - start)
    return best / COUNT * 1e6


def main() -> None:
    as_json, as_base64 = bodies()
    pack = struct.Struct(f"={DIM}f")

    def lists(body: bytes) -> list[Any]:
        return [item["embedding"] for item in pydantic_core.from_json(body)["data"]]

    def lists_struct(body: bytes) -> bytearray:
        out = bytearray(COUNT * pack.size)
        for i, vector in enumerate(lists(body)):
            pack.pack_into(out, i * pack.size, *vector)
        return out

    def lists_array(body: bytes) -> list[array[float]]:
        return [array("f", vector) for vector in lists(body)]

    def regex_float(body: bytes) -> array[float]:
        out = array("f")
        for match in VECTOR.finditer(body):
            out.extend(map(float, match.group(1).split(b",")))
        return out

    def base64_with(decode: Callable[[str], bytes]) -> Callable[[bytes], bytearray]:
        def read(body: bytes) -> bytearray:
            out = bytearray()
            for item in pydantic_core.from_json(body)["data"]:
                out += decode(item["embedding"])
            return out
        return read

    rows: list[tuple[Any, ...]] = [
        ("JSON numbers", "pydantic_core.from_json -> lists (the default)",
         per_vector_us(lists, as_json)),
        ("JSON numbers", "the same, packed with struct (compact=True)",
         per_vector_us(lists_struct, as_json)),
        ("JSON numbers", "the same, then array('f', list)", per_vector_us(lists_array, as_json)),
        ("JSON numbers", "regex + float() per number, no JSON parser",
         per_vector_us(regex_float, as_json)),
    ]
    try:
        import numpy

        def numpy_text(body: bytes) -> list[Any]:
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")
                return [numpy.fromstring(m.group(1), dtype=numpy.float32, sep=",")
                        for m in VECTOR.finditer(body)]

        def lists_numpy(body: bytes) -> Any:
            return numpy.asarray(lists(body), dtype=numpy.float32)

        rows.append(("JSON numbers", "the lists, then numpy.asarray(float32)",
                     per_vector_us(lists_numpy, as_json)))
        rows.append(("JSON numbers", "regex + numpy.fromstring, no JSON parser",
                     per_vector_us(numpy_text, as_json)))
    except ImportError:
        rows.append(("JSON numbers", "numpy", "not installed"))
    rows.append(("base64", "pydantic_core + the standard library's codec",
                 per_vector_us(base64_with(lambda s: binascii.a2b_base64(s)), as_base64)))
    try:
        import pybase64

        rows.append(("base64", "pydantic_core + pybase64 (the speedups extra)",
                     per_vector_us(base64_with(lambda s: pybase64.b64decode(s, validate=True)),
                                   as_base64)))
    except ImportError:
        rows.append(("base64", "pybase64", "not installed"))
    table(f"Reading one answer of {COUNT} vectors of {DIM} dimensions "
          f"({len(as_json) // COUNT:,} bytes a vector as JSON, {len(as_base64) // COUNT:,} as "
          f"base64)", ("wire", "read by", "µs per vector"), rows)


if __name__ == "__main__":
    main()

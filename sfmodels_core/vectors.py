"""Compact vectors: float32, one contiguous block, for bulk jobs too large for lists of floats.

A vector as a Python list of floats takes about 41 KB at 1,024 dimensions (a float object and a
pointer per number); as float32 it takes 4 KB. ``embed(..., compact=True)`` returns
:class:`Vectors`, written in place as each batch arrives by a :class:`VectorSink`:

- a vector the service sent as base64 (the OpenAI-compatible ``encoding_format: "base64"``,
  little-endian float32) is copied in as bytes, with no float object made per number;
- a vector sent as a JSON list is packed into float32 as it is read, and the list dropped.

:class:`Vectors` hands its memory to numpy, FAISS or Arrow without copying
(``numpy.asarray(vectors)``, ``vectors.buffer``, :meth:`Vectors.to_arrow`) and makes lists only
when asked (:meth:`Vectors.tolist`).
"""

from __future__ import annotations

import base64
import binascii
import importlib
import struct
import sys
import threading
from array import array
from collections.abc import Callable, Iterator, Mapping, Sequence
from typing import Any, cast, overload

#: Bytes per number.
ITEM_SIZE = 4
_LITTLE_ENDIAN = sys.byteorder == "little"


def _codecs() -> tuple[Callable[[str], bytes], Callable[[Any], bytes]]:
    """Strict base64 decoding (anything but the alphabet and final padding is an error) and
    encoding: pybase64's SIMD codec when installed (the ``speedups`` extra; about ten times
    faster on vectors), else the standard library's, with the same results."""
    try:
        import pybase64
    except ImportError:  # pragma: no cover - the test extra installs it; same results
        return (lambda text: base64.b64decode(text, validate=True)), base64.b64encode
    return (lambda text: pybase64.b64decode(text, validate=True)), pybase64.b64encode


_decode, _encode = _codecs()


def decode_base64(text: str) -> bytes:
    """The float32 bytes of a base64 vector, in this machine's byte order (a ValueError if it
    is not base64 of whole float32 numbers)."""
    try:
        data = _decode(text)
    except (binascii.Error, ValueError) as exc:
        raise ValueError(f"a vector is a string but not base64: {exc}") from None
    if not data or len(data) % ITEM_SIZE:
        raise ValueError(f"a base64 vector of {len(data)} bytes is not float32 numbers")
    if not _LITTLE_ENDIAN:  # pragma: no cover - the wire is little-endian
        swapped = array("f", data)
        swapped.byteswap()
        data = swapped.tobytes()
    return data


def encode_base64(vector: Any) -> bytes:
    """A float32 vector (a row, an array, or numbers) as base64 of little-endian float32."""
    if not isinstance(vector, (memoryview, array)) or (
            isinstance(vector, array) and vector.typecode != "f"):
        vector = array("f", vector)
    data = memoryview(vector).cast("B")
    if not _LITTLE_ENDIAN:  # pragma: no cover - the wire is little-endian
        swapped = array("f", data.tobytes())
        swapped.byteswap()
        data = memoryview(swapped).cast("B")
    encoded: bytes = _encode(data)
    return encoded


def as_list(vector: Any) -> Any:
    """A vector as a list of floats: a list stays as it is; a base64 string, a float32 row or
    array is converted."""
    if isinstance(vector, str):
        return array("f", decode_base64(vector)).tolist()
    if isinstance(vector, (memoryview, array)):
        return vector.tolist()
    return vector


def as_lists(vectors: Sequence[Any]) -> Sequence[Any]:
    """Every vector of a batch as a list of floats (the batch itself when none was base64)."""
    if all(type(vector) is list for vector in vectors):
        return vectors
    return [as_list(vector) for vector in vectors]


class Vectors(Sequence[memoryview]):
    """``count`` float32 vectors of ``dim`` numbers each, in one contiguous block.

    ``vectors[i]`` is a zero-copy ``memoryview`` of row ``i`` (index it, or ``.tolist()``);
    ``numpy.asarray(vectors)`` is a ``(count, dim)`` float32 array over the same memory;
    ``vectors.buffer`` is that block as a 2-D memoryview for any buffer consumer.
    """

    __slots__ = ("_data", "dim")

    def __init__(self, data: array[float], dim: int) -> None:
        if data.typecode != "f":
            raise TypeError("Vectors hold float32 (array typecode 'f')")
        if dim < 0 or (dim == 0 and len(data)) or (dim and len(data) % dim):
            raise ValueError(f"{len(data)} numbers do not make vectors of {dim} dimensions")
        self._data = data
        self.dim = dim

    @classmethod
    def from_lists(cls, vectors: Sequence[Sequence[float]]) -> Vectors:
        """Vectors packed from lists of numbers (all of one length)."""
        dim = len(vectors[0]) if vectors else 0
        data = array("f")
        for vector in vectors:
            if len(vector) != dim:
                raise ValueError(f"vectors of {dim} and {len(vector)} dimensions cannot be mixed")
            data.extend(vector)
        return cls(data, dim)

    def __len__(self) -> int:
        return len(self._data) // self.dim if self.dim else 0

    @overload
    def __getitem__(self, index: int) -> memoryview: ...

    @overload
    def __getitem__(self, index: slice) -> Vectors: ...

    def __getitem__(self, index: int | slice) -> memoryview | Vectors:
        if isinstance(index, slice):
            rows = range(len(self))[index]
            if rows.step == 1:
                return Vectors(self._data[rows.start * self.dim:rows.stop * self.dim], self.dim)
            return Vectors.from_lists([self[i] for i in rows])
        count = len(self)
        if index < 0:
            index += count
        if not 0 <= index < count:
            raise IndexError("vector index out of range")
        return memoryview(self._data)[index * self.dim:(index + 1) * self.dim]

    def __iter__(self) -> Iterator[memoryview]:
        view = memoryview(self._data)
        for start in range(0, len(self._data), self.dim or 1):
            yield view[start:start + self.dim]

    def __eq__(self, other: object) -> bool:
        if isinstance(other, Vectors):
            return self.dim == other.dim and self._data == other._data
        return NotImplemented

    __hash__ = None  # type: ignore[assignment]

    @property
    def nbytes(self) -> int:
        return len(self._data) * ITEM_SIZE

    @property
    def buffer(self) -> memoryview[Any]:
        """The vectors as one read-only ``(count, dim)`` float32 memoryview (no copy)."""
        view = memoryview(self._data).toreadonly()
        if not self.dim:
            return view
        return view.cast("B").cast("f", (len(self), self.dim))

    @property
    def array(self) -> array[float]:
        """The flat float32 array the vectors live in (row after row)."""
        return self._data

    def tolist(self) -> list[list[float]]:
        """Every vector as a list of floats (float32 values, widened to Python floats)."""
        return [cast("list[float]", row.tolist()) for row in self]

    def __array__(self, dtype: Any = None, copy: bool | None = None) -> Any:
        import numpy

        matrix = numpy.frombuffer(self._data, dtype=numpy.float32).reshape(len(self), self.dim)
        if dtype is not None and numpy.dtype(dtype) != matrix.dtype:
            if copy is False:
                raise ValueError("converting float32 vectors to another dtype copies them")
            return matrix.astype(dtype)
        return matrix.copy() if copy else matrix

    def to_arrow(self) -> Any:
        """A pyarrow ``FixedSizeListArray`` of float32 over the same memory (needs pyarrow)."""
        pyarrow = importlib.import_module("pyarrow")
        values = pyarrow.Array.from_buffers(pyarrow.float32(), len(self._data),
                                            [None, pyarrow.py_buffer(self._data)])
        return pyarrow.FixedSizeListArray.from_arrays(values, self.dim)

    def __repr__(self) -> str:
        return f"Vectors({len(self)} of {self.dim} dimensions, float32, {self.nbytes:,} bytes)"

    def __reduce__(self) -> tuple[Any, ...]:
        return (Vectors, (self._data, self.dim))


class VectorSink:
    """Where a compact bulk call writes each vector the moment its batch is read.

    The block for ``count`` vectors is allocated once, when the first vector shows the
    dimension; vectors are written at their input index, so batches may arrive in any order,
    from any thread. A vector of another length than the first is a ValueError.
    """

    def __init__(self, count: int) -> None:
        self.count = count
        self.dim: int | None = None
        self._data: array[float] | None = None
        self._bytes: memoryview | None = None
        self._pack: struct.Struct | None = None
        self._lock = threading.Lock()

    def _allocate(self, dim: int) -> None:
        if self.dim is not None:
            return
        with self._lock:
            if self.dim is None:
                if dim < 1:
                    raise ValueError("a vector has no numbers")
                self._data = array("f", [0.0]) * (self.count * dim)
                self._bytes = memoryview(self._data).cast("B")
                self._pack = struct.Struct(f"={dim}f")
                self.dim = dim

    def put(self, indices: Sequence[int], vectors: Sequence[Any]) -> None:
        """Write ``vectors`` (lists of numbers, base64 strings, or float32 rows) at
        ``indices``."""
        rows = [decode_base64(v) if isinstance(v, str) else v for v in vectors]
        if rows:
            raw = _float32_bytes(rows[0])
            self._allocate(len(rows[0]) if raw is None else raw.nbytes // ITEM_SIZE)
        for index, row in zip(indices, rows, strict=True):
            self._write(index, row)

    def _write(self, index: int, row: Any) -> None:
        assert self._bytes is not None and self._pack is not None and self.dim is not None
        size = self._pack.size
        offset = index * size
        data = _float32_bytes(row)
        if data is not None:
            if data.nbytes != size:
                raise ValueError(f"vectors of {self.dim} and {data.nbytes // ITEM_SIZE} "
                                 "dimensions cannot be mixed")
            self._bytes[offset:offset + size] = data
            return
        if len(row) != self.dim:
            raise ValueError(f"vectors of {self.dim} and {len(row)} dimensions cannot be mixed")
        try:
            self._pack.pack_into(self._bytes, offset, *row)
        except (struct.error, OverflowError) as exc:
            raise ValueError(f"a vector holds something that is not a float32 number: {exc}"
                             ) from None

    def row(self, index: int) -> memoryview:
        assert self._data is not None and self.dim is not None
        return memoryview(self._data)[index * self.dim:(index + 1) * self.dim]

    def vectors(self) -> Vectors:
        """Every vector (call once all are written)."""
        if self._data is None:
            return Vectors(array("f"), 0)
        assert self.dim is not None
        return Vectors(self._data, self.dim)

    def put_many(self, vectors: Mapping[int, Any]) -> None:
        """Write vectors given by input index (those an earlier, failed call got)."""
        if vectors:
            indices = list(vectors)
            self.put(indices, [vectors[i] for i in indices])


def _float32_bytes(row: Any) -> memoryview | None:
    """The bytes of a row that is float32 already (decoded base64, a row or array of ``'f'``);
    None for anything else, which is packed number by number."""
    if isinstance(row, bytes) or (isinstance(row, memoryview) and row.format == "f") or (
            isinstance(row, array) and row.typecode == "f"):
        return memoryview(row).cast("B")
    return None


class StoredRows(Sequence[memoryview]):
    """The rows of one batch in a sink, by input index, made only when read (a bulk job keeps
    one per batch: holding a million row views would cost more than the vectors' lists saved)."""

    __slots__ = ("_indices", "_sink")

    def __init__(self, sink: VectorSink, indices: Sequence[int]) -> None:
        self._sink = sink
        self._indices = indices

    def __len__(self) -> int:
        return len(self._indices)

    @overload
    def __getitem__(self, index: int) -> memoryview: ...

    @overload
    def __getitem__(self, index: slice) -> list[memoryview]: ...

    def __getitem__(self, index: int | slice) -> memoryview | list[memoryview]:
        if isinstance(index, slice):
            return [self._sink.row(i) for i in self._indices[index]]
        return self._sink.row(self._indices[index])

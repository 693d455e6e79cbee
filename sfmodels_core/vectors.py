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

Every vector a service sends is checked as it is read, lists and compact alike (:class:`BadVector`
says what was wrong, naming the input index of its text): a non-empty flat list of finite
numbers (ints and floats; not bools, null, strings or lists), or base64 of finite float32
numbers, of one dimension for the whole job.
"""

from __future__ import annotations

import base64
import binascii
import importlib
import math
import struct
import sys
import threading
from array import array
from collections.abc import Callable, Iterator, Mapping, Sequence
from typing import Any, cast, overload

from pydantic_core import SchemaValidator, core_schema

__all__ = [
    "ITEM_SIZE",
    "MISSING",
    "BadVector",
    "StoredRows",
    "VectorCheck",
    "VectorSink",
    "Vectors",
    "as_list",
    "as_lists",
    "check_float32",
    "check_list",
    "decode_base64",
    "dimension_problem",
    "encode_base64",
    "list_problem",
    "may_hold_bools",
    "nonfinite",
    "read_base64",
]

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
    data = _base64_float32(text)
    if isinstance(data, str):
        raise ValueError(f"a vector {data}")
    return data


def _base64_float32(text: str) -> bytes | str:
    """:func:`decode_base64`'s bytes, or what is wrong with ``text`` (said of a vector)."""
    try:
        data = _decode(text)
    except (binascii.Error, ValueError) as exc:
        return f"is a string but not base64: {exc}"
    if not data or len(data) % ITEM_SIZE:
        return f"is base64 of {len(data)} bytes: not float32 numbers (4 bytes each)"
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


# -- checks ---------------------------------------------------------------------------------------
class BadVector(ValueError):
    """A vector a service sent that is not one, or not of the job's dimension; ``index`` is the
    input index of its text (its place in the caller's list of texts).

    The client makes it a :class:`~sfmodels_core.errors.ResponseValidationError` with
    ``incomplete`` false, so a bulk job does not retry the batch: the body was whole JSON, not
    cut off on the way, and a service that answers NaN, ``null`` or a vector of another length
    for a text answers the same when asked again. The job stops with the vectors it has, and
    ``resume_from=`` sends the texts still missing once the service is fixed.
    """

    def __init__(self, index: int, problem: str) -> None:
        self.index = index
        self.problem = problem
        super().__init__(f"the vector of text {index} {problem}")


class _Missing:
    def __repr__(self) -> str:
        return "MISSING"


#: What a parser gives for an item with no vector at all (``embedding`` left out).
MISSING: Any = _Missing()


#: A vector sent as JSON, as it must be: a non-empty list of finite numbers (ints or floats, not
#: bools), checked in one pass in Rust, for a body that may hold a bool (a loop in Python would
#: cost as much as parsing the numbers did).
_NUMBERS = SchemaValidator(core_schema.list_schema(
    core_schema.float_schema(strict=True, allow_inf_nan=False), min_length=1))

#: More occurrences of a letter of ``true`` or ``false`` than this in one body, and it is taken
#: to hold a bool (the letters stand in keys and texts, not numbers: a body has a few).
_BOOL_LOOKS = 64


def may_hold_bools(content: bytes) -> bool:
    """Whether a JSON body may hold ``true`` or ``false`` (anywhere, a text included: then the
    full check runs, which is right, only slower). Vectors cost most of a body's bytes and hold
    no letters, so a ``memchr`` for ``u`` and for ``f`` jumps over them: under 1 µs a vector
    of 1,024 numbers, where the full check costs about 5 µs more than a sum."""
    looks = 0
    for letter, token, offset in ((b"u", b"true", 2), (b"f", b"false", 0)):
        position = content.find(letter)
        while position != -1:
            looks += 1
            if looks > _BOOL_LOOKS or (position >= offset
                                       and content.startswith(token, position - offset)):
                return True
            position = content.find(letter, position + 1)
    return False


#: The byte of a float32 that holds its sign and the top 7 bits of its exponent (the last byte
#: in little-endian order): 0x7F or 0xFF there is what every NaN and infinity has (and numbers
#: of magnitude at least 2**127, which no embedding has: those are looked at number by number).
_TOP_BYTE = 3 if _LITTLE_ENDIAN else 0


def _describe(value: Any) -> str:
    """A value as the problem text names it (never a whole vector)."""
    if value is None:
        return "null"
    if isinstance(value, bool):
        return f"{str(value).lower()} (a bool)"
    if isinstance(value, str):
        return "a string"
    if isinstance(value, list):
        return "a list"
    if isinstance(value, dict):
        return "an object"
    if isinstance(value, (int, float)):
        return "a number"
    return f"a {type(value).__name__}"


def _number_text(value: float) -> str:
    return "NaN" if math.isnan(value) else "Infinity" if value > 0 else "-Infinity"


def list_problem(vector: Any) -> str | None:
    """What is wrong with a vector sent as a list of numbers (None when nothing is): the
    slow, exact look taken once the one-pass check failed."""
    if vector is MISSING:
        return "is missing: its item has no embedding"
    if not isinstance(vector, list):
        return f"is {_describe(vector)}, not a list of numbers"
    if not vector:
        return "is an empty list"
    for position, value in enumerate(vector):
        if isinstance(value, bool) or not isinstance(value, (int, float)):
            what = _describe(value)
            if isinstance(value, list):
                what += " (a vector is one flat list of numbers)"
            return f"holds {what} at position {position}, not a number"
        if isinstance(value, float) and not math.isfinite(value):
            return f"holds {_number_text(value)} at position {position}"
        if isinstance(value, int):
            try:
                float(value)
            except OverflowError:
                return f"holds an integer too large for a float at position {position}"
    return None


def check_list(vector: Any, index: int, bools: bool = True) -> None:
    """Refuse (:class:`BadVector`) a vector that is not a non-empty list of finite numbers.

    ``bools``: whether the body it came in may hold a bool (:func:`may_hold_bools`). When it
    cannot, a sum in C is the check (it refuses null, strings, lists and objects, and is NaN
    or infinite if a number is; a bool is the one non-number it would take): half the cost of
    the full check. Only a vector that fails either is looked at number by number.
    """
    if type(vector) is list and vector:
        if bools:
            if _NUMBERS.isinstance_python(vector):
                return
        else:
            try:
                if math.isfinite(sum(vector)):
                    return
            except (TypeError, OverflowError):
                pass
    problem = list_problem(vector)
    if problem is not None:  # (None: finite numbers whose sum is not, such as 1e308 twice)
        raise BadVector(index, problem)


def nonfinite(data: Any) -> tuple[int, float] | None:
    """The position and value of the first NaN or infinity among float32 bytes (this machine's
    order), or None: two ``memchr`` over every fourth byte, and a look number by number only
    when a top byte says it may be needed."""
    raw = data if isinstance(data, bytes) else memoryview(data).cast("B").tobytes()
    top = raw[_TOP_BYTE::ITEM_SIZE]
    if b"\x7f" not in top and b"\xff" not in top:
        return None
    return next(((i, value) for i, value in enumerate(array("f", raw))
                 if not math.isfinite(value)), None)


def check_float32(data: Any, index: int) -> None:
    """Refuse (:class:`BadVector`) float32 bytes that hold a NaN or an infinity."""
    found = nonfinite(data)
    if found is not None:
        raise BadVector(index, f"holds {_number_text(found[1])} at position {found[0]}")


def read_base64(text: str, index: int) -> bytes:
    """The float32 bytes of a base64 vector, checked: whole float32 numbers, all finite."""
    data = _base64_float32(text)
    if isinstance(data, str):
        raise BadVector(index, data)
    check_float32(data, index)
    return data


def dimension_problem(count: int, dim: int) -> str:
    return (f"has {count} numbers but the vectors before it have {dim}: vectors of two "
            "dimensions cannot be mixed (in one job, nor from one model to one client)")


class VectorCheck:
    """The checks of one job's vectors, kept as lists: each a non-empty flat list of finite
    numbers (a base64 one is decoded, checked and made a list), all as long as the first one
    kept (``dim``: that length, or the length of the vectors a resumed call already has).

    Batches may be checked from several threads at once: the first to get here sets ``dim``.
    """

    def __init__(self, dim: int | None = None) -> None:
        self.dim = dim
        self._lock = threading.Lock()

    def _settle(self, count: int) -> int:
        with self._lock:
            if self.dim is None:
                self.dim = count
            return self.dim

    def lists(self, indices: Sequence[int], vectors: Sequence[Any],
              bools: bool = True) -> Sequence[Any]:
        """The batch's vectors as lists, every one checked (a :class:`BadVector` names the
        first that fails; ``bools``: whether their body may hold a bool)."""
        out: list[Any] | None = None
        dim = self.dim
        for slot, (index, vector) in enumerate(zip(indices, vectors, strict=True)):
            if type(vector) is str:
                vector = array("f", read_base64(vector, index)).tolist()
                if out is None:
                    out = list(vectors)
                out[slot] = vector
            else:
                check_list(vector, index, bools)
            count = len(vector)
            if count != dim:
                if dim is None:
                    dim = self._settle(count)
                if count != dim:
                    raise BadVector(index, dimension_problem(count, dim))
        return vectors if out is None else out


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
    from any thread. Every vector is checked as it is written (:class:`BadVector`): a list must
    be a non-empty flat list of finite numbers that fit float32, base64 and float32 rows must
    hold finite numbers, and all must be as long as the first.
    """

    def __init__(self, count: int, dim: int | None = None) -> None:
        """``dim``: the length every vector must have, when it is known beforehand (the
        vectors the client got from the same model before); else the first vector sets it."""
        self.count = count
        self.dim: int | None = None
        self._data: array[float] | None = None
        self._bytes: memoryview | None = None
        self._pack: struct.Struct | None = None
        self._lock = threading.Lock()
        if dim is not None:
            self._allocate(dim)

    def _allocate(self, dim: int) -> None:
        with self._lock:
            if self.dim is None:
                self._data = array("f", [0.0]) * (self.count * dim)
                self._bytes = memoryview(self._data).cast("B")
                self._pack = struct.Struct(f"={dim}f")
                self.dim = dim

    def put(self, indices: Sequence[int], vectors: Sequence[Any], bools: bool = True) -> None:
        """Write ``vectors`` (lists of numbers, base64 strings, or float32 rows) at
        ``indices`` (``bools``: whether the body they came in may hold a bool)."""
        for index, vector in zip(indices, vectors, strict=True):
            self._write(index, vector, bools)

    def _write(self, index: int, vector: Any, bools: bool) -> None:
        if isinstance(vector, str):
            data: memoryview | None = memoryview(read_base64(vector, index))
        else:
            data = _float32_bytes(vector)
            if data is not None:
                check_float32(data, index)
        if data is None:
            if isinstance(vector, (array, memoryview, tuple)):
                vector = list(vector)  # a row of another kind (doubles...), read as numbers
                bools = False  # no JSON came with it
            if bools or type(vector) is not list or not vector or self.dim is None:
                # All of it: packing would take a bool as a number (and the first vector sets
                # the dimension, so it is known good first).
                check_list(vector, index)
            count = len(vector)
        else:
            count = data.nbytes // ITEM_SIZE
            if not count:
                raise BadVector(index, "has no numbers")
        if self.dim is None:
            self._allocate(count)
        assert self._bytes is not None and self._pack is not None and self.dim is not None
        if count != self.dim:  # (a list of the wrong things is named for those first)
            raise BadVector(index, (data is None and list_problem(vector))
                            or dimension_problem(count, self.dim))
        size = self._pack.size
        offset = index * size
        if data is not None:
            self._bytes[offset:offset + size] = data
            return
        try:
            self._pack.pack_into(self._bytes, offset, *vector)
        except (struct.error, OverflowError, TypeError):  # null, a string, a list, too large
            problem = list_problem(vector)
            if problem is None:
                position = next((i for i, value in enumerate(vector)
                                 if abs(value) > _FLOAT32_MAX), 0)
                problem = (f"holds {vector[position]!r} at position {position}, beyond what "
                           "float32 can hold")
            raise BadVector(index, problem) from None
        if not bools:  # packed unchecked: NaN and infinities are looked for in the float32
            check_float32(self._bytes[offset:offset + size], index)

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


#: The largest finite float32.
_FLOAT32_MAX = struct.unpack("<f", b"\xff\xff\x7f\x7f")[0]


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

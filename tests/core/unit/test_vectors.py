"""Compact float32 vectors: the block, its views, and how batches are written into it."""

from __future__ import annotations

import base64
import pickle
import sys
from array import array

import pytest

from sfmodels_core import vectors as vectors_module
from sfmodels_core.vectors import Vectors, VectorSink, as_lists, decode_base64


def b64(numbers: list[float]) -> str:
    return base64.b64encode(array("f", numbers).tobytes()).decode()


def three() -> Vectors:
    return Vectors.from_lists([[1.0, 2.0], [3.0, 4.0], [5.0, 6.0]])


def test_rows_are_views_and_lists_only_when_asked() -> None:
    vectors = three()
    assert (len(vectors), vectors.dim, vectors.nbytes) == (3, 2, 24)
    assert isinstance(vectors[1], memoryview)
    assert vectors[1].tolist() == [3.0, 4.0]
    assert vectors[-1].tolist() == [5.0, 6.0]
    assert [row.tolist() for row in vectors] == vectors.tolist() == [[1, 2], [3, 4], [5, 6]]
    assert vectors[1:].tolist() == [[3, 4], [5, 6]]
    assert vectors[::2].tolist() == [[1, 2], [5, 6]]
    with pytest.raises(IndexError):
        vectors[3]


def test_buffer_is_two_dimensional_float32_without_a_copy() -> None:
    vectors = three()
    view = vectors.buffer
    assert (view.format, view.shape, view.readonly) == ("f", (3, 2), True)
    assert view.tolist() == vectors.tolist()
    vectors.array[0] = 9.0  # the same memory
    assert view[0, 0] == 9.0


def test_numpy_sees_the_same_memory() -> None:
    numpy = pytest.importorskip("numpy")
    vectors = three()
    matrix = numpy.asarray(vectors)
    assert matrix.shape == (3, 2) and matrix.dtype == numpy.float32
    assert numpy.shares_memory(matrix, numpy.frombuffer(vectors.array, dtype=numpy.float32))
    assert numpy.asarray(vectors, dtype=numpy.float64).dtype == numpy.float64
    assert not numpy.shares_memory(numpy.array(vectors, copy=True), matrix)


def test_arrow_gets_a_fixed_size_list_over_the_same_buffer() -> None:
    pytest.importorskip("pyarrow")
    column = three().to_arrow()
    assert column.type.list_size == 2 and str(column.type.value_type) == "float"
    assert column.to_pylist() == [[1, 2], [3, 4], [5, 6]]


def test_repr_equality_pickle_and_empty() -> None:
    vectors = three()
    assert repr(vectors) == "Vectors(3 of 2 dimensions, float32, 24 bytes)"
    assert pickle.loads(pickle.dumps(vectors)) == vectors
    assert vectors != Vectors.from_lists([[1.0, 2.0]])
    empty = Vectors(array("f"), 0)
    assert (len(empty), empty.tolist(), list(empty)) == (0, [], [])
    with pytest.raises(ValueError, match="do not make vectors"):
        Vectors(array("f", [1.0, 2.0, 3.0]), 2)
    with pytest.raises(ValueError, match="cannot be mixed"):
        Vectors.from_lists([[1.0, 2.0], [3.0]])


def test_base64_is_little_endian_float32() -> None:
    assert array("f", decode_base64(b64([0.5, -2.0]))).tolist() == [0.5, -2.0]
    for bad, reason in (("not base64!", "not base64"), (base64.b64encode(b"abc").decode(),
                                                          "not float32"), ("", "not float32")):
        with pytest.raises(ValueError, match=reason):
            decode_base64(bad)
    assert as_lists([b64([1.0, 0.25]), [3.0, 4.0]]) == [[1.0, 0.25], [3.0, 4.0]]
    lists = [[1.0], [2.0]]
    assert as_lists(lists) is lists


def test_sink_writes_batches_at_their_indices_in_any_order() -> None:
    sink = VectorSink(4)
    sink.put([2, 3], [[5.0, 6.0], b64([7.0, 8.0])])
    assert [sink.row(i).tolist() for i in (2, 3)] == [[5, 6], [7, 8]]
    sink.put_many({0: [1.0, 2.0], 1: array("d", [3.0, 4.0])})  # doubles are packed as numbers
    assert sink.vectors().tolist() == [[1, 2], [3, 4], [5, 6], [7, 8]]
    assert VectorSink(0).vectors().tolist() == []


@pytest.mark.parametrize("vector, message", [
    ([1.0, 2.0, 3.0], "text 1 has 3 numbers but the vectors before it have 2"),
    (b64([1.0]), "text 1 has 1 numbers but the vectors before it have 2"),
    (["a", 2.0], "text 1 holds a string at position 0, not a number"),
    ([1e300, 0.0], "text 1 holds 1e[+]?300 at position 0, beyond what float32 can hold"),
])
def test_sink_refuses_what_is_not_a_vector_like_the_first(vector: object,
                                                           message: str) -> None:
    sink = VectorSink(2)
    sink.put([0], [[1.0, 2.0]])
    with pytest.raises(ValueError, match=message):
        sink.put([1], [vector])


def test_the_standard_library_codec_gives_the_same_answers(
        monkeypatch: pytest.MonkeyPatch) -> None:
    fast = vectors_module._codecs()
    monkeypatch.setitem(sys.modules, "pybase64", None)  # as if the speedups were not installed
    plain = vectors_module._codecs()
    good = b64([0.5, -2.0, 3.25])
    assert fast[0](good) == plain[0](good)
    assert fast[1](b"\x00\x01\xfe") == plain[1](b"\x00\x01\xfe")
    for bad in ("abc", "ab\ncd", "ab=cd", "ab cd=="):
        for decode, _ in (fast, plain):
            with pytest.raises(ValueError):
                decode(bad)

"""Embeddings: hashed bags of words, so texts sharing words are close and unrelated texts are
nearly orthogonal."""

from __future__ import annotations

import base64
import math
import sys
from array import array
from functools import lru_cache

from .words import content_words, stable_hash


@lru_cache(maxsize=1 << 16)
def _word_slot(word: str) -> int:
    return stable_hash(word)


def _sparse_embedding(text: str, dim: int) -> dict[int, float]:
    weights: dict[int, float] = {}
    for word in content_words(text):
        slot = _word_slot(word)
        index = (slot >> 1) % dim
        weights[index] = weights.get(index, 0.0) + (1.0 if slot & 1 else -1.0)
    norm = math.sqrt(sum(v * v for v in weights.values()))
    if norm == 0.0:
        return {}
    return {i: v / norm for i, v in weights.items() if v != 0.0}


def embedding(text: str, dim: int) -> list[float]:
    """A unit vector for ``text``: a signed, hashed bag of its content words.

    Texts without content words (empty, only stopwords) all get the same fixed unit vector.
    """
    sparse = _sparse_embedding(text, dim)
    if not sparse:
        return [1.0 / math.sqrt(dim)] * dim
    vector = [0.0] * dim
    for i, v in sparse.items():
        vector[i] = v
    return vector


@lru_cache(maxsize=4096)
def embedding_base64(text: str, dim: int) -> str:
    """``embedding_json(text, dim)``'s numbers as base64 of little-endian float32 (OpenAI's
    ``base64`` encoding)."""
    sparse = _sparse_embedding(text, dim)  # rounded as embedding_json rounds: the same vector
    if not sparse:
        numbers = array("f", [round(1.0 / math.sqrt(dim), 8)]) * dim
    else:
        numbers = array("f", bytes(4 * dim))
        for i, v in sparse.items():
            numbers[i] = round(v, 8)
    if sys.byteorder != "little":  # pragma: no cover
        numbers.byteswap()
    return base64.b64encode(numbers.tobytes()).decode("ascii")


@lru_cache(maxsize=4096)
def embedding_json(text: str, dim: int) -> str:
    """The JSON array for ``embedding(text, dim)``, rounded to 8 decimals and cached."""
    sparse = _sparse_embedding(text, dim)
    if not sparse:
        return "[" + ",".join([repr(round(1.0 / math.sqrt(dim), 8))] * dim) + "]"
    items = ["0.0"] * dim
    for i, v in sparse.items():
        items[i] = repr(round(v, 8))
    return "[" + ",".join(items) + "]"

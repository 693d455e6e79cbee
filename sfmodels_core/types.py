"""Result types shared by both providers."""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from typing import Any, Generic, TypeVar

from pydantic import BaseModel, ConfigDict, Field

from .vectors import Vectors

__all__ = [
    "EmbeddingResult",
    "ParsedBatch",
    "Usage",
    "expect_vectors",
    "ordered",
]

#: What ``EmbeddingResult.vectors`` holds: lists of floats, or compact float32 ``Vectors``.
V = TypeVar("V", list[list[float]], Vectors)


class Usage(BaseModel):
    """Token counts of one call (or the sum over the batches of one bulk call)."""

    model_config = ConfigDict(extra="allow")

    prompt_tokens: int = 0
    completion_tokens: int = 0
    total_tokens: int = 0

    @classmethod
    def from_wire(cls, data: Any) -> Usage | None:
        if not isinstance(data, dict):
            return None
        return cls.model_validate({k: (v if v is not None else 0) for k, v in data.items()})

    @classmethod
    def total(cls, usages: Iterable[Usage | None]) -> Usage | None:
        """The sum of the counts given (None when none was given)."""
        total: Usage | None = None
        for usage in usages:
            if usage is not None:
                total = usage if total is None else total + usage
        return total

    def __add__(self, other: Usage) -> Usage:
        return Usage(prompt_tokens=self.prompt_tokens + other.prompt_tokens,
                     completion_tokens=self.completion_tokens + other.completion_tokens,
                     total_tokens=self.total_tokens + other.total_tokens)


class EmbeddingResult(BaseModel, Generic[V]):
    """One vector per input text, in input order: lists of floats, or with ``compact=True``
    one float32 block (:class:`~sfmodels_core.vectors.Vectors`)."""

    model_config = ConfigDict(arbitrary_types_allowed=True)

    vectors: V
    model: str | None = None
    usage: Usage | None = None
    #: Response bodies of each batch request, vectors left out (they are in ``vectors``).
    raw: list[dict[str, Any]] = Field(default_factory=list, repr=False)

    def __len__(self) -> int:
        return len(self.vectors)

    def __repr__(self) -> str:
        # Shape and counts, never every vector: Python 3.11's asyncio.run reprs the result of
        # the task it ran, and a full repr of 10,000 vectors took seconds.
        vectors = self.vectors
        dims = vectors.dim if isinstance(vectors, Vectors) else len(vectors[0]) if vectors else 0
        kind = ", float32" if isinstance(vectors, Vectors) else ""
        return (f"EmbeddingResult({len(vectors)} vectors of {dims} dimensions{kind}, "
                f"model={self.model!r}, usage={self.usage!r})")

    __str__ = __repr__


#: One batch's answer: (vectors in input order, served model, usage, the body without vectors).
#: A vector is a list of numbers, a base64 string, or (compact) a float32 row already stored.
ParsedBatch = tuple[Sequence[Any], "str | None", "Usage | None", dict[str, Any]]


def expect_vectors(batch: ParsedBatch, count: int) -> ParsedBatch:
    """The batch, if it has exactly one vector per text sent (else a ValueError)."""
    if len(batch[0]) != count:
        raise ValueError(f"{count} texts were sent but {len(batch[0])} vectors came back")
    return batch


def ordered(items: list[Any]) -> list[Any]:
    """Embedding items in input order by their ``index`` (which must be 0..n-1 when given)."""
    if not any(isinstance(item, dict) and "index" in item for item in items):
        return items
    ranked = sorted(items, key=lambda item: item.get("index", -1))
    if [item.get("index") for item in ranked] != list(range(len(items))):
        raise ValueError("the vectors' indexes are not 0..n-1")
    return ranked

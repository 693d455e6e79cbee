"""How the embedding classes keep requests flowing through LlamaIndex's batch methods.

LlamaIndex's ``get_text_embedding_batch`` hands the model ``embed_batch_size`` texts at a time
and waits for each hand-off before it makes the next (``aget_text_embedding_batch`` makes them
all, then waits for them together). Sent as one core ``embed`` each, requests stopped at every
hand-off's end while its last answers came in and LlamaIndex recorded it.

:class:`WholeList` wraps both methods: it shows the model the whole list, then runs
LlamaIndex's own method unchanged (its events, progress bar, span and return value). The
hand-offs that method makes are served from one core job per *segment*: whole consecutive
hand-offs covering at least :data:`SEGMENT_ROUNDS` rounds of requests, sent one segment at a
time, so requests flow across hand-offs and the client's ``max_concurrency`` (``num_workers``)
is what is in flight. A hand-off is served only when its texts are, in order, the texts of the
list at a hand-off's place; any other call is embedded on its own, as before, so a vector can
only ever reach its own text. With LlamaIndex's ``embeddings_cache`` or ``rate_limiter`` set,
every hand-off is embedded on its own, as those expect.

A failed segment raises the core's error, made to cover the whole list: ``vectors`` and
``missing`` are indexed against the texts of the call, with the vectors of every segment done
before, so ``client.embed(model, texts, resume_from=error)`` sends only what is missing. The
hand-offs of a failed segment whose vectors all came back are still served, as they would have
been had each been sent on its own.

The sync and async paths go through one :class:`Plan` and differ only in how a segment is sent
and in the async hand-offs' waiting for each other (LlamaIndex runs those at the same time).
"""

from __future__ import annotations

import asyncio
import itertools
import math
from collections.abc import Iterable
from contextvars import ContextVar
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from sfmodels_core.bulk import texts_digest
from sfmodels_core.errors import BulkEmbeddingError, SFModelsError, make_bulk_error
from sfmodels_core.types import EmbeddingResult, Usage

#: A core result with its vectors as lists, as LlamaIndex's contract wants them.
ListResult = EmbeddingResult[list[list[float]]]

if TYPE_CHECKING:
    from llama_index.core.base.embeddings.base import BaseEmbedding as _Base
    from llama_index.core.base.embeddings.base import Embedding
else:
    _Base = object

#: A segment covers at least this many rounds of requests (``max_concurrency`` requests each).
#: A job ends on a partial round, so longer segments lose less to that; shorter ones let
#: LlamaIndex report progress sooner. With the defaults: 16,384 Databricks texts, 2,048
#: Salesforce texts.
SEGMENT_ROUNDS = 32


def even_split(count: int, most: int) -> int:
    """The size of the requests that split ``count`` texts evenly into as few requests as
    ``most`` texts a request allows (512 into 150s: four requests of 128)."""
    return math.ceil(count / math.ceil(count / most))


@dataclass
class Segment:
    """Consecutive hand-offs sent as one core job."""

    start: int
    stop: int
    result: ListResult | None = None


@dataclass
class Plan:
    """One batch call's list, its hand-offs and segments, and what has been embedded."""

    texts: list[str]
    hand_off: int
    segments: list[Segment] = field(default_factory=list)
    claimed: set[int] = field(default_factory=set)
    #: Where the next hand-off is expected: LlamaIndex makes them in order.
    next: int = 0
    #: The error the call ends with, and the vectors it carries (by index into ``texts``).
    error: BaseException | None = None
    vectors: dict[int, list[float]] = field(default_factory=dict)
    closed: bool = False
    lock: asyncio.Lock | None = None

    @property
    def planned(self) -> bool:
        return bool(self.segments)

    def split(self, round_size: int) -> None:
        """Segments of whole hand-offs, each at least ``SEGMENT_ROUNDS`` rounds of
        ``round_size`` texts (one round: every request in flight at once)."""
        per = self.hand_off * max(1, math.ceil(SEGMENT_ROUNDS * round_size / self.hand_off))
        total = len(self.texts)
        self.segments = [Segment(i, min(i + per, total)) for i in range(0, total, per)]

    # -- which hand-off a call is --------------------------------------------------------------
    def claim(self, chunk: Any) -> int | None:
        """The start index of the hand-off whose texts ``chunk`` is, not yet served; None for
        any other call (it is then embedded on its own)."""
        if self.closed or not isinstance(chunk, list) or not chunk:
            return None
        size, total = len(chunk), len(self.texts)
        starts: Iterable[int] = itertools.chain((self.next,), range(0, total, self.hand_off))
        for start in starts:
            if (start not in self.claimed and start < total and start % self.hand_off == 0
                    and min(self.hand_off, total - start) == size
                    and self.texts[start:start + size] == chunk):
                self.claimed.add(start)
                self.next = start + size
                return start
        return None

    def segment_of(self, start: int) -> Segment:
        per = self.segments[0].stop - self.segments[0].start
        return self.segments[start // per]

    # -- sending -------------------------------------------------------------------------------
    def to_send(self, segment: Segment) -> list[str] | None:
        """The texts of ``segment`` if it is still to be sent (None: done, or the call ended)."""
        if segment.result is not None or self.error is not None or self.closed:
            return None
        return self.texts[segment.start:segment.stop]

    def sent(self, segment: Segment, result: ListResult) -> None:
        segment.result = result

    def failed(self, segment: Segment, error: SFModelsError) -> None:
        """The segment's job raised ``error``: the call ends with it, made to cover the whole
        list when it is a bulk error."""
        if not isinstance(error, BulkEmbeddingError):
            self.error = error
            return
        if segment.start == 0 and segment.stop == len(self.texts):
            self.error, self.vectors = error, dict(error.vectors)
            return
        done = [s for s in self.segments if s.result is not None]
        vectors: dict[int, list[float]] = {}
        for s in done:
            assert s.result is not None
            vectors.update(enumerate(s.result.vectors, s.start))
        vectors.update((segment.start + i, v) for i, v in error.vectors.items())
        cause = error.__cause__ if isinstance(error.__cause__, SFModelsError) else error
        whole = make_bulk_error(
            cause, vectors=vectors,
            missing=[i for i in range(len(self.texts)) if i not in vectors],
            refused={segment.start + i: e for i, e in error.refused.items()},
            total=len(self.texts), target=error.target, texts_digest=texts_digest(self.texts),
            usage=Usage.total([*(s.result.usage for s in done if s.result is not None),
                               error.usage]),
            raw=[*(body for s in done if s.result is not None for body in s.result.raw),
                 *error.raw])
        whole.served_model = getattr(error, "served_model", None)  # type: ignore[attr-defined]
        self.error, self.vectors = whole, vectors

    # -- serving -------------------------------------------------------------------------------
    def take(self, start: int) -> list[Embedding]:
        """The vectors of the hand-off at ``start``, or the error the call ended with."""
        segment = self.segment_of(start)
        stop = min(start + self.hand_off, len(self.texts))
        if segment.result is not None:
            return segment.result.vectors[start - segment.start:stop - segment.start]
        if self.error is None:
            raise SFModelsError("this hand-off's batch call ended before it was embedded")
        if all(i in self.vectors for i in range(start, stop)):
            return [self.vectors[i] for i in range(start, stop)]
        raise self.error


#: The plan of the batch call running in this thread or task, and whose it is.
_ACTIVE: ContextVar[tuple[object, Plan] | None] = ContextVar("sfmodels_batch_call",
                                                              default=None)


class WholeList(_Base):
    """LlamaIndex's batch methods, with their hand-offs served from whole segments.

    The embedding classes put this before ``BaseEmbedding`` and say how to embed texts
    (:meth:`_embed_result`, :meth:`_aembed_result`) and how many texts one round of requests
    covers (:meth:`_round_size`).
    """

    # -- what each class says --------------------------------------------------------------
    def _embed_result(self, texts: list[str]) -> ListResult:  # pragma: no cover
        raise NotImplementedError

    async def _aembed_result(self, texts: list[str]) -> ListResult:  # pragma: no cover
        raise NotImplementedError

    def _round_size(self) -> int:  # pragma: no cover
        raise NotImplementedError

    # -- the batch methods: LlamaIndex's own, seeing the whole list ------------------------------
    def get_text_embedding_batch(self, texts: list[str], show_progress: bool = False,
                                 **kwargs: Any) -> list[Embedding]:
        plan = self._plan(texts)
        token = _ACTIVE.set((self, plan)) if plan is not None else None
        try:
            return super().get_text_embedding_batch(texts, show_progress=show_progress,
                                                    **kwargs)
        finally:
            if token is not None and plan is not None:
                plan.closed = True
                _ACTIVE.reset(token)

    async def aget_text_embedding_batch(self, texts: list[str], show_progress: bool = False,
                                        **kwargs: Any) -> list[Embedding]:
        plan = self._plan(texts)
        token = _ACTIVE.set((self, plan)) if plan is not None else None
        try:
            return await super().aget_text_embedding_batch(texts, show_progress=show_progress,
                                                           **kwargs)
        finally:
            if token is not None and plan is not None:
                plan.closed = True  # hand-offs still running after a failure stop here
                _ACTIVE.reset(token)

    def _plan(self, texts: Any) -> Plan | None:
        """A plan when the list has more than one hand-off and LlamaIndex will hand over
        exactly its texts (no cache, no rate limiter, only strings)."""
        if self.embeddings_cache is not None or self.rate_limiter is not None:
            return None
        if not isinstance(texts, list) or len(texts) <= self.embed_batch_size:
            return None
        if not all(isinstance(text, str) for text in texts):
            return None  # LlamaIndex's method meets the error in the hand-off that has it
        return Plan(texts, self.embed_batch_size)

    def _claim(self, texts: list[str]) -> tuple[Plan, int] | None:
        active = _ACTIVE.get()
        if active is None or active[0] is not self:
            return None
        plan = active[1]
        start = plan.claim(texts)
        if start is None:
            return None
        if not plan.planned:
            plan.split(self._round_size())
        return plan, start

    # -- the hand-offs: one segment at a time, each sent once ------------------------------------
    def _get_text_embeddings(self, texts: list[str]) -> list[Embedding]:
        claimed = self._claim(texts)
        if claimed is None:
            return self._embed_result(texts).vectors
        plan, start = claimed
        segment = plan.segment_of(start)
        batch = plan.to_send(segment)
        if batch is not None:
            try:
                plan.sent(segment, self._embed_result(batch))
            except SFModelsError as exc:
                plan.failed(segment, exc)
        return plan.take(start)

    async def _aget_text_embeddings(self, texts: list[str]) -> list[Embedding]:
        claimed = self._claim(texts)
        if claimed is None:
            return (await self._aembed_result(texts)).vectors
        plan, start = claimed
        segment = plan.segment_of(start)
        if plan.lock is None:
            plan.lock = asyncio.Lock()
        async with plan.lock:  # LlamaIndex awaits every hand-off at once
            batch = plan.to_send(segment)
            if batch is not None:
                try:
                    plan.sent(segment, await self._aembed_result(batch))
                except SFModelsError as exc:
                    plan.failed(segment, exc)
        return plan.take(start)

"""Bulk work that finishes: batches, progress-aware retries, splitting, and no lost work; and the
plan of a bulk embedding (:class:`EmbedPlan`), which an earlier one's error can resume.

A :class:`BulkJob` makes every decision of one bulk call and never sends or sleeps, so the
thread runner (:func:`run_bulk`) and the task runner (:func:`arun_bulk`) differ only in how they
send, wait and sleep:

- which texts go next: failed batches come back first, then new batches of the job's current
  size (which only ever shrinks, when the service shows that a batch is too large);
- what a failure means: retry the batch (after its ``Retry-After`` or a capped, jittered
  backoff), split it in halves, set a single text aside as refused, or stop the job;
- when to give up: on an error that no retry can fix, or once nothing has succeeded for
  ``give_up_after`` seconds. Before the first success of the job a batch gets ``max_retries``
  retries, as a single call does, so a job against a service that never answers fails as fast.

A job that stops keeps every vector it has: the runner raises the error it stopped on, made a
:class:`~sfmodels_core.errors.BulkEmbeddingError`, with the vectors by input index and the
indices still missing.
"""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import math
import random
import re
import threading
import time
from collections import deque
from collections.abc import Awaitable, Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from typing import Any, TypeVar

from . import defaults
from ._retry import backoff_delay
from .errors import (
    APIConnectionError,
    BadRequestError,
    BulkEmbeddingError,
    InvalidInputError,
    RateLimitError,
    ResponseValidationError,
    ServerError,
    SFModelsError,
    make_bulk_error,
)
from .options import RetryPolicy
from .types import EmbeddingResult, ParsedBatch, Usage, expect_vectors
from .vectors import StoredRows, VectorCheck, VectorSink, may_hold_bools

__all__ = [
    "WAIT",
    "ASend",
    "Batch",
    "BulkJob",
    "EmbedPlan",
    "EmbedRequest",
    "Retry",
    "Send",
    "arun_bulk",
    "check_resume",
    "is_transient",
    "names_size_limit",
    "refuses_single",
    "run_bulk",
    "should_split",
    "split",
    "texts_digest",
]

T = TypeVar("T")


def split(items: Sequence[T], size: int) -> list[Sequence[T]]:
    if size < 1:
        raise ValueError("batch size must be at least 1")
    return [items[i:i + size] for i in range(0, len(items), size)]


# A message that names a limit on the size of one request (inputs, tokens, bytes), as opposed to
# a limit on the rate of requests.
_SIZE_LIMIT = re.compile(
    r"batch size|maximum (batch|number|input|size)|at most \d+|too many (inputs|items|texts|"
    r"tokens)|too (large|long)|payload|token limit|tokens? per request|context length|"
    r"(input|request)s? (size|length)|exceed\w* [^.]*\b(tokens?|size|length|batch)\b",
    re.IGNORECASE)


def names_size_limit(error: SFModelsError) -> bool:
    return bool(_SIZE_LIMIT.search(error.provider_message or error.message or ""))


def should_split(size: int, error: SFModelsError, refusals: int, largest_ok: int,
                 policy: RetryPolicy, split_before: bool = False) -> bool:
    """Whether a batch of ``size`` texts refused by ``error`` (``refusals`` 429s in a row) is to
    be split rather than sent again whole. ``largest_ok``: the largest batch that succeeded;
    ``split_before``: the job already split a batch for its size.

    - a 413, or a 400/422 that names a size or token limit: at once;
    - a 429 that names one: on the second in a row;
    - any 429, when no batch this large has ever succeeded: on the ``BULK_SPLIT_AFTER``-th in
      a row (a workspace whose token limit refuses large batches answers 429 every time), or
      on the first once the job has split before (the service has shown that size matters);
    - any 429, on the ``BULK_SPLIT_AFTER_ANYWAY``-th in a row (batches as large pass, but not
      this one: its texts are long).
    """
    if size <= 1:
        return False
    status = error.status_code
    if status == 413:
        return True
    if isinstance(error, BadRequestError):
        return names_size_limit(error)
    if not isinstance(error, RateLimitError):
        return False
    if names_size_limit(error) and refusals >= 2:
        return True
    first = 1 if split_before else max(1, min(defaults.BULK_SPLIT_AFTER, policy.max_retries))
    if largest_ok < size and refusals >= first:
        return True
    return refusals >= defaults.BULK_SPLIT_AFTER_ANYWAY


def refuses_single(error: SFModelsError, refusals: int, largest_ok: int) -> bool:
    """Whether a single text is refused for good: a 400/413/422 naming a size limit, a 429
    naming one twice, or a 429 ``BULK_SPLIT_AFTER_ANYWAY`` times while other texts pass."""
    if error.status_code == 413 or (isinstance(error, BadRequestError)
                                    and names_size_limit(error)):
        return True
    if not isinstance(error, RateLimitError):
        return False
    if names_size_limit(error) and refusals >= 2:
        return True
    return largest_ok >= 1 and refusals >= defaults.BULK_SPLIT_AFTER_ANYWAY


def is_transient(error: SFModelsError) -> bool:
    """429, 408, 409, 423, 5xx, no answer, an answer cut off (on the wire or as JSON). A whole
    body of the wrong shape is not: sending again would not change it."""
    if isinstance(error, ResponseValidationError):
        return error.incomplete
    return isinstance(error, (RateLimitError, ServerError, APIConnectionError))


@dataclass
class Batch:
    """Input indices sent together, and how its attempts have gone."""

    indices: list[int]
    attempts: int = 0  # failed attempts in a row
    refusals: int = 0  # 429s in a row


@dataclass(frozen=True)
class Retry:
    delay: float


#: What :meth:`BulkJob.take` answers when every batch is out but some may still come back.
WAIT = Batch([])


@dataclass
class BulkJob:
    """The decisions of one bulk call over ``todo`` (input indices), in batches of ``size``.

    Not thread-safe by itself: the thread runner calls it under one lock, the task runner from
    one event loop.
    """

    todo: list[int]
    size: int
    policy: RetryPolicy
    give_up_after: float
    rng: random.Random = field(default_factory=random.Random)
    clock: Callable[[], float] = time.monotonic

    def __post_init__(self) -> None:
        self.cursor = 0
        self.queue: deque[Batch] = deque()
        self.out = 0  # batches taken and not yet finished (including those waiting to retry)
        self.results: dict[int, ParsedBatch] = {}  # first input index of a batch -> its answer
        self.indices_of: dict[int, list[int]] = {}
        self.refused: dict[int, SFModelsError] = {}
        self.error: SFModelsError | None = None
        self.progressed = False
        self.last_progress = self.clock()
        self.largest_ok = 0
        self.splits = 0
        self.done = 0  # texts with a vector

    # -- what to send ----------------------------------------------------------------------------
    @property
    def stopped(self) -> bool:
        return self.error is not None

    def take(self) -> Batch | None:
        """The next batch; :data:`WAIT` if there is none now but one may come back; None when
        the job is over."""
        if self.stopped:
            return None
        if self.queue:
            batch = self.queue.popleft()
        elif self.cursor < len(self.todo):
            batch = Batch(self.todo[self.cursor:self.cursor + self.size])
            self.cursor += len(batch.indices)
        else:
            return WAIT if self.out else None
        self.out += 1
        return batch

    # -- what happened ---------------------------------------------------------------------------
    def succeeded(self, batch: Batch, parsed: ParsedBatch) -> None:
        self.out -= 1
        self.results[batch.indices[0]] = parsed
        self.indices_of[batch.indices[0]] = batch.indices
        self.done += len(batch.indices)
        self.progressed = True
        self.last_progress = self.clock()
        self.largest_ok = max(self.largest_ok, len(batch.indices))

    def failed(self, batch: Batch, error: SFModelsError) -> Retry | None:
        """A :class:`Retry` to send the batch again after a delay, or None: the batch was split
        or set aside (take the next one), or the job stopped."""
        n = len(batch.indices)
        rate_limited = isinstance(error, RateLimitError)
        batch.refusals = batch.refusals + 1 if rate_limited else 0
        too_large = n > self.size and (rate_limited or error.status_code == 413
                                       or isinstance(error, BadRequestError))
        if too_large or should_split(n, error, batch.refusals, self.largest_ok, self.policy,
                                     self.splits > 0):
            self.size = min(self.size, math.ceil(n / 2))
            # Batches already waiting are cut to the new size too: no need to learn it again.
            waiting = [batch, *self.queue]
            self.queue = deque(Batch(b.indices[i:i + self.size]) if len(b.indices) > self.size
                               else b for b in waiting for i in range(0, len(b.indices),
                                                                      self.size))
            self.splits += 1
            self.out -= 1
            return None
        if n == 1 and refuses_single(error, batch.refusals, self.largest_ok):
            self.refused[batch.indices[0]] = error
            self.out -= 1
            return None
        if not is_transient(error):
            self.stop(error)
            return None
        retry_after = getattr(error, "retry_after", None)
        if retry_after is not None and retry_after > self.policy.max_retry_after:
            self.stop(error)
            return None  # e.g. an hourly window: waiting is not this call's to do
        batch.attempts += 1
        if not self.progressed and batch.attempts > self.policy.max_retries:
            self.stop(error)
            return None
        if self.clock() - self.last_progress > self.give_up_after:
            self.stop(error)
            return None
        if retry_after is not None:
            return Retry(retry_after)
        return Retry(backoff_delay(min(batch.attempts, 16), self.policy, self.rng))

    def stop(self, error: SFModelsError) -> None:
        if self.error is None:
            self.error = error
        self.out -= 1
        return None

    def abandon(self, batch: Batch) -> None:
        """A batch given up without an answer because the job stopped while it waited."""
        self.out -= 1

    # -- the outcome -----------------------------------------------------------------------------
    def vectors(self) -> dict[int, Any]:
        out: dict[int, Any] = {}
        for first, parsed in self.results.items():
            out.update(zip(self.indices_of[first], parsed[0], strict=True))
        return out

    def ordered_results(self) -> list[ParsedBatch]:
        return [self.results[first] for first in sorted(self.results)]

    @property
    def finished(self) -> bool:
        return not self.stopped and not self.refused


# -- runners --------------------------------------------------------------------------------------
Send = Callable[[list[int]], ParsedBatch]
ASend = Callable[[list[int]], Awaitable[ParsedBatch]]


def _wait(stop: threading.Event, delay: float) -> None:
    """Sleep ``delay`` seconds, or until the job stops."""
    if delay > 0:
        stop.wait(delay)


async def _await(stop: asyncio.Event, delay: float) -> None:
    if delay > 0:
        with contextlib.suppress(asyncio.TimeoutError):
            await asyncio.wait_for(stop.wait(), delay)


def run_bulk(job: BulkJob, send: Send, max_concurrency: int) -> None:
    """Run ``job`` to its end on up to ``max_concurrency`` threads (the caller's own when one
    batch is all there is). Errors of ours end up in the job; any other error is raised."""
    lock = threading.Condition()
    stop = threading.Event()
    crashed: list[BaseException] = []

    def worker() -> None:
        while True:
            with lock:
                batch = job.take()
                while batch is WAIT:
                    lock.wait()
                    batch = job.take()
            if batch is None:
                return
            while True:
                try:
                    parsed = send(batch.indices)
                except SFModelsError as exc:
                    with lock:
                        decision = job.failed(batch, exc)
                        lock.notify_all()
                    if job.stopped:
                        stop.set()
                    if decision is None:
                        break
                    _wait(stop, decision.delay)
                    if job.stopped:
                        with lock:
                            job.abandon(batch)
                            lock.notify_all()
                        break
                except BaseException as exc:
                    with lock:
                        crashed.append(exc)
                        job.stop(SFModelsError(f"{type(exc).__name__}: {exc}"))
                        lock.notify_all()
                    stop.set()
                    raise
                else:
                    with lock:
                        job.succeeded(batch, parsed)
                        lock.notify_all()
                    break

    workers = min(max_concurrency, max(1, math.ceil(len(job.todo) / job.size)))
    if workers <= 1:
        worker()
        return
    pool = ThreadPoolExecutor(max_workers=workers, thread_name_prefix="sfmodels-batch")
    try:
        futures = [pool.submit(worker) for _ in range(workers)]
        for future in futures:
            future.exception()  # wait; a crash is re-raised below, after every worker ended
    except BaseException:  # interrupted: the workers finish the request they are in, then stop
        with lock:
            if job.error is None:
                job.error = SFModelsError("interrupted")
            lock.notify_all()
        stop.set()
        pool.shutdown(wait=False, cancel_futures=True)
        raise
    pool.shutdown(wait=True)
    if crashed:
        raise crashed[0]


async def arun_bulk(job: BulkJob, send: ASend, max_concurrency: int) -> None:
    """Run ``job`` to its end with up to ``max_concurrency`` tasks."""
    changed = asyncio.Condition()
    stop = asyncio.Event()

    async def worker() -> None:
        while True:
            async with changed:
                batch = job.take()
                while batch is WAIT:
                    await changed.wait()
                    batch = job.take()
            if batch is None:
                return
            while True:
                try:
                    parsed = await send(batch.indices)
                except SFModelsError as exc:
                    decision = job.failed(batch, exc)
                    if job.stopped:
                        stop.set()
                    async with changed:
                        changed.notify_all()
                    if decision is None:
                        break
                    await _await(stop, decision.delay)
                    if job.stopped:
                        job.abandon(batch)
                        async with changed:
                            changed.notify_all()
                        break
                except BaseException as exc:
                    if job.error is None:
                        job.stop(SFModelsError(f"{type(exc).__name__}: {exc}"))
                    stop.set()
                    async with changed:
                        changed.notify_all()
                    raise
                else:
                    job.succeeded(batch, parsed)
                    async with changed:
                        changed.notify_all()
                    break

    workers = min(max_concurrency, max(1, math.ceil(len(job.todo) / job.size)))
    if workers <= 1:
        await worker()
        return
    tasks = [asyncio.ensure_future(worker()) for _ in range(workers)]
    try:
        await asyncio.gather(*tasks)
    except BaseException:  # cancelled, or a bug: stop the others too
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
        raise


# -- bulk embedding: the plan both clients run, and resuming it -----------------------------------
@dataclass
class EmbedRequest:
    """The path and body of every batch of one bulk embed (each batch adds its ``input``).

    ``optional``: fields the call can do without (``encoding_format``): a 400 that names one
    drops it and the batch is sent again, rather than failing the call.
    """

    path: str
    body: dict[str, Any]
    optional: tuple[str, ...] = ()

    def body_for(self, texts: list[str], indices: list[int]) -> dict[str, Any]:
        return {**self.body, "input": [texts[i] for i in indices]}

    def drop_refused(self, error: SFModelsError, sent: dict[str, Any]) -> str | None:
        """The optional field of ``sent`` that ``error`` refuses by name, now dropped (another
        batch may have dropped it first); None if there is none."""
        said = (error.provider_message or error.message or "").lower()
        for name in self.optional:
            if name in sent and name in said:
                self.body = {k: v for k, v in self.body.items() if k != name}
                return name
        return None


@dataclass
class EmbedPlan:
    """One bulk embed: its texts, its job, where compact vectors go, and what an earlier
    attempt already did."""

    target: str
    texts: list[str]
    job: BulkJob
    sink: VectorSink | None = None
    #: The checks of vectors kept as lists (compact vectors are checked by the sink).
    check: VectorCheck = field(default_factory=VectorCheck)
    prior_vectors: dict[int, Any] = field(default_factory=dict)
    prior_usage: Usage | None = None
    prior_raw: list[Any] = field(default_factory=list)
    prior_model: str | None = None

    def keep(self, indices: list[int], batch: ParsedBatch,
             content: bytes | None = None) -> ParsedBatch:
        """A batch just read: one vector per text, checked, and kept as lists or written to
        the sink (a :class:`~sfmodels_core.vectors.BadVector` names the first that is wrong).
        ``content``: the body's bytes, which tell whether it can hold a bool at all."""
        vectors, model, usage, rest = expect_vectors(batch, len(indices))
        bools = content is None or (any(type(vector) is list for vector in vectors)
                                    and may_hold_bools(content))
        if self.sink is None:
            return self.check.lists(indices, vectors, bools), model, usage, rest
        self.sink.put(indices, vectors, bools)
        return StoredRows(self.sink, indices), model, usage, rest

    def outcome(self) -> EmbeddingResult[Any]:
        """Every vector in input order, or the error with everything done so far."""
        job = self.job
        batches = job.ordered_results()
        usage = Usage.total([self.prior_usage, *(batch[2] for batch in batches)])
        raw = self.prior_raw + [batch[3] for batch in batches]
        model = self.prior_model or next((batch[1] for batch in batches if batch[1]), None)
        total = len(self.texts)
        if job.finished and len(self.prior_vectors) + job.done == total:
            if self.sink is not None:
                vectors: Any = self.sink.vectors()
            else:
                by_index = self.prior_vectors
                by_index.update(job.vectors())
                vectors = [by_index[i] for i in range(total)]
            return EmbeddingResult.model_construct(vectors=vectors, model=model, usage=usage,
                                                   raw=raw)
        done = self.prior_vectors
        done.update(job.vectors())
        cause = job.error or next(iter(job.refused.values()))
        error = make_bulk_error(
            cause, vectors=done, missing=[i for i in range(total) if i not in done],
            refused=dict(job.refused), total=total, target=self.target,
            texts_digest=texts_digest(self.texts), usage=usage, raw=raw, sink=self.sink)
        error.served_model = model  # type: ignore[attr-defined]
        raise error


def texts_digest(texts: list[str]) -> str:
    """A digest of the texts and their order, so a resume can tell they are the same."""
    digest = hashlib.sha256()
    for text in texts:
        data = text.encode("utf-8", "surrogatepass")
        digest.update(len(data).to_bytes(8, "big"))
        digest.update(data)
    return digest.hexdigest()


def check_resume(error: Any, target: str, texts: list[str], provider: str) -> None:
    if not isinstance(error, BulkEmbeddingError):
        raise InvalidInputError("resume_from must be the BulkEmbeddingError an earlier embed "
                                f"raised, got {type(error).__name__}")
    if error.provider is not None and error.provider != provider:
        raise InvalidInputError(f"resume_from comes from a {error.provider} call, not "
                                f"{provider}")
    if error.target != target:
        raise InvalidInputError(f"resume_from was made with {error.target!r}, not {target!r}: "
                                "vectors of two models cannot be mixed")
    if error.total != len(texts) or error.texts_digest != texts_digest(texts):
        raise InvalidInputError(f"resume_from was made for other texts ({error.total} texts); "
                                "pass the same texts in the same order")

"""Bulk work that finishes: batches, progress-aware retries, splitting, and no lost work.

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
    RateLimitError,
    ResponseValidationError,
    ServerError,
    SFModelsError,
)
from .options import RetryPolicy
from .types import ParsedBatch

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


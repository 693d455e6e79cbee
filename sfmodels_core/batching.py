"""Bulk work: split inputs into batches and run a bounded number of them at once.

Results come back in input order whatever order the batches finish in. Sync runs use a small
thread pool over the caller's shared HTTP client; async runs use a semaphore.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from typing import TypeVar

T = TypeVar("T")
R = TypeVar("R")


def split(items: Sequence[T], size: int) -> list[Sequence[T]]:
    if size < 1:
        raise ValueError("batch size must be at least 1")
    return [items[i:i + size] for i in range(0, len(items), size)]


def run_batches(fn: Callable[[Sequence[T]], R], batches: list[Sequence[T]],
                max_concurrency: int) -> list[R]:
    if len(batches) <= 1 or max_concurrency <= 1:
        return [fn(batch) for batch in batches]
    pool = ThreadPoolExecutor(max_workers=min(max_concurrency, len(batches)),
                              thread_name_prefix="sfmodels-batch")
    try:
        return list(pool.map(fn, batches))
    finally:  # on the first failure, batches not yet started are dropped
        pool.shutdown(wait=True, cancel_futures=True)


async def arun_batches(fn: Callable[[Sequence[T]], Awaitable[R]], batches: list[Sequence[T]],
                       max_concurrency: int) -> list[R]:
    if len(batches) <= 1:
        return [await fn(batch) for batch in batches]
    semaphore = asyncio.Semaphore(max(1, max_concurrency))

    async def one(batch: Sequence[T]) -> R:
        async with semaphore:
            return await fn(batch)

    tasks = [asyncio.ensure_future(one(batch)) for batch in batches]
    try:
        return list(await asyncio.gather(*tasks))
    except BaseException:  # the first failure cancels the batches still running
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
        raise

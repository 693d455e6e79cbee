"""The bounded pipeline that sends batches and writes them in input order.

Input is read lazily, at most ``2 * max_concurrency`` batches are queued or in flight on a
thread pool, and finished batches are written in input order while the next requests run. Each
worker encodes its own records, so what waits to be written is bytes, never lists of floats.
Memory stays flat however long the input is. Ctrl-C (:mod:`.interrupt`) stops sending, and the
batches already in flight are written.
"""

from __future__ import annotations

from collections import deque
from collections.abc import Callable, Iterable, Iterator
from concurrent.futures import Future, ThreadPoolExecutor
from concurrent.futures import TimeoutError as WaitTimeout
from itertools import islice

from .interrupt import Stop
from .out_file import Output
from .progress import Progress

#: Batches queued or in flight at once, per allowed concurrent request.
WINDOW_PER_REQUEST = 2

Batch = list[tuple[str, str, str]]


def batches(items: Iterable[tuple[str, str, str]],
            size: int) -> Iterator[list[tuple[str, str, str]]]:
    iterator = iter(items)
    while batch := list(islice(iterator, size)):
        yield batch


def pipeline(embed_batch: Callable[[Batch], bytes], work: Iterator[Batch], output: Output,
             progress: Progress, stop: Stop, concurrency: int) -> tuple[int, Exception | None]:
    """Send batches, at most ``concurrency`` at once, and write each in input order as it
    lands while the next ones are in flight. Returns the texts written and the first error
    (after writing every batch that succeeded)."""
    window: deque[tuple[int, Future[bytes]]] = deque()
    pool = ThreadPoolExecutor(max_workers=concurrency, thread_name_prefix="sfmodels-embed")
    written = 0
    error: Exception | None = None
    stopping = False
    clean = False
    try:
        while True:
            while error is None and not stop.requested and len(window) < (
                    WINDOW_PER_REQUEST * concurrency):
                try:
                    batch = next(work, None)
                except Exception as exc:  # e.g. a line that is not UTF-8: finish, then fail
                    error = exc
                    break
                if batch is None:
                    break
                window.append((len(batch), pool.submit(embed_batch, batch)))
            if (error is not None or stop.requested) and not stopping:
                stopping = True  # drop what has not started; what is in flight is written
                window = deque(item for item in window if not item[1].cancel())
                if stop.requested:
                    progress.note(f"stopping: writing the {len(window)} batches in flight "
                                  f"(Ctrl-C again to stop at once)")
            if not window:
                break
            count, future = window[0]
            try:
                data = future.result(timeout=0.25)  # short waits so Ctrl-C is seen promptly
            except WaitTimeout:  # the builtin TimeoutError only from Python 3.11
                continue
            except Exception as exc:
                window.popleft()
                error = error or exc
                continue
            window.popleft()
            output.write(data)
            written += count
            progress.update(count)
        clean = True
    finally:
        pool.shutdown(wait=clean, cancel_futures=True)
    return written, error

"""The progress bar on a terminal (tqdm, from the cli extra); nothing when output is not one."""

from __future__ import annotations

import argparse
import sys
from collections.abc import Callable
from typing import Any

from .._output import note


class Progress:
    """A tqdm bar on a terminal (texts done, texts/s, time left, and what the client's adaptive
    limit is doing: requests it lets be in flight, 429s seen); nothing otherwise."""

    def __init__(self, total: int | None, bar: bool,
                 throttle: Callable[[], Any] | None = None) -> None:
        self.bar: Any = None
        self.throttle = throttle
        if bar:
            from tqdm import tqdm

            self.bar = tqdm(total=total, unit=" texts", file=sys.stderr, dynamic_ncols=True,
                            smoothing=0.05)

    def update(self, n: int) -> None:
        if self.bar is None:
            return
        if self.throttle is not None:
            stats = self.throttle()
            self.bar.set_postfix_str(f"{stats.limit} in flight at most, "
                                     f"{stats.rate_limited} answered 429", refresh=False)
        self.bar.update(n)

    def note(self, text: str) -> None:
        if self.bar is not None:
            self.bar.write(text, file=sys.stderr)
        else:
            note(text)

    def close(self) -> None:
        if self.bar is not None:
            self.bar.close()


def bar_wanted(args: argparse.Namespace) -> bool:
    if args.no_progress or not sys.stderr.isatty():
        return False
    try:
        import tqdm  # noqa: F401
    except ImportError:
        return False
    return True

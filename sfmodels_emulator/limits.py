"""Rate limits per model or endpoint: requests and tokens, per minute and per hour.

Salesforce documents 10,000 generation requests per minute per org and endpoint (1,000 for
embeddings and feedback), and for free and trial orgs 150 generation requests per hour, 100,000
tokens per minute and 750,000 tokens per hour. Each of those is one field of :class:`Limits`.
Databricks limits each endpoint's queries per second in a workspace, and answers 429 without
``Retry-After`` past it: ``requests_per_second``.

A request is refused while any window is full: the requests of the last minute (or hour) reach
the limit, or the tokens answered in that window do. A refused request is not counted.
"""

from __future__ import annotations

import math
from collections import deque
from dataclasses import dataclass

SECOND = 1.0
MINUTE = 60.0
HOUR = 3600.0


@dataclass(frozen=True)
class Limits:
    requests_per_second: int | None = None
    requests_per_minute: int | None = None
    requests_per_hour: int | None = None
    tokens_per_minute: int | None = None
    tokens_per_hour: int | None = None


class _Window:
    """Events of the last ``span`` seconds, oldest first, with their running total."""

    def __init__(self, span: float) -> None:
        self.span = span
        self.events: deque[tuple[float, int]] = deque()
        self.total = 0

    def expire(self, now: float) -> None:
        while self.events and self.events[0][0] <= now - self.span:
            self.total -= self.events.popleft()[1]

    def add(self, now: float, amount: int) -> None:
        self.events.append((now, amount))
        self.total += amount

    def wait(self, limit: int, now: float) -> float | None:
        """Seconds until the total is under ``limit`` again, or None if it is already."""
        if self.total < limit:
            return None
        left = self.total
        for when, amount in self.events:
            left -= amount
            if left < limit:
                return when + self.span - now
        return self.span


class RateWindows:
    """Sliding windows of request counts and answered tokens, per key and per span."""

    def __init__(self) -> None:
        self._windows: dict[tuple[str, str, float], _Window] = {}

    def _window(self, key: str, what: str, span: float, now: float) -> _Window:
        window = self._windows.get((key, what, span))
        if window is None:
            window = self._windows[(key, what, span)] = _Window(span)
        window.expire(now)
        return window

    def _limited(self, limits: Limits) -> list[tuple[str, float, int]]:
        return [(what, span, limit) for what, span, limit in (
            ("requests", SECOND, limits.requests_per_second),
            ("requests", MINUTE, limits.requests_per_minute),
            ("requests", HOUR, limits.requests_per_hour),
            ("tokens", MINUTE, limits.tokens_per_minute),
            ("tokens", HOUR, limits.tokens_per_hour)) if limit is not None]

    def admit(self, key: str, limits: Limits, now: float) -> int | None:
        """Record a request at ``now``, or return the whole seconds to wait when over a limit."""
        active = self._limited(limits)
        if not active:
            return None
        waits = [wait for what, span, limit in active
                 if (wait := self._window(key, what, span, now).wait(limit, now)) is not None]
        if waits:
            return max(1, math.ceil(max(waits)))
        for what, span, _ in active:
            if what == "requests":
                self._window(key, what, span, now).add(now, 1)
        return None

    def charge(self, key: str, count: int, limits: Limits, now: float) -> None:
        """Count ``count`` answered tokens in ``key``'s token windows (those with a limit)."""
        if count <= 0:
            return
        for what, span, _ in self._limited(limits):
            if what == "tokens":
                self._window(key, what, span, now).add(now, count)


__all__ = [
    "HOUR",
    "MINUTE",
    "SECOND",
    "Limits",
    "RateWindows",
]

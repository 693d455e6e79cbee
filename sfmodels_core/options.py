"""How a client talks to a service: one frozen options object, built the same way everywhere.

A client takes its credentials and one :class:`ClientOptions`; the LangChain and LlamaIndex
classes and the command line build it with :meth:`ClientOptions.build` from their own settings,
where ``None`` means "the default" (every default lives in :mod:`sfmodels_core.defaults`).
"""

from __future__ import annotations

import dataclasses
import math
from dataclasses import dataclass, field
from typing import Any

from . import defaults
from .errors import InvalidInputError

__all__ = [
    "ASYNC_HTTP",
    "ClientOptions",
    "RetryPolicy",
]

#: The values of ``ClientOptions.async_http``.
ASYNC_HTTP = ("httpx", "aiohttp")


@dataclass(frozen=True)
class RetryPolicy:
    """How hard to try. ``max_retries`` counts retries, so a call makes at most that plus one."""

    max_retries: int = defaults.MAX_RETRIES
    initial_backoff: float = defaults.INITIAL_BACKOFF
    max_backoff: float = defaults.MAX_BACKOFF
    #: Waits the server asks for (Retry-After) beyond this are not honoured: we give up instead.
    #: With the timeout bounding each attempt, a call's total time is bounded too.
    max_retry_after: float = defaults.MAX_RETRY_AFTER

    def __post_init__(self) -> None:
        _check_int("max_retries", self.max_retries, minimum=0)
        for name in ("initial_backoff", "max_backoff", "max_retry_after"):
            _check_number(name, getattr(self, name), allow_zero=True)


@dataclass(frozen=True)
class ClientOptions:
    """Timeouts, retries, pacing, pool size and bulk batching of one client.

    ``batch_size`` ``None`` means the provider's default (16 texts for Salesforce, 150 for
    Databricks). ``requests_per_minute`` ``None`` means the service's documented limits where
    there are some (Salesforce: 1,000 a minute for embeddings and feedback, 10,000 for each
    generation endpoint); a number paces every request of the client evenly.

    ``adaptive`` shares one concurrency limit among every call of the client (threads and tasks
    alike): a 429 halves it, successes grow it back by about one per round, never above
    ``max_connections``; a ``Retry-After`` holds every call to that endpoint and paces the
    client at half its recent request rate, grown back while calls wait. 429s without
    ``Retry-After`` that halving concurrency cannot stop (a per-second limit: a few requests in
    flight make too many a second) pace it too, after a one-second pause. While the client is
    paced, a call's 429 does not count against ``max_retries`` as long as other calls succeed:
    it waits for its turn (``client.throttle`` shows all of it).

    ``no_progress_timeout``: a bulk ``embed`` keeps retrying failed batches while other batches
    succeed, and gives up once nothing has succeeded for this many seconds (``None``:
    ``(max_retries + 1) * timeout``); a single call stops waiting for the client's pace this
    long after it began.
    """

    timeout: float | None = defaults.TIMEOUT
    #: Seconds to wait for a connection to open (None: as long as ``timeout``).
    connect_timeout: float | None = defaults.CONNECT_TIMEOUT
    retry: RetryPolicy = field(default_factory=RetryPolicy)
    requests_per_minute: float | None = None
    max_connections: int = defaults.MAX_CONNECTIONS
    batch_size: int | None = None
    max_concurrency: int = defaults.EMBED_MAX_CONCURRENCY
    adaptive: bool = defaults.ADAPTIVE
    no_progress_timeout: float | None = defaults.BULK_NO_PROGRESS_TIMEOUT
    #: What sends async requests: ``"httpx"``, or ``"aiohttp"`` (``pip install
    #: sfmodels[aiohttp]``), about half the CPU per call in a large fan-out.
    async_http: str = defaults.ASYNC_HTTP

    def __post_init__(self) -> None:
        for name in ("timeout", "connect_timeout"):
            if getattr(self, name) is not None:
                _check_number(name, getattr(self, name))
        if self.requests_per_minute is not None:
            _check_number("requests_per_minute", self.requests_per_minute)
        _check_int("max_connections", self.max_connections, minimum=1)
        if self.batch_size is not None:
            _check_int("batch_size", self.batch_size, minimum=1)
        _check_int("max_concurrency", self.max_concurrency, minimum=1)
        if not isinstance(self.adaptive, bool):
            raise InvalidInputError(f"adaptive must be True or False, got {self.adaptive!r}")
        if self.no_progress_timeout is not None:
            _check_number("no_progress_timeout", self.no_progress_timeout, allow_zero=True)
        if self.async_http not in ASYNC_HTTP:
            raise InvalidInputError(f"async_http must be one of {', '.join(map(repr, ASYNC_HTTP))}"
                                    f", got {self.async_http!r}")
        if not isinstance(self.retry, RetryPolicy):
            raise InvalidInputError(f"retry must be a RetryPolicy, got {self.retry!r}")

    @classmethod
    def build(cls, base: ClientOptions | None = None, *, max_retries: int | None = None,
              **settings: Any) -> ClientOptions:
        """``base`` (or the defaults) with every setting that is not ``None`` replaced.

        Takes the fields of this class and ``max_retries`` (which sets ``retry.max_retries``).
        """
        base = base or cls()
        names = {f.name for f in dataclasses.fields(cls)}
        unknown = sorted(set(settings) - names)
        if unknown:
            raise InvalidInputError(f"unknown client option(s) {', '.join(unknown)}; the options "
                                    f"are {', '.join(sorted(names | {'max_retries'}))}")
        changes = {name: value for name, value in settings.items() if value is not None}
        if max_retries is not None:
            changes["retry"] = dataclasses.replace(changes.get("retry", base.retry),
                                                   max_retries=max_retries)
        return dataclasses.replace(base, **changes) if changes else base

    @property
    def max_retries(self) -> int:
        return self.retry.max_retries

    @property
    def bulk_give_up_after(self) -> float:
        """Seconds without any success after which a bulk call gives up."""
        if self.no_progress_timeout is not None:
            return float(self.no_progress_timeout)
        return (self.retry.max_retries + 1) * (self.timeout or defaults.TIMEOUT)


def _check_number(name: str, value: Any, *, allow_zero: bool = False) -> None:
    """A number of seconds (or a rate) the client can wait on: finite, and positive (or zero
    when ``allow_zero``). Infinity is refused like NaN: a call must end, and no setting means
    "forever" (``None`` leaves a timeout to the default)."""
    ok = isinstance(value, (int, float)) and not isinstance(value, bool) and math.isfinite(
        value) and (value > 0 or (allow_zero and value == 0))
    if not ok:
        kind = "zero or a finite positive number" if allow_zero else "a finite positive number"
        raise InvalidInputError(f"{name} must be {kind}, got {value!r}")


def _check_int(name: str, value: Any, *, minimum: int) -> None:
    if not isinstance(value, int) or isinstance(value, bool) or value < minimum:
        raise InvalidInputError(f"{name} must be an integer of at least {minimum}, got {value!r}")

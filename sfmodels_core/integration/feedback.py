"""Feedback on Salesforce generations, the same in both frameworks.

Both feedback handlers record the generation ids of every Salesforce call in a
:class:`GenerationLog` (by the framework's run or span id and every run or span above it), and
send feedback through :func:`feedback_requests` and :func:`submit`/:func:`asubmit`, so that
they accept the same ratings, rate the same generations and return the same
:class:`FeedbackSubmission`. The rule for which generation is rated: the one whose answer the
user saw, that is the model call that ended last under the chosen run (a chain that condensed
the question, then answered it, rates the answer). A tool or structured-output answer whose
first reply had to be repaired is one call with two generation ids: both are rated, the
answering one first.
"""

from __future__ import annotations

import threading
from collections import OrderedDict
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from .. import defaults
from ..errors import InvalidInputError

if TYPE_CHECKING:
    from ..salesforce import FeedbackResult, SalesforceClient

__all__ = [
    "RATINGS",
    "FeedbackSubmission",
    "GenerationLog",
    "GenerationRecord",
    "asubmit",
    "feedback_requests",
    "normalize_rating",
    "submit",
]

RATINGS = ("GOOD", "BAD")


def normalize_rating(rating: Any, text: str | None = None) -> str | None:
    """``"GOOD"`` or ``"BAD"`` from any letter case; ``None`` only with feedback text."""
    if rating is None:
        if text:
            return None
        raise InvalidInputError("feedback needs a rating ('GOOD' or 'BAD'), or text with "
                                "rating None")
    if isinstance(rating, str) and rating.strip().upper() in RATINGS:
        return rating.strip().upper()
    raise InvalidInputError(f"feedback must be 'GOOD' or 'BAD' (any letter case), got "
                            f"{rating!r}")


@dataclass
class GenerationRecord:
    """What one model call produced: its Salesforce generation ids (the answering one first),
    or, for a Databricks call, the id of the MLflow span it ran in (``trace_id`` set)."""

    run_id: str
    generation_ids: list[str] = field(default_factory=list)
    model: str | None = None
    trace_id: str | None = None


class GenerationLog:
    """Generation ids by run id and by the ids of the runs above it, for at most ``max_runs``
    model runs (the oldest are forgotten first, with every key that pointed at them).

    ``record`` files a model run under its own id and each id in ``ancestors``; ``find`` answers
    for any of those ids with the model run recorded last under it (the answering one);
    ``latest`` gives the most recent run.
    """

    def __init__(self, max_runs: int = defaults.FEEDBACK_MAX_RUNS) -> None:
        if not isinstance(max_runs, int) or max_runs < 1:
            raise InvalidInputError(f"max_runs must be at least 1, got {max_runs!r}")
        self.max_runs = max_runs
        self._runs: OrderedDict[str, tuple[GenerationRecord, tuple[str, ...]]] = OrderedDict()
        self._by_key: dict[str, list[str]] = {}
        self._lock = threading.Lock()

    def record(self, record: GenerationRecord, ancestors: Iterable[object] = ()) -> None:
        if not record.generation_ids:
            return
        keys = tuple(dict.fromkeys(str(k) for k in (record.run_id, *ancestors)))
        with self._lock:
            self._forget(record.run_id)
            self._runs[record.run_id] = (record, keys)
            for key in keys:
                self._by_key.setdefault(key, []).insert(0, record.run_id)
            while len(self._runs) > self.max_runs:
                self._forget(next(iter(self._runs)))

    def _forget(self, run_id: str) -> None:
        entry = self._runs.pop(run_id, None)
        if entry is None:
            return
        for key in entry[1]:
            runs = self._by_key.get(key)
            if runs is not None:
                runs.remove(run_id)
                if not runs:
                    del self._by_key[key]

    def discard(self, key: object) -> None:
        """Forget every model run recorded under ``key`` (a run that failed: no answer of it,
        nor of any call made under it, can be rated any more, by any key)."""
        with self._lock:
            for run_id in list(self._by_key.get(str(key), ())):
                self._forget(run_id)

    def find(self, key: object) -> GenerationRecord | None:
        """The model run recorded last under ``key`` (None when there is none)."""
        with self._lock:
            runs = self._by_key.get(str(key))
            return self._runs[runs[0]][0] if runs else None

    def latest(self) -> GenerationRecord | None:
        with self._lock:
            return next(reversed(self._runs.values()))[0] if self._runs else None

    def __len__(self) -> int:
        """The number of model runs remembered."""
        with self._lock:
            return len(self._runs)


@dataclass(frozen=True)
class Assessment:
    """One rating logged in MLflow: ``feedback_id`` is the assessment id, ``generation_id`` the
    span rated (``None`` for the trace as a whole). Exported by ``mlflow_feedback``, which logs
    it; defined here, with the submission that holds it."""

    feedback_id: str
    trace_id: str
    generation_id: str | None
    value: bool


@dataclass(frozen=True)
class FeedbackSubmission:
    """What one ``submit`` stored: one result per generation rated, a ``FeedbackResult`` from
    Salesforce or an MLflow ``Assessment`` for Databricks (``feedback_id`` the assessment id,
    ``generation_id`` the span rated)."""

    results: tuple[FeedbackResult | Assessment, ...]

    @property
    def feedback_ids(self) -> list[str]:
        return [r.feedback_id for r in self.results]

    @property
    def generation_ids(self) -> list[str]:
        """The generations rated (an assessment of a whole MLflow trace names none)."""
        return [r.generation_id for r in self.results if r.generation_id is not None]

    @property
    def generation_id(self) -> str:
        """The first generation rated (the answering one)."""
        ids = self.generation_ids
        if not ids:
            raise InvalidInputError("this feedback rated a whole MLflow trace, no generation")
        return ids[0]

    @property
    def feedback_id(self) -> str:
        """The first feedback id (the answering generation's)."""
        return self.results[0].feedback_id


def feedback_requests(record: GenerationRecord, rating: Any, *, text: str | None = None,
                      comment: str | None = None, user: str | None = None,
                      source: str | None = "human",
                      app_feedback: Mapping[str, Any] | None = None,
                      app_generation_id: str | None = None, app_generation: str | None = None,
                      feedback_id: str | None = None) -> list[dict[str, Any]]:
    """The ``submit_feedback`` keyword arguments for every generation of ``record``.

    ``comment`` is another name for ``text`` (the name the Databricks handlers use; it is sent as
    ``feedbackText``): give one or the other. ``user`` is sent as ``appFeedback["user"]``.

    A ``feedback_id`` makes a retried submission idempotent: the service keys feedback by id, so
    the generations get ``feedback_id``, ``feedback_id-2``, ... in order. Every argument is
    checked even when ``record`` has no generation, so a call with an empty record validates.
    """
    if text is not None and comment is not None:
        raise InvalidInputError("give the feedback text as text= or as comment=, not both")
    text = comment if text is None else text
    value = normalize_rating(rating, text)
    app_feedback = _with_user(app_feedback, user)
    return [{"generation_id": gid, "feedback": value, "text": text, "source": source,
             "app_feedback": app_feedback, "app_generation": app_generation,
             "app_generation_id": app_generation_id or record.run_id,
             "feedback_id": None if feedback_id is None else (
                 feedback_id if n == 1 else f"{feedback_id}-{n}")}
            for n, gid in enumerate(record.generation_ids, start=1)]


def _with_user(app_feedback: Mapping[str, Any] | None,
               user: str | None) -> Mapping[str, Any] | None:
    if user is None:
        return app_feedback
    if not isinstance(user, str) or not user.strip():
        raise InvalidInputError(f"user must be a non-empty string, got {user!r}")
    if app_feedback is not None and app_feedback.get("user", user) != user:
        raise InvalidInputError(f"user={user!r} and app_feedback['user']="
                                f"{app_feedback['user']!r} differ: give the user once")
    return {**(app_feedback or {}), "user": user}


def submit(client: SalesforceClient, requests: list[dict[str, Any]]) -> FeedbackSubmission:
    return FeedbackSubmission(tuple(client.submit_feedback(**r) for r in requests))


async def asubmit(client: SalesforceClient,
                  requests: list[dict[str, Any]]) -> FeedbackSubmission:
    return FeedbackSubmission(tuple([await client.asubmit_feedback(**r) for r in requests]))

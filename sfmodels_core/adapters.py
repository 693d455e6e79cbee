"""Framework-neutral pieces the LangChain and LlamaIndex packages share.

- :func:`apply_stop`: stop sequences enforced on the client (the Models API has no ``stop``).
- :func:`warn_once`: one warning per process for a setting the service cannot honour.
- :class:`GenerationLog`: a bounded, thread-safe record of Salesforce generation ids by run,
  which the feedback handlers of both frameworks read.
"""

from __future__ import annotations

import threading
import warnings
from collections import OrderedDict
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field

_warned: set[str] = set()
_warned_lock = threading.Lock()


def warn_once(key: str, message: str, category: type[Warning] = UserWarning) -> None:
    with _warned_lock:
        if key in _warned:
            return
        _warned.add(key)
    warnings.warn(message, category, stacklevel=3)


def apply_stop(text: str, stop: Sequence[str] | None) -> tuple[str, bool]:
    """Cut ``text`` at the earliest stop sequence; say whether one was found."""
    if not stop:
        return text, False
    cut = min((i for s in stop if s and (i := text.find(s)) >= 0), default=-1)
    return (text[:cut], True) if cut >= 0 else (text, False)


UNSUPPORTED_SALESFORCE_PARAMS = ("temperature", "max_tokens", "top_p", "n")


def warn_unsupported_salesforce_params(**params: object) -> None:
    """The Models API has no generation parameters: say so once per setting, never silently."""
    for name, value in params.items():
        if value is not None:
            warn_once(
                f"salesforce-param-{name}",
                f"The Salesforce Models API has no '{name}' setting, so {name}={value!r} is not "
                "sent. Set generation parameters on a configured model in Einstein Studio and "
                "call it by its API name instead.")


@dataclass
class GenerationRecord:
    """The Salesforce generation ids one model run produced (one per prompt of a batch)."""

    run_id: str
    generation_ids: list[str] = field(default_factory=list)
    model: str | None = None
    text: str | None = None


class GenerationLog:
    """Generation ids by run id and by every ancestor run id, holding at most ``max_runs`` ids.

    ``record`` stores a model run's generations under its own id and each id in ``ancestors``;
    ``find`` answers for any of those ids with every generation recorded under it, newest
    first (a chain that called a model twice has two), and ``latest`` gives the most recent
    run. Oldest entries fall out first.
    """

    def __init__(self, max_runs: int = 1000) -> None:
        if max_runs < 1:
            raise ValueError("max_runs must be at least 1")
        self.max_runs = max_runs
        self._by_key: OrderedDict[str, list[GenerationRecord]] = OrderedDict()
        self._latest: GenerationRecord | None = None
        self._lock = threading.Lock()

    def record(self, record: GenerationRecord, ancestors: Iterable[str] = ()) -> None:
        if not record.generation_ids:
            return
        with self._lock:
            for key in dict.fromkeys(str(k) for k in (record.run_id, *ancestors)):
                records = self._by_key.setdefault(key, [])
                records.insert(0, record)
                del records[self.max_runs:]
                self._by_key.move_to_end(key)
            while len(self._by_key) > self.max_runs:
                self._by_key.popitem(last=False)
            self._latest = record

    def find(self, run_id: object) -> GenerationRecord | None:
        with self._lock:
            records = self._by_key.get(str(run_id))
        if not records:
            return None
        if len(records) == 1:
            return records[0]
        ids = [gid for record in records for gid in record.generation_ids]
        return GenerationRecord(str(run_id), list(dict.fromkeys(ids)), records[0].model,
                                records[0].text)

    def latest(self) -> GenerationRecord | None:
        with self._lock:
            return self._latest

    def __len__(self) -> int:
        with self._lock:
            return len(self._by_key)

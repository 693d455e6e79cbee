from __future__ import annotations

import warnings

import pytest

from sfmodels_core.adapters import (
    GenerationLog,
    GenerationRecord,
    apply_stop,
    warn_unsupported_salesforce_params,
)


@pytest.mark.parametrize("text, stop, expected", [
    ("Hello world. Bye", ["."], ("Hello world", True)),
    ("a STOP b END c", ["END", "STOP"], ("a ", True)),
    ("nothing here", ["zzz"], ("nothing here", False)),
    ("abc", None, ("abc", False)),
    ("abc", ["", "c"], ("ab", True)),
])
def test_apply_stop_cuts_at_the_earliest(text: str, stop: list[str] | None,
                                         expected: tuple[str, bool]) -> None:
    assert apply_stop(text, stop) == expected


def test_unsupported_params_warn_once_each() -> None:
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        for _ in range(3):
            warn_unsupported_salesforce_params(temperature=0.2, max_tokens=None)
    messages = [str(w.message) for w in caught if "unit-test" not in str(w.message)]
    assert sum("'temperature'" in m for m in messages) <= 1
    assert not any("max_tokens" in m for m in messages)


def test_generation_log_finds_by_run_and_ancestors_and_stays_bounded() -> None:
    log = GenerationLog(max_runs=5)
    log.record(GenerationRecord("run-1", ["g1"]), ancestors=["chain-1", "outer"])
    log.record(GenerationRecord("run-2", ["g2"]), ancestors=["chain-2", "outer"])
    assert log.find("run-1").generation_ids == ["g1"]
    assert log.find("chain-1").generation_ids == ["g1"]
    assert log.find("outer").generation_ids == ["g2", "g1"]  # every run under it, newest first
    assert log.latest().run_id == "run-2"
    assert log.find("nope") is None
    for i in range(10):
        log.record(GenerationRecord(f"r{i}", [f"x{i}"]))
    assert len(log) == 5
    assert log.find("run-1") is None and log.find("r9") is not None
    log.record(GenerationRecord("empty", []))
    assert log.latest().run_id == "r9"

"""The adapter kit both frameworks share: pure pieces, tested without a framework."""

from __future__ import annotations

import warnings
from typing import Any

import pytest

from sfmodels_core.databricks import StreamAccumulator, merge_chunks
from sfmodels_core.databricks._wire import parse_chat_chunk
from sfmodels_core.errors import InvalidInputError
from sfmodels_core.integration.feedback import (
    FeedbackSubmission,
    GenerationLog,
    GenerationRecord,
    feedback_requests,
    normalize_rating,
)
from sfmodels_core.integration.salesforce import apply_stop, stop_list, warn_unsupported
from sfmodels_core.tools import normalize_tool_choice, wire_tool_choice


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


def test_stop_list_checks_its_input() -> None:
    assert stop_list("END") == ["END"] and stop_list(("a", "b")) == ["a", "b"]
    assert stop_list(None) is None
    with pytest.raises(InvalidInputError, match="stop must be"):
        stop_list(3)


def test_unsupported_params_warn_once_each() -> None:
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        for _ in range(3):
            warn_unsupported(temperature=0.2, max_tokens=None)
    messages = [str(w.message) for w in caught]
    assert sum("'temperature'" in m for m in messages) <= 1
    assert not any("max_tokens" in m for m in messages)


# -- tool choice ----------------------------------------------------------------------------------
@pytest.mark.parametrize("choice, required, expected", [
    (None, False, "auto"), (None, True, "required"), ("auto", False, "auto"),
    ("none", False, "none"), (False, False, "none"), ("any", False, "required"),
    ("required", False, "required"), (True, False, "required"), ("add", False, "add"),
    ({"type": "function", "function": {"name": "mul"}}, False, "mul"),
    ({"name": "mul"}, False, "mul"),
])
def test_every_spelling_of_tool_choice(choice: Any, required: bool, expected: str) -> None:
    assert normalize_tool_choice(choice, ["add", "mul"], required=required) == expected


def test_tool_choice_true_with_one_tool_names_it_and_unknown_names_fail() -> None:
    assert normalize_tool_choice(True, ["add"]) == "add"
    assert wire_tool_choice(True, ["add"]) == {"type": "function", "function": {"name": "add"}}
    assert wire_tool_choice("any", ["add"]) == "required"
    for bad in ("sub", {"type": "function", "function": {"name": "sub"}}, 3):
        with pytest.raises(InvalidInputError, match="one of the bound tools"):
            wire_tool_choice(bad, ["add", "mul"])


# -- streams --------------------------------------------------------------------------------------
def _chunk(delta: dict[str, Any], finish: str | None = None, **extra: Any) -> Any:
    return parse_chat_chunk({"id": "s1", "model": "m", "choices": [
        {"index": 0, "delta": delta, "finish_reason": finish}], **extra})


def test_tool_calls_without_index_are_never_merged() -> None:
    """Gemini's OpenAI-compatible streams: no index; a new id starts a call."""
    stream = StreamAccumulator()
    pieces = [
        _chunk({"tool_calls": [{"id": "a", "function": {"name": "weather", "arguments": ""}}]}),
        _chunk({"tool_calls": [{"function": {"arguments": '{"city": "Paris"}'}}]}),
        _chunk({"tool_calls": [{"id": "b", "function": {"name": "time",
                                                         "arguments": '{"tz": "CET"}'}}]}),
        _chunk({}, "tool_calls"),
    ]
    positions = [[p.position for p in stream.add(piece).tool_calls] for piece in pieces]
    assert positions == [[0], [0], [1], []]
    calls = [(c.id, c.name, c.arguments) for c in stream.tool_calls]
    assert calls == [("a", "weather", '{"city": "Paris"}'), ("b", "time", '{"tz": "CET"}')]
    assert stream.finish_reason == "tool_calls"
    merged = merge_chunks(pieces)
    assert [c.name for c in merged.tool_calls] == ["weather", "time"]


def test_tool_calls_with_index_join_by_index() -> None:
    stream = StreamAccumulator()
    for piece in (
        _chunk({"tool_calls": [{"index": 0, "id": "a", "function": {"name": "f"}},
                               {"index": 1, "id": "b", "function": {"name": "g"}}]}),
        _chunk({"tool_calls": [{"index": 1, "function": {"arguments": '{"y": 2}'}}]}),
        _chunk({"tool_calls": [{"index": 0, "function": {"arguments": '{"x": 1}'}}]}),
    ):
        stream.add(piece)
    assert [(c.name, c.arguments) for c in stream.tool_calls] == [
        ("f", '{"x": 1}'), ("g", '{"y": 2}')]


@pytest.mark.parametrize("usages, expected", [
    # cumulative on every chunk (Llama)
    ([{"prompt_tokens": 5, "completion_tokens": 1, "total_tokens": 6},
      {"prompt_tokens": 5, "completion_tokens": 2, "total_tokens": 7}], (5, 2)),
    # completion tokens null until the last chunk (Claude)
    ([{"prompt_tokens": 5, "completion_tokens": None, "total_tokens": None},
      {"prompt_tokens": 5, "completion_tokens": 2, "total_tokens": 7}], (5, 2)),
    # none at all: None, never zeros presented as counts
    ([None, None], None),
])
def test_usage_is_the_last_reported(usages: list[Any], expected: Any) -> None:
    stream = StreamAccumulator()
    for usage in usages:
        stream.add(_chunk({"content": "x"}, **({"usage": usage} if usage else {})))
    got = stream.usage
    assert (None if got is None else (got.prompt_tokens, got.completion_tokens)) == expected


def test_usage_in_a_final_chunk_without_choices() -> None:
    """GPT-5 through external models: usage alone, on a last chunk with "choices": []."""
    stream = StreamAccumulator()
    stream.add(_chunk({"content": "Hi"}, "stop"))
    stream.add(parse_chat_chunk({"id": "s1", "choices": [], "usage": {
        "prompt_tokens": 3, "completion_tokens": 1, "total_tokens": 4}}))
    assert stream.text == "Hi" and stream.usage is not None
    assert stream.usage.total_tokens == 4 and stream.finish_reason == "stop"


# -- feedback -------------------------------------------------------------------------------------
@pytest.mark.parametrize("rating, expected", [("GOOD", "GOOD"), ("bad", "BAD"),
                                              (" Good ", "GOOD")])
def test_ratings_in_any_letter_case(rating: str, expected: str) -> None:
    assert normalize_rating(rating) == expected


@pytest.mark.parametrize("rating", ["MEH", "", 1, True])
def test_bad_ratings_are_refused(rating: Any) -> None:
    with pytest.raises(InvalidInputError, match="'GOOD' or 'BAD'"):
        normalize_rating(rating)


def test_a_rating_of_none_needs_text() -> None:
    assert normalize_rating(None, "a note") is None
    with pytest.raises(InvalidInputError, match="text"):
        normalize_rating(None)


def test_feedback_requests_rate_every_generation_with_stable_ids() -> None:
    record = GenerationRecord("run-1", ["g2", "g1"])
    requests = feedback_requests(record, "good", text="ok", feedback_id="fb")
    assert [(r["generation_id"], r["feedback"], r["feedback_id"]) for r in requests] == [
        ("g2", "GOOD", "fb"), ("g1", "GOOD", "fb-2")]
    assert {r["app_generation_id"] for r in requests} == {"run-1"}


def test_generation_log_finds_by_run_and_ancestors_and_stays_bounded() -> None:
    log = GenerationLog(max_runs=5)
    log.record(GenerationRecord("run-1", ["g1"]), ancestors=["chain-1", "outer"])
    log.record(GenerationRecord("run-2", ["g2"]), ancestors=["chain-2", "outer"])
    assert log.find("run-1").generation_ids == ["g1"]
    assert log.find("chain-1").generation_ids == ["g1"]
    assert log.find("outer").generation_ids == ["g2"]  # the run that answered: the last one
    assert log.latest().run_id == "run-2"
    assert log.find("nope") is None
    for i in range(10):
        log.record(GenerationRecord(f"r{i}", [f"x{i}"]))
    assert len(log) == 5
    assert log.find("run-1") is None and log.find("r9") is not None
    assert log.find("outer") is None  # forgotten with the runs it pointed at
    log.record(GenerationRecord("empty", []))
    assert log.latest().run_id == "r9"


def test_max_runs_counts_model_runs_not_ancestor_keys() -> None:
    """Each run filed under three ancestors still uses one of the max_runs places."""
    log = GenerationLog(max_runs=3)
    for i in range(3):
        log.record(GenerationRecord(f"run-{i}", [f"g{i}"]), ancestors=[f"chain-{i}", "a", "b"])
    assert len(log) == 3
    assert [log.find(f"chain-{i}").generation_ids for i in range(3)] == [["g0"], ["g1"], ["g2"]]


def test_a_failed_run_forgets_every_call_made_under_it() -> None:
    log = GenerationLog()
    log.record(GenerationRecord("run-0", ["g0"]), ancestors=["other"])
    log.record(GenerationRecord("run-1", ["g1"]), ancestors=["step", "chain"])
    log.record(GenerationRecord("run-2", ["g2"]), ancestors=["chain"])
    log.discard("chain")  # its answering call failed after two calls answered
    assert [log.find(k) for k in ("chain", "step", "run-1", "run-2")] == [None] * 4
    assert log.latest().run_id == "run-0" and len(log) == 1
    log.discard("nothing")
    log.record(GenerationRecord("run-3", ["g3"]), ancestors=["chain"])  # a key used again
    assert log.find("chain").generation_ids == ["g3"]


def test_feedback_requests_send_a_comment_as_text_and_the_user_in_app_feedback() -> None:
    record = GenerationRecord("run-1", ["g1"])
    (request,) = feedback_requests(record, "bad", comment="wrong", user="ann",
                                   app_feedback={"score": 1})
    assert request["text"] == "wrong" and request["app_feedback"] == {"score": 1, "user": "ann"}
    (plain,) = feedback_requests(record, "good", text="ok")
    assert plain["text"] == "ok" and plain["app_feedback"] is None
    assert feedback_requests(GenerationRecord("nothing"), "good", user="ann") == []
    for kwargs, message in [({"text": "a", "comment": "b"}, "not both"),
                            ({"user": " "}, "user must be"),
                            ({"user": "ann", "app_feedback": {"user": "bo"}}, "differ")]:
        with pytest.raises(InvalidInputError, match=message):
            feedback_requests(GenerationRecord("nothing"), "good", **kwargs)


def test_a_submission_lists_the_ids_of_salesforce_results_and_mlflow_assessments() -> None:
    from sfmodels_core.integration.mlflow_feedback import Assessment
    from sfmodels_core.salesforce import FeedbackResult

    salesforce = FeedbackSubmission((FeedbackResult(feedback_id="f1", generation_id="g1"),
                                     FeedbackResult(feedback_id="f2", generation_id="g2")))
    assert (salesforce.feedback_ids, salesforce.generation_ids) == (["f1", "f2"], ["g1", "g2"])
    mlflow = FeedbackSubmission((Assessment("a-1", "tr-1", "span-1", True),))
    assert (mlflow.feedback_id, mlflow.generation_id) == ("a-1", "span-1")
    whole_trace = FeedbackSubmission((Assessment("a-2", "tr-1", None, False),))
    assert whole_trace.generation_ids == []
    with pytest.raises(InvalidInputError, match="whole MLflow trace"):
        _ = whole_trace.generation_id

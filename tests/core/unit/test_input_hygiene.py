"""Input a user passes by accident: white space around secrets, text JSON cannot carry, and
settings no client can work with. Each is handled before anything is sent."""

from __future__ import annotations

import warnings
from typing import Any

import httpx
import pytest

from sfmodels_core import ClientOptions, DatabricksClient, SalesforceClient
from sfmodels_core import _validation as validation
from sfmodels_core.errors import InvalidInputError
from sfmodels_core.options import RetryPolicy

pytestmark = pytest.mark.disable_socket


def test_white_space_around_secrets_is_removed_and_said_once(
        monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(validation, "_warned", set())
    seen: list[str] = []

    def answer(request: httpx.Request) -> httpx.Response:
        seen.append(request.headers["authorization"])
        return httpx.Response(200, json={"data": [{"index": 0, "embedding": [1.0]}]})

    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        for token in ("dapi-token\n", "  dapi-token \r\n"):
            client = DatabricksClient(host="https://db.example", api_key=token, env={},
                                      transport=httpx.MockTransport(answer))
            client.embed("e", ["x"])
    assert seen == ["Bearer dapi-token", "Bearer dapi-token"]
    said = [str(w.message) for w in caught if "white space" in str(w.message)]
    assert len(said) == 1 and "dapi-token" not in said[0]


def test_env_secrets_are_stripped_too() -> None:
    client = SalesforceClient(env={"SALESFORCE_ACCESS_TOKEN": "sf-token\n",
                                   "SALESFORCE_API_BASE": "https://sf.example/v1"})
    assert client.auth.source.static_token().value.get_secret_value() == "sf-token"


def test_a_lone_surrogate_is_bad_input_not_a_serializer_error() -> None:
    def answer(request: httpx.Request) -> httpx.Response:  # pragma: no cover - never reached
        raise AssertionError("nothing may be sent")

    client = DatabricksClient(host="https://db.example", api_key="t", env={},
                              transport=httpx.MockTransport(answer))
    with pytest.raises(InvalidInputError, match="UTF-8"):
        client.chat("e", [{"role": "user", "content": "bad \udc80 text"}])


@pytest.mark.parametrize("bad", [
    {"timeout": 0}, {"timeout": -1}, {"max_retries": -1}, {"requests_per_minute": 0},
    {"batch_size": 0}, {"max_concurrency": 0}, {"max_connections": 0},
    {"timeout": True}, {"max_retries": 1.5},
    # a call must end: no number of seconds is "forever", and NaN is no number of seconds
    {"timeout": float("inf")}, {"timeout": float("nan")}, {"connect_timeout": float("inf")},
    {"connect_timeout": -1}, {"no_progress_timeout": float("inf")},
    {"requests_per_minute": float("inf")}])
def test_settings_no_client_can_use_are_refused_at_construction(bad: dict[str, Any]) -> None:
    with pytest.raises(InvalidInputError, match=next(iter(bad))):
        ClientOptions.build(**bad)
    with pytest.raises(InvalidInputError):
        DatabricksClient(host="https://db.example", api_key="t", env={}, **bad)


@pytest.mark.parametrize("name", ["initial_backoff", "max_backoff", "max_retry_after"])
@pytest.mark.parametrize("value", [float("inf"), float("nan"), -1.0])
def test_backoffs_must_be_finite(name: str, value: float) -> None:
    with pytest.raises(InvalidInputError, match=f"{name} must be zero or a finite positive "
                                                "number"):
        RetryPolicy(**{name: value})
    assert getattr(RetryPolicy(**{name: 0}), name) == 0


def test_unknown_client_options_are_named() -> None:
    with pytest.raises(InvalidInputError, match="timout"):
        SalesforceClient(api_key="t", env={}, timout=5)


def test_retry_after_zero_waits_a_little_all_the_same() -> None:
    import random

    from sfmodels_core import defaults
    from sfmodels_core._retry import RetryState
    from sfmodels_core.databricks._wire import parse_error
    from sfmodels_core.options import RetryPolicy

    state = RetryState(RetryPolicy(max_retries=3), "Databricks", parse_error, random.Random(0))
    response = httpx.Response(429, headers={"retry-after": "0"},
                              request=httpx.Request("POST", "https://db.example/x"))
    assert state.delay_after_response(response) == defaults.MIN_RETRY_DELAY > 0


def test_connect_timeout_is_its_own_setting() -> None:
    client = DatabricksClient(host="https://db.example", api_key="t", env={}, timeout=30,
                              connect_timeout=2)
    timeout = client._transport.timeout
    assert (timeout.connect, timeout.read) == (2, 30)


def test_an_embedding_result_reprs_its_shape_not_its_vectors() -> None:
    from sfmodels_core.types import EmbeddingResult

    result = EmbeddingResult.model_construct(vectors=[[0.5] * 8 for _ in range(3)], model="m",
                                             usage=None, raw=[])
    assert repr(result) == str(result) == (
        "EmbeddingResult(3 vectors of 8 dimensions, model='m', usage=None)")


"""``embedding_max_inputs_429``: embeddings requests with more inputs than a model takes get 429."""

from __future__ import annotations

import httpx
import pytest

from sfmodels_emulator import Emulator

from .payloads import DATABRICKS_EMBEDDINGS, SALESFORCE_EMBEDDING_MODEL

DB = f"/serving-endpoints/{DATABRICKS_EMBEDDINGS}/invocations"
SF = f"/einstein/platform/v1/models/{SALESFORCE_EMBEDDING_MODEL}/embeddings"


def texts(n: int) -> list[str]:
    return [f"text {i}" for i in range(n)]


def test_databricks_refuses_larger_batches_with_its_429_every_time(
        emulator: Emulator, http: httpx.Client, db_headers: dict[str, str]) -> None:
    emulator.configure_model(DATABRICKS_EMBEDDINGS, embedding_max_inputs_429=16)
    for _ in range(3):
        refused = http.post(DB, headers=db_headers, json={"input": texts(17)})
        assert refused.status_code == 429 and "retry-after" not in refused.headers
        assert refused.json()["error_code"] == "REQUEST_LIMIT_EXCEEDED"
    ok = http.post(DB, headers=db_headers, json={"input": texts(16)})
    assert ok.status_code == 200 and len(ok.json()["data"]) == 16
    counters = emulator.counters()
    assert counters["input_limited"] == 3
    assert counters["inputs"]["databricks.embeddings"] == 3 * 17 + 16


def test_the_global_setting_applies_to_every_model_and_salesforce_answers_its_own_body(
        emulator: Emulator, http: httpx.Client, sf_headers: dict[str, str]) -> None:
    emulator.configure(embedding_max_inputs_429=2)
    refused = http.post(SF, headers=sf_headers, json={"input": texts(3)})
    assert refused.status_code == 429 and refused.json()["errorCode"] == "LIMIT_EXCEEDED"
    assert http.post(SF, headers=sf_headers, json={"input": texts(2)}).status_code == 200
    assert emulator.counters()["inputs"]["salesforce.embeddings"] == 5
    emulator.reset()
    assert emulator.settings()["embedding_max_inputs_429"] is None
    assert http.post(SF, headers=sf_headers, json={"input": texts(3)}).status_code == 200


@pytest.mark.parametrize("value", [0, "3", True, {"m": 3}])
def test_bad_values_are_refused(emulator: Emulator, value: object) -> None:
    with pytest.raises(ValueError, match="embedding_max_inputs_429"):
        emulator.configure(embedding_max_inputs_429=value)

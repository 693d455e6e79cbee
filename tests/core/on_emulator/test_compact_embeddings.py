"""``embed(..., compact=True)``: float32 vectors in one block, against every way an endpoint treats
``encoding_format: "base64"`` (honors it, ignores it, refuses it by name)."""

from __future__ import annotations

import json
import pickle
from array import array
from typing import Any

import httpx
import pytest

from sfmodels_core import DatabricksClient, SalesforceClient, Vectors
from sfmodels_core.errors import BulkEmbeddingError, ResponseValidationError, ServerError
from sfmodels_emulator import Emulator

ADA = "sfdc_ai__DefaultOpenAITextEmbeddingAda_002"
GTE = "databricks-gte-large-en"
TEXTS = [f"passage {i} about subject {i % 23} and detail {i % 7}" for i in range(400)]


class Recording(httpx.HTTPTransport):
    """A transport that keeps the JSON body of every API request it sends."""

    def __init__(self) -> None:
        super().__init__()
        self.bodies: list[dict[str, Any]] = []

    def handle_request(self, request: httpx.Request) -> httpx.Response:
        if request.url.path.endswith("/invocations"):
            self.bodies.append(json.loads(request.read()))
        return super().handle_request(request)


def dbx(emu: Emulator, **options: Any) -> DatabricksClient:
    return DatabricksClient(host=emu.databricks_host, api_key=emu.databricks_token, env={},
                            **options)


def as_float32(vectors: list[list[float]]) -> list[list[float]]:
    return [array("f", vector).tolist() for vector in vectors]


@pytest.mark.parametrize("mode", ["honor", "ignore", "reject"])
def test_compact_vectors_are_the_float32_of_the_lists_whatever_the_endpoint_does(
        emulator: Emulator, mode: str) -> None:
    with dbx(emulator) as client:
        lists = client.embed(GTE, TEXTS).vectors
    emulator.configure(embedding_base64=mode)
    with dbx(emulator) as client:
        compact = client.embed(GTE, TEXTS, compact=True)
        again = client.embed(GTE, TEXTS[:10], compact=True)
    assert isinstance(compact.vectors, Vectors) and compact.vectors.dim == 1024
    assert compact.vectors.tolist() == as_float32(lists)
    assert again.vectors.tolist() == as_float32(lists[:10])


def test_the_base64_request_and_what_is_sent_after_a_refusal(emulator: Emulator) -> None:
    recording = Recording()
    with dbx(emulator, transport=recording, batch_size=100, max_concurrency=1) as client:
        client.embed(GTE, TEXTS, compact=True)
        assert [body.get("encoding_format") for body in recording.bodies] == ["base64"] * 4
        client.embed(GTE, TEXTS)  # lists: never asked for base64
        assert "encoding_format" not in recording.bodies[-1]
        recording.bodies.clear()
        emulator.configure(embedding_base64="reject")
        client.embed(GTE, TEXTS, compact=True)
        # refused once by name, then left out for the rest of this call and the next ones
        assert [body.get("encoding_format") for body in recording.bodies] == \
            ["base64", None, None, None, None]
        recording.bodies.clear()
        client.embed(GTE, TEXTS[:50], compact=True)
        assert [body.get("encoding_format") for body in recording.bodies] == [None]
    counters = emulator.counters()
    assert counters["requests"]["databricks.invocations"] >= 5


def test_a_caller_asking_for_base64_without_compact_still_gets_lists(
        emulator: Emulator) -> None:
    with dbx(emulator) as client:
        lists = client.embed(GTE, TEXTS[:20]).vectors
        asked = client.embed(GTE, TEXTS[:20], encoding_format="base64").vectors
    assert isinstance(asked, list) and asked == as_float32(lists)


async def test_async_and_salesforce_compact(emulator: Emulator) -> None:
    async with dbx(emulator) as client:
        lists = (await client.aembed(GTE, TEXTS)).vectors
        compact = (await client.aembed(GTE, TEXTS, compact=True)).vectors
    assert compact.tolist() == as_float32(lists)
    sf = SalesforceClient(domain=emulator.salesforce_domain,
                          client_id=emulator.salesforce_client_id,
                          client_secret=emulator.salesforce_client_secret, env={})
    async with sf:
        lists = sf.embed(ADA, TEXTS[:40]).vectors
        result = await sf.aembed(ADA, TEXTS[:40], compact=True)
    assert result.vectors.tolist() == as_float32(lists) and result.vectors.dim == 1536
    assert "float32" in repr(result) and len(repr(result)) < 200


@pytest.mark.parametrize("use_async", [False, True])
async def test_a_failed_compact_job_hands_back_rows_and_resumes_into_the_same_block(
        emulator: Emulator, use_async: bool) -> None:
    texts = TEXTS[:200]
    client = dbx(emulator, batch_size=10, max_concurrency=1, max_retries=0,
                 no_progress_timeout=0)
    clean = client.embed(GTE, texts, compact=True).vectors
    emulator.reset()
    emulator.configure(fault_rate=0.3, fault_kinds=["500"])  # seed 0: the 4th request fails
    with pytest.raises(BulkEmbeddingError) as info:
        await client.aembed(GTE, texts, compact=True) if use_async \
            else client.embed(GTE, texts, compact=True)
    err = info.value
    assert isinstance(err, ServerError) and err.missing == list(range(30, 200))
    assert {i: row.tolist() for i, row in err.vectors.items()} == \
        {i: clean[i].tolist() for i in range(30)}
    copied = pickle.loads(pickle.dumps(err))  # rows are views of the block: copied to pickle
    assert copied.vectors[29].tolist() == clean[29].tolist() and "sink" not in vars(copied)
    emulator.reset()
    resumed = (await client.aembed(GTE, texts, resume_from=err, compact=True) if use_async
               else client.embed(GTE, texts, resume_from=err, compact=True)).vectors
    assert resumed == clean
    assert resumed.array is err.vectors[0].obj  # filled in place: no second block
    assert emulator.counters()["inputs"]["databricks.embeddings"] == 170
    # a lists error resumed compact (and the other way) works too
    lists_err = pickle.loads(pickle.dumps(err))
    as_lists = client.embed(GTE, texts, resume_from=lists_err).vectors
    assert all(type(vector) is list for vector in as_lists)
    assert as_float32(as_lists) == clean.tolist()
    client.close()


@pytest.mark.parametrize("data, message", [
    ([{"embedding": [0.1, 0.2]}, {"embedding": [0.1]}], "text 1 .*cannot be mixed"),
    ([{"embedding": "AAAA"}, {"embedding": "not base64"}], "text 0 is base64 of 3 bytes"),
    ([{"embedding": [0.1, "x"]}, {"embedding": [0.1, 0.2]}], "text 0 holds a string"),
])
def test_vectors_that_do_not_fit_are_a_typed_error(data: list[Any], message: str) -> None:
    body = {"data": data, "usage": {"prompt_tokens": 2, "total_tokens": 2}}
    transport = httpx.MockTransport(lambda request: httpx.Response(200, json=body))
    with DatabricksClient(host="https://example.cloud.databricks.com", api_key="dapi-x",
                          env={}, transport=transport) as client, \
            pytest.raises(ResponseValidationError, match=message):
        client.embed(GTE, ["a", "b"], compact=True)

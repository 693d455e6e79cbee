"""Vectors checked over real HTTP: a small embeddings service on 127.0.0.1 answers both APIs'
routes with whatever vectors a test gives it (NaN, a bool, another dimension, base64 of an
infinity), and the clients, sync and async, in bulk over several batches, lists and compact,
refuse them with an error that names the text, without sending the batch again."""

from __future__ import annotations

import base64
import json
import struct
import threading
from collections.abc import Callable, Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import pydantic_core
import pytest

from sfmodels_core import DatabricksClient, SalesforceClient
from sfmodels_core.errors import BulkEmbeddingError, ResponseValidationError

NAN, INF = float("nan"), float("inf")
TEXTS = [f"text {i}" for i in range(10)]
Answer = Callable[[str, bool], Any]


class VectorService:
    """Answers ``POST .../invocations`` (Databricks) and ``POST .../embeddings`` (Salesforce)
    with ``answer(text, base64_asked)`` for each text, in each API's body shape."""

    def __init__(self) -> None:
        self.reset()
        service = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def do_POST(self) -> None:
                sent = json.loads(self.rfile.read(int(self.headers["content-length"])))
                service.requests += 1
                asked = sent.get("encoding_format") == "base64"
                vectors = [service.answer(text, asked) for text in sent["input"]]
                if self.path.endswith("/embeddings"):
                    body: dict[str, Any] = {
                        "embeddings": [{"index": i, "embedding": v}
                                       for i, v in enumerate(vectors)],
                        "parameters": {"model": "ada", "usage": {"prompt_tokens": 1,
                                                                 "total_tokens": 1}}}
                else:
                    body = {"object": "list", "model": "gte",
                            "data": [{"index": i, "object": "embedding", "embedding": v}
                                     for i, v in enumerate(vectors)]}
                data = pydantic_core.to_json(body)  # NaN and Infinity as the bare tokens
                self.send_response(200)
                self.send_header("content-type", "application/json")
                self.send_header("content-length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)

            def log_message(self, *args: Any) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.server.daemon_threads = True
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}"

    def reset(self) -> None:
        self.answer: Answer = lambda text, _: [number(text), 1.0]
        self.requests = 0


@pytest.fixture(scope="module")
def running_service() -> Iterator[VectorService]:
    running = VectorService()
    thread = threading.Thread(target=running.server.serve_forever, daemon=True)
    thread.start()
    yield running
    running.server.shutdown()
    running.server.server_close()


@pytest.fixture
def service(running_service: VectorService) -> VectorService:
    running_service.reset()
    return running_service


def number(text: str) -> float:
    return float(text.split()[-1])


def b64(numbers: list[float]) -> str:
    return base64.b64encode(struct.pack(f"<{len(numbers)}f", *numbers)).decode()


def client_for(service: VectorService, provider: str, **options: Any) -> Any:
    options = {"batch_size": 4, "max_concurrency": 1, "max_retries": 2, **options}
    if provider == "salesforce":
        return SalesforceClient(api_key="sf-token", api_base=service.url, env={}, **options)
    return DatabricksClient(host=service.url, api_key="dapi-token", env={}, **options)


async def embed(client: Any, use_async: bool, **kwargs: Any) -> Any:
    if use_async:
        async with client:
            return await client.aembed("m", TEXTS, **kwargs)
    with client:
        return client.embed("m", TEXTS, **kwargs)


PROVIDERS = ["databricks", "salesforce"]


@pytest.mark.parametrize("use_async", [False, True], ids=["sync", "async"])
@pytest.mark.parametrize("compact", [False, True], ids=["lists", "compact"])
@pytest.mark.parametrize("provider", PROVIDERS)
async def test_good_vectors_over_several_batches_come_back_in_order(
        service: VectorService, provider: str, compact: bool, use_async: bool) -> None:
    result = await embed(client_for(service, provider, max_concurrency=3), use_async,
                         compact=compact)
    vectors = result.vectors.tolist() if compact else result.vectors
    assert vectors == [[float(i), 1.0] for i in range(10)]
    assert service.requests == 3


@pytest.mark.parametrize("bad, problem", [
    (NAN, "holds NaN at position 0"),
    (True, r"holds true \(a bool\) at position 0, not a number"),
    (None, "holds null at position 0, not a number"),
], ids=["nan", "bool", "null"])
@pytest.mark.parametrize("use_async", [False, True], ids=["sync", "async"])
@pytest.mark.parametrize("compact", [False, True], ids=["lists", "compact"])
@pytest.mark.parametrize("provider", PROVIDERS)
async def test_a_bad_number_in_a_later_batch_stops_the_job_naming_its_text(
        service: VectorService, provider: str, compact: bool, use_async: bool, bad: Any,
        problem: str) -> None:
    service.answer = lambda text, _: [bad if text == "text 6" else number(text), 1.0]
    with pytest.raises(ResponseValidationError, match=f"the vector of text 6 {problem}") as info:
        await embed(client_for(service, provider), use_async, compact=compact)
    err = info.value
    assert isinstance(err, BulkEmbeddingError) and not err.incomplete
    assert sorted(err.vectors) == [0, 1, 2, 3] and err.missing == [4, 5, 6, 7, 8, 9]
    assert service.requests == 2  # the wrong answer is not asked for again


@pytest.mark.parametrize("use_async", [False, True], ids=["sync", "async"])
@pytest.mark.parametrize("compact", [False, True], ids=["lists", "compact"])
@pytest.mark.parametrize("provider", PROVIDERS)
async def test_batches_of_two_dimensions_cannot_be_mixed(
        service: VectorService, provider: str, compact: bool, use_async: bool) -> None:
    service.answer = lambda text, _: [number(text)] * (3 if number(text) < 4 else 4)
    with pytest.raises(BulkEmbeddingError, match="the vector of text 4 has 4 numbers but the "
                                                 "vectors before it have 3") as info:
        await embed(client_for(service, provider), use_async, compact=compact)
    assert sorted(info.value.vectors) == [0, 1, 2, 3] and service.requests == 2


@pytest.mark.parametrize("use_async", [False, True], ids=["sync", "async"])
async def test_concurrent_batches_of_two_dimensions_keep_one(service: VectorService,
                                                             use_async: bool) -> None:
    service.answer = lambda text, _: [1.0] * (3 if number(text) < 4 else 4)
    with pytest.raises(BulkEmbeddingError, match="cannot be mixed") as info:
        await embed(client_for(service, "databricks", max_concurrency=3), use_async)
    assert len({len(vector) for vector in info.value.vectors.values()}) <= 1


@pytest.mark.parametrize("use_async", [False, True], ids=["sync", "async"])
async def test_a_base64_infinity_is_refused_in_compact_mode(service: VectorService,
                                                            use_async: bool) -> None:
    def answer(text: str, base64_asked: bool) -> Any:
        assert base64_asked  # compact mode asks Databricks for base64
        return b64([number(text), INF if text == "text 5" else 1.0])

    service.answer = answer
    with pytest.raises(ResponseValidationError, match="the vector of text 5 holds Infinity at "
                                                      "position 1"):
        await embed(client_for(service, "databricks"), use_async, compact=True)
    assert service.requests == 2


@pytest.mark.parametrize("compact", [False, True], ids=["lists", "compact"])
@pytest.mark.parametrize("provider", PROVIDERS)
def test_a_resume_is_held_to_the_dimension_of_the_vectors_it_has(
        service: VectorService, provider: str, compact: bool) -> None:
    service.answer = lambda text, _: [NAN if text == "text 6" else number(text), 1.0]
    with client_for(service, provider) as client:
        with pytest.raises(BulkEmbeddingError) as first:
            client.embed("m", TEXTS, compact=compact)
        service.answer = lambda text, _: [number(text), 1.0, 2.0]
        with pytest.raises(BulkEmbeddingError, match="text 4 has 3 numbers but the vectors "
                                                     "before it have 2") as second:
            client.embed("m", TEXTS, resume_from=first.value, compact=compact)
        service.answer = lambda text, _: [number(text), 1.0]
        result = client.embed("m", TEXTS, resume_from=second.value, compact=compact)
    vectors = result.vectors.tolist() if compact else result.vectors
    assert vectors == [[float(i), 1.0] for i in range(10)]

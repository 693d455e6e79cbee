"""Every vector a service sends is checked, lists and compact alike: a non-empty flat list of
finite numbers (or base64 of finite float32), of one dimension for the whole job. A vector that
is not is a ResponseValidationError naming the input index of its text, and is not retried.

The parsers and the sink are driven directly with both providers' body shapes, then the clients
behind fake services (no sockets)."""

from __future__ import annotations

import base64
import json
import struct
import time
from typing import Any

import httpx
import pydantic_core
import pytest

from sfmodels_core import DatabricksClient, SalesforceClient, Vectors
from sfmodels_core.bulk import BulkJob, EmbedPlan
from sfmodels_core.databricks import _wire as databricks
from sfmodels_core.errors import BulkEmbeddingError, ResponseValidationError
from sfmodels_core.options import RetryPolicy
from sfmodels_core.salesforce import _wire as salesforce
from sfmodels_core.vectors import BadVector, VectorCheck, VectorSink, may_hold_bools

from .fakes import Recorder, make_jwt

NAN, INF = float("nan"), float("inf")
HOST = "https://adb.example.test"
SF_TOKEN = make_jwt(exp=time.time() + 3600)


def b64(numbers: list[float]) -> str:
    """Little-endian float32, NaN and infinities included (as a service could send them)."""
    return base64.b64encode(struct.pack(f"<{len(numbers)}f", *numbers)).decode()


def databricks_body(vectors: list[Any]) -> dict[str, Any]:
    return {"object": "list", "model": "gte", "usage": {"prompt_tokens": 1, "total_tokens": 1},
            "data": [{"index": i, "object": "embedding", "embedding": v}
                     for i, v in enumerate(vectors)]}


def salesforce_body(vectors: list[Any]) -> dict[str, Any]:
    return {"embeddings": [{"index": i, "embedding": v} for i, v in enumerate(vectors)],
            "parameters": {"model": "ada", "usage": {"prompt_tokens": 1, "total_tokens": 1}}}


SHAPES = {"databricks": (databricks_body, databricks.parse_embeddings, "data"),
          "salesforce": (salesforce_body, salesforce.parse_embeddings, "embeddings")}


def wire(body: dict[str, Any]) -> tuple[Any, bytes]:
    """The body as the client reads it off the wire (NaN and Infinity tokens included), and its
    bytes."""
    content = pydantic_core.to_json(body)
    return pydantic_core.from_json(content), content


def plan_for(count: int, compact: bool) -> EmbedPlan:
    return EmbedPlan("m", [f"text {i}" for i in range(count)],
                     BulkJob(list(range(count)), 8, RetryPolicy(), 60.0),
                     VectorSink(count) if compact else None)


def keep(plan: EmbedPlan, provider: str, indices: list[int], vectors: list[Any],
         drop: int | None = None, with_bytes: bool = True) -> Any:
    """One batch read the way a bulk call reads it: parsed, then kept (``drop``: the slot of an
    item sent without its vector; ``with_bytes``: the body's bytes are given, which lets a body
    without ``true`` or ``false`` be checked by the cheaper path)."""
    make, parse, key = SHAPES[provider]
    body = make(vectors)
    if drop is not None:
        del body[key][drop]["embedding"]
    data, content = wire(body)
    return plan.keep(indices, parse(data), content if with_bytes else None)[0]


#: Both ways a batch is checked: with its bytes (the sum, when they hold no bool) and without
#: (the full check in one pass).
PATHS = pytest.mark.parametrize("with_bytes", [True, False], ids=["bytes", "no-bytes"])


# -- each bad shape, both body shapes, lists and compact ------------------------------------------
BAD: list[tuple[Any, str]] = [
    (None, "is null, not a list of numbers"),
    (True, r"is true \(a bool\), not a list of numbers"),
    (0.5, "is a number, not a list of numbers"),
    ({"values": [0.1, 0.2]}, "is an object, not a list of numbers"),
    ([], "is an empty list"),
    ([[0.1, 0.2]], r"holds a list \(a vector is one flat list of numbers\) at position 0, "
                   "not a number"),
    ([0.1, None], "holds null at position 1, not a number"),
    ([0.1, "0.2"], "holds a string at position 1, not a number"),
    ([0.1, True], r"holds true \(a bool\) at position 1, not a number"),
    ([False, 0.1], r"holds false \(a bool\) at position 0, not a number"),
    ([0.1, {}], "holds an object at position 1, not a number"),
    ([0.1, NAN], "holds NaN at position 1$"),
    ([INF, 0.1], "holds Infinity at position 0$"),
    ([0.1, -INF], "holds -Infinity at position 1$"),
    ([0.1, 10**400], "holds an integer too large for a float at position 1"),
    ([0.1, 0.2, 0.3], "has 3 numbers but the vectors before it have 2: vectors of two "
                      "dimensions cannot be mixed"),
    ("not base64!", "is a string but not base64"),
    (base64.b64encode(b"abc").decode(), "is base64 of 3 bytes: not float32 numbers"),
    (b64([0.1, NAN]), "holds NaN at position 1$"),
    (b64([-INF, 0.1]), "holds -Infinity at position 0$"),
    (b64([0.1, 0.2, 0.3]), "has 3 numbers but the vectors before it have 2"),
]


@PATHS
@pytest.mark.parametrize("compact", [False, True], ids=["lists", "compact"])
@pytest.mark.parametrize("provider", list(SHAPES))
@pytest.mark.parametrize("bad, problem", BAD, ids=[str(i) for i in range(len(BAD))])
def test_each_bad_vector_is_refused_naming_its_text(provider: str, compact: bool, bad: Any,
                                                    problem: str, with_bytes: bool) -> None:
    plan = plan_for(12, compact)
    with pytest.raises(BadVector, match=f"^the vector of text 11 {problem}") as info:
        keep(plan, provider, [10, 11], [[0.25, 0.5], bad], with_bytes=with_bytes)
    assert info.value.index == 11


@pytest.mark.parametrize("content, bools", [
    (b'{"data":[{"embedding":[0.5,-1e-05,2E+3],"index":0}],"usage":{"total_tokens":1}}',
     False),
    (b'{"data":[{"embedding":[0.5,true]}],"usage":{}}', True),
    (b'{"data":[{"embedding":[false,0.5]}],"usage":{}}', True),
    (b'{"data":[{"embedding":[0.5]}],"model":"true-false-model"}', True),  # in a text: yes
    (b'{"data":[{"embedding":[0.5]}],"model":"' + b"u" * 100 + b'"}', True),  # many looks
    (b'u{"embedding":[0.5]}', False),
])
def test_a_body_may_hold_bools_only_where_it_spells_one(content: bytes, bools: bool) -> None:
    assert may_hold_bools(content) is bools


@pytest.mark.parametrize("compact", [False, True], ids=["lists", "compact"])
@pytest.mark.parametrize("provider", list(SHAPES))
def test_an_item_without_its_vector_is_named(provider: str, compact: bool) -> None:
    with pytest.raises(BadVector, match=r"^the vector of text 4 is missing: its item has no "
                                        r"embedding$"):
        keep(plan_for(6, compact), provider, [3, 4, 5], [[0.1], [0.2], [0.3]], drop=1)


@PATHS
@pytest.mark.parametrize("compact", [False, True], ids=["lists", "compact"])
@pytest.mark.parametrize("provider", list(SHAPES))
def test_good_vectors_pass_ints_large_values_and_base64_included(
        provider: str, compact: bool, with_bytes: bool) -> None:
    plan = plan_for(4, compact)
    # Ints are numbers; 3e38 fits float32 (its top byte looks like an infinity's: such numbers
    # are looked at one by one, and let through).
    good = [[1, 0.5, -2], [3e38, -3e38, 0.0]]
    later = [b64([0.25, -0.5, 1.0]), [0.0, -0.0, 1e-40]]
    kept = [*keep(plan, provider, [0, 1], good, with_bytes=with_bytes),
            *keep(plan, provider, [2, 3], later, with_bytes=with_bytes)]
    expected = [*good, [0.25, -0.5, 1.0], [0.0, -0.0, 1e-40]]
    if plan.sink is not None:
        assert plan.sink.vectors() == Vectors.from_lists(expected)
    else:
        assert kept == expected and all(type(vector) is list for vector in kept)


@PATHS
def test_a_value_beyond_float32_is_refused_only_when_packing(with_bytes: bool) -> None:
    huge = [[1e300, 0.0], [1e308, 1e308]]  # finite, though the second one's sum is not
    assert keep(plan_for(2, False), "databricks", [0, 1], huge, with_bytes=with_bytes) == huge
    with pytest.raises(BadVector, match=r"text 0 holds 1e[+]?300 at position 0, beyond what "
                                        "float32 can hold"):
        keep(plan_for(2, True), "databricks", [0, 1], huge, with_bytes=with_bytes)


@PATHS
@pytest.mark.parametrize("compact", [False, True], ids=["lists", "compact"])
def test_the_message_names_the_problem_never_the_vector(compact: bool, with_bytes: bool
                                                        ) -> None:
    vector = [0.123456789] * 1023 + [NAN]
    with pytest.raises(BadVector) as info:
        keep(plan_for(1, compact), "databricks", [0], [vector], with_bytes=with_bytes)
    assert str(info.value) == "the vector of text 0 holds NaN at position 1023"


# -- one dimension for the whole job --------------------------------------------------------------
@pytest.mark.parametrize("compact", [False, True], ids=["lists", "compact"])
@pytest.mark.parametrize("provider", list(SHAPES))
def test_a_later_batch_of_another_dimension_is_refused(provider: str, compact: bool) -> None:
    plan = plan_for(6, compact)
    keep(plan, provider, [3, 4, 5], [[0.1, 0.2, 0.3]] * 3)  # batches may come in any order
    with pytest.raises(BadVector, match=r"^the vector of text 0 has 2 numbers but the vectors "
                                        "before it have 3"):
        keep(plan, provider, [0, 1, 2], [[0.1, 0.2]] * 3)
    with pytest.raises(BadVector, match="text 2 has 2 numbers"):
        keep(plan, provider, [0, 1, 2], [[0.1, 0.2, 0.3], b64([0.1, 0.2, 0.3]), [0.1, 0.2]])


def test_the_dimension_of_a_resumed_job_is_that_of_the_vectors_it_has() -> None:
    check = VectorCheck(dim=3)
    assert check.lists([7], [[1.0, 2.0, 3.0]]) == [[1.0, 2.0, 3.0]]
    with pytest.raises(BadVector, match="text 8 has 2 numbers but the vectors before it have 3"):
        check.lists([8], [[1.0, 2.0]])
    sink = VectorSink(4)
    sink.put_many({0: [1.0, 2.0, 3.0]})
    with pytest.raises(BadVector, match="text 2 has 4 numbers"):
        sink.put([2], [b64([1.0, 2.0, 3.0, 4.0])])


def test_float32_rows_from_an_earlier_call_are_checked_too() -> None:
    sink = VectorSink(3)
    with pytest.raises(BadVector, match="text 1 holds NaN at position 0"):
        sink.put_many({0: memoryview(struct.pack("=2f", 1.0, 2.0)).cast("f"),
                       1: memoryview(struct.pack("=2f", NAN, 2.0)).cast("f")})
    with pytest.raises(BadVector, match="text 2 has no numbers"):
        sink.put([2], [memoryview(b"").cast("f")])


# -- through the clients: a typed error, not retried, resumable -----------------------------------
def fake(vectors_for: Any, provider: str = "databricks") -> Recorder:
    """A fake embeddings endpoint answering ``vectors_for(texts, call_number)``."""
    make = SHAPES[provider][0]
    calls = [0]

    def handler(request: httpx.Request) -> httpx.Response:
        calls[0] += 1
        texts = json.loads(request.content)["input"]
        body = pydantic_core.to_json(make(vectors_for(texts, calls[0])))  # NaN stays NaN
        return httpx.Response(200, content=body, headers={"content-type": "application/json",
                                                          "x-request-id": "req-7"})

    return Recorder(handler)


def client_for(rec: Recorder, provider: str = "databricks", **options: Any) -> Any:
    if provider == "salesforce":
        return SalesforceClient(api_key=SF_TOKEN, env={}, **rec.transports(), **options)
    return DatabricksClient(host=HOST, api_key="pat", env={}, **rec.transports(), **options)


def number(text: str) -> float:
    return float(text.split()[-1])


TEXTS = [f"text {i}" for i in range(10)]


@pytest.mark.parametrize("use_async", [False, True])
@pytest.mark.parametrize("compact", [False, True], ids=["lists", "compact"])
@pytest.mark.parametrize("provider", list(SHAPES))
async def test_a_bad_vector_stops_the_job_at_once_with_the_vectors_done(
        provider: str, compact: bool, use_async: bool) -> None:
    rec = fake(lambda texts, _: [[NAN if t == "text 6" else number(t), 1.0] for t in texts],
               provider)
    client = client_for(rec, provider, batch_size=4, max_concurrency=1)
    with pytest.raises(ResponseValidationError) as info:
        if use_async:
            await client.aembed("m", TEXTS, compact=compact)
        else:
            client.embed("m", TEXTS, compact=compact)
    err = info.value
    assert isinstance(err, BulkEmbeddingError)
    name = "Salesforce" if provider == "salesforce" else "Databricks"
    assert err.message.startswith(f"{name} answered 200 with an embedding this client cannot "
                                  "use: the vector of text 6 holds NaN at position 0 [bulk")
    assert "1.0" not in err.message and err.request_id == "req-7"
    assert err.incomplete is False  # a wrong answer, not a cut one: not sent again
    assert len(rec.requests) == 2
    assert sorted(err.vectors) == [0, 1, 2, 3] and err.missing == [4, 5, 6, 7, 8, 9]
    await client.aclose() if use_async else client.close()


@pytest.mark.parametrize("compact", [False, True], ids=["lists", "compact"])
def test_a_resume_keeps_the_dimension_of_the_vectors_it_has(compact: bool) -> None:
    first = fake(lambda texts, call: [[number(t), 1.0] if call == 1 else None for t in texts])
    client = client_for(first, batch_size=4, max_concurrency=1)
    with pytest.raises(BulkEmbeddingError, match="text 4 is null") as info:
        client.embed("m", TEXTS, compact=compact)
    wider = client_for(fake(lambda texts, _: [[number(t), 1.0, 2.0] for t in texts]))
    with pytest.raises(BulkEmbeddingError, match="text 4 has 3 numbers but the vectors before "
                                                 "it have 2") as again:
        wider.embed("m", TEXTS, resume_from=info.value, compact=compact)
    fixed = client_for(fake(lambda texts, _: [[number(t), 1.0] for t in texts]))
    result = fixed.embed("m", TEXTS, resume_from=again.value, compact=compact)
    vectors = result.vectors.tolist() if compact else result.vectors
    assert vectors == [[float(i), 1.0] for i in range(10)]


@pytest.mark.parametrize("compact", [False, True], ids=["lists", "compact"])
def test_a_job_that_kept_nothing_resumes_free_of_the_dimension_it_refused(compact: bool
                                                                          ) -> None:
    # The first vector set a dimension and the second did not match it: nothing was kept, so
    # the resumed call takes the dimension of the first vector it keeps.
    first = fake(lambda texts, _: [[1.0, 2.0, 3.0]] + [[1.0, 2.0]] * (len(texts) - 1))
    with pytest.raises(BulkEmbeddingError, match="text 1 has 2 numbers") as info:
        client_for(first, batch_size=4, max_concurrency=1).embed("m", TEXTS, compact=compact)
    assert info.value.vectors == {}
    fixed = client_for(fake(lambda texts, _: [[number(t), 1.0] for t in texts]))
    result = fixed.embed("m", TEXTS, resume_from=info.value, compact=compact)
    vectors = result.vectors.tolist() if compact else result.vectors
    assert vectors == [[float(i), 1.0] for i in range(10)]


def test_each_vector_of_a_batch_is_checked_not_only_the_first() -> None:
    rec = fake(lambda texts, _: [[0.5, 0.5]] * (len(texts) - 1) + [[0.5, True]])
    with client_for(rec, batch_size=10) as client, \
            pytest.raises(ResponseValidationError, match=r"text 9 holds true \(a bool\) at "
                                                         "position 1, not a number"):
        client.embed("m", TEXTS)

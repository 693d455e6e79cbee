"""The batch methods of both embedding classes: LlamaIndex's own, with the requests of all
hand-offs flowing through one core job per segment. Against the emulator; nothing is timed.

``own(embedding)`` runs LlamaIndex's methods with every hand-off sent on its own (as before),
which is what ours must look like from outside.
"""

from __future__ import annotations

import inspect
from typing import TYPE_CHECKING, Any

import pytest
from llama_index.core import VectorStoreIndex
from llama_index.core.callbacks import CallbackManager, CBEventType, LlamaDebugHandler
from llama_index.core.callbacks.schema import EventPayload
from llama_index.core.instrumentation.event_handlers import BaseEventHandler
from llama_index.core.instrumentation.events.embedding import (
    EmbeddingEndEvent,
    EmbeddingStartEvent,
)
from llama_index.core.schema import TextNode
from llama_index.core.storage.kvstore import SimpleKVStore

from llama_index_sfmodels import DatabricksEmbedding, SalesforceEmbedding, _bulk
from llama_index_sfmodels._bulk import Plan, WholeList, even_split
from sfmodels_core.errors import BadRequestError, BulkEmbeddingError

from .conftest import EMBEDDING_ENDPOINT, EventLog, databricks_settings, salesforce_settings

if TYPE_CHECKING:
    from sfmodels_emulator import Emulator

PROVIDERS = ["salesforce", "databricks"]
ROUTE = {"salesforce": "salesforce.embeddings", "databricks": "databricks.invocations"}
INPUTS = {"salesforce": "salesforce.embeddings", "databricks": "databricks.embeddings"}
TEXTS = [f"passage {i} about rivers and {i % 7} mountains" for i in range(300)]

Model = SalesforceEmbedding | DatabricksEmbedding


def make(provider: str, emulator: Emulator, **options: Any) -> Model:
    if provider == "salesforce":
        return SalesforceEmbedding(**salesforce_settings(emulator), **options)
    return DatabricksEmbedding(endpoint=EMBEDDING_ENDPOINT, **databricks_settings(emulator),
                               **options)


def own(embedding: Model) -> Any:
    """LlamaIndex's own batch methods on ``embedding``, every hand-off sent on its own."""
    return super(WholeList, embedding)


def embedding_events(log: EventLog) -> list[tuple[str, Any, Any]]:
    out: list[tuple[str, Any, Any]] = []
    for event in log.events:
        if isinstance(event, EmbeddingStartEvent):
            out.append(("start", event.model_dict, None))
        elif isinstance(event, EmbeddingEndEvent):
            out.append(("end", event.chunks, event.embeddings))
    return out


def callback_pairs(handler: LlamaDebugHandler) -> list[tuple[Any, Any]]:
    return [(end.payload[EventPayload.CHUNKS], end.payload[EventPayload.EMBEDDINGS])
            for _, end in handler.get_event_pairs(CBEventType.EMBEDDING)]


def requests(emulator: Emulator, provider: str) -> int:
    count: int = emulator.counters()["requests"][ROUTE[provider]]
    return count


# -- the defaults ---------------------------------------------------------------------------------
@pytest.mark.parametrize("provider, size", [("salesforce", 16), ("databricks", 128)])
def test_the_insert_batch_divides_into_hand_offs_and_hand_offs_into_requests(
        emulator: Emulator, provider: str, size: int) -> None:
    insert = inspect.signature(VectorStoreIndex.__init__).parameters["insert_batch_size"].default
    embedding = make(provider, emulator)
    hand_off = embedding.embed_batch_size
    assert (insert, hand_off, embedding.client.batch_size) == (2048, 512, size)
    assert insert % hand_off == 0 and hand_off % size == 0
    assert embedding.client.max_concurrency == 4
    embedding.close()


def test_requests_split_a_hand_off_evenly_into_as_few_as_the_provider_allows() -> None:
    assert even_split(512, 150) == 128 and even_split(512, 16) == 16
    assert even_split(600, 150) == 150 and even_split(10, 150) == 10
    assert even_split(2048, 150) == 147 and even_split(1, 16) == 1


@pytest.mark.parametrize("provider", PROVIDERS)
def test_vector_store_index_sends_only_full_requests(emulator: Emulator, provider: str) -> None:
    embedding = make(provider, emulator)
    nodes = [TextNode(text=f"{i}: {TEXTS[i % 300]}") for i in range(2560)]  # 2,048, then 512
    index = VectorStoreIndex(nodes=nodes, embed_model=embedding)
    counters = emulator.counters()
    size = embedding.client.batch_size
    assert counters["inputs"][INPUTS[provider]] == 2560
    assert counters["requests"][ROUTE[provider]] == 2560 // size  # every request full
    assert len(index.index_struct.nodes_dict) == 2560
    embedding.close()


# -- what LlamaIndex sees -------------------------------------------------------------------------
@pytest.mark.parametrize("provider", PROVIDERS)
def test_events_vectors_and_order_are_those_of_llama_index_own_method(
        emulator: Emulator, events: EventLog, provider: str) -> None:
    debug = LlamaDebugHandler()
    embedding = make(provider, emulator, embed_batch_size=40,
                     callback_manager=CallbackManager([debug]))
    texts = TEXTS[:250]  # six hand-offs of 40, then one of 10
    ours = embedding.get_text_embedding_batch(texts)
    ours_events, ours_pairs = embedding_events(events), callback_pairs(debug)
    ours_requests = requests(emulator, provider)
    events.events.clear()
    debug.flush_event_logs()
    emulator.reset()
    theirs = own(embedding).get_text_embedding_batch(texts)
    assert ours == theirs and len(ours) == 250
    assert ours_events == embedding_events(events)
    assert ours_pairs == callback_pairs(debug)
    assert [kind for kind, _, _ in ours_events] == ["start", "end"] * 7
    hand_offs = [texts[i:i + 40] for i in range(0, 250, 40)]
    assert [chunks for kind, chunks, _ in ours_events if kind == "end"] == hand_offs
    assert [chunks for chunks, _ in ours_pairs] == hand_offs
    assert [v for kind, _, vectors in ours_events if kind == "end" for v in vectors] == ours
    assert ours_requests <= requests(emulator, provider)
    embedding.close()


@pytest.mark.parametrize("provider", PROVIDERS)
def test_requests_flow_from_one_hand_off_to_the_next(emulator: Emulator, provider: str) -> None:
    emulator.configure(latency_ms=20)
    embedding = make(provider, emulator, embed_batch_size=16, num_workers=4)
    texts = TEXTS[:160]  # ten hand-offs of one request each
    expected = own(embedding).get_text_embedding_batch(texts)
    assert emulator.counters()["max_in_flight"] == 1  # before: one hand-off at a time
    emulator.reset()
    emulator.configure(latency_ms=20)
    assert embedding.get_text_embedding_batch(texts) == expected
    assert emulator.counters()["max_in_flight"] == 4
    assert requests(emulator, provider) == 10
    embedding.close()


@pytest.mark.parametrize("provider", PROVIDERS)
async def test_async_hand_offs_share_one_job_and_num_workers(
        emulator: Emulator, events: EventLog, provider: str) -> None:
    emulator.configure(latency_ms=20)
    embedding = make(provider, emulator, embed_batch_size=16, num_workers=2)
    texts = TEXTS[:160]
    ours = await embedding.aget_text_embedding_batch(texts)
    counters = emulator.counters()
    assert counters["max_in_flight"] == 2 and requests(emulator, provider) == 10
    seen = embedding_events(events)
    assert [kind for kind, _, _ in seen] == ["start"] * 10 + ["end"] * 10  # as LlamaIndex's
    assert [chunks for kind, chunks, _ in seen if kind == "end"] == [
        texts[i:i + 16] for i in range(0, 160, 16)]
    assert ours == await own(embedding).aget_text_embedding_batch(texts)
    assert ours == embedding.get_text_embedding_batch(texts)
    await embedding.aclose()


def test_show_progress_is_llama_index_own(emulator: Emulator,
                                          capsys: pytest.CaptureFixture[str]) -> None:
    embedding = make("databricks", emulator, embed_batch_size=20)
    vectors = embedding.get_text_embedding_batch(TEXTS[:100], show_progress=True)
    assert len(vectors) == 100 and requests(emulator, "databricks") == 5
    assert "Generating embeddings" in capsys.readouterr().err
    embedding.close()


# -- failures -------------------------------------------------------------------------------------
@pytest.mark.parametrize("use_async", [False, True], ids=["sync", "async"])
@pytest.mark.parametrize("rounds", [2, _bulk.SEGMENT_ROUNDS], ids=["segments", "one job"])
async def test_a_failure_raises_the_typed_error_with_every_vector_in_its_place(
        emulator: Emulator, events: EventLog, monkeypatch: pytest.MonkeyPatch, use_async: bool,
        rounds: int) -> None:
    # Hand-offs of 20 texts, one request each, one at a time; with rounds=2, segments of two
    # hand-offs. The request of texts 140-159 is refused: 0-139 are done, the rest missing.
    monkeypatch.setattr(_bulk, "SEGMENT_ROUNDS", rounds)
    embedding = make("databricks", emulator, embed_batch_size=20, num_workers=1)
    texts = list(TEXTS[:200])
    clean = embedding.client.embed(EMBEDDING_ENDPOINT, texts).vectors
    texts[150] = "a passage with a forbidden word"
    emulator.reset()
    emulator.configure(blocked_terms=["forbidden"])
    with pytest.raises(BulkEmbeddingError) as info:
        if use_async:
            await embedding.aget_text_embedding_batch(texts)
        else:
            embedding.get_text_embedding_batch(texts)
    error = info.value
    assert isinstance(error, BadRequestError) and error.status_code == 400
    assert error.total == 200 and error.missing == list(range(140, 200))
    assert error.vectors == {i: clean[i] for i in range(140)}
    assert requests(emulator, "databricks") == 8  # nothing after the refused request
    ends = [chunks for kind, chunks, _ in embedding_events(events) if kind == "end"]
    # LlamaIndex records the hand-offs done before the failure (its async method, none).
    assert ends == ([] if use_async else [texts[i:i + 20] for i in range(0, 140, 20)])
    emulator.reset()  # the blocked term is allowed again
    resumed = embedding.client.embed(EMBEDDING_ENDPOINT, texts, resume_from=error)
    assert resumed.vectors[:140] == clean[:140] and resumed.vectors[151:] == clean[151:]
    assert emulator.counters()["inputs"]["databricks.embeddings"] == 60
    await embedding.aclose()


def test_a_refused_text_is_named_by_its_place_in_the_list(
        emulator: Emulator, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(_bulk, "SEGMENT_ROUNDS", 2)
    embedding = make("databricks", emulator, embed_batch_size=20, num_workers=2)
    texts = list(TEXTS[:200])
    clean = embedding.get_text_embedding_batch(texts)
    texts[130] = "word " * 300  # too long: split down to itself and set aside
    emulator.configure(max_input_tokens=100)
    with pytest.raises(BulkEmbeddingError) as info:
        embedding.get_text_embedding_batch(texts)
    error = info.value
    assert list(error.refused) == [130]  # segments of 80 texts: the second one failed
    assert error.missing == [130, *range(160, 200)]
    assert error.vectors == {i: clean[i] for i in range(160) if i != 130}
    embedding.close()


def test_a_call_that_is_not_a_hand_off_is_embedded_on_its_own(emulator: Emulator) -> None:
    embedding = make("databricks", emulator, embed_batch_size=20)
    texts = TEXTS[:101]  # the last hand-off is the single text 100
    clean = own(embedding).get_text_embedding_batch(texts)
    asked: dict[str, list[float]] = {}

    class Asker(BaseEventHandler):
        def handle(self, event: Any, **kwargs: Any) -> None:
            if isinstance(event, EmbeddingEndEvent) and not asked:
                asked["other"] = embedding.get_text_embedding(TEXTS[250])
                asked["last"] = embedding.get_text_embedding(texts[100])

    from llama_index_instrumentation import get_dispatcher

    dispatcher = get_dispatcher()
    asker = Asker()
    dispatcher.add_event_handler(asker)
    try:
        assert embedding.get_text_embedding_batch(texts) == clean
    finally:
        dispatcher.event_handlers = [h for h in dispatcher.event_handlers if h is not asker]
    assert asked["last"] == clean[100]
    assert asked["other"] == own(embedding).get_text_embedding_batch([TEXTS[250]])[0]
    embedding.close()


def test_plan_serves_only_the_hand_offs_of_its_list() -> None:
    texts = ["a", "b", "c", "a", "b", "c", "d"]
    plan = Plan(texts, 3)
    plan.split(3)
    assert plan.claim(["a", "b", "c"]) == 0
    assert plan.claim(["a", "b", "c"]) == 3  # the same texts again: the next place that has them
    assert plan.claim(["a", "b", "c"]) is None  # no third place
    assert plan.claim(("d",)) is None and plan.claim(["c"]) is None and plan.claim([]) is None
    assert plan.claim(["d"]) == 6
    fresh = Plan(texts, 3)
    assert fresh.claim(["a", "b"]) is None  # not a hand-off's length
    fresh.closed = True  # the call has ended
    assert fresh.claim(["a", "b", "c"]) is None


# -- what LlamaIndex sends one hand-off at a time -------------------------------------------------
def test_with_an_embeddings_cache_each_hand_off_goes_on_its_own(emulator: Emulator) -> None:
    emulator.configure(latency_ms=20)
    cache = SimpleKVStore()
    embedding = make("databricks", emulator, embed_batch_size=16, embeddings_cache=cache)
    texts = TEXTS[:64]
    first = embedding.get_text_embedding_batch(texts)
    assert emulator.counters()["max_in_flight"] == 1 and requests(emulator, "databricks") == 4
    assert embedding.get_text_embedding_batch(texts) == first
    assert requests(emulator, "databricks") == 4  # all from the cache
    embedding.close()


def test_with_a_rate_limiter_each_hand_off_waits_for_it(emulator: Emulator) -> None:
    class Limiter:
        acquired = 0

        def acquire(self) -> None:
            Limiter.acquired += 1

        async def async_acquire(self) -> None:
            Limiter.acquired += 1

    emulator.configure(latency_ms=20)
    embedding = make("databricks", emulator, embed_batch_size=16, rate_limiter=Limiter())
    assert len(embedding.get_text_embedding_batch(TEXTS[:64])) == 64
    assert Limiter.acquired == 4 and emulator.counters()["max_in_flight"] == 1
    embedding.close()

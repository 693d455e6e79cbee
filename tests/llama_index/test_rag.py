"""Retrieval-augmented generation end to end: an index, a query engine and a chat engine built
from the classes set as LlamaIndex's global ``Settings``."""

from __future__ import annotations

from collections.abc import Iterator
from typing import TYPE_CHECKING

import pytest
from llama_index.core import Document, Settings, VectorStoreIndex
from llama_index.core.base.embeddings.base import BaseEmbedding
from llama_index.core.llms import LLM

from llama_index_sfmodels import (
    DatabricksEmbedding,
    DatabricksLLM,
    SalesforceEmbedding,
    SalesforceLLM,
)

from .conftest import CHAT_ENDPOINT, EMBEDDING_ENDPOINT, databricks_settings, salesforce_settings

if TYPE_CHECKING:
    from sfmodels_emulator import Emulator

DOCUMENTS = [
    "The Amazon river flows through Brazil, Peru and Colombia. It carries more water than "
    "any other river on Earth.",
    "Mount Kilimanjaro is the highest mountain in Africa. Its summit stands 5895 metres "
    "above sea level.",
    "The Great Barrier Reef lies off the coast of Queensland in Australia. It is the largest "
    "coral reef system in the world.",
    "The Sahara is the largest hot desert in the world. It covers most of North Africa.",
    "Lake Baikal in Siberia is the deepest lake in the world. It holds about a fifth of the "
    "fresh water on the surface of the Earth.",
]
QUESTION = "How high is the summit of Mount Kilimanjaro?"
FACT = "5895 metres"


@pytest.fixture(params=["salesforce", "databricks"])
def stack(request: pytest.FixtureRequest, emulator: Emulator,
          monkeypatch: pytest.MonkeyPatch) -> Iterator[tuple[LLM, BaseEmbedding]]:
    """Both models of one provider, installed as Settings.llm and Settings.embed_model."""
    llm: SalesforceLLM | DatabricksLLM
    embedding: SalesforceEmbedding | DatabricksEmbedding
    if request.param == "salesforce":
        llm = SalesforceLLM(**salesforce_settings(emulator))
        embedding = SalesforceEmbedding(**salesforce_settings(emulator))
    else:
        llm = DatabricksLLM(endpoint=CHAT_ENDPOINT, **databricks_settings(emulator))
        embedding = DatabricksEmbedding(endpoint=EMBEDDING_ENDPOINT,
                                        **databricks_settings(emulator))
    monkeypatch.setattr(Settings, "_llm", None)
    monkeypatch.setattr(Settings, "_embed_model", None)
    Settings.llm = llm
    Settings.embed_model = embedding
    yield llm, embedding
    llm.close()
    embedding.close()


def build_index() -> VectorStoreIndex:
    return VectorStoreIndex.from_documents([Document(text=t) for t in DOCUMENTS])


def test_query_engine_answers_from_the_documents(stack: tuple[LLM, BaseEmbedding]) -> None:
    engine = build_index().as_query_engine(similarity_top_k=2)
    response = engine.query(QUESTION)
    assert FACT in str(response)
    assert "Kilimanjaro" in response.source_nodes[0].node.get_content()


def test_streaming_query_engine(stack: tuple[LLM, BaseEmbedding]) -> None:
    engine = build_index().as_query_engine(similarity_top_k=2, streaming=True)
    response = engine.query(QUESTION)
    text = "".join(response.response_gen)  # type: ignore[union-attr]
    assert FACT in text


async def test_async_index_and_query(stack: tuple[LLM, BaseEmbedding]) -> None:
    index = VectorStoreIndex.from_documents([Document(text=t) for t in DOCUMENTS],
                                            use_async=True)
    response = await index.as_query_engine(similarity_top_k=2).aquery(
        "Which lake is the deepest in the world?")
    assert "Lake Baikal" in str(response)
    for llm_or_embedding in stack:
        await llm_or_embedding.aclose()  # type: ignore[attr-defined]


def test_context_chat_engine(stack: tuple[LLM, BaseEmbedding]) -> None:
    engine = build_index().as_chat_engine(chat_mode="context", similarity_top_k=2)
    first = engine.chat("Where is the Great Barrier Reef?")
    assert "Queensland" in str(first)
    second = engine.chat(QUESTION)
    assert FACT in str(second)

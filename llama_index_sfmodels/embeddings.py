"""``SalesforceEmbedding`` and ``DatabricksEmbedding``: LlamaIndex embedding models.

LlamaIndex hands over ``embed_batch_size`` texts at a time (one embedding event each; default
512, so ``VectorStoreIndex``'s insert batch of 2,048 is four hand-offs). The core sends them in
requests of ``request_batch_size`` texts (default: each hand-off split evenly into as few
requests as the provider allows: Databricks 4 of 128, Salesforce 32 of 16), ``num_workers``
requests at once (default 4). The batch methods keep those requests flowing from one hand-off
to the next (see :mod:`._bulk`).
"""

from __future__ import annotations

from typing import Any, ClassVar

from llama_index.core.base.embeddings.base import BaseEmbedding, Embedding
from pydantic import AliasChoices, Field, model_validator

from sfmodels_core.defaults import (
    DATABRICKS_EMBED_BATCH_SIZE,
    SALESFORCE_EMBED_BATCH_SIZE,
    SALESFORCE_EMBEDDING_MODEL,
)
from sfmodels_core.integration.fields import DatabricksClientFields, SalesforceClientFields

from ._bulk import ListResult, WholeList, even_split

__all__ = [
    "EMBED_BATCH_SIZE",
    "DatabricksEmbedding",
    "SalesforceEmbedding",
]

#: Texts per hand-off: a quarter of VectorStoreIndex's insert batch (2,048), and a whole number
#: of full requests for both providers.
EMBED_BATCH_SIZE = 512


def _batching(embedding: BaseEmbedding, request_batch_size: int | None,
              provider_size: int) -> dict[str, Any]:
    size = request_batch_size or even_split(embedding.embed_batch_size, provider_size)
    return {"batch_size": size,
            "max_concurrency": max(1, embedding.num_workers) if embedding.num_workers else None}


def _embed_batch_size() -> Any:
    return Field(default=EMBED_BATCH_SIZE, gt=0, le=2048,
                 description="Texts handed over per embedding event (sent in requests of "
                             "request_batch_size, num_workers at once).")


def _request_batch_size() -> Any:
    return Field(default=None, gt=0,
                 description="Texts per HTTP request (default: embed_batch_size split evenly "
                             "into as few requests as the provider allows).")


class SalesforceEmbedding(SalesforceClientFields, WholeList, BaseEmbedding):
    """Salesforce Models API embeddings (e.g. ``sfdc_ai__DefaultOpenAITextEmbeddingAda_002``).

    Queries and documents are embedded the same way. Credentials as for ``SalesforceLLM``.
    """

    model_name: str = Field(
        default=SALESFORCE_EMBEDDING_MODEL, min_length=1,
        validation_alias=AliasChoices("model_name", "model"),
        description="API name of the embedding model.")
    embed_batch_size: int = _embed_batch_size()
    request_batch_size: int | None = _request_batch_size()
    _CLIENT_FIELDS: ClassVar[frozenset[str]] = SalesforceClientFields._CLIENT_FIELDS | {
        "request_batch_size"}
    localization: dict[str, Any] | None = Field(
        default=None, description="Models API localization, e.g. {'defaultLocale': 'en_US'}.")
    tags: dict[str, Any] | None = Field(
        default=None, description="Free-form tags sent with each request.")

    @classmethod
    def class_name(cls) -> str:
        return "SalesforceEmbedding"

    def _bulk_options(self) -> dict[str, Any]:
        return _batching(self, self.request_batch_size, SALESFORCE_EMBED_BATCH_SIZE)

    def _round_size(self) -> int:
        return self.client.batch_size * self.client.max_concurrency

    def _embed_result(self, texts: list[str]) -> ListResult:
        return self.client.embed(self.model_name, texts, localization=self.localization,
                                 tags=self.tags)

    async def _aembed_result(self, texts: list[str]) -> ListResult:
        return await self.client.aembed(self.model_name, texts, localization=self.localization,
                                        tags=self.tags)

    def _get_query_embedding(self, query: str) -> Embedding:
        return self._get_text_embeddings([query])[0]

    async def _aget_query_embedding(self, query: str) -> Embedding:
        return (await self._aget_text_embeddings([query]))[0]

    def _get_text_embedding(self, text: str) -> Embedding:
        return self._get_text_embeddings([text])[0]

    async def _aget_text_embedding(self, text: str) -> Embedding:
        return (await self._aget_text_embeddings([text]))[0]


class DatabricksEmbedding(DatabricksClientFields, WholeList, BaseEmbedding):
    """A Databricks embedding endpoint (e.g. ``databricks-gte-large-en``).

    ``query_instruction`` and ``text_instruction`` are sent as the request's ``instruction`` for
    queries and documents respectively (BGE models recommend one for queries only).
    Credentials as for ``DatabricksLLM``.
    """

    endpoint: str = Field(
        min_length=1, validation_alias=AliasChoices("endpoint", "model", "model_name"),
        description="Serving endpoint name, e.g. databricks-gte-large-en.")
    embed_batch_size: int = _embed_batch_size()
    request_batch_size: int | None = _request_batch_size()
    _CLIENT_FIELDS: ClassVar[frozenset[str]] = DatabricksClientFields._CLIENT_FIELDS | {
        "request_batch_size"}
    query_instruction: str | None = Field(
        default=None, description="Instruction sent with queries.")
    text_instruction: str | None = Field(
        default=None, description="Instruction sent with documents.")

    @model_validator(mode="after")
    def _name_from_endpoint(self) -> DatabricksEmbedding:
        self.model_name = self.endpoint
        return self

    @classmethod
    def class_name(cls) -> str:
        return "DatabricksEmbedding"

    def _bulk_options(self) -> dict[str, Any]:
        return _batching(self, self.request_batch_size, DATABRICKS_EMBED_BATCH_SIZE)

    def _round_size(self) -> int:
        return self.client.batch_size * self.client.max_concurrency

    def _embed_result(self, texts: list[str]) -> ListResult:
        return self.client.embed(self.endpoint, texts, instruction=self.text_instruction)

    async def _aembed_result(self, texts: list[str]) -> ListResult:
        return await self.client.aembed(self.endpoint, texts, instruction=self.text_instruction)

    def _get_query_embedding(self, query: str) -> Embedding:
        return self.client.embed(self.endpoint, [query], instruction=self.query_instruction
                                 ).vectors[0]

    async def _aget_query_embedding(self, query: str) -> Embedding:
        result = await self.client.aembed(self.endpoint, [query],
                                          instruction=self.query_instruction)
        return result.vectors[0]

    def _get_text_embedding(self, text: str) -> Embedding:
        return self._get_text_embeddings([text])[0]

    async def _aget_text_embedding(self, text: str) -> Embedding:
        return (await self._aget_text_embeddings([text]))[0]

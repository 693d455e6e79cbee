"""Embeddings: ``SalesforceEmbeddings`` and ``DatabricksEmbeddings``.

Both send any number of texts in batches of ``batch_size``, ``max_concurrency`` batches at a
time, and return the vectors in input order (the core does the batching); both are natively
async.
"""

from __future__ import annotations

from typing import Any

from langchain_core.embeddings import Embeddings
from pydantic import ConfigDict, Field, field_validator

from ._settings import BulkSettings, DatabricksSettings, SalesforceSettings

DEFAULT_EMBEDDING_MODEL = "sfdc_ai__DefaultOpenAITextEmbeddingAda_002"
#: The only per-request parameter the core's Databricks client sends besides the texts.
_DATABRICKS_PARAMS = ("instruction",)


class SalesforceEmbeddings(SalesforceSettings, BulkSettings, Embeddings):
    """Embeddings from the Salesforce Models API (Ada-002 by default: 1536 dimensions).

    Same credentials as ``ChatSalesforce``. ``batch_size`` (default 16) texts go in each
    request, ``max_concurrency`` (default 4) requests at a time.
    """

    model_config = ConfigDict(populate_by_name=True, arbitrary_types_allowed=True,
                              extra="forbid", protected_namespaces=())

    model: str = DEFAULT_EMBEDDING_MODEL
    """Embedding model API name."""
    localization: dict[str, Any] | None = None
    """The API's ``localization`` object."""
    salesforce_tags: dict[str, Any] | None = None
    """The API's free-form ``tags`` object."""

    def _client_options(self) -> dict[str, Any]:
        return {**super()._client_options(), **self._bulk_options()}

    def _options(self) -> dict[str, Any]:
        return {"localization": self.localization, "tags": self.salesforce_tags}

    def embed_documents(self, texts: list[str]) -> list[list[float]]:
        return self._salesforce.embed(self.model, texts, **self._options()).vectors

    async def aembed_documents(self, texts: list[str]) -> list[list[float]]:
        return (await self._salesforce.aembed(self.model, texts, **self._options())).vectors

    def embed_query(self, text: str) -> list[float]:
        return self.embed_documents([text])[0]

    async def aembed_query(self, text: str) -> list[float]:
        return (await self.aembed_documents([text]))[0]


class DatabricksEmbeddings(DatabricksSettings, BulkSettings, Embeddings):
    """Embeddings from a Databricks serving endpoint; a drop-in for databricks-langchain's class.

    ``endpoint`` (alias ``model``), e.g. ``databricks-gte-large-en``. An instruction can be sent
    with queries and with documents: ``query_instruction``/``document_instruction``, or the
    peer's ``query_params={"instruction": ...}``/``documents_params``. ``batch_size`` (default
    150) texts go in each request, ``max_concurrency`` (default 4) requests at a time.
    """

    model_config = ConfigDict(populate_by_name=True, arbitrary_types_allowed=True,
                              extra="forbid", protected_namespaces=())

    endpoint: str = Field(alias="model")
    """Name of the serving endpoint; alias ``model``."""
    query_params: dict[str, Any] = Field(default_factory=dict)
    """Request parameters for queries; ``instruction`` is the one the client sends."""
    documents_params: dict[str, Any] = Field(default_factory=dict)
    """Request parameters for documents; ``instruction`` is the one the client sends."""
    query_instruction: str | None = None
    """Instruction sent with queries, e.g. BGE's ``"Represent this sentence for searching
    relevant passages:"``; overrides ``query_params["instruction"]``."""
    document_instruction: str | None = None
    """Instruction sent with documents; overrides ``documents_params["instruction"]``."""

    @field_validator("query_params", "documents_params", mode="before")
    @classmethod
    def _none_is_empty(cls, value: Any) -> Any:
        return {} if value is None else value

    @field_validator("query_params", "documents_params")
    @classmethod
    def _only_instruction(cls, value: dict[str, Any]) -> dict[str, Any]:
        unknown = sorted(set(value) - set(_DATABRICKS_PARAMS))
        if unknown:
            raise ValueError(
                f"unsupported embedding parameter(s) {', '.join(unknown)}: the client sends the "
                "texts and an optional 'instruction' only")
        if value.get("instruction") is not None and not isinstance(value["instruction"], str):
            raise ValueError("instruction must be a string")
        return value

    def _client_options(self) -> dict[str, Any]:
        return {**super()._client_options(), **self._bulk_options()}

    @property
    def _query_instruction(self) -> str | None:
        return self.query_instruction or self.query_params.get("instruction")

    @property
    def _document_instruction(self) -> str | None:
        return self.document_instruction or self.documents_params.get("instruction")

    def embed_documents(self, texts: list[str]) -> list[list[float]]:
        return self._databricks.embed(self.endpoint, texts,
                                      instruction=self._document_instruction).vectors

    async def aembed_documents(self, texts: list[str]) -> list[list[float]]:
        result = await self._databricks.aembed(self.endpoint, texts,
                                               instruction=self._document_instruction)
        return result.vectors

    def embed_query(self, text: str) -> list[float]:
        return self._databricks.embed(self.endpoint, [text],
                                      instruction=self._query_instruction).vectors[0]

    async def aembed_query(self, text: str) -> list[float]:
        result = await self._databricks.aembed(self.endpoint, [text],
                                               instruction=self._query_instruction)
        return result.vectors[0]

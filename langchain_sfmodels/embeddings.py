"""Embeddings: ``SalesforceEmbeddings`` and ``DatabricksEmbeddings``.

Both send any number of texts in batches of ``batch_size``, ``max_concurrency`` batches at a
time, and return the vectors in input order (the core does the batching); both are natively
async.
"""

from __future__ import annotations

from typing import Any, ClassVar

from langchain_core.embeddings import Embeddings
from pydantic import BaseModel, ConfigDict, Field, field_validator

from sfmodels_core.defaults import SALESFORCE_EMBEDDING_MODEL
from sfmodels_core.integration.fields import DatabricksClientFields, SalesforceClientFields
from sfmodels_core.types import EmbeddingResult

__all__ = [
    "DatabricksEmbeddings",
    "Lists",
    "SalesforceEmbeddings",
]

#: A core result with its vectors as lists, as LangChain's contract wants them.
Lists = EmbeddingResult[list[list[float]]]

_BULK = frozenset({"batch_size", "max_concurrency"})


class _Bulk(BaseModel):
    """Batching of the embeddings classes; None keeps the client's defaults."""

    batch_size: int | None = Field(default=None, ge=1)
    """Texts per request (default: 16 for Salesforce, 150 for Databricks)."""
    max_concurrency: int | None = Field(default=None, ge=1)
    """Requests in flight at once for one bulk call (default: 4)."""

    def _bulk_options(self) -> dict[str, Any]:
        return {"batch_size": self.batch_size, "max_concurrency": self.max_concurrency}


class SalesforceEmbeddings(_Bulk, SalesforceClientFields, Embeddings):
    """Embeddings from the Salesforce Models API (Ada-002 by default: 1536 dimensions).

    Same credentials as ``ChatSalesforce``. ``batch_size`` (default 16) texts go in each
    request, ``max_concurrency`` (default 4) requests at a time.
    """

    model_config = ConfigDict(populate_by_name=True, arbitrary_types_allowed=True,
                              extra="forbid", protected_namespaces=())

    _CLIENT_FIELDS: ClassVar[frozenset[str]] = SalesforceClientFields._CLIENT_FIELDS | _BULK

    model: str = SALESFORCE_EMBEDDING_MODEL
    """Embedding model API name."""
    localization: dict[str, Any] | None = None
    """The API's ``localization`` object."""
    salesforce_tags: dict[str, Any] | None = None
    """The API's free-form ``tags`` object."""

    def embed_documents(self, texts: list[str]) -> list[list[float]]:
        return self.client.embed(self.model, texts, localization=self.localization,
                                 tags=self.salesforce_tags).vectors

    async def aembed_documents(self, texts: list[str]) -> list[list[float]]:
        result = await self.client.aembed(self.model, texts, localization=self.localization,
                                          tags=self.salesforce_tags)
        return result.vectors

    def embed_query(self, text: str) -> list[float]:
        return self.embed_documents([text])[0]

    async def aembed_query(self, text: str) -> list[float]:
        return (await self.aembed_documents([text]))[0]


class DatabricksEmbeddings(_Bulk, DatabricksClientFields, Embeddings):
    """Embeddings from a Databricks serving endpoint; a drop-in for databricks-langchain's class.

    ``endpoint`` (or ``model``), e.g. ``databricks-gte-large-en``. ``query_params`` and
    ``documents_params`` go into the request bodies of queries and of documents as they are
    (any key but ``input``), as with the peer's class: e.g. ``{"instruction": ...}`` for BGE-style
    models or an endpoint's own options. ``query_instruction``/``document_instruction`` set the
    instruction alone. ``batch_size`` (default 150) texts go in each request,
    ``max_concurrency`` (default 4) requests at a time.
    """

    model_config = ConfigDict(populate_by_name=True, arbitrary_types_allowed=True,
                              extra="forbid", protected_namespaces=())

    _CLIENT_FIELDS: ClassVar[frozenset[str]] = DatabricksClientFields._CLIENT_FIELDS | _BULK

    model: str = Field(alias="endpoint")
    """Name of the serving endpoint; alias ``endpoint`` (the name databricks-langchain uses)."""
    query_params: dict[str, Any] = Field(default_factory=dict)
    """Added to the request body of queries, e.g. ``{"instruction": "query: "}``."""
    documents_params: dict[str, Any] = Field(default_factory=dict)
    """Added to the request body of documents."""
    query_instruction: str | None = None
    """Instruction sent with queries, e.g. BGE's ``"Represent this sentence for searching
    relevant passages:"``; overrides ``query_params["instruction"]``."""
    document_instruction: str | None = None
    """Instruction sent with documents; overrides ``documents_params["instruction"]``."""

    @property
    def endpoint(self) -> str:
        """The serving endpoint (same as ``model``)."""
        return self.model

    @field_validator("query_params", "documents_params", mode="before")
    @classmethod
    def _none_is_empty(cls, value: Any) -> Any:
        return {} if value is None else value

    @field_validator("query_params", "documents_params")
    @classmethod
    def _body_params(cls, value: dict[str, Any]) -> dict[str, Any]:
        if "input" in value:
            raise ValueError("input cannot be set through query_params or documents_params: "
                             "it holds the texts")
        for name in ("compact", "resume_from"):
            if name in value:
                raise ValueError(f"{name} is an option of the client's embed(), not a request "
                                 "field: LangChain's embeddings are lists of floats")
        if value.get("instruction") is not None and not isinstance(value["instruction"], str):
            raise ValueError("instruction must be a string")
        return value

    def _params(self, params: dict[str, Any], instruction: str | None) -> dict[str, Any]:
        """Keyword arguments of the core's ``embed``: the instruction, then every other key."""
        return {**params, "instruction": instruction or params.get("instruction")}

    def _query_params(self) -> dict[str, Any]:
        return self._params(self.query_params, self.query_instruction)

    def _document_params(self) -> dict[str, Any]:
        return self._params(self.documents_params, self.document_instruction)

    def embed_documents(self, texts: list[str]) -> list[list[float]]:
        result: Lists = self.client.embed(self.endpoint, texts, compact=False,
                                          **self._document_params())
        return result.vectors

    async def aembed_documents(self, texts: list[str]) -> list[list[float]]:
        result: Lists = await self.client.aembed(self.endpoint, texts, compact=False,
                                                 **self._document_params())
        return result.vectors

    def embed_query(self, text: str) -> list[float]:
        result: Lists = self.client.embed(self.endpoint, [text], compact=False,
                                          **self._query_params())
        return result.vectors[0]

    async def aembed_query(self, text: str) -> list[float]:
        result: Lists = await self.client.aembed(self.endpoint, [text], compact=False,
                                                 **self._query_params())
        return result.vectors[0]

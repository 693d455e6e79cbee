"""The Salesforce client: the I/O around the pure wire format of :mod:`._wire`; its sync and
async methods differ only in ``await``."""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from typing import Any, Literal, TypeVar, overload

import httpx

from .. import defaults
from .._base_client import BaseClient
from ..bulk import EmbedRequest
from ..credentials import Secret, resolve_salesforce
from ..errors import BulkEmbeddingError
from ..options import ClientOptions
from ..types import EmbeddingResult
from ..vectors import Vectors
from ._wire import (
    CONTENT_TYPE,
    HEADERS,
    PROVIDER,
    chat_request,
    embedding_request,
    feedback_request,
    feedback_result,
    generation_request,
    parse_chat,
    parse_embeddings,
    parse_error,
    parse_generation,
)
from .models import ChatResult, FeedbackResult, FeedbackValue, GenerationResult

R = TypeVar("R")


class SalesforceClient(BaseClient):
    """Client for the Salesforce Models API: chat, generations, embeddings and feedback.

    Settings come from the arguments, then the environment (``SALESFORCE_DOMAIN``,
    ``SALESFORCE_CLIENT_ID``, ``SALESFORCE_CLIENT_SECRET``, ``SALESFORCE_ACCESS_TOKEN``,
    ``SALESFORCE_API_BASE``). One instance holds one pooled sync and one async HTTP client:
    share it, and close it (or use it as a context manager) when done.

    Timeout, retries, pacing, pool size and batching come from ``options`` (a
    :class:`~sfmodels_core.options.ClientOptions`), or as keywords (``timeout=30``,
    ``max_retries=5``, ``requests_per_minute=600``, ``batch_size=``, ``max_concurrency=``).
    Without ``requests_per_minute`` it keeps to the documented limits: at most 1,000 requests
    in any minute to the embeddings and feedback endpoints and 10,000 to each generation
    endpoint.

    Credentials (and the token, with every call) go only over https, or plain http to a
    loopback host (127.0.0.1, ::1, localhost: the emulator); ``allow_insecure_http=True``
    allows plain http to other hosts, with a warning. The ``api_instance_url`` of a token
    answer is held to the same rule. Model names are checked and percent-encoded as one path
    segment (see :func:`~sfmodels_core._validation.require_name` and
    :func:`~sfmodels_core._validation.url_segment`).
    """

    default_batch_size = defaults.SALESFORCE_EMBED_BATCH_SIZE

    def __init__(
        self,
        *,
        domain: str | None = None,
        client_id: str | None = None,
        client_secret: Secret = None,
        api_key: Secret = None,
        access_token: Secret = None,
        api_base: str | None = None,
        options: ClientOptions | None = None,
        transport: httpx.BaseTransport | None = None,
        async_transport: httpx.AsyncBaseTransport | None = None,
        env: Mapping[str, str] | None = None,
        allow_insecure_http: bool = False,
        **settings: Any,
    ) -> None:
        resolved = resolve_salesforce(domain=domain, client_id=client_id,
                                      client_secret=client_secret,
                                      api_key=api_key if api_key is not None else access_token,
                                      api_base=api_base, env=env,
                                      allow_insecure_http=allow_insecure_http)
        self.allow_insecure_http = allow_insecure_http
        self._api_base = resolved.api_base
        super().__init__(
            resolved.token_source, provider=PROVIDER, headers=HEADERS, parse_error=parse_error,
            options=ClientOptions.build(options, **settings), transport=transport,
            async_transport=async_transport, content_type=CONTENT_TYPE,
            default_rates=defaults.SALESFORCE_REQUESTS_PER_MINUTE)

    def __repr__(self) -> str:
        return f"SalesforceClient(api_base={self._api_base!r}, auth={self.auth.source!r})"

    # -- where to send: the user's base, else the token's api_instance_url, else the default
    def _base_from(self, token_extra: Mapping[str, Any] | None) -> str:
        if self._api_base:
            return self._api_base
        instance = (token_extra or {}).get("api_instance_url")
        if isinstance(instance, str) and instance:
            return instance.rstrip("/") + "/einstein/platform/v1"
        return defaults.SALESFORCE_API_BASE

    def api_base(self) -> str:
        if self._api_base or not self.auth.source.refreshable:
            return self._base_from(None)
        return self._base_from(self.auth.get_token().extra)

    async def aapi_base(self) -> str:
        if self._api_base or not self.auth.source.refreshable:
            return self._base_from(None)
        return self._base_from((await self.auth.aget_token()).extra)

    def _post(self, path: str, body: dict[str, Any], parse: Callable[[Any], R], *,
              retry: bool = True, raw: bool = False) -> R:
        return self._read(self._transport.request("POST", self.api_base() + path, body,
                                                  retry=retry), parse, raw=raw)

    async def _apost(self, path: str, body: dict[str, Any], parse: Callable[[Any], R], *,
                     retry: bool = True, raw: bool = False) -> R:
        base = await self.aapi_base()
        return self._read(await self._transport.arequest("POST", base + path, body,
                                                         retry=retry), parse, raw=raw)

    # -- chat
    def chat(self, model: str, messages: Sequence[Any], *,
             localization: Mapping[str, Any] | None = None,
             tags: Mapping[str, Any] | None = None) -> ChatResult:
        """Send ``[{"role": "system"|"user"|"assistant", "content": str}, ...]``."""
        return self._post(*chat_request(model, messages, localization, tags), parse_chat)

    async def achat(self, model: str, messages: Sequence[Any], *,
                    localization: Mapping[str, Any] | None = None,
                    tags: Mapping[str, Any] | None = None) -> ChatResult:
        return await self._apost(*chat_request(model, messages, localization, tags), parse_chat)

    # -- generations
    def generate(self, model: str, prompt: str, *, localization: Mapping[str, Any] | None = None,
                 tags: Mapping[str, Any] | None = None) -> GenerationResult:
        return self._post(*generation_request(model, prompt, localization, tags),
                          parse_generation)

    async def agenerate(self, model: str, prompt: str, *,
                        localization: Mapping[str, Any] | None = None,
                        tags: Mapping[str, Any] | None = None) -> GenerationResult:
        return await self._apost(*generation_request(model, prompt, localization, tags),
                                 parse_generation)

    # -- embeddings: any number of texts, batched, in input order
    @overload
    def embed(self, model: str, texts: Sequence[str], *,
              localization: Mapping[str, Any] | None = None,
              tags: Mapping[str, Any] | None = None,
              resume_from: BulkEmbeddingError | None = None,
              compact: Literal[False] = False) -> EmbeddingResult[list[list[float]]]: ...

    @overload
    def embed(self, model: str, texts: Sequence[str], *,
              localization: Mapping[str, Any] | None = None,
              tags: Mapping[str, Any] | None = None,
              resume_from: BulkEmbeddingError | None = None,
              compact: Literal[True]) -> EmbeddingResult[Vectors]: ...

    @overload
    def embed(self, model: str, texts: Sequence[str], *,
              localization: Mapping[str, Any] | None = None,
              tags: Mapping[str, Any] | None = None,
              resume_from: BulkEmbeddingError | None = None,
              compact: bool) -> EmbeddingResult[Any]: ...

    def embed(self, model: str, texts: Sequence[str], *,
              localization: Mapping[str, Any] | None = None,
              tags: Mapping[str, Any] | None = None,
              resume_from: BulkEmbeddingError | None = None,
              compact: bool = False) -> EmbeddingResult[Any]:
        """One vector per text, in input order, however many texts (see ``BaseClient``'s bulk
        notes: batches retry while the job progresses; a failure carries the vectors done, and
        ``resume_from=`` that error sends only the missing texts). ``compact=True`` returns
        float32 :class:`~sfmodels_core.vectors.Vectors`, packed as each batch is read."""
        plan = self._embed_plan(model, "model", texts, resume_from, compact)
        return self._bulk_embed(plan, EmbedRequest(*embedding_request(
            plan.target, [], localization, tags)), parse_embeddings)

    @overload
    async def aembed(self, model: str, texts: Sequence[str], *,
                     localization: Mapping[str, Any] | None = None,
                     tags: Mapping[str, Any] | None = None,
                     resume_from: BulkEmbeddingError | None = None,
                     compact: Literal[False] = False) -> EmbeddingResult[list[list[float]]]: ...

    @overload
    async def aembed(self, model: str, texts: Sequence[str], *,
                     localization: Mapping[str, Any] | None = None,
                     tags: Mapping[str, Any] | None = None,
                     resume_from: BulkEmbeddingError | None = None,
                     compact: Literal[True]) -> EmbeddingResult[Vectors]: ...

    @overload
    async def aembed(self, model: str, texts: Sequence[str], *,
                     localization: Mapping[str, Any] | None = None,
                     tags: Mapping[str, Any] | None = None,
                     resume_from: BulkEmbeddingError | None = None,
                     compact: bool) -> EmbeddingResult[Any]: ...

    async def aembed(self, model: str, texts: Sequence[str], *,
                     localization: Mapping[str, Any] | None = None,
                     tags: Mapping[str, Any] | None = None,
                     resume_from: BulkEmbeddingError | None = None,
                     compact: bool = False) -> EmbeddingResult[Any]:
        plan = self._embed_plan(model, "model", texts, resume_from, compact)
        return await self._abulk_embed(plan, EmbedRequest(*embedding_request(
            plan.target, [], localization, tags)), parse_embeddings)

    # -- feedback
    def submit_feedback(self, generation_id: str, feedback: FeedbackValue | str | None, *,
                        text: str | None = None, source: str | None = None,
                        app_feedback: Mapping[str, Any] | None = None,
                        app_generation_id: str | None = None, app_generation: str | None = None,
                        feedback_id: str | None = None) -> FeedbackResult:
        """Tell Salesforce a generation was GOOD or BAD; returns the stored feedback id.

        Any 2xx answer is success, whatever its body (202 with JSON, empty or text): the
        feedback is stored by then, so nothing after it raises. Reuse ``feedback_id`` when
        retrying a submission yourself."""
        body = feedback_request(generation_id, feedback, text=text, source=source,
                                app_feedback=app_feedback, app_generation_id=app_generation_id,
                                app_generation=app_generation, feedback_id=feedback_id)
        response = self._transport.request("POST", self.api_base() + "/feedback", body)
        return feedback_result(body, response.status_code, response.content)

    async def asubmit_feedback(self, generation_id: str, feedback: FeedbackValue | str | None, *,
                               text: str | None = None, source: str | None = None,
                               app_feedback: Mapping[str, Any] | None = None,
                               app_generation_id: str | None = None,
                               app_generation: str | None = None,
                               feedback_id: str | None = None) -> FeedbackResult:
        body = feedback_request(generation_id, feedback, text=text, source=source,
                                app_feedback=app_feedback, app_generation_id=app_generation_id,
                                app_generation=app_generation, feedback_id=feedback_id)
        base = await self.aapi_base()
        response = await self._transport.arequest("POST", base + "/feedback", body)
        return feedback_result(body, response.status_code, response.content)

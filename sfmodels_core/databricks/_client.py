"""The Databricks client: the I/O around the pure wire format of :mod:`._wire` and
:mod:`._responses`."""

from __future__ import annotations

import contextlib
from collections.abc import AsyncIterator, Callable, Iterator, Mapping, Sequence
from typing import Any, Literal, TypeVar, overload

import httpx

from .. import defaults
from .._base_client import BaseClient
from .._sse import EventReader, aiter_events, iter_events
from ..bulk import EmbedPlan, EmbedRequest
from ..credentials import DatabricksCredentials, Secret, resolve_databricks
from ..errors import BulkEmbeddingError
from ..options import ClientOptions
from ..types import EmbeddingResult
from ..vectors import Vectors
from . import _responses as responses
from ._stream import StreamAccumulator
from ._wire import (
    HEADERS,
    PROVIDER,
    _fed,
    _identity,
    _usage_last,
    chat_request,
    completion_request,
    embedding_request,
    ensure_complete,
    parse_chat,
    parse_chat_chunk,
    parse_completion,
    parse_completion_piece,
    parse_embeddings,
    parse_error,
    parse_event,
)
from .models import ChatCompletion, ChatCompletionChunk, Completion

R = TypeVar("R")
T = TypeVar("T")


# -- the client -----------------------------------------------------------------------------------
class DatabricksClient(BaseClient):
    """Client for Databricks model serving endpoints: chat, completions and embeddings.

    Settings come from the arguments, then ``DATABRICKS_HOST``, ``DATABRICKS_TOKEN``,
    ``DATABRICKS_CLIENT_ID``/``DATABRICKS_CLIENT_SECRET``, then a profile of
    ``~/.databrickscfg`` (``DATABRICKS_CONFIG_PROFILE``, ``DATABRICKS_CONFIG_FILE``;
    ``target_uri="databricks://<profile>"`` names one too). With databricks-sdk installed
    (the ``databricks-sdk`` extra), ``workspace_client=`` (a ``WorkspaceClient`` or its
    ``Config``) provides host and credentials, a profile whose ``auth_type`` only the SDK knows
    works, and when nothing above names credentials the SDK's default authentication is used
    (notebooks and jobs, ``databricks auth login``, Azure CLI, managed identities, GCP). The SDK
    only supplies credentials: requests go through this client's transport, retries and pools.
    A workload identity needs no SDK: ``auth_type="env-oidc"`` (the JWT in
    ``DATABRICKS_OIDC_TOKEN``, or the variable ``oidc_token_env`` names) or ``"file-oidc"`` (in
    the file ``oidc_token_filepath``), or the same as ``DATABRICKS_*`` variables, exchanged
    for a Databricks token once per token lifetime.
    Timeout, retries, pacing, pool size and batching as for ``SalesforceClient``.

    Streaming calls send ``stream_options: {"include_usage": true}`` so that external-model
    endpoints report usage; pass ``stream_usage=False`` to leave it out (for an endpoint that
    rejects the field). A streaming call answered with one plain JSON body (as custom and pyfunc
    endpoints do) streams as one chunk.

    Credentials go only over https, or plain http to a loopback host (127.0.0.1, ::1,
    localhost: the emulator); ``allow_insecure_http=True`` allows plain http to other hosts,
    with a warning. Endpoint names are checked and percent-encoded as one path segment (see
    :func:`invocations_path`).
    """

    default_batch_size = defaults.DATABRICKS_EMBED_BATCH_SIZE

    def __init__(
        self,
        *,
        host: str | None = None,
        api_key: Secret = None,
        token: Secret = None,
        client_id: str | None = None,
        client_secret: Secret = None,
        profile: str | None = None,
        config_file: str | None = None,
        workspace_client: Any = None,
        target_uri: str | None = None,
        options: ClientOptions | None = None,
        transport: httpx.BaseTransport | None = None,
        async_transport: httpx.AsyncBaseTransport | None = None,
        env: Mapping[str, str] | None = None,
        allow_insecure_http: bool = False,
        auth_type: str | None = None,
        oidc_token_env: str | None = None,
        oidc_token_filepath: str | None = None,
        **settings: Any,
    ) -> None:
        resolved = resolve_databricks(host=host, api_key=api_key if api_key is not None else token,
                                      client_id=client_id, client_secret=client_secret,
                                      profile=profile, config_file=config_file, env=env,
                                      workspace_client=workspace_client, target_uri=target_uri,
                                      allow_insecure_http=allow_insecure_http,
                                      auth_type=auth_type, oidc_token_env=oidc_token_env,
                                      oidc_token_filepath=oidc_token_filepath)
        self._start(resolved, ClientOptions.build(options, **settings), transport,
                    async_transport)

    @classmethod
    def from_credentials(cls, credentials: DatabricksCredentials,
                         options: ClientOptions | None = None, *,
                         transport: httpx.BaseTransport | None = None,
                         async_transport: httpx.AsyncBaseTransport | None = None,
                         ) -> DatabricksClient:
        """A client for credentials already resolved (by :func:`resolve_databricks`, or shipped
        to a worker inside a batch job's connection): nothing else is read."""
        client = cls.__new__(cls)
        client._start(credentials, options or ClientOptions(), transport, async_transport)
        return client

    def _start(self, resolved: DatabricksCredentials, options: ClientOptions,
               transport: httpx.BaseTransport | None,
               async_transport: httpx.AsyncBaseTransport | None) -> None:
        self.allow_insecure_http = resolved.allow_insecure_http
        self.host = resolved.host
        super().__init__(
            resolved.token_source, provider=PROVIDER, headers=HEADERS, parse_error=parse_error,
            options=options, transport=transport, async_transport=async_transport)

    def __repr__(self) -> str:
        return f"DatabricksClient(host={self.host!r}, auth={self.auth.source!r})"

    def _post(self, path: str, body: dict[str, Any], parse: Callable[[Any], R], *,
              retry: bool = True, raw: bool = False) -> R:
        return self._read(self._transport.request("POST", self.host + path, body, retry=retry),
                          parse, raw=raw)

    async def _apost(self, path: str, body: dict[str, Any], parse: Callable[[Any], R], *,
                     retry: bool = True, raw: bool = False) -> R:
        return self._read(await self._transport.arequest("POST", self.host + path, body,
                                                         retry=retry), parse, raw=raw)

    def _events(self, path: str, body: dict[str, Any], parse: Callable[[dict[str, Any]], T],
                reader: EventReader) -> Iterator[T]:
        stream = self._transport.stream("POST", self.host + path, body)
        with contextlib.closing(stream):
            for event in iter_events(stream, reader, self._transport.stream_timeout):
                yield parse_event(event, parse)

    async def _aevents(self, path: str, body: dict[str, Any],
                       parse: Callable[[dict[str, Any]], T],
                       reader: EventReader) -> AsyncIterator[T]:
        stream = await self._transport.astream("POST", self.host + path, body)
        events = aiter_events(stream, reader, self._transport.stream_timeout)
        async with contextlib.aclosing(stream), contextlib.aclosing(events):
            async for event in events:
                yield parse_event(event, parse)

    # -- chat
    def chat(self, endpoint: str, messages: Sequence[Any], **params: Any) -> ChatCompletion:
        """Chat with ``temperature``, ``max_tokens``, ``stop``, ``n``, ``top_p``, ``top_k``,
        ``tools``, ``tool_choice``, ``response_format``, and any other field passed through."""
        return self._post(*chat_request(endpoint, messages, params), parse_chat)

    async def achat(self, endpoint: str, messages: Sequence[Any],
                    **params: Any) -> ChatCompletion:
        return await self._apost(*chat_request(endpoint, messages, params), parse_chat)

    def stream_chat(self, endpoint: str, messages: Sequence[Any],
                    **params: Any) -> Iterator[ChatCompletionChunk]:
        """Chunks as they arrive; usage comes once, on a last chunk with no choices."""
        path, body = chat_request(endpoint, messages, params, stream=True)
        stream, reader = StreamAccumulator(), EventReader()
        for part in self._events(path, body, parse_chat_chunk, reader):
            stream.add(part)
            yield part.model_copy(update={"usage": None}) if part.usage else part
        ensure_complete(reader, stream.complete, stream.answered, stream.completion)
        if (last := _usage_last(stream, ChatCompletionChunk)) is not None:
            yield last

    async def astream_chat(self, endpoint: str, messages: Sequence[Any],
                           **params: Any) -> AsyncIterator[ChatCompletionChunk]:
        path, body = chat_request(endpoint, messages, params, stream=True)
        stream, reader = StreamAccumulator(), EventReader()
        async for part in self._aevents(path, body, parse_chat_chunk, reader):
            stream.add(part)
            yield part.model_copy(update={"usage": None}) if part.usage else part
        ensure_complete(reader, stream.complete, stream.answered, stream.completion)
        if (last := _usage_last(stream, ChatCompletionChunk)) is not None:
            yield last

    # -- the Responses API: same messages, parameters and results as chat
    def respond(self, endpoint: str, messages: Sequence[Any], **params: Any) -> ChatCompletion:
        """Chat through the OpenAI Responses API (``/serving-endpoints/responses``), for endpoints
        that serve it (GPT-5 family, Codex, Responses agents). Takes chat messages and chat
        parameter names and returns a :class:`ChatCompletion`, as :meth:`chat` does; see
        :mod:`._responses` for how they map."""
        return self._post(*responses.responses_request(endpoint, messages, params),
                          responses.parse_response)

    async def arespond(self, endpoint: str, messages: Sequence[Any],
                       **params: Any) -> ChatCompletion:
        return await self._apost(*responses.responses_request(endpoint, messages, params),
                                 responses.parse_response)

    def stream_respond(self, endpoint: str, messages: Sequence[Any],
                       **params: Any) -> Iterator[ChatCompletionChunk]:
        """:meth:`respond`, streamed: chunks as :meth:`stream_chat` gives them (usage once, on
        a last chunk with no choices)."""
        path, body = responses.responses_request(endpoint, messages, params, stream=True)
        state, reader = responses.ResponsesStream(), EventReader()
        for event in self._events(path, body, _identity, reader):
            yield from _fed(state, event)
        ensure_complete(reader, state.complete, state.answered, state.partial)
        yield from state.finish()

    async def astream_respond(self, endpoint: str, messages: Sequence[Any],
                              **params: Any) -> AsyncIterator[ChatCompletionChunk]:
        path, body = responses.responses_request(endpoint, messages, params, stream=True)
        state, reader = responses.ResponsesStream(), EventReader()
        async for event in self._aevents(path, body, _identity, reader):
            for chunk in _fed(state, event):
                yield chunk
        ensure_complete(reader, state.complete, state.answered, state.partial)
        for chunk in state.finish():
            yield chunk

    # -- completions
    def complete(self, endpoint: str, prompt: str | list[str], **params: Any) -> Completion:
        return self._post(*completion_request(endpoint, prompt, params), parse_completion)

    async def acomplete(self, endpoint: str, prompt: str | list[str],
                        **params: Any) -> Completion:
        return await self._apost(*completion_request(endpoint, prompt, params),
                                 parse_completion)

    def stream_complete(self, endpoint: str, prompt: str | list[str],
                        **params: Any) -> Iterator[Completion]:
        """Pieces of text as they arrive; usage comes once, on a last piece with no choices."""
        path, body = completion_request(endpoint, prompt, params, stream=True)
        stream, reader = StreamAccumulator(), EventReader()
        for part in self._events(path, body, parse_completion_piece, reader):
            stream.add(part)
            yield part.model_copy(update={"usage": None}) if part.usage else part
        ensure_complete(reader, stream.complete, stream.answered, stream.completion)
        if (last := _usage_last(stream, Completion)) is not None:
            yield last

    async def astream_complete(self, endpoint: str, prompt: str | list[str],
                               **params: Any) -> AsyncIterator[Completion]:
        path, body = completion_request(endpoint, prompt, params, stream=True)
        stream, reader = StreamAccumulator(), EventReader()
        async for part in self._aevents(path, body, parse_completion_piece, reader):
            stream.add(part)
            yield part.model_copy(update={"usage": None}) if part.usage else part
        ensure_complete(reader, stream.complete, stream.answered, stream.completion)
        if (last := _usage_last(stream, Completion)) is not None:
            yield last

    # -- embeddings: any number of texts, batched, in input order
    @overload
    def embed(self, endpoint: str, texts: Sequence[str], *, instruction: str | None = None,
              resume_from: BulkEmbeddingError | None = None, compact: Literal[False] = False,
              **params: Any) -> EmbeddingResult[list[list[float]]]: ...

    @overload
    def embed(self, endpoint: str, texts: Sequence[str], *, instruction: str | None = None,
              resume_from: BulkEmbeddingError | None = None, compact: Literal[True],
              **params: Any) -> EmbeddingResult[Vectors]: ...

    @overload
    def embed(self, endpoint: str, texts: Sequence[str], *, instruction: str | None = None,
              resume_from: BulkEmbeddingError | None = None, compact: bool,
              **params: Any) -> EmbeddingResult[Any]: ...

    def embed(self, endpoint: str, texts: Sequence[str], *, instruction: str | None = None,
              resume_from: BulkEmbeddingError | None = None, compact: bool = False,
              **params: Any) -> EmbeddingResult[Any]:
        """One vector per text, in order; other keywords go into each request body as they are.

        Batches retry while the job progresses and split when the endpoint refuses their size;
        a failure carries the vectors done, and ``resume_from=`` that error sends only the
        missing texts. ``compact=True`` returns float32 :class:`~sfmodels_core.vectors.Vectors`
        and asks for base64 vectors (``encoding_format``), reading lists when the endpoint
        sends them anyway and leaving the field out when it refuses it."""
        plan = self._embed_plan(endpoint, "endpoint", texts, resume_from, compact)
        return self._bulk_embed(plan, self._embedding_request(plan, instruction, params),
                                parse_embeddings)

    @overload
    async def aembed(self, endpoint: str, texts: Sequence[str], *,
                     instruction: str | None = None,
                     resume_from: BulkEmbeddingError | None = None,
                     compact: Literal[False] = False,
                     **params: Any) -> EmbeddingResult[list[list[float]]]: ...

    @overload
    async def aembed(self, endpoint: str, texts: Sequence[str], *,
                     instruction: str | None = None,
                     resume_from: BulkEmbeddingError | None = None, compact: Literal[True],
                     **params: Any) -> EmbeddingResult[Vectors]: ...

    @overload
    async def aembed(self, endpoint: str, texts: Sequence[str], *,
                     instruction: str | None = None,
                     resume_from: BulkEmbeddingError | None = None, compact: bool,
                     **params: Any) -> EmbeddingResult[Any]: ...

    async def aembed(self, endpoint: str, texts: Sequence[str], *,
                     instruction: str | None = None,
                     resume_from: BulkEmbeddingError | None = None, compact: bool = False,
                     **params: Any) -> EmbeddingResult[Any]:
        plan = self._embed_plan(endpoint, "endpoint", texts, resume_from, compact)
        return await self._abulk_embed(plan, self._embedding_request(plan, instruction, params),
                                       parse_embeddings)

    def _embedding_request(self, plan: EmbedPlan, instruction: str | None,
                           params: Mapping[str, Any]) -> EmbedRequest:
        """The batches' request; a compact call asks for base64 vectors unless the caller set
        ``encoding_format`` or the endpoint refused it before."""
        path, body = embedding_request(plan.target, [], instruction, params)
        if plan.sink is None or "encoding_format" in params or \
                self._was_refused(plan.target, "encoding_format"):
            return EmbedRequest(path, body)
        return EmbedRequest(path, {**body, "encoding_format": "base64"},
                            optional=("encoding_format",))

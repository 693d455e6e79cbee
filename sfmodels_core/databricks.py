"""Databricks Foundation Model APIs: wire format and the client.

Requests go to the native route ``{host}/serving-endpoints/{endpoint}/invocations``, which every
serving endpoint has (foundation models, external models and custom endpoints alike).
Building and parsing are pure module-level functions; :class:`DatabricksClient` adds I/O.
"""

from __future__ import annotations

import contextlib
from collections.abc import AsyncIterator, Callable, Iterable, Iterator, Mapping, Sequence
from typing import Any, TypeVar

import httpx
import pydantic_core
from pydantic import BaseModel, Field

from . import defaults
from .client import BaseClient
from .config import Secret, resolve_databricks
from .errors import (
    APIStatusError,
    BulkEmbeddingError,
    InvalidInputError,
    ResponseValidationError,
)
from .options import ClientOptions
from .sse import aiter_events, iter_events
from .transport import loads
from .types import (
    EmbeddingResult,
    ParsedBatch,
    Usage,
    expect_vectors,
    ordered,
)
from .validation import require_messages, require_name

R = TypeVar("R")
T = TypeVar("T")
PROVIDER = "Databricks"
ROLES = ("system", "user", "assistant", "tool")
HEADERS = {"accept": "application/json"}
#: Generation parameters the chat and completion calls take by name; any other keyword is
#: passed through into the request body as it is.
KNOWN_PARAMS = ("temperature", "max_tokens", "stop", "n", "top_p", "top_k", "tools",
                "tool_choice", "response_format")


# -- results --------------------------------------------------------------------------------------
class ToolCall(BaseModel):
    """A function call the model asked for. ``arguments`` is the JSON text the model wrote."""

    id: str | None = None
    type: str = "function"
    name: str
    arguments: str = ""

    def parsed_arguments(self) -> Any:
        return pydantic_core.from_json(self.arguments or "{}")


class AssistantMessage(BaseModel):
    role: str = "assistant"
    content: str | None = None
    tool_calls: list[ToolCall] = Field(default_factory=list)


class ChatChoice(BaseModel):
    index: int = 0
    message: AssistantMessage
    finish_reason: str | None = None


class ChatCompletion(BaseModel):
    """A chat answer; ``text``, ``tool_calls`` and ``finish_reason`` are the first choice's."""

    id: str | None = None
    model: str | None = None
    created: int | None = None
    choices: list[ChatChoice]
    usage: Usage | None = None
    raw: dict[str, Any] = Field(default_factory=dict, repr=False)

    @property
    def text(self) -> str:
        return (self.choices[0].message.content or "") if self.choices else ""

    @property
    def tool_calls(self) -> list[ToolCall]:
        return self.choices[0].message.tool_calls if self.choices else []

    @property
    def finish_reason(self) -> str | None:
        return self.choices[0].finish_reason if self.choices else None


class ToolCallDelta(BaseModel):
    """A piece of a streamed tool call: pieces with the same ``index`` concatenate."""

    index: int = 0
    id: str | None = None
    name: str | None = None
    arguments: str = ""


class ChoiceDelta(BaseModel):
    index: int = 0
    role: str | None = None
    content: str | None = None
    tool_calls: list[ToolCallDelta] = Field(default_factory=list)
    finish_reason: str | None = None


class ChatCompletionChunk(BaseModel):
    """One streamed piece. Usage is never on content chunks: a stream ends with one chunk that
    has no choices and the final usage (when the service reported any)."""

    id: str | None = None
    model: str | None = None
    created: int | None = None
    choices: list[ChoiceDelta] = Field(default_factory=list)
    usage: Usage | None = None

    @property
    def text(self) -> str:
        return "".join(c.content or "" for c in self.choices if c.index == 0)


class CompletionChoice(BaseModel):
    index: int = 0
    text: str = ""
    finish_reason: str | None = None


class Completion(BaseModel):
    """A completions answer (or, streamed, one piece of it: then ``text`` is the new text)."""

    id: str | None = None
    model: str | None = None
    created: int | None = None
    choices: list[CompletionChoice] = Field(default_factory=list)
    usage: Usage | None = None
    raw: dict[str, Any] = Field(default_factory=dict, repr=False)

    @property
    def text(self) -> str:
        return "".join(c.text for c in self.choices if c.index == 0)

    @property
    def finish_reason(self) -> str | None:
        return self.choices[0].finish_reason if self.choices else None


# -- wire format (pure) ---------------------------------------------------------------------------
def _params(params: Mapping[str, Any]) -> dict[str, Any]:
    body = {k: v for k, v in params.items() if v is not None}
    stop = body.get("stop")
    if isinstance(stop, str):
        body["stop"] = [stop]
    elif stop is not None and (not isinstance(stop, (list, tuple)) or not all(
            isinstance(s, str) for s in stop)):
        raise InvalidInputError("stop must be a string or a list of strings")
    elif stop is not None:
        body["stop"] = list(stop)
        if not body["stop"]:
            del body["stop"]
    for key in ("max_tokens", "n", "top_k"):
        if key in body and (not isinstance(body[key], int) or isinstance(body[key], bool)
                            or body[key] < 1):
            raise InvalidInputError(f"{key} must be a positive integer, got {body[key]!r}")
    for key in ("temperature", "top_p"):
        if key in body and (not isinstance(body[key], (int, float)) or isinstance(
                body[key], bool)):
            raise InvalidInputError(f"{key} must be a number, got {body[key]!r}")
    return body


def invocations_path(endpoint: str) -> str:
    return f"/serving-endpoints/{require_name(endpoint, 'endpoint')}/invocations"


def chat_request(endpoint: str, messages: Any, params: Mapping[str, Any],
                 stream: bool = False) -> tuple[str, dict[str, Any]]:
    path = invocations_path(endpoint)
    msgs = require_messages(messages, ROLES, content_may_be_list=True)
    body: dict[str, Any] = {"messages": msgs, **_params(params)}
    if stream:
        body["stream"] = True
    return path, body


def completion_request(endpoint: str, prompt: Any, params: Mapping[str, Any],
                       stream: bool = False) -> tuple[str, dict[str, Any]]:
    path = invocations_path(endpoint)
    if not isinstance(prompt, str) and not (
            isinstance(prompt, list) and all(isinstance(p, str) for p in prompt)):
        raise InvalidInputError("prompt must be a string or a list of strings")
    body: dict[str, Any] = {"prompt": prompt, **_params(params)}
    if stream:
        body["stream"] = True
    return path, body


def embedding_request(endpoint: str, texts: Sequence[str], instruction: str | None,
                      params: Mapping[str, Any]) -> tuple[str, dict[str, Any]]:
    body: dict[str, Any] = {"input": list(texts)}
    if instruction:
        body["instruction"] = instruction
    for key, value in params.items():
        if key in ("input", "instruction"):
            raise InvalidInputError(f"{key} is set by embed(); do not pass it as a parameter")
        if value is not None:
            body[key] = value
    return f"/serving-endpoints/{endpoint}/invocations", body


def _tool_calls(items: Any) -> list[ToolCall]:
    calls = []
    for item in items or []:
        fn = item.get("function") or {}
        args = fn.get("arguments")
        calls.append(ToolCall(id=item.get("id"), type=item.get("type") or "function",
                              name=fn.get("name") or "",
                              arguments=args if isinstance(args, str) else pydantic_core.to_json(
                                  args if args is not None else {}).decode()))
    return calls


def _text_content(content: Any) -> str | None:
    """Message content as text: a string, or the text parts of a list of parts."""
    if content is None or isinstance(content, str):
        return content
    if isinstance(content, list):
        return "".join(p.get("text", "") for p in content
                       if isinstance(p, dict) and p.get("type") in ("text", None))
    return str(content)


def parse_chat(body: dict[str, Any]) -> ChatCompletion:
    choices = []
    for i, choice in enumerate(body.get("choices") or []):
        msg = choice.get("message") or {}
        choices.append(ChatChoice(
            index=choice.get("index", i), finish_reason=choice.get("finish_reason"),
            message=AssistantMessage(role=msg.get("role") or "assistant",
                                     content=_text_content(msg.get("content")),
                                     tool_calls=_tool_calls(msg.get("tool_calls")))))
    return ChatCompletion(id=body.get("id"), model=body.get("model"), created=body.get("created"),
                          choices=choices, usage=Usage.from_wire(body.get("usage")), raw=body)


def parse_chat_chunk(body: dict[str, Any]) -> ChatCompletionChunk:
    choices = []
    for i, choice in enumerate(body.get("choices") or []):
        delta = choice.get("delta") or {}
        tool_deltas = []
        for j, item in enumerate(delta.get("tool_calls") or []):
            fn = item.get("function") or {}
            tool_deltas.append(ToolCallDelta(index=item.get("index", j), id=item.get("id"),
                                             name=fn.get("name"),
                                             arguments=fn.get("arguments") or ""))
        choices.append(ChoiceDelta(index=choice.get("index", i), role=delta.get("role"),
                                   content=_text_content(delta.get("content")),
                                   tool_calls=tool_deltas,
                                   finish_reason=choice.get("finish_reason")))
    return ChatCompletionChunk(id=body.get("id"), model=body.get("model"),
                               created=body.get("created"), choices=choices,
                               usage=Usage.from_wire(body.get("usage")))


def parse_completion(body: dict[str, Any]) -> Completion:
    choices = [CompletionChoice(index=c.get("index", i), text=c.get("text") or "",
                                finish_reason=c.get("finish_reason"))
               for i, c in enumerate(body.get("choices") or [])]
    return Completion(id=body.get("id"), model=body.get("model"), created=body.get("created"),
                      choices=choices, usage=Usage.from_wire(body.get("usage")), raw=body)


def parse_embeddings(body: dict[str, Any]) -> ParsedBatch:
    """(vectors in input order, model, usage, the body without the vectors)."""
    items = ordered(body.get("data") or [])
    rest = {k: v for k, v in body.items() if k != "data"}
    return ([item["embedding"] for item in items], rest.get("model"),
            Usage.from_wire(rest.get("usage")), rest)


def parse_error(status: int, body: Any) -> tuple[str | None, str | None, str | None]:
    code = message = None
    if isinstance(body, dict):
        code = body.get("error_code") or body.get("error")
        message = body.get("message") or body.get("error_description")
        external = body.get("external_model_error")
        if external and message:
            message = f"{message} (external model: {external})"
        if isinstance(message, str) and message.startswith("{"):
            with contextlib.suppress(ValueError):  # the message is itself JSON sometimes
                inner = pydantic_core.from_json(message)
                if isinstance(inner, dict):
                    nested = inner.get("message") or inner.get("error", {})
                    if isinstance(nested, dict):
                        nested = nested.get("message")
                    message = str(nested or message)
    elif isinstance(body, str):
        message = body[:500]
    hint = {
        401: "Check DATABRICKS_TOKEN (or the service principal's id and secret) and that it "
             "belongs to this workspace.",
        403: "The token's identity may not query this serving endpoint (CAN QUERY permission).",
        404: "Check the serving endpoint name (Serving in the workspace UI lists them).",
        429: "The workspace or endpoint rate limit was reached; lower max_concurrency or set "
             "requests_per_minute.",
    }.get(status)
    return (str(code) if code else None), (str(message) if message else None), hint


def parse_event(event: str, parse: Callable[[dict[str, Any]], T]) -> T:
    """One stream event, parsed; an error event or one that does not fit raises SFModelsError."""
    try:
        body = loads(event.encode())
    except ValueError:
        body = None
    if isinstance(body, dict) and ("error_code" in body or "error" in body) and \
            "choices" not in body:
        code, message, hint = parse_error(200, body)
        raise APIStatusError(f"Databricks stream failed: {message or code}", error_code=code,
                            provider_message=message, provider=PROVIDER, hint=hint, body=body)
    try:
        if not isinstance(body, dict):
            raise TypeError("not a JSON object")
        return parse(body)
    except (ValueError, KeyError, TypeError, AttributeError, IndexError) as exc:
        raise ResponseValidationError(f"Databricks sent a stream event this client cannot use "
                            f"({type(exc).__name__}: {exc}): {event[:200]!r}",
                            provider=PROVIDER) from exc


class StreamUsage:
    """Usage in Databricks streams is cumulative: keep the last value seen, report it once."""

    def __init__(self) -> None:
        self.usage: Usage | None = None
        self.id: str | None = None
        self.model: str | None = None

    def take(self, chunk: ChatCompletionChunk | Completion) -> ChatCompletionChunk | Completion:
        if chunk.usage is not None:
            self.usage = chunk.usage
            chunk.usage = None
        self.id, self.model = chunk.id or self.id, chunk.model or self.model
        return chunk

    def final_chat(self) -> ChatCompletionChunk | None:
        if self.usage is None:
            return None
        return ChatCompletionChunk(id=self.id, model=self.model, choices=[], usage=self.usage)

    def final_completion(self) -> Completion | None:
        if self.usage is None:
            return None
        return Completion(id=self.id, model=self.model, choices=[], usage=self.usage)


def merge_chunks(chunks: Iterable[ChatCompletionChunk]) -> ChatCompletion:
    """Fold a chat stream into the completion it adds up to (content and tool calls joined)."""
    contents: dict[int, list[str]] = {}
    finish: dict[int, str | None] = {}
    calls: dict[int, dict[int, dict[str, Any]]] = {}
    ident = model = None
    created = None
    usage = None
    for chunk in chunks:
        ident, model = chunk.id or ident, chunk.model or model
        created = chunk.created or created
        usage = chunk.usage or usage
        for choice in chunk.choices:
            contents.setdefault(choice.index, []).append(choice.content or "")
            if choice.finish_reason:
                finish[choice.index] = choice.finish_reason
            for delta in choice.tool_calls:
                call = calls.setdefault(choice.index, {}).setdefault(
                    delta.index, {"id": None, "name": "", "arguments": ""})
                call["id"] = delta.id or call["id"]
                call["name"] += delta.name or ""
                call["arguments"] += delta.arguments
    choices = [
        ChatChoice(index=i, finish_reason=finish.get(i), message=AssistantMessage(
            content="".join(parts),
            tool_calls=[ToolCall(**c) for _, c in sorted(calls.get(i, {}).items())]))
        for i, parts in sorted(contents.items())]
    return ChatCompletion(id=ident, model=model, created=created, choices=choices, usage=usage)


# -- the client -----------------------------------------------------------------------------------
class DatabricksClient(BaseClient):
    """Client for Databricks model serving endpoints: chat, completions and embeddings.

    Settings come from the arguments, then ``DATABRICKS_HOST``, ``DATABRICKS_TOKEN``,
    ``DATABRICKS_CLIENT_ID``/``DATABRICKS_CLIENT_SECRET``, then a profile of
    ``~/.databrickscfg`` (``DATABRICKS_CONFIG_PROFILE``, ``DATABRICKS_CONFIG_FILE``).
    Timeout, retries, pacing, pool size and batching as for ``SalesforceClient``.
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
        options: ClientOptions | None = None,
        transport: httpx.BaseTransport | None = None,
        async_transport: httpx.AsyncBaseTransport | None = None,
        env: Mapping[str, str] | None = None,
        **settings: Any,
    ) -> None:
        resolved = resolve_databricks(host=host, api_key=api_key if api_key is not None else token,
                                      client_id=client_id, client_secret=client_secret,
                                      profile=profile, config_file=config_file, env=env)
        self.host = resolved.host
        super().__init__(
            resolved.token_source, provider=PROVIDER, headers=HEADERS, parse_error=parse_error,
            options=ClientOptions.build(options, **settings), transport=transport,
            async_transport=async_transport)

    def __repr__(self) -> str:
        return f"DatabricksClient(host={self.host!r}, auth={self.auth.source!r})"

    def _post(self, path: str, body: dict[str, Any], parse: Callable[[Any], R], *,
              retry: bool = True) -> R:
        return self._read(self._transport.request("POST", self.host + path, body, retry=retry),
                          parse)

    async def _apost(self, path: str, body: dict[str, Any], parse: Callable[[Any], R], *,
                     retry: bool = True) -> R:
        return self._read(await self._transport.arequest("POST", self.host + path, body,
                                                         retry=retry), parse)

    def _events(self, path: str, body: dict[str, Any],
                parse: Callable[[dict[str, Any]], T]) -> Iterator[T]:
        for event in iter_events(self._transport.stream("POST", self.host + path, body)):
            yield parse_event(event, parse)

    async def _aevents(self, path: str, body: dict[str, Any],
                       parse: Callable[[dict[str, Any]], T]) -> AsyncIterator[T]:
        stream = self._transport.astream("POST", self.host + path, body)
        async with contextlib.aclosing(stream):
            async for event in aiter_events(stream):
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
        usage = StreamUsage()
        for part in self._events(path, body, parse_chat_chunk):
            yield usage.take(part)  # type: ignore[misc]
        if (last := usage.final_chat()) is not None:
            yield last

    async def astream_chat(self, endpoint: str, messages: Sequence[Any],
                           **params: Any) -> AsyncIterator[ChatCompletionChunk]:
        path, body = chat_request(endpoint, messages, params, stream=True)
        usage = StreamUsage()
        async for part in self._aevents(path, body, parse_chat_chunk):
            yield usage.take(part)  # type: ignore[misc]
        if (last := usage.final_chat()) is not None:
            yield last

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
        usage = StreamUsage()
        for part in self._events(path, body, parse_completion):
            yield usage.take(part)  # type: ignore[misc]
        if (last := usage.final_completion()) is not None:
            yield last

    async def astream_complete(self, endpoint: str, prompt: str | list[str],
                               **params: Any) -> AsyncIterator[Completion]:
        path, body = completion_request(endpoint, prompt, params, stream=True)
        usage = StreamUsage()
        async for part in self._aevents(path, body, parse_completion):
            yield usage.take(part)  # type: ignore[misc]
        if (last := usage.final_completion()) is not None:
            yield last

    # -- embeddings: any number of texts, batched, in input order
    def embed(self, endpoint: str, texts: Sequence[str], *, instruction: str | None = None,
              resume_from: BulkEmbeddingError | None = None, **params: Any) -> EmbeddingResult:
        """One vector per text, in order; other keywords go into each request body as they are.

        Batches retry while the job progresses and split when the endpoint refuses their size;
        a failure carries the vectors done, and ``resume_from=`` that error sends only the
        missing texts."""
        plan = self._embed_plan(endpoint, "endpoint", texts, resume_from)
        path, body = embedding_request(plan.target, [], instruction, params)

        def one(batch: list[str]) -> ParsedBatch:
            return self._post(path, {**body, "input": batch},
                              lambda b: expect_vectors(parse_embeddings(b), len(batch)),
                              retry=False)

        return self._embed_run(plan, one)

    async def aembed(self, endpoint: str, texts: Sequence[str], *,
                     instruction: str | None = None,
                     resume_from: BulkEmbeddingError | None = None,
                     **params: Any) -> EmbeddingResult:
        plan = self._embed_plan(endpoint, "endpoint", texts, resume_from)
        path, body = embedding_request(plan.target, [], instruction, params)

        async def one(batch: list[str]) -> ParsedBatch:
            return await self._apost(path, {**body, "input": batch},
                                     lambda b: expect_vectors(parse_embeddings(b), len(batch)),
                                     retry=False)

        return await self._aembed_run(plan, one)


__all__ = [
    "AssistantMessage",
    "ChatChoice",
    "ChatCompletion",
    "ChatCompletionChunk",
    "ChoiceDelta",
    "Completion",
    "CompletionChoice",
    "DatabricksClient",
    "ToolCall",
    "ToolCallDelta",
    "merge_chunks",
]

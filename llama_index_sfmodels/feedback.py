"""``SalesforceFeedbackHandler``: remember Salesforce generation ids, send GOOD/BAD feedback.

Register it on LlamaIndex's root dispatcher (``handler.register()``); it records the generation
ids of every ``SalesforceLLM`` call, streamed or not, sync or async, with tools or structured
output (a repair request's id too), under the call's span and every span above it (the query,
the chat engine turn, the agent step), in a bounded log, the same way the LangChain handler
files them under chain runs (``sfmodels_core.integration.feedback``).

What LlamaIndex returns then names its generations by id, never by its text:

- a ``ChatResponse``/``CompletionResponse`` carries ``generation_id`` and ``generation_ids`` in
  ``additional_kwargs``;
- a query engine ``Response`` (streamed or not) and a chat engine answer carry the id of the
  span that produced them, ``sfmodels_run_id`` (also in ``metadata`` where they have one), which
  the log maps to every generation made under it, including a stream's once it has been read.

``submit(rating, response=...)`` rates those generations; an answer whose generation cannot be
known is a clear error.
"""

from __future__ import annotations

import contextvars
import threading
import uuid
from collections import OrderedDict
from collections.abc import AsyncIterator, Iterator, Mapping
from typing import TYPE_CHECKING, Any

from llama_index.core.base.llms.types import ChatResponse, CompletionResponse
from llama_index.core.callbacks.base_handler import BaseCallbackHandler
from llama_index.core.callbacks.schema import CBEventType, EventPayload
from llama_index.core.instrumentation.event_handlers import BaseEventHandler
from llama_index.core.instrumentation.events.llm import LLMChatEndEvent, LLMCompletionEndEvent
from llama_index.core.instrumentation.span_handlers import BaseSpanHandler
from llama_index_instrumentation import get_dispatcher
from pydantic import Field, PrivateAttr

from sfmodels_core import defaults
from sfmodels_core.errors import InvalidInputError
from sfmodels_core.integration.feedback import (
    GenerationLog,
    GenerationRecord,
    asubmit,
    feedback_requests,
    normalize_rating,
    submit,
)
from sfmodels_core.integration.fields import SalesforceClientFields

if TYPE_CHECKING:
    from llama_index.core.instrumentation.events import BaseEvent

    from sfmodels_core.integration.feedback import FeedbackSubmission

__all__ = [
    "MAX_DEPTH",
    "RUN_KEY",
    "SalesforceFeedbackHandler",
]

#: Where an answer keeps the id of the span that produced it.
RUN_KEY = "sfmodels_run_id"
#: How far up the span tree ancestors are followed.
MAX_DEPTH = 64
#: The answer a streamed response's tokens are being read for: its model call may start only
#: when the stream is read, after the query's span has ended.
_READING: contextvars.ContextVar[str | None] = contextvars.ContextVar("sfmodels_reading",
                                                                     default=None)


def _tagged(tokens: Iterator[str], answer: Any) -> Iterator[str]:
    """``tokens``, read with ``answer``'s key as the answer being read (set only inside each
    step; read each time, as an outer span that returns the same answer replaces it)."""
    while True:
        mark = _READING.set(getattr(answer, RUN_KEY, None))
        try:
            token = next(tokens)
        except StopIteration:
            return
        finally:
            _READING.reset(mark)
        yield token


async def _atagged(tokens: AsyncIterator[str], answer: Any) -> AsyncIterator[str]:
    while True:
        mark = _READING.set(getattr(answer, RUN_KEY, None))
        try:
            token = await anext(tokens)
        except StopAsyncIteration:
            return
        finally:
            _READING.reset(mark)
        yield token


def _response_types() -> tuple[type, ...]:
    from llama_index.core.base.response.schema import (
        AsyncStreamingResponse,
        PydanticResponse,
        Response,
        StreamingResponse,
    )
    from llama_index.core.chat_engine.types import AgentChatResponse, StreamingAgentChatResponse

    return (Response, StreamingResponse, AsyncStreamingResponse, PydanticResponse,
            AgentChatResponse, StreamingAgentChatResponse)


def _generation_ids(extra: Mapping[str, Any]) -> list[str]:
    """The answering generation first, then the others a call made (a repair request)."""
    ids = [extra.get("generation_id"), *(extra.get("generation_ids") or [])]
    return list(dict.fromkeys(g for g in ids if isinstance(g, str) and g))


class SalesforceFeedbackHandler(SalesforceClientFields, BaseEventHandler):
    """Records the generation ids of ``SalesforceLLM`` calls and sends feedback about them.

    Build it with the same settings as ``SalesforceLLM``, from the environment, or with
    ``client=`` (e.g. ``llm.client`` to share one connection), then register it::

        handler = SalesforceFeedbackHandler().register()
        response = index.as_query_engine().query("...")
        handler.submit("GOOD", response=response, text="Spot on").feedback_ids

    At most ``max_runs`` calls are remembered; the oldest are forgotten first.
    """

    max_runs: int = Field(default=defaults.FEEDBACK_MAX_RUNS, ge=1,
                          description="How many model calls to remember.")

    _log: GenerationLog = PrivateAttr()
    _spans: _SpanLinks = PrivateAttr()
    _callback: _LegacyCallback | None = PrivateAttr(default=None)

    def __init__(self, **data: Any) -> None:
        super().__init__(**data)
        self._log = GenerationLog(self.max_runs)
        self._spans = _SpanLinks(limit=max(MAX_DEPTH * self.max_runs, 64))

    @classmethod
    def class_name(cls) -> str:
        return "SalesforceFeedbackHandler"

    # -- recording
    def register(self) -> SalesforceFeedbackHandler:
        """Add this handler (and its span tracking) to LlamaIndex's root dispatcher, once."""
        dispatcher = get_dispatcher()
        if not any(h is self for h in dispatcher.event_handlers):
            dispatcher.add_event_handler(self)
        if not any(h is self._spans for h in dispatcher.span_handlers):
            dispatcher.add_span_handler(self._spans)
        return self

    def unregister(self) -> None:
        """Remove this handler from the root dispatcher."""
        dispatcher = get_dispatcher()
        dispatcher.event_handlers = [h for h in dispatcher.event_handlers if h is not self]
        dispatcher.span_handlers = [h for h in dispatcher.span_handlers if h is not self._spans]

    def handle(self, event: BaseEvent, **kwargs: Any) -> None:
        if isinstance(event, (LLMChatEndEvent, LLMCompletionEndEvent)):
            self.record(event.response, run_id=event.span_id)

    def record(self, response: ChatResponse | CompletionResponse | None,
               run_id: str | None = None) -> None:
        """Remember the generations of one ``SalesforceLLM`` response (others are ignored),
        under ``run_id`` (its span) and every span above it."""
        if not isinstance(response, (ChatResponse, CompletionResponse)):
            return
        ids = _generation_ids(response.additional_kwargs)
        if not ids:
            return
        model = response.additional_kwargs.get("model")
        key = run_id or str(uuid.uuid4())
        reading = _READING.get()
        self._log.record(GenerationRecord(key, ids, model if isinstance(model, str) else None),
                         [*self._spans.ancestors(key), *([reading] if reading else [])])

    @property
    def callback_handler(self) -> BaseCallbackHandler:
        """The same recording, as a legacy ``CallbackManager`` handler."""
        if self._callback is None:
            self._callback = _LegacyCallback(self)
        return self._callback

    @property
    def latest(self) -> GenerationRecord | None:
        """The most recent call recorded."""
        return self._log.latest()

    # -- finding the generations
    def find(self, response: Any = None) -> GenerationRecord:
        """The generations feedback about ``response`` (default: the latest call) refers to."""
        if response is None:
            latest = self._log.latest()
            if latest is None:
                raise InvalidInputError(
                    "No SalesforceLLM call has been recorded yet: register this handler "
                    "(handler.register()) before the call, or pass generation_id=.")
            return latest
        if isinstance(response, (ChatResponse, CompletionResponse)):
            ids = _generation_ids(response.additional_kwargs)
            if ids:
                return GenerationRecord(ids[0], ids)
            raise InvalidInputError("This response has no Salesforce generation id: it did not "
                                    "come from SalesforceLLM.")
        key = getattr(response, RUN_KEY, None)
        if key is None:
            raw = getattr(response, "raw", None)  # an agent workflow's AgentOutput
            details = raw.get("generationDetails") if isinstance(raw, Mapping) else None
            ids = _generation_ids({"generation_ids": [
                g.get("id") for g in (details or {}).get("generations") or []
                if isinstance(g, Mapping)]})
            if ids:
                return GenerationRecord(ids[0], ids)
            raise InvalidInputError(
                f"Cannot tell which SalesforceLLM call a {type(response).__name__} came from: "
                "pass a ChatResponse, a CompletionResponse, a query or chat engine answer "
                "produced while this handler was registered, or generation_id=.")
        record = self._log.find(key)
        if record is None:
            raise InvalidInputError(
                f"No SalesforceLLM generation is recorded for this {type(response).__name__}: "
                "it made no Salesforce call, a streamed answer has not been read yet (read it "
                f"first), or it is older than the {self.max_runs} calls remembered.")
        return record

    def find_generation_id(self, response: Any = None) -> str:
        """The answering generation of ``response`` (default: the latest call)."""
        return self.find(response).generation_ids[0]

    # -- sending
    def _requests(self, feedback: str | None, response: Any, generation_id: str | None,
                  options: dict[str, Any]) -> list[dict[str, Any]]:
        normalize_rating(feedback, options["text"])  # a bad rating fails before any lookup
        record = (GenerationRecord(generation_id, [generation_id]) if generation_id
                  else self.find(response))
        return feedback_requests(record, feedback, **options)

    def submit(self, feedback: str | None, *, response: Any = None,
               generation_id: str | None = None, text: str | None = None,
               source: str | None = "human", app_feedback: Mapping[str, Any] | None = None,
               app_generation_id: str | None = None, app_generation: str | None = None,
               feedback_id: str | None = None) -> FeedbackSubmission:
        """Send ``"GOOD"`` or ``"BAD"`` (any letter case; or None, with ``text``) for every
        generation behind ``response`` (default: the latest call), or ``generation_id`` alone."""
        return submit(self.client, self._requests(feedback, response, generation_id, {
            "text": text, "source": source, "app_feedback": app_feedback,
            "app_generation_id": app_generation_id, "app_generation": app_generation,
            "feedback_id": feedback_id}))

    async def asubmit(self, feedback: str | None, *, response: Any = None,
                      generation_id: str | None = None, text: str | None = None,
                      source: str | None = "human",
                      app_feedback: Mapping[str, Any] | None = None,
                      app_generation_id: str | None = None, app_generation: str | None = None,
                      feedback_id: str | None = None) -> FeedbackSubmission:
        """Async :meth:`submit`."""
        return await asubmit(self.client, self._requests(feedback, response, generation_id, {
            "text": text, "source": source, "app_feedback": app_feedback,
            "app_generation_id": app_generation_id, "app_generation": app_generation,
            "feedback_id": feedback_id}))


class _SpanLinks(BaseSpanHandler[Any]):
    """Learns each span's parent, and tags the answers spans return with their span id."""

    limit: int = 4096
    _parents: OrderedDict[str, str | None] = PrivateAttr(default_factory=OrderedDict)
    _links_lock: threading.Lock = PrivateAttr(default_factory=threading.Lock)

    def __init__(self, limit: int) -> None:
        super().__init__()
        self.limit = limit

    @classmethod
    def class_name(cls) -> str:
        return "SalesforceFeedbackSpans"

    def new_span(self, id_: str, bound_args: Any, instance: Any | None = None,
                 parent_span_id: str | None = None, tags: dict[str, Any] | None = None,
                 **kwargs: Any) -> None:
        with self._links_lock:
            self._parents[id_] = parent_span_id
            while len(self._parents) > self.limit:
                self._parents.popitem(last=False)
        return None  # nothing to keep open: the link is all we need

    def prepare_to_exit_span(self, id_: str, bound_args: Any, instance: Any | None = None,
                             result: Any | None = None, **kwargs: Any) -> None:
        if isinstance(result, _response_types()):
            # The outermost span that returns the answer exits last, and covers the most.
            if getattr(result, RUN_KEY, None) is None:
                _tag_stream(result)
            setattr(result, RUN_KEY, id_)
            if hasattr(result, "metadata"):
                metadata = result.metadata
                if isinstance(metadata, dict) or metadata is None:
                    result.metadata = {**(metadata or {}), RUN_KEY: id_}
        return None

    def prepare_to_drop_span(self, id_: str, bound_args: Any, instance: Any | None = None,
                             err: BaseException | None = None, **kwargs: Any) -> None:
        return None

    def ancestors(self, span_id: str) -> list[str]:
        out: list[str] = []
        with self._links_lock:
            current = self._parents.get(span_id)
            while current and current not in out and len(out) < MAX_DEPTH:
                out.append(current)
                current = self._parents.get(current)
        return out


def _tag_stream(result: Any) -> None:
    """A streamed query answer's tokens, read with the answer's key as the answer being read,
    so its model call (made while they are read) is filed under the answer's span."""
    tokens = getattr(result, "response_gen", None)
    if isinstance(tokens, Iterator):
        result.response_gen = _tagged(tokens, result)
    elif isinstance(tokens, AsyncIterator):
        result.response_gen = _atagged(tokens, result)


class _LegacyCallback(BaseCallbackHandler):
    """Feeds LLM events of a legacy ``CallbackManager`` to a feedback handler."""

    def __init__(self, handler: SalesforceFeedbackHandler) -> None:
        super().__init__(event_starts_to_ignore=[], event_ends_to_ignore=[])
        self.handler = handler

    def on_event_start(self, event_type: CBEventType, payload: dict[str, Any] | None = None,
                       event_id: str = "", parent_id: str = "", **kwargs: Any) -> str:
        return event_id

    def on_event_end(self, event_type: CBEventType, payload: dict[str, Any] | None = None,
                     event_id: str = "", **kwargs: Any) -> None:
        if event_type == CBEventType.LLM and payload:
            response = payload.get(EventPayload.RESPONSE) or payload.get(EventPayload.COMPLETION)
            self.handler.record(response, run_id=event_id or None)

    def start_trace(self, trace_id: str | None = None) -> None:
        return None

    def end_trace(self, trace_id: str | None = None,
                  trace_map: dict[str, list[str]] | None = None) -> None:
        return None

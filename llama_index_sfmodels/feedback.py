"""``SalesforceFeedbackHandler``: remember Salesforce generation ids, send GOOD/BAD feedback.

Register it on LlamaIndex's root dispatcher (``handler.register()``). It records the generation
ids of every ``SalesforceLLM`` call, streamed or not, sync or async, with tools or structured
output (a repair request's id too), under the call's span and every span above it (the query,
the chat engine turn, the agent step), in a bounded log, the same way the LangChain handler
files them under chain runs (``sfmodels_core.integration.feedback``).

Feedback about an answer goes to the generation whose text the user saw: the model call that
ended last under the span that produced the answer. The handler knows which span produced an
answer by the answer's identity (never by its text, and without writing anything into it), so
these answers, returned while the handler was registered, can be rated:

- a query engine answer: ``Response``, ``PydanticResponse``, ``StreamingResponse``,
  ``AsyncStreamingResponse``;
- a chat engine answer of any chat mode, from ``chat``, ``achat``, ``stream_chat`` or
  ``astream_chat``: ``AgentChatResponse``, ``StreamingAgentChatResponse``;
- an agent's ``AgentOutput`` (``FunctionAgent``, ``ReActAgent``), and the ``ChatMessage`` in its
  ``response``;
- a ``ChatResponse`` or ``CompletionResponse`` (of a stream, its last chunk) and the
  ``ChatMessage`` in a ``ChatResponse``'s ``message``. A ``SalesforceLLM`` response also carries
  ``generation_id`` and ``generation_ids`` in ``additional_kwargs``, so it can be rated even if
  the handler was not registered.

A streamed answer's model call is made while it is read (in the reader's thread, or in the
thread or task a chat engine writes its history from): it can be rated once it has been read to
the end. Anything else (text, an answer made before ``register()`` or by hand) is refused with
an error that says what to pass instead: one of the answers above, ``generation_id=``, or no
``response`` to rate the latest call.

The provider-neutral part (span links, identity tags, the log, :meth:`find`) is
``_GenerationTracker``; what a model call's response says about its generations is its one hook,
``generation_record``.
"""

from __future__ import annotations

import asyncio
import functools
import inspect
import sys
import threading
import uuid
import weakref
from collections import OrderedDict
from collections.abc import Mapping
from types import FrameType
from typing import TYPE_CHECKING, Any, ClassVar, TypeVar

from llama_index.core.base.llms.types import ChatMessage, ChatResponse, CompletionResponse
from llama_index.core.callbacks.base_handler import BaseCallbackHandler
from llama_index.core.callbacks.schema import CBEventType, EventPayload
from llama_index.core.instrumentation.event_handlers import BaseEventHandler
from llama_index.core.instrumentation.events.llm import (
    LLMChatEndEvent,
    LLMChatStartEvent,
    LLMCompletionEndEvent,
    LLMCompletionStartEvent,
)
from llama_index.core.instrumentation.span_handlers import BaseSpanHandler
from llama_index_instrumentation import get_dispatcher
from pydantic import Field, PrivateAttr

from sfmodels_core import defaults
from sfmodels_core.errors import InvalidInputError
from sfmodels_core.integration.feedback import (
    FeedbackSubmission,
    GenerationLog,
    GenerationRecord,
    asubmit,
    feedback_requests,
    submit,
)
from sfmodels_core.integration.fields import SalesforceClientFields
from sfmodels_core.integration.mlflow_feedback import (
    end_generation_span,
    feedback_value,
    log_feedback,
    named_record,
    require_mlflow,
    start_generation_span,
)

if TYPE_CHECKING:
    from llama_index.core.instrumentation.events import BaseEvent

__all__ = [
    "MAX_DEPTH",
    "DatabricksFeedbackHandler",
    "SalesforceFeedbackHandler",
]

#: How far up the span tree ancestors are followed.
MAX_DEPTH = 64

#: What the error messages offer instead of a refused answer.
_ACCEPTED = ("a query engine answer (Response, PydanticResponse, StreamingResponse, "
            "AsyncStreamingResponse), a chat engine answer (AgentChatResponse, "
            "StreamingAgentChatResponse), an agent's AgentOutput or its .response, a "
            "ChatResponse or its .message, or a CompletionResponse, any of them returned while "
            "this handler was registered")
#: The fields a streamed answer reads its text from (instance fields, never a property: reading
#: ``StreamingAgentChatResponse.response_gen`` would start consuming the answer).
_TOKEN_STREAMS = ("response_gen", "chat_stream", "achat_stream")
_Tracker = TypeVar("_Tracker", bound="_GenerationTracker")


@functools.cache
def _answer_types() -> tuple[type, ...]:
    """What LlamaIndex hands a user as an answer (imported on first use)."""
    from llama_index.core.agent.workflow import AgentOutput
    from llama_index.core.base.response.schema import (
        AsyncStreamingResponse,
        PydanticResponse,
        Response,
        StreamingResponse,
    )
    from llama_index.core.chat_engine.types import AgentChatResponse, StreamingAgentChatResponse

    return (Response, PydanticResponse, StreamingResponse, AsyncStreamingResponse,
            AgentChatResponse, StreamingAgentChatResponse, AgentOutput, ChatResponse,
            CompletionResponse, ChatMessage)


def _token_stream(answer: Any) -> Any:
    """The generator a streamed answer's text comes from (None for an answer not streamed)."""
    fields = getattr(answer, "__dict__", {})
    for name in _TOKEN_STREAMS:
        stream = fields.get(name)
        if inspect.isgenerator(stream) or inspect.isasyncgen(stream):
            return stream
    return None


def _running_frame(stream: Any) -> FrameType | None:
    """The frame of a generator that has not finished (None once it has, or for no generator)."""
    frame = getattr(stream, "gi_frame", None) or getattr(stream, "ag_frame", None)
    return frame if isinstance(frame, FrameType) else None


class _WeakIndex:
    """Span keys filed by an object's ``id()``, the object held weakly: an entry goes when its
    object dies, before the id can be reused (pydantic models and dataclasses are unhashable,
    so a ``WeakKeyDictionary`` cannot hold them)."""

    def __init__(self) -> None:
        self._entries: dict[int, tuple[weakref.ref[Any], str]] = {}
        # Reentrant: a weakref callback may run in the middle of a locked step of the same
        # thread when the collector runs there.
        self._lock = threading.RLock()

    def add(self, index: int, obj: Any, key: str, *, replace: bool = False) -> bool:
        """File ``obj`` under ``index``; unless ``replace``, an entry already there stays."""
        with self._lock:
            if not replace and index in self._entries:
                return False
            try:
                ref = weakref.ref(obj, functools.partial(self._drop, index))
            except TypeError:  # not weakly referable: it cannot be told apart later
                return False
            self._entries[index] = (ref, key)
            return True

    def get(self, index: int) -> tuple[Any, str] | None:
        """The live object filed under ``index`` and its key."""
        with self._lock:
            entry = self._entries.get(index)
        if entry is None:
            return None
        obj = entry[0]()
        return None if obj is None else (obj, entry[1])

    def _drop(self, index: int, ref: weakref.ref[Any]) -> None:
        with self._lock:
            entry = self._entries.get(index)
            if entry is not None and entry[0] is ref:
                del self._entries[index]

    def __len__(self) -> int:
        return len(self._entries)


class _GenerationTracker(BaseEventHandler):
    """The provider-neutral part of a feedback handler.

    On LlamaIndex's root dispatcher it learns each span's parent, tags every answer a span
    returns (and the response of every model call) with that span by identity, and files what
    :meth:`generation_record` makes of each model call in a :class:`GenerationLog` under the
    call's span, the spans above it and any streamed answer being read. :meth:`find` maps an
    answer back to the generation it shows.
    """

    max_runs: int = Field(default=defaults.FEEDBACK_MAX_RUNS, ge=1,
                          description="How many model calls to remember.")

    #: The calls a subclass records, and how its generations are named directly (for errors).
    _llm_name: ClassVar[str] = "LLM"
    _by_id: ClassVar[str] = "generation_id="

    _log: GenerationLog = PrivateAttr()
    _spans: _SpanLinks = PrivateAttr()
    _answers: _WeakIndex = PrivateAttr(default_factory=_WeakIndex)
    _streams: _WeakIndex = PrivateAttr(default_factory=_WeakIndex)
    _callback: _LegacyCallback | None = PrivateAttr(default=None)

    def __init__(self, **data: Any) -> None:
        super().__init__(**data)
        self._log = GenerationLog(self.max_runs)
        self._spans = _SpanLinks(self, limit=max(MAX_DEPTH * self.max_runs, 64))

    # -- the hook
    def generation_record(self, response: ChatResponse | CompletionResponse,
                          span_id: str) -> GenerationRecord | None:
        """What a model call that ended with ``response`` in span ``span_id`` generated, with
        ``span_id`` as its ``run_id`` (None: nothing this handler can give feedback about)."""
        return None

    def call_failed(self, span_id: str, error: BaseException | None) -> None:
        """Span ``span_id`` ended with ``error`` (a model call among others): nothing to rate."""

    # -- recording
    def register(self: _Tracker) -> _Tracker:
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
        """A model call ended with ``response`` in span ``run_id``: tag the response with it,
        and file what :meth:`generation_record` makes of it under the span, every span above
        it, and every streamed answer being read (the call is made while it is read)."""
        if not isinstance(response, (ChatResponse, CompletionResponse)):
            return
        key = run_id or str(uuid.uuid4())
        self._tag(response, key)
        record = self.generation_record(response, key)
        if record is not None:
            self._log.record(record, self._spans.lineage(key, *self._being_read()))

    def _tag(self, answer: Any, key: str) -> None:
        """Tag ``answer`` and the messages it holds with ``key``, unless an inner span (the one
        that made it) already did; remember the generator a streamed answer is read from."""
        if not self._answers.add(id(answer), answer, key):
            return
        for part in vars(answer).values():
            if isinstance(part, ChatMessage):
                self._answers.add(id(part), part, key)
        stream = _token_stream(answer)
        frame = _running_frame(stream)
        if frame is not None:  # a frame's id can be reused once its generator has finished
            self._streams.add(id(frame), stream, key, replace=True)

    def _being_read(self) -> list[str]:
        """The keys of the streamed answers whose generators are running in this thread."""
        if not len(self._streams):
            return []
        keys = []
        frame: FrameType | None = sys._getframe(1)
        while frame is not None:
            found = self._streams.get(id(frame))
            if found is not None and _running_frame(found[0]) is frame:
                keys.append(found[1])
            frame = frame.f_back
        return keys

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
                    f"No {self._llm_name} call has been recorded yet: register this handler "
                    f"(handler.register()) before the call, or pass {self._by_id}.")
            return latest
        kind = type(response).__name__
        instead = (f"Pass instead: {_ACCEPTED}; {self._by_id} naming the generation; or no "
                   f"response at all, which rates the latest {self._llm_name} call.")
        tagged = self._answers.get(id(response))
        if tagged is None:
            if not isinstance(response, _answer_types()):
                raise InvalidInputError(
                    f"Cannot tell which {self._llm_name} call a {kind} came from: a {kind} is "
                    f"not an answer object, and text is no identity. {instead}")
            raise InvalidInputError(
                f"Cannot tell which {self._llm_name} call this {kind} came from: no LlamaIndex "
                "call returned it while this handler was registered (it was made before "
                "handler.register(), built by hand, or taken from inside LlamaIndex, such as a "
                f"chat history). {instead}")
        if _running_frame(_token_stream(response)) is not None:
            raise InvalidInputError(
                f"This {kind} has not been read to the end yet: its {self._llm_name} call is "
                "made while it is read. Read it first (str(answer), or iterate its "
                "response_gen or async_response_gen()), then rate it.")
        record = self._log.find(tagged[1])
        if record is None:
            raise InvalidInputError(
                f"No {self._llm_name} generation is recorded for this {kind}: it was produced "
                f"without a {self._llm_name} call (by another LLM, or with no model call), or "
                f"its call is older than the {self.max_runs} calls remembered. {instead}")
        return record


def _generation_ids(extra: Mapping[str, Any]) -> list[str]:
    """The answering generation first, then the others a call made (a repair request)."""
    ids = [extra.get("generation_id"), *(extra.get("generation_ids") or [])]
    return list(dict.fromkeys(g for g in ids if isinstance(g, str) and g))


class SalesforceFeedbackHandler(SalesforceClientFields, _GenerationTracker):
    """Records the generation ids of ``SalesforceLLM`` calls and sends feedback about them.

    Build it with the same settings as ``SalesforceLLM``, from the environment, or with
    ``client=`` (e.g. ``llm.client`` to share one connection), then register it::

        handler = SalesforceFeedbackHandler().register()
        response = index.as_query_engine().query("...")
        handler.submit("GOOD", response=response, text="Spot on").feedback_ids

    At most ``max_runs`` calls are remembered; the oldest are forgotten first.
    """

    _llm_name: ClassVar[str] = "SalesforceLLM"

    @classmethod
    def class_name(cls) -> str:
        return "SalesforceFeedbackHandler"

    def generation_record(self, response: ChatResponse | CompletionResponse,
                          span_id: str) -> GenerationRecord | None:
        """The generation ids a ``SalesforceLLM`` response carries (others have none)."""
        ids = _generation_ids(response.additional_kwargs)
        if not ids:
            return None
        model = response.additional_kwargs.get("model")
        return GenerationRecord(span_id, ids, model if isinstance(model, str) else None)

    def find(self, response: Any = None) -> GenerationRecord:
        """The generations feedback about ``response`` (default: the latest call) refers to: a
        ``SalesforceLLM`` response names its own, any other answer is looked up."""
        if isinstance(response, (ChatResponse, CompletionResponse)):
            ids = _generation_ids(response.additional_kwargs)
            if ids:
                return GenerationRecord(ids[0], ids)
        return super().find(response)

    def find_generation_id(self, response: Any = None) -> str:
        """The answering generation of ``response`` (default: the latest call)."""
        return self.find(response).generation_ids[0]

    # -- sending
    def _requests(self, feedback: str | None, response: Any, generation_id: str | None,
                  options: dict[str, Any]) -> list[dict[str, Any]]:
        feedback_requests(GenerationRecord(""), feedback, **options)  # bad input fails first
        record = (GenerationRecord(generation_id, [generation_id]) if generation_id
                  else self.find(response))
        return feedback_requests(record, feedback, **options)

    def submit(self, feedback: str | None, *, response: Any = None,
               generation_id: str | None = None, text: str | None = None,
               comment: str | None = None, user: str | None = None,
               source: str | None = "human", app_feedback: Mapping[str, Any] | None = None,
               app_generation_id: str | None = None, app_generation: str | None = None,
               feedback_id: str | None = None) -> FeedbackSubmission:
        """Send ``"GOOD"`` or ``"BAD"`` (any letter case; or None, with a comment) for the
        answering generation behind ``response`` (default: the latest call), or for
        ``generation_id`` alone.

        ``comment`` (or its older name ``text``, not both) is sent as the feedback text;
        ``user`` as ``app_feedback["user"]``."""
        return submit(self.client, self._requests(feedback, response, generation_id, {
            "text": text, "comment": comment, "user": user, "source": source,
            "app_feedback": app_feedback, "app_generation_id": app_generation_id,
            "app_generation": app_generation, "feedback_id": feedback_id}))

    async def asubmit(self, feedback: str | None, *, response: Any = None,
                      generation_id: str | None = None, text: str | None = None,
                      comment: str | None = None, user: str | None = None,
                      source: str | None = "human",
                      app_feedback: Mapping[str, Any] | None = None,
                      app_generation_id: str | None = None, app_generation: str | None = None,
                      feedback_id: str | None = None) -> FeedbackSubmission:
        """Async :meth:`submit`."""
        return await asubmit(self.client, self._requests(feedback, response, generation_id, {
            "text": text, "comment": comment, "user": user, "source": source,
            "app_feedback": app_feedback, "app_generation_id": app_generation_id,
            "app_generation": app_generation, "feedback_id": feedback_id}))


class DatabricksFeedbackHandler(_GenerationTracker):
    """Records an MLflow span for every ``DatabricksLLM`` call and rates it with an MLflow
    feedback assessment (``pip install 'sfmodels[mlflow]'``).

    Each call's span joins the MLflow trace active where the call is made (the user's own, e.g.
    under ``mlflow.llama_index.autolog()`` or ``mlflow.start_span``), or starts a trace of its
    own. Ratings go to MLflow's current tracking URI, as the spans do: ``databricks`` in a
    workspace, a local store (``sqlite:///mlflow.db``) or a tracking server elsewhere::

        handler = DatabricksFeedbackHandler().register()
        answer = index.as_chat_engine().chat("...")
        handler.submit("GOOD", response=answer, comment="Spot on", user="ann@example.com")

    At most ``max_runs`` calls are remembered; the oldest are forgotten first.
    """

    _llm_name: ClassVar[str] = "DatabricksLLM"
    _by_id: ClassVar[str] = "trace_id="

    _open: OrderedDict[str, Any] = PrivateAttr(default_factory=OrderedDict)
    _open_lock: threading.Lock = PrivateAttr(default_factory=threading.Lock)

    @classmethod
    def class_name(cls) -> str:
        return "DatabricksFeedbackHandler"

    def register(self) -> DatabricksFeedbackHandler:
        require_mlflow()  # say how to install MLflow before any call is made without it
        return super().register()

    def handle(self, event: BaseEvent, **kwargs: Any) -> None:
        if isinstance(event, (LLMChatStartEvent, LLMCompletionStartEvent)):
            model = event.model_dict
            if model.get("class_name") == self._llm_name and event.span_id:
                inputs = ({"prompt": event.prompt} if isinstance(event, LLMCompletionStartEvent)
                          else {"messages": [m.model_dump(mode="json") for m in event.messages]})
                self._opened(event.span_id, start_generation_span(
                    self._llm_name, inputs, model=model.get("model_name")))
        super().handle(event, **kwargs)

    def _opened(self, span_id: str, span: Any) -> None:
        if span is None:  # MLflow tracing is disabled
            return
        with self._open_lock:
            self._open[span_id] = span
            # A call whose end LlamaIndex never reports (a stream left unread) is closed as
            # failed once ``max_runs`` newer calls are open.
            stale = ([self._open.popitem(last=False)[1]
                      for _ in range(len(self._open) - self.max_runs)])
        for old in stale:
            end_generation_span(old, "", error=TimeoutError("the call never ended"))

    def _closed(self, span_id: str) -> Any:
        with self._open_lock:
            return self._open.pop(span_id, None)

    def generation_record(self, response: ChatResponse | CompletionResponse,
                          span_id: str) -> GenerationRecord | None:
        """The MLflow span of the ``DatabricksLLM`` call that ended with ``response``."""
        span = self._closed(span_id)
        if span is None:
            return None
        text = (response.message.content if isinstance(response, ChatResponse)
                else response.text)
        return end_generation_span(span, span_id, outputs={"text": text},
                                   model=span.attributes.get("model"))

    def call_failed(self, span_id: str, error: BaseException | None) -> None:
        span = self._closed(span_id)
        if span is not None:
            end_generation_span(span, span_id, error=error or RuntimeError("the call failed"))

    # -- sending
    def submit(self, rating: Any, *, response: Any = None, comment: str | None = None,
               user: str | None = None, feedback_id: str | None = None,
               trace_id: str | None = None, span_id: str | None = None) -> FeedbackSubmission:
        """Log ``"GOOD"``/``"BAD"`` (any letter case) or a boolean on the span of the
        generation behind ``response`` (default: the latest call), or on ``trace_id`` (and
        ``span_id``) given directly, as a HUMAN feedback assessment by ``user`` with ``comment``
        as its rationale. A repeat of the same submission is not logged twice."""
        feedback_value(rating)  # a bad rating fails before any lookup
        record = named_record(trace_id, span_id) or self.find(response)
        return FeedbackSubmission((log_feedback(record, rating, comment=comment, user=user,
                                                feedback_id=feedback_id),))

    async def asubmit(self, rating: Any, *, response: Any = None, comment: str | None = None,
                      user: str | None = None, feedback_id: str | None = None,
                      trace_id: str | None = None,
                      span_id: str | None = None) -> FeedbackSubmission:
        """Async :meth:`submit` (MLflow's client blocks: it runs in a worker thread)."""
        return await asyncio.to_thread(self.submit, rating, response=response, comment=comment,
                                       user=user, feedback_id=feedback_id, trace_id=trace_id,
                                       span_id=span_id)


class _SpanLinks(BaseSpanHandler[Any]):
    """Learns each span's parent, and hands the answers spans return to the tracker."""

    limit: int = 4096
    _tracker: _GenerationTracker = PrivateAttr()
    _parents: OrderedDict[str, str | None] = PrivateAttr(default_factory=OrderedDict)
    _links_lock: threading.Lock = PrivateAttr(default_factory=threading.Lock)

    def __init__(self, tracker: _GenerationTracker, limit: int) -> None:
        super().__init__()
        self.limit = limit
        self._tracker = tracker

    @classmethod
    def class_name(cls) -> str:
        return "FeedbackSpanLinks"

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
        if isinstance(result, _answer_types()):
            self._tracker._tag(result, id_)
        return None

    def prepare_to_drop_span(self, id_: str, bound_args: Any, instance: Any | None = None,
                             err: BaseException | None = None, **kwargs: Any) -> None:
        self._tracker.call_failed(id_, err)
        return None

    def lineage(self, *span_ids: str) -> list[str]:
        """Each of ``span_ids`` and the spans above it."""
        out: list[str] = []
        with self._links_lock:
            for span_id in span_ids:
                current: str | None = span_id
                depth = 0
                while current and current not in out and depth <= MAX_DEPTH:
                    out.append(current)
                    current = self._parents.get(current)
                    depth += 1
        return out


class _LegacyCallback(BaseCallbackHandler):
    """Feeds LLM events of a legacy ``CallbackManager`` to a feedback handler."""

    def __init__(self, handler: _GenerationTracker) -> None:
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

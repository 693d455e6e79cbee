"""``SalesforceFeedbackHandler``: remember Salesforce generation ids, send GOOD/BAD feedback.

Register it on LlamaIndex's root dispatcher (or pass :attr:`callback_handler` to a legacy
``CallbackManager``); it records the generation id of every ``SalesforceLLM`` call, streamed or
not, sync or async, with tools or structured output (a repair request's id too), in a bounded
log. ``submit`` then sends feedback for the latest call, or for the call behind a given response:
a ``ChatResponse``/``CompletionResponse`` (which carries its generation id), or what a query
engine, chat engine or agent returned (matched by its text).
"""

from __future__ import annotations

import uuid
from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

from llama_index.core.base.llms.types import ChatMessage, ChatResponse, CompletionResponse
from llama_index.core.callbacks.base_handler import BaseCallbackHandler
from llama_index.core.callbacks.schema import CBEventType, EventPayload
from llama_index.core.instrumentation.event_handlers import BaseEventHandler
from llama_index.core.instrumentation.events.llm import LLMChatEndEvent, LLMCompletionEndEvent
from llama_index_instrumentation import get_dispatcher
from pydantic import Field, PrivateAttr

from sfmodels_core.adapters import GenerationLog, GenerationRecord
from sfmodels_core.errors import InvalidInputError

from ._messages import text_key
from ._settings import SalesforceConnection

if TYPE_CHECKING:
    from llama_index.core.instrumentation.events import BaseEvent

    from sfmodels_core.salesforce import FeedbackResult, SalesforceClient


def _answer_text(response: Any) -> str | None:
    """The answer text of a query engine, chat engine or agent result, if it has one."""
    if isinstance(response, str):
        return response
    if isinstance(response, ChatMessage):
        return response.content
    if hasattr(response, "response_gen") or hasattr(response, "async_response_gen"):
        text = getattr(response, "response_txt", None)  # a stream: only once it was read
        if text is None:
            raise InvalidInputError(
                "This streaming response has not been read to the end yet: read it (or "
                "str() it) before sending feedback about it.")
        return str(text)
    answer = getattr(response, "response", None)
    if isinstance(answer, ChatMessage):
        return answer.content
    return answer if isinstance(answer, str) else None


class SalesforceFeedbackHandler(SalesforceConnection, BaseEventHandler):
    """Records the generation ids of ``SalesforceLLM`` calls and sends feedback about them.

    Build it with the same settings as ``SalesforceLLM``, from the environment, or with
    ``client=`` (e.g. ``llm.client`` to share one connection), then register it::

        handler = SalesforceFeedbackHandler()
        get_dispatcher().add_event_handler(handler)   # or handler.register()
        response = index.as_query_engine().query("...")
        handler.submit("GOOD", response=response, text="Spot on")

    At most ``max_runs`` calls are remembered; the oldest are forgotten first.
    """

    max_runs: int = Field(default=1000, ge=1, description="How many calls to remember.")

    _log: GenerationLog = PrivateAttr()
    _callback: _LegacyCallback | None = PrivateAttr(default=None)

    def __init__(self, *, client: SalesforceClient | None = None, **data: Any) -> None:
        super().__init__(client=client, **data)
        # Each call is filed under two keys: its run id and its answer's text.
        self._log = GenerationLog(2 * self.max_runs)

    @classmethod
    def class_name(cls) -> str:
        return "SalesforceFeedbackHandler"

    # -- recording
    def register(self) -> SalesforceFeedbackHandler:
        """Add this handler to LlamaIndex's root dispatcher (once) and return it."""
        dispatcher = get_dispatcher()
        if not any(h is self for h in dispatcher.event_handlers):
            dispatcher.add_event_handler(self)
        return self

    def unregister(self) -> None:
        """Remove this handler from the root dispatcher."""
        dispatcher = get_dispatcher()
        dispatcher.event_handlers = [h for h in dispatcher.event_handlers if h is not self]

    def handle(self, event: BaseEvent, **kwargs: Any) -> None:
        if isinstance(event, (LLMChatEndEvent, LLMCompletionEndEvent)):
            self.record(event.response, run_id=event.span_id or event.id_)

    def record(self, response: ChatResponse | CompletionResponse | None,
               run_id: str | None = None) -> None:
        """Remember the generation of one ``SalesforceLLM`` response (others are ignored)."""
        if not isinstance(response, (ChatResponse, CompletionResponse)):
            return
        extra = response.additional_kwargs
        generation_id = extra.get("generation_id")
        if not isinstance(generation_id, str) or not generation_id:
            return
        # A tool or structured-output call that was repaired made two generations: all are
        # kept, the one that produced the answer first (feedback refers to it).
        others = extra.get("generation_ids") or []
        ids = [generation_id, *(g for g in others
                                if isinstance(g, str) and g and g != generation_id)]
        text = response.message.content if isinstance(response, ChatResponse) else response.text
        model = extra.get("model")
        record = GenerationRecord(run_id=run_id or str(uuid.uuid4()), generation_ids=ids,
                                  model=model if isinstance(model, str) else None, text=text)
        self._log.record(record, ancestors=[text_key(text)] if text else [])

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

    # -- finding the generation
    def find_generation_id(self, response: Any = None) -> str:
        """The generation id feedback about ``response`` (default: the latest call) refers to."""
        if response is None:
            latest = self._log.latest()
            if latest is None:
                raise InvalidInputError(
                    "No SalesforceLLM call has been recorded yet: register this handler "
                    "(handler.register() or get_dispatcher().add_event_handler(handler)) before "
                    "the call, or pass generation_id=.")
            return latest.generation_ids[0]
        if isinstance(response, (ChatResponse, CompletionResponse)):
            generation_id = response.additional_kwargs.get("generation_id")
            if isinstance(generation_id, str) and generation_id:
                return generation_id
            raise InvalidInputError(
                "This response has no Salesforce generation id: it did not come from "
                "SalesforceLLM.")
        text = _answer_text(response)
        if text is None:
            raise InvalidInputError(
                f"Cannot tell which SalesforceLLM call a {type(response).__name__} came from: "
                "pass a ChatResponse, a CompletionResponse, a query engine or chat engine "
                "response, or generation_id=.")
        found = self._log.find(text_key(text))
        if found is None:
            raise InvalidInputError(
                f"No recorded SalesforceLLM call produced this {type(response).__name__} "
                f"(this handler remembers the last {self.max_runs} calls it saw). Check that the "
                "handler was registered before the call, or pass generation_id=.")
        return found.generation_ids[0]

    # -- sending
    def submit(self, feedback: str | None, *, response: Any = None,
               generation_id: str | None = None, text: str | None = None,
               source: str | None = "human", app_feedback: Mapping[str, Any] | None = None,
               app_generation_id: str | None = None, app_generation: str | None = None,
               feedback_id: str | None = None) -> FeedbackResult:
        """Send ``"GOOD"`` or ``"BAD"`` (or None, with ``text``) about a generation: the one
        behind ``response``, the one named by ``generation_id``, or else the latest call."""
        return self.client.submit_feedback(
            generation_id or self.find_generation_id(response), feedback, text=text,
            source=source, app_feedback=app_feedback, app_generation_id=app_generation_id,
            app_generation=app_generation, feedback_id=feedback_id)

    async def asubmit(self, feedback: str | None, *, response: Any = None,
                      generation_id: str | None = None, text: str | None = None,
                      source: str | None = "human",
                      app_feedback: Mapping[str, Any] | None = None,
                      app_generation_id: str | None = None, app_generation: str | None = None,
                      feedback_id: str | None = None) -> FeedbackResult:
        """Async :meth:`submit`."""
        return await self.client.asubmit_feedback(
            generation_id or self.find_generation_id(response), feedback, text=text,
            source=source, app_feedback=app_feedback, app_generation_id=app_generation_id,
            app_generation=app_generation, feedback_id=feedback_id)


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

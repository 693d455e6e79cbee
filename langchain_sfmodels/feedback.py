"""Feedback handlers: tell Salesforce, or MLflow on Databricks, whether answers were good or bad.

Pass a handler in ``config={"callbacks": [handler]}`` of any run. It records every model call
of its provider under that call's run id and under the id of every run above it (the chain, the
agent, ...), so feedback can be given knowing only the id of the run you started::

    handler = SalesforceFeedbackHandler()          # or DatabricksFeedbackHandler()
    run_id = uuid.uuid4()
    chain.invoke({"question": q}, config={"callbacks": [handler], "run_id": run_id})
    submission = handler.submit("GOOD", run_id=run_id, comment="Exactly right", user="ann")
    submission.feedback_ids  # one per generation rated

Feedback about a run goes to the generation whose answer the run returned: the model call that
ended last under it (and both ids of a Salesforce tool or structured-output answer whose first
reply had to be repaired), the same rule as the LlamaIndex handler: see
``sfmodels_core.integration.feedback``. A run that failed cannot be rated, nor any call made
under it (a LangGraph ``interrupt()`` is a pause, not a failure). Memory is bounded: ``max_runs``
model runs are remembered, the oldest forgotten first.

``SalesforceFeedbackHandler`` sends the rating to the Models API feedback endpoint.
``DatabricksFeedbackHandler`` records each ``ChatDatabricks``/``DatabricksLLM`` call as an MLflow
span and logs the rating as an MLflow feedback assessment on it: see its docstring for the
traces it joins.
"""

from __future__ import annotations

import asyncio
import threading
import time
from collections import OrderedDict
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, ClassVar
from uuid import UUID

from langchain_core.callbacks import BaseCallbackHandler
from langchain_core.messages import convert_to_openai_messages
from langchain_core.outputs import ChatGeneration, LLMResult
from pydantic import SecretStr

from sfmodels_core import defaults
from sfmodels_core._lifecycle import Closeable
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

from ._common import DATABRICKS, SALESFORCE

if TYPE_CHECKING:
    from mlflow.entities import LiveSpan

    from sfmodels_core.salesforce import SalesforceClient

__all__ = [
    "MAX_DEPTH",
    "MIN_CALLS_IN_FLIGHT",
    "DatabricksFeedbackHandler",
    "SalesforceFeedbackHandler",
    "generation_ids",
]

#: How far up the run tree ancestors are followed.
MAX_DEPTH = 64
#: Databricks calls in flight whose start a handler keeps at least (more with a larger
#: ``max_runs``); a call that never ends (cancelled) is forgotten once this many started after it.
MIN_CALLS_IN_FLIGHT = 256


def generation_ids(response: LLMResult) -> list[str]:
    """The Salesforce generation ids in a model run's result (invoke, batch or stream).

    An answer read under the tool or JSON protocol may have taken two requests (the first reply
    was sent back to be repaired): its ``generation_ids`` lists both, and both are kept, the
    answering one (``generation_id``) first.
    """
    ids: list[str] = []
    for generations in response.generations:
        for generation in generations:
            if isinstance(generation, ChatGeneration):
                info: Mapping[str, Any] = generation.message.response_metadata
            else:
                info = generation.generation_info or {}
            if info.get("model_provider") != SALESFORCE:
                continue
            gid = info.get("generation_id")
            others = info.get("generation_ids")
            for item in [gid, *(others if isinstance(others, list) else [])]:
                if isinstance(item, str) and item and item not in ids:
                    ids.append(item)
    return ids


def _pauses(error: BaseException) -> bool:
    """LangGraph's control flow, not a failure: an ``interrupt()`` (a human-in-the-loop pause, to
    review the answer just made) or a ``Command`` to a parent graph leaves its node as a
    ``GraphBubbleUp`` exception (recognised by name: LangGraph is not a dependency)."""
    return any(cls.__name__ == "GraphBubbleUp" for cls in type(error).__mro__)


class _FeedbackHandler(BaseCallbackHandler):
    """What both handlers share: the run tree (each run's parent, bounded), the log of model runs
    filed under their run and every run above it, failed runs forgotten, and ``find``."""

    run_inline = True  # keep the run tree in step with the events, also under asyncio
    #: The provider and its model classes, as the errors of ``find`` name them.
    _PROVIDER: ClassVar[str]
    _MODELS: ClassVar[str]

    def __init__(self, max_runs: int) -> None:
        super().__init__()
        self.log = GenerationLog(max_runs=max_runs)
        # run id -> parent run id, for the runs seen; bounded with the log (a run's ancestors
        # are read when its model run ends).
        self._parents: OrderedDict[str, str | None] = OrderedDict()
        self._max_links = max(MAX_DEPTH * max_runs, 64)
        self._lock = threading.Lock()

    def __repr__(self) -> str:
        return f"{type(self).__name__}(runs={len(self.log)})"

    # -- the run tree
    def _link(self, run_id: UUID, parent_run_id: UUID | None) -> None:
        with self._lock:
            key = str(run_id)
            self._parents[key] = str(parent_run_id) if parent_run_id else None
            self._parents.move_to_end(key)
            while len(self._parents) > self._max_links:
                self._parents.popitem(last=False)

    def _ancestors(self, run_id: UUID, parent_run_id: UUID | None) -> list[str]:
        out: list[str] = []
        with self._lock:
            current = str(parent_run_id) if parent_run_id else self._parents.get(str(run_id))
            while current and current not in out and len(out) < MAX_DEPTH:
                out.append(current)
                current = self._parents.get(current)
        return out

    def _file(self, record: GenerationRecord, run_id: UUID, parent_run_id: UUID | None) -> None:
        """Remember ``record`` under its model run and every run above it."""
        self.log.record(record, self._ancestors(run_id, parent_run_id))

    def on_chain_start(self, serialized: dict[str, Any] | None, inputs: Any, *, run_id: UUID,
                       parent_run_id: UUID | None = None, **kwargs: Any) -> None:
        self._link(run_id, parent_run_id)

    def on_chat_model_start(self, serialized: dict[str, Any] | None, messages: Any, *,
                            run_id: UUID, parent_run_id: UUID | None = None,
                            **kwargs: Any) -> None:
        self._link(run_id, parent_run_id)

    def on_llm_start(self, serialized: dict[str, Any] | None, prompts: Sequence[str], *,
                     run_id: UUID, parent_run_id: UUID | None = None, **kwargs: Any) -> None:
        self._link(run_id, parent_run_id)

    def on_tool_start(self, serialized: dict[str, Any] | None, input_str: str, *,
                      run_id: UUID, parent_run_id: UUID | None = None, **kwargs: Any) -> None:
        self._link(run_id, parent_run_id)

    def on_retriever_start(self, serialized: dict[str, Any] | None, query: str, *,
                           run_id: UUID, parent_run_id: UUID | None = None,
                           **kwargs: Any) -> None:
        self._link(run_id, parent_run_id)

    # -- failed runs: neither they nor any call made under them can be rated
    def _failed(self, run_id: UUID, error: BaseException) -> None:
        if not _pauses(error):
            self.log.discard(run_id)

    def on_llm_error(self, error: BaseException, *, run_id: UUID,
                     parent_run_id: UUID | None = None, **kwargs: Any) -> None:
        self._failed(run_id, error)

    def on_chain_error(self, error: BaseException, *, run_id: UUID,
                       parent_run_id: UUID | None = None, **kwargs: Any) -> None:
        self._failed(run_id, error)

    def on_tool_error(self, error: BaseException, *, run_id: UUID,
                      parent_run_id: UUID | None = None, **kwargs: Any) -> None:
        self._failed(run_id, error)

    def on_retriever_error(self, error: BaseException, *, run_id: UUID,
                           parent_run_id: UUID | None = None, **kwargs: Any) -> None:
        self._failed(run_id, error)

    # -- feedback
    def find(self, run_id: UUID | str | None = None) -> GenerationRecord:
        """The generation that answered ``run_id`` (a model run or any run above one), or the
        latest one recorded; a clear error when there is none."""
        record = self.log.latest() if run_id is None else self.log.find(run_id)
        if record is None:
            if run_id is None:
                raise InvalidInputError(
                    f"No {self._PROVIDER} generation has been recorded yet: pass this handler "
                    f"in config={{'callbacks': [handler]}} of a run that calls {self._MODELS} "
                    "first.")
            raise InvalidInputError(
                f"No {self._PROVIDER} generation is recorded for run {run_id}: it is not a run "
                f"this handler saw, it called no {self._PROVIDER} model, it failed, or it is "
                f"older than the {self.log.max_runs} runs kept.")
        return record


class SalesforceFeedbackHandler(Closeable, _FeedbackHandler):
    """Records Salesforce generation ids by run, and submits feedback on them.

    Construct it with the same settings as ``ChatSalesforce`` (or none, to use the environment),
    or with a ``SalesforceClient`` to share one. ``submit``/``asubmit`` send ``GOOD`` or ``BAD``
    (any letter case) for a run (by default the latest one) and return a ``FeedbackSubmission``
    with one feedback id per generation rated.
    """

    _PROVIDER = "Salesforce"
    _MODELS = "ChatSalesforce or SalesforceLLM"

    def __init__(
        self,
        client: SalesforceClient | None = None,
        *,
        domain: str | None = None,
        client_id: str | None = None,
        client_secret: str | SecretStr | None = None,
        api_key: str | SecretStr | None = None,
        access_token: str | SecretStr | None = None,
        api_base: str | None = None,
        timeout: float | None = None,
        max_retries: int | None = None,
        requests_per_minute: float | None = None,
        allow_insecure_http: bool | None = None,
        max_runs: int = defaults.FEEDBACK_MAX_RUNS,
    ) -> None:
        super().__init__(max_runs)
        settings: dict[str, Any] = {
            "domain": domain, "client_id": client_id, "client_secret": client_secret,
            "api_key": api_key if api_key is not None else access_token, "api_base": api_base,
            "timeout": timeout, "max_retries": max_retries,
            "requests_per_minute": requests_per_minute,
            "allow_insecure_http": allow_insecure_http}
        given = {k: v for k, v in settings.items() if v is not None}
        self._settings = SalesforceClientFields(client=client, **given)  # type: ignore[call-arg]

    @property
    def client(self) -> SalesforceClient:
        """The client feedback is sent with (created from the settings on first use)."""
        return self._settings.client

    def close(self) -> None:
        self._settings.close()

    async def aclose(self) -> None:
        await self._settings.aclose()

    def on_llm_end(self, response: LLMResult, *, run_id: UUID,
                   parent_run_id: UUID | None = None, **kwargs: Any) -> None:
        ids = generation_ids(response)
        if not ids:
            return
        first = response.generations[0][0] if response.generations else None
        model = None
        if isinstance(first, ChatGeneration):
            model = first.message.response_metadata.get("model_name")
        elif first is not None:
            model = (first.generation_info or {}).get("model_name")
        self._file(GenerationRecord(run_id=str(run_id), generation_ids=ids, model=model),
                   run_id, parent_run_id)

    # -- feedback
    def _requests(self, feedback: str | None, run_id: UUID | str | None,
                  generation_id: str | None, options: dict[str, Any]) -> list[dict[str, Any]]:
        feedback_requests(GenerationRecord(""), feedback, **options)  # bad input fails first
        record = (GenerationRecord(str(run_id or generation_id), [generation_id])
                  if generation_id else self.find(run_id))
        return feedback_requests(record, feedback, **options)

    def submit(self, feedback: str | None, *, run_id: UUID | str | None = None,
               generation_id: str | None = None, text: str | None = None,
               comment: str | None = None, user: str | None = None,
               source: str | None = "human", app_feedback: Mapping[str, Any] | None = None,
               app_generation_id: str | None = None, app_generation: str | None = None,
               feedback_id: str | None = None) -> FeedbackSubmission:
        """Send ``"GOOD"`` or ``"BAD"`` (or None, with a comment) for the answering generation
        of ``run_id`` (default: the latest run), or for ``generation_id`` alone.

        ``comment`` (or its older name ``text``, not both) is sent as the feedback text;
        ``user`` as ``app_feedback["user"]``."""
        return submit(self.client, self._requests(feedback, run_id, generation_id, {
            "text": text, "comment": comment, "user": user, "source": source,
            "app_feedback": app_feedback, "app_generation_id": app_generation_id,
            "app_generation": app_generation, "feedback_id": feedback_id}))

    async def asubmit(self, feedback: str | None, *, run_id: UUID | str | None = None,
                      generation_id: str | None = None, text: str | None = None,
                      comment: str | None = None, user: str | None = None,
                      source: str | None = "human",
                      app_feedback: Mapping[str, Any] | None = None,
                      app_generation_id: str | None = None, app_generation: str | None = None,
                      feedback_id: str | None = None) -> FeedbackSubmission:
        """Async twin of :meth:`submit`."""
        return await asubmit(self.client, self._requests(feedback, run_id, generation_id, {
            "text": text, "comment": comment, "user": user, "source": source,
            "app_feedback": app_feedback, "app_generation_id": app_generation_id,
            "app_generation": app_generation, "feedback_id": feedback_id}))


@dataclass(frozen=True)
class _Call:
    """A Databricks call in flight: what its span will say."""

    name: str
    inputs: Any
    model: str | None
    span_type: str
    start_time_ns: int


def _is_databricks(metadata: Mapping[str, Any] | None) -> bool:
    """A model run of a Databricks model: LangChain passes each model's ``ls_provider`` in the
    run's metadata (``ChatDatabricks`` and ``DatabricksLLM`` say ``"databricks"``)."""
    return (metadata or {}).get("ls_provider") == DATABRICKS


def _run_name(serialized: Mapping[str, Any] | None, kwargs: Mapping[str, Any],
              default: str) -> str:
    name = kwargs.get("name") or (serialized or {}).get("name")
    if not name:
        path = (serialized or {}).get("id")
        name = path[-1] if isinstance(path, list) and path else default
    return str(name)


def _outputs(response: LLMResult) -> Any:
    """The answer in a JSON-friendly form: an OpenAI-style message (chat) or the text."""
    items = [convert_to_openai_messages(g.message) if isinstance(g, ChatGeneration) else g.text
             for generations in response.generations for g in generations]
    return items[0] if len(items) == 1 else items


class DatabricksFeedbackHandler(_FeedbackHandler):
    """Records each Databricks model call as an MLflow span, and rates it with an MLflow
    feedback assessment.

    Every ``ChatDatabricks`` and ``DatabricksLLM`` run (any model whose LangChain provider is
    ``databricks``) gets one span (``CHAT_MODEL`` or ``LLM``) with its messages or prompts as
    inputs, its answer as outputs and its endpoint as the ``model`` attribute; other models are
    ignored. ``submit``/``asubmit`` log ``"GOOD"``/``"BAD"`` (any letter case) or a boolean on the
    span of the answering call of a run (by default the latest) as a ``HUMAN`` assessment named
    ``user_feedback``, by ``user``, with ``comment`` as its rationale, and return a
    ``FeedbackSubmission`` whose ``results`` hold the ``Assessment``. The same submission made
    again (same call, rating, comment and user, or the same ``feedback_id``) returns the
    assessment already logged.

    The span is opened when the call has ended (with the time it started), inside the MLflow span
    active at that moment, else as a trace of its own (in ``experiment_id`` when given). So with
    ``mlflow.langchain.autolog()`` it is a child of autolog's span for the same call, in the
    user's trace, for ``invoke``, ``stream`` and ``batch`` of a model and ``invoke`` and
    ``stream`` of a chain. MLflow's tracer leaves no span active in two cases, which then get a
    trace of their own (never another call's trace):

    - ``batch`` of a chain (``RunnableSequence``): autolog deliberately does not make its spans
      active there, as the steps of several inputs run in turn on one thread;
    - the async methods (``ainvoke``, ``astream``, ``abatch``) under autolog's default, which runs
      its tracer outside the task; ``mlflow.langchain.autolog(run_tracer_inline=True)`` runs it
      in the task and these join the user's trace too.

    A span the user opened (``mlflow.start_span``, ``@mlflow.trace``) around the call is joined
    in every case where it is active in the code that makes the call.

    Spans and assessments go to MLflow's current tracking URI (``mlflow.set_tracking_uri`` or
    ``MLFLOW_TRACKING_URI``): there is no per-handler URI, as MLflow exports every span through
    one tracer provider set from the global URI, and this handler never changes that setting.
    Nothing is recorded while MLflow tracing is disabled. Needs ``pip install 'sfmodels[mlflow]'``.
    """

    _PROVIDER = "Databricks"
    _MODELS = "ChatDatabricks or DatabricksLLM (with MLflow tracing enabled)"

    def __init__(self, *, experiment_id: str | None = None,
                 max_runs: int = defaults.FEEDBACK_MAX_RUNS) -> None:
        require_mlflow()
        super().__init__(max_runs)
        self.experiment_id = experiment_id
        # run id -> a call started and not ended yet, the oldest forgotten first.
        self._calls: OrderedDict[str, _Call] = OrderedDict()
        self._max_calls = max(max_runs, MIN_CALLS_IN_FLIGHT)

    def _started(self, run_id: UUID, call: _Call) -> None:
        with self._lock:
            self._calls[str(run_id)] = call
            while len(self._calls) > self._max_calls:
                self._calls.popitem(last=False)

    def _ended(self, run_id: UUID) -> _Call | None:
        with self._lock:
            return self._calls.pop(str(run_id), None)

    def on_chat_model_start(self, serialized: dict[str, Any] | None, messages: Any, *,
                            run_id: UUID, parent_run_id: UUID | None = None,
                            metadata: dict[str, Any] | None = None, **kwargs: Any) -> None:
        super().on_chat_model_start(serialized, messages, run_id=run_id,
                                    parent_run_id=parent_run_id)
        if _is_databricks(metadata):
            lists = [convert_to_openai_messages(list(m)) for m in messages]
            self._started(run_id, _Call(
                _run_name(serialized, kwargs, "ChatDatabricks"),
                {"messages": lists[0] if len(lists) == 1 else lists},
                (metadata or {}).get("ls_model_name"), "CHAT_MODEL", time.time_ns()))

    def on_llm_start(self, serialized: dict[str, Any] | None, prompts: Sequence[str], *,
                     run_id: UUID, parent_run_id: UUID | None = None,
                     metadata: dict[str, Any] | None = None, **kwargs: Any) -> None:
        super().on_llm_start(serialized, prompts, run_id=run_id, parent_run_id=parent_run_id)
        if _is_databricks(metadata):
            self._started(run_id, _Call(
                _run_name(serialized, kwargs, "DatabricksLLM"),
                {"prompt": prompts[0]} if len(prompts) == 1 else {"prompts": list(prompts)},
                (metadata or {}).get("ls_model_name"), "LLM", time.time_ns()))

    def _span(self, call: _Call) -> LiveSpan | None:
        return start_generation_span(call.name, call.inputs, model=call.model,
                                     span_type=call.span_type,
                                     start_time_ns=call.start_time_ns,
                                     experiment_id=self.experiment_id)

    def on_llm_end(self, response: LLMResult, *, run_id: UUID,
                   parent_run_id: UUID | None = None, **kwargs: Any) -> None:
        call = self._ended(run_id)
        if call is None:
            return
        span = self._span(call)
        if span is None:  # MLflow tracing is disabled
            return
        record = end_generation_span(span, str(run_id), outputs=_outputs(response),
                                     model=call.model)
        if record is not None:
            self._file(record, run_id, parent_run_id)

    def on_llm_error(self, error: BaseException, *, run_id: UUID,
                     parent_run_id: UUID | None = None, **kwargs: Any) -> None:
        super().on_llm_error(error, run_id=run_id, parent_run_id=parent_run_id)
        call = self._ended(run_id)
        if call is None:
            return
        span = self._span(call)
        if span is not None:  # the trace shows the failed call; nothing is rateable
            end_generation_span(span, str(run_id), error=error, model=call.model)

    # -- feedback
    def submit(self, rating: str | bool, *, run_id: UUID | str | None = None,
               comment: str | None = None, user: str | None = None,
               feedback_id: str | None = None, trace_id: str | None = None,
               span_id: str | None = None) -> FeedbackSubmission:
        """Log ``rating`` on the answering Databricks call of ``run_id`` (a model run or any run
        above one; default: the latest call), or on ``trace_id`` (and ``span_id``) named
        directly, by ``user`` with ``comment`` as its rationale.

        ``feedback_id`` keys the assessment (by default a digest of the span, the rating, the
        comment and the user), so a retried submission is not logged twice."""
        feedback_value(rating)  # a bad rating fails before any lookup
        record = named_record(trace_id, span_id) or self.find(run_id)
        return FeedbackSubmission((log_feedback(record, rating, comment=comment, user=user,
                                                feedback_id=feedback_id),))

    async def asubmit(self, rating: str | bool, *, run_id: UUID | str | None = None,
                      comment: str | None = None, user: str | None = None,
                      feedback_id: str | None = None, trace_id: str | None = None,
                      span_id: str | None = None) -> FeedbackSubmission:
        """:meth:`submit`, its blocking MLflow calls made in a worker thread."""
        return await asyncio.to_thread(self.submit, rating, run_id=run_id, comment=comment,
                                       user=user, feedback_id=feedback_id, trace_id=trace_id,
                                       span_id=span_id)

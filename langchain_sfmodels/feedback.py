"""``SalesforceFeedbackHandler``: tell Salesforce whether the answers of a chain were good or bad.

Pass a handler in ``config={"callbacks": [handler]}`` of any run. It records every model call
of its provider under that call's run id and under the id of every run above it (the chain, the
agent, ...), so feedback can be given knowing only the id of the run you started::

    handler = SalesforceFeedbackHandler()
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
"""

from __future__ import annotations

import threading
from collections import OrderedDict
from collections.abc import Mapping, Sequence
from typing import TYPE_CHECKING, Any, ClassVar
from uuid import UUID

from langchain_core.callbacks import BaseCallbackHandler
from langchain_core.outputs import ChatGeneration, LLMResult
from pydantic import SecretStr

from sfmodels_core import defaults
from sfmodels_core._lifecycle import Closeable
from sfmodels_core.errors import InvalidInputError
from sfmodels_core.integration.feedback import (
    GenerationLog,
    GenerationRecord,
    asubmit,
    feedback_requests,
    submit,
)
from sfmodels_core.integration.fields import SalesforceClientFields

from ._common import SALESFORCE

if TYPE_CHECKING:
    from sfmodels_core.integration.feedback import FeedbackSubmission
    from sfmodels_core.salesforce import SalesforceClient

__all__ = [
    "MAX_DEPTH",
    "SalesforceFeedbackHandler",
    "generation_ids",
]

#: How far up the run tree ancestors are followed.
MAX_DEPTH = 64


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

"""``ChatSalesforce``: the Salesforce Models API chat endpoint as a LangChain chat model."""

from __future__ import annotations

from collections.abc import AsyncIterator, Iterator, Sequence
from typing import Any, NoReturn

from langchain_core.callbacks import AsyncCallbackManagerForLLMRun, CallbackManagerForLLMRun
from langchain_core.language_models import BaseChatModel, LangSmithParams
from langchain_core.messages import BaseMessage
from langchain_core.outputs import ChatGenerationChunk, ChatResult
from pydantic import ConfigDict

from sfmodels_core.defaults import SALESFORCE_CHAT_MODEL

from ._messages import (
    SALESFORCE,
    combine_llm_outputs,
    salesforce_chat_result,
    salesforce_chunk,
    to_salesforce_messages,
)
from ._settings import SalesforceSettings, no_unknown_kwargs

DEFAULT_CHAT_MODEL = SALESFORCE_CHAT_MODEL

#: Options a call may pass (``model.invoke(..., localization=...)``). ``temperature``,
#: ``max_tokens``, ``top_p`` and ``n`` are accepted so that generic code keeps working, and
#: warned about once: the Models API has no such settings.
CALL_OPTIONS = ("model", "localization", "salesforce_tags", "temperature", "max_tokens", "top_p",
                "n", "stream")


def prepare_call(owner: Any, stop: list[str] | None,
                 kwargs: dict[str, Any]) -> tuple[str, dict[str, Any], list[str] | None]:
    """(model, request options, stop sequences) of one call; warns about ignored settings."""
    from sfmodels_core.adapters import warn_unsupported_salesforce_params

    no_unknown_kwargs(type(owner).__name__, kwargs, CALL_OPTIONS)
    n = kwargs.get("n")
    warn_unsupported_salesforce_params(
        temperature=kwargs.get("temperature", owner.temperature),
        max_tokens=kwargs.get("max_tokens", owner.max_tokens),
        top_p=kwargs.get("top_p"), n=None if n in (None, 1) else n)
    options = {"localization": kwargs.get("localization", owner.localization),
               "tags": kwargs.get("salesforce_tags", owner.salesforce_tags)}
    return (kwargs.get("model") or owner.model, options,
            stop if stop is not None else owner.stop)


class ChatSalesforce(SalesforceSettings, BaseChatModel):
    """Chat with a model of the Salesforce Models API (Einstein / Agentforce).

    Setup: an External Client App with the client credentials flow (``domain``, ``client_id``,
    ``client_secret``, or ``SALESFORCE_DOMAIN``, ``SALESFORCE_CLIENT_ID``,
    ``SALESFORCE_CLIENT_SECRET``), or a pre-minted token (``api_key``/``access_token``,
    ``SALESFORCE_ACCESS_TOKEN``). Credentials are resolved on the first call.

    ```python
    from langchain_sfmodels import ChatSalesforce

    llm = ChatSalesforce()  # sfdc_ai__DefaultOpenAIGPT4OmniMini
    llm.invoke([("system", "Answer briefly."), ("human", "What is a lead?")])
    ```

    What the Models API accepts, and so what this class accepts: system, human and AI messages
    with text content (text content blocks are joined with newlines). Images, audio, files,
    tool calls and tool messages raise an ``InvalidInputError`` before anything is sent.

    - ``stop`` is enforced on the client: the answer is cut at the first stop sequence.
    - ``temperature`` and ``max_tokens`` are accepted but cannot be sent (the API has no such
      fields); a warning says so once. Set them on a configured model in Einstein Studio and
      use its API name as ``model``.
    - ``localization`` and ``salesforce_tags`` (the API's ``tags`` object; LangChain's own
      ``tags`` are run tags) are sent with every request, or per call.
    - Streaming yields the whole answer as one chunk: the API does not stream.
    - ``response_metadata`` holds ``id``, ``generation_id`` (what feedback refers to, see
      ``SalesforceFeedbackHandler``), ``model_name`` (the model API name called),
      ``served_model``, ``finish_reason``, ``content_quality`` and ``model_provider``.
    - No tool calling and no structured output: the Models API documents neither.
    """

    model_config = ConfigDict(populate_by_name=True, arbitrary_types_allowed=True,
                              extra="forbid", protected_namespaces=())

    model: str = DEFAULT_CHAT_MODEL
    """Model API name, e.g. ``sfdc_ai__DefaultGPT4Omni`` or a configured model's API name."""
    temperature: float | None = None
    """Accepted for compatibility and not sent (warned once): configure it in Einstein Studio."""
    max_tokens: int | None = None
    """Accepted for compatibility and not sent (warned once): configure it in Einstein Studio."""
    stop: list[str] | None = None
    """Stop sequences, applied to the answer on the client."""
    streaming: bool = False
    """Use the streaming path by default (one chunk: the API does not stream)."""
    localization: dict[str, Any] | None = None
    """The API's ``localization`` object, e.g. ``{"defaultLocale": "en_US"}``."""
    salesforce_tags: dict[str, Any] | None = None
    """The API's free-form ``tags`` object."""

    @property
    def _llm_type(self) -> str:
        return "salesforce-chat"

    @classmethod
    def is_lc_serializable(cls) -> bool:
        return False

    @property
    def _identifying_params(self) -> dict[str, Any]:
        return {"model": self.model, "stop": self.stop, "localization": self.localization,
                "salesforce_tags": self.salesforce_tags}

    def _get_ls_params(self, stop: list[str] | None = None, **kwargs: Any) -> LangSmithParams:
        # No ls_temperature / ls_max_tokens: they are never sent, so traces do not claim them.
        params = LangSmithParams(ls_provider=SALESFORCE, ls_model_type="chat",
                                 ls_model_name=kwargs.get("model") or self.model)
        if ls_stop := stop if stop is not None else self.stop:
            params["ls_stop"] = ls_stop
        return params

    def _combine_llm_outputs(self, llm_outputs: list[dict[str, Any] | None]) -> dict[str, Any]:
        return combine_llm_outputs(llm_outputs)

    def bind_tools(self, tools: Sequence[Any], *, tool_choice: Any = None,
                   **kwargs: Any) -> NoReturn:
        """Not available: the Salesforce Models API has no tool calling."""
        raise NotImplementedError(
            "ChatSalesforce cannot bind tools: the Salesforce Models API has no tool calling "
            "(and so no structured output through tools).")

    # -- calls: the sync and async paths differ only in the client method they await
    def _request(self, messages: list[BaseMessage], stop: list[str] | None,
                 kwargs: dict[str, Any]) -> tuple[str, list[dict[str, str]], dict[str, Any],
                                                  list[str] | None]:
        model, options, stop = prepare_call(self, stop, kwargs)
        return model, to_salesforce_messages(messages), options, stop

    def _generate(self, messages: list[BaseMessage], stop: list[str] | None = None,
                  run_manager: CallbackManagerForLLMRun | None = None,
                  **kwargs: Any) -> ChatResult:
        model, payload, options, stop = self._request(messages, stop, kwargs)
        return salesforce_chat_result(self._salesforce.chat(model, payload, **options), model,
                                      stop)

    async def _agenerate(self, messages: list[BaseMessage], stop: list[str] | None = None,
                         run_manager: AsyncCallbackManagerForLLMRun | None = None,
                         **kwargs: Any) -> ChatResult:
        model, payload, options, stop = self._request(messages, stop, kwargs)
        result = await self._salesforce.achat(model, payload, **options)
        return salesforce_chat_result(result, model, stop)

    def _stream(self, messages: list[BaseMessage], stop: list[str] | None = None,
                run_manager: CallbackManagerForLLMRun | None = None,
                **kwargs: Any) -> Iterator[ChatGenerationChunk]:
        model, payload, options, stop = self._request(messages, stop, kwargs)
        yield salesforce_chunk(self._salesforce.chat(model, payload, **options), model, stop)

    async def _astream(self, messages: list[BaseMessage], stop: list[str] | None = None,
                       run_manager: AsyncCallbackManagerForLLMRun | None = None,
                       **kwargs: Any) -> AsyncIterator[ChatGenerationChunk]:
        model, payload, options, stop = self._request(messages, stop, kwargs)
        result = await self._salesforce.achat(model, payload, **options)
        yield salesforce_chunk(result, model, stop)

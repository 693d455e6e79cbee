"""``SalesforceLLM``: the Salesforce Models API as a LlamaIndex ``LLM``.

Chat calls go to chat-generations, completions to generations. The API has no streaming, no tool
calling and no generation parameters, so streams yield the whole answer once, ``stop`` is applied
to the answer here, and ``temperature``/``max_tokens`` are accepted but not sent (with a warning,
once): configure those on a model in Einstein Studio and call it by its API name.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from llama_index.core.base.llms.types import (
    ChatMessage,
    ChatResponse,
    ChatResponseAsyncGen,
    ChatResponseGen,
    CompletionResponse,
    CompletionResponseAsyncGen,
    CompletionResponseGen,
    LLMMetadata,
)
from llama_index.core.llms.callbacks import llm_chat_callback, llm_completion_callback
from llama_index.core.llms.llm import LLM
from pydantic import Field, model_validator

from sfmodels_core.adapters import (
    UNSUPPORTED_SALESFORCE_PARAMS,
    warn_once,
    warn_unsupported_salesforce_params,
)
from sfmodels_core.errors import InvalidInputError
from sfmodels_core.salesforce import DEFAULT_CHAT_MODEL

from ._messages import (
    salesforce_chat_response,
    salesforce_completion_response,
    to_salesforce_messages,
)
from ._settings import SalesforceConnection

#: Per-call keyword arguments the Models API has something to do with.
_CALL_OPTIONS = ("stop", "localization", "tags")


def _stop_list(stop: Any) -> list[str] | None:
    if stop is None:
        return None
    if isinstance(stop, str):
        return [stop]
    if isinstance(stop, (list, tuple)) and all(isinstance(s, str) for s in stop):
        return list(stop)
    raise InvalidInputError("stop must be a string or a list of strings")


class SalesforceLLM(SalesforceConnection, LLM):
    """A Salesforce Models API model (Einstein / Agentforce) for LlamaIndex.

    Credentials come from the arguments or the environment (``SALESFORCE_DOMAIN``,
    ``SALESFORCE_CLIENT_ID``, ``SALESFORCE_CLIENT_SECRET``, or ``SALESFORCE_ACCESS_TOKEN``) when
    the first call is made. Each response carries the provider body in ``raw`` and the
    ``generation_id`` (for feedback), ``model`` and token counts in ``additional_kwargs``.

    Example::

        from llama_index.core import Settings
        Settings.llm = SalesforceLLM()  # sfdc_ai__DefaultOpenAIGPT4OmniMini
    """

    model: str = Field(
        default=DEFAULT_CHAT_MODEL, min_length=1,
        description="API name of the model, e.g. sfdc_ai__DefaultOpenAIGPT4OmniMini or a model "
                    "configured in Einstein Studio.")
    context_window: int = Field(
        default=128_000, gt=0, description="Tokens the model takes in (input and output).")
    num_output: int = Field(
        default=16_384, gt=0, description="Tokens the model can write in one answer.")
    temperature: float | None = Field(
        default=None, description="Not sent: the Models API has no such setting (warned once).")
    max_tokens: int | None = Field(
        default=None, description="Not sent: the Models API has no such setting (warned once).")
    stop: list[str] | None = Field(
        default=None, description="Stop sequences, applied to the answer on this side.")
    localization: dict[str, Any] | None = Field(
        default=None, description="Models API localization, e.g. {'defaultLocale': 'en_US'}.")
    tags: dict[str, Any] | None = Field(
        default=None, description="Free-form tags sent with each request.")

    @model_validator(mode="after")
    def _warn_unsupported(self) -> SalesforceLLM:
        warn_unsupported_salesforce_params(temperature=self.temperature,
                                           max_tokens=self.max_tokens)
        return self

    @classmethod
    def class_name(cls) -> str:
        return "SalesforceLLM"

    @property
    def metadata(self) -> LLMMetadata:
        return LLMMetadata(context_window=self.context_window, num_output=self.num_output,
                           is_chat_model=True, is_function_calling_model=False,
                           model_name=self.model)

    # -- what one call sends (pure: shared by every sync, async and stream method)
    def _options(self, kwargs: Mapping[str, Any]) -> tuple[list[str] | None, dict[str, Any]]:
        extra = dict(kwargs)
        if extra.get("tools") or extra.get("tool_choice"):
            raise InvalidInputError(
                "The Salesforce Models API has no tool calling. Use an agent that works "
                "through prompts (ReActAgent), or DatabricksLLM for function calling.")
        extra.pop("tools", None)
        extra.pop("tool_choice", None)
        stop = _stop_list(extra.pop("stop")) if "stop" in extra else self.stop
        options = {"localization": extra.pop("localization", self.localization),
                   "tags": extra.pop("tags", self.tags)}
        warn_unsupported_salesforce_params(
            **{name: extra.pop(name) for name in UNSUPPORTED_SALESFORCE_PARAMS if name in extra})
        for name in extra:
            warn_once(f"salesforce-argument-{name}",
                      f"SalesforceLLM does not send {name!r}: the Salesforce Models API takes "
                      f"only {', '.join(_CALL_OPTIONS)} besides the messages or prompt.")
        return stop, options

    def _chat_args(self, messages: Sequence[ChatMessage], kwargs: Mapping[str, Any]
                   ) -> tuple[list[dict[str, str]], list[str] | None, dict[str, Any]]:
        stop, options = self._options(kwargs)
        return to_salesforce_messages(messages), stop, options

    def _prompt_args(self, prompt: str, formatted: bool, kwargs: Mapping[str, Any]
                     ) -> tuple[str, list[str] | None, dict[str, Any]]:
        if not isinstance(prompt, str):
            raise InvalidInputError(f"prompt must be a string, got {type(prompt).__name__}")
        stop, options = self._options(kwargs)
        to_prompt = self.completion_to_prompt
        return (prompt if formatted or to_prompt is None else to_prompt(prompt)), stop, options

    # -- chat: chat-generations
    @llm_chat_callback()
    def chat(self, messages: Sequence[ChatMessage], **kwargs: Any) -> ChatResponse:
        payload, stop, options = self._chat_args(messages, kwargs)
        return salesforce_chat_response(self.client.chat(self.model, payload, **options), stop)

    @llm_chat_callback()
    async def achat(self, messages: Sequence[ChatMessage], **kwargs: Any) -> ChatResponse:
        payload, stop, options = self._chat_args(messages, kwargs)
        result = await self.client.achat(self.model, payload, **options)
        return salesforce_chat_response(result, stop)

    @llm_chat_callback()
    def stream_chat(self, messages: Sequence[ChatMessage], **kwargs: Any) -> ChatResponseGen:
        payload, stop, options = self._chat_args(messages, kwargs)

        def gen() -> ChatResponseGen:
            result = self.client.chat(self.model, payload, **options)
            yield salesforce_chat_response(result, stop, stream=True)

        return gen()

    @llm_chat_callback()
    async def astream_chat(self, messages: Sequence[ChatMessage],
                           **kwargs: Any) -> ChatResponseAsyncGen:
        payload, stop, options = self._chat_args(messages, kwargs)

        async def gen() -> ChatResponseAsyncGen:
            result = await self.client.achat(self.model, payload, **options)
            yield salesforce_chat_response(result, stop, stream=True)

        return gen()

    # -- complete: generations
    @llm_completion_callback()
    def complete(self, prompt: str, formatted: bool = False,
                 **kwargs: Any) -> CompletionResponse:
        text, stop, options = self._prompt_args(prompt, formatted, kwargs)
        return salesforce_completion_response(
            self.client.generate(self.model, text, **options), stop)

    @llm_completion_callback()
    async def acomplete(self, prompt: str, formatted: bool = False,
                        **kwargs: Any) -> CompletionResponse:
        text, stop, options = self._prompt_args(prompt, formatted, kwargs)
        result = await self.client.agenerate(self.model, text, **options)
        return salesforce_completion_response(result, stop)

    @llm_completion_callback()
    def stream_complete(self, prompt: str, formatted: bool = False,
                        **kwargs: Any) -> CompletionResponseGen:
        text, stop, options = self._prompt_args(prompt, formatted, kwargs)

        def gen() -> CompletionResponseGen:
            result = self.client.generate(self.model, text, **options)
            yield salesforce_completion_response(result, stop, stream=True)

        return gen()

    @llm_completion_callback()
    async def astream_complete(self, prompt: str, formatted: bool = False,
                               **kwargs: Any) -> CompletionResponseAsyncGen:
        text, stop, options = self._prompt_args(prompt, formatted, kwargs)

        async def gen() -> CompletionResponseAsyncGen:
            result = await self.client.agenerate(self.model, text, **options)
            yield salesforce_completion_response(result, stop, stream=True)

        return gen()

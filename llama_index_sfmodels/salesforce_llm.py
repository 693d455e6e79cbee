"""``SalesforceLLM``: the Salesforce Models API as a LlamaIndex ``FunctionCallingLLM``.

Chat calls go to chat-generations, completions to generations. The API has no streaming, no tool
or response-format fields and no generation parameters, so:

- streams yield the whole answer once;
- tool calling (``chat_with_tools``, ``predict_and_call``, ``FunctionAgent``) and structured output
  (``structured_predict`` and friends) go through the core's prompted protocol
  (``sfmodels_core.tool_protocol``): the tools or the JSON Schema are stated in a system message,
  tool calls and results in the history are rendered as text, the reply is parsed and validated,
  and an unusable reply is sent back once with its problems listed. What is still wrong after that
  raises :class:`~llama_index_sfmodels.ModelReplyError`; it is never guessed at;
- ``stop`` is applied to the answer here, and ``temperature``/``max_tokens`` are accepted but not
  sent (with a warning, once): configure those on a model in Einstein Studio and call it by its
  API name.

Plain chat (no tools) sends the messages as they are, with no protocol text.
"""

from __future__ import annotations

from collections.abc import AsyncGenerator, Generator, Mapping, Sequence
from typing import TYPE_CHECKING, Any, cast

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
from llama_index.core.instrumentation.events.llm import (
    LLMStructuredPredictEndEvent,
    LLMStructuredPredictStartEvent,
)
from llama_index.core.llms.callbacks import llm_chat_callback, llm_completion_callback
from llama_index.core.llms.function_calling import FunctionCallingLLM
from llama_index.core.types import Model, PydanticProgramMode
from llama_index_instrumentation import get_dispatcher
from pydantic import Field, model_validator

from sfmodels_core._validation import warn_once
from sfmodels_core.defaults import SALESFORCE_CHAT_MODEL
from sfmodels_core.errors import InvalidInputError
from sfmodels_core.integration.fields import SalesforceClientFields
from sfmodels_core.integration.salesforce import (
    UNSUPPORTED_PARAMS,
    SalesforceChat,
    choose_protocol,
    reply_protocol,
    stop_list,
    warn_unsupported,
)
from sfmodels_core.tool_protocol import Protocol

from ._common import ToolCalling, require_prompt, tool_specs
from ._salesforce import (
    chat_response,
    completion_response,
    structured_output,
    to_neutral_messages,
    to_salesforce_messages,
)

if TYPE_CHECKING:
    from llama_index.core.program.utils import FlexibleModel
    from llama_index.core.prompts import PromptTemplate
    from llama_index.core.tools.types import BaseTool

__all__ = [
    "SalesforceLLM",
    "dispatcher",
]

dispatcher = get_dispatcher(__name__)

#: Per-call keyword arguments the Models API has something to do with.
_CALL_OPTIONS = ("stop", "localization", "tags")


class SalesforceLLM(SalesforceClientFields, ToolCalling, FunctionCallingLLM):
    """A Salesforce Models API model (Einstein / Agentforce) for LlamaIndex.

    Credentials come from the arguments or the environment (``SALESFORCE_DOMAIN``,
    ``SALESFORCE_CLIENT_ID``, ``SALESFORCE_CLIENT_SECRET``, or ``SALESFORCE_ACCESS_TOKEN``) when
    the first call is made. Each response carries the provider body in ``raw`` and the
    ``generation_id`` (for feedback), ``model`` and token counts in ``additional_kwargs``. A call
    through the tool or JSON protocol also carries ``generation_ids`` (one per request: two when
    the reply was repaired), ``repaired``, token counts summed over its requests, and, when the
    reply was still unusable, ``protocol_errors`` (and ``invalid_tool_calls``).

    Example::

        from llama_index.core import Settings
        from llama_index.core.agent.workflow import FunctionAgent
        Settings.llm = SalesforceLLM()  # sfdc_ai__DefaultOpenAIGPT4OmniMini
        agent = FunctionAgent(tools=[...], llm=Settings.llm)
    """

    model: str = Field(
        default=SALESFORCE_CHAT_MODEL, min_length=1,
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
        warn_unsupported(temperature=self.temperature, max_tokens=self.max_tokens)
        return self

    @classmethod
    def class_name(cls) -> str:
        return "SalesforceLLM"

    @property
    def metadata(self) -> LLMMetadata:
        return LLMMetadata(context_window=self.context_window, num_output=self.num_output,
                           is_chat_model=True, is_function_calling_model=True,
                           model_name=self.model)

    # -- what one call sends (pure: shared by every sync, async and stream method)
    def _options(self, kwargs: Mapping[str, Any]) -> tuple[list[str] | None, dict[str, Any]]:
        extra = dict(kwargs)
        stop = stop_list(extra.pop("stop")) if "stop" in extra else self.stop
        options = {"localization": extra.pop("localization", self.localization),
                   "tags": extra.pop("tags", self.tags)}
        warn_unsupported(
            **{name: extra.pop(name) for name in UNSUPPORTED_PARAMS if name in extra})
        for name in extra:
            warn_once(f"salesforce-argument-{name}",
                      f"SalesforceLLM does not send {name!r}: the Salesforce Models API takes "
                      f"only {', '.join(_CALL_OPTIONS)} besides the messages or prompt.")
        return stop, options

    def _chat_call(self, messages: Sequence[ChatMessage], kwargs: Mapping[str, Any],
                   reply: Protocol[Any] | None = None) -> SalesforceChat:
        """``tools`` (LlamaIndex tools or function dicts), ``tool_choice``, ``tool_required``
        and ``parallel_tool_calls`` select the tool protocol; ``reply`` the JSON protocol."""
        extra = dict(kwargs)
        tools = extra.pop("tools", None)
        protocol = choose_protocol(
            tools=tool_specs(tools) if tools else None, tool_choice=extra.pop("tool_choice", None),
            tool_required=bool(extra.pop("tool_required", False)),
            parallel=extra.pop("parallel_tool_calls", True) is not False, reply=reply)
        stop, options = self._options(extra)
        if protocol is None:
            return SalesforceChat(self.model, to_salesforce_messages(messages), options, stop)
        return SalesforceChat(self.model, to_neutral_messages(messages), options,
                              None if reply is not None else stop, protocol)

    def _prompt_args(self, prompt: str, formatted: bool, kwargs: Mapping[str, Any]
                     ) -> tuple[str, list[str] | None, dict[str, Any]]:
        require_prompt(prompt)
        if kwargs.get("tools") or kwargs.get("tool_choice"):
            raise InvalidInputError(
                "SalesforceLLM calls tools in chat, not in completions: use chat_with_tools, "
                "predict_and_call or an agent.")
        extra = {k: v for k, v in kwargs.items() if k not in ("tools", "tool_choice")}
        stop, options = self._options(extra)
        to_prompt = self.completion_to_prompt
        return (prompt if formatted or to_prompt is None else to_prompt(prompt)), stop, options

    # -- the I/O: the same steps, sync and async
    def _execute(self, call: SalesforceChat, stream: bool = False) -> ChatResponse:
        return chat_response(call.run(self.client.chat), stream=stream)

    async def _aexecute(self, call: SalesforceChat, stream: bool = False) -> ChatResponse:
        return chat_response(await call.arun(self.client.achat), stream=stream)

    # -- chat: chat-generations
    @llm_chat_callback()
    def chat(self, messages: Sequence[ChatMessage], **kwargs: Any) -> ChatResponse:
        return self._execute(self._chat_call(messages, kwargs))

    @llm_chat_callback()
    async def achat(self, messages: Sequence[ChatMessage], **kwargs: Any) -> ChatResponse:
        return await self._aexecute(self._chat_call(messages, kwargs))

    @llm_chat_callback()
    def stream_chat(self, messages: Sequence[ChatMessage], **kwargs: Any) -> ChatResponseGen:
        call = self._chat_call(messages, kwargs)

        def gen() -> ChatResponseGen:
            yield self._execute(call, stream=True)

        return gen()

    @llm_chat_callback()
    async def astream_chat(self, messages: Sequence[ChatMessage],
                           **kwargs: Any) -> ChatResponseAsyncGen:
        call = self._chat_call(messages, kwargs)

        async def gen() -> ChatResponseAsyncGen:
            yield await self._aexecute(call, stream=True)

        return gen()

    # -- complete: generations
    @llm_completion_callback()
    def complete(self, prompt: str, formatted: bool = False,
                 **kwargs: Any) -> CompletionResponse:
        text, stop, options = self._prompt_args(prompt, formatted, kwargs)
        return completion_response(self.client.generate(self.model, text, **options), stop)

    @llm_completion_callback()
    async def acomplete(self, prompt: str, formatted: bool = False,
                        **kwargs: Any) -> CompletionResponse:
        text, stop, options = self._prompt_args(prompt, formatted, kwargs)
        result = await self.client.agenerate(self.model, text, **options)
        return completion_response(result, stop)

    @llm_completion_callback()
    def stream_complete(self, prompt: str, formatted: bool = False,
                        **kwargs: Any) -> CompletionResponseGen:
        text, stop, options = self._prompt_args(prompt, formatted, kwargs)

        def gen() -> CompletionResponseGen:
            result = self.client.generate(self.model, text, **options)
            yield completion_response(result, stop, stream=True)

        return gen()

    @llm_completion_callback()
    async def astream_complete(self, prompt: str, formatted: bool = False,
                               **kwargs: Any) -> CompletionResponseAsyncGen:
        text, stop, options = self._prompt_args(prompt, formatted, kwargs)

        async def gen() -> CompletionResponseAsyncGen:
            result = await self.client.agenerate(self.model, text, **options)
            yield completion_response(result, stop, stream=True)

        return gen()

    # -- tool calling through the prompted protocol
    def _tool_options(self, tools: list[Any], tool_choice: Any, tool_required: bool,
                      parallel: bool) -> dict[str, Any]:
        return {"tools": tools, "tool_choice": tool_choice, "tool_required": tool_required,
                "parallel_tool_calls": parallel}

    def _validate_chat_with_tools_response(
        self,
        response: ChatResponse,
        tools: Sequence[BaseTool],
        allow_parallel_tool_calls: bool = False,
        **kwargs: Any,
    ) -> ChatResponse:
        # One call per reply was asked for in the protocol; a reply with several was repaired,
        # and one still holding several carries protocol_errors (get_tool_calls_from_response
        # raises): never silently cut down to the first call.
        return response

    # -- structured output through the JSON protocol
    def _structured_chat(self, output_cls: type[Model], messages: Sequence[ChatMessage],
                         llm_kwargs: Mapping[str, Any] | None) -> ChatResponse:
        protocol = reply_protocol(output_cls.model_json_schema(), output_cls.model_validate)

        def chat(_self: SalesforceLLM, messages: Sequence[ChatMessage],
                 **kwargs: Any) -> ChatResponse:
            return _self._execute(_self._chat_call(messages, kwargs, reply=protocol))

        # One chat event per structured call, so token counters and feedback see it.
        return cast(ChatResponse, llm_chat_callback()(chat)(self, messages, **(llm_kwargs or {})))

    async def _astructured_chat(self, output_cls: type[Model], messages: Sequence[ChatMessage],
                                llm_kwargs: Mapping[str, Any] | None) -> ChatResponse:
        protocol = reply_protocol(output_cls.model_json_schema(), output_cls.model_validate)

        async def achat(_self: SalesforceLLM, messages: Sequence[ChatMessage],
                        **kwargs: Any) -> ChatResponse:
            return await _self._aexecute(_self._chat_call(messages, kwargs, reply=protocol))

        wrapped = llm_chat_callback()(achat)
        return cast(ChatResponse, await wrapped(self, messages, **(llm_kwargs or {})))

    def _uses_json_protocol(self) -> bool:
        """``pydantic_program_mode`` left at DEFAULT: the JSON protocol; otherwise the program
        the user chose."""
        return self.pydantic_program_mode == PydanticProgramMode.DEFAULT

    @dispatcher.span
    def structured_predict(self, output_cls: type[Model], prompt: PromptTemplate,
                           llm_kwargs: dict[str, Any] | None = None,
                           **prompt_args: Any) -> Model:
        """An ``output_cls`` from the model's JSON reply, validated (one repair round), or
        :class:`ModelReplyError` naming what is still wrong."""
        if not self._uses_json_protocol():
            chosen: Model = super().structured_predict(output_cls, prompt, llm_kwargs,
                                                       **prompt_args)
            return chosen
        dispatcher.event(LLMStructuredPredictStartEvent(
            output_cls=output_cls, template=prompt, template_args=prompt_args))
        messages = self._get_messages(prompt, **prompt_args)
        result = structured_output(output_cls,
                                   self._structured_chat(output_cls, messages, llm_kwargs))
        dispatcher.event(LLMStructuredPredictEndEvent(output=result))
        return result

    @dispatcher.span
    async def astructured_predict(self, output_cls: type[Model], prompt: PromptTemplate,
                                  llm_kwargs: dict[str, Any] | None = None,
                                  **prompt_args: Any) -> Model:
        if not self._uses_json_protocol():
            achosen: Model = await super().astructured_predict(output_cls, prompt, llm_kwargs,
                                                               **prompt_args)
            return achosen
        dispatcher.event(LLMStructuredPredictStartEvent(
            output_cls=output_cls, template=prompt, template_args=prompt_args))
        messages = self._get_messages(prompt, **prompt_args)
        response = await self._astructured_chat(output_cls, messages, llm_kwargs)
        result = structured_output(output_cls, response)
        dispatcher.event(LLMStructuredPredictEndEvent(output=result))
        return result

    def _structured_stream_call(
        self, output_cls: type[Model], prompt: PromptTemplate,
        llm_kwargs: dict[str, Any] | None = None, **prompt_args: Any,
    ) -> Generator[Model | list[Model] | FlexibleModel | list[FlexibleModel], None, None]:
        """The API does not stream: the whole validated object, once."""
        if not self._uses_json_protocol():
            return super()._structured_stream_call(output_cls, prompt, llm_kwargs,
                                                   **prompt_args)
        messages = self._get_messages(prompt, **prompt_args)

        def gen() -> Generator[Model, None, None]:
            yield structured_output(output_cls,
                                    self._structured_chat(output_cls, messages, llm_kwargs))

        return gen()

    async def _structured_astream_call(
        self, output_cls: type[Model], prompt: PromptTemplate,
        llm_kwargs: dict[str, Any] | None = None, **prompt_args: Any,
    ) -> AsyncGenerator[Model | list[Model] | FlexibleModel | list[FlexibleModel], None]:
        if not self._uses_json_protocol():
            return await super()._structured_astream_call(output_cls, prompt, llm_kwargs,
                                                          **prompt_args)
        messages = self._get_messages(prompt, **prompt_args)

        async def gen() -> AsyncGenerator[Model, None]:
            response = await self._astructured_chat(output_cls, messages, llm_kwargs)
            yield structured_output(output_cls, response)

        return gen()

"""``DatabricksLLM``: a Databricks model serving endpoint as a LlamaIndex ``FunctionCallingLLM``.

Chat, completion (derived from chat), real streaming and tool calling, sync and async, over the
core ``DatabricksClient``, so personal access tokens, OAuth service principals (with token
refresh) and ``~/.databrickscfg`` profiles all work.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import TYPE_CHECKING, Any

from llama_index.core.base.llms.generic_utils import (
    achat_to_completion_decorator,
    astream_chat_to_completion_decorator,
    chat_to_completion_decorator,
    stream_chat_to_completion_decorator,
)
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
from llama_index.core.llms.function_calling import FunctionCallingLLM
from pydantic import AliasChoices, Field

from sfmodels_core.integration.fields import DatabricksClientFields
from sfmodels_core.tools import wire_tool_choice

from ._common import ToolCalling, require_prompt, tool_names, tool_specs
from ._databricks import ChatStream, chat_response, first_tool_call_only, to_databricks_messages

if TYPE_CHECKING:
    from llama_index.core.tools.types import BaseTool

__all__ = [
    "DatabricksLLM",
]


class DatabricksLLM(DatabricksClientFields, ToolCalling, FunctionCallingLLM):
    """A Databricks serving endpoint (Foundation Model APIs, external or custom models).

    Credentials come from the arguments, then ``DATABRICKS_HOST``/``DATABRICKS_TOKEN`` (or
    ``DATABRICKS_CLIENT_ID``/``DATABRICKS_CLIENT_SECRET``), then ``~/.databrickscfg``, when the
    first call is made. Responses carry the provider body in ``raw`` and ``id``, ``model``,
    ``finish_reason`` and token counts in ``additional_kwargs`` (a stream reports its token
    counts once, on its last response).

    Example::

        llm = DatabricksLLM(endpoint="databricks-meta-llama-3-3-70b-instruct")
        agent = FunctionAgent(tools=[...], llm=llm)
    """

    endpoint: str = Field(
        min_length=1, validation_alias=AliasChoices("endpoint", "model"),
        description="Serving endpoint name, e.g. databricks-meta-llama-3-3-70b-instruct.")
    temperature: float | None = Field(default=None, ge=0.0, description="Sampling temperature.")
    max_tokens: int | None = Field(default=None, gt=0, description="Most tokens to generate.")
    stop: list[str] | None = Field(default=None, description="Stop sequences.")
    additional_kwargs: dict[str, Any] = Field(
        default_factory=dict, validation_alias=AliasChoices("additional_kwargs", "extra_params"),
        description="Other request fields sent with every call (e.g. top_p, top_k).")
    context_window: int = Field(
        default=128_000, gt=0, description="Tokens the endpoint's model takes in.")
    num_output: int = Field(
        default=4_096, gt=0,
        description="Tokens to leave for the answer when max_tokens is not set.")
    use_responses_api: bool = Field(
        default=False, description="Call the endpoint through the OpenAI Responses API (GPT-5 "
                                   "family, Codex, Responses agents) instead of chat.")
    custom_inputs: dict[str, Any] | None = Field(
        default=None, description="Sent with every request (agent endpoints); the agent's "
                                  "custom_outputs come back in additional_kwargs and raw.")

    @classmethod
    def class_name(cls) -> str:
        return "DatabricksLLM"

    @property
    def model(self) -> str:
        return self.endpoint

    @property
    def metadata(self) -> LLMMetadata:
        return LLMMetadata(context_window=self.context_window,
                           num_output=self.max_tokens or self.num_output, is_chat_model=True,
                           is_function_calling_model=True, model_name=self.endpoint)

    def _params(self, kwargs: Mapping[str, Any]) -> dict[str, Any]:
        return {"temperature": self.temperature, "max_tokens": self.max_tokens,
                "stop": self.stop, "custom_inputs": self.custom_inputs,
                **self.additional_kwargs, **kwargs}

    # -- undecorated implementations (the public methods add callbacks; complete derives
    #    from these so a completion fires one completion event, not a chat one too)
    def _chat(self, messages: Sequence[ChatMessage], **kwargs: Any) -> ChatResponse:
        payload, params = to_databricks_messages(messages), self._params(kwargs)
        chat = self.client.respond if self.use_responses_api else self.client.chat
        return chat_response(chat(self.endpoint, payload, **params))

    async def _achat(self, messages: Sequence[ChatMessage], **kwargs: Any) -> ChatResponse:
        payload, params = to_databricks_messages(messages), self._params(kwargs)
        achat = self.client.arespond if self.use_responses_api else self.client.achat
        return chat_response(await achat(self.endpoint, payload, **params))

    def _stream_chat(self, messages: Sequence[ChatMessage], **kwargs: Any) -> ChatResponseGen:
        payload, params = to_databricks_messages(messages), self._params(kwargs)

        def gen() -> ChatResponseGen:
            stream = ChatStream()
            chunks = (self.client.stream_respond if self.use_responses_api
                      else self.client.stream_chat)(self.endpoint, payload, **params)
            for chunk in chunks:
                yield stream.add(chunk)

        return gen()

    async def _astream_chat(self, messages: Sequence[ChatMessage],
                            **kwargs: Any) -> ChatResponseAsyncGen:
        payload, params = to_databricks_messages(messages), self._params(kwargs)

        async def gen() -> ChatResponseAsyncGen:
            stream = ChatStream()
            chunks = (self.client.astream_respond if self.use_responses_api
                      else self.client.astream_chat)(self.endpoint, payload, **params)
            async for chunk in chunks:
                yield stream.add(chunk)

        return gen()

    # -- chat
    @llm_chat_callback()
    def chat(self, messages: Sequence[ChatMessage], **kwargs: Any) -> ChatResponse:
        return self._chat(messages, **kwargs)

    @llm_chat_callback()
    async def achat(self, messages: Sequence[ChatMessage], **kwargs: Any) -> ChatResponse:
        return await self._achat(messages, **kwargs)

    @llm_chat_callback()
    def stream_chat(self, messages: Sequence[ChatMessage], **kwargs: Any) -> ChatResponseGen:
        return self._stream_chat(messages, **kwargs)

    @llm_chat_callback()
    async def astream_chat(self, messages: Sequence[ChatMessage],
                           **kwargs: Any) -> ChatResponseAsyncGen:
        return await self._astream_chat(messages, **kwargs)

    # -- complete: the prompt as one user message
    @llm_completion_callback()
    def complete(self, prompt: str, formatted: bool = False,
                 **kwargs: Any) -> CompletionResponse:
        return chat_to_completion_decorator(self._chat)(require_prompt(prompt), **kwargs)

    @llm_completion_callback()
    async def acomplete(self, prompt: str, formatted: bool = False,
                        **kwargs: Any) -> CompletionResponse:
        return await achat_to_completion_decorator(self._achat)(require_prompt(prompt),
                                                                 **kwargs)

    @llm_completion_callback()
    def stream_complete(self, prompt: str, formatted: bool = False,
                        **kwargs: Any) -> CompletionResponseGen:
        return stream_chat_to_completion_decorator(self._stream_chat)(
            require_prompt(prompt), **kwargs)

    @llm_completion_callback()
    async def astream_complete(self, prompt: str, formatted: bool = False,
                               **kwargs: Any) -> CompletionResponseAsyncGen:
        return await astream_chat_to_completion_decorator(self._astream_chat)(
            require_prompt(prompt), **kwargs)

    # -- function calling
    def _tool_options(self, tools: list[Any], tool_choice: Any, tool_required: bool,
                      parallel: bool) -> dict[str, Any]:
        specs = tool_specs(tools)
        return {"tools": specs, "tool_choice": wire_tool_choice(tool_choice, tool_names(specs),
                                                                required=tool_required)}

    def _validate_chat_with_tools_response(
        self,
        response: ChatResponse,
        tools: Sequence[BaseTool],
        allow_parallel_tool_calls: bool = False,
        **kwargs: Any,
    ) -> ChatResponse:
        return response if allow_parallel_tool_calls else first_tool_call_only(response)

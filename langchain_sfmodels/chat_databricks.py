"""``ChatDatabricks``: a Databricks model serving chat endpoint as a LangChain chat model.

A drop-in for databricks-langchain's class of the same name: same constructor names
(``endpoint``/``model``, ``temperature``, ``max_tokens``, ``stop``, ``n``, ``extra_params``,
``streaming``, ``stream_usage``), tool calling and structured output, over ``sfmodels_core``.
"""

from __future__ import annotations

import contextlib
from collections.abc import AsyncIterator, Callable, Iterator, Sequence
from typing import TYPE_CHECKING, Any, Literal

from langchain_core.callbacks import AsyncCallbackManagerForLLMRun, CallbackManagerForLLMRun
from langchain_core.language_models import BaseChatModel, LanguageModelInput
from langchain_core.messages import AIMessage, BaseMessage
from langchain_core.outputs import ChatGenerationChunk, ChatResult
from langchain_core.runnables import Runnable
from pydantic import BaseModel, ConfigDict, model_validator

from ._common import tool_options, with_raw
from ._databricks import (
    DatabricksFields,
    DatabricksStream,
    chat_result,
    generation_params,
    single_answer,
    to_databricks_messages,
)

if TYPE_CHECKING:
    from langchain_core.tools import BaseTool

__all__ = [
    "PEER_OPTIONS_REFUSED",
    "ChatDatabricks",
]

#: databricks-langchain options this class does not take, and what to do instead.
PEER_OPTIONS_REFUSED = {
    "use_ai_gateway": "requests go to the serving endpoint's own route, where the endpoint's AI "
                      "Gateway settings (usage tracking, guardrails, rate limits) apply; leave "
                      "it out",
    "use_ai_gateway_native_api": "call the gateway's OpenAI-compatible API with an OpenAI "
                                 "client, or leave it out to use the serving endpoint's route",
}


class ChatDatabricks(DatabricksFields, BaseChatModel):
    """Chat with a Databricks model serving endpoint (Foundation Model APIs or any chat endpoint).

    Credentials: ``host`` and ``api_key``/``token`` (a personal access token), or ``client_id``
    and ``client_secret`` (a service principal), or a ``profile`` of ``~/.databrickscfg``; each
    falls back to ``DATABRICKS_HOST``, ``DATABRICKS_TOKEN``, ``DATABRICKS_CLIENT_ID``,
    ``DATABRICKS_CLIENT_SECRET``, ``DATABRICKS_CONFIG_PROFILE``. They are resolved on the first
    call.

    ```python
    from langchain_sfmodels import ChatDatabricks

    llm = ChatDatabricks(endpoint="databricks-meta-llama-3-3-70b-instruct", temperature=0)
    llm.invoke("What is Delta Lake?")
    ```

    - Streaming is real (server-sent events), sync and async, with tool-call chunks. Usage is
      reported once per stream, on the last chunk (``stream_usage=False`` leaves it out).
    - ``bind_tools(tools, tool_choice=...)`` with ``"auto"``, ``"none"``,
      ``"any"``/``"required"``, a tool name or a dict.
    - ``with_structured_output(schema, method=...)``: ``"function_calling"`` (default),
      ``"json_schema"`` or ``"json_mode"``, and ``include_raw``.
    - ``extra_params`` go into every request body as they are (any key but ``messages`` and
      ``stream``); other call options (``model.invoke(..., top_p=0.9)``) too.
    - ``response_metadata`` holds ``id``, ``model_name`` (the endpoint called),
      ``served_model`` (the model the service reports), ``finish_reason`` and
      ``model_provider``.
    """

    model_config = ConfigDict(populate_by_name=True, arbitrary_types_allowed=True,
                              extra="forbid", protected_namespaces=())

    stream_usage: bool = True
    """Report token usage at the end of a stream."""
    use_responses_api: bool = False
    """Call the endpoint through the OpenAI Responses API (GPT-5 family, Codex models,
    Responses agents) instead of chat completions; results have the same shape."""
    custom_inputs: dict[str, Any] | None = None
    """Sent with every request (agent endpoints); a call's ``custom_inputs=`` option overrides
    it. An agent's ``custom_outputs`` come back in ``response_metadata["custom_outputs"]``."""

    @model_validator(mode="before")
    @classmethod
    def _refuse_peer_options(cls, data: Any) -> Any:
        if isinstance(data, dict) and any(name in data for name in PEER_OPTIONS_REFUSED):
            for name, instead in PEER_OPTIONS_REFUSED.items():
                if data.get(name):
                    raise ValueError(f"{name} is not supported: {instead}")
            data = {k: v for k, v in data.items() if k not in PEER_OPTIONS_REFUSED}
        return data

    @property
    def _llm_type(self) -> str:
        return "chat-databricks"

    # -- calls: sync and async differ only in the client method they await
    def _generate(self, messages: list[BaseMessage], stop: list[str] | None = None,
                  run_manager: CallbackManagerForLLMRun | None = None,
                  **kwargs: Any) -> ChatResult:
        endpoint, params = generation_params(self, stop, kwargs)
        chat = self.client.respond if self.use_responses_api else self.client.chat
        return chat_result(chat(endpoint, to_databricks_messages(messages), **params), endpoint)

    async def _agenerate(self, messages: list[BaseMessage], stop: list[str] | None = None,
                         run_manager: AsyncCallbackManagerForLLMRun | None = None,
                         **kwargs: Any) -> ChatResult:
        endpoint, params = generation_params(self, stop, kwargs)
        achat = self.client.arespond if self.use_responses_api else self.client.achat
        return chat_result(await achat(endpoint, to_databricks_messages(messages), **params),
                           endpoint)

    def _stream_setup(self, messages: list[BaseMessage], stop: list[str] | None,
                      kwargs: dict[str, Any]) -> tuple[str, list[dict[str, Any]],
                                                       dict[str, Any], DatabricksStream]:
        endpoint, params = generation_params(self, stop, kwargs)
        single_answer(params)
        stream_usage = kwargs.get("stream_usage")
        converter = DatabricksStream(
            endpoint, stream_usage=self.stream_usage if stream_usage is None else stream_usage)
        return endpoint, to_databricks_messages(messages), params, converter

    def _stream(self, messages: list[BaseMessage], stop: list[str] | None = None,
                run_manager: CallbackManagerForLLMRun | None = None,
                **kwargs: Any) -> Iterator[ChatGenerationChunk]:
        endpoint, payload, params, converter = self._stream_setup(messages, stop, kwargs)
        pieces = (self.client.stream_respond if self.use_responses_api
                  else self.client.stream_chat)(endpoint, payload, **params)
        with contextlib.closing(pieces) as it:  # type: ignore[type-var]
            for piece in it:
                if (chunk := converter.chunk(piece)) is not None:
                    yield chunk
        yield converter.last()

    async def _astream(self, messages: list[BaseMessage], stop: list[str] | None = None,
                       run_manager: AsyncCallbackManagerForLLMRun | None = None,
                       **kwargs: Any) -> AsyncIterator[ChatGenerationChunk]:
        endpoint, payload, params, converter = self._stream_setup(messages, stop, kwargs)
        stream = (self.client.astream_respond if self.use_responses_api
                  else self.client.astream_chat)(endpoint, payload, **params)
        async with contextlib.aclosing(stream) as it:  # type: ignore[type-var]
            async for piece in it:
                if (chunk := converter.chunk(piece)) is not None:
                    yield chunk
        yield converter.last()

    # -- tools and structured output
    def bind_tools(
        self,
        tools: Sequence[dict[str, Any] | type | Callable[..., Any] | BaseTool],
        *,
        tool_choice: str | dict[str, Any] | bool | None = None,
        strict: bool | None = None,
        **kwargs: Any,
    ) -> Runnable[LanguageModelInput, AIMessage]:
        """Bind tools (OpenAI function format). ``tool_choice``: ``"auto"``, ``"none"``,
        ``"any"``/``"required"`` (must call one), a tool name, ``True`` or a dict."""
        return super().bind(**tool_options(tools, tool_choice, strict, kwargs))

    def with_structured_output(
        self,
        schema: dict[str, Any] | type | None = None,
        *,
        method: Literal["function_calling", "json_schema", "json_mode"] = "function_calling",
        include_raw: bool = False,
        strict: bool | None = None,
        **kwargs: Any,
    ) -> Runnable[LanguageModelInput, dict[str, Any] | BaseModel]:
        """Answers shaped by ``schema`` (a Pydantic class, a TypedDict, a JSON schema or an
        OpenAI tool dict).

        ``method``: ``"function_calling"`` forces a call of a tool built from the schema;
        ``"json_schema"`` sends ``response_format`` with the schema; ``"json_mode"`` asks for
        a JSON object (say in the prompt what it should hold). ``include_raw=True`` returns
        ``{"raw": AIMessage, "parsed": ..., "parsing_error": ...}``.
        """
        from langchain_core.output_parsers import JsonOutputParser, PydanticOutputParser
        from langchain_core.output_parsers.openai_tools import (
            JsonOutputKeyToolsParser,
            PydanticToolsParser,
        )
        from langchain_core.utils.function_calling import (
            convert_to_json_schema,
            convert_to_openai_tool,
        )
        from langchain_core.utils.pydantic import is_basemodel_subclass

        if kwargs:
            raise ValueError(f"Unexpected arguments: {', '.join(sorted(kwargs))}")
        if schema is None and method != "json_mode":
            raise ValueError(f"schema is required for method={method!r}")
        shape: Any = schema  # a Pydantic class, a TypedDict, a JSON schema or a tool dict
        is_model = isinstance(shape, type) and is_basemodel_subclass(shape)
        trace: dict[str, Any] = {"kwargs": {"method": method, "strict": strict},
                                 "schema": schema}
        llm: Runnable[LanguageModelInput, Any]
        parser: Runnable[Any, Any]
        if method == "function_calling":
            tool_name = convert_to_openai_tool(shape)["function"]["name"]
            llm = self.bind_tools([shape], tool_choice=tool_name, strict=strict,
                                  ls_structured_output_format=trace)
            parser = (PydanticToolsParser(tools=[shape], first_tool_only=True) if is_model
                      else JsonOutputKeyToolsParser(key_name=tool_name, first_tool_only=True))
        elif method in ("json_schema", "json_mode"):
            if method == "json_schema":
                json_schema = convert_to_json_schema(shape)
                spec: dict[str, Any] = {"name": json_schema.get("title") or "output",
                                        "schema": json_schema}
                if strict is not None:
                    spec["strict"] = strict
                response_format: dict[str, Any] = {"type": "json_schema", "json_schema": spec}
            else:
                response_format = {"type": "json_object"}
                trace["kwargs"] = {"method": method}
            options: dict[str, Any] = {"response_format": response_format}
            if schema is not None:
                options["ls_structured_output_format"] = trace
            llm = self.bind(**options)
            parser = (PydanticOutputParser(pydantic_object=shape) if is_model
                      else JsonOutputParser())
        else:
            raise ValueError(f"method must be 'function_calling', 'json_schema' or 'json_mode', "
                             f"got {method!r}")
        return with_raw(llm, parser) if include_raw else llm | parser

"""``ChatSalesforce``: the Salesforce Models API chat endpoint as a LangChain chat model."""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable, Iterator, Sequence
from typing import TYPE_CHECKING, Any, Literal

from langchain_core.callbacks import AsyncCallbackManagerForLLMRun, CallbackManagerForLLMRun
from langchain_core.language_models import BaseChatModel, LanguageModelInput
from langchain_core.messages import AIMessage, BaseMessage
from langchain_core.outputs import ChatGenerationChunk, ChatResult
from langchain_core.runnables import Runnable
from pydantic import BaseModel, ConfigDict

from ._common import tool_options
from ._salesforce import SalesforceFields, chat_call, chat_chunk, chat_result, protocol_of

if TYPE_CHECKING:
    from langchain_core.tools import BaseTool

__all__ = [
    "ChatSalesforce",
]


class ChatSalesforce(SalesforceFields, BaseChatModel):
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
    with text content (text content blocks are joined with newlines); AI messages with tool
    calls and tool messages are written out as text (see below). Images, audio, files and
    function messages raise an ``InvalidInputError`` before anything is sent.

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

    Tools and structured output. The Models API has no tool or response-format fields, so they
    are prompted (``sfmodels_core.tool_protocol``): the tools' JSON Schemas (or the reply's
    schema) and a strict JSON reply format go in a system message, earlier tool calls and tool
    results are written into the history as text, and the reply is read back into real
    ``tool_calls`` (with ids) or a final answer.

    - ``bind_tools(tools, tool_choice=...)``: ``"auto"`` (default), ``"any"``/``"required"``, a
      tool name (or ``True`` with one tool) or ``"none"``.
    - ``with_structured_output(schema, method=...)``: ``"json_schema"`` (default: the schema is
      the reply format), ``"function_calling"`` (one forced tool built from the schema) or
      ``"json_mode"`` (any JSON object; describe it in the prompt); ``include_raw=True``.
    - Arguments and objects are validated against their schema. A reply that cannot be read or
      does not validate is sent back once with the problems listed; if the second reply fails
      too, the calls come back as ``invalid_tool_calls`` with the error (structured output
      raises an ``OutputParserException``), never as a guessed call. The answer's
      ``response_metadata`` then also holds ``generation_ids`` (every request made, in order),
      ``repaired`` and, when problems remain, ``protocol_errors``; usage is summed over the
      requests.
    - A model may still answer in text where a call was allowed but not required: that is a
      final answer. The protocol is only as good as the model's instruction following; the
      larger models follow it best.
    - ``bind_tools(..., parallel_tool_calls=False)`` asks for one call per reply; a reply with
      several is repaired like any other problem.
    - Refused before sending: ``tools`` together with ``response_format`` in one call,
      ``tool_choice`` without tools, a ``tool_choice`` naming no bound tool, and options the
      API cannot honour (``top_k``, ``seed``, ...).
    """

    model_config = ConfigDict(populate_by_name=True, arbitrary_types_allowed=True,
                              extra="forbid", protected_namespaces=())

    streaming: bool = False
    """Use the streaming path by default (one chunk: the API does not stream)."""

    @property
    def _llm_type(self) -> str:
        return "salesforce-chat"

    # -- calls: the sync and async paths differ only in the client method they await
    def _generate(self, messages: list[BaseMessage], stop: list[str] | None = None,
                  run_manager: CallbackManagerForLLMRun | None = None,
                  **kwargs: Any) -> ChatResult:
        call = chat_call(self, messages, stop, kwargs)
        return chat_result(call.run(self.client.chat), call.model)

    async def _agenerate(self, messages: list[BaseMessage], stop: list[str] | None = None,
                         run_manager: AsyncCallbackManagerForLLMRun | None = None,
                         **kwargs: Any) -> ChatResult:
        call = chat_call(self, messages, stop, kwargs)
        return chat_result(await call.arun(self.client.achat), call.model)

    def _stream(self, messages: list[BaseMessage], stop: list[str] | None = None,
                run_manager: CallbackManagerForLLMRun | None = None,
                **kwargs: Any) -> Iterator[ChatGenerationChunk]:
        call = chat_call(self, messages, stop, kwargs)
        yield chat_chunk(call.run(self.client.chat), call.model)

    async def _astream(self, messages: list[BaseMessage], stop: list[str] | None = None,
                       run_manager: AsyncCallbackManagerForLLMRun | None = None,
                       **kwargs: Any) -> AsyncIterator[ChatGenerationChunk]:
        call = chat_call(self, messages, stop, kwargs)
        yield chat_chunk(await call.arun(self.client.achat), call.model)

    # -- tools and structured output
    def bind_tools(
        self,
        tools: Sequence[dict[str, Any] | type | Callable[..., Any] | BaseTool],
        *,
        tool_choice: str | dict[str, Any] | bool | None = None,
        strict: bool | None = None,
        **kwargs: Any,
    ) -> Runnable[LanguageModelInput, AIMessage]:
        """Bind tools, stated to the model through the prompted tool protocol.

        ``tool_choice``: ``"auto"`` (default: call when useful), ``"any"``/``"required"`` (call
        at least one), a tool name or ``True`` with one tool (call that one), ``"none"`` (answer
        without calling). ``strict=True`` also refuses arguments the schemas do not list.
        ``parallel_tool_calls=False`` asks for at most one call per reply. Unknown tool names and
        nameless tools are refused here, not at the first call.
        """
        options = tool_options(tools, tool_choice, strict, kwargs)
        protocol_of(options)  # refuses bad tools and choices now, not at the first call
        return super().bind(**options)

    def with_structured_output(
        self,
        schema: dict[str, Any] | type | None = None,
        *,
        method: Literal["function_calling", "json_schema", "json_mode"] = "json_schema",
        include_raw: bool = False,
        strict: bool | None = None,
        **kwargs: Any,
    ) -> Runnable[LanguageModelInput, dict[str, Any] | BaseModel]:
        """Answers shaped by ``schema`` (a Pydantic class, a TypedDict, a JSON Schema or an
        OpenAI tool dict), validated, with one repair round.

        ``method``: ``"json_schema"`` (default) asks for one JSON object valid for the schema;
        ``"function_calling"`` forces a call of one tool built from the schema;
        ``"json_mode"`` asks for any JSON object (say in the prompt what it should hold; a
        Pydantic class is still validated when the answer is read). ``strict=True`` also
        refuses properties the schema does not list. A reply still unusable after the repair
        round raises ``OutputParserException``; ``include_raw=True`` returns
        ``{"raw": AIMessage, "parsed": ..., "parsing_error": ...}`` instead of raising.
        """
        from ._structured import structured_output_runnable

        if kwargs:
            raise ValueError(f"Unexpected arguments: {', '.join(sorted(kwargs))}")
        return structured_output_runnable(self, schema, method=method, include_raw=include_raw,
                                          strict=strict)

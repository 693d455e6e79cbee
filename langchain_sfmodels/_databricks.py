"""Pure converters between LangChain and Databricks model serving, for ``ChatDatabricks`` and
``DatabricksLLM``: request parameters and messages in, results and stream chunks out.

Streams are folded by the core's :class:`~sfmodels_core.databricks.StreamAccumulator`;
:class:`DatabricksStream` only turns what each piece added into LangChain chunks.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from typing import TYPE_CHECKING, Any

from langchain_core.language_models import LangSmithParams
from langchain_core.messages import AIMessage, AIMessageChunk, BaseMessage
from langchain_core.messages.tool import tool_call_chunk
from langchain_core.outputs import (
    ChatGeneration,
    ChatGenerationChunk,
    ChatResult,
    Generation,
    GenerationChunk,
)
from pydantic import Field, field_validator

from sfmodels_core.databricks import StreamAccumulator
from sfmodels_core.errors import InvalidInputError
from sfmodels_core.integration.fields import DatabricksClientFields

from ._common import (
    DATABRICKS,
    ModelBasics,
    langsmith_params,
    llm_output,
    usage_dict,
    usage_metadata,
)

if TYPE_CHECKING:
    from sfmodels_core.databricks import ChatCompletion, ChatCompletionChunk, Completion, ToolCall

#: Call options that are about the call, not the request body.
_NOT_BODY = ("stream", "stream_usage", "model", "endpoint")


def check_extra_params(value: dict[str, Any] | None) -> dict[str, Any]:
    """``extra_params`` go into every body: refused at construction if they set a key the
    request builds itself."""
    from sfmodels_core.databricks._wire import RESERVED_KEYS

    value = {} if value is None else value
    reserved = [key for key in RESERVED_KEYS if key in value]
    if reserved:
        raise ValueError(f"extra_params cannot set {', '.join(reserved)}: the request sets "
                         "it itself")
    return value


class DatabricksFields(ModelBasics, DatabricksClientFields):
    """The settings ``ChatDatabricks`` and ``DatabricksLLM`` share (databricks-langchain's
    names)."""

    model: str = Field(alias="endpoint")
    """Name of the serving endpoint; alias ``endpoint``."""
    temperature: float | None = None
    """Sampling temperature (0 to 2)."""
    max_tokens: int | None = None
    """Most tokens to generate."""
    stop: list[str] | None = None
    """Stop sequences."""
    n: int = Field(default=1, ge=1)
    """Number of choices to generate (each becomes a generation of the result)."""
    extra_params: dict[str, Any] = Field(default_factory=dict)
    """Merged into every request body, e.g. ``{"top_p": 0.9}``."""
    streaming: bool = False
    """Use the streaming API for ``invoke`` too."""

    @field_validator("extra_params", mode="before")
    @classmethod
    def _check_extra_params(cls, value: Any) -> Any:
        return check_extra_params(value)

    @property
    def endpoint(self) -> str:
        """The serving endpoint (same as ``model``)."""
        return self.model

    @property
    def _identifying_params(self) -> dict[str, Any]:
        return {"model": self.model, "temperature": self.temperature,
                "max_tokens": self.max_tokens, "stop": self.stop, "n": self.n,
                "extra_params": self.extra_params}

    def _get_ls_params(self, stop: list[str] | None = None, **kwargs: Any) -> LangSmithParams:
        return langsmith_params(DATABRICKS, self._LS_MODEL_TYPE, self.model,
                                stop if stop is not None else self.stop, kwargs,
                                temperature=self.temperature, max_tokens=self.max_tokens)


def generation_params(owner: Any, stop: list[str] | None,
                      kwargs: Mapping[str, Any]) -> tuple[str, dict[str, Any]]:
    """(endpoint, request params) of one call: ``extra_params``, then the instance's settings,
    then the call's options, each overriding the one before."""
    endpoint = kwargs.get("model") or kwargs.get("endpoint") or owner.model
    params: dict[str, Any] = dict(owner.extra_params)
    if getattr(owner, "custom_inputs", None) is not None:
        params["custom_inputs"] = owner.custom_inputs
    for name in ("temperature", "max_tokens"):
        if getattr(owner, name) is not None:
            params[name] = getattr(owner, name)
    if owner.n != 1:
        params["n"] = owner.n
    stop = stop if stop is not None else owner.stop
    if stop:
        params["stop"] = list(stop)
    params.update({k: v for k, v in kwargs.items() if k not in _NOT_BODY})
    return endpoint, params


def single_answer(params: Mapping[str, Any]) -> None:
    if params.get("n", 1) != 1:
        raise InvalidInputError("n > 1 cannot be streamed: a stream carries one answer; call "
                                "invoke (with streaming=False) to get several choices")


# -- chat -----------------------------------------------------------------------------------------
def to_databricks_messages(messages: Sequence[BaseMessage]) -> list[dict[str, Any]]:
    """OpenAI-style chat messages (text, images, tool calls and tool results)."""
    from langchain_core.messages import convert_to_openai_messages

    # A past AI turn in block form (tool calls, reasoning, v1 content) goes back as its text and
    # its tool_calls: the API has no slot for the other blocks.
    prepared = [m.model_copy(update={"content": m.text})
                if isinstance(m, AIMessage) and isinstance(m.content, list) else m
                for m in messages]
    out = convert_to_openai_messages(prepared, text_format="string")
    for message in out:
        # An assistant turn that only calls tools has no text: send null, which every endpoint
        # accepts, rather than "", which some reject.
        if message.get("tool_calls") and message.get("content") in ("", []):
            message["content"] = None
    return out


def _tool_calls(calls: Iterable[ToolCall]) -> tuple[list[Any], list[Any]]:
    from langchain_core.exceptions import OutputParserException
    from langchain_core.output_parsers.openai_tools import make_invalid_tool_call, parse_tool_call

    valid: list[Any] = []
    invalid: list[Any] = []
    for call in calls:
        raw = {"id": call.id, "type": call.type,
               "function": {"name": call.name, "arguments": call.arguments}}
        try:
            parsed = parse_tool_call(raw, return_id=True)
        except (OutputParserException, TypeError) as exc:  # kept, as an invalid tool call
            invalid.append(make_invalid_tool_call(raw, str(exc)))
        else:
            if parsed is not None:
                valid.append(parsed)
    return valid, invalid


def metadata(model: str, *, ident: str | None, served: str | None,
             finish_reason: str | None, custom_outputs: Any = None) -> dict[str, Any]:
    """``response_metadata``; an agent endpoint's ``custom_outputs`` when it sent some."""
    out = {"id": ident, "model_name": model, "served_model": served,
           "finish_reason": finish_reason, "model_provider": DATABRICKS}
    if custom_outputs is not None:
        out["custom_outputs"] = custom_outputs
    return out


def content(text: str, reasoning: str | None) -> str | list[str | dict[str, Any]]:
    """Message content: the text, after a reasoning block when the model reasoned (``.text``
    stays the answer alone)."""
    if not reasoning:
        return text
    return [{"type": "reasoning", "reasoning": reasoning, "index": 0},
            {"type": "text", "text": text, "index": 1}]


def chat_result(completion: ChatCompletion, model: str) -> ChatResult:
    """One generation per choice; the provider's response id is the message id."""
    generations = []
    usage = usage_metadata(completion.usage)
    for choice in completion.choices:
        valid, invalid = _tool_calls(choice.message.tool_calls)
        message = AIMessage(
            content=content(choice.message.content or "", choice.message.reasoning),
            id=completion.id,
            tool_calls=valid, invalid_tool_calls=invalid,
            response_metadata=metadata(model, ident=completion.id, served=completion.model,
                                       finish_reason=choice.finish_reason,
                                       custom_outputs=completion.custom_outputs),
            # Usage is per request: put it on the first choice only so sums stay right.
            usage_metadata=usage if choice is completion.choices[0] else None)
        generations.append(ChatGeneration(message=message,
                                          generation_info={"finish_reason": choice.finish_reason}))
    return ChatResult(generations=generations,
                      llm_output=llm_output(model, completion.model, completion.usage,
                                            completion.id))


class DatabricksStream:
    """Turns the core's chat chunks into LangChain chunks; one instance per stream.

    Text and tool-call pieces are passed on as they come. The response metadata and the usage go
    on one last chunk (``chunk_position="last"``), so they are counted once when chunks are
    added up.
    """

    def __init__(self, model: str, *, stream_usage: bool) -> None:
        self.model = model
        self.stream_usage = stream_usage
        self.state = StreamAccumulator()
        self.blocks = False

    def chunk(self, piece: ChatCompletionChunk) -> ChatGenerationChunk | None:
        delta = self.state.add(piece)
        if not delta:
            return None
        # Once the model has reasoned, pieces are blocks (reasoning at index 0, text at 1), so
        # that adding the chunks up keeps the two apart.
        self.blocks = self.blocks or bool(delta.reasoning)
        parts: list[str | dict[str, Any]] = []
        if delta.reasoning:
            parts.append({"type": "reasoning", "reasoning": delta.reasoning, "index": 0})
        if delta.text:
            parts.append({"type": "text", "text": delta.text, "index": 1})
        return ChatGenerationChunk(message=AIMessageChunk(
            content=parts if self.blocks else delta.text, id=self.state.id, tool_call_chunks=[
                tool_call_chunk(name=p.name, args=p.arguments, id=p.id, index=p.position)
                for p in delta.tool_calls]))

    def last(self) -> ChatGenerationChunk:
        state = self.state
        usage = usage_metadata(state.usage) if self.stream_usage else None
        return ChatGenerationChunk(message=AIMessageChunk(
            content=[] if self.blocks else "", id=state.id, chunk_position="last",
            usage_metadata=usage,
            response_metadata=metadata(self.model, ident=state.id, served=state.model,
                                       finish_reason=state.finish_reason,
                                       custom_outputs=state.custom_outputs)),
            generation_info={"finish_reason": state.finish_reason})


# -- completions ----------------------------------------------------------------------------------
def completion_generations(completion: Completion, model: str) -> list[Generation]:
    return [Generation(text=choice.text, generation_info={
        "finish_reason": choice.finish_reason, "id": completion.id, "model_name": model,
        "served_model": completion.model, "model_provider": DATABRICKS})
        for choice in completion.choices]


class CompletionStream:
    """The core's completion pieces as LangChain chunks; metadata and usage on a last chunk."""

    def __init__(self, model: str) -> None:
        self.model = model
        self.state = StreamAccumulator()

    def chunk(self, piece: Completion) -> GenerationChunk | None:
        delta = self.state.add(piece)
        return GenerationChunk(text=delta.text) if delta.text else None

    def last(self) -> GenerationChunk:
        state = self.state
        return GenerationChunk(text="", generation_info={
            "finish_reason": state.finish_reason, "id": state.id, "model_name": self.model,
            "served_model": state.model, "model_provider": DATABRICKS,
            "token_usage": usage_dict(state.usage)})

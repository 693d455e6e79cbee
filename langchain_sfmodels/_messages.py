"""Pure converters between LangChain messages and the core's request dicts and results.

Shared by the sync and async paths of every class: the classes only add I/O around them.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from typing import TYPE_CHECKING, Any, Literal

from langchain_core.language_models import LangSmithParams
from langchain_core.messages import (
    AIMessage,
    AIMessageChunk,
    BaseMessage,
    ChatMessage,
    HumanMessage,
    SystemMessage,
    ToolMessage,
)
from langchain_core.messages.ai import InputTokenDetails, UsageMetadata
from langchain_core.messages.tool import ToolCallChunk, tool_call_chunk
from langchain_core.outputs import ChatGeneration, ChatGenerationChunk, ChatResult

if TYPE_CHECKING:
    from sfmodels_core.databricks import ChatCompletion, ChatCompletionChunk
    from sfmodels_core.salesforce import ChatResult as SalesforceChatResult
    from sfmodels_core.salesforce import Generation as SalesforceGeneration
    from sfmodels_core.types import Usage

SALESFORCE = "salesforce"
DATABRICKS = "databricks"


def langsmith_params(provider: str, model_type: Literal["chat", "llm"], model: str,
                     stop: Sequence[str] | None,
                     kwargs: Mapping[str, Any], *, temperature: Any = None,
                     max_tokens: Any = None) -> LangSmithParams:
    """What LangSmith traces show of a call: a per-call ``model``/``endpoint`` wins, and
    ``temperature``/``max_tokens`` only where they are really sent (Databricks)."""
    params = LangSmithParams(ls_provider=provider, ls_model_type=model_type,
                             ls_model_name=kwargs.get("model") or kwargs.get("endpoint") or model)
    temperature = kwargs.get("temperature", temperature)
    if isinstance(temperature, (int, float)) and provider == DATABRICKS:
        params["ls_temperature"] = temperature
    max_tokens = kwargs.get("max_tokens", max_tokens)
    if isinstance(max_tokens, int) and provider == DATABRICKS:
        params["ls_max_tokens"] = max_tokens
    if stop:
        params["ls_stop"] = list(stop)
    return params

SALESFORCE_ACCEPTS = (
    "The Salesforce Models API accepts system, human, AI and tool messages whose content is text "
    "(a string or text content blocks)")
#: Blocks that carry a model's own reasoning: there is no field for them in the Models API, and
#: like other providers we leave them out when a past AI turn is sent back.
_REASONING_BLOCKS = ("reasoning", "thinking", "redacted_thinking")
_SALESFORCE_ROLES = {"system": "system", "user": "user", "human": "user",
                     "assistant": "assistant", "ai": "assistant"}


def _invalid(message: str) -> Exception:
    from sfmodels_core.errors import InvalidInputError

    return InvalidInputError(message)


# -- usage ----------------------------------------------------------------------------------------
def usage_metadata(usage: Usage | None) -> UsageMetadata | None:
    """LangChain usage from the core's token counts (cache counts when the service gives them)."""
    if usage is None:
        return None
    out = UsageMetadata(input_tokens=usage.prompt_tokens, output_tokens=usage.completion_tokens,
                        total_tokens=usage.total_tokens)
    extra = usage.model_extra or {}
    details = InputTokenDetails()
    for wire, key in (("cache_read_input_tokens", "cache_read"),
                      ("cache_creation_input_tokens", "cache_creation")):
        if isinstance(extra.get(wire), int):
            details[key] = extra[wire]  # type: ignore[literal-required]
    if details:
        out["input_token_details"] = details
    return out


def usage_dict(usage: Usage | None) -> dict[str, int] | None:
    if usage is None:
        return None
    return {"prompt_tokens": usage.prompt_tokens, "completion_tokens": usage.completion_tokens,
            "total_tokens": usage.total_tokens}


def combine_llm_outputs(outputs: Sequence[Mapping[str, Any] | None]) -> dict[str, Any]:
    """One ``llm_output`` for a batch: token usage summed, the rest from the first output."""
    combined: dict[str, Any] = {}
    usage: dict[str, int] | None = None
    for output in outputs:
        if not output:
            continue
        for key, value in output.items():
            combined.setdefault(key, value)
        part = output.get("token_usage")
        if isinstance(part, Mapping):
            usage = dict(part) if usage is None else {
                key: usage.get(key, 0) + value for key, value in part.items()}
    combined["token_usage"] = usage
    combined.pop("id", None)  # one response id does not describe a batch
    return combined


# -- Salesforce -----------------------------------------------------------------------------------
def _salesforce_text(content: str | list[str | dict[str, Any]], index: int, kind: str) -> str:
    if isinstance(content, str):
        return content
    parts: list[str] = []
    for block in content:
        if isinstance(block, str):
            parts.append(block)
            continue
        block_type = block.get("type")
        if block_type == "text" and isinstance(block.get("text"), str):
            parts.append(block["text"])
        elif block_type in _REASONING_BLOCKS and kind == "ai":
            continue
        else:
            raise _invalid(
                f"messages[{index}] ({kind}) has a {block_type!r} content block. "
                f"{SALESFORCE_ACCEPTS}; images, audio and files are not supported.")
    return "\n".join(parts)


def _salesforce_role(message: BaseMessage) -> str | None:
    """The API role of a message (chunks included: a streamed answer may join the history)."""
    if isinstance(message, ChatMessage):
        return _SALESFORCE_ROLES.get(message.role)
    for kind, role in ((SystemMessage, "system"), (HumanMessage, "user"), (AIMessage, "assistant"),
                       (ToolMessage, "tool")):
        if isinstance(message, kind):
            return role
    return None


def to_salesforce_history(messages: Sequence[BaseMessage]) -> list[dict[str, Any]]:
    """The conversation in the tool protocol's neutral shape, or a clear error.

    ``{"role": "system"|"user"|"assistant", "content": str}``; an AI message with tool calls also
    carries ``tool_calls: [{"id", "name", "arguments"}]``, and a tool message becomes
    ``{"role": "tool", "tool_call_id", "name", "content"}`` (a failed tool's result says so).
    ``sfmodels_core.tool_protocol.render_history`` turns this into the API's three roles.
    """
    out: list[dict[str, Any]] = []
    for i, message in enumerate(messages):
        role = _salesforce_role(message)
        if role is None:
            raise _invalid(
                f"messages[{i}] is a {type(message).__name__}"
                + (f" with role {message.role!r}" if isinstance(message, ChatMessage) else "")
                + f". {SALESFORCE_ACCEPTS}; function messages and other roles are not "
                "supported.")
        if isinstance(message, AIMessage) and message.tool_calls:
            text = _salesforce_text(_without_tool_blocks(message.content), i, "ai")
            out.append({"role": "assistant", "content": text, "tool_calls": [
                {"id": call.get("id"), "name": call["name"], "arguments": call["args"]}
                for call in message.tool_calls]})
        elif isinstance(message, ToolMessage):
            text = _salesforce_text(message.content, i, "tool")
            if message.status == "error" and not text.lower().startswith("error"):
                text = f"Error: {text}"
            out.append({"role": "tool", "tool_call_id": message.tool_call_id,
                        "name": message.name, "content": text})
        else:
            kind = "ai" if role == "assistant" else message.type
            out.append({"role": role, "content": _salesforce_text(message.content, i, kind)})
    return out


def _without_tool_blocks(content: str | list[str | dict[str, Any]]
                         ) -> str | list[str | dict[str, Any]]:
    """An AI turn's content without the blocks that repeat its tool calls (``tool_use``,
    ``tool_call``, ...): the calls travel in ``tool_calls``."""
    if isinstance(content, str):
        return content
    return [block for block in content if isinstance(block, str) or block.get("type") not in (
        "tool_use", "tool_call", "function_call", "server_tool_call")]


def to_salesforce_messages(messages: Sequence[BaseMessage]) -> list[dict[str, str]]:
    """``[{"role": "system"|"user"|"assistant", "content": str}]`` or a clear error.

    Tool calls and tool results in the history (a tool loop continued without tools bound) are
    written out as text the way the tool protocol writes them, with no instructions added.
    """
    history = to_salesforce_history(messages)
    if not any(m["role"] == "tool" or "tool_calls" in m for m in history):
        return [{"role": m["role"], "content": m["content"]} for m in history]
    from sfmodels_core.tool_protocol import render_history

    return render_history(history, "")


def _content_quality(generation: SalesforceGeneration) -> dict[str, Any] | None:
    quality = generation.content_quality
    return None if quality is None else quality.model_dump()


def salesforce_metadata(result: SalesforceChatResult, model: str,
                        generation: SalesforceGeneration | None) -> dict[str, Any]:
    """What every Salesforce answer carries: ``generation_id`` is what feedback refers to."""
    metadata: dict[str, Any] = {
        "id": result.id,
        "generation_id": generation.id if generation else None,
        "model_name": model,
        "served_model": result.model,
        "finish_reason": generation.finish_reason if generation else None,
        "content_quality": _content_quality(generation) if generation else None,
        "model_provider": SALESFORCE,
    }
    return metadata


def salesforce_text(result: SalesforceChatResult, stop: Sequence[str] | None) -> tuple[
        str, SalesforceGeneration | None]:
    """The first generation's text, cut at the first stop sequence (enforced on the client)."""
    from sfmodels_core.adapters import apply_stop

    generation = result.generations[0] if result.generations else None
    text, _ = apply_stop(generation.text if generation else "", stop)
    return text, generation


def salesforce_chat_result(result: SalesforceChatResult, model: str,
                           stop: Sequence[str] | None) -> ChatResult:
    text, generation = salesforce_text(result, stop)
    metadata = salesforce_metadata(result, model, generation)
    message = AIMessage(content=text, id=result.id or None, response_metadata=metadata,
                        usage_metadata=usage_metadata(result.usage))
    return ChatResult(generations=[ChatGeneration(message=message)],
                      llm_output={"model_name": model, "served_model": result.model,
                                  "token_usage": usage_dict(result.usage), "id": result.id})


def salesforce_chunk(result: SalesforceChatResult, model: str,
                     stop: Sequence[str] | None) -> ChatGenerationChunk:
    """The whole answer as the one and last chunk of a stream (the Models API does not stream)."""
    text, generation = salesforce_text(result, stop)
    message = AIMessageChunk(content=text, id=result.id or None,
                             response_metadata=salesforce_metadata(result, model, generation),
                             usage_metadata=usage_metadata(result.usage), chunk_position="last")
    return ChatGenerationChunk(message=message)


# -- Databricks -----------------------------------------------------------------------------------
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


def _tool_calls(message: Mapping[str, Any]) -> tuple[list[Any], list[Any]]:
    from langchain_core.exceptions import OutputParserException
    from langchain_core.output_parsers.openai_tools import make_invalid_tool_call, parse_tool_call

    valid: list[Any] = []
    invalid: list[Any] = []
    for raw in message.get("tool_calls") or []:
        try:
            call = parse_tool_call(raw, return_id=True)
        except (OutputParserException, TypeError) as exc:  # kept, as an invalid tool call
            invalid.append(make_invalid_tool_call(raw, str(exc)))
        else:
            if call is not None:
                valid.append(call)
    return valid, invalid


def _wire_tool_calls(calls: Iterable[Any]) -> list[dict[str, Any]]:
    return [{"id": call.id, "type": call.type,
             "function": {"name": call.name, "arguments": call.arguments}} for call in calls]


def databricks_metadata(model: str, *, ident: str | None, served: str | None,
                        finish_reason: str | None) -> dict[str, Any]:
    return {"id": ident, "model_name": model, "served_model": served,
            "finish_reason": finish_reason, "model_provider": DATABRICKS}


def databricks_chat_result(completion: ChatCompletion, model: str) -> ChatResult:
    """One generation per choice; the provider's response id is the message id."""
    generations = []
    usage = usage_metadata(completion.usage)
    for choice in completion.choices:
        valid, invalid = _tool_calls({"tool_calls": _wire_tool_calls(choice.message.tool_calls)})
        message = AIMessage(
            content=choice.message.content or "", id=completion.id,
            tool_calls=valid, invalid_tool_calls=invalid,
            additional_kwargs=reasoning(choice.message.reasoning),
            response_metadata={**databricks_metadata(
                model, ident=completion.id, served=completion.model,
                finish_reason=choice.finish_reason), **custom_outputs(completion)},
            # Usage is per request: put it on the first choice only so sums stay right.
            usage_metadata=usage if choice is completion.choices[0] else None)
        generations.append(ChatGeneration(message=message,
                                          generation_info={"finish_reason": choice.finish_reason}))
    llm_output = {"model_name": model, "served_model": completion.model, "id": completion.id,
                  "token_usage": usage_dict(completion.usage)}
    return ChatResult(generations=generations, llm_output=llm_output)


def reasoning(items: list[dict[str, Any]]) -> dict[str, Any]:
    """``{"reasoning": [items]}`` when the model sent reasoning, else {}."""
    return {"reasoning": list(items)} if items else {}


def custom_outputs(result: ChatCompletion | ChatCompletionChunk | None) -> dict[str, Any]:
    """``{"custom_outputs": ...}`` when an agent endpoint returned them, else {}."""
    value = getattr(result, "custom_outputs", None)
    return {} if value is None else {"custom_outputs": value}


class DatabricksStream:
    """Turns the core's chat chunks into LangChain chunks; one instance per stream.

    Text and tool-call pieces are passed on as they come. The response metadata and the usage go
    on one last chunk (``chunk_position="last"``), so they are counted once when chunks are
    added up: the core already reports the stream's usage once, on its final chunk.
    """

    def __init__(self, model: str, *, stream_usage: bool) -> None:
        self.model = model
        self.stream_usage = stream_usage
        self.ident: str | None = None
        self.served: str | None = None
        self.finish_reason: str | None = None
        self.usage: Usage | None = None
        self.custom: ChatCompletionChunk | None = None  # the piece with custom_outputs

    def chunk(self, piece: ChatCompletionChunk) -> ChatGenerationChunk | None:
        self.custom = piece if piece.custom_outputs is not None else self.custom
        self.ident = piece.id or self.ident
        self.served = piece.model or self.served
        self.usage = piece.usage or self.usage
        text = ""
        tool_chunks: list[ToolCallChunk] = []
        thoughts: list[dict[str, Any]] = []
        for choice in piece.choices:
            if choice.index != 0:
                continue
            text += choice.content or ""
            thoughts.extend(choice.reasoning)
            self.finish_reason = choice.finish_reason or self.finish_reason
            tool_chunks.extend(tool_call_chunk(name=d.name, args=d.arguments, id=d.id,
                                               index=d.index) for d in choice.tool_calls)
        if not text and not tool_chunks and not thoughts:
            return None
        return ChatGenerationChunk(message=AIMessageChunk(
            content=text, id=self.ident, tool_call_chunks=tool_chunks,
            additional_kwargs=reasoning(thoughts)))

    def last(self) -> ChatGenerationChunk:
        usage = usage_metadata(self.usage) if self.stream_usage else None
        return ChatGenerationChunk(message=AIMessageChunk(
            content="", id=self.ident, chunk_position="last", usage_metadata=usage,
            response_metadata={**databricks_metadata(
                self.model, ident=self.ident, served=self.served,
                finish_reason=self.finish_reason), **custom_outputs(self.custom)}),
            generation_info={"finish_reason": self.finish_reason})

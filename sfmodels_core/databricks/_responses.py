"""The OpenAI Responses API as Databricks serves it: request building and response parsing.

``POST {host}/serving-endpoints/responses`` with ``"model": "{endpoint}"`` answers endpoints that
serve the Responses API (the GPT-5 family; Codex models serve nothing else) and agent endpoints
written against it. The functions here take the same chat messages and parameter names as
:func:`._wire.chat_request` and give the same :class:`ChatCompletion` and
:class:`ChatCompletionChunk` results, so a caller switches APIs without changing anything else:

- messages become input items (assistant tool calls become ``function_call`` items, tool
  messages ``function_call_output`` items; reasoning items kept on an assistant message go back
  as they came); a dict that already is a Responses item (it has a ``type`` and no ``role``)
  is sent as it is;
- ``max_tokens`` becomes ``max_output_tokens``, chat-format ``tools``/``tool_choice`` and
  ``response_format`` become their Responses forms; ``stop`` and ``n`` > 1 do not exist in this
  API and are refused before sending; any other keyword (``reasoning``, ``custom_inputs``...)
  goes into the body as it is;
- output ``message`` items give the text, ``function_call`` items the tool calls, ``reasoning``
  items ``AssistantMessage.reasoning``; usage maps ``input_tokens``/``output_tokens`` to
  ``prompt_tokens``/``completion_tokens`` (details such as ``reasoning_tokens`` kept as extra
  fields); an agent's ``custom_outputs`` are kept as they came.

Pure functions and a stream state machine; :class:`~sfmodels_core.databricks.DatabricksClient`
adds the I/O (``respond``, ``stream_respond`` and their async twins).
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import pydantic_core

from .._validation import require_name
from ..errors import APIStatusError, InvalidInputError
from ..tools import check_tool_choice, check_tools, function_names, function_of
from ..types import Usage
from ._stream import StreamAccumulator
from ._wire import reasoning_text, stream_error
from .models import (
    AssistantMessage,
    ChatChoice,
    ChatCompletion,
    ChatCompletionChunk,
    ChoiceDelta,
    ToolCall,
    ToolCallDelta,
)

RESPONSES_PATH = "/serving-endpoints/responses"
ROLES = ("system", "developer", "user", "assistant", "tool")


# -- requests -------------------------------------------------------------------------------------
def _parts(content: Any, text_type: str, where: str) -> Any:
    """Message content in Responses form: a string as it is, text parts typed ``text_type``."""
    if isinstance(content, str):
        return content
    if not isinstance(content, list):
        raise InvalidInputError(f"{where}: content must be a string or a list of parts")
    parts = []
    for part in content:
        if isinstance(part, str):
            parts.append({"type": text_type, "text": part})
        elif isinstance(part, dict) and part.get("type") in ("text", None) and "text" in part:
            if not isinstance(part["text"], str):
                raise InvalidInputError(f"{where}: a text part's text must be a string")
            parts.append({"type": text_type, "text": part["text"]})
        elif isinstance(part, dict) and isinstance(part.get("type"), str):
            parts.append(part)  # already a Responses part (input_image, output_text...)
        else:
            raise InvalidInputError(f"{where}: content parts must be strings or typed dicts")
    return parts


def _text(content: Any) -> str:
    if content is None or isinstance(content, str):
        return content or ""
    if isinstance(content, list):
        return "".join(p if isinstance(p, str) else str(p.get("text", ""))
                       for p in content if isinstance(p, (str, dict)))
    raise InvalidInputError("tool message content must be a string or a list of text parts")


def _call_item(call: Any, where: str) -> dict[str, Any]:
    if not isinstance(call, dict):
        raise InvalidInputError(f"{where}: a tool call must be a dict")
    function: dict[str, Any] = call["function"] if isinstance(call.get("function"), dict) \
        else call
    name, call_id = function.get("name"), call.get("id") or call.get("call_id")
    if not isinstance(name, str) or not name or not isinstance(call_id, str) or not call_id:
        raise InvalidInputError(f"{where}: a tool call needs an id and a function name")
    arguments = function.get("arguments", "")
    if not isinstance(arguments, str):
        arguments = pydantic_core.to_json(arguments).decode()
    return {"type": "function_call", "call_id": call_id, "name": name, "arguments": arguments}


def input_items(messages: Any) -> list[dict[str, Any]]:
    """Chat messages (``{"role", "content"}`` dicts) as Responses input items."""
    if not isinstance(messages, (list, tuple)) or not messages:
        raise InvalidInputError("messages must be a non-empty list")
    items: list[dict[str, Any]] = []
    for i, message in enumerate(messages):
        where = f"messages[{i}]"
        if hasattr(message, "model_dump"):
            message = message.model_dump(exclude_none=True)
        if not isinstance(message, dict):
            raise InvalidInputError(f"{where} must be a dict with 'role' and 'content'")
        role = message.get("role")
        if role is None and isinstance(message.get("type"), str):
            items.append(dict(message))  # a Responses item already
            continue
        if role not in ROLES:
            raise InvalidInputError(f"{where}: role must be one of {', '.join(ROLES)}, "
                                    f"got {role!r}")
        content = message.get("content")
        if role == "tool":
            call_id = message.get("tool_call_id")
            if not isinstance(call_id, str) or not call_id:
                raise InvalidInputError(f"{where}: a tool message needs its tool_call_id")
            items.append({"type": "function_call_output", "call_id": call_id,
                          "output": _text(content)})
        elif role == "assistant":
            for item in message.get("reasoning") or []:
                if not isinstance(item, dict):
                    raise InvalidInputError(f"{where}: reasoning items must be dicts")
                items.append(dict(item))
            if content:
                items.append({"type": "message", "role": "assistant",
                              "content": _parts(content, "output_text", where)})
            items.extend(_call_item(call, where) for call in message.get("tool_calls") or [])
        else:
            if content is None:
                raise InvalidInputError(f"{where}: content is missing")
            items.append({"role": role, "content": _parts(content, "input_text", where)})
    return items


def _tool(tool: Any, where: str) -> Any:
    """A checked tool definition in Responses form: a chat-format function is flattened; a
    flat function and a hosted tool (``{"type": "web_search"}``...) are sent as they are."""
    function = function_of(tool, where)
    if function is not None and function is not tool:
        return {"type": "function", **function}
    return tool


def _tool_choice(choice: Any, tools: Any) -> Any:
    """A checked ``tool_choice`` in Responses form (a function named flat)."""
    name = check_tool_choice(choice, function_names(tools))
    if name is not None:
        return {"type": "function", "name": name}
    return choice


def _text_format(response_format: Any) -> dict[str, Any]:
    if not isinstance(response_format, dict) or not isinstance(response_format.get("type"), str):
        raise InvalidInputError("response_format must be a dict with a 'type'")
    kind = response_format["type"]
    if kind == "json_schema":
        spec = response_format.get("json_schema")
        if not isinstance(spec, dict) or not isinstance(spec.get("schema"), dict):
            raise InvalidInputError("response_format json_schema needs a 'schema' object")
        return {"type": "json_schema", "name": spec.get("name") or "output", **{
            k: v for k, v in spec.items() if k != "name"}}
    return {"type": kind}


def responses_params(params: Mapping[str, Any]) -> dict[str, Any]:
    """Chat parameter names as the Responses API's; None values left out."""
    body: dict[str, Any] = {}
    for key, value in params.items():
        if value is None:
            continue
        if key in ("input", "model", "stream"):
            raise InvalidInputError(f"{key} is set by respond(); do not pass it as a parameter")
        if key == "stop":
            if value:
                raise InvalidInputError(
                    "The Responses API has no stop sequences: leave stop out, or use the chat "
                    "API (use_responses_api=False) for this endpoint.")
        elif key == "n":
            if value != 1:
                raise InvalidInputError("The Responses API returns one answer per call: n must "
                                        "be 1 (make several calls for several answers).")
        elif key in ("max_tokens", "max_output_tokens"):
            if not isinstance(value, int) or isinstance(value, bool) or value < 1:
                raise InvalidInputError(f"{key} must be a positive integer, got {value!r}")
            body["max_output_tokens"] = value
        elif key in ("temperature", "top_p"):
            if not isinstance(value, (int, float)) or isinstance(value, bool):
                raise InvalidInputError(f"{key} must be a number, got {value!r}")
            body[key] = value
        elif key == "tools":
            body["tools"] = [_tool(tool, f"tools[{i}]")
                             for i, tool in enumerate(check_tools(value))]
        elif key == "tool_choice":
            body["tool_choice"] = _tool_choice(value, params.get("tools"))
        elif key == "response_format":
            body["text"] = {**(body.get("text") or {}), "format": _text_format(value)}
        elif key == "custom_inputs":
            if not isinstance(value, dict):
                raise InvalidInputError("custom_inputs must be a dict")
            body[key] = value
        else:
            body[key] = value
    return body


def responses_request(endpoint: str, messages: Any, params: Mapping[str, Any],
                      stream: bool = False) -> tuple[str, dict[str, Any]]:
    body: dict[str, Any] = {"model": require_name(endpoint, "endpoint"),
                            "input": input_items(messages), **responses_params(params)}
    if stream:
        body["stream"] = True
    return RESPONSES_PATH, body


# -- responses ------------------------------------------------------------------------------------
def responses_usage(data: Any) -> Usage | None:
    """Responses usage in chat terms; token details kept as extra fields."""
    if not isinstance(data, dict):
        return None
    prompt = data.get("input_tokens") or 0
    completion = data.get("output_tokens") or 0
    extra: dict[str, Any] = {}
    for details in ("input_tokens_details", "output_tokens_details"):
        if isinstance(data.get(details), dict):
            extra.update({k: v for k, v in data[details].items() if isinstance(v, int)})
    return Usage.model_validate({"prompt_tokens": prompt, "completion_tokens": completion,
                                 "total_tokens": data.get("total_tokens") or prompt + completion,
                                 **extra})


def _failure(body: Mapping[str, Any], what: str) -> APIStatusError:
    return stream_error(dict(body), what)


def _finish_reason(status: Any, details: Any, has_calls: bool) -> str:
    if status == "incomplete":
        reason = details.get("reason") if isinstance(details, dict) else None
        return "length" if reason in (None, "max_output_tokens") else str(reason)
    return "tool_calls" if has_calls else "stop"


def _message_text(item: Mapping[str, Any]) -> str:
    content = item.get("content")
    if isinstance(content, str):
        return content
    out = []
    for part in content or []:
        if part.get("type") in ("output_text", "text"):
            out.append(part["text"])
        elif part.get("type") == "refusal":
            out.append(part["refusal"])
    return "".join(out)


def _function_call(item: Mapping[str, Any]) -> ToolCall:
    arguments = item.get("arguments")
    if not isinstance(arguments, str):
        arguments = pydantic_core.to_json(arguments if arguments is not None else {}).decode()
    return ToolCall(id=item.get("call_id") or item.get("id"), name=item["name"],
                    arguments=arguments)


def parse_response(body: dict[str, Any]) -> ChatCompletion:
    """A Responses API answer as a chat completion with one choice."""
    if body.get("status") == "failed" or isinstance(body.get("error"), dict):
        raise _failure(body, "could not answer")
    output = body.get("output")
    if not isinstance(output, list):
        raise ValueError("the response has no 'output' list")
    text: list[str] = []
    calls: list[ToolCall] = []
    reasoning: list[Any] = []
    for item in output:
        kind = item.get("type")
        if kind == "message":
            text.append(_message_text(item))
        elif kind == "function_call":
            calls.append(_function_call(item))
        elif kind == "reasoning":
            reasoning.append(item)
    if not text and not calls:
        raise ValueError("the response's output holds no message and no function call")
    message = AssistantMessage(content="".join(text), tool_calls=calls,
                               reasoning=reasoning_text(reasoning))
    choice = ChatChoice(index=0, message=message, finish_reason=_finish_reason(
        body.get("status"), body.get("incomplete_details"), bool(calls)))
    custom = body.get("custom_outputs")
    return ChatCompletion(id=body.get("id"), model=body.get("model"),
                          created=body.get("created_at"), choices=[choice],
                          usage=responses_usage(body.get("usage")), raw=body,
                          custom_outputs=custom if isinstance(custom, dict) else None)


class ResponsesStream:
    """Responses stream events as chat chunks, following the chat stream's contract.

    Text deltas become content pieces, function calls tool-call pieces (indexed in order of
    appearance), finished reasoning items ``reasoning`` pieces; a finishing piece carries the
    finish reason and any ``custom_outputs``, and usage comes once, on a last chunk with no
    choices. Streams that send only finished items (as some agents do) give the same result.
    """

    def __init__(self) -> None:
        self.id: str | None = None
        self.model: str | None = None
        self.created: int | None = None
        self.usage: Usage | None = None
        self.custom_outputs: dict[str, Any] | None = None
        self.finish_reason: str | None = None
        self._role_sent = False
        self._calls: dict[str, int] = {}  # item id -> tool call index
        self._streamed: set[str] = set()  # items whose text or arguments came as deltas
        self._call_count = 0
        self._seen = False  # any event arrived
        self._given: list[ChatCompletionChunk] = []  # what feed gave, for partial()

    def _chunk(self, **delta: Any) -> ChatCompletionChunk:
        if not self._role_sent and "finish_reason" not in delta:
            delta["role"] = "assistant"
            self._role_sent = True
        return ChatCompletionChunk(id=self.id, model=self.model, created=self.created,
                                   choices=[ChoiceDelta(index=0, **delta)])

    def _response(self, response: Any) -> None:
        if isinstance(response, dict):
            self.id = response.get("id") or self.id
            self.model = response.get("model") or self.model
            self.created = response.get("created_at") or self.created
            self.usage = responses_usage(response.get("usage")) or self.usage
            if isinstance(response.get("custom_outputs"), dict):
                self.custom_outputs = response["custom_outputs"]

    def _call_index(self, item: Mapping[str, Any]) -> tuple[int, bool]:
        key = str(item.get("id") or item.get("call_id"))
        if key in self._calls:
            return self._calls[key], False
        self._calls[key] = self._call_count
        self._call_count += 1
        return self._calls[key], True

    def feed(self, event: dict[str, Any]) -> list[ChatCompletionChunk]:
        """The chat chunks one stream event adds (often none)."""
        chunks = self._feed(event)
        self._seen = True
        self._given += chunks
        return chunks

    def _feed(self, event: dict[str, Any]) -> list[ChatCompletionChunk]:
        kind = event.get("type")
        if isinstance(event.get("custom_outputs"), dict):
            self.custom_outputs = event["custom_outputs"]
        if kind == "error":
            raise _failure(event, "stream failed")
        if kind == "response.failed":
            raise _failure(event.get("response") or {}, "stream failed")
        if kind in ("response.created", "response.in_progress"):
            self._response(event.get("response"))
            return []
        if kind == "response.output_text.delta":
            delta = event["delta"]
            if not isinstance(delta, str):
                raise TypeError("response.output_text.delta without a text delta")
            self._streamed.add(str(event.get("item_id")))
            return [self._chunk(content=delta)] if delta else []
        if kind == "response.output_item.added":
            item = event["item"]
            if item.get("type") != "function_call":
                return []
            index, _ = self._call_index(item)
            arguments = item.get("arguments") or ""
            if arguments:
                self._streamed.add(str(item.get("id") or item.get("call_id")))
            return [self._chunk(tool_calls=[ToolCallDelta(
                index=index, id=item.get("call_id"), name=item.get("name"),
                arguments=arguments)])]
        if kind == "response.function_call_arguments.delta":
            key = str(event.get("item_id"))
            if key not in self._calls:
                raise ValueError("arguments for a function call that was never announced")
            self._streamed.add(key)
            return [self._chunk(tool_calls=[ToolCallDelta(index=self._calls[key],
                                                          arguments=event["delta"])])]
        if kind == "response.output_item.done":
            return self._item_done(event["item"])
        if kind in ("response.completed", "response.incomplete"):
            response = event.get("response") or {}
            self._response(response)
            self.finish_reason = _finish_reason(response.get("status"),
                                                response.get("incomplete_details"),
                                                self._call_count > 0)
            return []
        return []  # progress events (content parts, summaries as they grow...) add nothing

    def _item_done(self, item: dict[str, Any]) -> list[ChatCompletionChunk]:
        kind = item.get("type")
        key = str(item.get("id") or item.get("call_id"))
        if kind == "reasoning":
            return [self._chunk(reasoning=reasoning_text([item]))]
        if kind == "message":
            text = _message_text(item)
            if key in self._streamed or not text:
                return []
            return [self._chunk(content=text)]
        if kind == "function_call":
            index, new = self._call_index(item)
            if key in self._streamed:
                return []
            call = _function_call(item)
            return [self._chunk(tool_calls=[ToolCallDelta(
                index=index, id=call.id if new else None, name=call.name if new else None,
                arguments=call.arguments)])]
        return []

    @property
    def complete(self) -> bool:
        """Whether ``response.completed`` (or ``response.incomplete``) arrived."""
        return self.finish_reason is not None

    @property
    def answered(self) -> bool:
        """Whether the stream said anything at all (a response, an item, a delta)."""
        return self._seen

    def partial(self) -> ChatCompletion:
        """What the stream gave so far, as a completion (for an error that says it was cut)."""
        stream = StreamAccumulator()
        for chunk in self._given:
            stream.add(chunk)
        return stream.completion()

    def finish(self) -> list[ChatCompletionChunk]:
        """The finishing piece and, when usage was reported, the usage chunk."""
        reason = self.finish_reason or ("tool_calls" if self._call_count else "stop")
        chunks = [ChatCompletionChunk(
            id=self.id, model=self.model, created=self.created,
            choices=[ChoiceDelta(index=0, finish_reason=reason)],
            custom_outputs=self.custom_outputs)]
        if self.usage is not None:
            chunks.append(ChatCompletionChunk(id=self.id, model=self.model, choices=[],
                                              usage=self.usage))
        return chunks


__all__ = [
    "RESPONSES_PATH",
    "ResponsesStream",
    "input_items",
    "parse_response",
    "responses_params",
    "responses_request",
    "responses_usage",
]

"""The Databricks wire format, pure: request bodies for chat, completions and embeddings, and
the parsers of answers, stream events and error bodies (an error inside a stream included).

Requests go to the native route ``{host}/serving-endpoints/{endpoint}/invocations``, which every
serving endpoint has (foundation models, external models and custom endpoints alike).
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping, Sequence
from typing import Any, TypeVar

import pydantic_core

from .. import _lenient as lenient
from .._sse import ErrorEvent, EventReader, WholeBody
from .._transport import loads
from .._validation import name_segment, require_messages, url_segment
from ..errors import (
    APIStatusError,
    BadRequestError,
    ErrorDetails,
    IncompleteResponseError,
    InvalidInputError,
    RateLimitError,
    ResponseValidationError,
    ServerError,
    error_class_for_status,
)
from ..tools import check_tool_choice, check_tools, function_names, function_of
from ..types import ParsedBatch, ordered
from ..vectors import MISSING
from ._stream import StreamAccumulator
from .models import (
    AssistantMessage,
    ChatChoice,
    ChatCompletion,
    ChatCompletionChunk,
    ChoiceDelta,
    Completion,
    CompletionChoice,
    ToolCall,
    ToolCallDelta,
)

R = TypeVar("R")
T = TypeVar("T")
PROVIDER = "Databricks"
ROLES = ("system", "user", "assistant", "tool")
HEADERS = {"accept": "application/json"}
#: Generation parameters the chat and completion calls take by name; any other keyword is
#: passed through into the request body as it is.
KNOWN_PARAMS = ("temperature", "max_tokens", "stop", "n", "top_p", "top_k", "tools",
                "tool_choice", "response_format")



# -- wire format (pure) ---------------------------------------------------------------------------
#: Body keys the request builders set themselves: refused as parameters, so that no setting (a
#: framework's extra_params, a call option) can send ``stream: true`` on a non-streaming call.
RESERVED_KEYS = ("messages", "prompt", "stream", "input")


def _params(params: Mapping[str, Any]) -> dict[str, Any]:
    reserved = [key for key in RESERVED_KEYS if key in params]
    if reserved:
        raise InvalidInputError(f"{', '.join(reserved)} cannot be set as a parameter: the "
                                "request sets it itself")
    body = {k: v for k, v in params.items() if v is not None and k != "stream_usage"}
    stop = body.get("stop")
    if isinstance(stop, str):
        body["stop"] = [stop]
    elif stop is not None and (not isinstance(stop, (list, tuple)) or not all(
            isinstance(s, str) for s in stop)):
        raise InvalidInputError("stop must be a string or a list of strings")
    elif stop is not None:
        body["stop"] = list(stop)
        if not body["stop"]:
            del body["stop"]
    for key in ("max_tokens", "n", "top_k"):
        if key in body and (not isinstance(body[key], int) or isinstance(body[key], bool)
                            or body[key] < 1):
            raise InvalidInputError(f"{key} must be a positive integer, got {body[key]!r}")
    for key in ("temperature", "top_p"):
        if key in body and (not isinstance(body[key], (int, float)) or isinstance(
                body[key], bool)):
            raise InvalidInputError(f"{key} must be a number, got {body[key]!r}")
    if "tools" in body:
        body["tools"] = chat_tools(body["tools"])
    if "tool_choice" in body:
        body["tool_choice"] = chat_tool_choice(body["tool_choice"], body.get("tools"))
    return body


def chat_tools(tools: Any) -> list[Any]:
    """Tool definitions for the chat API, checked (see
    :func:`~sfmodels_core.tools.function_of`); a function given flat (its name at the
    top, as the Responses API takes it) is sent nested, as this API takes it."""
    out = []
    for i, tool in enumerate(check_tools(tools)):
        function = function_of(tool, f"tools[{i}]")
        if function is not None and function is tool:
            tool = {"type": "function", "function": {k: v for k, v in function.items()
                                                     if k != "type"}}
        out.append(tool)
    return out


def chat_tool_choice(choice: Any, tools: Any) -> Any:
    """A checked ``tool_choice``; a function named flat (``{"type": "function", "name": ...}``)
    is sent nested."""
    name = check_tool_choice(choice, function_names(tools))
    if name is not None and not isinstance(choice.get("function"), Mapping):
        return {"type": "function", "function": {"name": name}}
    return choice


def invocations_path(endpoint: str) -> str:
    """The route of ``endpoint``, its name checked and made one path segment.

    Refused before anything is sent (``InvalidInputError``): an empty name, ``.``, ``..``, and
    one holding ``/``, white space or control characters. Any other character outside
    ``A-Z a-z 0-9 - . _ ~`` is percent-encoded (``m?x=1`` is sent as ``m%3Fx%3D1``), so a
    name never changes the route nor adds a query or a fragment."""
    return f"/serving-endpoints/{name_segment(endpoint, 'endpoint')}/invocations"


def _stream_fields(body: dict[str, Any], params: Mapping[str, Any], stream: bool) -> None:
    """``stream`` and, unless ``stream_usage=False`` (or the caller set ``stream_options``),
    ``stream_options: {"include_usage": true}``: external-model endpoints (OpenAI and Azure
    models served through Databricks) send no usage in a stream without it."""
    stream_usage = params.get("stream_usage", True)
    if not isinstance(stream_usage, bool):
        raise InvalidInputError(f"stream_usage must be True or False, got {stream_usage!r}")
    if stream:
        body["stream"] = True
        if stream_usage and "stream_options" not in body:
            body["stream_options"] = {"include_usage": True}


def chat_request(endpoint: str, messages: Any, params: Mapping[str, Any],
                 stream: bool = False) -> tuple[str, dict[str, Any]]:
    """The path and body of a chat call. With ``stream``, the body asks for usage in the stream
    (``stream_options``) unless ``params`` has ``stream_usage=False``; ``stream_usage`` itself is
    never sent."""
    path = invocations_path(endpoint)
    msgs = require_messages(messages, ROLES, content_may_be_list=True)
    body: dict[str, Any] = {"messages": msgs, **_params(params)}
    _stream_fields(body, params, stream)
    return path, body


def completion_request(endpoint: str, prompt: Any, params: Mapping[str, Any],
                       stream: bool = False) -> tuple[str, dict[str, Any]]:
    """As :func:`chat_request`, for the completions task."""
    path = invocations_path(endpoint)
    if not isinstance(prompt, str) and not (
            isinstance(prompt, list) and all(isinstance(p, str) for p in prompt)):
        raise InvalidInputError("prompt must be a string or a list of strings")
    body: dict[str, Any] = {"prompt": prompt, **_params(params)}
    _stream_fields(body, params, stream)
    return path, body


def embedding_request(endpoint: str, texts: Sequence[str], instruction: str | None,
                      params: Mapping[str, Any]) -> tuple[str, dict[str, Any]]:
    body: dict[str, Any] = {"input": list(texts)}
    if instruction:
        body["instruction"] = instruction
    for key, value in params.items():
        if key in ("input", "instruction"):
            raise InvalidInputError(f"{key} is set by embed(); do not pass it as a parameter")
        if value is not None:
            body[key] = value
    return f"/serving-endpoints/{url_segment(endpoint)}/invocations", body


def _tool_calls(items: Any) -> list[ToolCall]:
    calls = []
    for item in items or []:
        fn = item.get("function") or {}
        args = fn.get("arguments")
        calls.append(ToolCall(id=lenient.opt_str(item.get("id")),
                              type=lenient.opt_str(item.get("type")) or "function",
                              name=fn.get("name") or "",
                              arguments=args if isinstance(args, str) else pydantic_core.to_json(
                                  args if args is not None else {}).decode()))
    return calls


def _text_content(content: Any) -> str | None:
    """Message content as text: a string, or the text parts of a list of parts. Anything else
    (a number, an object) is not an answer this client can read."""
    if content is None or isinstance(content, str):
        return content
    if isinstance(content, list):
        texts = []
        for part in content:
            if isinstance(part, dict) and part.get("type") in ("text", None):
                text = part.get("text", "")
                if not isinstance(text, str):
                    raise ValueError("a text part of the content is not text")
                texts.append(text)
        return "".join(texts)
    raise ValueError(f"the content is a {type(content).__name__}, not text or a list of parts")


def _choices(body: dict[str, Any]) -> list[Any]:
    """The answer's choices: a non-empty list, or the answer is not one."""
    choices = body.get("choices")
    if not isinstance(choices, list) or not choices:
        raise ValueError("the answer has no choices" if not choices
                         else "'choices' is not a list")
    return choices


def reasoning_text(content: Any) -> str | None:
    """The reasoning in a list of content parts: the summary texts of ``{"type": "reasoning",
    "summary": [{"type": "summary_text", "text": ...}]}`` parts (and Anthropic-style
    ``{"type": "thinking", "thinking": ...}`` parts), joined; ``None`` when there is none."""
    if not isinstance(content, list):
        return None
    pieces: list[str] = []
    found = False
    for part in content:
        if not isinstance(part, dict):
            continue
        if part.get("type") == "reasoning":
            found = True
            summary = part.get("summary")
            if isinstance(summary, str):
                pieces.append(summary)
            for item in summary if isinstance(summary, list) else []:
                text = item.get("text") if isinstance(item, dict) else item
                if isinstance(text, str):
                    pieces.append(text)
        elif part.get("type") == "thinking" and isinstance(part.get("thinking"), str):
            found = True
            pieces.append(part["thinking"])
    return "".join(pieces) if found else None


def _custom_outputs(body: dict[str, Any]) -> dict[str, Any] | None:
    value = body.get("custom_outputs")
    return value if isinstance(value, dict) else None


def parse_chat(body: dict[str, Any]) -> ChatCompletion:
    """A chat answer; one without choices, or a choice with neither content nor tool calls
    (nor a refusal), is no answer and raises."""
    choices = []
    for i, choice in enumerate(_choices(body)):
        msg = choice.get("message")
        if not isinstance(msg, dict):
            raise ValueError(f"choices[{i}] has no message")
        content = msg.get("content")
        calls = _tool_calls(msg.get("tool_calls"))
        text = _text_content(content)
        if text is None and not calls and not msg.get("refusal"):
            raise ValueError(f"choices[{i}].message has no content and no tool calls")
        choices.append(ChatChoice(
            index=choice.get("index", i), finish_reason=choice.get("finish_reason"),
            message=AssistantMessage(role=lenient.opt_str(msg.get("role")) or "assistant",
                                     content=text, tool_calls=calls,
                                     reasoning=reasoning_text(content))))
    return ChatCompletion(id=body.get("id"), model=body.get("model"), created=body.get("created"),
                          choices=choices, usage=lenient.usage(body.get("usage")), raw=body,
                          custom_outputs=_custom_outputs(body))


def parse_completion_piece(body: dict[str, Any]) -> Completion:
    return parse_completion(body, piece=True)


def parse_chat_chunk(body: dict[str, Any]) -> ChatCompletionChunk:
    choices = []
    choice_list = body.get("choices")
    if choice_list is not None and not isinstance(choice_list, list):
        raise ValueError("'choices' is not a list")
    for i, choice in enumerate(choice_list or []):
        delta = choice.get("delta") or {}
        tool_deltas = []
        for item in delta.get("tool_calls") or []:
            fn = item.get("function") or {}
            index, arguments = item.get("index"), fn.get("arguments")
            if arguments is not None and not isinstance(arguments, str):  # a whole object
                arguments = pydantic_core.to_json(arguments).decode()
            tool_deltas.append(ToolCallDelta(index=index if isinstance(index, int) else None,
                                             id=item.get("id"), name=fn.get("name"),
                                             arguments=arguments or ""))
        choices.append(ChoiceDelta(index=choice.get("index", i), role=delta.get("role"),
                                   content=_text_content(delta.get("content")),
                                   tool_calls=tool_deltas,
                                   finish_reason=choice.get("finish_reason"),
                                   reasoning=reasoning_text(delta.get("content"))))
    return ChatCompletionChunk(id=body.get("id"), model=body.get("model"),
                               created=body.get("created"), choices=choices,
                               usage=lenient.usage(body.get("usage")),
                               custom_outputs=_custom_outputs(body))


def _completion_text(choice: Any, i: int, *, piece: bool) -> str:
    if not isinstance(choice, dict):
        raise ValueError(f"choices[{i}] is not an object")
    text = choice.get("text")
    if text is None and piece:  # a stream's last piece may carry only the finish reason
        return ""
    if not isinstance(text, str):
        raise ValueError(f"choices[{i}].text is " + ("missing" if text is None else "not text"))
    return text


def parse_completion(body: dict[str, Any], *, piece: bool = False) -> Completion:
    """A completions answer, or with ``piece`` one streamed piece of it (which may carry no
    choice, or a choice without text)."""
    choices = [CompletionChoice(index=c.get("index", i),
                                text=_completion_text(c, i, piece=piece),
                                finish_reason=c.get("finish_reason"))
               for i, c in enumerate(body.get("choices") or [] if piece else _choices(body))]
    return Completion(id=body.get("id"), model=body.get("model"), created=body.get("created"),
                      choices=choices, usage=lenient.usage(body.get("usage")), raw=body)


def parse_embeddings(body: dict[str, Any]) -> ParsedBatch:
    """(vectors in input order, model, usage, the body without the vectors)."""
    items = ordered(lenient.vector_items(body.get("data") or [], "data"))
    rest = {k: v for k, v in body.items() if k != "data"}
    return ([item.get("embedding", MISSING) for item in items], lenient.opt_str(rest.get("model")),
            lenient.usage(rest.get("usage")), rest)


def _error_parts(node: Any, codes: list[str], messages: list[str], request_ids: list[str],
                 depth: int = 0) -> None:
    """Walk an error body from the outside in, collecting codes, human messages and request ids.

    Handles the shapes seen from Databricks: ``{"error_code", "message"}``; a ``message`` that
    is itself JSON, such as an external model's wrapped error (``{"external_model_provider":
    ..., "external_model_error": {"error": {"message", "type", "code"}}}``); the OpenAI-style
    ``{"error": {"message", "type", "code"}}``; OAuth's ``{"error", "error_description"}``; and
    ``details: [{"@type": ".../RequestInfo", "request_id": ...}]``.
    """
    if depth > 6:
        return
    if isinstance(node, str):
        text = node.strip()
        if text.startswith("{"):
            try:
                inner = pydantic_core.from_json(text)
            except ValueError:
                inner = None
            if isinstance(inner, dict):
                _error_parts(inner, codes, messages, request_ids, depth + 1)
                return
        if text:
            messages.append(text)
        return
    if not isinstance(node, dict):
        return
    code = (lenient.opt_str(node.get("code")) or lenient.opt_str(node.get("error_code"))
            or lenient.opt_str(node.get("errorCode")))
    error = node.get("error")
    if code is None and isinstance(error, str) and error and " " not in error.strip():
        code = error  # OAuth: {"error": "invalid_client", "error_description": ...}
    kind = lenient.opt_str(node.get("type"))
    if code is None and kind and kind != "error" and ("message" in node or depth):
        code = kind  # an error object's type is its code when it has no code
    if code:
        codes.append(code)
    details = node.get("details")
    for item in details if isinstance(details, list) else []:
        request_id = lenient.opt_str(item.get("request_id")) if isinstance(item, dict) else None
        if request_id:
            request_ids.append(request_id)
    for key in ("message", "error_description", "detail"):
        if key in node:
            _error_parts(node[key], codes, messages, request_ids, depth + 1)
    if isinstance(error, dict):
        _error_parts(error, codes, messages, request_ids, depth + 1)
    elif isinstance(error, str) and error and code != error:
        messages.append(error)
    if "external_model_error" in node:
        _error_parts(node["external_model_error"], codes, messages, request_ids, depth + 1)


def parse_error(status: int, body: Any) -> ErrorDetails:
    """The innermost human message, the most specific code and any request id of an error
    body (the whole body stays on the exception as ``body``)."""
    codes: list[str] = []
    messages: list[str] = []
    request_ids: list[str] = []
    if isinstance(body, dict):
        _error_parts(body, codes, messages, request_ids)
    elif isinstance(body, str):
        messages.append(body[:500])
    hint = {
        401: "Check DATABRICKS_TOKEN (or the service principal's id and secret) and that it "
             "belongs to this workspace.",
        403: "The token's identity may not query this serving endpoint (CAN QUERY permission).",
        404: "Check the serving endpoint name (Serving in the workspace UI lists them).",
        429: "The workspace or endpoint rate limit was reached; lower max_concurrency or set "
             "requests_per_minute. A large embedding batch answered 429 every time is over a "
             "per-request token limit: lower batch_size.",
    }.get(status)
    return ErrorDetails(code=codes[-1] if codes else None,
                        message=messages[-1] if messages else None, hint=hint,
                        request_id=request_ids[0] if request_ids else None)


def _whole_body_as_chunk(body: dict[str, Any]) -> dict[str, Any]:
    """A complete chat answer (``choices[].message``) sent to a streaming request, as the one
    chunk of its stream (``choices[].delta``, tool calls indexed in order)."""
    choices = body.get("choices")
    if not isinstance(choices, list):
        return body
    out: list[Any] = []
    for choice in choices:
        if isinstance(choice, dict) and "message" in choice and "delta" not in choice:
            delta = dict(choice["message"]) if isinstance(choice["message"], dict) else {}
            calls = delta.get("tool_calls")
            if isinstance(calls, list):
                delta["tool_calls"] = [{"index": j, **call} if isinstance(call, dict) else call
                                       for j, call in enumerate(calls)]
            choice = {**{k: v for k, v in choice.items() if k != "message"}, "delta": delta}
        out.append(choice)
    return {**body, "choices": out}


def parse_event(event: str, parse: Callable[[dict[str, Any]], T]) -> T:
    """One stream event, parsed; an error event or one that does not fit raises SFModelsError.

    A :class:`~sfmodels_core._sse.WholeBody` (a streaming request answered with one ordinary JSON
    completion, as custom and pyfunc endpoints do) is read as the one chunk of its stream.
    """
    try:
        body = loads(event.encode())
    except ValueError:
        body = None
    if isinstance(event, ErrorEvent) or (isinstance(body, dict) and "choices" not in body and (
            "error_code" in body or "error" in body or body.get("type") == "error")):
        raise stream_error(body if body is not None else event)
    try:
        if not isinstance(body, dict):
            raise TypeError("not a JSON object")
        if isinstance(event, WholeBody):
            body = _whole_body_as_chunk(body)
        return parse(body)
    except (ValueError, KeyError, TypeError, AttributeError, IndexError) as exc:
        raise ResponseValidationError(f"Databricks sent a stream event this client cannot use "
                            f"({type(exc).__name__}: {exc}): {event[:200]!r}",
                            provider=PROVIDER) from exc


def stream_error(body: Any, what: str = "stream failed") -> APIStatusError:
    """The typed error an error sent inside a stream names: by an HTTP status it carries
    (``status``, ``status_code``, ``http_status``, at the top or in ``error``), else by its
    code (a rate limit, an overloaded or failing server, a bad request), else
    :class:`~sfmodels_core.errors.APIStatusError`."""
    details = parse_error(200, body)
    status = None
    for node in (body, body.get("error") if isinstance(body, dict) else None):
        if isinstance(node, dict):
            for key in ("status_code", "status", "http_status", "code"):
                value = node.get(key)
                if type(value) is int and 400 <= value < 600:
                    status = value
                    break
        if status is not None:
            break
    code = (details.code or "").lower()
    cls: type[APIStatusError] = APIStatusError
    if status is not None:
        cls = error_class_for_status(status)
    elif "rate_limit" in code or "request_limit" in code or "too_many" in code:
        cls = RateLimitError
    elif any(word in code for word in ("overloaded", "server_error", "internal",
                                       "unavailable", "timeout")):
        cls = ServerError
    elif any(word in code for word in ("invalid", "bad_request")):
        cls = BadRequestError
    return cls(f"Databricks {what}: {details.message or details.code or 'no reason given'}",
               status_code=status, error_code=details.code, provider_message=details.message,
               provider=PROVIDER, hint=details.hint, body=body, request_id=details.request_id)


def ensure_complete(reader: EventReader, complete: bool, answered: bool,
                    partial: Callable[[], Any]) -> None:
    """Raise unless a stream that ended held an answer and ended whole: its terminal marker
    (``[DONE]``, or a whole JSON body) arrived, or the state it fed says it finished."""
    if not answered:
        raise ResponseValidationError("Databricks' stream ended without any answer",
                                      provider=PROVIDER)
    if reader.done or complete:
        return
    raise IncompleteResponseError(
        "Databricks' stream ended before its end marker ([DONE], a finish_reason, or "
        "response.completed): the answer is cut short, and is not returned as whole",
        partial=partial(), provider=PROVIDER)


def merge_chunks(chunks: Iterable[ChatCompletionChunk]) -> ChatCompletion:
    """Fold a chat stream into the completion it adds up to (content and tool calls joined)."""
    stream = StreamAccumulator()
    for chunk in chunks:
        stream.add(chunk)
    return stream.completion()


def _usage_last(stream: StreamAccumulator, kind: Callable[..., T]) -> T | None:
    """The stream's usage as one last piece with no choices (None when it carried none)."""
    if stream.usage is None:
        return None
    return kind(id=stream.id, model=stream.model, choices=[], usage=stream.usage)


def _identity(body: dict[str, Any]) -> dict[str, Any]:
    return body


def _fed(state: Any, event: dict[str, Any]) -> list[ChatCompletionChunk]:
    """The chunks a Responses stream event gives; an event that does not fit is a typed error."""
    try:
        chunks: list[ChatCompletionChunk] = state.feed(event)
    except (ValueError, KeyError, TypeError, AttributeError, IndexError) as exc:
        raise ResponseValidationError(
            f"Databricks sent a Responses stream event this client cannot use "
            f"({type(exc).__name__}: {exc}): {str(event)[:200]!r}", provider=PROVIDER) from exc
    return chunks

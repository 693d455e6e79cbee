"""Databricks' OpenAI Responses API, agent endpoints, and the discovery documents of a workspace.

- ``POST /serving-endpoints/responses`` with ``"model": "{endpoint}"``, and
  ``POST /serving-endpoints/{endpoint}/invocations`` with ``input`` for the endpoints below: the
  Responses API (text, tool calls, reasoning items, usage, streaming events).
- Endpoints: ``databricks-gpt-5`` (chat and Responses, with reasoning items),
  ``databricks-gpt-5-codex`` (Responses only, like Codex models) and ``agent-echo`` (an agent
  endpoint: chat and Responses, echoing the request's ``custom_inputs`` as ``custom_outputs``;
  its Responses stream sends finished items only, as agents often do).
- ``GET /.well-known/databricks-config`` and ``GET /oidc/.well-known/oauth-authorization-server``:
  what databricks-sdk reads to find the workspace's OAuth token endpoint.

Answers come from the chat emulation (the same text, tool plans and structured output), so the
two APIs agree on what the model says.
"""

from __future__ import annotations

import json
import uuid
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

from .common import SSE_DONE, BodyError, dumps, is_number, json_response, now_s, parse_json_object
from .databricks import (
    ENDPOINTS,
    NOT_FOUND_MESSAGE,
    DatabricksApi,
    Endpoint,
    chat_choices,
    error,
    parse_chat,
)
from .server import Reply, Request, Response, StreamResponse
from .text.tokens import count_tokens, split_fragments, split_pieces

RESPONSES_PATH = "/serving-endpoints/responses"
DISCOVERY_PATHS = ("/.well-known/databricks-config",
                   "/oidc/.well-known/oauth-authorization-server")
WORKSPACE_ID = "1234567890123456"


@dataclass(frozen=True)
class ResponsesEndpoint:
    name: str
    served_model: str
    chat: bool  # also serves chat completions
    reasoning: bool  # answers start with a reasoning item
    agent: bool  # echoes custom_inputs as custom_outputs


RESPONSES_ENDPOINTS: dict[str, ResponsesEndpoint] = {
    e.name: e
    for e in (
        ResponsesEndpoint("databricks-gpt-5", "gpt-5-2025-08-07", True, True, False),
        ResponsesEndpoint("databricks-gpt-5-codex", "gpt-5-codex", False, True, False),
        ResponsesEndpoint("agent-echo", "agent-echo", True, False, True),
    )
}

#: Chat-only parameters: the Responses API rejects them, as OpenAI's does.
_CHAT_ONLY = ("messages", "stop", "n", "max_tokens", "response_format", "stream_options")
_ITEM_ROLES = {"user": "user", "system": "system", "developer": "system", "assistant": "assistant"}


def _bad(message: str) -> Response:
    return error(400, "BAD_REQUEST", f"Invalid request: {message}")


# ---- request: a Responses body as the chat body it means ---------------------------------


def _part_text(content: Any, where: str) -> str:
    if isinstance(content, str):
        return content
    if not isinstance(content, list):
        raise BodyError(f"'{where}.content' must be a string or a list of content parts")
    texts = []
    for j, part in enumerate(content):
        kind = part.get("type") if isinstance(part, Mapping) else None
        if kind in ("input_text", "output_text"):
            if not isinstance(part.get("text"), str):
                raise BodyError(f"'{where}.content[{j}].text' must be a string")
            texts.append(part["text"])
        elif kind == "refusal":
            texts.append(str(part.get("refusal", "")))
        elif kind != "input_image":
            raise BodyError(f"'{where}.content[{j}].type' {kind!r} is not supported")
    return "\n".join(texts)


def _messages(body: Mapping[str, Any]) -> list[dict[str, Any]]:
    raw = body.get("input")
    messages: list[dict[str, Any]] = []
    instructions = body.get("instructions")
    if instructions is not None:
        if not isinstance(instructions, str):
            raise BodyError("'instructions' must be a string")
        messages.append({"role": "system", "content": instructions})
    if isinstance(raw, str):
        return [*messages, {"role": "user", "content": raw}]
    if not isinstance(raw, list) or not raw:
        raise BodyError("'input' must be a string or a non-empty list of items")
    for i, item in enumerate(raw):
        where = f"input[{i}]"
        if not isinstance(item, Mapping):
            raise BodyError(f"'{where}' must be an object")
        kind = item.get("type", "message")
        if kind == "message":
            role = _ITEM_ROLES.get(item.get("role"))  # type: ignore[arg-type]
            if role is None:
                raise BodyError(f"'{where}.role' must be user, system, developer or assistant")
            messages.append({"role": role, "content": _part_text(item.get("content"), where)})
        elif kind == "function_call":
            call_id, name, arguments = item.get("call_id"), item.get("name"), item.get(
                "arguments")
            if not all(isinstance(v, str) for v in (call_id, name, arguments)):
                raise BodyError(f"'{where}' needs string 'call_id', 'name' and 'arguments'")
            call = {"id": call_id, "type": "function",
                    "function": {"name": name, "arguments": arguments}}
            last = messages[-1] if messages else None
            if last is not None and last["role"] == "assistant":
                last.setdefault("tool_calls", []).append(call)
            else:
                messages.append({"role": "assistant", "content": None, "tool_calls": [call]})
        elif kind == "function_call_output":
            call_id, output = item.get("call_id"), item.get("output")
            if not isinstance(call_id, str) or not isinstance(output, str):
                raise BodyError(f"'{where}' needs string 'call_id' and 'output'")
            messages.append({"role": "tool", "tool_call_id": call_id, "content": output})
        elif kind != "reasoning":  # reasoning handed back is accepted and has no effect here
            raise BodyError(f"'{where}.type' {kind!r} is not supported")
    return messages


def _tools(body: Mapping[str, Any]) -> dict[str, Any]:
    out: dict[str, Any] = {}
    tools = body.get("tools")
    if tools is not None:
        if not isinstance(tools, list):
            raise BodyError("'tools' must be a list")
        converted = []
        for j, tool in enumerate(tools):
            if not isinstance(tool, Mapping) or tool.get("type") != "function":
                raise BodyError(f"'tools[{j}].type' must be 'function'")
            if "function" in tool:
                raise BodyError(f"'tools[{j}]' is in chat form: the Responses API takes "
                                "'name' and 'parameters' at the top level")
            function = {k: v for k, v in tool.items() if k != "type"}
            converted.append({"type": "function", "function": function})
        out["tools"] = converted
    choice = body.get("tool_choice")
    if isinstance(choice, Mapping):
        if choice.get("type") != "function" or not isinstance(choice.get("name"), str):
            raise BodyError("'tool_choice' must be auto, none, required or "
                            "{'type': 'function', 'name': ...}")
        out["tool_choice"] = {"type": "function", "function": {"name": choice["name"]}}
    elif choice is not None:
        out["tool_choice"] = choice
    return out


def _format(body: Mapping[str, Any]) -> dict[str, Any]:
    text = body.get("text")
    if text is None:
        return {}
    fmt = text.get("format") if isinstance(text, Mapping) else None
    if fmt is None:
        return {}
    if not isinstance(fmt, Mapping):
        raise BodyError("'text.format' must be an object")
    kind = fmt.get("type")
    if kind == "json_schema":
        spec = {k: v for k, v in fmt.items() if k != "type"}
        return {"response_format": {"type": "json_schema", "json_schema": spec}}
    if kind in ("json_object", "text"):
        return {"response_format": {"type": kind}}
    raise BodyError("'text.format.type' must be 'text', 'json_object' or 'json_schema'")


def chat_body(body: Mapping[str, Any]) -> dict[str, Any]:
    """The chat request a Responses request amounts to (validated on the way)."""
    unknown = [key for key in _CHAT_ONLY if key in body]
    if unknown:
        raise BodyError(f"Unknown parameter: '{unknown[0]}'")
    out: dict[str, Any] = {"messages": _messages(body), **_tools(body), **_format(body)}
    limit = body.get("max_output_tokens")
    if limit is not None:
        if not isinstance(limit, int) or isinstance(limit, bool) or limit < 1:
            raise BodyError("'max_output_tokens' must be a positive integer")
        out["max_tokens"] = limit
    for key in ("temperature", "top_p"):
        if body.get(key) is not None:
            if not is_number(body[key]):
                raise BodyError(f"'{key}' must be a number")
            out[key] = body[key]
    reasoning = body.get("reasoning")
    if reasoning is not None and not isinstance(reasoning, Mapping):
        raise BodyError("'reasoning' must be an object")
    custom = body.get("custom_inputs")
    if custom is not None and not isinstance(custom, Mapping):
        raise BodyError("'custom_inputs' must be an object")
    stream = body.get("stream", False)
    if not isinstance(stream, bool):
        raise BodyError("'stream' must be a boolean")
    return out


# ---- answers ----------------------------------------------------------------------------


def _reasoning_item(question: str) -> dict[str, Any]:
    topic = " ".join(question.split()[:8]) or "the request"
    return {"type": "reasoning", "id": "rs_" + uuid.uuid4().hex,
            "summary": [{"type": "summary_text", "text": f"Considering: {topic}"}]}


def _answer(endpoint: ResponsesEndpoint, body: Mapping[str, Any]
            ) -> tuple[list[dict[str, Any]], dict[str, Any], str]:
    """(output items, usage, finish reason) for a Responses request."""
    chat = parse_chat(chat_body(body))
    choice = chat_choices(chat)[0]
    question = next((text for role, text in reversed(chat.turns) if role == "user"), "")
    output: list[dict[str, Any]] = []
    reasoning_tokens = 0
    if endpoint.reasoning:
        item = _reasoning_item(question)
        output.append(item)
        reasoning_tokens = count_tokens(item["summary"][0]["text"]) * 3
    if choice.tool_calls:
        for call in choice.tool_calls:
            function = call["function"]
            output.append({"type": "function_call", "id": "fc_" + uuid.uuid4().hex,
                           "call_id": call["id"], "name": function["name"],
                           "arguments": function["arguments"], "status": "completed"})
    else:
        output.append({"type": "message", "id": "msg_" + uuid.uuid4().hex,
                       "status": "completed", "role": "assistant",
                       "content": [{"type": "output_text", "text": choice.content or "",
                                    "annotations": []}]})
    visible = choice.completion_tokens()
    usage = {"input_tokens": chat.prompt_tokens,
             "input_tokens_details": {"cached_tokens": 0},
             "output_tokens": visible + reasoning_tokens,
             "output_tokens_details": {"reasoning_tokens": reasoning_tokens},
             "total_tokens": chat.prompt_tokens + visible + reasoning_tokens}
    return output, usage, choice.finish_reason


def _response(rid: str, created: int, endpoint: ResponsesEndpoint, output: list[Any],
              usage: dict[str, Any] | None, finish: str, status: str) -> dict[str, Any]:
    body: dict[str, Any] = {
        "id": rid, "object": "response", "created_at": created, "status": status,
        "model": endpoint.served_model, "output": output, "usage": usage, "error": None,
        "incomplete_details": None}
    if status != "in_progress" and finish == "length":
        body["status"] = "incomplete"
        body["incomplete_details"] = {"reason": "max_output_tokens"}
    return body


def _event(kind: str, sequence: int, **fields: Any) -> bytes:
    return (f"event: {kind}\n".encode() + b"data: "
            + dumps({"type": kind, "sequence_number": sequence, **fields}) + b"\n\n")


def _stream_events(rid: str, created: int, endpoint: ResponsesEndpoint, output: list[Any],
                   usage: dict[str, Any], finish: str, custom: Any) -> list[bytes]:
    """The event sequence of OpenAI's Responses streams (agents: finished items only)."""
    events: list[bytes] = []
    count = iter(range(1_000_000))

    def add(kind: str, **fields: Any) -> None:
        events.append(_event(kind, next(count), **fields))

    if endpoint.agent:
        for index, item in enumerate(output):
            if item["type"] == "message":
                for piece in split_pieces(item["content"][0]["text"]):
                    add("response.output_text.delta", item_id=item["id"], output_index=index,
                        content_index=0, delta=piece)
            extra = {"custom_outputs": custom} if index == len(output) - 1 else {}
            add("response.output_item.done", output_index=index, item=item, **extra)
        events.append(SSE_DONE)
        return events
    add("response.created", response=_response(rid, created, endpoint, [], None, finish,
                                               "in_progress"))
    add("response.in_progress", response=_response(rid, created, endpoint, [], None, finish,
                                                   "in_progress"))
    for index, item in enumerate(output):
        kind = item["type"]
        if kind == "reasoning":
            add("response.output_item.added", output_index=index, item={**item, "summary": []})
            text = item["summary"][0]["text"]
            for piece in split_pieces(text):
                add("response.reasoning_summary_text.delta", item_id=item["id"],
                    output_index=index, summary_index=0, delta=piece)
            add("response.reasoning_summary_text.done", item_id=item["id"],
                output_index=index, summary_index=0, text=text)
        elif kind == "message":
            add("response.output_item.added", output_index=index,
                item={**item, "status": "in_progress", "content": []})
            part = item["content"][0]
            add("response.content_part.added", item_id=item["id"], output_index=index,
                content_index=0, part={**part, "text": ""})
            for piece in split_pieces(part["text"]):
                add("response.output_text.delta", item_id=item["id"], output_index=index,
                    content_index=0, delta=piece)
            add("response.output_text.done", item_id=item["id"], output_index=index,
                content_index=0, text=part["text"])
            add("response.content_part.done", item_id=item["id"], output_index=index,
                content_index=0, part=part)
        else:
            add("response.output_item.added", output_index=index,
                item={**item, "arguments": "", "status": "in_progress"})
            for fragment in split_fragments(item["arguments"]):
                add("response.function_call_arguments.delta", item_id=item["id"],
                    output_index=index, delta=fragment)
            add("response.function_call_arguments.done", item_id=item["id"],
                output_index=index, arguments=item["arguments"])
        add("response.output_item.done", output_index=index, item=item)
    final = _response(rid, created, endpoint, output, usage, finish, "completed")
    add("response.incomplete" if final["status"] == "incomplete" else "response.completed",
        response=final)
    return events


class ResponsesApi:
    """Handlers of the Responses routes and of the endpoints above on the native route."""

    def __init__(self, databricks: DatabricksApi, url: Callable[[], str]) -> None:
        self.databricks = databricks
        self.url = url

    # ---- discovery (GET) ---------------------------------------------------------------

    def discovery(self, request: Request) -> Response | None:
        """The workspace's discovery documents, or None for any other path."""
        path = request.path.rstrip("/")
        if request.method != "GET" or path not in DISCOVERY_PATHS:
            return None
        base = self.url()
        if path == DISCOVERY_PATHS[0]:
            return json_response(200, {"oidc_endpoint": f"{base}/oidc",
                                       "workspace_id": WORKSPACE_ID})
        return json_response(200, {
            "issuer": f"{base}/oidc", "token_endpoint": f"{base}/oidc/v1/token",
            "authorization_endpoint": f"{base}/oidc/v1/authorize",
            "grant_types_supported": ["client_credentials", "authorization_code",
                                      "refresh_token"]})

    # ---- routes ------------------------------------------------------------------------

    def responses(self, request: Request) -> Reply:
        """``/serving-endpoints/responses``: the endpoint is the body's ``model``."""
        problem = self.databricks._check_access(request)
        if problem is not None:
            return problem
        try:
            body = parse_json_object(request)
        except BodyError as exc:
            return _bad(exc.message)
        name = body.get("model")
        if not isinstance(name, str) or not name:
            return _bad("'model' is required and must name a serving endpoint")
        endpoint = RESPONSES_ENDPOINTS.get(name)
        if endpoint is None:
            if name in ENDPOINTS:
                return _bad(f"endpoint {name} does not support the Responses API; use the chat "
                            "completions API")
            return error(404, "RESOURCE_DOES_NOT_EXIST", NOT_FOUND_MESSAGE)
        return self._respond(endpoint, body)

    def invocations(self, request: Request, name: str) -> Reply:
        """The native route of the endpoints above: ``input`` is Responses, ``messages`` chat."""
        problem = self.databricks._check_access(request)
        if problem is not None:
            return problem
        endpoint = RESPONSES_ENDPOINTS[name]
        try:
            body = parse_json_object(request)
        except BodyError as exc:
            return _bad(exc.message)
        if "input" in body:
            return self._respond(endpoint, body)
        if "messages" in body:
            return self._chat(endpoint, body)
        return _bad("the body must have 'input' (Responses) or 'messages' (chat)")

    def chat_completions(self, request: Request) -> Reply:
        """``/serving-endpoints/chat/completions``: the endpoints above, else the usual ones."""
        try:
            name = json.loads(request.body or b"{}").get("model")
        except (ValueError, AttributeError):
            name = None
        if name not in RESPONSES_ENDPOINTS:
            return self.databricks.openai(request, "chat")
        problem = self.databricks._check_access(request)
        if problem is not None:
            return problem
        return self._chat(RESPONSES_ENDPOINTS[name], parse_json_object(request))

    # ---- answers -----------------------------------------------------------------------

    def _respond(self, endpoint: ResponsesEndpoint, body: Mapping[str, Any]) -> Reply:
        limited = self.databricks._rate_limited(endpoint.name)
        if limited is not None:
            return limited
        try:
            output, usage, finish = _answer(endpoint, body)
        except BodyError as exc:
            return _bad(exc.message)
        rid = "resp_" + uuid.uuid4().hex
        created = now_s()
        custom = body.get("custom_inputs") or {} if endpoint.agent else None
        if body.get("stream"):
            events = _stream_events(rid, created, endpoint, output, usage, finish, custom)
            return StreamResponse(events, self.databricks._stream_delay())
        answer = _response(rid, created, endpoint, output, usage, finish, "completed")
        if endpoint.agent:
            answer["custom_outputs"] = custom
        return json_response(200, answer)

    def _chat(self, endpoint: ResponsesEndpoint, body: Mapping[str, Any]) -> Reply:
        if not endpoint.chat:
            return _bad(f"endpoint {endpoint.name} only supports the Responses API "
                        "(/serving-endpoints/responses)")
        custom = body.get("custom_inputs")
        if custom is not None and not isinstance(custom, Mapping):
            return _bad("'custom_inputs' must be an object")
        chat = {k: v for k, v in body.items() if k not in ("custom_inputs", "model")}
        reply = self.databricks._dispatch(Endpoint(endpoint.name, "chat", endpoint.served_model),
                                          "chat", chat)
        if not endpoint.agent:
            return reply
        outputs = dict(custom or {})
        if isinstance(reply, Response) and reply.status == 200:
            answer = json.loads(reply.body)
            answer["custom_outputs"] = outputs
            return Response(reply.status, dumps(answer), reply.content_type, reply.headers)
        if isinstance(reply, StreamResponse):
            events = list(reply.events)
            last = next(i for i in range(len(events) - 1, -1, -1) if events[i] != SSE_DONE)
            chunk = json.loads(events[last][len(b"data: "):])
            chunk["custom_outputs"] = outputs
            events[last] = b"data: " + dumps(chunk) + b"\n\n"
            return StreamResponse(events, reply.delay_s, reply.status, reply.headers)
        return reply


__all__ = [
    "DISCOVERY_PATHS",
    "RESPONSES_ENDPOINTS",
    "RESPONSES_PATH",
    "WORKSPACE_ID",
    "ResponsesApi",
    "ResponsesEndpoint",
    "chat_body",
]

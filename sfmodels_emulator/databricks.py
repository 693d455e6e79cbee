"""Databricks Foundation Model serving endpoints: OAuth M2M tokens, chat, completions, embeddings.

``/oidc/v1/token`` mints for a service principal (``grant_type=client_credentials``, its id and
secret as HTTP basic auth or form fields) and exchanges a workload identity's JWT (RFC 8693
``grant_type=urn:ietf:params:oauth:grant-type:token-exchange`` with ``subject_token`` and
``subject_token_type=urn:ietf:params:oauth:token-type:jwt``, and ``client_id`` for a service
principal's federation policy). The exchange accepts any well-formed, unexpired JWT, or only the
ones given as ``databricks_oidc_tokens``; a refusal is the OAuth error body of a token request
(``invalid_request`` for the subject token, as RFC 8693 says; ``invalid_client`` for an unknown
client id).

Both the native ``/serving-endpoints/{endpoint}/invocations`` route and the OpenAI-compatible
``/serving-endpoints/chat/completions``, ``/completions`` and ``/embeddings`` routes are served.
"""

from __future__ import annotations

import base64
import binascii
import json
import re
import time
import urllib.parse
import uuid
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from .catalogue import DATABRICKS_ENDPOINTS
from .common import (
    SSE_DONE,
    BodyError,
    basic_auth,
    bearer_token,
    is_int,
    is_number,
    json_response,
    now_s,
    parse_form,
    parse_json_object,
    sse_event,
)
from .react import react_reply
from .refusals import check_inputs, check_prompt
from .refusals import message as refusal_message
from .server import Reply, Request, Response, StreamResponse
from .shapes import databricks_error, reasoning_delta, reasoning_parts, reasoning_summary
from .state import State
from .text.embeddings import embedding_base64, embedding_json
from .text.replies import generate_reply
from .text.structured_output import json_object_output, structured_output
from .text.tokens import apply_stop, count_tokens, split_fragments, split_pieces, truncate_tokens
from .text.tool_calls import plan_tool_calls
from .text.turns import Turn

EMBEDDING_DIMENSIONS = 1024
MAX_TOOLS = 32
NOT_FOUND_MESSAGE = (
    "The given endpoint does not exist, please retry after checking the specified model and "
    "version deployment exists."
)


@dataclass(frozen=True)
class Endpoint:
    name: str
    task: str  # "chat" or "embeddings"
    served_model: str


ENDPOINTS: dict[str, Endpoint] = {
    e.name: e
    for e in (
        Endpoint(
            "databricks-meta-llama-3-3-70b-instruct", "chat", "meta-llama-3.3-70b-instruct-121024"
        ),
        Endpoint("databricks-claude-sonnet-4-5", "chat", "claude-sonnet-4-5-20250929"),
        Endpoint("databricks-gpt-oss-120b", "chat", "gpt-oss-120b-080525"),
        Endpoint("databricks-llama-4-maverick", "chat", "llama-4-maverick-17b-128e-instruct"),
        Endpoint("databricks-gemini-2-5-pro", "chat", "gemini-2.5-pro"),
        Endpoint("databricks-gte-large-en", "embeddings", "gte-large-en-v1.5"),
        Endpoint("databricks-bge-large-en", "embeddings", "bge-large-en-v1.5"),
    )
}
# Endpoints whose real counterparts answer in other shapes (see catalogue.DATABRICKS_SHAPES).
ENDPOINTS.update({name: Endpoint(name, task, served) for name, task, served in
                  DATABRICKS_ENDPOINTS})

_ROLES = ("system", "user", "assistant", "tool")
_TOOL_NAME_RE = re.compile(r"^[A-Za-z0-9_.-]{1,64}$")


def error(
    status: int, code: str, message: str, headers: tuple[tuple[str, str], ...] = ()
) -> Response:
    return json_response(status, {"error_code": code, "message": message}, headers)


def _bad(exc: BodyError) -> Response:
    return error(400, "BAD_REQUEST", f"Invalid request: {exc.message}")


def _usage(prompt: int, completion: int) -> dict[str, int]:
    return {
        "prompt_tokens": prompt,
        "completion_tokens": completion,
        "total_tokens": prompt + completion,
    }


# ---- request validation ------------------------------------------------------------------


def _opt_number(
    body: Mapping[str, Any], name: str, low: float, high: float, *, low_open: bool = False
) -> None:
    value = body.get(name)
    if value is None:
        return
    if not is_number(value):
        raise BodyError(f"'{name}' must be a number")
    if value > high or value < low or (low_open and value == low):
        side = "greater than" if low_open else "at least"
        raise BodyError(f"'{name}' must be {side} {low} and at most {high}, got {value}")


def _opt_int(body: Mapping[str, Any], name: str, low: int, high: int | None = None) -> int | None:
    value = body.get(name)
    if value is None:
        return None
    if not is_int(value):
        raise BodyError(f"'{name}' must be an integer")
    if value < low or (high is not None and value > high):
        limit = f"between {low} and {high}" if high is not None else f"at least {low}"
        raise BodyError(f"'{name}' must be {limit}, got {value}")
    return int(value)


@dataclass
class Generation:
    """Sampling options shared by chat and completions."""

    n: int = 1
    max_tokens: int | None = None
    stop: list[str] = field(default_factory=list)
    stream: bool = False
    #: stream_options.include_usage as the request set it (None: not set).
    include_usage: bool | None = None


def _generation_options(body: Mapping[str, Any]) -> Generation:
    _opt_number(body, "temperature", 0.0, 2.0)
    _opt_number(body, "top_p", 0.0, 1.0, low_open=True)
    _opt_int(body, "top_k", 1)
    n = _opt_int(body, "n", 1, 5) or 1
    max_tokens = _opt_int(body, "max_tokens", 1)
    stop_value = body.get("stop")
    if stop_value is None:
        stop: list[str] = []
    elif isinstance(stop_value, str):
        stop = [stop_value]
    elif isinstance(stop_value, list) and all(isinstance(s, str) for s in stop_value):
        stop = list(stop_value)
    else:
        raise BodyError("'stop' must be a string or a list of strings")
    stream = body.get("stream", False)
    if stream is None:
        stream = False
    if not isinstance(stream, bool):
        raise BodyError("'stream' must be a boolean")
    stream_options = body.get("stream_options")
    include_usage = None
    if stream_options is not None:
        if not isinstance(stream_options, Mapping):
            raise BodyError("'stream_options' must be an object")
        include_usage = stream_options.get("include_usage")
        if include_usage is not None and not isinstance(include_usage, bool):
            raise BodyError("'stream_options.include_usage' must be a boolean")
    return Generation(
        n=n, max_tokens=max_tokens, stop=stop, stream=stream, include_usage=include_usage
    )


def _content_text(content: Any, where: str) -> str:
    if isinstance(content, str):
        return content
    if isinstance(content, list):
        texts: list[str] = []
        for j, part in enumerate(content):
            if not isinstance(part, Mapping):
                raise BodyError(f"'{where}.content[{j}]' must be an object")
            kind = part.get("type")
            if kind == "text":
                text = part.get("text")
                if not isinstance(text, str):
                    raise BodyError(f"'{where}.content[{j}].text' must be a string")
                texts.append(text)
            elif kind != "image_url":
                raise BodyError(f"'{where}.content[{j}].type' {kind!r} is not supported")
        return "\n".join(texts)
    raise BodyError(f"'{where}.content' must be a string or a list of content parts")


@dataclass
class ChatRequest:
    turns: list[Turn]
    prompt_tokens: int
    options: Generation
    tools: list[Mapping[str, Any]]
    tool_choice: Any
    response_format: Mapping[str, Any] | None


def _parse_messages(messages: Any) -> tuple[list[Turn], int]:
    if messages is None:
        raise BodyError("'messages' is a required field")
    if not isinstance(messages, list):
        raise BodyError("'messages' must be a list")
    if not messages:
        raise BodyError("'messages' must contain at least one message")
    turns: list[Turn] = []
    tokens = 0
    for i, message in enumerate(messages):
        where = f"messages[{i}]"
        if not isinstance(message, Mapping):
            raise BodyError(f"'{where}' must be an object")
        role = message.get("role")
        if role not in _ROLES:
            raise BodyError(f"'{where}.role' must be one of {', '.join(_ROLES)}, got {role!r}")
        content = message.get("content")
        tool_calls = message.get("tool_calls")
        if content is None:
            if not (role == "assistant" and tool_calls):
                raise BodyError(f"'{where}.content' is a required field")
            text = ""
        else:
            text = _content_text(content, where)
        if tool_calls is not None:
            if role != "assistant":
                raise BodyError(f"'{where}.tool_calls' is only allowed on assistant messages")
            if not isinstance(tool_calls, list):
                raise BodyError(f"'{where}.tool_calls' must be a list")
            for j, call in enumerate(tool_calls):
                at = f"{where}.tool_calls[{j}]"
                function = call.get("function") if isinstance(call, Mapping) else None
                if (
                    not isinstance(call, Mapping)
                    or not isinstance(call.get("id"), str)
                    or not isinstance(function, Mapping)
                    or not isinstance(function.get("name"), str)
                    or not isinstance(function.get("arguments"), str)
                ):
                    raise BodyError(
                        f"'{at}' must have an 'id' and a 'function' with 'name' and 'arguments'"
                    )
                tokens += count_tokens(function["name"]) + count_tokens(function["arguments"])
        if role == "tool" and not isinstance(message.get("tool_call_id"), str):
            raise BodyError(f"'{where}.tool_call_id' is required on tool messages")
        tokens += count_tokens(text)
        turns.append((role, text))
    return turns, tokens


def _parse_tools(body: Mapping[str, Any]) -> tuple[list[Mapping[str, Any]], Any]:
    tools = body.get("tools")
    if tools is None:
        tools = []
    if not isinstance(tools, list):
        raise BodyError("'tools' must be a list")
    if len(tools) > MAX_TOOLS:
        raise BodyError(f"'tools' has {len(tools)} entries; at most {MAX_TOOLS} are allowed")
    names: list[str] = []
    for i, tool in enumerate(tools):
        function = tool.get("function") if isinstance(tool, Mapping) else None
        if (
            not isinstance(tool, Mapping)
            or tool.get("type") != "function"
            or not isinstance(function, Mapping)
        ):
            raise BodyError(f"'tools[{i}]' must be {{'type': 'function', 'function': {{...}}}}")
        name = function.get("name")
        if not isinstance(name, str) or not _TOOL_NAME_RE.match(name):
            raise BodyError(f"'tools[{i}].function.name' must match [A-Za-z0-9_.-]{{1,64}}")
        parameters = function.get("parameters")
        if parameters is not None and not isinstance(parameters, Mapping):
            raise BodyError(f"'tools[{i}].function.parameters' must be a JSON schema object")
        description = function.get("description")
        if description is not None and not isinstance(description, str):
            raise BodyError(f"'tools[{i}].function.description' must be a string")
        names.append(name)
    choice = body.get("tool_choice")
    if choice is None or choice in ("auto", "none"):
        return tools, choice
    if choice == "required":
        if not tools:
            raise BodyError("'tool_choice' requires 'tools'")
        return tools, choice
    if isinstance(choice, Mapping) and choice.get("type") == "function":
        function = choice.get("function")
        name = function.get("name") if isinstance(function, Mapping) else None
        if not isinstance(name, str):
            raise BodyError("'tool_choice.function.name' must be a string")
        if name not in names:
            raise BodyError(f"'tool_choice' names a function that is not in 'tools': {name}")
        return tools, choice
    raise BodyError(
        "'tool_choice' must be 'auto', 'none', 'required' or "
        "{'type': 'function', 'function': {'name': ...}}"
    )


def _parse_response_format(body: Mapping[str, Any]) -> Mapping[str, Any] | None:
    value = body.get("response_format")
    if value is None:
        return None
    if not isinstance(value, Mapping):
        raise BodyError("'response_format' must be an object")
    kind = value.get("type")
    if kind == "text":
        return None
    if kind == "json_object":
        return value
    if kind == "json_schema":
        spec = value.get("json_schema")
        if not isinstance(spec, Mapping) or not isinstance(spec.get("schema"), Mapping):
            raise BodyError("'response_format.json_schema.schema' must be a JSON schema object")
        name = spec.get("name")
        if name is not None and not isinstance(name, str):
            raise BodyError("'response_format.json_schema.name' must be a string")
        return value
    raise BodyError("'response_format.type' must be 'text', 'json_object' or 'json_schema'")


def parse_chat(body: Mapping[str, Any]) -> ChatRequest:
    turns, tokens = _parse_messages(body.get("messages"))
    options = _generation_options(body)
    tools, choice = _parse_tools(body)
    if tools:
        tokens += count_tokens(json.dumps(tools))
    return ChatRequest(turns, tokens, options, tools, choice, _parse_response_format(body))


# ---- responses ---------------------------------------------------------------------------


@dataclass
class Choice:
    content: str | None
    finish_reason: str
    tool_calls: list[dict[str, Any]] = field(default_factory=list)
    #: A reasoning model's reasoning summary (sent as a content part before the text).
    reasoning: str | None = None

    def completion_tokens(self) -> int:
        total = count_tokens(self.content or "") + count_tokens(self.reasoning or "")
        for call in self.tool_calls:
            function = call["function"]
            total += count_tokens(function["name"]) + count_tokens(function["arguments"])
        return total


def _finish(text: str, options: Generation) -> tuple[str, str]:
    text, _ = apply_stop(text, options.stop)
    if options.max_tokens is not None:
        text, cut = truncate_tokens(text, options.max_tokens)
        if cut:
            return text, "length"
    return text, "stop"


def _last_user_text(turns: Sequence[Turn]) -> str:
    for role, text in reversed(turns):
        if role == "user":
            return text
    return ""


def chat_choices(request: ChatRequest) -> list[Choice]:
    plans = plan_tool_calls(request.tools, request.tool_choice, request.turns)
    choices: list[Choice] = []
    if plans:
        for _ in range(request.options.n):
            calls = [
                {
                    "id": "call_" + uuid.uuid4().hex[:24],
                    "type": "function",
                    "function": {"name": plan.name, "arguments": plan.arguments},
                }
                for plan in plans
            ]
            choices.append(Choice(None, "tool_calls", calls))
        return choices
    answer = react_reply(request.turns) or generate_reply(request.turns)
    text = answer
    fmt = request.response_format
    if fmt is not None:
        if fmt.get("type") == "json_schema":
            schema = fmt["json_schema"]["schema"]
            text = structured_output(schema, _last_user_text(request.turns), answer)
        else:
            conversation = "\n".join(t for r, t in request.turns if r in ("system", "user"))
            text = json_object_output(conversation, answer)
    content, finish_reason = _finish(text, request.options)
    return [Choice(content, finish_reason) for _ in range(request.options.n)]


def _chat_body(
    cid: str, created: int, model: str, choices: Sequence[Choice], prompt_tokens: int
) -> dict[str, Any]:
    out = []
    for index, choice in enumerate(choices):
        content: Any = choice.content
        if choice.reasoning is not None:
            content = reasoning_parts(choice.reasoning, choice.content or "")
        message: dict[str, Any] = {"role": "assistant", "content": content}
        if choice.tool_calls:
            message["tool_calls"] = choice.tool_calls
        out.append(
            {
                "index": index,
                "message": message,
                "finish_reason": choice.finish_reason,
                "logprobs": None,
            }
        )
    completion = sum(c.completion_tokens() for c in choices)
    return {
        "id": cid,
        "object": "chat.completion",
        "created": created,
        "model": model,
        "choices": out,
        "usage": _usage(prompt_tokens, completion),
    }


class _UsageTracker:
    """Puts usage on stream chunks the way ``mode`` says (see ``state.USAGE_MODES``)."""

    def __init__(self, prompt_tokens: int, mode: str, include_usage: bool | None) -> None:
        self.prompt_tokens = prompt_tokens
        if mode == "on_request":
            mode = "final_chunk" if include_usage else "none"
        self.mode = mode
        self.done = 0  # completion tokens of finished parts

    def attach(self, chunk: dict[str, Any], current: int, last: bool) -> dict[str, Any]:
        if self.mode == "every" or (self.mode == "last" and last):
            chunk["usage"] = _usage(self.prompt_tokens, self.done + current)
        elif self.mode == "null_until_last":
            chunk["usage"] = _usage(self.prompt_tokens, self.done + current) if last else {
                "prompt_tokens": self.prompt_tokens,
                "completion_tokens": None,
                "total_tokens": None,
            }
        return chunk

    def final(self, template: dict[str, Any]) -> list[bytes]:
        """The usage-only chunk that ends a ``final_chunk`` stream (none in other modes)."""
        if self.mode != "final_chunk":
            return []
        body = {**template, "choices": [], "usage": _usage(self.prompt_tokens, self.done)}
        return [sse_event(body)]


def _tool_call_deltas(
    call: dict[str, Any], j: int, indexed: bool
) -> list[tuple[dict[str, Any], str]]:
    """The deltas of one streamed tool call and the arguments sent so far after each: the first
    has its id and name, the others argument fragments. Without ``indexed`` (Gemini's shape) no
    delta has an ``index``: a new id starts a call, a delta without one continues it."""
    function = call["function"]
    where = {"index": j} if indexed else {}
    first = {**where, "id": call["id"], "type": "function",
             "function": {"name": function["name"], "arguments": ""}}
    out = [({"tool_calls": [first]}, "")]
    sent = ""
    for fragment in split_fragments(function["arguments"]):
        sent += fragment
        out.append(({"tool_calls": [{**where, "function": {"arguments": fragment}}]}, sent))
    return out


def _chat_stream_events(
    cid: str,
    created: int,
    model: str,
    choices: Sequence[Choice],
    prompt_tokens: int,
    usage_mode: str,
    include_usage: bool | None = None,
    tool_call_index: bool = True,
) -> list[bytes]:
    usage = _UsageTracker(prompt_tokens, usage_mode, include_usage)
    events: list[bytes] = []
    template = {"id": cid, "object": "chat.completion.chunk", "created": created, "model": model}

    def chunk(
        index: int, delta: dict[str, Any], finish: str | None, current: int, last: bool = False
    ) -> None:
        body = {
            **template,
            "choices": [
                {"index": index, "delta": delta, "finish_reason": finish, "logprobs": None}
            ],
        }
        events.append(sse_event(usage.attach(body, current, last)))

    for index, choice in enumerate(choices):
        chunk(index, {"role": "assistant", "content": ""}, None, 0)
        reasoned = ""
        for piece in split_pieces(choice.reasoning or ""):
            reasoned += piece
            chunk(index, {"content": reasoning_delta(piece)}, None, count_tokens(reasoned))
        usage.done += count_tokens(reasoned)
        text = choice.content or ""
        sent = ""
        for piece in split_pieces(text):
            sent += piece
            chunk(index, {"content": piece}, None, count_tokens(sent))
        usage.done += count_tokens(text)
        for j, call in enumerate(choice.tool_calls):
            function = call["function"]
            name_tokens = count_tokens(function["name"])
            for delta, arguments in _tool_call_deltas(call, j, tool_call_index):
                chunk(index, delta, None, name_tokens + count_tokens(arguments))
            usage.done += name_tokens + count_tokens(function["arguments"])
        final_delta: dict[str, Any] = {} if choice.tool_calls else {"content": ""}
        chunk(index, final_delta, choice.finish_reason, 0, last=index == len(choices) - 1)
    events.extend(usage.final(template))
    events.append(SSE_DONE)
    return events


def _completion_stream_events(
    cid: str,
    created: int,
    model: str,
    choices: Sequence[tuple[str, str]],
    prompt_tokens: int,
    usage_mode: str,
    include_usage: bool | None = None,
) -> list[bytes]:
    usage = _UsageTracker(prompt_tokens, usage_mode, include_usage)
    events: list[bytes] = []
    template = {"id": cid, "object": "text_completion", "created": created, "model": model}
    for index, (text, finish_reason) in enumerate(choices):
        sent = ""
        for piece in split_pieces(text):
            sent += piece
            body = {
                "id": cid,
                "object": "text_completion",
                "created": created,
                "model": model,
                "choices": [
                    {"index": index, "text": piece, "finish_reason": None, "logprobs": None}
                ],
            }
            events.append(sse_event(usage.attach(body, count_tokens(sent), False)))
        usage.done += count_tokens(text)
        body = {
            "id": cid,
            "object": "text_completion",
            "created": created,
            "model": model,
            "choices": [
                {"index": index, "text": "", "finish_reason": finish_reason, "logprobs": None}
            ],
        }
        events.append(sse_event(usage.attach(body, 0, index == len(choices) - 1)))
    events.extend(usage.final(template))
    events.append(SSE_DONE)
    return events


TOKEN_EXCHANGE_GRANT = "urn:ietf:params:oauth:grant-type:token-exchange"
JWT_TOKEN_TYPE = "urn:ietf:params:oauth:token-type:jwt"


def _b64_json(part: str) -> Any:
    try:
        return json.loads(base64.urlsafe_b64decode(part + "=" * (-len(part) % 4)))
    except (binascii.Error, ValueError):
        return None


def jwt_claims(token: str) -> dict[str, Any] | None:
    """The claims of a well-formed JWT (three base64url parts, a header naming its ``alg`` and
    a JSON object of claims; the signature is not checked), or None."""
    parts = token.split(".")
    if len(parts) != 3 or not all(re.fullmatch(r"[A-Za-z0-9_-]+", p) for p in parts[:2]):
        return None
    header, claims = _b64_json(parts[0]), _b64_json(parts[1])
    if not isinstance(header, dict) or not isinstance(header.get("alg"), str):
        return None
    return claims if isinstance(claims, dict) else None


class DatabricksApi:
    """Handlers for the Databricks routes."""

    def __init__(self, state: State) -> None:
        self.state = state

    # ---- tokens --------------------------------------------------------------------------

    def token(self, request: Request) -> Response:
        form = parse_form(request)
        if form.get("grant_type") == TOKEN_EXCHANGE_GRANT:
            return self._exchange(form)
        if form.get("grant_type") != "client_credentials":
            return json_response(
                400,
                {
                    "error": "unsupported_grant_type",
                    "error_description": "grant_type must be client_credentials or "
                    + TOKEN_EXCHANGE_GRANT,
                },
            )
        basic = basic_auth(request)
        client_id: str | None
        client_secret: str | None
        if basic is not None:
            client_id, client_secret = basic
        else:
            client_id, client_secret = form.get("client_id"), form.get("client_secret")
        credentials = self.state.credentials
        if (
            client_id != credentials.databricks_client_id
            or client_secret != credentials.databricks_client_secret
        ):
            return json_response(
                401,
                {"error": "invalid_client", "error_description": "Client authentication failed"},
            )
        scope = form.get("scope") or "all-apis"
        return json_response(200, self.state.mint_databricks(scope))

    def _exchange(self, form: Mapping[str, str]) -> Response:
        """Workload identity federation: a JWT from the platform for a Databricks token."""

        def refused(description: str, status: int = 400, code: str = "invalid_request") -> Response:
            return json_response(status, {"error": code, "error_description": description})

        if form.get("subject_token_type") != JWT_TOKEN_TYPE:
            return refused(f"subject_token_type must be {JWT_TOKEN_TYPE}")
        subject = form.get("subject_token") or ""
        if not subject:
            return refused("subject_token is required")
        claims = jwt_claims(subject)
        if claims is None:
            return refused("subject_token is not a well-formed JWT")
        exp = claims.get("exp")
        if isinstance(exp, (int, float)) and not isinstance(exp, bool) and exp <= time.time():
            return refused("subject_token has expired")
        allowed = self.state.credentials.databricks_oidc_tokens
        if allowed and subject not in allowed:
            return refused("subject_token does not match any federation policy")
        client_id = form.get("client_id")
        if client_id and client_id != self.state.credentials.databricks_client_id:
            return refused("Client authentication failed", 401, "invalid_client")
        scope = form.get("scope") or "all-apis"
        sub = claims.get("sub")
        return json_response(
            200, self.state.mint_databricks(scope, subject=sub if isinstance(sub, str) else None)
        )

    # ---- API routes ----------------------------------------------------------------------

    def _check_access(self, request: Request) -> Response | None:
        token = bearer_token(request)
        if token is None:
            return error(
                401,
                "UNAUTHENTICATED",
                "Credential was not sent or was of an unsupported type for this API.",
            )
        if not self.state.databricks_token_valid(token):
            return error(401, "UNAUTHENTICATED", "Invalid access token or token expired.")
        return None

    def _rate_limited(self, endpoint: str) -> Response | None:
        wait = self.state.rate_check(endpoint)
        if wait is None:
            return None
        headers = (("retry-after", str(wait)),) if self.state.setting(
            "rate_limit_retry_after", endpoint) else ()
        return error(
            429,
            "REQUEST_LIMIT_EXCEEDED",
            f"Exceeded workspace QPS rate limit for serving endpoint {endpoint}.",
            headers=headers,
        )

    @staticmethod
    def endpoint_name(request: Request) -> str | None:
        """The endpoint a request is for: from the invocations path, else the body's model."""
        path = request.path.rstrip("/")
        prefix, suffix = "/serving-endpoints/", "/invocations"
        if path.startswith(prefix) and path.endswith(suffix):
            return urllib.parse.unquote(path[len(prefix) : -len(suffix)]) or None
        try:
            body = json.loads(request.body or b"{}")
        except ValueError:
            return None
        model = body.get("model") if isinstance(body, dict) else None
        return model if isinstance(model, str) else None

    def shape_error(self, reply: Reply, request: Request) -> Reply:
        """An API error body in the shape (``error_shape``) of the endpoint it is for."""
        if not isinstance(reply, Response) or reply.status < 400:
            return reply
        endpoint = self.endpoint_name(request)
        shape = self.state.setting("error_shape", endpoint)
        if shape == "plain":
            return reply
        try:
            body = json.loads(reply.body)
        except ValueError:
            return reply
        if not isinstance(body, dict) or "error_code" not in body:
            return reply
        shaped = databricks_error(body, reply.status, shape, request.request_id)
        return json_response(reply.status, shaped, reply.headers)

    def invocations(self, request: Request, endpoint_name: str) -> Reply:
        problem = self._check_access(request)
        if problem is not None:
            return problem
        endpoint = ENDPOINTS.get(endpoint_name)
        if endpoint is None:
            return error(404, "RESOURCE_DOES_NOT_EXIST", NOT_FOUND_MESSAGE)
        try:
            body = parse_json_object(request)
        except BodyError as exc:
            return _bad(exc)
        if "messages" in body:
            task = "chat"
        elif "prompt" in body:
            task = "completions"
        elif "input" in body:
            task = "embeddings"
        else:
            return error(
                400,
                "BAD_REQUEST",
                "Invalid request: the body must have 'messages' (chat), 'prompt' "
                "(completions) or 'input' (embeddings)",
            )
        return self._dispatch(endpoint, task, body)

    def openai(self, request: Request, task: str) -> Reply:
        problem = self._check_access(request)
        if problem is not None:
            return problem
        try:
            body = parse_json_object(request)
        except BodyError as exc:
            return _bad(exc)
        name = body.get("model")
        if not isinstance(name, str) or not name:
            return error(
                400,
                "BAD_REQUEST",
                "Invalid request: 'model' is required and must name a serving endpoint",
            )
        endpoint = ENDPOINTS.get(name)
        if endpoint is None:
            return error(404, "RESOURCE_DOES_NOT_EXIST", NOT_FOUND_MESSAGE)
        return self._dispatch(endpoint, task, body)

    def _dispatch(self, endpoint: Endpoint, task: str, body: Mapping[str, Any]) -> Reply:
        if (task == "embeddings") != (endpoint.task == "embeddings"):
            wanted = "embeddings" if task == "embeddings" else "chat or completions"
            return error(
                400,
                "BAD_REQUEST",
                f"Invalid request: endpoint {endpoint.name} serves {endpoint.task} "
                f"and does not accept {wanted} requests",
            )
        limited = self._rate_limited(endpoint.name)
        if limited is not None:
            return limited
        try:
            if task == "chat":
                return self._chat(endpoint, body)
            if task == "completions":
                return self._completions(endpoint, body)
            return self._embed(endpoint, body)
        except BodyError as exc:
            return _bad(exc)

    def _stream_delay(self) -> float:
        return self.state.settings.stream_delay_ms / 1000.0

    def _chat(self, endpoint: Endpoint, body: Mapping[str, Any]) -> Reply:
        request = parse_chat(body)
        refused = check_prompt(self.state.settings, [text for _, text in request.turns])
        if refused is not None:
            return error(400, "BAD_REQUEST", refusal_message(refused, batch=False))
        choices = chat_choices(request)
        name = endpoint.name
        if self.state.setting("reasoning", name):
            for choice in choices:
                if not choice.tool_calls:
                    choice.reasoning = reasoning_summary(request.turns)
        self.state.charge_tokens(
            name, request.prompt_tokens + sum(c.completion_tokens() for c in choices)
        )
        cid = "chatcmpl_" + str(uuid.uuid4())
        created = now_s()
        options = request.options
        if options.stream and self.state.setting("stream_format", name) == "sse":
            events = _chat_stream_events(
                cid,
                created,
                endpoint.served_model,
                choices,
                request.prompt_tokens,
                self.state.setting("usage_mode", name),
                options.include_usage,
                self.state.setting("tool_call_index", name),
            )
            return StreamResponse(events, self._stream_delay())
        # Not streamed, or an endpoint that answers stream=true with one JSON body.
        return json_response(
            200, _chat_body(cid, created, endpoint.served_model, choices, request.prompt_tokens)
        )

    def _completions(self, endpoint: Endpoint, body: Mapping[str, Any]) -> Reply:
        prompt = body.get("prompt")
        if isinstance(prompt, str):
            prompts = [prompt]
        elif isinstance(prompt, list) and prompt and all(isinstance(p, str) for p in prompt):
            prompts = list(prompt)
        else:
            raise BodyError("'prompt' must be a string or a non-empty list of strings")
        options = _generation_options(body)
        refused = check_inputs(self.state.settings, prompts)
        if refused is not None:
            return error(400, "BAD_REQUEST", refusal_message(refused, batch=len(prompts) > 1))
        prompt_tokens = sum(count_tokens(p) for p in prompts)
        results: list[tuple[str, str]] = []
        for text in prompts:
            result = _finish(generate_reply([("user", text)]), options)
            results.extend([result] * options.n)
        cid = "cmpl_" + str(uuid.uuid4())
        created = now_s()
        model = endpoint.served_model
        name = endpoint.name
        completion = sum(count_tokens(text) for text, _ in results)
        self.state.charge_tokens(name, prompt_tokens + completion)
        if options.stream and self.state.setting("stream_format", name) == "sse":
            events = _completion_stream_events(
                cid,
                created,
                model,
                results,
                prompt_tokens,
                self.state.setting("usage_mode", name),
                options.include_usage,
            )
            return StreamResponse(events, self._stream_delay())
        return json_response(
            200,
            {
                "id": cid,
                "object": "text_completion",
                "created": created,
                "model": model,
                "choices": [
                    {"index": i, "text": text, "finish_reason": finish, "logprobs": None}
                    for i, (text, finish) in enumerate(results)
                ],
                "usage": _usage(prompt_tokens, completion),
            },
        )

    def _embed(self, endpoint: Endpoint, body: Mapping[str, Any]) -> Response:
        value = body.get("input")
        if isinstance(value, str):
            texts = [value]
        elif isinstance(value, list) and all(isinstance(t, str) for t in value):
            texts = list(value)
        else:
            raise BodyError("'input' must be a string or a list of strings")
        if not texts:
            raise BodyError("'input' must contain at least one string")
        self.state.count_inputs("databricks", len(texts))
        if self.state.inputs_refused(endpoint.name, len(texts)) is not None:
            # A small workspace's per-request token limit: the same batch fails every time.
            return error(
                429,
                "REQUEST_LIMIT_EXCEEDED",
                f"Exceeded workspace input tokens per minute rate limit for serving endpoint "
                f"{endpoint.name}.",
            )
        limit = self.state.setting("embedding_max_batch", endpoint.name)
        if len(texts) > limit:
            raise BodyError(
                f"'input' has {len(texts)} items; the maximum batch size is {limit} inputs"
            )
        instruction = body.get("instruction")
        if instruction is not None and not isinstance(instruction, str):
            raise BodyError("'instruction' must be a string")
        encoding = body.get("encoding_format")
        if encoding is not None:
            if self.state.setting("embedding_base64", endpoint.name) == "reject":
                return error(400, "BAD_REQUEST",
                             "Invalid request: encoding_format is not a supported parameter.")
            if encoding not in ("float", "base64"):
                raise BodyError("'encoding_format' must be 'float' or 'base64'")
            if self.state.setting("embedding_base64", endpoint.name) == "ignore":
                encoding = None
        refused = check_inputs(self.state.settings, texts)
        if refused is not None:
            return error(400, "BAD_REQUEST", refusal_message(refused, batch=True))
        tokens = sum(count_tokens(t) for t in texts)
        self.state.charge_tokens(endpoint.name, tokens)
        if encoding == "base64":
            vectors = ['"' + embedding_base64(t, EMBEDDING_DIMENSIONS) + '"' for t in texts]
        else:
            vectors = [embedding_json(t, EMBEDDING_DIMENSIONS) for t in texts]
        data = ",".join(
            '{"object":"embedding","index":' + str(i) + ',"embedding":' + vector + "}"
            for i, vector in enumerate(vectors)
        )
        usage = f'{{"prompt_tokens":{tokens},"total_tokens":{tokens}}}'
        payload = (
            f'{{"id":"{uuid.uuid4()}","object":"list","model":"{endpoint.served_model}",'
            f'"data":[{data}],"usage":{usage}}}'
        )
        return Response(200, payload.encode("utf-8"))

    # ---- faults and misses ---------------------------------------------------------------

    def fault(self, kind: str) -> Response:
        retry = (("retry-after", self.state.retry_after()),)
        if kind == "429":
            return error(
                429,
                "REQUEST_LIMIT_EXCEEDED",
                "Exceeded workspace QPS rate limit for serving endpoint.",
                retry,
            )
        if kind in ("503", "423"):  # Databricks documents no 423: busy is a 503 there
            return error(
                503,
                "TEMPORARILY_UNAVAILABLE",
                "The service is temporarily unavailable. Please retry.",
                retry,
            )
        return error(500, "INTERNAL_ERROR", "Internal error while serving the request.")

    @staticmethod
    def not_found(request: Request) -> Response:
        return error(404, "ENDPOINT_NOT_FOUND", f"No API found for 'POST {request.path}'")

    @staticmethod
    def method_not_allowed(request: Request) -> Response:
        return error(
            405,
            "METHOD_NOT_ALLOWED",
            f"Method {request.method} is not allowed on {request.path}",
            (("allow", "POST"),),
        )


__all__ = [
    "EMBEDDING_DIMENSIONS",
    "ENDPOINTS",
    "MAX_TOOLS",
    "NOT_FOUND_MESSAGE",
    "ChatRequest",
    "Choice",
    "DatabricksApi",
    "Endpoint",
    "Generation",
    "chat_choices",
    "error",
    "parse_chat",
]

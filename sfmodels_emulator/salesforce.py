"""The Salesforce Models API: OAuth client-credentials tokens, chat, text, embeddings, feedback."""

from __future__ import annotations

import uuid
from collections.abc import Callable, Mapping
from typing import Any

from .common import (
    BodyError,
    basic_auth,
    bearer_token,
    is_number,
    json_response,
    now_s,
    parse_form,
    parse_json_object,
    random_id,
)
from .protocol import protocol_reply
from .server import Request, Response
from .state import State
from .text import count_tokens, embedding_json, generate_reply

API_PREFIX = "/einstein/platform/v1"
EMBEDDING_DIMENSIONS = 1536
EMBEDDING_MODEL = "text-embedding-ada-002-v2"
APP_CONTEXT = ("x-sfdc-app-context", "EinsteinGPT")
FEATURE_ID = ("x-client-feature-id", "ai-platform-models-connected-app")
MAX_FEEDBACK_TEXT = 1024

_MESSAGE_CODES = {
    400: "E40001",
    401: "E40101",
    403: "E40301",
    404: "E40401",
    405: "E40501",
    429: "E42901",
    500: "E50001",
    503: "E50301",
}
_ROLES = ("system", "user", "assistant")
_TOXICITY_CATEGORIES = (
    "identity",
    "hate",
    "profanity",
    "violence",
    "sexual",
    "physical",
    "toxicity",
)
_CONTENT_QUALITY = {
    "scanToxicity": {
        "isDetected": False,
        "categories": [{"categoryName": name, "score": 0.0} for name in _TOXICITY_CATEGORIES],
    }
}
# Served model behind a model API name (checked in order, by substring).
_SERVED_MODELS = (
    ("GPT4OmniMini", "gpt-4o-mini-2024-07-18"),
    ("GPT4Omni", "gpt-4o-2024-08-06"),
    ("GPT41Mini", "gpt-4.1-mini-2025-04-14"),
    ("GPT41", "gpt-4.1-2025-04-14"),
    ("GPT35Turbo", "gpt-35-turbo"),
    ("Claude", "claude-3-7-sonnet-20250219"),
    ("Gemini", "gemini-2.5-flash-001"),
)


def model_kind(model: str) -> str | None:
    """``"chat"`` or ``"embedding"`` for a model API name this org has, else ``None``."""
    if not model.startswith("sfdc_ai__Default") or len(model) <= len("sfdc_ai__Default"):
        return None
    return "embedding" if "Embedding" in model else "chat"


def served_model(model: str) -> str:
    for marker, served in _SERVED_MODELS:
        if marker in model:
            return served
    return "gpt-4o-mini-2024-07-18"


def error(
    status: int,
    code: str,
    message: str,
    *,
    field: str | None = None,
    header: str | None = None,
    headers: tuple[tuple[str, str], ...] = (),
) -> Response:
    body: dict[str, Any] = {
        "errorCode": code,
        "messageCode": _MESSAGE_CODES.get(status, "E00001"),
        "message": message,
    }
    if field is not None:
        body["targets"] = [{"type": "FIELD", "reference": f"$['{field}']"}]
    elif header is not None:
        body["targets"] = [{"type": "HTTP_HEADER", "reference": header}]
    return json_response(status, body, headers)


def oauth_error(status: int, code: str, description: str) -> Response:
    return json_response(status, {"error": code, "error_description": description})


def _body_error(exc: BodyError) -> Response:
    code = "REQUIRED_FIELD_MISSING" if exc.missing else "INVALID_INPUT"
    return error(400, code, exc.message, field=exc.field)


def _require(body: Mapping[str, Any], field: str) -> Any:
    if field not in body or body[field] is None:
        raise BodyError(f"Required field is missing: {field}", field=field, missing=True)
    return body[field]


def _string(value: Any, field: str) -> str:
    if not isinstance(value, str):
        raise BodyError(f"Field {field} must be a string", field=field)
    return value


def _validate_options(body: Mapping[str, Any]) -> None:
    """``localization`` and ``tags``, optional on chat, text and embeddings."""
    localization = body.get("localization")
    if localization is not None:
        if not isinstance(localization, Mapping):
            raise BodyError("Field localization must be an object", field="localization")
        default = localization.get("defaultLocale")
        if default is None:
            raise BodyError(
                "Required field is missing: localization.defaultLocale",
                field="localization.defaultLocale",
                missing=True,
            )
        _string(default, "localization.defaultLocale")
        inputs = localization.get("inputLocales")
        if inputs is not None:
            if not isinstance(inputs, list):
                raise BodyError(
                    "Field localization.inputLocales must be an array",
                    field="localization.inputLocales",
                )
            for i, item in enumerate(inputs):
                where = f"localization.inputLocales[{i}]"
                if not isinstance(item, Mapping):
                    raise BodyError(f"Field {where} must be an object", field=where)
                if item.get("locale") is None:
                    raise BodyError(
                        f"Required field is missing: {where}.locale",
                        field=f"{where}.locale",
                        missing=True,
                    )
                _string(item["locale"], f"{where}.locale")
                probability = item.get("probability")
                if probability is not None and not (
                    is_number(probability) and 0 <= probability <= 1
                ):
                    raise BodyError(
                        f"Field {where}.probability must be a number between 0 and 1",
                        field=f"{where}.probability",
                    )
        expected = localization.get("expectedLocales")
        if expected is not None and (
            not isinstance(expected, list) or not all(isinstance(x, str) for x in expected)
        ):
            raise BodyError(
                "Field localization.expectedLocales must be an array of strings",
                field="localization.expectedLocales",
            )
    tags = body.get("tags")
    if tags is not None and not isinstance(tags, Mapping):
        raise BodyError("Field tags must be an object", field="tags")


def _usage(prompt_tokens: int, completion_tokens: int) -> dict[str, int]:
    return {
        "completion_tokens": completion_tokens,
        "prompt_tokens": prompt_tokens,
        "total_tokens": prompt_tokens + completion_tokens,
    }


class SalesforceApi:
    """Handlers for the Salesforce routes; ``base_url`` is the emulator's own URL."""

    def __init__(self, state: State, base_url: Callable[[], str]) -> None:
        self.state = state
        self.base_url = base_url

    # ---- tokens --------------------------------------------------------------------------

    def token(self, request: Request) -> Response:
        form = parse_form(request)
        if form.get("grant_type") != "client_credentials":
            return oauth_error(400, "unsupported_grant_type", "grant type not supported")
        client_id = form.get("client_id")
        client_secret = form.get("client_secret")
        basic = basic_auth(request)
        if basic is not None and client_id is None:
            client_id, client_secret = basic
        credentials = self.state.credentials
        if client_id != credentials.salesforce_client_id:
            return oauth_error(400, "invalid_client_id", "client identifier invalid")
        if client_secret != credentials.salesforce_client_secret:
            return oauth_error(400, "invalid_client", "invalid client credentials")
        return json_response(200, self.state.mint_salesforce(self.base_url()))

    @staticmethod
    def login_token(request: Request) -> Response:
        """What a generic login host answers to the client-credentials flow."""
        return oauth_error(400, "invalid_grant", "request not supported on this domain")

    # ---- API routes ----------------------------------------------------------------------

    def _check_access(self, request: Request) -> Response | None:
        token = bearer_token(request)
        if token is None or not self.state.salesforce_token_valid(token):
            return error(401, "INVALID_AUTH", "Access bearer token is missing or invalid")
        for name, expected in (APP_CONTEXT, FEATURE_ID):
            value = request.headers.get(name)
            if value is None:
                return error(
                    400, "REQUIRED_FIELD_MISSING", f"Missing required header: {name}", header=name
                )
            if value != expected:
                return error(
                    400,
                    "INVALID_INPUT",
                    f"Invalid value for header {name}: expected {expected}",
                    header=name,
                )
        return None

    def _check_model(self, model: str, want: str) -> Response | None:
        kind = model_kind(model)
        if kind is None:
            return error(404, "NOT_FOUND", f"Model {model} not found")
        if kind != want:
            what = "embeddings" if want == "embedding" else "text generation"
            return error(400, "INVALID_INPUT", f"Model {model} does not support {what}")
        return None

    def _rate_limited(self, key: str) -> Response | None:
        wait = self.state.rate_check(key)
        if wait is None:
            return None
        return error(
            429,
            "LIMIT_EXCEEDED",
            "Too many requests for the server to handle",
            headers=(("retry-after", str(wait)),),
        )

    def _prelude(self, request: Request, model: str | None, want: str) -> Response | None:
        problem = self._check_access(request)
        if problem is None and model is not None:
            problem = self._check_model(model, want)
        if problem is None:
            problem = self._rate_limited(model or "feedback")
        return problem

    def chat(self, request: Request, model: str) -> Response:
        problem = self._prelude(request, model, "chat")
        if problem is not None:
            return problem
        try:
            body = parse_json_object(request)
            messages = _require(body, "messages")
            if not isinstance(messages, list):
                raise BodyError("Field messages must be an array", field="messages")
            if not messages:
                raise BodyError(
                    "Field messages must contain at least one message", field="messages"
                )
            turns: list[tuple[str, str]] = []
            for i, message in enumerate(messages):
                where = f"messages[{i}]"
                if not isinstance(message, Mapping):
                    raise BodyError(f"Field {where} must be an object", field=where)
                if message.get("role") is None:
                    raise BodyError(
                        f"Required field is missing: {where}.role",
                        field=f"{where}.role",
                        missing=True,
                    )
                role = _string(message["role"], f"{where}.role")
                if role not in _ROLES:
                    raise BodyError(
                        f"Field {where}.role must be one of {', '.join(_ROLES)}",
                        field=f"{where}.role",
                    )
                if message.get("content") is None:
                    raise BodyError(
                        f"Required field is missing: {where}.content",
                        field=f"{where}.content",
                        missing=True,
                    )
                turns.append((role, _string(message["content"], f"{where}.content")))
            _validate_options(body)
        except BodyError as exc:
            return _body_error(exc)
        content = protocol_reply(turns) or generate_reply(turns)
        prompt_tokens = sum(count_tokens(text) for _, text in turns)
        created = now_s()
        return json_response(
            200,
            {
                "id": "chatcmpl-" + random_id(29),
                "generationDetails": {
                    "generations": [
                        {
                            "id": str(uuid.uuid4()),
                            "role": "assistant",
                            "content": content,
                            "timestamp": created,
                            "parameters": {"finish_reason": "stop", "index": 0, "logprobs": None},
                            "contentQuality": _CONTENT_QUALITY,
                        }
                    ],
                    "parameters": {
                        "created": created,
                        "model": served_model(model),
                        "object": "chat.completion",
                        "system_fingerprint": None,
                        "usage": _usage(prompt_tokens, count_tokens(content)),
                    },
                },
            },
        )

    def generations(self, request: Request, model: str) -> Response:
        problem = self._prelude(request, model, "chat")
        if problem is not None:
            return problem
        try:
            body = parse_json_object(request)
            prompt = _string(_require(body, "prompt"), "prompt")
            _validate_options(body)
        except BodyError as exc:
            return _body_error(exc)
        text = generate_reply([("user", prompt)])
        return json_response(
            200,
            {
                "id": "chatcmpl-" + random_id(29),
                "generation": {
                    "id": str(uuid.uuid4()),
                    "generatedText": text,
                    "contentQuality": _CONTENT_QUALITY,
                    "parameters": {"finish_reason": "stop", "index": 0, "logprobs": None},
                },
                "moreGenerations": None,
                "prompt": None,
                "parameters": {
                    "created": now_s(),
                    "model": served_model(model),
                    "system_fingerprint": None,
                    "object": "chat.completion",
                    "usage": _usage(count_tokens(prompt), count_tokens(text)),
                },
            },
        )

    def embeddings(self, request: Request, model: str) -> Response:
        problem = self._prelude(request, model, "embedding")
        if problem is not None:
            return problem
        try:
            body = parse_json_object(request)
            texts = _require(body, "input")
            if not isinstance(texts, list) or not all(isinstance(t, str) for t in texts):
                raise BodyError("Field input must be an array of strings", field="input")
            if not texts:
                raise BodyError("Field input must contain at least one string", field="input")
            self.state.count_inputs("salesforce", len(texts))
            limit = self.state.settings.embedding_max_batch
            if len(texts) > limit:
                raise BodyError(
                    f"Field input has {len(texts)} items; at most {limit} are allowed per request",
                    field="input",
                )
            _validate_options(body)
        except BodyError as exc:
            return _body_error(exc)
        if self.state.inputs_refused(model, len(texts)) is not None:
            return error(429, "LIMIT_EXCEEDED", "Too many requests for the server to handle")
        tokens = sum(count_tokens(t) for t in texts)
        items = ",".join(
            '{"embedding":' + embedding_json(t, EMBEDDING_DIMENSIONS) + ',"index":' + str(i) + "}"
            for i, t in enumerate(texts)
        )
        parameters = (
            f'{{"usage":{{"prompt_tokens":{tokens},"total_tokens":{tokens}}},'
            f'"model":"{EMBEDDING_MODEL}","object":"list"}}'
        )
        payload = '{"embeddings":[' + items + '],"parameters":' + parameters + "}"
        return Response(200, payload.encode("utf-8"))

    def feedback(self, request: Request) -> Response:
        problem = self._prelude(request, None, "feedback")
        if problem is not None:
            return problem
        try:
            body = parse_json_object(request)
            for field in ("id", "generationId"):
                _string(_require(body, field), field)
            for field in ("feedbackText", "source", "appGenerationId", "appGeneration"):
                if body.get(field) is not None:
                    _string(body[field], field)
            sentiment = body.get("feedback")
            if sentiment is not None and sentiment not in ("GOOD", "BAD"):
                raise BodyError("Field feedback must be GOOD, BAD or null", field="feedback")
            app_feedback = body.get("appFeedback")
            if app_feedback is not None and not isinstance(app_feedback, Mapping):
                raise BodyError("Field appFeedback must be an object", field="appFeedback")
        except BodyError as exc:
            return _body_error(exc)
        self.state.feedback.append(body)
        return json_response(202, {"message": "Feedback received, Thank you!"})

    # ---- faults and misses ---------------------------------------------------------------

    def fault(self, kind: str) -> Response:
        retry = (("retry-after", self.state.retry_after()),)
        if kind == "429":
            return error(
                429, "LIMIT_EXCEEDED", "Too many requests for the server to handle", headers=retry
            )
        if kind == "503":
            return error(503, "INTERNAL_ERROR", "Service is unavailable", headers=retry)
        return error(500, "INTERNAL_ERROR", "Internal server error")

    @staticmethod
    def not_found(request: Request) -> Response:
        return error(404, "NOT_FOUND", f"Resource not found: {request.path}")

    @staticmethod
    def method_not_allowed(request: Request) -> Response:
        return error(
            405,
            "METHOD_NOT_ALLOWED",
            f"Method {request.method} is not allowed on {request.path}",
            headers=(("allow", "POST"),),
        )

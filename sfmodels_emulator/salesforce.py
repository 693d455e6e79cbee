"""The Salesforce Models API: OAuth client-credentials tokens, chat, text, embeddings, feedback."""

from __future__ import annotations

import uuid
from collections.abc import Callable, Mapping
from typing import Any

from . import shapes
from .catalogue import SalesforceModel, salesforce_model
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
from .react import react_reply
from .refusals import Refusal, check_inputs, check_prompt
from .refusals import message as refusal_message
from .server import Request, Response
from .state import State
from .text.embeddings import embedding_json
from .text.replies import generate_reply
from .text.tokens import count_tokens

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
    423: "E42301",
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


def model_kind(model: str, configured: Mapping[str, str] | None = None) -> str | None:
    """``"chat"`` or ``"embedding"`` for a model API name this org has, else ``None``."""
    found = salesforce_model(model, dict(configured or {}))
    return found.kind if found is not None else None


def served_model(model: str, configured: Mapping[str, str] | None = None) -> str:
    found = salesforce_model(model, dict(configured or {}))
    return found.served_model if found is not None else "gpt-4o-mini-2024-07-18"


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


def _refused(refusal: Refusal, field: str, *, batch: bool) -> Response:
    return error(400, "INVALID_INPUT", refusal_message(refusal, batch=batch), field=field)


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
        kind = model_kind(model, self.state.settings.configured_models)
        if kind is None:
            return error(404, "NOT_FOUND", f"Model {model} not found")
        if kind != want:
            # The wording of the real answer is not published; the status and code are.
            if want == "embedding":
                message = f"Model {model} does not support embeddings; use a chat model's " \
                          "chat-generations or generations route"
            else:
                message = f"Model {model} does not support text generation; it is an " \
                          "embeddings model"
            return error(400, "INVALID_INPUT", message)
        return None

    def _rate_limited(self, key: str) -> Response | None:
        wait = self.state.rate_check(key)
        if wait is None:
            return None
        headers = (("retry-after", str(wait)),) if self.state.setting(
            "rate_limit_retry_after", key) else ()
        return error(429, "LIMIT_EXCEEDED", "Too many requests for the server to handle",
                     headers=headers)

    def _info(self, model: str) -> SalesforceModel:
        found = salesforce_model(model, self.state.settings.configured_models)
        assert found is not None  # _check_model let it through
        return found

    def _quality(self, model: str) -> dict[str, Any]:
        if self.state.setting("extra_fields", model):
            return shapes.salesforce_content_quality(self._info(model).provider)
        return _CONTENT_QUALITY

    def _parameters(self, model: str, usage: dict[str, int]) -> dict[str, Any]:
        """The response's ``parameters``, with the fields beyond the spec real answers carry
        when ``extra_fields`` is on for this model."""
        info = self._info(model)
        params: dict[str, Any] = {
            "created": now_s(),
            "model": info.served_model,
            "object": "chat.completion",
            "system_fingerprint": None,
            "usage": usage,
        }
        if self.state.setting("extra_fields", model):
            params["provider"] = info.provider
            params["system_fingerprint"] = "fp_emulator"
            params["usage"] = shapes.salesforce_usage(usage)
        return params

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
        refused = check_prompt(self.state.settings, [text for _, text in turns])
        if refused is not None:
            return _refused(refused, "messages", batch=False)
        content = protocol_reply(turns) or react_reply(turns) or generate_reply(turns)
        prompt_tokens = sum(count_tokens(text) for _, text in turns)
        completion_tokens = count_tokens(content)
        self.state.charge_tokens(model, prompt_tokens + completion_tokens)
        parameters = self._parameters(model, _usage(prompt_tokens, completion_tokens))
        generation: dict[str, Any] = {
            "id": str(uuid.uuid4()),
            "role": "assistant",
            "content": content,
            "timestamp": parameters["created"],
            "parameters": {"finish_reason": "stop", "index": 0, "logprobs": None},
            "contentQuality": self._quality(model),
        }
        if self.state.setting("extra_fields", model):
            generation["refusal"] = None
        return json_response(
            200,
            {
                "id": "chatcmpl-" + random_id(29),
                "generationDetails": {"generations": [generation], "parameters": parameters},
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
        refused = check_prompt(self.state.settings, [prompt])
        if refused is not None:
            return _refused(refused, "prompt", batch=False)
        text = generate_reply([("user", prompt)])
        prompt_tokens, completion_tokens = count_tokens(prompt), count_tokens(text)
        self.state.charge_tokens(model, prompt_tokens + completion_tokens)
        generation: dict[str, Any] = {
            "id": str(uuid.uuid4()),
            "generatedText": text,
            "contentQuality": self._quality(model),
            "parameters": {"finish_reason": "stop", "index": 0, "logprobs": None},
        }
        if self.state.setting("extra_fields", model):
            generation["refusal"] = None
        return json_response(
            200,
            {
                "id": "chatcmpl-" + random_id(29),
                "generation": generation,
                "moreGenerations": None,
                "prompt": None,
                "parameters": self._parameters(model, _usage(prompt_tokens, completion_tokens)),
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
            limit = self.state.setting("embedding_max_batch", model)
            if len(texts) > limit:
                raise BodyError(
                    f"Field input has {len(texts)} items; at most {limit} are allowed per request",
                    field="input",
                )
            _validate_options(body)
        except BodyError as exc:
            return _body_error(exc)
        refused = check_inputs(self.state.settings, texts)
        if refused is not None:
            return _refused(refused, f"input[{refused.index}]", batch=True)
        if self.state.inputs_refused(model, len(texts)) is not None:
            return error(429, "LIMIT_EXCEEDED", "Too many requests for the server to handle")
        tokens = sum(count_tokens(t) for t in texts)
        self.state.charge_tokens(model, tokens)
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
        self.state.store_feedback(body)  # once per id: a retried submission is not stored twice
        kind = self.state.settings.feedback_body
        if kind == "empty":
            return Response(202, b"", "application/json")
        if kind == "text":
            return Response(202, b"Accepted", "text/plain")
        return json_response(202, {"message": "Feedback received, Thank you!"})

    # ---- faults and misses ---------------------------------------------------------------

    def fault(self, kind: str) -> Response:
        retry = (("retry-after", self.state.retry_after()),)
        if kind == "423":
            # The spec's ServerBusyError example, errorCode and all.
            return error(423, "NOT_FOUND",
                         "Server is busy and cannot process the request at this time",
                         headers=retry)
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


__all__ = [
    "API_PREFIX",
    "APP_CONTEXT",
    "EMBEDDING_DIMENSIONS",
    "EMBEDDING_MODEL",
    "FEATURE_ID",
    "MAX_FEEDBACK_TEXT",
    "SalesforceApi",
    "error",
    "model_kind",
    "oauth_error",
    "served_model",
]

"""The Salesforce Models API wire format, pure: request bodies (chat, generation, embeddings,
feedback) and the parsers of answers and error bodies."""

from __future__ import annotations

import uuid
from collections.abc import Mapping, Sequence
from typing import Any

from .. import _lenient as lenient
from .._transport import loads
from .._validation import name_segment, require_messages, url_segment
from ..errors import ErrorDetails, InvalidInputError
from ..types import ParsedBatch, ordered
from ..vectors import MISSING
from .models import ChatResult, ContentQuality, FeedbackResult, Generation, GenerationResult

PROVIDER = "Salesforce"
ROLES = ("system", "user", "assistant")
#: The request content type Salesforce's spec names.
CONTENT_TYPE = "application/json;charset=utf-8"
HEADERS = {
    "x-sfdc-app-context": "EinsteinGPT",
    "x-client-feature-id": "ai-platform-models-connected-app",
    "accept": "application/json",
}



def _options(localization: Mapping[str, Any] | None,
             tags: Mapping[str, Any] | None) -> dict[str, Any]:
    out: dict[str, Any] = {}
    if localization is not None:
        if not isinstance(localization, Mapping) or not isinstance(
                localization.get("defaultLocale"), str):
            raise InvalidInputError(
                "localization must be a dict with a 'defaultLocale' such as 'en_US'")
        out["localization"] = dict(localization)
    if tags is not None:
        if not isinstance(tags, Mapping):
            raise InvalidInputError("tags must be a dict")
        out["tags"] = dict(tags)
    return out


def chat_request(model: str, messages: Any, localization: Mapping[str, Any] | None = None,
                 tags: Mapping[str, Any] | None = None) -> tuple[str, dict[str, Any]]:
    name = name_segment(model, "model")
    msgs = [{"role": m["role"], "content": m["content"]}
            for m in require_messages(messages, ROLES)]
    return f"/models/{name}/chat-generations", {"messages": msgs, **_options(localization, tags)}


def generation_request(model: str, prompt: Any, localization: Mapping[str, Any] | None = None,
                       tags: Mapping[str, Any] | None = None) -> tuple[str, dict[str, Any]]:
    name = name_segment(model, "model")
    if not isinstance(prompt, str):
        raise InvalidInputError(f"prompt must be a string, got {type(prompt).__name__}")
    return f"/models/{name}/generations", {"prompt": prompt, **_options(localization, tags)}


def embedding_request(model: str, texts: Sequence[str], localization: Mapping[str, Any] | None,
                      tags: Mapping[str, Any] | None) -> tuple[str, dict[str, Any]]:
    """The path and body of an embeddings call; ``model`` is checked already (the bulk plan
    did it), and made one path segment here."""
    return f"/models/{url_segment(model)}/embeddings", {"input": list(texts),
                                                        **_options(localization, tags)}


def feedback_request(generation_id: str, feedback: str | None, *, text: str | None = None,
                     source: str | None = None, app_feedback: Mapping[str, Any] | None = None,
                     app_generation_id: str | None = None, app_generation: str | None = None,
                     feedback_id: str | None = None) -> dict[str, Any]:
    if not isinstance(generation_id, str) or not generation_id.strip():
        raise InvalidInputError("generation_id must be a non-empty string")
    value: str | None = None
    if feedback is not None:
        if not isinstance(feedback, str) or feedback.upper() not in ("GOOD", "BAD"):
            raise InvalidInputError(f"feedback must be 'GOOD', 'BAD' or None, got {feedback!r}")
        value = feedback.upper()
    body: dict[str, Any] = {"id": feedback_id or str(uuid.uuid4()),
                            "generationId": generation_id, "feedback": value}
    for key, item in (("feedbackText", text), ("source", source),
                      ("appGenerationId", app_generation_id), ("appGeneration", app_generation)):
        if item is not None:
            if not isinstance(item, str):
                raise InvalidInputError(f"{key} must be a string, got {type(item).__name__}")
            body[key] = item
    if app_feedback is not None:
        if not isinstance(app_feedback, Mapping):
            raise InvalidInputError("app_feedback must be a dict")
        body["appFeedback"] = dict(app_feedback)
    return body


def _generation(data: Any, text_key: str, index: int) -> Generation:
    if not isinstance(data, dict):
        raise ValueError("a generation is not an object")
    params = lenient.opt_dict(data.get("parameters"))
    text = data.get(text_key)
    if text is None and text_key == "generatedText":
        text = data.get("text")  # the spec's required name; real bodies use generatedText
    if not isinstance(text, str):
        raise ValueError(f"generation {index} has " + (
            f"no {text_key}" if text is None else f"a {text_key} that is not text"))
    return Generation(
        id=lenient.opt_str(data.get("id")), text=text or "",
        role=lenient.opt_str(data.get("role")) or "assistant",
        finish_reason=lenient.opt_str(params.get("finish_reason")),
        index=lenient.opt_int(params.get("index"), index) or 0,
        timestamp=lenient.opt_int(data.get("timestamp")),
        content_quality=ContentQuality.from_wire(data.get("contentQuality")),
        refusal=lenient.opt_str(data.get("refusal")) or lenient.opt_str(params.get("refusal")))


def _model_and_usage(params: Any) -> dict[str, Any]:
    params = lenient.opt_dict(params)
    return {"model": lenient.opt_str(params.get("model")),
            "usage": lenient.usage(params.get("usage"))}


def parse_chat(body: dict[str, Any]) -> ChatResult:
    details = lenient.opt_dict(body.get("generationDetails"))
    generations = details.get("generations")
    if not isinstance(generations, list) or not generations:
        raise ValueError("the answer has no generationDetails.generations" if not generations
                         else "generationDetails.generations is not a list")
    gens = [_generation(g, "content", i) for i, g in enumerate(generations)]
    params = lenient.opt_dict(details.get("parameters"))
    return ChatResult(id=lenient.opt_str(body.get("id")) or "", generations=gens, raw=body,
                      provider=lenient.opt_str(params.get("provider")), **_model_and_usage(params))


def parse_generation(body: dict[str, Any]) -> GenerationResult:
    more = body.get("moreGenerations") or []
    if not body.get("generation"):
        raise ValueError("the answer has no generation")
    items = [body["generation"], *(more if isinstance(more, list) else [])]
    gens = [_generation(g, "generatedText", i) for i, g in enumerate(items)]
    params = lenient.opt_dict(body.get("parameters"))
    return GenerationResult(id=lenient.opt_str(body.get("id")) or "", generations=gens, raw=body,
                            provider=lenient.opt_str(params.get("provider")),
                            **_model_and_usage(params))


def parse_embeddings(body: dict[str, Any]) -> ParsedBatch:
    """(vectors in input order, model, usage, the body without the vectors)."""
    items = ordered(lenient.vector_items(body.get("embeddings") or [], "embeddings"))
    rest = {k: v for k, v in body.items() if k != "embeddings"}
    info = _model_and_usage(rest.get("parameters"))
    return [item.get("embedding", MISSING) for item in items], info["model"], info["usage"], rest


def feedback_result(body: Mapping[str, Any], status_code: int, content: bytes) -> FeedbackResult:
    """The result of feedback the service accepted. The answer's body is informative only: the
    feedback is stored once the service answers 2xx, so an empty or non-JSON body never fails
    (a caller retrying after an error would store it twice)."""
    message: str | None = None
    text = content.decode("utf-8", "replace").strip()
    if text:
        try:
            answer = loads(content)
        except ValueError:
            message = text[:500]
        else:
            message = lenient.opt_str(answer.get("message")) if isinstance(answer, dict) else None
    return FeedbackResult(feedback_id=body["id"], generation_id=body["generationId"],
                          message=message, status_code=status_code)


def parse_error(status: int, body: Any) -> ErrorDetails:
    """What a Models API error body (``errorCode``, ``messageCode``, ``message``, and optional
    ``targets``, ``parameters``, ``properties``, all kept in ``body``) or an OAuth error says."""
    if isinstance(body, list) and body and isinstance(body[0], dict):
        body = body[0]
    code = message = message_code = None
    if isinstance(body, dict):
        code = lenient.opt_str(body.get("errorCode")) or lenient.opt_str(body.get("error"))
        message = lenient.opt_str(body.get("message")) or lenient.opt_str(
            body.get("error_description"))
        message_code = lenient.opt_str(body.get("messageCode"))
    elif isinstance(body, str):
        message = body[:500]
    hint = {
        401: "The access token is missing, invalid or expired. Check that the External Client "
             "App has the api and sfap_api scopes and issues JWT-based access tokens; a "
             "pre-minted token may have expired or been truncated.",
        403: "The credentials may not use this model: check the app's scopes (api, sfap_api) "
             "and that Einstein generative AI is enabled for the org.",
        404: "Check the model API name (e.g. sfdc_ai__DefaultOpenAIGPT4OmniMini). Salesforce "
             "also answers 404 for missing scopes or a truncated token.",
        423: "Salesforce was busy; the call was retried and may succeed later.",
        429: "The org's per-minute or per-hour limit was reached; set requests_per_minute to "
             "stay under it.",
    }.get(status)
    return ErrorDetails(code=code or None, message=message or None, hint=hint,
                        message_code=message_code or None)

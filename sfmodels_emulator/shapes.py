"""Real-world response shapes: how the real services' answers differ from the documented ones.

Each function here turns a documented body into the shape a real service was seen to send
(error bodies that wrap another error, reasoning content parts, fields beyond the spec). The
settings that switch them on are in :mod:`.state`; where each shape comes from is in the docs
page "Behaviour against the real services" (``docs/real-world.md``) and beside each fixture
file under ``tests/fixtures/real_world``.
"""

from __future__ import annotations

import json
import re
from collections.abc import Sequence
from typing import Any

from .text.turns import Turn
from .text.words import INSTRUCTION_WORDS, STOPWORDS

_WORDS = re.compile(r"[^\W_]+")

# -- Databricks error bodies ------------------------------------------------------------------

# (OpenAI error type, OpenAI error code) for a status, as OpenAI answers them.
_OPENAI_ERRORS = {
    400: ("invalid_request_error", "invalid_value"),
    401: ("authentication_error", "invalid_api_key"),
    403: ("permission_error", "permission_denied"),
    404: ("invalid_request_error", "model_not_found"),
    429: ("requests", "rate_limit_exceeded"),
    500: ("server_error", "server_error"),
    503: ("server_error", "service_unavailable"),
}
REQUEST_INFO_TYPE = "type.googleapis.com/google.rpc.RequestInfo"


def databricks_error(body: dict[str, Any], status: int, shape: str,
                     request_id: str, provider: str = "openai") -> dict[str, Any]:
    """A Databricks ``{"error_code", "message"}`` body in the shape ``shape``:

    * ``plain``: as it is;
    * ``external_model``: the message is the JSON of ``{"external_model_provider",
      "external_model_error": {"error": {"message", "type", "param", "code"}}}`` (an external
      model endpoint passing its provider's error on);
    * ``openai``: ``{"error": {"message", "type", "code"}}``;
    * ``details``: with ``details: [{"@type": ".../RequestInfo", "request_id": ...}]``.
    """
    code = str(body.get("error_code", "INTERNAL_ERROR"))
    message = str(body.get("message", ""))
    kind, inner_code = _OPENAI_ERRORS.get(status, ("server_error", "server_error"))
    if shape == "external_model":
        inner = {"external_model_provider": provider, "external_model_error": {"error": {
            "message": message, "type": kind, "param": None, "code": inner_code}}}
        return {"error_code": code, "message": json.dumps(inner)}
    if shape == "openai":
        return {"error": {"message": message, "type": kind, "code": inner_code}}
    if shape == "details":
        return {**body, "details": [
            {"@type": REQUEST_INFO_TYPE, "request_id": request_id, "serving_data": ""}]}
    return body


# -- reasoning --------------------------------------------------------------------------------


def reasoning_summary(turns: Sequence[Turn]) -> str:
    """What a reasoning model says it thought about, deterministic and grounded in the prompt."""
    question = next((text for role, text in reversed(turns) if role == "user"), "")
    words = [w for w in _WORDS.findall(question)
             if w.lower() not in STOPWORDS and w.lower() not in INSTRUCTION_WORDS]
    words = list(dict.fromkeys(words))[:6]
    topic = ", ".join(words) if words else "the request"
    return f"The user asks about {topic}. I check what the conversation says and answer briefly."


def reasoning_parts(reasoning: str, text: str) -> list[dict[str, Any]]:
    """A reasoning model's content: a reasoning part with its summary, then the text."""
    return [
        {"type": "reasoning", "summary": [
            {"type": "summary_text", "text": reasoning, "signature": "emulator-signature"}]},
        {"type": "text", "text": text},
    ]


def reasoning_delta(piece: str) -> list[dict[str, Any]]:
    """One streamed piece of reasoning, as a content part list."""
    return [{"type": "reasoning", "summary": [{"type": "summary_text", "text": piece}]}]


# -- Salesforce fields beyond the spec --------------------------------------------------------

_CATEGORIES_7 = ("identity", "hate", "profanity", "violence", "sexual", "physical", "toxicity")
_CATEGORIES_6 = ("identity", "hate", "profanity", "violence", "sexual", "toxicity")


def salesforce_usage(usage: dict[str, int]) -> dict[str, Any]:
    """Usage with the detail objects real answers add."""
    return {
        **usage,
        "completion_tokens_details": {"reasoning_tokens": 0, "audio_tokens": 0,
                                      "accepted_prediction_tokens": 0,
                                      "rejected_prediction_tokens": 0},
        "prompt_tokens_details": {"cached_tokens": 0, "audio_tokens": 0},
    }


def salesforce_content_quality(provider: str) -> dict[str, Any]:
    """A toxicity scan with integer scores (and one tiny float), the list varying by model:
    seven categories for OpenAI models, six for the others."""
    names = _CATEGORIES_7 if "OpenAI" in provider else _CATEGORIES_6
    categories: list[dict[str, Any]] = [{"categoryName": name, "score": 0} for name in names]
    categories[0]["score"] = 2.0e-5
    return {"scanToxicity": {"isDetected": False, "categories": categories}}


__all__ = [
    "REQUEST_INFO_TYPE",
    "databricks_error",
    "reasoning_delta",
    "reasoning_parts",
    "reasoning_summary",
    "salesforce_content_quality",
    "salesforce_usage",
]

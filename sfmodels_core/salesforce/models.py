"""What the Salesforce calls return: chat and generation results with their generations and
content-quality scans, and the feedback result. Pydantic models that keep the raw body; the
parsers in :mod:`._wire` build them."""

from __future__ import annotations

from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field

from .. import _lenient as lenient
from ..types import Usage

__all__ = [
    "ChatResult",
    "ContentQuality",
    "FeedbackResult",
    "FeedbackValue",
    "Generation",
    "GenerationResult",
]

FeedbackValue = Literal["GOOD", "BAD"]


class ContentQuality(BaseModel):
    """Salesforce's toxicity scan of a generation."""

    is_toxicity_detected: bool | None = None
    #: Score per category name (higher: more likely toxic).
    scores: dict[str, float] = Field(default_factory=dict)

    @classmethod
    def from_wire(cls, data: Any) -> ContentQuality | None:
        scan = data.get("scanToxicity") if isinstance(data, dict) else None
        if not isinstance(scan, dict):
            return None
        scores: dict[str, float] = {}
        categories = scan.get("categories")
        for item in categories if isinstance(categories, list) else []:
            name = lenient.opt_str(item.get("categoryName")) if isinstance(item, dict) else None
            score = lenient.opt_float(item.get("score")) if isinstance(item, dict) else None
            if name is not None and score is not None:  # the list varies by model
                scores[name] = score
        return cls(is_toxicity_detected=lenient.opt_bool(scan.get("isDetected")), scores=scores)


class Generation(BaseModel):
    """One generated answer. ``id`` is the generation id that feedback refers to."""

    id: str | None
    text: str
    role: str = "assistant"
    finish_reason: str | None = None
    index: int = 0
    timestamp: int | None = None
    content_quality: ContentQuality | None = None
    #: The model's refusal message, when the service reports one (beyond the spec).
    refusal: str | None = None


class ChatResult(BaseModel):
    """A chat-generations answer. ``text`` and ``generation_id`` are those of the first choice."""

    model_config = ConfigDict(protected_namespaces=())

    id: str
    generations: list[Generation]
    model: str | None = None
    #: The model's provider (``parameters.provider``, beyond the spec), when sent.
    provider: str | None = None
    #: Token counts; fields beyond the spec (``completion_tokens_details``, ...) stay on it.
    usage: Usage | None = None
    raw: dict[str, Any] = Field(repr=False)

    @property
    def text(self) -> str:
        return self.generations[0].text if self.generations else ""

    @property
    def generation_id(self) -> str | None:
        return self.generations[0].id if self.generations else None

    @property
    def finish_reason(self) -> str | None:
        return self.generations[0].finish_reason if self.generations else None


class GenerationResult(ChatResult):
    """A generations (text completion) answer; same accessors as :class:`ChatResult`."""


class FeedbackResult(BaseModel):
    """Feedback the service accepted: any 2xx answer, whatever its body (202 with JSON, with an
    empty body or with text). ``message`` is the service's message when it sent one."""

    feedback_id: str
    generation_id: str
    message: str | None = None
    status_code: int | None = None

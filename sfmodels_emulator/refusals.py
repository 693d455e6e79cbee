"""Inputs a model refuses: too long for its context, or against its provider's content policy.

Both are off by default and switched on with ``max_input_tokens`` and ``blocked_terms``. They
apply to one input at a time (a chat's whole prompt, one completion prompt, one text to embed),
so a bulk client can tell which row of a batch the service refused.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from .state import Settings
from .text.tokens import count_tokens


@dataclass(frozen=True)
class Refusal:
    """Why input number ``index`` was refused: ``kind`` is "too_long" or "blocked"."""

    index: int
    kind: str
    tokens: int = 0
    limit: int = 0


def check_inputs(settings: Settings, texts: Sequence[str]) -> Refusal | None:
    """The first input the model refuses, or None."""
    limit = settings.max_input_tokens
    terms = settings.blocked_terms
    if limit is None and not terms:
        return None
    for index, text in enumerate(texts):
        if limit is not None:
            tokens = count_tokens(text)
            if tokens > limit:
                return Refusal(index, "too_long", tokens, limit)
        if terms:
            lowered = text.lower()
            if any(term in lowered for term in terms):
                return Refusal(index, "blocked")
    return None


def check_prompt(settings: Settings, texts: Sequence[str]) -> Refusal | None:
    """Whether one prompt made of ``texts`` (a chat's messages) is refused, as input 0."""
    return check_inputs(settings, ["\n".join(texts)])


def message(refusal: Refusal, *, batch: bool) -> str:
    where = f"input[{refusal.index}]: " if batch else ""
    if refusal.kind == "too_long":
        return (f"{where}This model's maximum context length is {refusal.limit} tokens, "
                f"however you requested {refusal.tokens} tokens.")
    return f"{where}The input was rejected by the model provider's content management policy."


__all__ = [
    "Refusal",
    "check_inputs",
    "check_prompt",
    "message",
]

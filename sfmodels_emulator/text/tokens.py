"""Tokens: counting them, cutting at ``max_tokens`` or a stop sequence, and stream pieces.

Token counts come from a tiny tokenizer: every run of word characters and every other mark is
one token.
"""

from __future__ import annotations

import math
import re
from collections.abc import Sequence

_TOKEN_RE = re.compile(r"\w+|[^\w\s]")
_PIECE_RE = re.compile(r"\S+\s*|\s+")


def count_tokens(text: str) -> int:
    """Number of tokens in ``text``: every run of word characters and every other mark."""
    return len(_TOKEN_RE.findall(text))


def truncate_tokens(text: str, max_tokens: int) -> tuple[str, bool]:
    """Cut ``text`` after ``max_tokens`` tokens; the flag says whether anything was cut."""
    if max_tokens <= 0:
        return "", bool(text)
    for i, match in enumerate(_TOKEN_RE.finditer(text)):
        if i == max_tokens:
            return text[: match.start()].rstrip(), True
    return text, False


def apply_stop(text: str, stop: Sequence[str]) -> tuple[str, bool]:
    """Cut ``text`` at the first occurrence of any stop sequence."""
    cut = len(text)
    for seq in stop:
        if seq:
            at = text.find(seq)
            if 0 <= at < cut:
                cut = at
    return text[:cut], cut < len(text)


def split_pieces(text: str) -> list[str]:
    """Split ``text`` into stream pieces of about one word each; they concatenate to ``text``."""
    return _PIECE_RE.findall(text)


def split_fragments(text: str, parts: int = 4) -> list[str]:
    """Split ``text`` into at most ``parts`` non-empty fragments (for streamed tool arguments)."""
    if len(text) <= 1:
        return [text]
    size = max(1, math.ceil(len(text) / parts))
    return [text[i : i + size] for i in range(0, len(text), size)]

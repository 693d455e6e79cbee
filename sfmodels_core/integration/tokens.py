"""Token counts for trimming a history to a budget, without a tokenizer download.

With ``tiktoken`` installed, models of the OpenAI family (Salesforce's GPT models, Databricks
endpoints serving GPT) are counted exactly with their encoding. Otherwise, and for every other
model, the count is an estimate: one token per four characters, and never fewer than the words
and punctuation marks, which overcounts slightly rather than undercounting (a trimmed history
then fits). A chat message adds the three tokens of its envelope, as OpenAI's format does.
"""

from __future__ import annotations

import math
import re
from collections.abc import Callable, Iterable
from functools import lru_cache

__all__ = [
    "MESSAGE_OVERHEAD",
    "REPLY_PRIMING",
    "count_message_tokens",
    "count_tokens",
]

_PIECES = re.compile(r"\w+|[^\w\s]")
#: Tokens each message's envelope (role, separators) adds, and the reply's priming.
MESSAGE_OVERHEAD = 3
REPLY_PRIMING = 3


@lru_cache(maxsize=32)
def _encoder(model: str) -> Callable[[str], list[int]] | None:
    name = model.lower()
    if not any(family in name for family in ("gpt", "o1", "o3", "o4", "openai")):
        return None
    encoding = "o200k_base" if any(f in name for f in ("gpt4o", "gpt-4o", "omni", "gpt41",
                                                        "gpt-4.1", "gpt5", "gpt-5", "o3",
                                                        "o4")) else "cl100k_base"
    try:
        import tiktoken

        encode: Callable[[str], list[int]] = tiktoken.get_encoding(encoding).encode
        return encode
    except Exception:  # not installed, or its encoding files cannot be had: estimate
        return None


def count_tokens(text: str, model: str = "") -> int:
    """Tokens in ``text`` for ``model``: exact for OpenAI models with tiktoken, else an
    estimate that errs high (see the module docstring)."""
    if not text:
        return 0
    encode = _encoder(model)
    if encode is not None:
        return len(encode(text))
    return max(math.ceil(len(text) / 4), len(_PIECES.findall(text)))


def count_message_tokens(texts: Iterable[str], model: str = "") -> int:
    """Tokens of a chat history given as each message's text (tool calls written out)."""
    return REPLY_PRIMING + sum(MESSAGE_OVERHEAD + count_tokens(t, model) for t in texts)

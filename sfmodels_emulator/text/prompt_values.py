"""Values found in a prompt (numbers, quoted strings, capitalised names, phrases after "for",
"in", "about"...), handed out in order for JSON-schema fields and tool arguments."""

from __future__ import annotations

import re
from collections import deque
from collections.abc import Iterable, Sequence
from typing import Any

from .words import COMMAND_WORDS, STOPWORDS, WORD_RE

_NUMBER_RE = re.compile(r"(?<![\w.])-?\d+(?:\.\d+)?(?![\w])")
QUOTED_RE = re.compile(
    r"\"([^\"\n]{1,200})\"|(?<!\w)'([^'\n]{1,200})'(?!\w)|`([^`\n]{1,200})`|"
    "\u201c([^\u201d\n]{1,200})\u201d"
)
_CAPS_RE = re.compile(r"\b[A-Z][\w'&.-]*(?:[ \t]+[A-Z][\w'&.-]*)*")
_PREPOSITION_RE = re.compile(
    r"\b(?:for|in|of|about|on|at|from|named|called|regarding|style)\s+((?:[^\s.,;:!?()]+\s*){1,3})",
    re.IGNORECASE,
)
_NEGATIONS = frozenset({"false", "no", "not", "never", "disable", "disabled", "off", "without"})


def _trim_phrase(words: Iterable[str]) -> str:
    kept: list[str] = []
    for word in words:
        low = word.lower()
        if low in STOPWORDS or low in COMMAND_WORDS:
            if kept:
                break
            continue
        kept.append(word)
    return " ".join(kept)


class Extractor:
    """Hands out values found in a prompt, each at most once, in order of appearance."""

    def __init__(self, text: str, *, answer: str = "", exclude: Iterable[str] = ()) -> None:
        self.text = text
        self.lower = text.lower()
        self.answer = answer
        excluded = {e.lower() for e in exclude}
        self.numbers: deque[float] = deque(float(m) for m in _NUMBER_RE.findall(text))
        strings: list[str] = []
        self.quoted: list[str] = []
        for match in QUOTED_RE.finditer(text):
            value = next(g for g in match.groups() if g is not None).strip()
            if value and value.lower() not in excluded:
                self.quoted.append(value)
        strings.extend(self.quoted)
        self.capitalized: list[str] = []
        for match in _CAPS_RE.finditer(text):
            phrase = _trim_phrase(match.group(0).split())
            phrase = phrase.rstrip(".")
            if (
                phrase
                and phrase.lower() not in excluded
                and not any(phrase in q for q in self.quoted)
            ):
                self.capitalized.append(phrase)
        strings.extend(self.capitalized)
        self.phrases: list[str] = []
        for match in _PREPOSITION_RE.finditer(text):
            phrase = _trim_phrase(match.group(1).split())
            if phrase and phrase.lower() not in excluded:
                self.phrases.append(phrase)
        strings.extend(self.phrases)
        self.strings: deque[str] = deque(dict.fromkeys(strings))
        words = [w for w in WORD_RE.findall(text) if w.lower() not in excluded]
        keywords = [
            w for w in words if w.lower() not in STOPWORDS and w.lower() not in COMMAND_WORDS
        ]
        self.keywords = " ".join(keywords[:8])

    def number(self) -> float | None:
        return self.numbers.popleft() if self.numbers else None

    def string(self) -> str | None:
        return self.strings.popleft() if self.strings else None

    def enum(self, options: Sequence[Any]) -> tuple[Any, bool]:
        for option in options:
            if isinstance(option, str) and option:
                pattern = r"(?<!\w)" + re.escape(option.lower()) + r"(?!\w)"
                if re.search(pattern, self.lower):
                    return option, True
            elif (
                isinstance(option, (int, float))
                and not isinstance(option, bool)
                and float(option) in self.numbers
            ):
                return option, True
        non_null = [o for o in options if o is not None]
        return (non_null[0] if non_null else None), False

    def boolean(self) -> bool:
        return not any(w in _NEGATIONS for w in WORD_RE.findall(self.lower))

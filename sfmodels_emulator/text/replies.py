"""What the model says: grounded replies.

Given a context and a question, the reply is the context sentence that best answers the
question, so a RAG pipeline over the emulator answers correctly; right after tool results, a
sentence that includes them; otherwise a short reply derived from the last user message.
"""

from __future__ import annotations

import math
import re
from collections.abc import Iterable, Sequence
from dataclasses import dataclass

from .turns import Turn, last_user
from .words import COMMAND_WORDS, INSTRUCTION_WORDS, STOPWORDS, WORD_RE, content_words, stable_hash

_SENTENCE_SPLIT_RE = re.compile(r"(?<=[.!?])\s+(?=[\"'(\[A-Z0-9])")
_QUESTION_MARK_RE = re.compile(
    r"(?im)^[ \t]*(?:user question|question|query|q|the original query is as follows)[ \t]*:[ \t]*"
)
_SECTION_END_RE = re.compile(
    r"(?im)^[ \t]*(?:context|answer|helpful answer|sources?|documents?|passages?|"
    r"context information|we have provided an existing answer)[ \t]*:|^[ \t]*-{3,}"
)
_LABEL_RE = re.compile(
    r"^\s*(?:(?:[-*\u2022>]|\d+[.)]|\[\d+\])\s+|(?:context|passage|document|doc|source|chunk|"
    r"content)\s*\d*\s*:\s*)+",
    re.IGNORECASE,
)
_PRONOUN_STARTS = (
    "It ",
    "Its ",
    "They ",
    "Their ",
    "This ",
    "These ",
    "He ",
    "She ",
    "His ",
    "Her ",
)
_NUMERIC_QUESTION_RE = re.compile(
    r"^\s*(?:when|how (?:many|much|long|old|far|big)|what year|what time|what date)\b", re.I
)
_DIGIT_RE = re.compile(r"\d")

_REPLY_TEMPLATES = (
    "Here is a short answer about {topic}.",
    "Thanks for asking about {topic}.",
    "Let me help with {topic}.",
    "Good question about {topic}.",
)
_CONTEXT_HINT_RE = re.compile(
    r"\b(?:context|passages?|documents?|retrieved|excerpts?|sources?|knowledge base)\b", re.I
)
_MIN_CONTEXT_WORDS = 12
_LONG_MESSAGE_WORDS = 40
_GREETINGS = frozenset({"hi", "hello", "hey", "greetings", "howdy"})


@dataclass(frozen=True)
class _Sentence:
    text: str
    block: int
    words: frozenset[str]


def _split_question(text: str) -> tuple[str, str] | None:
    """Find a ``Question:``/``Query:`` section; return (question, rest of the text)."""
    markers = list(_QUESTION_MARK_RE.finditer(text))
    if not markers:
        return None
    match = markers[-1]  # the last marker wins (few-shot prompts repeat the pattern)
    start = match.end()
    end_match = _SECTION_END_RE.search(text, start)
    end = end_match.start() if end_match else len(text)
    question = text[start:end].strip()
    rest = text[: match.start()] + "\n" + text[end:]
    return question, rest


def _sentences(blocks: Iterable[str]) -> list[_Sentence]:
    out: list[_Sentence] = []
    block_no = 0
    for block in blocks:
        for line in block.splitlines():
            block_no += 1
            for raw in _SENTENCE_SPLIT_RE.split(line):
                sentence = _LABEL_RE.sub("", raw).strip()
                if not sentence or not WORD_RE.search(sentence):
                    continue
                out.append(_Sentence(sentence, block_no, frozenset(content_words(sentence))))
    return out


def _question_words(text: str) -> set[str]:
    return {w for w in content_words(text) if w not in INSTRUCTION_WORDS}


def _best_sentence(question: str, context: Sequence[_Sentence]) -> str | None:
    wanted = _question_words(question)
    if not wanted:
        return None
    normalized_question = " ".join(question.lower().split())
    candidates = [s for s in context if " ".join(s.text.lower().split()) != normalized_question]
    if not candidates:
        return None
    df: dict[str, int] = {}
    for sentence in candidates:
        for word in sentence.words & wanted:
            df[word] = df.get(word, 0) + 1
    numeric = bool(_NUMERIC_QUESTION_RE.search(question))
    best_index = -1
    best_score = 0.0
    for index, sentence in enumerate(candidates):
        shared = sentence.words & wanted
        if not shared:
            continue
        score = sum(math.log(1.0 + len(candidates) / df[w]) for w in shared)
        if numeric and _DIGIT_RE.search(sentence.text):
            score += 0.5
        if score > best_score:
            best_score, best_index = score, index
    if best_index < 0:
        return None
    best = candidates[best_index]
    answer = best.text
    if best_index + 1 < len(candidates):
        following = candidates[best_index + 1]
        if following.block == best.block and following.text.startswith(_PRONOUN_STARTS):
            answer = f"{answer} {following.text}"
    return answer


def _fallback_reply(text: str) -> str:
    words = WORD_RE.findall(text)
    if not words:
        return "Hello! How can I help you today?"
    if words[0].lower() in _GREETINGS and len(content_words(text)) <= 2:
        return "Hello! How can I help you today?"
    seen: list[str] = []
    for word in words:
        low = word.lower()
        if low in STOPWORDS or low in COMMAND_WORDS or low.isdigit():
            continue
        if any(low == w.lower() for w in seen):
            continue
        seen.append(word)
        if len(seen) == 4:
            break
    if not seen:
        return "I'm here to help. What would you like to know?"
    topic = seen[0] if len(seen) == 1 else ", ".join(seen[:-1]) + " and " + seen[-1]
    template = _REPLY_TEMPLATES[stable_hash(text) % len(_REPLY_TEMPLATES)]
    return template.format(topic=topic)


def _tool_result_reply(turns: Sequence[Turn]) -> str:
    results: list[str] = []
    for role, text in reversed(turns):
        if role != "tool":
            break
        results.append(text.strip())
    results.reverse()
    joined = "; ".join(r for r in results if r) or "no output"
    return f"Based on the tool result: {joined}"


def generate_reply(turns: Sequence[Turn]) -> str:
    """What the model says to a conversation. The one place that decides reply content.

    1. Right after tool results: a sentence that includes them.
    2. With context (passages in system or tool messages, in a message that mentions "context",
       "documents" and the like, or around a ``Question:`` section of the last user message): the
       context sentence that best matches the question, or "I don't know" when nothing matches.
    3. Otherwise: a short deterministic reply derived from the last user message.
    """
    if not turns:
        return "Hello! How can I help you today?"
    if turns[-1][0] == "tool":
        return _tool_result_reply(turns)
    last = last_user(turns)
    if last < 0:
        return _fallback_reply(turns[-1][1])
    user_text = turns[last][1]
    blocks: list[str] = []
    explicit = False
    for i, (role, text) in enumerate(turns):
        if i == last or role == "assistant":
            continue
        hinted = bool(_CONTEXT_HINT_RE.search(text))
        if role in ("system", "tool") or hinted or len(text.split()) >= _LONG_MESSAGE_WORDS:
            blocks.append(text)
            explicit = explicit or hinted
    question = user_text
    split = _split_question(user_text)
    if split is not None:
        question = split[0]
        blocks.append(split[1])
        explicit = True
    context = _sentences(blocks)
    if split is None and not any(s.words for s in context):
        # A single message may hold passages and then the question.
        own = _sentences([user_text])
        if len(own) >= 3:
            asks = [s for s in own if s.text.rstrip().endswith("?")]
            target = asks[-1] if asks else own[-1]
            question = target.text
            context = [s for s in own if s is not target]
            explicit = bool(_CONTEXT_HINT_RE.search(user_text))
    if explicit or sum(len(s.words) for s in context) >= _MIN_CONTEXT_WORDS:
        answer = _best_sentence(question, context)
        if answer is not None:
            return answer
        if explicit and _question_words(question):
            return "I don't know based on the provided context."
    stated = _stated_fact(question, context)
    if stated is not None:
        return stated
    return _fallback_reply(question)


_ADDRESSED_RE = re.compile(r"\b(?:you|your|yours|yourself)\b", re.IGNORECASE)


def _stated_fact(question: str, context: Sequence[_Sentence]) -> str | None:
    """A short context (one system message such as "Paris is the capital of France.") that
    states what the question asks: the statement sharing more than half the question's words.
    Instructions to the model ("You are ...") and questions are not facts."""
    wanted = _question_words(question)
    facts = [s for s in context
             if not s.text.rstrip().endswith("?") and not _ADDRESSED_RE.search(s.text)]
    answer = _best_sentence(question, facts) if wanted and facts else None
    if answer is None:
        return None
    first = next(s for s in facts if answer.startswith(s.text))
    shared = first.words & wanted
    return answer if len(shared) * 2 > len(wanted) else None

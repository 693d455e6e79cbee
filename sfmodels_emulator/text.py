"""Deterministic "language": tokens, embeddings, grounded replies and schema-driven values.

Everything here is a pure function of its input, so the same request always produces the same
content. Nothing tries to be clever; it tries to be *useful* for demos and tests:

* token counts come from a tiny tokenizer (words and punctuation marks);
* embeddings are hashed bags of words, so texts sharing words are close and unrelated texts are
  nearly orthogonal;
* chat replies are grounded: given a context and a question, the reply is the context sentence
  that best answers the question, so a RAG pipeline over the emulator answers correctly;
* tool-call arguments and structured output satisfy the caller's JSON schema, filled with values
  taken from the prompt where possible.
"""

from __future__ import annotations

import base64
import hashlib
import json
import math
import re
import sys
from array import array
from collections import deque
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from functools import lru_cache
from typing import Any

# --------------------------------------------------------------------------------------------
# Tokens
# --------------------------------------------------------------------------------------------

_TOKEN_RE = re.compile(r"\w+|[^\w\s]")
_WORD_RE = re.compile(r"[^\W_]+")
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


# --------------------------------------------------------------------------------------------
# Words
# --------------------------------------------------------------------------------------------


def _wordset(text: str) -> frozenset[str]:
    return frozenset(text.split())


STOPWORDS = _wordset(
    """
    a about above after again against all am an and any are as at be because been before being
    below between both but by can could did do does doing down during each few for from further
    had has have having he her here hers herself him himself his how i if in into is it its itself
    just me more most my myself no nor not now of off on once only or other our ours ourselves out
    over own same she should so some such than that the their theirs them themselves then there
    these they this those through to too under until up very was we were what when where which
    while who whom why will with would you your yours yourself yourselves s t don doesn didn isn
    aren wasn weren won wouldn shouldn couldn can't let let's i'm it's what's there's please also
    may might must shall us via per e g ie eg etc yes ok okay hi hello hey thanks thank
    """
)

# Words that frame a prompt rather than carry its meaning ("Use the following context to answer
# the question"); ignored when matching a question against context sentences.
INSTRUCTION_WORDS = _wordset(
    """
    context contexts question questions answer answers answering use using following follow based
    given provided information info query queries passage passages document documents doc docs
    retrieved retrieve pieces piece helpful assistant concise concisely sentence sentences maximum
    know say respond response reply prior knowledge below above source sources chunk chunks
    keep short brief tell explain describe give show find user system instructions instruction
    only relevant text snippet snippets
    """
)

# Imperatives and question words that start a request; never a value for a parameter.
_COMMAND_WORDS = _wordset(
    """
    what who whom where when why how which tell give show find get search use using call run
    please return respond list write explain describe create make generate compute calculate
    look lookup fetch can could would should will is are do does hi hello hey dear i the a an
    and or but if then so now today yes no okay ok thanks thank set add remove delete update
    send check convert translate summarize summarise book order write include only me
    """
)

_GENERIC_NAME_WORDS = frozenset({"get", "set", "tool", "function", "fetch", "call", "run", "do"})


@lru_cache(maxsize=1 << 16)
def _stem(word: str) -> str:
    if len(word) > 4 and word.endswith("ies"):
        return word[:-3] + "y"
    if len(word) > 3 and word.endswith("s") and not word.endswith(("ss", "us", "is")):
        return word[:-1]
    return word


def content_words(text: str) -> list[str]:
    """Lower-cased, stemmed words of ``text`` without stopwords, in order."""
    return [_stem(w) for w in _WORD_RE.findall(text.lower()) if w not in STOPWORDS]


def _question_words(text: str) -> set[str]:
    return {w for w in content_words(text) if w not in INSTRUCTION_WORDS}


def _stable_hash(text: str) -> int:
    digest = hashlib.blake2b(text.encode("utf-8"), digest_size=8, person=b"sfmodels").digest()
    return int.from_bytes(digest, "little")


# --------------------------------------------------------------------------------------------
# Embeddings
# --------------------------------------------------------------------------------------------


@lru_cache(maxsize=1 << 16)
def _word_slot(word: str) -> int:
    return _stable_hash(word)


def _sparse_embedding(text: str, dim: int) -> dict[int, float]:
    weights: dict[int, float] = {}
    for word in content_words(text):
        slot = _word_slot(word)
        index = (slot >> 1) % dim
        weights[index] = weights.get(index, 0.0) + (1.0 if slot & 1 else -1.0)
    norm = math.sqrt(sum(v * v for v in weights.values()))
    if norm == 0.0:
        return {}
    return {i: v / norm for i, v in weights.items() if v != 0.0}


def embedding(text: str, dim: int) -> list[float]:
    """A unit vector for ``text``: a signed, hashed bag of its content words.

    Texts without content words (empty, only stopwords) all get the same fixed unit vector.
    """
    sparse = _sparse_embedding(text, dim)
    if not sparse:
        return [1.0 / math.sqrt(dim)] * dim
    vector = [0.0] * dim
    for i, v in sparse.items():
        vector[i] = v
    return vector


@lru_cache(maxsize=4096)
def embedding_base64(text: str, dim: int) -> str:
    """``embedding_json(text, dim)``'s numbers as base64 of little-endian float32 (OpenAI's
    ``base64`` encoding)."""
    sparse = _sparse_embedding(text, dim)  # rounded as embedding_json rounds: the same vector
    if not sparse:
        numbers = array("f", [round(1.0 / math.sqrt(dim), 8)]) * dim
    else:
        numbers = array("f", bytes(4 * dim))
        for i, v in sparse.items():
            numbers[i] = round(v, 8)
    if sys.byteorder != "little":  # pragma: no cover
        numbers.byteswap()
    return base64.b64encode(numbers.tobytes()).decode("ascii")


@lru_cache(maxsize=4096)
def embedding_json(text: str, dim: int) -> str:
    """The JSON array for ``embedding(text, dim)``, rounded to 8 decimals and cached."""
    sparse = _sparse_embedding(text, dim)
    if not sparse:
        return "[" + ",".join([repr(round(1.0 / math.sqrt(dim), 8))] * dim) + "]"
    items = ["0.0"] * dim
    for i, v in sparse.items():
        items[i] = repr(round(v, 8))
    return "[" + ",".join(items) + "]"


# --------------------------------------------------------------------------------------------
# Grounded replies
# --------------------------------------------------------------------------------------------

Turn = tuple[str, str]
"""A conversation turn as ``(role, text)``; roles are system, user, assistant and tool."""

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
                if not sentence or not _WORD_RE.search(sentence):
                    continue
                out.append(_Sentence(sentence, block_no, frozenset(content_words(sentence))))
    return out


def _last_user(turns: Sequence[Turn]) -> int:
    for i in range(len(turns) - 1, -1, -1):
        if turns[i][0] == "user":
            return i
    return -1


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
    words = _WORD_RE.findall(text)
    if not words:
        return "Hello! How can I help you today?"
    if words[0].lower() in _GREETINGS and len(content_words(text)) <= 2:
        return "Hello! How can I help you today?"
    seen: list[str] = []
    for word in words:
        low = word.lower()
        if low in STOPWORDS or low in _COMMAND_WORDS or low.isdigit():
            continue
        if any(low == w.lower() for w in seen):
            continue
        seen.append(word)
        if len(seen) == 4:
            break
    if not seen:
        return "I'm here to help. What would you like to know?"
    topic = seen[0] if len(seen) == 1 else ", ".join(seen[:-1]) + " and " + seen[-1]
    template = _REPLY_TEMPLATES[_stable_hash(text) % len(_REPLY_TEMPLATES)]
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
    last = _last_user(turns)
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


# --------------------------------------------------------------------------------------------
# Values from the prompt, shaped by a JSON schema
# --------------------------------------------------------------------------------------------

_NUMBER_RE = re.compile(r"(?<![\w.])-?\d+(?:\.\d+)?(?![\w])")
_QUOTED_RE = re.compile(
    r"\"([^\"\n]{1,200})\"|(?<!\w)'([^'\n]{1,200})'(?!\w)|`([^`\n]{1,200})`|"
    "\u201c([^\u201d\n]{1,200})\u201d"
)
_CAPS_RE = re.compile(r"\b[A-Z][\w'&.-]*(?:[ \t]+[A-Z][\w'&.-]*)*")
_PREPOSITION_RE = re.compile(
    r"\b(?:for|in|of|about|on|at|from|named|called|regarding|style)\s+((?:[^\s.,;:!?()]+\s*){1,3})",
    re.IGNORECASE,
)
_DATE_RE = re.compile(r"\b\d{4}-\d{2}-\d{2}\b")
_EMAIL_RE = re.compile(r"\b[\w.+-]+@[\w-]+\.[\w.-]+\b")
_NEGATIONS = frozenset({"false", "no", "not", "never", "disable", "disabled", "off", "without"})
_QUERY_NAMES = frozenset(
    {
        "query",
        "q",
        "search",
        "search_query",
        "question",
        "text",
        "input",
        "prompt",
        "message",
        "keywords",
        "terms",
        "search_term",
        "search_terms",
        "topic",
        "subject",
    }
)
_ANSWER_NAMES = frozenset(
    {
        "answer",
        "response",
        "reply",
        "result",
        "summary",
        "content",
        "output",
        "explanation",
        "text",
        "message",
    }
)
_NAME_SPLIT_RE = re.compile(r"[A-Z]?[a-z]+|[A-Z]+(?![a-z])|\d+")
_MAX_DEPTH = 8


def name_words(name: str) -> set[str]:
    """Words of an identifier such as ``get_weather`` or ``getWeather``."""
    words = {_stem(w.lower()) for w in _NAME_SPLIT_RE.findall(name)}
    return {w for w in words if w not in STOPWORDS and w not in _GENERIC_NAME_WORDS}


def _trim_phrase(words: Iterable[str]) -> str:
    kept: list[str] = []
    for word in words:
        low = word.lower()
        if low in STOPWORDS or low in _COMMAND_WORDS:
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
        for match in _QUOTED_RE.finditer(text):
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
        words = [w for w in _WORD_RE.findall(text) if w.lower() not in excluded]
        keywords = [
            w for w in words if w.lower() not in STOPWORDS and w.lower() not in _COMMAND_WORDS
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
        return not any(w in _NEGATIONS for w in _WORD_RE.findall(self.lower))


def _resolve(schema: Any, root: Mapping[str, Any]) -> dict[str, Any]:
    """Follow ``$ref`` (local ``#/...`` pointers) and merge ``allOf``."""
    seen = 0
    while isinstance(schema, Mapping) and "$ref" in schema and seen < _MAX_DEPTH:
        ref = schema["$ref"]
        target: Any = root
        if isinstance(ref, str) and ref.startswith("#"):
            for part in ref.lstrip("#").strip("/").split("/"):
                if not part:
                    continue
                part = part.replace("~1", "/").replace("~0", "~")
                target = target.get(part, {}) if isinstance(target, Mapping) else {}
        else:
            target = {}
        merged = {k: v for k, v in schema.items() if k != "$ref"}
        schema = {**target, **merged} if isinstance(target, Mapping) else merged
        seen += 1
    if not isinstance(schema, Mapping):
        return {}
    result = dict(schema)
    all_of = result.pop("allOf", None)
    if isinstance(all_of, list):
        for part in all_of:
            sub = _resolve(part, root)
            for key, value in sub.items():
                if key == "properties" and isinstance(value, Mapping):
                    result["properties"] = {**result.get("properties", {}), **value}
                elif key == "required" and isinstance(value, list):
                    result["required"] = [*result.get("required", []), *value]
                else:
                    result.setdefault(key, value)
    return result


def _schema_type(schema: Mapping[str, Any]) -> str:
    kind = schema.get("type")
    if isinstance(kind, list):
        kinds = [k for k in kind if k != "null"]
        kind = kinds[0] if kinds else "null"
    if isinstance(kind, str):
        return kind
    if "properties" in schema:
        return "object"
    if "items" in schema:
        return "array"
    return "string"


def _clamp_number(value: float, schema: Mapping[str, Any], integer: bool) -> float:
    step = 1.0 if integer else 0.5
    low = schema.get("minimum")
    high = schema.get("maximum")
    xlow = schema.get("exclusiveMinimum")
    xhigh = schema.get("exclusiveMaximum")
    if isinstance(low, (int, float)) and value < low:
        value = float(math.ceil(low) if integer else low)
    if isinstance(xlow, (int, float)) and not isinstance(xlow, bool) and value <= xlow:
        value = float(math.floor(xlow) + 1 if integer else xlow + step)
    if isinstance(high, (int, float)) and value > high:
        value = float(math.floor(high) if integer else high)
    if isinstance(xhigh, (int, float)) and not isinstance(xhigh, bool) and value >= xhigh:
        value = float(math.ceil(xhigh) - 1 if integer else xhigh - step)
    return value


def _string_value(name: str, schema: Mapping[str, Any], ex: Extractor) -> tuple[str, bool]:
    fmt = schema.get("format")
    value: str | None = None
    found = False
    if fmt == "date":
        match = _DATE_RE.search(ex.text)
        value, found = (match.group(0), True) if match else ("2025-01-01", False)
    elif fmt == "date-time":
        match = _DATE_RE.search(ex.text)
        value, found = (
            (match.group(0) + "T00:00:00Z", True) if match else ("2025-01-01T00:00:00Z", False)
        )
    elif fmt == "email":
        match = _EMAIL_RE.search(ex.text)
        value, found = (match.group(0), True) if match else ("user@example.com", False)
    elif fmt in ("uri", "url"):
        value = "https://example.com"
    elif fmt == "uuid":
        value = "00000000-0000-4000-8000-000000000000"
    else:
        lowered = name.lower()
        if lowered in _ANSWER_NAMES and ex.answer:
            value, found = ex.answer, True
        elif lowered in _QUERY_NAMES:
            if ex.quoted:
                value, found = ex.quoted[0], True
            elif ex.keywords:
                value, found = ex.keywords, True
        if value is None:
            picked = ex.string()
            if picked is not None:
                value, found = picked, True
            elif ex.answer:
                value = ex.answer
            elif ex.keywords:
                value = ex.keywords
            else:
                value = name or "value"
    min_length = schema.get("minLength")
    max_length = schema.get("maxLength")
    if isinstance(min_length, int) and len(value) < min_length:
        value = value + "x" * (min_length - len(value))
    if isinstance(max_length, int) and len(value) > max_length:
        value = value[:max_length]
    return value, found


def schema_value(
    schema: Any,
    ex: Extractor,
    *,
    root: Mapping[str, Any] | None = None,
    name: str = "",
    fill_optional: bool = True,
    depth: int = 0,
) -> tuple[Any, bool]:
    """A value valid for ``schema``; the flag says whether it came from the prompt.

    Objects get every required property, and the optional ones too when ``fill_optional`` is
    set or when the prompt supplied a value for them.
    """
    root = root if root is not None else (schema if isinstance(schema, Mapping) else {})
    spec = _resolve(schema, root)
    if depth > _MAX_DEPTH:
        return None, False
    if "const" in spec:
        return spec["const"], False
    enum = spec.get("enum")
    if isinstance(enum, list) and enum:
        return ex.enum(enum)
    for key in ("anyOf", "oneOf"):
        options = spec.get(key)
        if isinstance(options, list) and options:
            resolved = [_resolve(o, root) for o in options]
            usable = [o for o in resolved if o.get("type") != "null"] or resolved
            return schema_value(
                usable[0], ex, root=root, name=name, fill_optional=fill_optional, depth=depth + 1
            )
    kind = _schema_type(spec)
    if kind == "object":
        props = spec.get("properties")
        required = spec.get("required")
        required_set = set(required) if isinstance(required, list) else set()
        result: dict[str, Any] = {}
        any_found = False
        if isinstance(props, Mapping):
            for prop, sub in props.items():
                value, found = schema_value(
                    sub,
                    ex,
                    root=root,
                    name=str(prop),
                    fill_optional=fill_optional,
                    depth=depth + 1,
                )
                if fill_optional or prop in required_set or found:
                    result[str(prop)] = value
                any_found = any_found or found
        return result, any_found
    if kind == "array":
        items = spec.get("items", {})
        min_items = spec.get("minItems")
        max_items = spec.get("maxItems")
        count = min_items if isinstance(min_items, int) and min_items > 1 else 1
        if isinstance(max_items, int):
            count = min(count, max_items)
        values = []
        found_any = False
        for _ in range(count):
            value, found = schema_value(
                items, ex, root=root, name=name, fill_optional=fill_optional, depth=depth + 1
            )
            values.append(value)
            found_any = found_any or found
        return values, found_any
    if kind in ("integer", "number"):
        number = ex.number()
        found = number is not None
        default = spec.get("default")
        if number is None:
            number = float(default) if isinstance(default, (int, float)) else 1.0
        integer = kind == "integer"
        number = _clamp_number(number, spec, integer)
        if integer or number.is_integer():
            return round(number), found
        return number, found
    if kind == "boolean":
        return ex.boolean(), False
    if kind == "null":
        return None, False
    return _string_value(name, spec, ex)


def structured_output(schema: Any, text: str, answer: str = "") -> str:
    """JSON text valid for ``schema``, filled from ``text`` (and ``answer`` for answer fields)."""
    value, _ = schema_value(schema, Extractor(text, answer=answer))
    return json.dumps(value, ensure_ascii=False)


def json_object_output(conversation: str, answer: str) -> str:
    """A JSON object for JSON mode: keys quoted in the prompt, else ``{"answer": ...}``."""
    keys: list[str] = []
    for match in _QUOTED_RE.finditer(conversation):
        key = next(g for g in match.groups() if g is not None).strip()
        if key.isidentifier() and key not in keys:
            keys.append(key)
    if not keys:
        return json.dumps({"answer": answer}, ensure_ascii=False)
    ex = Extractor(conversation, answer=answer, exclude=keys)
    topic = ex.phrases[0] if ex.phrases else ex.string()
    obj: dict[str, Any] = {}
    for key in keys:
        if key.lower() in _ANSWER_NAMES or topic is None:
            obj[key] = answer
        else:
            obj[key] = f"A {key.replace('_', ' ')} about {topic}"
    return json.dumps(obj, ensure_ascii=False)


# --------------------------------------------------------------------------------------------
# Tool calls
# --------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class ToolCallPlan:
    name: str
    arguments: str


def _tool_function(tool: Mapping[str, Any]) -> Mapping[str, Any]:
    function = tool.get("function")
    return function if isinstance(function, Mapping) else {}


def _tool_score(tool: Mapping[str, Any], words: set[str]) -> int:
    function = _tool_function(tool)
    name = str(function.get("name", ""))
    description = str(function.get("description", ""))
    name_hits = len(name_words(name) & words)
    described = {
        w for w in content_words(description) if w not in _GENERIC_NAME_WORDS
    } - INSTRUCTION_WORDS
    return 2 * name_hits + len(described & words)


def _single_string_parameter(parameters: Mapping[str, Any]) -> str | None:
    props = parameters.get("properties")
    required = parameters.get("required")
    if not isinstance(props, Mapping) or not isinstance(required, list) or len(required) != 1:
        return None
    sub = props.get(required[0])
    if isinstance(sub, Mapping) and sub.get("type") == "string" and "enum" not in sub:
        return str(required[0])
    return None


_STEP_SPLIT_RE = re.compile(
    r"(?:[,;]\s*|(?<=[.!?])\s*|\s+)(?:and\s+)?(?:then|after that|afterwards)\b,?\s*", re.I
)


def request_steps(text: str) -> list[str]:
    """The steps of a request, in order: "Look up X, then do Y" has two."""
    return [part.strip() for part in _STEP_SPLIT_RE.split(text) if part.strip()]


def _best_tool(tools: Sequence[Mapping[str, Any]], text: str) -> tuple[int, Mapping[str, Any]]:
    words = set(content_words(text))
    ranked = sorted(((_tool_score(t, words), -i, t) for i, t in enumerate(tools)),
                    key=lambda item: (item[0], item[1]), reverse=True)
    return ranked[0][0], ranked[0][2]


def _tool_steps(
    tools: Sequence[Mapping[str, Any]], prompt: str
) -> list[tuple[str, Mapping[str, Any]]]:
    """The steps of the request that a tool serves, each with that tool."""
    steps = []
    for step in request_steps(prompt):
        score, tool = _best_tool(tools, step)
        if score >= 2:
            steps.append((step, tool))
    return steps


def _rounds_after(turns: Sequence[Turn], index: int) -> int:
    """How many rounds of tool results came after turn ``index`` (one run of results each)."""
    rounds, previous = 0, ""
    for role, _ in turns[index + 1 :]:
        if role == "tool" and previous != "tool":
            rounds += 1
        previous = role
    return rounds


def _latest_results(turns: Sequence[Turn]) -> str:
    results: list[str] = []
    for role, text in reversed(turns):
        if role != "tool":
            break
        results.append(text.strip())
    return "\n".join(reversed(results))


def plan_tool_calls(
    tools: Sequence[Mapping[str, Any]],
    tool_choice: Any,
    turns: Sequence[Turn],
) -> list[ToolCallPlan]:
    """Which tools to call for this conversation, with schema-valid JSON arguments.

    ``tool_choice`` ``"none"`` never calls; a named function is always called; ``"required"``
    calls the best-matching tool (after tool results, the best other one); ``"auto"`` calls a
    tool only when the last user message calls for one, and answers in text right after tool
    results.

    A request in steps that tools serve ("Look up the capital of France, then get the weather
    there") is a chain: one step per round of tool results since the request, its arguments
    taken from the step's words and then from the latest results (a value the request itself
    gave to another step is not reused), then the answer.
    """
    if not tools or tool_choice == "none":
        return []
    forced_name: str | None = None
    if isinstance(tool_choice, Mapping):
        forced = tool_choice.get("function")
        if isinstance(forced, Mapping) and isinstance(forced.get("name"), str):
            forced_name = forced["name"]
    required = tool_choice == "required" or forced_name is not None
    last = _last_user(turns)
    prompt = turns[last][1] if last >= 0 else ""
    if forced_name is None:
        steps = _tool_steps(tools, prompt)
        if len(steps) > 1:
            done = _rounds_after(turns, last)
            if done < len(steps):
                step, tool = steps[done]
                given = Extractor(prompt).strings
                elsewhere = [v for v in given if v.lower() not in step.lower()]
                results = _latest_results(turns) if done else ""
                return _calls_for(tool, step, results, elsewhere)
            if not required:
                return []
    if not required and turns and turns[-1][0] == "tool":
        return []
    chosen: Mapping[str, Any] | None = None
    if forced_name is not None:
        chosen = next((t for t in tools if _tool_function(t).get("name") == forced_name), None)
    else:
        words = set(content_words(prompt))
        ranked = sorted(((_tool_score(t, words), -i, t) for i, t in enumerate(tools)),
                        key=lambda item: (item[0], item[1]), reverse=True)
        if required and turns and turns[-1][0] == "tool" and len(ranked) > 1:
            # The question's own tool has answered; a call forced now goes to another tool
            # (e.g. the one an agent uses to return its structured answer).
            ranked = ranked[1:]
        score, _, best = ranked[0]
        if score >= 2 or required:
            chosen = best
    if chosen is None:
        return []
    return _calls_for(chosen, prompt)


def _calls_for(
    tool: Mapping[str, Any], prompt: str, results: str = "", exclude: Sequence[str] = ()
) -> list[ToolCallPlan]:
    """Calls of ``tool`` for ``prompt``: arguments from its words, then from ``results``."""
    function = _tool_function(tool)
    name = str(function.get("name", ""))
    parameters = function.get("parameters")
    if not isinstance(parameters, Mapping):
        parameters = {"type": "object", "properties": {}}
    exclude = [name, *name.split("_"), *exclude]
    text = f"{prompt}\n{results}" if results else prompt
    extractor = Extractor(text, exclude=exclude)
    single = _single_string_parameter(parameters)
    if single is not None and re.search(r"\band\b|&", prompt):
        values = [*extractor.quoted, *extractor.capitalized]
        values = list(dict.fromkeys(values))[:4]
        if len(values) >= 2:
            calls = []
            for value in values:
                args, _ = schema_value(
                    parameters, Extractor(text, exclude=exclude), fill_optional=False
                )
                args[single] = value
                calls.append(ToolCallPlan(name, json.dumps(args, ensure_ascii=False)))
            return calls
    args, _ = schema_value(parameters, extractor, fill_optional=False)
    if not isinstance(args, dict):
        args = {}
    return [ToolCallPlan(name, json.dumps(args, ensure_ascii=False))]

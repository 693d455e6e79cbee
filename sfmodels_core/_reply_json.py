"""Finding the JSON in what a model wrote, and reading it forgivingly, in linear time.

Models wrap JSON in prose and code fences, write several objects in one reply, get cut off in
the middle of one, and write JSON-like text that is not JSON (single or curly quotes, Python's
``True``/``None``, trailing commas, comments). :func:`scan` finds every bracketed span in one pass
over the text and reads the outermost ones; :func:`loads_lenient` reads one span.

The scan never backtracks: brackets are matched with a stack, quoted strings are skipped with a
regular expression (a quote opens a string only where JSON puts one: after ``{``, ``[``, ``,`` or
``:``, so an apostrophe in prose between brackets is not taken for a string), and a span is
re-read from inside only when it does not read as a whole, within a budget proportional to the
text. So a 200 KB reply costs about as much as reading it once, whatever it holds.
"""

from __future__ import annotations

import bisect
import json
import re
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

#: Bracket depth beyond which the forgiving reader gives up (JSON from models is shallow).
MAX_DEPTH = 200

_OPENER = re.compile(r"[{\[]")
_INSIDE = re.compile("[{}\\[\\]\"'\u201c\u201d\u2018]")
_STRING_END: dict[str, re.Pattern[str]] = {
    '"': re.compile(r'[^"\\]*(?:\\.[^"\\]*)*"', re.S),
    "'": re.compile(r"[^'\\]*(?:\\.[^'\\]*)*'", re.S),
    "\u201c": re.compile("[^\u201c\u201d]*[\u201c\u201d]"),
    "\u201d": re.compile("[^\u201c\u201d]*[\u201c\u201d]"),
    "\u2018": re.compile("[^\u2019]*\u2019"),
}
_STRING_STARTS_AFTER = "{[,:"
_SPACE = " \t\r\n"


@dataclass(frozen=True)
class Found:
    """A JSON value read from ``text[start:end]``."""

    start: int
    end: int
    value: Any


@dataclass(frozen=True)
class Broken:
    """A span that starts like JSON but does not read: cut off (``closed`` False) or malformed."""

    start: int
    closed: bool


@dataclass(frozen=True)
class Scan:
    text: str
    #: The outermost spans that read as JSON values, in the order they appear.
    values: list[Found]
    #: Spans that never close or do not read, outside every value, in the order they appear.
    broken: list[Broken]


@dataclass
class Spans:
    """Every bracketed span of a text, in order of their opening bracket: span ``i`` is
    ``text[starts[i]:ends[i]]``; ``ends[i]`` is -1 when it never closes; ``parents[i]`` is the
    enclosing span, -1 at the top."""

    starts: list[int]
    ends: list[int]
    parents: list[int]


def spans(text: str) -> Spans:
    """The bracketed spans of ``text``, in one pass."""
    starts: list[int] = []
    ends: list[int] = []
    parents: list[int] = []
    stack: list[int] = []
    open_count = {"{": 0, "[": 0}
    search_outside, search_inside = _OPENER.search, _INSIDE.search
    at, size = 0, len(text)
    while at < size:
        match = (search_inside if stack else search_outside)(text, at)
        if match is None:
            break
        at = match.start()
        ch = text[at]
        if ch == "{" or ch == "[":
            parents.append(stack[-1] if stack else -1)
            stack.append(len(starts))
            starts.append(at)
            ends.append(-1)
            open_count[ch] += 1
            at += 1
        elif ch == "}" or ch == "]":
            opener = "{" if ch == "}" else "["
            if open_count[opener]:  # else a stray closer: prose
                while True:  # close the matching opener; those in between stay unclosed
                    top = stack.pop()
                    kind = text[starts[top]]
                    open_count[kind] -= 1
                    if kind == opener:
                        ends[top] = at + 1
                        break
            at += 1
        else:  # a quote, inside brackets
            before = at - 1
            while before >= 0 and text[before] in _SPACE:
                before -= 1
            if before >= 0 and text[before] in _STRING_STARTS_AFTER:
                end = _STRING_END[ch].match(text, at + 1)
                if end is None:
                    break  # a string that never ends: the rest of the reply is inside it
                at = end.end()
            else:
                at += 1
    return Spans(starts, ends, parents)


def scan(text: str, opaque: Callable[[str, int], bool] | None = None) -> Scan:
    """The JSON values of ``text`` and the spans that start like JSON but do not read.

    The outermost readable spans are the values; a span that does not read is looked into for
    values, unless ``opaque(text, start)`` says its content must not be read on its own (for
    example an unfinished protocol envelope, whose inner objects are not answers).
    """
    found = spans(text)
    starts, ends, parents = found.starts, found.ends, found.parents
    count = len(starts)
    children: dict[int, list[int]] = {}
    tops: list[int] = []
    owner = [-1] * count  # the nearest enclosing span that closed
    hidden = [False] * count  # inside an unclosed span whose content is opaque
    unclosed: list[int] = []
    for index in range(count):
        parent = parents[index]
        if parent >= 0:
            if ends[parent] >= 0:
                owner[index] = parent
            else:
                owner[index] = owner[parent]
                hidden[index] = hidden[parent] or (
                    opaque is not None and opaque(text, starts[parent]))
                if hidden[index]:
                    continue
        if ends[index] < 0:
            unclosed.append(index)
        elif owner[index] >= 0:
            children.setdefault(owner[index], []).append(index)
        else:
            tops.append(index)
    values: list[Found] = []
    broken: list[Broken] = [Broken(starts[i], False) for i in unclosed]
    budget = 4 * len(text) + 4096
    todo = list(reversed(tops))
    while todo:
        index = todo.pop()
        snippet = text[starts[index]:ends[index]]
        if len(snippet) > budget:
            broken.append(Broken(starts[index], True))
            continue
        budget -= len(snippet)
        ok, value = loads_lenient(snippet)
        if ok:
            values.append(Found(starts[index], ends[index], value))
            continue
        broken.append(Broken(starts[index], True))
        if opaque is None or not opaque(text, starts[index]):
            todo.extend(reversed(children.get(index, [])))
    # Spans left unclosed by a mismatched bracket inside a value are part of that value.
    value_starts = [v.start for v in values]
    broken = [b for b in broken if not _inside(values, value_starts, b.start)]
    broken.sort(key=lambda b: b.start)
    return Scan(text, values, broken)


def _inside(values: list[Found], starts: list[int], at: int) -> bool:
    index = bisect.bisect_right(starts, at) - 1
    return index >= 0 and values[index].start < at < values[index].end


# -- reading one span -----------------------------------------------------------------------------
_SKIP = re.compile(r"(?:\s+|//[^\n]*|/\*.*?\*/|#[^\n]*)*", re.S)
_NUMBER = re.compile(r"[-+]?(?:\d+\.?\d*|\.\d+)(?:[eE][-+]?\d+)?")
_INTEGER = re.compile(r"[-+]?\d+")
_WORD = re.compile(r"[A-Za-z_$][\w$-]*")
_LITERALS: dict[str, Any] = {"true": True, "false": False, "null": None,
                             "True": True, "False": False, "None": None}
_ESCAPE = re.compile(r"\\(u[0-9a-fA-F]{4}|.)", re.S)
_ESCAPES = {"n": "\n", "t": "\t", "r": "\r", "b": "\b", "f": "\f", "/": "/", "\\": "\\",
            '"': '"', "'": "'"}


def _escape(match: re.Match[str]) -> str:
    code = match.group(1)
    if len(code) == 5:
        return chr(int(code[1:], 16))
    return _ESCAPES.get(code, "\\" + code)


def _unescape(raw: str) -> str:
    if "\\" not in raw:
        return raw
    text = _ESCAPE.sub(_escape, raw)
    try:  # join the halves of \ud83d\ude00-style pairs
        return text.encode("utf-16", "surrogatepass").decode("utf-16")
    except UnicodeDecodeError:
        return text


class _Reader:
    """JSON, and what models write instead of it: single, curly and unquoted strings as keys,
    single and curly quoted values, Python's True/False/None, trailing commas, comments."""

    def __init__(self, text: str) -> None:
        self.text = text
        self.at = 0

    def read(self) -> Any:
        value = self.value(0)
        self.skip()
        if self.at != len(self.text):
            raise ValueError("text after the value")
        return value

    def skip(self) -> None:
        match = _SKIP.match(self.text, self.at)
        if match is not None:
            self.at = match.end()

    def peek(self) -> str:
        self.skip()
        if self.at >= len(self.text):
            raise ValueError("the text ends inside a value")
        return self.text[self.at]

    def value(self, depth: int) -> Any:
        if depth > MAX_DEPTH:
            raise ValueError("nested too deeply")
        ch = self.peek()
        if ch == "{":
            return self.mapping(depth)
        if ch == "[":
            return self.sequence(depth)
        if ch in _STRING_END:
            return self.string()
        number = _NUMBER.match(self.text, self.at)
        if number is not None:
            self.at = number.end()
            raw = number.group()
            return int(raw) if _INTEGER.fullmatch(raw) else float(raw)
        word = _WORD.match(self.text, self.at)
        if word is not None and word.group() in _LITERALS:
            self.at = word.end()
            return _LITERALS[word.group()]
        raise ValueError(f"no value at {self.at}")

    def string(self) -> str:
        quote = self.text[self.at]
        end = _STRING_END[quote].match(self.text, self.at + 1)
        if end is None:
            raise ValueError("a string that never ends")
        self.at = end.end()
        raw = self.text[end.start():end.end() - 1]
        return _unescape(raw) if quote in "\"'" else raw

    def key(self) -> str:
        if self.peek() in _STRING_END:
            return self.string()
        word = _WORD.match(self.text, self.at)
        if word is None:
            raise ValueError(f"no key at {self.at}")
        self.at = word.end()
        return word.group()

    def mapping(self, depth: int) -> dict[str, Any]:
        self.at += 1
        out: dict[str, Any] = {}
        while True:
            if self.peek() == "}":
                self.at += 1
                return out
            key = self.key()
            if self.peek() != ":":
                raise ValueError(f"no ':' at {self.at}")
            self.at += 1
            out[key] = self.value(depth + 1)
            ch = self.peek()
            self.at += 1
            if ch == "}":
                return out
            if ch != ",":
                raise ValueError(f"no ',' at {self.at - 1}")

    def sequence(self, depth: int) -> list[Any]:
        self.at += 1
        out: list[Any] = []
        while True:
            if self.peek() == "]":
                self.at += 1
                return out
            out.append(self.value(depth + 1))
            ch = self.peek()
            self.at += 1
            if ch == "]":
                return out
            if ch != ",":
                raise ValueError(f"no ',' at {self.at - 1}")


def loads_lenient(text: str) -> tuple[bool, Any]:
    """(True, value) when ``text`` is one JSON value, as JSON or as models misspell it."""
    try:
        return True, json.loads(text)
    except (ValueError, RecursionError):
        pass
    try:
        return True, _Reader(text).read()
    except (ValueError, RecursionError, OverflowError):
        return False, None

"""Words: the content words of a text (lower-cased, stemmed, without stopwords), the word lists
that every other part of the emulator's "language" shares, and a stable hash of a text."""

from __future__ import annotations

import hashlib
import re
from functools import lru_cache

WORD_RE = re.compile(r"[^\W_]+")


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
COMMAND_WORDS = _wordset(
    """
    what who whom where when why how which tell give show find get search use using call run
    please return respond list write explain describe create make generate compute calculate
    look lookup fetch can could would should will is are do does hi hello hey dear i the a an
    and or but if then so now today yes no okay ok thanks thank set add remove delete update
    send check convert translate summarize summarise book order write include only me
    """
)



@lru_cache(maxsize=1 << 16)
def stem(word: str) -> str:
    if len(word) > 4 and word.endswith("ies"):
        return word[:-3] + "y"
    if len(word) > 3 and word.endswith("s") and not word.endswith(("ss", "us", "is")):
        return word[:-1]
    return word


def content_words(text: str) -> list[str]:
    """Lower-cased, stemmed words of ``text`` without stopwords, in order."""
    return [stem(w) for w in WORD_RE.findall(text.lower()) if w not in STOPWORDS]


def stable_hash(text: str) -> int:
    digest = hashlib.blake2b(text.encode("utf-8"), digest_size=8, person=b"sfmodels").digest()
    return int.from_bytes(digest, "little")

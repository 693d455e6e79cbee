"""Resuming: what --out already holds, and which input records are still to embed.

An input record is done when the file has a record with its id and the hash of its current text;
a line whose text changed is embedded again and its new record appended (the last record of an
id is the current one). The scan reads the keys at the start of each line, never a vector, and
refuses a file that holds vectors of another provider, model or instruction, or written the
other way (float or base64).
"""

from __future__ import annotations

import hashlib
import json
import re
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from sfmodels_core.errors import InvalidInputError

from .out_file import Identity, json_encoder
from .resume_index import ResumeIndex, id_key

#: Bytes read at a time when scanning --out for the records it holds.
SCAN_CHUNK = 1 << 20

#: A JSON string literal (the loop unrolled: runs of plain bytes, then one escape at a time).
_STRING = rb'"[^"\\]*(?:\\.[^"\\]*)*"'
#: The keys of a record as out_file.record_writer writes them, up to the start of its text.
_KEYS = re.compile(rb'\{"id":(' + _STRING + rb'),"provider":(' + _STRING + rb'),"model":('
                   + _STRING + rb'),"instruction":(null|' + _STRING
                   + rb'),"sha256":"([0-9a-f]{64})","text":"')
#: What follows the text. No JSON string holds `,"` (a quote inside one is escaped), so the
#: first of these after the text's start ends it; then `[` (numbers) or `"` (base64).
_VECTOR = b',"embedding":'
_WRITTEN_AS = {b"[": "float", b'"': "base64"}
_SHA256 = re.compile(r"[0-9a-f]{64}")


def _string(raw: bytes) -> Any:
    """A JSON string literal's value (the common case, no escapes, without the JSON parser)."""
    if b"\\" not in raw:
        return raw[1:-1].decode("utf-8")
    return json.loads(raw)


@dataclass
class Existing:
    """What a scan of --out found."""

    index: ResumeIndex
    records: int = 0
    #: Lines that are not whole records (a write cut short by a crash); their texts are redone.
    broken: int = 0
    #: The file does not end with a newline: one is written before the first new record.
    needs_newline: bool = False


def scan(out: Path, identity: Identity) -> Existing:
    """The records in ``out``, read from the keys at the start of each line; raises on a record
    of another provider, model or instruction, or one that does not say."""
    existing = Existing(ResumeIndex())
    if not out.exists():
        return existing
    expected = (_string_json(identity.provider), _string_json(identity.model),
                b"null" if identity.instruction is None else _string_json(identity.instruction))
    number = 0
    pieces: list[bytes] = []  # a line not finished in the chunks read so far

    def take(buffer: bytes, start: int, stop: int) -> None:
        if stop > start and buffer[stop - 1] == 13:  # "\r\n"
            stop -= 1
        if stop == start:
            return
        match = _KEYS.match(buffer, start, stop)
        vector = -1 if match is None else buffer.find(_VECTOR, match.end(), stop)
        written = _WRITTEN_AS.get(buffer[vector + len(_VECTOR):vector + len(_VECTOR) + 1])
        if (match is not None and vector >= 0 and written is not None
                and buffer[stop - 2:stop] == (b"]}" if written == "float" else b'"}')):
            found = match.group(2, 3, 4)  # a whole record
            if found != expected or written != identity.vectors:
                provider, model, instruction = found  # another model, or other escapes
                other = Identity(_string(provider), _string(model),
                                 None if instruction == b"null" else _string(instruction),
                                 written)
                if other != identity:
                    _refuse(out, identity, other)
            sha = match.group(5)
            existing.index.put(id_key(_string(match.group(1))), int(sha[:16], 16))
            existing.records += 1
            return
        _take_other(out, identity, existing, bytes(buffer[start:stop]), number)

    with out.open("rb") as handle:
        while chunk := handle.read(SCAN_CHUNK):
            if b"\n" not in chunk:
                pieces.append(chunk)
                continue
            buffer = b"".join((*pieces, chunk)) if pieces else chunk
            pieces = []
            start = 0
            while (end := buffer.find(b"\n", start)) >= 0:
                number += 1
                take(buffer, start, end)
                start = end + 1
            if start < len(buffer):
                pieces.append(buffer[start:])
    if pieces:
        last = b"".join(pieces)
        number += 1
        take(last, 0, len(last))
        existing.needs_newline = True
    return existing


def _string_json(value: str) -> bytes:
    return json_encoder()(value)


def _take_other(out: Path, identity: Identity, existing: Existing, line: bytes,
                number: int) -> None:
    """A line not in this command's layout: a record written otherwise, or a broken line."""
    try:
        record = json.loads(line)
    except ValueError:
        existing.broken += 1  # cut short by an interrupted write: its text is embedded again
        return
    if not isinstance(record, dict) or not isinstance(record.get("id"), str):
        raise InvalidInputError(f"{out}:{number} is not a record of sfmodels embed; write to "
                                f"another --out")
    provider, model = record.get("provider"), record.get("model")
    if not isinstance(provider, str) or not isinstance(model, str):
        raise InvalidInputError(
            f"{out}:{number} is a record without provider and model (written by an earlier "
            f"sfmodels embed), so whether its vector fits this run cannot be told; write to "
            f"another --out, or remove {out} to start over")
    instruction = record.get("instruction")
    found = Identity(provider, model, instruction if isinstance(instruction, str) else None,
                     "base64" if isinstance(record.get("embedding"), str) else "float")
    if found != identity:
        _refuse(out, identity, found)
    sha = record.get("sha256")
    existing.records += 1
    if isinstance(sha, str) and _SHA256.fullmatch(sha):
        existing.index.put(id_key(record["id"]), int(sha[:16], 16))


def _refuse(out: Path, identity: Identity, found: Identity) -> None:
    raise InvalidInputError(
        f"{out} holds vectors of {found.describe()}, and this run would add vectors of "
        f"{identity.describe()}; one file holds one model's vectors: write to another --out, "
        f"or remove {out} to start over")


@dataclass
class Tally:
    skipped: int = 0
    changed: int = 0


def pending(items: Iterable[tuple[str, str]], index: ResumeIndex,
            tally: Tally) -> Iterator[tuple[str, str, str]]:
    """(id, text, sha256 hex) of each input record the file does not hold yet."""
    for rid, text in items:
        digest = hashlib.sha256(text.encode("utf-8")).digest()
        if len(index):
            done = index.get(id_key(rid))
            if done is not None:
                if done == int.from_bytes(digest[:8], "big"):
                    tally.skipped += 1
                    continue
                tally.changed += 1
        yield rid, text, digest.hex()

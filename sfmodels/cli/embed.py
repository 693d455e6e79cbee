"""``sfmodels embed``: bulk-embed lines of files into a JSONL file, streaming and resumably.

Each output line is one record, its keys always in this order::

    {"id": "notes.txt:3", "provider": "databricks", "model": "databricks-gte-large-en",
     "instruction": null, "sha256": "<SHA-256 of the text, hex>", "text": "...",
     "embedding": [...]}

With ``--vectors base64`` the embedding is a string instead: the base64 of its little-endian
float32 numbers (OpenAI's ``encoding_format: "base64"``), half to a third of the size of a real
model's numbers as JSON. The vectors then stay float32 from the service to the file: asked for
as base64, kept in one block, written without a float object per number.

The keys come before the vector so that a resume reads them from the start of each line and never
decodes a stored vector. One file holds the vectors of one provider, model and instruction, written
one way: a run with others is refused. An input record is done when the file has a record with its
id and the hash of its current text; a line whose text changed is embedded again and its new record
appended (the last record of an id is the current one).

The run is a bounded pipeline: input is read lazily, at most ``2 * max_concurrency`` batches are
queued or in flight on a thread pool, and finished batches are written in input order while the
next requests run. Each worker encodes its own records, so what waits to be written is bytes,
never lists of floats. Memory stays flat however long the input is: the resume index takes 16 to
32 bytes a record. Ctrl-C stops sending, writes the batches already in flight and exits 130; the
same command then resumes.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import os
import re
import signal
import sys
import threading
import time
from array import array
from collections import deque
from collections.abc import Callable, Iterable, Iterator, Sequence
from concurrent.futures import Future, ThreadPoolExecutor
from concurrent.futures import TimeoutError as WaitTimeout
from dataclasses import dataclass
from itertools import islice
from pathlib import Path
from typing import TYPE_CHECKING, Any

from sfmodels_core.errors import InvalidInputError, SFModelsError
from sfmodels_core.vectors import encode_base64

from ._output import note

if TYPE_CHECKING:
    from sfmodels_core import DatabricksClient, SalesforceClient

DESCRIPTION = (
    "Embeds every non-empty line of each FILE (or each whole file with --whole-files) and "
    "appends records {id, provider, model, instruction, sha256, text, embedding} to --out, one "
    "JSON object a line. Lines whose record (same id, same text) is already in --out are "
    "skipped, so an interrupted run (Ctrl-C included) resumes where it stopped; a changed line "
    "is embedded again. --out holds one provider and model: a run with another is refused.")

#: Batches queued or in flight at once, per allowed concurrent request.
WINDOW_PER_REQUEST = 2
#: Bytes read at a time when scanning --out for the records it holds.
SCAN_CHUNK = 1 << 20
#: How vectors are written: JSON numbers, or base64 of little-endian float32.
VECTOR_FORMATS = ("float", "base64")


def _positive_int(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        value = 0
    if value < 1:
        raise argparse.ArgumentTypeError(f"must be a positive integer, got {text!r}")
    return value


def add_arguments(parser: argparse.ArgumentParser) -> None:
    from sfmodels_core import defaults

    parser.add_argument("files", nargs="+", metavar="FILE",
                        help="UTF-8 text files ('-' for stdin); lines end with \\n or \\r\\n")
    parser.add_argument("--out", default="vectors.jsonl", help="output JSONL (default %(default)s)")
    parser.add_argument("--provider", choices=("salesforce", "databricks"), default="databricks")
    parser.add_argument("--model", default=None,
                        help="embedding model API name (Salesforce) or endpoint (Databricks)")
    parser.add_argument("--whole-files", action="store_true", help="one record per file")
    parser.add_argument("--batch-size", type=_positive_int, default=None,
                        help="texts per request (default: the provider's)")
    parser.add_argument("--max-concurrency", type=_positive_int, default=None,
                        help=f"requests at once (default {defaults.EMBED_MAX_CONCURRENCY})")
    parser.add_argument("--instruction", default=None, help="Databricks embedding instruction")
    parser.add_argument("--vectors", choices=VECTOR_FORMATS, default="float",
                        help="float: JSON numbers (default); base64: little-endian float32 as "
                             "base64, half the size or less (numpy.frombuffer(base64.b64decode("
                             "v), '<f4') reads one)")
    parser.add_argument("--no-progress", action="store_true", help="never show a progress bar")


# -- what a record is -----------------------------------------------------------------------------
@dataclass(frozen=True)
class Identity:
    """Where a file's vectors come from: one file holds one provider, model and instruction."""

    provider: str
    model: str
    instruction: str | None
    vectors: str = "float"

    def describe(self) -> str:
        text = f"{self.provider} model {self.model}"
        text += f" with instruction {self.instruction!r}" if self.instruction else ""
        return text + (" written as base64" if self.vectors == "base64" else "")


def _encoder() -> Callable[[Any], bytes]:
    """orjson when installed (4 to 5 times faster on float lists), else pydantic_core."""
    try:
        import orjson
    except ImportError:  # pragma: no cover - orjson comes with the cli extra
        import pydantic_core

        return pydantic_core.to_json
    return orjson.dumps


def record_writer(identity: Identity) -> Callable[[str, str, str, Any], bytes]:
    """A function (id, text, sha256 hex, vector) -> one record line, keys in the fixed order."""
    encode = _encoder()
    middle = (b',"provider":' + encode(identity.provider) + b',"model":'
              + encode(identity.model) + b',"instruction":' + encode(identity.instruction)
              + b',"sha256":"')

    def vector_json(vector: Any) -> bytes:
        return encode(vector if isinstance(vector, list) else list(vector))

    def vector_base64(vector: Any) -> bytes:
        return b'"' + encode_base64(vector) + b'"'

    write_vector = vector_base64 if identity.vectors == "base64" else vector_json

    def record(rid: str, text: str, sha: str, vector: Any) -> bytes:
        return b"".join((b'{"id":', encode(rid), middle, sha.encode("ascii"), b'","text":',
                         encode(text), b',"embedding":', write_vector(vector), b"}\n"))

    return record


def id_key(rid: str) -> int:
    """A record id's 64-bit key in the resume index (never 0, which marks a free slot).

    Python's string hash (SipHash): the index lives in one process only, so the per-process
    seed does not matter, and it is 40 times cheaper than a hashlib digest. Two ids sharing a
    key can only get a record embedded again, never skipped: the text's hash must match too.
    """
    return hash(rid) & 0xFFFF_FFFF_FFFF_FFFF or 1


class ResumeIndex:
    """id key -> the first 64 bits of the text's SHA-256, in two flat arrays.

    An open-addressing table at most half full: 16 to 32 bytes a record, so a million records
    take 32 MB where a dict of strings would take hundreds.
    """

    def __init__(self, capacity: int = 1024) -> None:
        self._mask = capacity - 1
        self._keys = array("Q", bytes(8 * capacity))
        self._values = array("Q", bytes(8 * capacity))
        self._count = 0

    def __len__(self) -> int:
        return self._count

    def put(self, key: int, value: int) -> None:
        keys, mask = self._keys, self._mask
        slot = key & mask
        while (found := keys[slot]) != key and found:
            slot = (slot + 1) & mask
        if not found:
            keys[slot] = key
            self._count += 1
        self._values[slot] = value
        if self._count * 2 > mask:
            self._grow()

    def get(self, key: int) -> int | None:
        keys, mask = self._keys, self._mask
        slot = key & mask
        while found := keys[slot]:
            if found == key:
                return self._values[slot]
            slot = (slot + 1) & mask
        return None

    def _grow(self) -> None:
        old_keys, old_values = self._keys, self._values
        capacity = 2 * (self._mask + 1)
        self._mask = mask = capacity - 1
        self._keys = keys = array("Q", bytes(8 * capacity))
        self._values = values = array("Q", bytes(8 * capacity))
        for key, value in zip(old_keys, old_values, strict=True):
            if key:
                slot = key & mask
                while keys[slot]:
                    slot = (slot + 1) & mask
                keys[slot] = key
                values[slot] = value


# -- reading what --out already holds -------------------------------------------------------------
#: A JSON string literal (the loop unrolled: runs of plain bytes, then one escape at a time).
_STRING = rb'"[^"\\]*(?:\\.[^"\\]*)*"'
#: The keys of a record written by this command, up to the start of its text.
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
    return _encoder()(value)


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


# -- reading the input ----------------------------------------------------------------------------
def check_paths(names: Sequence[str], out: Path) -> None:
    """Refuse what cannot work before anything is read or sent."""
    for name in names:
        if name == "-":
            continue
        path = Path(name)
        if not path.exists():
            raise InvalidInputError(f"{name}: no such file")
        if path.is_dir():
            raise InvalidInputError(f"{name} is a folder; give the files in it")
        if out.exists() and path.resolve() == out.resolve():
            raise InvalidInputError(f"{name} is both an input and --out")
    if out.is_dir():
        raise InvalidInputError(f"--out {out} is a folder; give a file name")
    folder = out.parent
    if not folder.is_dir():
        raise InvalidInputError(f"--out {out}: the folder {folder} does not exist; create it "
                                f"first")
    if not os.access(out if out.exists() else folder, os.W_OK):
        raise InvalidInputError(f"--out {out}: no permission to write there")


def _label(name: str) -> str:
    return name.encode("utf-8", "backslashreplace").decode("utf-8")


def records(names: Sequence[str], whole_files: bool) -> Iterator[tuple[str, str]]:
    """(id, text) for every non-empty line (or file), read lazily; ids are stable across runs."""
    for name in names:
        label = "stdin" if name == "-" else _label(name)
        if whole_files:
            if name == "-":
                data: bytes | str = (sys.stdin.buffer.read() if hasattr(sys.stdin, "buffer")
                                     else sys.stdin.read())
            else:
                data = Path(name).read_bytes()
            text = _decode(data, label, f"{label} is", "file").strip()
            if text:
                yield label, text
        elif name == "-":
            yield from _lines(label, getattr(sys.stdin, "buffer", None) or sys.stdin)
        else:
            with open(name, "rb") as handle:
                yield from _lines(label, handle)


def _lines(label: str, lines: Iterable[bytes | str]) -> Iterator[tuple[str, str]]:
    for number, line in enumerate(lines, start=1):
        rid = f"{label}:{number}"
        text = _decode(line, label, f"line {rid} is", "line", bom=number == 1).strip()
        if text:
            yield rid, text


def _decode(data: bytes | str, label: str, subject: str, unit: str, bom: bool = True) -> str:
    if isinstance(data, str):
        return data
    try:
        return data.decode("utf-8-sig" if bom else "utf-8")
    except UnicodeDecodeError as exc:
        raise InvalidInputError(
            f"{subject} not UTF-8 text (byte 0x{data[exc.start]:02x} at byte {exc.start + 1} of "
            f"the {unit}); convert {label} to UTF-8 first, e.g. with iconv") from None


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


def batches(items: Iterable[tuple[str, str, str]],
            size: int) -> Iterator[list[tuple[str, str, str]]]:
    iterator = iter(items)
    while batch := list(islice(iterator, size)):
        yield batch


# -- writing --------------------------------------------------------------------------------------
class Output:
    """The output file, opened on the first write: a run that writes nothing creates nothing."""

    def __init__(self, path: Path, needs_newline: bool) -> None:
        self.path = path
        self.needs_newline = needs_newline
        self.handle: Any = None

    def write(self, data: bytes) -> None:
        try:
            if self.handle is None:
                self.handle = self.path.open("ab")
                if self.needs_newline:
                    self.handle.write(b"\n")  # close a line an interrupted run left half-written
            self.handle.write(data)
            self.handle.flush()
        except OSError as exc:
            raise SFModelsError(
                f"cannot write --out {self.path}: {exc.strerror or exc}") from None

    def close(self) -> None:
        if self.handle is not None:
            self.handle.close()


class Progress:
    """A tqdm bar on a terminal (texts done, texts/s, time left, and what the client's adaptive
    limit is doing: requests it lets be in flight, 429s seen); nothing otherwise."""

    def __init__(self, total: int | None, bar: bool,
                 throttle: Callable[[], Any] | None = None) -> None:
        self.bar: Any = None
        self.throttle = throttle
        if bar:
            from tqdm import tqdm

            self.bar = tqdm(total=total, unit=" texts", file=sys.stderr, dynamic_ncols=True,
                            smoothing=0.05)

    def update(self, n: int) -> None:
        if self.bar is None:
            return
        if self.throttle is not None:
            stats = self.throttle()
            self.bar.set_postfix_str(f"{stats.limit} in flight at most, "
                                     f"{stats.rate_limited} answered 429", refresh=False)
        self.bar.update(n)

    def note(self, text: str) -> None:
        if self.bar is not None:
            self.bar.write(text, file=sys.stderr)
        else:
            note(text)

    def close(self) -> None:
        if self.bar is not None:
            self.bar.close()


def _bar_wanted(args: argparse.Namespace) -> bool:
    if args.no_progress or not sys.stderr.isatty():
        return False
    try:
        import tqdm  # noqa: F401
    except ImportError:
        return False
    return True


# -- Ctrl-C ---------------------------------------------------------------------------------------
class Stop:
    """Set by the first Ctrl-C: send nothing more, write what is in flight, exit 130."""

    def __init__(self) -> None:
        self.requested = False

    def install(self) -> Callable[[], None]:
        """Catch SIGINT (in the main thread only); returns what restores the previous handler."""
        if threading.current_thread() is not threading.main_thread():
            return lambda: None

        def on_sigint(signum: int, frame: Any) -> None:
            self.requested = True
            signal.signal(signal.SIGINT, signal.default_int_handler)  # a second one is at once

        previous = signal.signal(signal.SIGINT, on_sigint)

        def restore() -> None:
            signal.signal(signal.SIGINT, previous)

        return restore


# -- the pipeline ---------------------------------------------------------------------------------
Batch = list[tuple[str, str, str]]


def pipeline(embed_batch: Callable[[Batch], bytes], work: Iterator[Batch], output: Output,
             progress: Progress, stop: Stop, concurrency: int) -> tuple[int, Exception | None]:
    """Send batches, at most ``concurrency`` at once, and write each in input order as it
    lands while the next ones are in flight. Returns the texts written and the first error
    (after writing every batch that succeeded)."""
    window: deque[tuple[int, Future[bytes]]] = deque()
    pool = ThreadPoolExecutor(max_workers=concurrency, thread_name_prefix="sfmodels-embed")
    written = 0
    error: Exception | None = None
    stopping = False
    clean = False
    try:
        while True:
            while error is None and not stop.requested and len(window) < (
                    WINDOW_PER_REQUEST * concurrency):
                try:
                    batch = next(work, None)
                except Exception as exc:  # e.g. a line that is not UTF-8: finish, then fail
                    error = exc
                    break
                if batch is None:
                    break
                window.append((len(batch), pool.submit(embed_batch, batch)))
            if (error is not None or stop.requested) and not stopping:
                stopping = True  # drop what has not started; what is in flight is written
                window = deque(item for item in window if not item[1].cancel())
                if stop.requested:
                    progress.note(f"stopping: writing the {len(window)} batches in flight "
                                  f"(Ctrl-C again to stop at once)")
            if not window:
                break
            count, future = window[0]
            try:
                data = future.result(timeout=0.25)  # short waits so Ctrl-C is seen promptly
            except WaitTimeout:  # the builtin TimeoutError only from Python 3.11
                continue
            except Exception as exc:
                window.popleft()
                error = error or exc
                continue
            window.popleft()
            output.write(data)
            written += count
            progress.update(count)
        clean = True
    finally:
        pool.shutdown(wait=clean, cancel_futures=True)
    return written, error


def run(args: argparse.Namespace) -> int:
    from sfmodels_core import ClientOptions, DatabricksClient, SalesforceClient, defaults

    from . import EXIT_INTERRUPTED

    out = Path(args.out)
    check_paths(args.files, out)
    if args.provider == "salesforce":
        if args.instruction is not None:
            raise InvalidInputError("--instruction applies to Databricks embeddings only")
        identity = Identity("salesforce", args.model or defaults.SALESFORCE_EMBEDDING_MODEL, None,
                            args.vectors)
    else:
        identity = Identity("databricks", args.model or defaults.DATABRICKS_EMBEDDING_ENDPOINT,
                            args.instruction, args.vectors)
    options = ClientOptions.build(batch_size=args.batch_size,
                                  max_concurrency=args.max_concurrency)
    client: SalesforceClient | DatabricksClient
    params: dict[str, Any] = {}
    if identity.provider == "salesforce":
        client = SalesforceClient(options=options)
    else:
        client = DatabricksClient(options=options)
        params["instruction"] = identity.instruction
    if out.exists() and out.stat().st_size > 100_000_000:
        note(f"reading the keys of the records already in {out}")
    existing = scan(out, identity)

    bar = _bar_wanted(args)
    total = None
    if bar and "-" not in args.files:  # count what is left first, for the time-left estimate
        total = sum(1 for _ in pending(records(args.files, args.whole_files), existing.index,
                                       Tally()))
    tally = Tally()
    work = batches(pending(records(args.files, args.whole_files), existing.index, tally),
                   client.batch_size)
    make_record = record_writer(identity)

    compact = identity.vectors == "base64"

    def embed_batch(batch: Batch) -> bytes:
        vectors = client.embed(identity.model, [text for _, text, _ in batch], compact=compact,
                               **params).vectors
        return b"".join(make_record(rid, text, sha, vector)
                        for (rid, text, sha), vector in zip(batch, vectors, strict=True))

    output = Output(out, existing.needs_newline)
    progress = Progress(total, bar, lambda: client.throttle)
    stop = Stop()
    restore = stop.install()
    started = time.perf_counter()
    try:
        with client:
            written, error = pipeline(embed_batch, work, output, progress, stop,
                                      client.max_concurrency)
    finally:
        restore()
        progress.close()
        output.close()
    elapsed = time.perf_counter() - started
    if error is not None:
        if written:
            note(f"embedded and wrote {written} texts to {out} before the error below; run the "
                 f"same command again to resume")
        raise error
    if stop.requested:
        note(f"interrupted: {written} texts embedded and written to {out}; run the same command "
             f"again to resume")
        return EXIT_INTERRUPTED
    rate = f", {written / elapsed:.0f} texts/s" if written and elapsed > 0 else ""
    changed = (f"; of those, {tally.changed} changed since their records were written (the last "
               f"record of an id is the current one)" if tally.changed else "")
    note(f"embedded {written} texts in {elapsed:.2f}s{rate}; skipped {tally.skipped} already in "
         f"{out}{changed}")
    return 0

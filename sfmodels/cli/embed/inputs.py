"""Reading the FILE arguments: checks before anything is read or sent, then (id, text) lazily.

A record's id is ``<file>:<line number>`` (or ``<file>`` with --whole-files, ``stdin`` for
``-``), so ids are stable across runs and a resume finds them again.
"""

from __future__ import annotations

import os
import sys
from collections.abc import Iterable, Iterator, Sequence
from pathlib import Path

from sfmodels_core.errors import InvalidInputError


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

"""``sfmodels embed``: bulk-embed lines of files into a JSONL file, resumably."""

from __future__ import annotations

import argparse
import json
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any, TextIO

from ._output import note

DESCRIPTION = (
    "Embeds every non-empty line of each FILE (or each whole file with --whole-files) and "
    "appends {id, text, embedding} records to --out. Records whose id is already in --out are "
    "skipped, so an interrupted run resumes where it stopped.")


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("files", nargs="+", metavar="FILE", help="text files ('-' for stdin)")
    parser.add_argument("--out", default="vectors.jsonl", help="output JSONL (default %(default)s)")
    parser.add_argument("--provider", choices=("salesforce", "databricks"), default="databricks")
    parser.add_argument("--model", default=None,
                        help="embedding model API name (Salesforce) or endpoint (Databricks)")
    parser.add_argument("--whole-files", action="store_true", help="one record per file")
    parser.add_argument("--batch-size", type=int, default=None, help="texts per request")
    parser.add_argument("--max-concurrency", type=int, default=None, help="requests at once")
    parser.add_argument("--instruction", default=None, help="Databricks embedding instruction")
    parser.add_argument("--no-progress", action="store_true", help="never show a progress bar")


def run(args: argparse.Namespace) -> int:
    from sfmodels_core import ClientOptions, DatabricksClient, SalesforceClient, defaults

    out = Path(args.out)
    done = _done_ids(out)
    records = list(_records(args.files, args.whole_files))
    pending = [(rid, text) for rid, text in records if rid not in done]
    skipped = len(records) - len(pending)
    options = ClientOptions.build(batch_size=args.batch_size,
                                  max_concurrency=args.max_concurrency)
    client: SalesforceClient | DatabricksClient
    params: dict[str, Any] = {}
    if args.provider == "salesforce":
        client = SalesforceClient(options=options)
        model = args.model or defaults.SALESFORCE_EMBEDDING_MODEL
    else:
        client = DatabricksClient(options=options)
        model = args.model or defaults.DATABRICKS_EMBEDDING_ENDPOINT
        params["instruction"] = args.instruction
    # Work in slices so progress shows and an interruption loses at most one slice.
    step = client.batch_size * client.max_concurrency * 2
    progress = _Progress(len(pending), not args.no_progress)
    started = time.perf_counter()
    written = 0
    try:
        with client, out.open("a", encoding="utf-8") as handle:
            if out.stat().st_size and not _ends_with_newline(out):
                handle.write("\n")  # close a line an interrupted run left half-written
            for start in range(0, len(pending), step):
                part = pending[start:start + step]
                vectors = client.embed(model, [text for _, text in part], **params).vectors
                _write(handle, part, vectors)
                written += len(part)
                progress.update(len(part))
    finally:
        progress.close()
    elapsed = time.perf_counter() - started
    rate = f", {written / elapsed:.0f} texts/s" if written and elapsed > 0 else ""
    note(f"embedded {written} texts in {elapsed:.2f}s{rate}; skipped {skipped} already in {out}")
    return 0


def _records(paths: list[str], whole_files: bool) -> Iterator[tuple[str, str]]:
    """(id, text) for every line (or file); ids are stable across runs so output can resume."""
    from sfmodels_core.errors import InvalidInputError

    for name in paths:
        if name == "-":
            text, label = sys.stdin.read(), "stdin"
        else:
            path = Path(name)
            if not path.is_file():
                raise InvalidInputError(f"{name}: no such file")
            text, label = path.read_text(encoding="utf-8"), name
        if whole_files:
            if text.strip():
                yield label, text.strip()
            continue
        for number, line in enumerate(text.splitlines(), start=1):
            if line.strip():
                yield f"{label}:{number}", line.strip()


def _done_ids(out: Path) -> set[str]:
    done: set[str] = set()
    if not out.exists():
        return done
    with out.open(encoding="utf-8") as handle:
        for line in handle:
            try:
                done.add(json.loads(line)["id"])
            except (ValueError, KeyError, TypeError):
                continue  # a half-written last line from an interrupted run is redone
    return done


class _Progress:
    """A tqdm bar on a terminal, nothing otherwise (or when tqdm is not installed)."""

    def __init__(self, total: int, enabled: bool) -> None:
        self.bar: Any = None
        if enabled and sys.stderr.isatty():
            try:
                from tqdm import tqdm
            except ImportError:
                return
            self.bar = tqdm(total=total, unit="text", file=sys.stderr)

    def update(self, n: int) -> None:
        if self.bar is not None:
            self.bar.update(n)

    def close(self) -> None:
        if self.bar is not None:
            self.bar.close()


def _ends_with_newline(path: Path) -> bool:
    with path.open("rb") as handle:
        handle.seek(-1, 2)
        return handle.read(1) == b"\n"


def _write(handle: TextIO, part: list[tuple[str, str]], vectors: list[list[float]]) -> None:
    handle.writelines(json.dumps({"id": rid, "text": text, "embedding": vector}) + "\n"
                      for (rid, text), vector in zip(part, vectors, strict=True))
    handle.flush()

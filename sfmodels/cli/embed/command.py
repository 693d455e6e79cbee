"""``sfmodels embed``: its options, and the run that ties inputs, resume, pipeline and output
together."""

from __future__ import annotations

import argparse
import time
from pathlib import Path
from typing import TYPE_CHECKING, Any

from sfmodels_core.errors import InvalidInputError

from .._output import note
from .inputs import check_paths, records
from .interrupt import Stop
from .out_file import VECTOR_FORMATS, Identity, Output, record_writer
from .pipeline import Batch, batches, pipeline
from .progress import Progress, bar_wanted
from .resume import Tally, pending, scan

if TYPE_CHECKING:
    from sfmodels_core import DatabricksClient, SalesforceClient

DESCRIPTION = (
    "Embeds every non-empty line of each FILE (or each whole file with --whole-files) and "
    "appends records {id, provider, model, instruction, sha256, text, embedding} to --out, one "
    "JSON object a line. Lines whose record (same id, same text) is already in --out are "
    "skipped, so an interrupted run (Ctrl-C included) resumes where it stopped; a changed line "
    "is embedded again. --out holds one provider and model: a run with another is refused.")


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


def run(args: argparse.Namespace) -> int:
    from sfmodels_core import ClientOptions, DatabricksClient, SalesforceClient, defaults

    from .. import EXIT_INTERRUPTED

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

    bar = bar_wanted(args)
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

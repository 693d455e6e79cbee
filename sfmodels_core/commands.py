"""The ``chat``, ``embed``, ``feedback`` and ``token`` sub-commands of ``sfmodels``."""

from __future__ import annotations

import argparse
import json
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any, TextIO

from .config import resolve_databricks, resolve_salesforce
from .databricks import DatabricksClient
from .errors import InvalidInputError, SFModelsError
from .salesforce import DEFAULT_CHAT_MODEL, DEFAULT_EMBEDDING_MODEL, SalesforceClient

DEFAULT_DATABRICKS_CHAT = "databricks-meta-llama-3-3-70b-instruct"
DEFAULT_DATABRICKS_EMBEDDING = "databricks-gte-large-en"


def _err(text: str) -> None:
    print(text, file=sys.stderr)


# -- chat -----------------------------------------------------------------------------------------
def chat(args: argparse.Namespace) -> int:
    question = args.question if args.question is not None else sys.stdin.read()
    if not question.strip():
        raise InvalidInputError("no question given (pass it as an argument or on stdin)")
    messages = ([{"role": "system", "content": args.system}] if args.system else []) + [
        {"role": "user", "content": question.strip()}]
    if args.provider == "salesforce":
        with SalesforceClient() as client:
            result = client.chat(args.model or DEFAULT_CHAT_MODEL, messages)
        print(result.text)
        usage = result.usage
        _err(f"[generation id {result.generation_id}"
             + (f"; {usage.prompt_tokens} prompt + {usage.completion_tokens} completion tokens"
                if usage else "") + "]")
        return 0
    with DatabricksClient() as dbx:
        for chunk in dbx.stream_chat(args.model or DEFAULT_DATABRICKS_CHAT, messages):
            if chunk.usage is not None:
                print()
                _err(f"[{chunk.usage.prompt_tokens} prompt + {chunk.usage.completion_tokens} "
                     "completion tokens]")
            elif chunk.text:
                print(chunk.text, end="", flush=True)
    return 0


# -- embed ----------------------------------------------------------------------------------------
def _records(paths: list[str], whole_files: bool) -> Iterator[tuple[str, str]]:
    """(id, text) for every line (or file); ids are stable across runs so output can resume."""
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


def embed(args: argparse.Namespace) -> int:
    out = Path(args.out)
    done = _done_ids(out)
    records = list(_records(args.files, args.whole_files))
    pending = [(rid, text) for rid, text in records if rid not in done]
    skipped = len(records) - len(pending)
    options: dict[str, Any] = {"max_concurrency": args.max_concurrency}
    if args.batch_size:
        options["batch_size"] = args.batch_size
    client: SalesforceClient | DatabricksClient
    if args.provider == "salesforce":
        client = SalesforceClient(**options)
        model = args.model or DEFAULT_EMBEDDING_MODEL
    else:
        client = DatabricksClient(**options)
        model = args.model or DEFAULT_DATABRICKS_EMBEDDING
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
                texts = [text for _, text in part]
                if isinstance(client, DatabricksClient):
                    vectors = client.embed(model, texts, instruction=args.instruction).vectors
                else:
                    vectors = client.embed(model, texts).vectors
                _write(handle, part, vectors)
                written += len(part)
                progress.update(len(part))
    finally:
        progress.close()
    elapsed = time.perf_counter() - started
    rate = f", {written / elapsed:.0f} texts/s" if written and elapsed > 0 else ""
    _err(f"embedded {written} texts in {elapsed:.2f}s{rate}; skipped {skipped} already in "
         f"{out}")
    return 0


def _ends_with_newline(path: Path) -> bool:
    with path.open("rb") as handle:
        handle.seek(-1, 2)
        return handle.read(1) == b"\n"


def _write(handle: TextIO, part: list[tuple[str, str]], vectors: list[list[float]]) -> None:
    handle.writelines(json.dumps({"id": rid, "text": text, "embedding": vector}) + "\n"
                      for (rid, text), vector in zip(part, vectors, strict=True))
    handle.flush()


# -- feedback -------------------------------------------------------------------------------------
def feedback(args: argparse.Namespace) -> int:
    with SalesforceClient() as client:
        result = client.submit_feedback(args.generation_id, args.verdict.upper(), text=args.text,
                                        source=args.source)
    print(f"feedback {result.feedback_id} recorded for generation {result.generation_id}: "
          f"{result.message or 'accepted'}")
    return 0


# -- token ----------------------------------------------------------------------------------------
def _check(name: str, describe: Any, prove: Any) -> bool:
    print(f"{name}:")
    try:
        for line in describe():
            print(f"  {line}")
        for line in prove():
            print(f"  {line}")
    except SFModelsError as exc:
        print(f"  FAILED: {exc}".replace("\n", "\n  "))
        return False
    print("  OK")
    return True


def token(args: argparse.Namespace) -> int:
    ok = True
    if args.provider in ("salesforce", "all"):
        ok &= _check("Salesforce", _describe_salesforce, _prove_salesforce)
    if args.provider in ("databricks", "all"):
        ok &= _check("Databricks", _describe_databricks, _prove_databricks)
    return 0 if ok else 1


def _describe_salesforce() -> Iterator[str]:
    settings = resolve_salesforce()
    source = settings.token_source
    domain = getattr(source, "domain", None)
    if domain:
        yield f"credentials: OAuth client credentials (consumer key set) via {domain}"
    else:
        yield "credentials: a pre-minted access token (SALESFORCE_ACCESS_TOKEN / api_key)"
    yield f"API base: {settings.api_base or 'from the token (api_instance_url), else default'}"


def _prove_salesforce() -> Iterator[str]:
    with SalesforceClient() as client:
        if client.auth.source.refreshable:
            minted = client.auth.get_token()
            left = (minted.expires_at or 0) - time.time()
            yield f"token: minted, valid for another {left / 60:.0f} min"
        yield f"API base in use: {client.api_base()}"
        result = client.embed(DEFAULT_EMBEDDING_MODEL, ["ping"])
        yield (f"call: embeddings with {DEFAULT_EMBEDDING_MODEL} answered "
               f"({len(result.vectors[0])} dims)")


def _describe_databricks() -> Iterator[str]:
    settings = resolve_databricks()
    kind = ("service principal (OAuth M2M)" if settings.token_source.refreshable
            else "personal access token")
    yield f"workspace: {settings.host}"
    yield f"credentials: {kind}"


def _prove_databricks() -> Iterator[str]:
    with DatabricksClient() as client:
        if client.auth.source.refreshable:
            minted = client.auth.get_token()
            left = (minted.expires_at or 0) - time.time()
            yield f"token: minted, valid for another {left / 60:.0f} min"
        result = client.embed(DEFAULT_DATABRICKS_EMBEDDING, ["ping"])
        yield (f"call: embeddings with {DEFAULT_DATABRICKS_EMBEDDING} answered "
               f"({len(result.vectors[0])} dims)")

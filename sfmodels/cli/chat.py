"""``sfmodels chat``: one question, one answer (streamed where the provider streams)."""

from __future__ import annotations

import argparse
import sys

from ._output import note

DESCRIPTION = (
    "Sends one question and prints the answer, streaming it as it arrives where the provider "
    "streams (Databricks). Reads the question from standard input when none is given.")


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("question", nargs="?", help="the question (default: read standard input)")
    parser.add_argument("--provider", choices=("salesforce", "databricks"), default="salesforce")
    parser.add_argument("--model", default=None,
                        help="model API name (Salesforce) or serving endpoint (Databricks)")
    parser.add_argument("--system", default=None, help="an optional system message")


def run(args: argparse.Namespace) -> int:
    from sfmodels_core import DatabricksClient, SalesforceClient, defaults
    from sfmodels_core.errors import InvalidInputError

    question = args.question if args.question is not None else sys.stdin.read()
    if not question.strip():
        raise InvalidInputError("no question given (pass it as an argument or on stdin)")
    messages = ([{"role": "system", "content": args.system}] if args.system else []) + [
        {"role": "user", "content": question.strip()}]
    if args.provider == "salesforce":
        with SalesforceClient() as client:
            result = client.chat(args.model or defaults.SALESFORCE_CHAT_MODEL, messages)
        print(result.text)
        usage = result.usage
        note(f"[generation id {result.generation_id}"
             + (f"; {usage.prompt_tokens} prompt + {usage.completion_tokens} completion tokens"
                if usage else "") + "]")
        return 0
    with DatabricksClient() as dbx:
        for chunk in dbx.stream_chat(args.model or defaults.DATABRICKS_CHAT_ENDPOINT, messages):
            if chunk.usage is not None:
                print()
                note(f"[{chunk.usage.prompt_tokens} prompt + {chunk.usage.completion_tokens} "
                     "completion tokens]")
            elif chunk.text:
                print(chunk.text, end="", flush=True)
    return 0


__all__ = [
    "DESCRIPTION",
    "add_arguments",
    "run",
]

"""``sfmodels demo``: the end-to-end tour of both frameworks on both providers."""

from __future__ import annotations

import argparse

DESCRIPTION = (
    "Answers a question from a small bundled corpus through both providers: chat, generation, "
    "embeddings, streaming, a tool call and feedback. Runs against the real services for each "
    "provider whose credentials are set, otherwise against the built-in emulator, and says "
    "which.")


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--emulator", action="store_true",
                        help="use the built-in emulator even when credentials are set")
    parser.add_argument("--salesforce-model", default=None, help="chat/text model API name")
    parser.add_argument("--databricks-endpoint", default=None, help="chat serving endpoint")
    parser.add_argument("--databricks-embedding-endpoint", default=None,
                        help="embeddings serving endpoint")


def run(args: argparse.Namespace) -> int:
    from sfmodels.demo import run as tour

    return tour(args)


__all__ = [
    "DESCRIPTION",
    "add_arguments",
    "run",
]

"""``sfmodels feedback``: GOOD or BAD feedback on one Salesforce generation."""

from __future__ import annotations

import argparse

DESCRIPTION = (
    "Records GOOD or BAD feedback on a generation id (printed by `sfmodels chat` and the demo) "
    "with Salesforce.")


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("generation_id")
    parser.add_argument("verdict", choices=("good", "bad"), type=str.lower)
    parser.add_argument("--text", default=None, help="free-text feedback (stored up to 1024 chars)")
    parser.add_argument("--source", default="human", help="who gives it (default %(default)s)")


def run(args: argparse.Namespace) -> int:
    from sfmodels_core import SalesforceClient

    with SalesforceClient() as client:
        result = client.submit_feedback(args.generation_id, args.verdict.upper(), text=args.text,
                                        source=args.source)
    print(f"feedback {result.feedback_id} recorded for generation {result.generation_id}: "
          f"{result.message or 'accepted'}")
    return 0


__all__ = [
    "DESCRIPTION",
    "add_arguments",
    "run",
]

"""What the sub-commands print besides their results."""

from __future__ import annotations

import sys


def note(text: str) -> None:
    """A line for the person at the terminal (standard error), never part of the output."""
    print(text, file=sys.stderr)

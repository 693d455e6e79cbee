"""A conversation as the emulator reads it: ``(role, text)`` turns."""

from __future__ import annotations

from collections.abc import Sequence

Turn = tuple[str, str]
"""A conversation turn as ``(role, text)``; roles are system, user, assistant and tool."""


def last_user(turns: Sequence[Turn]) -> int:
    """The index of the last user turn, or -1 when there is none."""
    for i in range(len(turns) - 1, -1, -1):
        if turns[i][0] == "user":
            return i
    return -1

"""``max_inputs_before_429``: an embeddings endpoint that answers 429 to requests with more inputs
than it takes, every time, as small Databricks workspaces do when a batch is over their token
limit (seen at 16 inputs and more). Only a smaller batch succeeds.

The setting maps a model or endpoint name (or ``"*"`` for every one) to the most inputs one
request may carry.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

SETTING = "max_inputs_before_429"


def validate(value: Any) -> dict[str, int]:
    from .state import SettingsError

    if value is None:
        return {}
    if not isinstance(value, Mapping):
        raise SettingsError(f"{SETTING} must map model names (or '*') to input counts, "
                            f"got {value!r}")
    out: dict[str, int] = {}
    for name, limit in value.items():
        if not isinstance(name, str) or not name:
            raise SettingsError(f"{SETTING} keys must be model names or '*', got {name!r}")
        if isinstance(limit, bool) or not isinstance(limit, int) or limit < 1:
            raise SettingsError(f"{SETTING}[{name!r}] must be an integer of at least 1, "
                                f"got {limit!r}")
        out[name] = limit
    return out


def over_limit(limits: Mapping[str, int], name: str, count: int) -> int | None:
    """The limit ``count`` inputs break for ``name``, or None."""
    limit = limits.get(name, limits.get("*"))
    return limit if limit is not None and count > limit else None

"""Unit tests open no sockets: fake services sit behind httpx.MockTransport (see fakes.py)."""

from __future__ import annotations

import pytest

from sfmodels_core import transport as transport_module


@pytest.fixture
def sleeps(monkeypatch: pytest.MonkeyPatch) -> list[float]:
    """Record retry waits instead of sleeping through them."""
    waits: list[float] = []

    def fake(delay: float) -> None:
        if delay > 0:
            waits.append(delay)

    async def afake(delay: float) -> None:
        fake(delay)

    monkeypatch.setattr(transport_module, "_sleep", fake)
    monkeypatch.setattr(transport_module, "_asleep", afake)
    return waits

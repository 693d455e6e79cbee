"""Unit tests open no sockets: fake services sit behind httpx.MockTransport (see fakes.py)."""

from __future__ import annotations

import asyncio

import pytest

from sfmodels_core import _transport as transport_module
from sfmodels_core import bulk as bulk_module


@pytest.fixture
def sleeps(monkeypatch: pytest.MonkeyPatch) -> list[float]:
    """Record retry waits instead of sleeping through them."""
    waits: list[float] = []

    def fake(delay: float) -> None:
        if delay > 0:
            waits.append(delay)

    async def afake(delay: float) -> None:
        fake(delay)

    async def await_stop(stop: object, delay: float) -> None:
        fake(delay)
        await asyncio.sleep(0)

    monkeypatch.setattr(transport_module, "_sleep", fake)
    monkeypatch.setattr(transport_module, "_asleep", afake)
    monkeypatch.setattr(bulk_module, "_wait", lambda stop, delay: fake(delay))
    monkeypatch.setattr(bulk_module, "_await", await_stop)
    return waits

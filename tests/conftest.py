"""Shared fixtures.

The emulator runs once per test session on 127.0.0.1; each test that asks for ``emulator`` gets
it back in its start state (configuration, counters and recorded feedback reset).
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import TYPE_CHECKING

import pytest

if TYPE_CHECKING:
    from sfmodels_emulator import Emulator


@pytest.fixture(scope="session")
def emulator_server() -> Iterator[Emulator]:
    from sfmodels_emulator import Emulator

    with Emulator() as emu:
        yield emu


@pytest.fixture
def emulator(emulator_server: Emulator) -> Iterator[Emulator]:
    emulator_server.reset()
    yield emulator_server
    emulator_server.reset()

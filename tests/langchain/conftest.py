"""Fixtures of the LangChain tests: cassette configuration and the recording target."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest

from . import recording


def pytest_recording_configure(config: pytest.Config, vcr: Any) -> None:
    vcr.register_matcher("json_body", recording.body_matcher)


@pytest.fixture(scope="session")
def vcr_config() -> dict[str, Any]:
    return recording.vcr_config()


@pytest.fixture(scope="module")
def vcr_cassette_dir() -> str:
    return str(recording.CASSETTE_DIR)


@pytest.fixture(scope="session", autouse=True)
def _recording_target(request: pytest.FixtureRequest) -> Iterator[None]:
    """When recording against the emulator, start it and hand its address to the tests."""
    if not recording.REPLAYING and not recording.LIVE:
        emu = request.getfixturevalue("emulator_server")
        recording.use_emulator(emu.url, emu.mint_salesforce_token(), emu.databricks_token)
    yield

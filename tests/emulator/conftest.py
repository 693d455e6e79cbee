"""Fixtures for talking to the emulator with raw httpx."""

from __future__ import annotations

from collections.abc import Iterator

import httpx
import pytest

from sfmodels_emulator import Emulator


@pytest.fixture(scope="session")
def _shared_client(emulator_server: Emulator) -> Iterator[httpx.Client]:
    # One client for the session: building an httpx.Client costs tens of milliseconds.
    with httpx.Client(base_url=emulator_server.url, timeout=10.0) as client:
        yield client


@pytest.fixture
def http(emulator: Emulator, _shared_client: httpx.Client) -> httpx.Client:
    return _shared_client


@pytest.fixture
def sf_headers(emulator: Emulator) -> dict[str, str]:
    return {
        "Authorization": f"Bearer {emulator.mint_salesforce_token()}",
        "x-sfdc-app-context": "EinsteinGPT",
        "x-client-feature-id": "ai-platform-models-connected-app",
    }


@pytest.fixture
def db_headers(emulator: Emulator) -> dict[str, str]:
    return {"Authorization": f"Bearer {emulator.databricks_token}"}

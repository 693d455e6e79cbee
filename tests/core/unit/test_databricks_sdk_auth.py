"""Databricks credentials from databricks-sdk, and everything that must hold without it.

The SDK is stood in for by a fake ``Config`` (anything with ``host``, ``auth_type`` and
``authenticate()``) so these tests run whether or not databricks-sdk is installed; the tests
with a real ``WorkspaceClient`` are in tests/core/on_emulator/test_databricks_sdk_on_emulator.py.
"""

from __future__ import annotations

import asyncio
import base64
import json
import subprocess
import sys
import threading
import time
from pathlib import Path
from typing import Any

import httpx
import pytest

from sfmodels_core import DatabricksClient
from sfmodels_core.auth import BearerAuth, DatabricksSDKCredentials
from sfmodels_core.credentials import SDK_EXTRA, profile_from_target_uri, resolve_databricks
from sfmodels_core.errors import ConfigurationError, TokenError

ROOT = Path(__file__).resolve().parents[3]
CHAT = {"id": "c1", "model": "m", "choices": [{"index": 0, "message": {
    "role": "assistant", "content": "hi"}, "finish_reason": "stop"}]}


def jwt(exp: float) -> str:
    def part(obj: dict[str, Any]) -> str:
        return base64.urlsafe_b64encode(json.dumps(obj).encode()).decode().rstrip("=")

    return f"{part({'alg': 'none'})}.{part({'exp': exp})}.sig"


class FakeConfig:
    """What the core uses of databricks-sdk's Config: host, auth_type, authenticate()."""

    def __init__(self, tokens: list[str] | None = None, *, host: str = "https://adb-1.test",
                 auth_type: str = "oauth-m2m", delay: float = 0.0,
                 extra: dict[str, str] | None = None) -> None:
        self.host = host
        self.auth_type = auth_type
        self.tokens = tokens or [jwt(time.time() + 3600)]
        self.delay = delay
        self.extra = extra or {}
        self.calls = 0
        self._lock = threading.Lock()

    def authenticate(self) -> dict[str, str]:
        with self._lock:
            self.calls += 1
            token = self.tokens[min(self.calls, len(self.tokens)) - 1]
        if self.delay:
            time.sleep(self.delay)  # widen the window in which other callers arrive
        return {"Authorization": f"Bearer {token}", **self.extra}


class FakeWorkspaceClient:
    def __init__(self, config: FakeConfig) -> None:
        self.config = config


@pytest.fixture
def no_sdk(monkeypatch: pytest.MonkeyPatch) -> None:
    """databricks-sdk made unimportable, as on a machine without the extra."""
    for name in ("databricks.sdk", "databricks.sdk.core"):
        monkeypatch.setitem(sys.modules, name, None)


@pytest.fixture
def clean_env(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> Path:
    for name in ("DATABRICKS_HOST", "DATABRICKS_TOKEN", "DATABRICKS_CLIENT_ID",
                 "DATABRICKS_CLIENT_SECRET", "DATABRICKS_CONFIG_PROFILE",
                 "DATABRICKS_CONFIG_FILE", "DATABRICKS_AUTH_TYPE"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("HOME", str(tmp_path))
    return tmp_path


def recording_transport(seen: list[httpx.Request]) -> httpx.MockTransport:
    def handle(request: httpx.Request) -> httpx.Response:
        seen.append(request)
        return httpx.Response(200, json=CHAT)

    return httpx.MockTransport(handle)


# -- without the SDK --------------------------------------------------------------------------
def test_importing_the_databricks_client_does_not_import_the_sdk() -> None:
    code = ("import sys, sfmodels_core.databricks as d; "
            "d.DatabricksClient(host='https://adb-1.test', api_key='dapi-x'); "
            "import sfmodels_core.databricks._responses; "
            "print('databricks.sdk' in sys.modules)")
    out = subprocess.run([sys.executable, "-c", code], cwd=ROOT, capture_output=True,
                         text=True, check=True)
    assert out.stdout.strip() == "False"


@pytest.mark.usefixtures("no_sdk")
@pytest.mark.parametrize("profile_lines", [
    ["auth_type = databricks-cli"],
    ["auth_type = azure-cli"],
    ["azure_client_id = abc", "azure_tenant_id = t", "azure_client_secret = s"],
])
def test_a_profile_only_the_sdk_understands_names_the_extra(
        clean_env: Path, profile_lines: list[str]) -> None:
    (clean_env / ".databrickscfg").write_text(
        "[DEFAULT]\nhost = https://adb-1.test\n" + "\n".join(profile_lines) + "\n")
    with pytest.raises(ConfigurationError) as info:
        DatabricksClient()
    text = str(info.value)
    assert SDK_EXTRA in text
    assert "only databricks-sdk understands" in text


@pytest.mark.usefixtures("no_sdk")
def test_without_the_sdk_missing_credentials_say_how_the_extra_helps(clean_env: Path) -> None:
    with pytest.raises(ConfigurationError, match="workspace is missing"):
        DatabricksClient()
    with pytest.raises(ConfigurationError, match="credentials are missing") as info:
        DatabricksClient(host="https://adb-1.test")
    assert SDK_EXTRA in str(info.value)


@pytest.mark.usefixtures("no_sdk")
def test_without_the_sdk_our_own_settings_work_as_before(clean_env: Path) -> None:
    (clean_env / ".databrickscfg").write_text(
        "[DEFAULT]\nhost = https://adb-1.test\ntoken = dapi-profile\nauth_type = pat\n")
    client = DatabricksClient()
    assert client.host == "https://adb-1.test"
    assert type(client.auth.source).__name__ == "StaticToken"


def test_an_explicit_env_mapping_keeps_the_sdk_out() -> None:
    # The SDK reads the process environment: with env= given, resolution stays in that mapping.
    with pytest.raises(ConfigurationError, match="credentials are missing"):
        resolve_databricks(host="https://adb-1.test", env={"DATABRICKS_CONFIG_FILE": "/none"})


# -- target_uri ------------------------------------------------------------------------------
def test_target_uri_names_a_profile(clean_env: Path) -> None:
    (clean_env / ".databrickscfg").write_text(
        "[DEFAULT]\nhost = https://default.test\ntoken = d\n"
        "[prod]\nhost = https://prod.test\ntoken = p\n")
    assert profile_from_target_uri("databricks") is None
    assert profile_from_target_uri("databricks://prod") == "prod"
    assert DatabricksClient(target_uri="databricks").host == "https://default.test"
    assert DatabricksClient(target_uri="databricks://prod").host == "https://prod.test"
    assert DatabricksClient(target_uri="databricks://prod", profile="prod").host == \
        "https://prod.test"
    with pytest.raises(ConfigurationError, match="names profile 'prod'"):
        DatabricksClient(target_uri="databricks://prod", profile="other")


@pytest.mark.parametrize("uri", ["", "databricks://", "databricks://scope:prefix",
                                 "http://prod", "databricks-uc", "databricks://a/b"])
def test_target_uris_that_name_no_profile_are_refused(uri: str) -> None:
    with pytest.raises(ConfigurationError, match="databricks://<profile>"):
        DatabricksClient(target_uri=uri, host="https://adb-1.test", api_key="x")


# -- workspace_client --------------------------------------------------------------------------
def test_workspace_client_or_its_config_provide_host_and_credentials() -> None:
    seen: list[httpx.Request] = []
    config = FakeConfig(["tok-1"])
    for given in (FakeWorkspaceClient(config), config):
        with DatabricksClient(workspace_client=given, transport=recording_transport(seen)) as c:
            assert c.host == "https://adb-1.test"
            assert c.chat("e", [{"role": "user", "content": "hi"}]).text == "hi"
    assert [r.headers["authorization"] for r in seen] == ["Bearer tok-1"] * 2
    assert str(seen[0].url) == "https://adb-1.test/serving-endpoints/e/invocations"


@pytest.mark.parametrize("other", [{"host": "https://x.test"}, {"api_key": "dapi"},
                                   {"profile": "prod"}, {"target_uri": "databricks"}])
def test_workspace_client_with_other_settings_is_ambiguous(other: dict[str, Any]) -> None:
    with pytest.raises(ConfigurationError, match="workspace_client= carries its own"):
        DatabricksClient(workspace_client=FakeConfig(), **other)


def test_workspace_client_of_the_wrong_kind_is_refused() -> None:
    with pytest.raises(ConfigurationError, match="WorkspaceClient or its Config"):
        DatabricksClient(workspace_client=object())


def test_every_header_the_sdk_gives_is_sent_and_none_is_shown() -> None:
    seen: list[httpx.Request] = []
    config = FakeConfig(["aad-token"], auth_type="azure-client-secret",
                        extra={"X-Databricks-Azure-SP-Management-Token": "mgmt-secret"})
    client = DatabricksClient(workspace_client=config, transport=recording_transport(seen))
    client.chat("e", [{"role": "user", "content": "hi"}])
    assert seen[0].headers["x-databricks-azure-sp-management-token"] == "mgmt-secret"
    assert seen[0].headers["authorization"] == "Bearer aad-token"
    token = client.auth.token
    assert token is not None
    for shown in (repr(client), repr(client.auth), repr(token), str(token)):
        assert "aad-token" not in shown and "mgmt-secret" not in shown


# -- one mint at a time, refresh, 401 -------------------------------------------------------------
def test_the_sdk_is_asked_once_however_many_threads_and_tasks_need_a_token() -> None:
    config = FakeConfig(delay=0.05)
    auth = BearerAuth(DatabricksSDKCredentials(config))
    threads_n, tasks_n = 16, 16
    barrier = threading.Barrier(threads_n + 1)
    got: list[str] = []

    def worker() -> None:
        barrier.wait()
        got.append(auth.get_token().value.get_secret_value())

    async def tasks() -> None:
        async def one() -> None:
            got.append((await auth.aget_token()).value.get_secret_value())

        barrier.wait()
        await asyncio.gather(*(one() for _ in range(tasks_n)))

    threads = [threading.Thread(target=worker) for _ in range(threads_n)]
    for thread in threads:
        thread.start()
    asyncio.run(tasks())
    for thread in threads:
        thread.join()
    assert len(got) == threads_n + tasks_n
    assert len(set(got)) == 1
    assert config.calls == 1
    assert auth.mints == 1


def test_the_sdk_is_asked_again_when_its_token_is_about_to_expire() -> None:
    config = FakeConfig([jwt(time.time() - 1), jwt(time.time() + 3600)])
    auth = BearerAuth(DatabricksSDKCredentials(config))
    first = auth.get_token()
    second = auth.get_token()
    assert config.calls == 2
    assert first.value.get_secret_value() != second.value.get_secret_value()
    auth.get_token()
    assert config.calls == 2  # the fresh one is reused


def test_headers_without_an_expiry_are_reused_for_a_while_and_pats_for_good() -> None:
    opaque = BearerAuth(DatabricksSDKCredentials(FakeConfig(["opaque"], auth_type="runtime")))
    token = opaque.get_token()
    assert token.expires_at is not None and token.expires_at > time.time() + 30
    pat = BearerAuth(DatabricksSDKCredentials(FakeConfig(["dapi"], auth_type="pat")))
    assert pat.get_token().expires_at is None


def test_a_401_asks_the_sdk_again_and_resends_once() -> None:
    seen: list[str] = []

    def handle(request: httpx.Request) -> httpx.Response:
        seen.append(request.headers["authorization"])
        if request.headers["authorization"] == "Bearer revoked":
            return httpx.Response(401, json={"error_code": "UNAUTHENTICATED", "message": "no"})
        return httpx.Response(200, json=CHAT)

    config = FakeConfig(["revoked", "fresh"], auth_type="runtime")
    client = DatabricksClient(workspace_client=config, transport=httpx.MockTransport(handle))
    assert client.chat("e", [{"role": "user", "content": "hi"}]).text == "hi"
    assert seen == ["Bearer revoked", "Bearer fresh"]
    assert config.calls == 2


def test_sdk_failures_are_token_errors() -> None:
    class Broken(FakeConfig):
        def authenticate(self) -> dict[str, str]:
            raise ValueError("cannot get a token: login expired")

    client = DatabricksClient(workspace_client=Broken(auth_type="databricks-cli"),
                              transport=recording_transport([]))
    with pytest.raises(TokenError, match=r"databricks-cli auth.*login expired"):
        client.chat("e", [{"role": "user", "content": "hi"}])

    class Empty(FakeConfig):
        def authenticate(self) -> dict[str, str]:
            return {}

    client = DatabricksClient(workspace_client=Empty(), transport=recording_transport([]))
    with pytest.raises(TokenError, match="no usable credential headers"):
        client.chat("e", [{"role": "user", "content": "hi"}])


async def test_the_async_path_keeps_the_event_loop_free_while_the_sdk_works() -> None:
    config = FakeConfig(delay=0.2)
    auth = BearerAuth(DatabricksSDKCredentials(config))
    ticks = 0

    async def ticker() -> None:
        nonlocal ticks
        while True:
            ticks += 1
            await asyncio.sleep(0.01)

    task = asyncio.create_task(ticker())
    await auth.aget_token()
    task.cancel()
    assert ticks > 1  # the loop ran while the SDK call blocked its worker thread
    assert config.calls == 1

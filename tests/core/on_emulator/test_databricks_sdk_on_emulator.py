"""A real databricks-sdk ``WorkspaceClient`` pointed at the emulator, and the SDK's default
authentication with a config file in a temporary HOME.

The laptop case (``databricks auth login``) is played by a stand-in ``databricks`` command that
answers ``databricks auth token`` the way the CLI does; the SDK runs it as it would the real one.
"""

from __future__ import annotations

import asyncio
import os
import stat
import sys
import threading
from collections.abc import Iterator
from pathlib import Path

import pytest

from sfmodels_core import DatabricksClient
from sfmodels_core.credentials import SDK_EXTRA
from sfmodels_core.errors import AuthenticationError, ConfigurationError
from sfmodels_emulator import Emulator

sdk = pytest.importorskip("databricks.sdk")

CHAT_ENDPOINT = "databricks-meta-llama-3-3-70b-instruct"
HI = [{"role": "user", "content": "hi"}]

FAKE_CLI = """#!{python}
import json, sys
args = sys.argv[1:]
if args[:2] != ["auth", "token"]:
    sys.exit(1)  # version probes and the rest: not what this stand-in does
with open({calls!r}, "a") as f:
    f.write(" ".join(args) + "\\n")
print(json.dumps({{"access_token": {token!r}, "token_type": "Bearer",
                  "expiry": "2099-01-01T00:00:00Z"}}))
"""


@pytest.fixture
def home(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> Iterator[Path]:
    """An empty HOME and no Databricks settings in the environment."""
    for name in list(os.environ):
        if name.startswith(("DATABRICKS_", "ARM_", "AZURE_", "GOOGLE_")):
            monkeypatch.delenv(name)
    monkeypatch.setenv("HOME", str(tmp_path))
    yield tmp_path


def fake_cli(directory: Path, token: str) -> tuple[Path, Path]:
    """A ``databricks`` command that prints ``token``, and the file that logs its calls."""
    calls = directory / "cli-calls.log"
    cli = directory / "bin" / "databricks"
    cli.parent.mkdir(exist_ok=True)
    cli.write_text(FAKE_CLI.format(python=sys.executable, calls=str(calls), token=token))
    cli.chmod(cli.stat().st_mode | stat.S_IXUSR)
    return cli, calls


def test_a_workspace_client_with_a_pat(emulator: Emulator) -> None:
    wc = sdk.WorkspaceClient(host=emulator.url, token=emulator.databricks_token)
    with DatabricksClient(workspace_client=wc) as client:
        assert client.host == emulator.url
        assert client.chat(CHAT_ENDPOINT, HI).text
        assert "".join(c.text for c in client.stream_chat(CHAT_ENDPOINT, HI))
        assert len(client.embed("databricks-gte-large-en", ["a", "b"]).vectors) == 2


def test_oauth_m2m_through_the_sdk_mints_once_for_many_threads_and_tasks(
        emulator: Emulator, monkeypatch: pytest.MonkeyPatch) -> None:
    wc = sdk.WorkspaceClient(host=emulator.url, client_id=emulator.databricks_client_id,
                             client_secret=emulator.databricks_client_secret)
    assert wc.config.auth_type == "oauth-m2m"
    calls = 0
    lock = threading.Lock()
    authenticate = wc.config.authenticate

    def counted() -> dict[str, str]:
        nonlocal calls
        with lock:
            calls += 1
        return authenticate()  # type: ignore[no-any-return]

    monkeypatch.setattr(wc.config, "authenticate", counted)
    client = DatabricksClient(workspace_client=wc)
    barrier = threading.Barrier(9)
    texts: list[str] = []

    def worker() -> None:
        barrier.wait()
        texts.append(client.chat(CHAT_ENDPOINT, HI).text)

    async def tasks() -> None:
        async def one() -> None:
            texts.append((await client.achat(CHAT_ENDPOINT, HI)).text)

        barrier.wait()
        await asyncio.gather(*(one() for _ in range(8)))
        await client.aclose()

    threads = [threading.Thread(target=worker) for _ in range(8)]
    for thread in threads:
        thread.start()
    asyncio.run(tasks())
    for thread in threads:
        thread.join()
    client.close()
    assert len(texts) == 16 and all(texts)
    assert calls == 1  # the SDK was asked once, for all 16 callers
    assert emulator.counters()["tokens_minted"]["databricks"] == 1
    assert emulator.counters()["requests"]["databricks.invocations"] == 16


def test_the_sdk_config_and_its_refresh_after_tokens_expire(emulator: Emulator) -> None:
    config = sdk.core.Config(host=emulator.url, client_id=emulator.databricks_client_id,
                             client_secret=emulator.databricks_client_secret)
    with DatabricksClient(workspace_client=config) as client:
        client.chat(CHAT_ENDPOINT, HI)
        emulator.expire_tokens()  # the server forgets the token: the next call gets a 401
        # The SDK still holds its token, so asking it again gives the same one: the 401 stands
        # and is reported, never retried in a loop.
        with pytest.raises(AuthenticationError, match="expired"):
            client.chat(CHAT_ENDPOINT, HI)
    assert emulator.counters()["requests"]["databricks.invocations"] == 3


def test_no_settings_at_all_uses_the_default_chain_from_a_config_file(
        emulator: Emulator, home: Path) -> None:
    cli, calls = fake_cli(home, emulator.databricks_token)
    (home / ".databrickscfg").write_text(
        f"[DEFAULT]\nhost = {emulator.url}\nauth_type = databricks-cli\n"
        f"databricks_cli_path = {cli}\n")
    with DatabricksClient() as client:
        assert client.host == emulator.url
        assert type(client.auth.source).__name__ == "DatabricksSDKCredentials"
        for _ in range(3):
            assert client.chat(CHAT_ENDPOINT, HI).text
    assert calls.read_text().count("auth token") >= 1


def test_a_host_alone_and_databricks_auth_login_are_enough(
        emulator: Emulator, home: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    cli, calls = fake_cli(home, emulator.databricks_token)
    monkeypatch.setenv("PATH", f"{cli.parent}{os.pathsep}{os.environ.get('PATH', '')}")
    monkeypatch.setenv("DATABRICKS_HOST", emulator.url)
    with DatabricksClient() as client:
        assert client.chat(CHAT_ENDPOINT, HI).text
        assert client.auth.source.config.auth_type == "databricks-cli"  # type: ignore[attr-defined]
    assert "--host" in calls.read_text()


def test_target_uri_selects_a_profile_the_sdk_authenticates(
        emulator: Emulator, home: Path) -> None:
    cli, _ = fake_cli(home, emulator.databricks_token)
    (home / ".databrickscfg").write_text(
        f"[DEFAULT]\nhost = https://elsewhere.example\ntoken = not-this-one\n"
        f"[laptop]\nhost = {emulator.url}\nauth_type = databricks-cli\n"
        f"databricks_cli_path = {cli}\n")
    with DatabricksClient(target_uri="databricks://laptop") as client:
        assert client.host == emulator.url
        assert client.chat(CHAT_ENDPOINT, HI).text


def test_the_same_config_without_the_sdk_names_the_extra(
        emulator: Emulator, home: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    cli, _ = fake_cli(home, emulator.databricks_token)
    (home / ".databrickscfg").write_text(
        f"[DEFAULT]\nhost = {emulator.url}\nauth_type = databricks-cli\n"
        f"databricks_cli_path = {cli}\n")
    for name in ("databricks.sdk", "databricks.sdk.core"):
        monkeypatch.setitem(sys.modules, name, None)
    with pytest.raises(ConfigurationError, match=r"auth_type 'databricks-cli'") as info:
        DatabricksClient()
    assert SDK_EXTRA in str(info.value)


def test_when_the_sdk_finds_nothing_the_error_says_what_is_missing(home: Path) -> None:
    with pytest.raises(ConfigurationError, match="workspace is missing") as info:
        DatabricksClient()
    assert "databricks-sdk's authentication found no credentials either" in str(info.value)

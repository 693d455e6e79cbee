"""Workload identity over HTTP: a JWT in a variable (env-oidc) or a file (file-oidc) exchanged at
the emulator's /oidc/v1/token, once per token lifetime, sync and async alike; the file is read
again at each refresh; the errors name the setting, never the JWT."""

from __future__ import annotations

import asyncio
import threading
import time
from pathlib import Path
from typing import Any

import pytest

from sfmodels_core import DatabricksClient
from sfmodels_core.errors import ConfigurationError, TokenError
from sfmodels_emulator import Emulator
from tests.core.unit.fakes import make_jwt

GTE = "databricks-gte-large-en"
LLAMA = "databricks-meta-llama-3-3-70b-instruct"
HI = [{"role": "user", "content": "hi"}]


def jwt(ttl: float = 600, sub: str = "system:serviceaccount:ml:batch") -> str:
    return make_jwt(exp=time.time() + ttl, sub=sub, iss="https://oidc.example.test")


def env_oidc(emulator: Emulator, token: str, **extra: str) -> dict[str, str]:
    return {"DATABRICKS_HOST": emulator.url, "DATABRICKS_AUTH_TYPE": "env-oidc",
            "DATABRICKS_OIDC_TOKEN": token, "DATABRICKS_CONFIG_FILE": "/nonexistent", **extra}


def file_oidc(emulator: Emulator, path: Path) -> dict[str, str]:
    return {"DATABRICKS_HOST": emulator.url, "DATABRICKS_OIDC_TOKEN_FILEPATH": str(path),
            "DATABRICKS_CONFIG_FILE": "/nonexistent"}


def minted(emulator: Emulator) -> int:
    return int(emulator.counters()["tokens_minted"]["databricks"])


@pytest.mark.parametrize("source", ["env-oidc", "file-oidc"])
def test_one_exchange_serves_many_calls_sync_and_async(emulator: Emulator, tmp_path: Path,
                                                       source: str) -> None:
    path = tmp_path / "token"
    path.write_text(jwt() + "\n")
    env = env_oidc(emulator, jwt()) if source == "env-oidc" else file_oidc(emulator, path)
    with DatabricksClient(env=env) as client:
        assert source in repr(client)
        threads = [threading.Thread(target=client.chat, args=(LLAMA, HI)) for _ in range(6)]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
        assert len(client.embed(GTE, ["a", "b"]).vectors) == 2

        async def many() -> list[Any]:
            return await asyncio.gather(*(client.achat(LLAMA, HI) for _ in range(6)))

        assert all(answer.text for answer in asyncio.run(many()))
    assert minted(emulator) == 1
    assert emulator.counters()["requests"]["databricks.invocations"] == 13


@pytest.mark.parametrize("mode", ["sync", "async"])
def test_a_refresh_reads_the_rotated_file(emulator: Emulator, tmp_path: Path,
                                          mode: str) -> None:
    # Tokens for a second; the first JWT expires soon after, so only a re-read file works.
    emulator.configure(token_ttl_s=1.0)
    path = tmp_path / "token"
    path.write_text(jwt(ttl=1.5, sub="first"))
    with DatabricksClient(env=file_oidc(emulator, path)) as client:
        call = (lambda: client.embed(GTE, ["a"])) if mode == "sync" else (
            lambda: asyncio.run(client.aembed(GTE, ["a"])))
        call()
        path.write_text(jwt(sub="second"))  # the platform rotates it
        time.sleep(2.0)
        call()
        assert minted(emulator) == 2
        # A 401 (the service dropped the token early) re-mints once, with the file as it is.
        emulator.expire_tokens()
        path.write_text(jwt(sub="third"))
        call()
    assert minted(emulator) == 3


def test_a_service_principal_federation_policy(emulator: Emulator) -> None:
    own = env_oidc(emulator, jwt(), DATABRICKS_CLIENT_ID=emulator.databricks_client_id)
    with DatabricksClient(env=own) as client:
        assert client.chat(LLAMA, HI).text
    unknown = env_oidc(emulator, jwt(), DATABRICKS_CLIENT_ID="not-a-service-principal")
    with DatabricksClient(env=unknown) as client, pytest.raises(TokenError) as info:
        client.chat(LLAMA, HI)
    assert info.value.status_code == 401 and info.value.error_code == "invalid_client"
    assert "DATABRICKS_OIDC_TOKEN (env-oidc)" in str(info.value)
    assert "DATABRICKS_CLIENT_ID" in (info.value.hint or "")


@pytest.mark.parametrize("token", [jwt(ttl=-60), "not-a-jwt-at-all"])
def test_a_refused_exchange_is_a_token_error_naming_the_setting(emulator: Emulator,
                                                                token: str) -> None:
    with DatabricksClient(env=env_oidc(emulator, token)) as client, \
            pytest.raises(TokenError) as info:
        client.chat(LLAMA, HI)
    text = str(info.value)
    assert "workload identity token from DATABRICKS_OIDC_TOKEN (env-oidc)" in text
    assert info.value.status_code == 400 and info.value.error_code == "invalid_request"
    assert token not in text and token not in repr(info.value)
    assert emulator.counters()["requests"]["databricks.invocations"] == 0


def test_a_jwt_the_workspace_does_not_trust_is_refused(tmp_path: Path) -> None:
    trusted, other = jwt(sub="trusted"), jwt(sub="other")
    path = tmp_path / "token"
    path.write_text(other)
    with Emulator(databricks_oidc_tokens=[trusted]) as emu:
        with DatabricksClient(env=file_oidc(emu, path)) as client, \
                pytest.raises(TokenError, match="federation policy") as info:
            client.embed(GTE, ["a"])
        assert f"DATABRICKS_OIDC_TOKEN_FILEPATH ({path}) (file-oidc)" in str(info.value)
        path.write_text(trusted)
        with DatabricksClient(env=file_oidc(emu, path)) as client:
            assert client.embed(GTE, ["a"]).vectors


def test_a_file_gone_before_the_first_exchange(emulator: Emulator, tmp_path: Path) -> None:
    path = tmp_path / "token"
    with pytest.raises(ConfigurationError, match="DATABRICKS_OIDC_TOKEN_FILEPATH"):
        DatabricksClient(env=file_oidc(emulator, path))
    path.write_text(jwt())
    client = DatabricksClient(env=file_oidc(emulator, path))
    path.unlink()
    with client, pytest.raises(TokenError) as info:
        client.embed(GTE, ["a"])
    assert f"DATABRICKS_OIDC_TOKEN_FILEPATH ({path}) does not exist" in str(info.value)
    assert minted(emulator) == 0


def test_the_constructor_takes_the_settings_by_name(emulator: Emulator, tmp_path: Path) -> None:
    path = tmp_path / "token"
    path.write_text(jwt())
    with DatabricksClient(host=emulator.url, auth_type="file-oidc",
                          oidc_token_filepath=str(path), env={}) as client:
        assert client.embed(GTE, ["a"]).vectors
    with DatabricksClient(host=emulator.url, auth_type="env-oidc", oidc_token_env="CI_TOKEN",
                          env={"CI_TOKEN": jwt()}) as client:
        assert client.embed(GTE, ["a"]).vectors

"""``ship_token=True``: one token minted on the driver travels to the workers with its expiry;
they send it as it is, and once it has expired (or been refused) they send nothing more with it,
each request failing locally with TokenExpiredError, which the batch rows keep per row."""

from __future__ import annotations

import asyncio
import dataclasses
import pickle
import time
from typing import Any

import httpx
import pytest

from sfmodels_core import DatabricksClient, defaults
from sfmodels_core.credentials import DatabricksCredentials
from sfmodels_core.errors import (
    AuthenticationError,
    ConfigurationError,
    InvalidInputError,
    TokenExpiredError,
)
from sfmodels_core.integration.batch import connection as conn
from sfmodels_core.integration.batch import rows
from sfmodels_core.options import ClientOptions
from sfmodels_emulator import Emulator
from tests.core.unit.fakes import make_jwt

GTE = "databricks-gte-large-en"
LLAMA = "databricks-meta-llama-3-3-70b-instruct"
HI = [{"role": "user", "content": "hi"}]
RESUME = "Rerun the job on its saved output: only the rows not done are sent again"


def service_principal(emulator: Emulator, **extra: Any) -> dict[str, Any]:
    return {"host": emulator.url, "client_id": emulator.databricks_client_id,
            "client_secret": emulator.databricks_client_secret, **extra}


def minted(emulator: Emulator) -> int:
    return int(emulator.counters()["tokens_minted"]["databricks"])


def sent(emulator: Emulator) -> int:
    return int(emulator.counters()["requests"]["databricks.invocations"])


class Recording(httpx.HTTPTransport):
    """A real transport that keeps the Authorization header of each request it sends."""

    def __init__(self) -> None:
        super().__init__()
        self.authorizations: list[str | None] = []

    def handle_request(self, request: httpx.Request) -> httpx.Response:
        self.authorizations.append(request.headers.get("authorization"))
        return super().handle_request(request)


def shipped(emulator: Emulator, **extra: Any) -> conn.Connection:
    return conn.resolve("databricks", service_principal(emulator, **{"ship_token": True, **extra}),
                        env={})


def expiring(connection: conn.Connection, expires_at: float) -> conn.Connection:
    credentials = connection.credentials
    assert isinstance(credentials, DatabricksCredentials)
    return conn.Connection(dataclasses.replace(credentials, expires_at=expires_at))


def test_the_driver_mints_one_token_and_the_connection_carries_it_not_the_secret(
        emulator: Emulator) -> None:
    connection = shipped(emulator)
    assert minted(emulator) == 1
    assert connection.shipped and connection.token is not None
    assert connection.client_id is None and connection.client_secret is None
    assert connection.expires_at is not None
    assert 3590 < connection.expires_at - time.time() <= 3600  # the emulator's hour
    token = connection.token.get_secret_value()
    shown = repr(connection) + str(connection) + repr(connection.credentials)
    assert "auth='shipped token'" in shown and "expires=" in shown
    assert token not in shown and emulator.databricks_client_secret not in shown
    assert emulator.databricks_client_secret.encode() not in pickle.dumps(connection)

    # A worker: the unpickled connection's client sends the shipped token as a bearer.
    copy = pickle.loads(pickle.dumps(connection))
    assert copy == connection and hash(copy) == hash(connection)
    recording = Recording()
    with DatabricksClient.from_credentials(copy.credentials, transport=recording) as client:
        assert client.embed(GTE, ["a", "b"]).vectors
        assert client.chat(LLAMA, HI).text
    assert recording.authorizations == [f"Bearer {token}"] * 2
    client = conn.client_for(copy, ClientOptions())
    assert client.embed(GTE, ["a"]).vectors
    assert minted(emulator) == 1  # the workers minted nothing


@pytest.mark.parametrize("left", [-5.0, defaults.SHIPPED_TOKEN_MARGIN / 2])
def test_after_its_expiry_requests_fail_locally_sync_and_async(emulator: Emulator,
                                                               left: float) -> None:
    expires_at = time.time() + left
    connection = expiring(shipped(emulator), expires_at)
    when = time.strftime("%Y-%m-%d %H:%M:%S UTC", time.gmtime(expires_at))
    with conn.make_client(pickle.loads(pickle.dumps(connection)), ClientOptions()) as client:
        calls = [lambda: client.chat(LLAMA, HI), lambda: client.embed(GTE, ["a", "b"]),
                 lambda: list(client.stream_chat(LLAMA, HI)),
                 lambda: asyncio.run(client.achat(LLAMA, HI)),
                 lambda: asyncio.run(client.aembed(GTE, ["a"]))]
        for call in calls:
            with pytest.raises(TokenExpiredError) as info:
                call()
            text = str(info.value)
            assert f"token shipped from the driver expired at {when}" in text
            assert RESUME in text
            assert info.value.expires_at == expires_at and info.value.status_code is None
            assert isinstance(info.value, AuthenticationError)
    assert sent(emulator) == 0 and minted(emulator) == 1


def test_a_token_near_its_expiry_works_until_the_margin_then_stops(emulator: Emulator) -> None:
    emulator.configure(token_ttl_s=defaults.SHIPPED_TOKEN_MARGIN + 1.5)
    connection = shipped(emulator)
    with conn.make_client(connection, ClientOptions()) as client:
        assert client.chat(LLAMA, HI).text
        assert connection.expires_at is not None
        time.sleep(max(connection.expires_at - defaults.SHIPPED_TOKEN_MARGIN - time.time(), 0)
                   + 0.1)
        with pytest.raises(TokenExpiredError):
            client.chat(LLAMA, HI)
    assert sent(emulator) == 1


def test_a_shipped_token_the_service_refuses_is_not_sent_again(emulator: Emulator) -> None:
    connection = shipped(emulator)
    with conn.make_client(connection, ClientOptions()) as client:
        assert client.chat(LLAMA, HI).text
        emulator.expire_tokens()  # revoked, or expired on the service's clock
        with pytest.raises(TokenExpiredError) as info:
            client.chat(LLAMA, HI)
        assert info.value.status_code == 401 and RESUME in str(info.value)
        for call in (lambda: client.chat(LLAMA, HI),
                     lambda: asyncio.run(client.achat(LLAMA, HI))):
            with pytest.raises(TokenExpiredError, match=r"refused .* by an earlier request"):
                call()
    assert sent(emulator) == 2 and minted(emulator) == 1


def test_a_token_too_short_lived_to_ship_is_refused(emulator: Emulator) -> None:
    emulator.configure(token_ttl_s=defaults.SHIPPED_TOKEN_MARGIN / 2)
    with pytest.raises(ConfigurationError, match="too soon to ship"):
        shipped(emulator)


def test_what_cannot_be_shipped_says_why(emulator: Emulator) -> None:
    with pytest.raises(ConfigurationError) as info:
        conn.resolve("databricks", {"host": emulator.url, "api_key": emulator.databricks_token,
                                    "ship_token": True}, env={})
    assert "personal access token, which mints none; it travels to the workers as it is" in \
        str(info.value)
    with pytest.raises(InvalidInputError, match="ship_token is for Databricks"):
        conn.resolve("salesforce", {"ship_token": True}, env={})
    with pytest.raises(InvalidInputError, match="ship_token must be True or False"):
        shipped(emulator, ship_token="yes")
    # Without it, credentials are as before: a PAT and a service principal travel as they are.
    assert not conn.resolve("databricks", service_principal(emulator), env={}).shipped


def test_a_workload_identity_travels_only_as_a_shipped_token(emulator: Emulator) -> None:
    jwt = make_jwt(exp=time.time() + 600, sub="system:serviceaccount:ml:batch")
    env = {"DATABRICKS_HOST": emulator.url, "DATABRICKS_OIDC_TOKEN": jwt,
           "DATABRICKS_CONFIG_FILE": "/nonexistent"}
    with pytest.raises(ConfigurationError) as info:
        conn.resolve("databricks", {}, env=env)
    assert "workload identity (env-oidc)" in str(info.value)
    assert "ship_token=True" in (info.value.hint or "")
    connection = conn.resolve("databricks", {"ship_token": True}, env=env)
    assert minted(emulator) == 1 and connection.shipped
    assert jwt.encode() not in pickle.dumps(connection)
    with conn.make_client(connection, ClientOptions()) as client:
        assert client.embed(GTE, ["a"]).vectors
    assert minted(emulator) == 1


def test_databricks_sdk_credentials_ship_the_sdks_token_and_expiry(
        emulator: Emulator, monkeypatch: pytest.MonkeyPatch) -> None:
    sdk = pytest.importorskip("databricks.sdk")
    config = sdk.WorkspaceClient(host=emulator.url, client_id=emulator.databricks_client_id,
                                 client_secret=emulator.databricks_client_secret).config
    found = DatabricksCredentials(emulator.url, sdk_config=config)
    monkeypatch.setattr(conn, "resolve_databricks", lambda **kwargs: found)
    with pytest.raises(ConfigurationError, match=r"\(databricks-sdk\) work only there"):
        conn.resolve("databricks", {}, env={})
    connection = conn.resolve("databricks", {"ship_token": True}, env={})
    assert connection.expires_at is not None
    assert 3500 < connection.expires_at - time.time() <= 3600
    with conn.make_client(pickle.loads(pickle.dumps(connection)), ClientOptions()) as client:
        assert client.chat(LLAMA, HI).text
    pat = sdk.WorkspaceClient(host=emulator.url, token=emulator.databricks_token).config
    with pytest.raises(ConfigurationError, match="personal access token"):
        conn.ship(DatabricksCredentials(emulator.url, sdk_config=pat))


# -- the batch rows -------------------------------------------------------------------------------
def test_the_rows_keep_an_expired_token_per_row_and_a_refused_pat_ends_the_task(
        emulator: Emulator) -> None:
    expired = expiring(shipped(emulator), time.time() - 1)
    with conn.make_client(expired, ClientOptions()) as client:
        vectors, errors = rows.embed_rows(client, GTE, ["a", "b", None], [True, True, True], {})
        assert vectors == [None, None, None]
        assert errors[2] is not None and "null" in errors[2]
        for error in errors[:2]:
            assert error is not None and "TokenExpiredError" in error and RESUME in error
        answers = rows.generate_rows(client, rows.ChatSpec(LLAMA), ["hi", "there"],
                                     [True, True])
        assert all(a is not None and a.error is not None and "TokenExpiredError" in a.error
                   for a in answers)
    assert sent(emulator) == 0
    wrong = conn.resolve("databricks", {"host": emulator.url, "api_key": "dapi-wrong"}, env={})
    with conn.make_client(wrong, ClientOptions()) as client:
        with pytest.raises(AuthenticationError):
            rows.embed_rows(client, GTE, ["a"], [True], {})
        with pytest.raises(AuthenticationError):
            rows.generate_rows(client, rows.ChatSpec(LLAMA), ["hi"], [True])


class RuntimeConfig:
    """databricks-sdk's configuration as a notebook's own identity gives it: a bearer header
    whose token is opaque (no JWT, so no expiry), and no OAuth token to ask."""

    auth_type = "runtime"

    def __init__(self, host: str, token: str) -> None:
        self.host, self.token = host, token

    def authenticate(self) -> dict[str, str]:
        return {"Authorization": f"Bearer {self.token}"}

    def oauth_token(self) -> Any:
        raise ValueError("OAuth tokens are not available for runtime authentication.")


def test_a_token_of_unknown_expiry_is_used_until_the_service_refuses_it(
        emulator: Emulator) -> None:
    good = conn.ship(DatabricksCredentials(
        emulator.url, sdk_config=RuntimeConfig(emulator.url, emulator.databricks_token)))
    assert good.shipped and good.expires_at is None
    assert "expires='unknown'" in repr(conn.Connection(good))
    with DatabricksClient.from_credentials(good) as client:
        assert client.chat(LLAMA, HI).text
    refused = conn.ship(DatabricksCredentials(
        emulator.url, sdk_config=RuntimeConfig(emulator.url, "dapi-revoked-notebook-token")))
    with DatabricksClient.from_credentials(refused) as client:
        with pytest.raises(TokenExpiredError) as info:
            client.chat(LLAMA, HI)
        assert info.value.status_code == 401 and info.value.expires_at is None
        with pytest.raises(TokenExpiredError, match="by an earlier request"):
            client.embed(GTE, ["a"])
    assert sent(emulator) == 2

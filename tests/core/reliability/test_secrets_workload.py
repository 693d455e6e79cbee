"""A workload identity's JWT, the tokens exchanged for it and a token shipped to the workers never
reach a repr, a log record, an exception or the command line's output."""

from __future__ import annotations

import asyncio
import logging
import os
import pickle
import re
import time
import traceback
from pathlib import Path
from typing import Any

import httpx
import pytest

from sfmodels_core import DatabricksClient
from sfmodels_core.errors import TokenError, TokenExpiredError
from sfmodels_core.integration.batch import connection as conn
from sfmodels_core.options import ClientOptions
from sfmodels_emulator import Emulator
from tests.core.unit.fakes import make_jwt

LLAMA = "databricks-meta-llama-3-3-70b-instruct"
GTE = "databricks-gte-large-en"
HI = [{"role": "user", "content": "hi"}]
JWT = re.compile(r"eyJ[A-Za-z0-9_-]{10,}\.[A-Za-z0-9_-]{10,}")
BEARER = re.compile(r"(?i)\bbearer\s+[A-Za-z0-9._-]")


def shown(*objects: Any) -> list[str]:
    texts = []
    for obj in objects:
        texts += [repr(obj), str(obj)]
        if isinstance(obj, BaseException):
            texts += [repr(obj.__dict__), "".join(traceback.format_exception_only(obj)),
                      repr(pickle.loads(pickle.dumps(obj)).__dict__)]
    return texts


def failure(call: Any) -> BaseException:
    with pytest.raises(Exception) as info:
        call()
    return info.value


def test_jwts_exchanged_and_shipped_tokens_stay_out_of_everything_shown(
        emulator: Emulator, tmp_path: Path, caplog: pytest.LogCaptureFixture,
        capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch) -> None:
    for name in ("", "sfmodels", "httpx", "httpcore"):
        caplog.set_level(logging.DEBUG, logger=name or None)
    env_jwt = make_jwt(exp=time.time() + 600, sub="env-workload-7Rk2")
    file_jwt = make_jwt(exp=time.time() + 600, sub="file-workload-4Hs9")
    path = tmp_path / "token"
    path.write_text(file_jwt)
    base = {"DATABRICKS_HOST": emulator.url, "DATABRICKS_CONFIG_FILE": "/nonexistent"}
    seen: list[str] = []
    tokens: list[str] = []

    # Both sources, sync and async, and the tokens they were given.
    for env in ({**base, "DATABRICKS_OIDC_TOKEN": env_jwt},
                {**base, "DATABRICKS_OIDC_TOKEN_FILEPATH": str(path)}):
        with DatabricksClient(env=env) as client:
            client.chat(LLAMA, HI)
            asyncio.run(client.aembed(GTE, ["a"]))
            assert client.auth.token is not None
            tokens.append(client.auth.token.value.get_secret_value())
            seen += shown(client, client.auth, client.auth.source)

    # Refused exchanges: an expired JWT, a file gone, an unknown service principal.
    expired = make_jwt(exp=time.time() - 60, sub="expired-workload-2Qd5")
    errors = [
        failure(lambda: DatabricksClient(env={**base, "DATABRICKS_OIDC_TOKEN": expired},
                                         max_retries=0).chat(LLAMA, HI)),
        failure(lambda: asyncio.run(DatabricksClient(
            env={**base, "DATABRICKS_OIDC_TOKEN": env_jwt,
                 "DATABRICKS_CLIENT_ID": "unknown-sp"}, max_retries=0).achat(LLAMA, HI))),
        failure(lambda: DatabricksClient(env={**base, "DATABRICKS_AUTH_TYPE": "env-oidc",
                                              "DATABRICKS_OIDC_TOKEN": f"{env_jwt}\x00"})),
    ]
    assert all(isinstance(error, (TokenError, ValueError)) for error in errors)

    # A token shipped to a worker: the connection, its client, and both ways it fails.
    connection = conn.resolve("databricks", {"ship_token": True},
                              env={**base, "DATABRICKS_OIDC_TOKEN": env_jwt})
    assert connection.token is not None
    tokens.append(connection.token.get_secret_value())
    with conn.make_client(connection, ClientOptions()) as worker:
        worker.chat(LLAMA, HI)
        seen += shown(connection, connection.credentials, worker, worker.auth.source)
        emulator.expire_tokens()
        errors.append(failure(lambda: worker.chat(LLAMA, HI)))
        errors.append(failure(lambda: worker.embed(GTE, ["a"])))
    assert all(isinstance(error, TokenExpiredError) for error in errors[-2:])

    # A token endpoint that echoes what it was sent, on the async path.
    def echo(request: httpx.Request) -> httpx.Response:
        return httpx.Response(400, json={"error": "invalid_request",
                                         "error_description": request.content.decode()})

    async def aecho(request: httpx.Request) -> httpx.Response:
        return echo(request)

    echoing = DatabricksClient(env={**base, "DATABRICKS_OIDC_TOKEN": env_jwt}, max_retries=0,
                               async_transport=httpx.MockTransport(aecho))
    errors.append(failure(lambda: asyncio.run(echoing.achat(LLAMA, HI))))
    echoing.close()
    for error in errors:
        seen += shown(error)

    # The command line, with the workload identity in its environment.
    for name in list(os.environ):
        if name.startswith(("DATABRICKS_", "SALESFORCE_")):
            monkeypatch.delenv(name)
    for key, value in {**base, "DATABRICKS_OIDC_TOKEN": env_jwt}.items():
        monkeypatch.setenv(key, value)
    from sfmodels.cli import main

    assert main(["token", "--provider", "databricks"]) == 0
    printed = capsys.readouterr()
    assert "workload identity (env-oidc)" in printed.out
    seen += [printed.out, printed.err]

    records = [record.getMessage() for record in caplog.records]
    assert any("ship_token" in record for record in records)
    for text in seen + records:
        for secret in (env_jwt, file_jwt, expired, *tokens):
            assert secret not in text, f"a secret leaked into: {text[:300]!r}"
        assert not JWT.search(text), f"a JWT leaked into: {text[:300]!r}"
        assert not BEARER.search(text), f"an authorization header leaked into: {text[:300]!r}"

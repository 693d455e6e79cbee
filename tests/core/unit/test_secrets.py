"""Secrets never show in repr, str, DEBUG logs or exception text."""

from __future__ import annotations

import logging
import pickle
import time

import httpx
import pytest

from sfmodels_core import DatabricksClient, SalesforceClient
from sfmodels_core.errors import SFModelsError

from .fakes import Recorder, make_jwt, sf_chat_body, sf_token_body

CLIENT_SECRET = "sf-client-secret-value-123"
ACCESS_TOKEN = make_jwt(exp=time.time() + 3600, secret="minted-token-claim")
PAT = "dapi-pat-secret-value-456"
DBX_SECRET = "dbx-sp-secret-value-789"
SECRETS = (CLIENT_SECRET, ACCESS_TOKEN, PAT, DBX_SECRET, "minted-token-claim")


def assert_clean(text: str) -> None:
    for secret in SECRETS:
        assert secret not in text


def test_reprs_and_strs_hold_no_secret() -> None:
    sf = SalesforceClient(domain="https://acme.my.salesforce.com", client_id="id",
                          client_secret=CLIENT_SECRET, env={})
    dbx = DatabricksClient(host="https://h.example.test", api_key=PAT, env={})
    m2m = DatabricksClient(host="https://h.example.test", client_id="c", client_secret=DBX_SECRET,
                           env={})
    for obj in (sf, dbx, m2m, sf.auth, dbx.auth, m2m.auth, sf.auth.source, m2m.auth.source):
        assert_clean(repr(obj))
        assert_clean(str(obj))


def test_debug_logs_and_errors_hold_no_secret(caplog: pytest.LogCaptureFixture) -> None:
    def handler(request: httpx.Request) -> httpx.Response:
        if request.url.path == "/services/oauth2/token":
            return httpx.Response(200, json=sf_token_body(ACCESS_TOKEN))
        if request.url.path == "/oidc/v1/token":
            return httpx.Response(401, json={"error": "invalid_client",
                                             "error_description": "Client authentication failed"})
        if "fail" in request.url.path:
            return httpx.Response(400, json={"errorCode": "BAD", "messageCode": "E",
                                             "message": "bad"})
        return httpx.Response(200, json=sf_chat_body())

    caplog.set_level(logging.DEBUG)
    logging.getLogger("httpx").setLevel(logging.DEBUG)
    logging.getLogger("httpcore").setLevel(logging.DEBUG)
    rec = Recorder(handler)
    sf = SalesforceClient(domain="https://acme.my.salesforce.com", client_id="id",
                          client_secret=CLIENT_SECRET, env={}, **rec.transports())
    sf.chat("m", [{"role": "user", "content": "hi"}])
    errors: list[SFModelsError] = []
    with pytest.raises(SFModelsError) as info:
        sf.chat("fail", [{"role": "user", "content": "hi"}])
    errors.append(info.value)
    m2m = DatabricksClient(host="https://h.example.test", client_id="c", client_secret=DBX_SECRET,
                           env={}, **rec.transports())
    with pytest.raises(SFModelsError) as info:
        m2m.chat("ep", [{"role": "user", "content": "hi"}])
    errors.append(info.value)
    assert caplog.records, "DEBUG logging produced nothing to check"
    for record in caplog.records:
        assert_clean(record.getMessage())
    for err in errors:
        assert_clean(str(err))
        assert_clean(repr(err))
        assert_clean(repr(pickle.loads(pickle.dumps(err)).__dict__))

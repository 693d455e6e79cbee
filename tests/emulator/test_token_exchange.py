"""Databricks' ``/oidc/v1/token`` exchanging a workload identity's JWT, as the emulator serves it:
the form databricks-sdk's env-oidc and file-oidc send, the refusals as OAuth error bodies."""

from __future__ import annotations

import time
from typing import Any

import httpx
import pytest

from sfmodels_emulator import Emulator
from tests.core.unit.fakes import make_jwt

from .shapes import DATABRICKS_TOKEN, OAUTH_ERROR, assert_shape

INVOCATIONS = "/serving-endpoints/databricks-gte-large-en/invocations"
GRANT = "urn:ietf:params:oauth:grant-type:token-exchange"
JWT_TYPE = "urn:ietf:params:oauth:token-type:jwt"


def jwt(**claims: Any) -> str:
    return make_jwt(**{"exp": time.time() + 600, "iss": "https://oidc.example.test",
                       "aud": "https://workspace.example.test",
                       "sub": "system:serviceaccount:ml:batch", **claims})


def exchange(http: httpx.Client, subject: str, **form: str) -> httpx.Response:
    return http.post("/oidc/v1/token", data={
        "grant_type": GRANT, "subject_token": subject, "subject_token_type": JWT_TYPE,
        "scope": "all-apis", **form})


def test_a_well_formed_jwt_is_exchanged_for_a_token_that_works(emulator: Emulator,
                                                                http: httpx.Client) -> None:
    answer = exchange(http, jwt())
    assert answer.status_code == 200
    assert_shape(answer.json(), DATABRICKS_TOKEN)
    assert emulator.counters()["tokens_minted"]["databricks"] == 1
    token = answer.json()["access_token"]
    used = http.post(INVOCATIONS, headers={"Authorization": f"Bearer {token}"},
                     json={"input": ["a"]})
    assert used.status_code == 200
    # The service principal of a federation policy, by its client id.
    assert exchange(http, jwt(), client_id=emulator.databricks_client_id).status_code == 200


@pytest.mark.parametrize(("subject", "form", "status", "code", "says"), [
    ("not-a-jwt", {}, 400, "invalid_request", "well-formed"),
    ("a.b.c", {}, 400, "invalid_request", "well-formed"),
    ("", {}, 400, "invalid_request", "required"),
    (None, {"subject_token_type": "urn:ietf:params:oauth:token-type:id_token"}, 400,
     "invalid_request", "subject_token_type"),
    (make_jwt(exp=time.time() - 5, sub="old"), {}, 400, "invalid_request", "expired"),
    (None, {"client_id": "someone-else"}, 401, "invalid_client", "Client authentication"),
])
def test_refusals_are_oauth_error_bodies(emulator: Emulator, http: httpx.Client,
                                         subject: str | None, form: dict[str, str],
                                         status: int, code: str, says: str) -> None:
    answer = exchange(http, jwt() if subject is None else subject, **form)
    assert answer.status_code == status
    assert_shape(answer.json(), OAUTH_ERROR)
    assert answer.json()["error"] == code
    assert says in answer.json()["error_description"]
    assert emulator.counters()["tokens_minted"]["databricks"] == 0


def test_only_the_configured_jwts_when_some_are_given() -> None:
    trusted = jwt(sub="trusted")
    with Emulator(databricks_oidc_tokens=[trusted]) as emu, \
            httpx.Client(base_url=emu.url) as http:
        assert exchange(http, trusted).status_code == 200
        other = exchange(http, jwt(sub="other"))
        assert other.status_code == 400
        assert other.json()["error"] == "invalid_request"
        assert "federation policy" in other.json()["error_description"]


def test_the_configured_jwts_survive_the_process_mode() -> None:
    trusted = jwt(sub="trusted")
    with Emulator(mode="process", databricks_oidc_tokens=[trusted]) as emu, \
            httpx.Client(base_url=emu.url) as http:
        assert exchange(http, trusted).status_code == 200
        assert exchange(http, jwt(sub="other")).status_code == 400

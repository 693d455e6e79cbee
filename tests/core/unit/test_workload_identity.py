"""Workload identity (env-oidc, file-oidc) without databricks-sdk: which settings select it,
the errors that name them, and the token exchange request, which is databricks-sdk's own."""

from __future__ import annotations

import time
import urllib.parse
from pathlib import Path
from typing import Any, ClassVar

import httpx
import pytest
from pydantic import SecretStr

from sfmodels_core import DatabricksClient
from sfmodels_core.auth import DatabricksTokenExchange, SubjectToken
from sfmodels_core.credentials import OIDC_AUTH_TYPES, OIDC_TOKEN_ENV, resolve_databricks
from sfmodels_core.errors import ConfigurationError, TokenError

from .fakes import Recorder, make_jwt

pytestmark = pytest.mark.disable_socket

HOST = "https://adb-1.azuredatabricks.net"
JWT = make_jwt(exp=time.time() + 600, sub="system:serviceaccount:ml:batch")
BASE = {"DATABRICKS_HOST": HOST, "DATABRICKS_CONFIG_FILE": "/nonexistent"}


def write(tmp_path: Path, text: str, name: str = "token") -> str:
    path = tmp_path / name
    path.write_text(text)
    return str(path)


def form(request: httpx.Request) -> dict[str, str]:
    return dict(urllib.parse.parse_qsl(request.content.decode()))


# -- which settings select it ---------------------------------------------------------------------
@pytest.mark.parametrize("how", ["argument", "environment", "profile"])
def test_auth_type_env_oidc_reads_the_jwt_from_databricks_oidc_token(
        tmp_path: Path, how: str) -> None:
    env = {**BASE, "DATABRICKS_OIDC_TOKEN": JWT}
    kwargs: dict[str, Any] = {}
    if how == "argument":
        kwargs["auth_type"] = "env-oidc"
    elif how == "environment":
        env["DATABRICKS_AUTH_TYPE"] = "env-oidc"
    else:
        env["DATABRICKS_CONFIG_FILE"] = write(tmp_path, f"[DEFAULT]\nhost = {HOST}\n"
                                                        "auth_type = env-oidc\n", "cfg")
    found = resolve_databricks(env=env, **kwargs)
    assert found.host == HOST and found.kind == "workload identity (env-oidc)"
    source = found.token_source
    assert isinstance(source, DatabricksTokenExchange) and source.client_id is None
    assert source.subject.read() == JWT


def test_with_nothing_else_named_a_jwt_is_found_as_databricks_sdk_finds_it(
        tmp_path: Path) -> None:
    # The variable first, then the file: databricks-sdk's default chain after PAT and M2M.
    path = write(tmp_path, JWT)
    both = resolve_databricks(env={**BASE, "DATABRICKS_OIDC_TOKEN": JWT,
                                   "DATABRICKS_OIDC_TOKEN_FILEPATH": path})
    assert both.subject is not None and both.subject.auth_type == "env-oidc"
    alone = resolve_databricks(env={**BASE, "DATABRICKS_OIDC_TOKEN_FILEPATH": path})
    assert alone.subject is not None and alone.subject.path == path
    # A token or a service principal named anywhere comes first.
    pat = resolve_databricks(env={**BASE, "DATABRICKS_OIDC_TOKEN": JWT,
                                  "DATABRICKS_TOKEN": "dapi-1"})
    assert pat.kind == "token"
    m2m = resolve_databricks(client_id="sp", client_secret="s",
                             env={**BASE, "DATABRICKS_OIDC_TOKEN": JWT})
    assert m2m.kind == "client credentials"


def test_the_jwt_variable_and_file_are_named_as_databricks_sdk_names_them(
        tmp_path: Path) -> None:
    path = write(tmp_path, JWT)
    other = resolve_databricks(env={**BASE, "DATABRICKS_AUTH_TYPE": "env-oidc",
                                    "DATABRICKS_OIDC_TOKEN_ENV": "CI_ID_TOKEN",
                                    "CI_ID_TOKEN": JWT})
    assert other.subject is not None and other.subject.setting == "CI_ID_TOKEN"
    assert resolve_databricks(oidc_token_env="CI_ID_TOKEN", auth_type="env-oidc",
                              env={**BASE, "CI_ID_TOKEN": JWT}).subject is not None
    for env_name in ("DATABRICKS_OIDC_TOKEN_FILEPATH", "DATABRICKS_OIDC_TOKEN_FILE"):
        found = resolve_databricks(env={**BASE, "DATABRICKS_AUTH_TYPE": "file-oidc",
                                        env_name: path})
        assert found.subject is not None
        assert (found.subject.setting, found.subject.path) == (env_name, path)
    given = resolve_databricks(auth_type="file-oidc", oidc_token_filepath=path, env=BASE)
    assert given.subject is not None and given.subject.setting == "oidc_token_filepath"


def test_a_service_principals_federation_policy_by_its_client_id() -> None:
    found = resolve_databricks(env={**BASE, "DATABRICKS_OIDC_TOKEN": JWT,
                                    "DATABRICKS_CLIENT_ID": "sp-app-id"})
    source = found.token_source
    assert isinstance(source, DatabricksTokenExchange) and source.client_id == "sp-app-id"
    assert "sp-app-id" not in repr(found) + repr(source)


def test_arguments_come_before_an_auth_type_in_the_environment() -> None:
    env = {**BASE, "DATABRICKS_AUTH_TYPE": "env-oidc", "DATABRICKS_OIDC_TOKEN": JWT}
    assert resolve_databricks(api_key="dapi-1", env=env).kind == "token"
    # Said explicitly, databricks-sdk's way: the auth type wins over a token in the same place.
    assert resolve_databricks(env={**env, "DATABRICKS_TOKEN": "dapi-1"}).subject is not None


def test_another_auth_type_is_left_to_the_other_steps() -> None:
    with pytest.raises(ConfigurationError, match="credentials are missing"):
        resolve_databricks(env={**BASE, "DATABRICKS_AUTH_TYPE": "azure-cli",
                                "DATABRICKS_OIDC_TOKEN": JWT})
    with pytest.raises(ConfigurationError, match="auth_type= takes env-oidc or file-oidc"):
        resolve_databricks(auth_type="azure-cli", env=BASE)
    assert OIDC_AUTH_TYPES == ("env-oidc", "file-oidc")
    assert OIDC_TOKEN_ENV == "DATABRICKS_OIDC_TOKEN"


# -- errors that name the setting, never the JWT -------------------------------------------------
@pytest.mark.parametrize(("env", "named"), [
    ({"DATABRICKS_AUTH_TYPE": "env-oidc"}, "DATABRICKS_OIDC_TOKEN is empty or not set"),
    ({"DATABRICKS_AUTH_TYPE": "env-oidc", "DATABRICKS_OIDC_TOKEN": "  "},
     "DATABRICKS_OIDC_TOKEN is empty"),
    ({"DATABRICKS_AUTH_TYPE": "env-oidc", "DATABRICKS_OIDC_TOKEN_ENV": "CI_ID_TOKEN"},
     "CI_ID_TOKEN is empty"),
    ({"DATABRICKS_AUTH_TYPE": "file-oidc"}, "set oidc_token_filepath= or "
                                            "DATABRICKS_OIDC_TOKEN_FILEPATH"),
    ({"DATABRICKS_OIDC_TOKEN_FILEPATH": "/nonexistent/token"},
     "DATABRICKS_OIDC_TOKEN_FILEPATH (/nonexistent/token) does not exist"),
])
def test_a_missing_jwt_is_a_configuration_error_naming_the_setting(
        env: dict[str, str], named: str) -> None:
    with pytest.raises(ConfigurationError) as info:
        resolve_databricks(env={**BASE, **env})
    assert named in str(info.value)


def test_an_empty_or_broken_file_is_named_without_its_content(tmp_path: Path) -> None:
    empty = write(tmp_path, "\n", "empty")
    with pytest.raises(ConfigurationError, match=r"DATABRICKS_OIDC_TOKEN_FILEPATH \(.*\) is empty"):
        resolve_databricks(env={**BASE, "DATABRICKS_OIDC_TOKEN_FILEPATH": empty})
    broken = JWT[:20] + "\x07" + JWT[20:]
    with pytest.raises(ConfigurationError) as info:
        resolve_databricks(env={**BASE, "DATABRICKS_OIDC_TOKEN": broken})
    assert ("from DATABRICKS_OIDC_TOKEN holds a control character (U+0007) at character 21"
            in str(info.value))
    assert JWT[:20] not in str(info.value)


def test_a_workload_identity_needs_the_workspace_host() -> None:
    with pytest.raises(ConfigurationError, match="workspace is missing"):
        resolve_databricks(env={"DATABRICKS_OIDC_TOKEN": JWT,
                                "DATABRICKS_CONFIG_FILE": "/nonexistent"})


# -- the exchange ---------------------------------------------------------------------------------
def test_the_exchange_request_is_rfc_8693_with_scope_all_apis() -> None:
    subject = SubjectToken("DATABRICKS_OIDC_TOKEN", jwt=SecretStr(JWT))
    request = DatabricksTokenExchange(HOST, subject).build_request()
    assert (request.method, str(request.url)) == ("POST", f"{HOST}/oidc/v1/token")
    assert request.headers["content-type"] == "application/x-www-form-urlencoded"
    assert "authorization" not in request.headers
    assert form(request) == {
        "grant_type": "urn:ietf:params:oauth:grant-type:token-exchange",
        "subject_token": JWT, "subject_token_type": "urn:ietf:params:oauth:token-type:jwt",
        "scope": "all-apis"}
    with_sp = DatabricksTokenExchange(HOST, subject, "sp-app-id").build_request()
    assert form(with_sp)["client_id"] == "sp-app-id"


def test_the_request_is_the_one_databricks_sdk_sends(monkeypatch: pytest.MonkeyPatch) -> None:
    oauth = pytest.importorskip("databricks.sdk.oauth")
    oidc = pytest.importorskip("databricks.sdk.oidc")
    sent: list[dict[str, str]] = []

    class Answer:
        ok = True
        headers: ClassVar[dict[str, str]] = {"Content-Type": "application/json"}

        @staticmethod
        def json() -> dict[str, Any]:
            return {"access_token": "t", "token_type": "Bearer", "expires_in": 3600}

    def post(url: str, params: dict[str, str], **kwargs: Any) -> Answer:
        sent.append(dict(params))
        return Answer()

    monkeypatch.setattr(oauth.requests, "post", post)
    monkeypatch.setenv("SOME_ID_TOKEN", JWT)
    for client_id in (None, "sp-app-id"):
        source = oidc.DatabricksOidcTokenSource(
            host=HOST, token_endpoint=f"{HOST}/oidc/v1/token", client_id=client_id,
            id_token_source=oidc.EnvIdTokenSource("SOME_ID_TOKEN"), scopes="all-apis",
            disable_async=True)
        source.token()
        ours = DatabricksTokenExchange(HOST, SubjectToken("X", jwt=SecretStr(JWT)), client_id)
        assert form(ours.build_request()) == sent[-1]


def test_the_setting_names_are_databricks_sdks() -> None:
    config = pytest.importorskip("databricks.sdk.config")
    names = {attr.name: attr.env for attr in config.Config.attributes()}
    assert names["auth_type"] == "DATABRICKS_AUTH_TYPE"
    assert names["oidc_token_env"] == "DATABRICKS_OIDC_TOKEN_ENV"
    assert names["oidc_token_filepath"] == "DATABRICKS_OIDC_TOKEN_FILEPATH"
    assert names["client_id"] == "DATABRICKS_CLIENT_ID"


def test_the_file_is_read_again_for_every_exchange(tmp_path: Path) -> None:
    path = write(tmp_path, "first.jwt.x")
    source = DatabricksTokenExchange(HOST, SubjectToken("DATABRICKS_OIDC_TOKEN_FILEPATH",
                                                        path=path))
    assert form(source.build_request())["subject_token"] == "first.jwt.x"
    Path(path).write_text("second.jwt.x\n")
    assert form(source.build_request())["subject_token"] == "second.jwt.x"
    Path(path).unlink()
    with pytest.raises(TokenError) as info:
        source.build_request()
    assert "DATABRICKS_OIDC_TOKEN_FILEPATH" in str(info.value) and "does not exist" in str(
        info.value)


def test_a_refused_exchange_names_the_setting_and_masks_an_echoed_jwt(
        tmp_path: Path) -> None:
    def refuse(request: httpx.Request) -> httpx.Response:
        if request.url.path == "/oidc/v1/token":
            echoed = form(request)["subject_token"]
            return httpx.Response(400, json={"error": "invalid_request",
                                             "error_description": f"bad token {echoed}"})
        return httpx.Response(500)

    recorder = Recorder(refuse)
    path = write(tmp_path, JWT)
    client = DatabricksClient(env={**BASE, "DATABRICKS_OIDC_TOKEN_FILEPATH": path},
                              max_retries=0, **recorder.transports())
    with client, pytest.raises(TokenError) as info:
        client.embed("databricks-gte-large-en", ["a"])
    text = str(info.value)
    assert "Databricks refused to exchange the workload identity token from "\
           f"DATABRICKS_OIDC_TOKEN_FILEPATH ({path}) (file-oidc)" in text
    assert "bad token ***" in text and JWT not in text and JWT not in repr(info.value.__dict__)
    assert info.value.status_code == 400 and info.value.error_code == "invalid_request"
    assert "federation policy" in (info.value.hint or "")

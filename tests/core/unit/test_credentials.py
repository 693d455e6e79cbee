"""Credentials: constructor, then environment, then the Databricks profile; clear errors."""

from __future__ import annotations

from pathlib import Path

import pytest

from sfmodels_core.auth import DatabricksM2M, SalesforceClientCredentials, StaticToken
from sfmodels_core.credentials import normalize_url, resolve_databricks, resolve_salesforce
from sfmodels_core.errors import ConfigurationError

SF_ENV = {"SALESFORCE_DOMAIN": "acme.my.salesforce.com", "SALESFORCE_CLIENT_ID": "key",
          "SALESFORCE_CLIENT_SECRET": "secret"}


def test_salesforce_from_environment() -> None:
    settings = resolve_salesforce(env=SF_ENV)
    source = settings.token_source
    assert isinstance(source, SalesforceClientCredentials)
    assert source.domain == "https://acme.my.salesforce.com"
    assert settings.api_base is None


def test_salesforce_arguments_win_and_complete_from_environment() -> None:
    settings = resolve_salesforce(client_secret="other", env=SF_ENV)
    source = settings.token_source
    assert isinstance(source, SalesforceClientCredentials)
    assert source.client_id == "key"
    assert source.client_secret.get_secret_value() == "other"
    token = resolve_salesforce(api_key="tok", env=SF_ENV).token_source
    assert isinstance(token, StaticToken)


def test_salesforce_access_token_alone_needs_no_domain() -> None:
    settings = resolve_salesforce(env={"SALESFORCE_ACCESS_TOKEN": "tok",
                                       "SALESFORCE_API_BASE": "http://127.0.0.1:1/einstein/platform/v1"})
    assert isinstance(settings.token_source, StaticToken)
    assert settings.api_base == "http://127.0.0.1:1/einstein/platform/v1"


def test_salesforce_missing_settings_are_named() -> None:
    with pytest.raises(ConfigurationError) as info:
        resolve_salesforce(env={"SALESFORCE_CLIENT_ID": "key"})
    text = str(info.value)
    assert "SALESFORCE_DOMAIN" in text and "SALESFORCE_CLIENT_SECRET" in text
    assert "SALESFORCE_CLIENT_ID" not in text.split("Hint")[0]


def test_salesforce_ambiguous_environment() -> None:
    with pytest.raises(ConfigurationError, match="Ambiguous"):
        resolve_salesforce(env={**SF_ENV, "SALESFORCE_ACCESS_TOKEN": "tok"})


@pytest.mark.parametrize("domain", ["https://login.salesforce.com", "test.salesforce.com"])
def test_generic_login_hosts_are_refused_locally(domain: str) -> None:
    with pytest.raises(ConfigurationError) as info:
        resolve_salesforce(domain=domain, client_id="k", client_secret="s", env={})
    assert "My Domain" in str(info.value)


@pytest.mark.parametrize("value", ["", "   ", "ftp://x.com", "https://", "http://a b.com",
                                   "https://x.com?q=1", "https://x.com/path"])
def test_malformed_hosts(value: str) -> None:
    with pytest.raises(ConfigurationError):
        normalize_url(value, "host")


def test_hosts_are_normalised() -> None:
    assert normalize_url("adb-1.2.azuredatabricks.net/", "host") == (
        "https://adb-1.2.azuredatabricks.net")
    assert normalize_url("http://127.0.0.1:8765", "host") == "http://127.0.0.1:8765"


def write_cfg(tmp_path: Path, text: str) -> str:
    path = tmp_path / "databrickscfg"
    path.write_text(text)
    return str(path)


CFG = """
[DEFAULT]
host = https://default.cloud.databricks.com
token = dapi-default

[prod]
host = https://prod.cloud.databricks.com
client_id = sp-id
client_secret = sp-secret

[broken]
host = https://broken.cloud.databricks.com
token = t
client_id = c
"""


def test_databricks_environment_token() -> None:
    settings = resolve_databricks(env={"DATABRICKS_HOST": "https://h.example.test",
                                       "DATABRICKS_TOKEN": "pat",
                                       "DATABRICKS_CONFIG_FILE": "/nonexistent"})
    assert settings.host == "https://h.example.test"
    assert isinstance(settings.token_source, StaticToken)


def test_databricks_default_profile_when_nothing_else(tmp_path: Path) -> None:
    cfg = write_cfg(tmp_path, CFG)
    settings = resolve_databricks(env={"DATABRICKS_CONFIG_FILE": cfg})
    assert settings.host == "https://default.cloud.databricks.com"
    assert isinstance(settings.token_source, StaticToken)


def test_databricks_named_profile_with_service_principal(tmp_path: Path) -> None:
    cfg = write_cfg(tmp_path, CFG)
    for kwargs, env in (({"profile": "prod", "config_file": cfg}, {}),
                        ({}, {"DATABRICKS_CONFIG_PROFILE": "prod", "DATABRICKS_CONFIG_FILE": cfg})):
        settings = resolve_databricks(**kwargs, env=env)
        assert settings.host == "https://prod.cloud.databricks.com"
        assert isinstance(settings.token_source, DatabricksM2M)
        assert settings.token_source.client_id == "sp-id"


def test_databricks_arguments_beat_environment_and_profile(tmp_path: Path) -> None:
    cfg = write_cfg(tmp_path, CFG)
    settings = resolve_databricks(host="https://arg.example.test", api_key="arg-token",
                                  profile="prod", config_file=cfg,
                                  env={"DATABRICKS_TOKEN": "env-token"})
    assert settings.host == "https://arg.example.test"
    source = settings.token_source
    assert isinstance(source, StaticToken)
    assert source.static_token().value.get_secret_value() == "arg-token"


@pytest.mark.parametrize("env, profile", [
    ({"DATABRICKS_HOST": "https://h.test", "DATABRICKS_TOKEN": "t", "DATABRICKS_CLIENT_ID": "c"},
     None),
    ({}, "broken"),
])
def test_databricks_token_and_client_id_together_are_ambiguous(
        tmp_path: Path, env: dict[str, str], profile: str | None) -> None:
    cfg = write_cfg(tmp_path, CFG)
    with pytest.raises(ConfigurationError, match="Ambiguous") as info:
        resolve_databricks(profile=profile, env={**env, "DATABRICKS_CONFIG_FILE": cfg})
    assert "either a personal access token" in str(info.value)


def test_databricks_missing_everything() -> None:
    with pytest.raises(ConfigurationError, match="DATABRICKS_HOST"):
        resolve_databricks(env={"DATABRICKS_CONFIG_FILE": "/nonexistent"})
    with pytest.raises(ConfigurationError, match="credentials are missing"):
        resolve_databricks(host="https://h.test", env={"DATABRICKS_CONFIG_FILE": "/nonexistent"})
    with pytest.raises(ConfigurationError, match="DATABRICKS_CLIENT_SECRET"):
        resolve_databricks(host="https://h.test", client_id="c",
                           env={"DATABRICKS_CONFIG_FILE": "/nonexistent"})


def test_databricks_unknown_profile_lists_the_known_ones(tmp_path: Path) -> None:
    cfg = write_cfg(tmp_path, CFG)
    with pytest.raises(ConfigurationError, match="prod, broken"):
        resolve_databricks(profile="staging", config_file=cfg, env={})
    with pytest.raises(ConfigurationError, match="does not exist"):
        resolve_databricks(profile="prod", config_file=str(tmp_path / "none"), env={})


def test_a_profiles_credentials_never_go_to_another_workspace(tmp_path: Path) -> None:
    cfg = write_cfg(tmp_path, CFG)
    with pytest.raises(ConfigurationError, match="not sent to another workspace"):
        resolve_databricks(env={"DATABRICKS_HOST": "https://other.cloud.databricks.com",
                                "DATABRICKS_CONFIG_FILE": cfg})
    with pytest.raises(ConfigurationError, match="not sent to another workspace"):
        resolve_databricks(host="https://other.cloud.databricks.com", profile="prod",
                           config_file=cfg, env={})
    # The profile's own host, spelled differently, is fine.
    same = resolve_databricks(host="default.cloud.databricks.com/", config_file=cfg, env={})
    assert isinstance(same.token_source, StaticToken)

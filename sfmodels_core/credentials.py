"""Credentials: where requests go and with what, from the constructor arguments, then the
environment, then (Databricks) a config profile, a workload identity, or databricks-sdk.

Credentials are resolved as a group so that a token from one place never mixes silently with a
client id from another: the first place that names any credential provides them, and a place
that names both a token and a client id is ambiguous.

Databricks also takes credentials from databricks-sdk, when it is installed (the
``databricks-sdk`` extra): a ``workspace_client=`` given explicitly, a config profile whose
``auth_type`` only the SDK knows, and, when none of our settings name credentials, the SDK's
default authentication (notebook runtime, ``databricks auth login``, Azure CLI, managed
identity, GCP...). The SDK is imported only then.

A workload identity (an OIDC JWT that a Kubernetes pod or a CI runner gets from its platform)
needs no SDK: ``auth_type`` ``env-oidc`` (the JWT in ``DATABRICKS_OIDC_TOKEN``, or the variable
``DATABRICKS_OIDC_TOKEN_ENV`` names) or ``file-oidc`` (in the file
``DATABRICKS_OIDC_TOKEN_FILEPATH``), with databricks-sdk's names and exchange, is handled here.
"""

from __future__ import annotations

import configparser
import os
import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
from pydantic import SecretStr

from . import defaults
from ._validation import secret_problem, url_problem, warn_insecure_http, warn_once
from .auth import (
    DatabricksM2M,
    DatabricksSDKCredentials,
    DatabricksTokenExchange,
    SalesforceClientCredentials,
    ShippedToken,
    StaticToken,
    SubjectToken,
    TokenSource,
)
from .errors import ConfigurationError

__all__ = [
    "GENERIC_LOGIN_HOSTS",
    "OIDC_AUTH_TYPES",
    "OIDC_TOKEN_ENV",
    "OWN_AUTH_TYPES",
    "SDK_EXTRA",
    "SDK_ONLY_KEYS",
    "DatabricksCredentials",
    "SalesforceCredentials",
    "Secret",
    "check_flag",
    "normalize_url",
    "profile_from_target_uri",
    "resolve_databricks",
    "resolve_salesforce",
    "secure_url",
]

GENERIC_LOGIN_HOSTS = ("login.salesforce.com", "test.salesforce.com")

Secret = str | SecretStr | None


def _secret(value: Secret, setting: str) -> SecretStr | None:
    """A secret as ``SecretStr``, with the white space a paste or a file's last newline left
    around it removed (an HTTP header cannot carry it); said once, never with the value. A
    control, space or non-ASCII character inside is refused, naming ``setting`` and where the
    character is, never the value."""
    raw = value.get_secret_value() if isinstance(value, SecretStr) else value
    if not raw:
        return None
    if not isinstance(raw, str):
        raise ConfigurationError(f"{setting} must be a string, got {type(raw).__name__}")
    stripped = raw.strip()
    if stripped != raw:
        warn_once("secret-whitespace",
                  "A token or secret had white space or a line break around it (as a paste or "
                  "a file's last line leaves); it was removed.")
    if not stripped:
        return None
    problem = secret_problem(stripped, setting)
    if problem is not None:
        raise ConfigurationError(problem, hint="Copy the value again: a line break or a "
                                               "space inside often comes from a wrapped paste.")
    return SecretStr(stripped)


def _text(value: str | None) -> str | None:
    return value.strip() or None if isinstance(value, str) else value


def _client_id(value: str | SecretStr | None, setting: str) -> str | None:
    """A client id: checked as a secret is (printable ASCII without spaces), kept as text."""
    checked = _secret(value, setting)
    return checked.get_secret_value() if checked is not None else None


#: The user-info part of a URL (``user@`` before the host), with or without a scheme.
_USERINFO = re.compile(r"^([^/?#]*//)?[^/?#]*@")


def _shown(value: str) -> str:
    """A URL setting as an error message may show it: any user-info part masked."""
    return repr(_USERINFO.sub(r"\1***@", value.strip()))


def normalize_url(value: str, setting: str, *, allow_path: bool = False) -> str:
    """A base URL with a scheme and no trailing slash; a clear error when it cannot be one.

    A user-info part (``user@host``, ``127.0.0.1@evil.example``) is refused: the host is the
    part after the ``@``, not what the URL seems to name, and credentials never go in a URL.
    """
    raw = value.strip()
    if not raw:
        raise ConfigurationError(f"{setting} is empty")
    if "://" not in raw:
        raw = "https://" + raw
    if _USERINFO.match(raw):
        raise ConfigurationError(
            f"{setting} has a user-info part (text and '@' before the host, as in user@host): "
            "the host would be what follows the '@'. Credentials never go in the URL.",
            hint="Give just the scheme and host, e.g. https://acme.my.salesforce.com, and the "
                 "credentials as their own settings.")
    try:
        url = httpx.URL(raw)
    except (httpx.InvalidURL, ValueError) as exc:
        raise ConfigurationError(
            f"{setting} is not a valid URL: {_shown(value)} ({exc})") from None
    if (url.scheme not in ("http", "https") or not url.host or url.userinfo
            or any(c.isspace() or c == "\\" for c in raw)):
        raise ConfigurationError(
            f"{setting} must be an http(s) URL such as https://example.com, got {_shown(value)}")
    if url.query or url.fragment or (not allow_path and url.path not in ("", "/")):
        raise ConfigurationError(
            f"{setting} must be just the scheme and host (e.g. https://example.com), got "
            f"{_shown(value)}")
    return raw.rstrip("/")


def secure_url(value: str, setting: str, allow_insecure_http: bool) -> str:
    """``value`` (a URL from :func:`normalize_url`) if credentials may be sent to it: https, or
    http to a loopback host (127.0.0.0/8, ::1, localhost), or to any host with
    ``allow_insecure_http`` (then warned about once per host)."""
    url = httpx.URL(value)
    problem = url_problem(url, allow_insecure_http=allow_insecure_http)
    if problem is not None:
        raise ConfigurationError(f"{setting} {problem}.")
    if allow_insecure_http:
        warn_insecure_http(url)
    return value


def check_flag(allow_insecure_http: Any) -> bool:
    """``allow_insecure_http`` as given, when it is a bool."""
    if not isinstance(allow_insecure_http, bool):
        raise ConfigurationError(
            f"allow_insecure_http must be True or False, got {allow_insecure_http!r}")
    return allow_insecure_http


def _auth_kind(token: SecretStr | None, client_secret: SecretStr | None,
               sdk: bool = False) -> str:
    return ("token" if token is not None else "client credentials" if client_secret is not None
            else "databricks-sdk" if sdk else "none")


@dataclass(frozen=True, repr=False)
class SalesforceCredentials:
    """Resolved Salesforce settings: a pre-minted ``token``, or the client credentials
    (``client_id``, ``client_secret``) of an External Client App on the My Domain ``domain``.
    ``api_base`` None: taken from the token's ``api_instance_url``, else the documented default.

    A plain frozen value (secrets as ``SecretStr``, masked in ``repr``): it pickles, compares
    and hashes by value; :attr:`token_source` builds what mints or holds the tokens."""

    token: SecretStr | None = None
    domain: str | None = None
    client_id: str | None = None
    client_secret: SecretStr | None = None
    api_base: str | None = None
    allow_insecure_http: bool = False

    @property
    def token_source(self) -> TokenSource:
        """A new token source for these credentials (a client reads it once)."""
        if self.token is not None:
            return StaticToken(self.token)
        assert self.domain and self.client_id and self.client_secret
        return SalesforceClientCredentials(self.domain, self.client_id, self.client_secret,
                                           allow_insecure_http=self.allow_insecure_http)

    def __repr__(self) -> str:
        insecure = ", allow_insecure_http=True" if self.allow_insecure_http else ""
        return (f"SalesforceCredentials(domain={self.domain!r}, api_base={self.api_base!r}, "
                f"auth={_auth_kind(self.token, self.client_secret)!r}{insecure})")

    __str__ = __repr__


def resolve_salesforce(
    *,
    domain: str | None = None,
    client_id: str | None = None,
    client_secret: Secret = None,
    api_key: Secret = None,
    api_base: str | None = None,
    env: Mapping[str, str] | None = None,
    allow_insecure_http: bool = False,
) -> SalesforceCredentials:
    """Where to send and with which credentials, from the arguments, else the environment.

    Credentials go only over https, or plain http to a loopback host (127.0.0.0/8, ::1,
    localhost); ``allow_insecure_http=True`` allows plain http to any host (warned about once
    per host). The same holds for the ``api_instance_url`` a token answer names.
    """
    insecure = check_flag(allow_insecure_http)
    env = os.environ if env is None else env
    domain = _text(domain) or _text(env.get("SALESFORCE_DOMAIN"))
    base = _text(api_base) or _text(env.get("SALESFORCE_API_BASE"))
    if base:
        base = secure_url(normalize_url(base, "api_base / SALESFORCE_API_BASE", allow_path=True),
                          "api_base / SALESFORCE_API_BASE", insecure)

    token = _secret(api_key, "api_key")
    cid = _client_id(client_id, "client_id")
    csecret = _secret(client_secret, "client_secret")
    if token is None and cid is None and csecret is None:  # nothing given: the environment
        token = _secret(env.get("SALESFORCE_ACCESS_TOKEN"), "SALESFORCE_ACCESS_TOKEN")
        cid = _client_id(env.get("SALESFORCE_CLIENT_ID"), "SALESFORCE_CLIENT_ID")
        csecret = _secret(env.get("SALESFORCE_CLIENT_SECRET"), "SALESFORCE_CLIENT_SECRET")
        if token is not None and (cid or csecret):
            raise ConfigurationError(
                "Ambiguous Salesforce credentials: both SALESFORCE_ACCESS_TOKEN and "
                "SALESFORCE_CLIENT_ID/SALESFORCE_CLIENT_SECRET are set.",
                hint="Unset one of them, or pass api_key= or client_id=/client_secret= "
                     "explicitly.")
    elif token is None:  # a client id or secret was passed: complete the pair from the environment
        cid = cid or _client_id(env.get("SALESFORCE_CLIENT_ID"), "SALESFORCE_CLIENT_ID")
        csecret = csecret or _secret(env.get("SALESFORCE_CLIENT_SECRET"),
                                     "SALESFORCE_CLIENT_SECRET")

    if token is not None:
        return SalesforceCredentials(token=token, api_base=base, allow_insecure_http=insecure)
    missing = [name for name, value in (
        ("domain (SALESFORCE_DOMAIN)", domain),
        ("client_id (SALESFORCE_CLIENT_ID)", cid),
        ("client_secret (SALESFORCE_CLIENT_SECRET)", csecret)) if not value]
    if missing:
        raise ConfigurationError(
            "Salesforce credentials are missing: " + ", ".join(missing) + ".",
            hint="Set SALESFORCE_DOMAIN, SALESFORCE_CLIENT_ID and SALESFORCE_CLIENT_SECRET (an "
                 "External Client App with the client credentials flow), or "
                 "SALESFORCE_ACCESS_TOKEN to a token you already have.")
    assert domain and cid and csecret
    # A pasted token URL is forgiven; any other path is kept (e.g. behind a proxy).
    domain_url = normalize_url(domain, "domain / SALESFORCE_DOMAIN", allow_path=True)
    domain_url = domain_url.removesuffix("/services/oauth2/token")
    if httpx.URL(domain_url).host in GENERIC_LOGIN_HOSTS:
        raise ConfigurationError(
            f"{domain_url} cannot issue tokens for the Models API.",
            hint="Use your org's My Domain URL (Setup > My Domain > Current My Domain URL, e.g. "
                 "https://acme.my.salesforce.com).")
    secure_url(domain_url, "domain / SALESFORCE_DOMAIN", insecure)
    return SalesforceCredentials(domain=domain_url, client_id=cid, client_secret=csecret,
                                 api_base=base, allow_insecure_http=insecure)


@dataclass(frozen=True, repr=False)
class DatabricksCredentials:
    """Resolved Databricks settings: the workspace ``host`` and one kind of credentials, a
    personal access ``token``, a service principal (``client_id``, ``client_secret``), a
    workload identity (``subject``, the platform's JWT, exchanged for a Databricks token; with
    ``client_id`` when a service principal's federation policy is used), or a databricks-sdk
    configuration (``sdk_config``) that supplies the tokens itself.

    ``shipped``: ``token`` is a short-lived token minted elsewhere (a batch job's driver,
    ``ship_token=True``) that expires at ``expires_at`` (epoch seconds; None: not known); it is
    used as it is and never sent once expired (see :class:`~sfmodels_core.auth.ShippedToken`).

    A plain frozen value (secrets as ``SecretStr``, masked in ``repr``): it pickles, compares
    and hashes by value (the SDK's configuration aside); :attr:`token_source` builds what mints
    or holds the tokens."""

    host: str
    token: SecretStr | None = None
    client_id: str | None = None
    client_secret: SecretStr | None = None
    #: A ``databricks.sdk.core.Config`` (typed loosely: the SDK is optional).
    sdk_config: Any = field(default=None, compare=False)
    allow_insecure_http: bool = False
    subject: SubjectToken | None = None
    shipped: bool = False
    expires_at: float | None = None

    @property
    def kind(self) -> str:
        """What the credentials are, as messages say it (never a secret)."""
        if self.token is not None:
            return "shipped token" if self.shipped else "token"
        if self.subject is not None:
            return f"workload identity ({self.subject.auth_type})"
        return _auth_kind(None, self.client_secret, sdk=self.sdk_config is not None)

    @property
    def token_source(self) -> TokenSource:
        """A new token source for these credentials (a client reads it once)."""
        if self.token is not None:
            return ShippedToken(self.token, self.expires_at) if self.shipped else \
                StaticToken(self.token)
        if self.sdk_config is not None:
            return DatabricksSDKCredentials(self.sdk_config)
        if self.subject is not None:
            return DatabricksTokenExchange(self.host, self.subject, self.client_id)
        assert self.client_id and self.client_secret
        return DatabricksM2M(self.host, self.client_id, self.client_secret)

    def __repr__(self) -> str:
        insecure = ", allow_insecure_http=True" if self.allow_insecure_http else ""
        return f"DatabricksCredentials(host={self.host!r}, auth={self.kind!r}{insecure})"

    __str__ = __repr__


def _profile(profile: str | None, config_file: str | None,
             env: Mapping[str, str]) -> dict[str, str]:
    """The named (or DEFAULT) section of the Databricks config file, {} when there is none."""
    named = _text(profile) or _text(env.get("DATABRICKS_CONFIG_PROFILE"))
    path = Path(_text(config_file) or _text(env.get("DATABRICKS_CONFIG_FILE"))
                or "~/.databrickscfg").expanduser()
    if not path.is_file():
        if named:
            raise ConfigurationError(
                f"Databricks profile {named!r} was asked for, but {path} does not exist.")
        return {}
    # DEFAULT is read as a profile of its own, not inherited by the others: a token in DEFAULT
    # must not mix with a service principal in a named profile.
    parser = configparser.ConfigParser(interpolation=None, default_section="\x00")
    try:
        parser.read(path, encoding="utf-8")
    except configparser.Error as exc:
        raise ConfigurationError(
            f"Could not read the Databricks config file {path}: {exc}") from None
    section = named or "DEFAULT"
    if not parser.has_section(section):
        if not named:
            return {}
        raise ConfigurationError(
            f"Databricks profile {section!r} is not in {path}; it has: "
            f"{', '.join(parser.sections()) or 'no profiles'}.")
    return {k: v for k, v in parser.items(section)}


#: The extra that installs databricks-sdk, as users type it.
SDK_EXTRA = "sfmodels[databricks-sdk]"
#: databricks-sdk's ``auth_type`` values for workload identity federation, handled here too.
OIDC_AUTH_TYPES = ("env-oidc", "file-oidc")
#: The environment variable holding the workload identity JWT for ``env-oidc`` unless
#: ``DATABRICKS_OIDC_TOKEN_ENV`` names another (as in databricks-sdk).
OIDC_TOKEN_ENV = "DATABRICKS_OIDC_TOKEN"
#: Profile ``auth_type`` values this library handles itself; any other needs databricks-sdk.
OWN_AUTH_TYPES = ("pat", "oauth-m2m", *OIDC_AUTH_TYPES)
#: Profile keys that only databricks-sdk can use (Azure, GCP, basic auth, metadata service...).
SDK_ONLY_KEYS = ("azure_client_id", "azure_client_secret", "azure_tenant_id",
                 "azure_workspace_resource_id", "azure_use_msi", "google_service_account",
                 "google_credentials", "username", "password", "metadata_service_url",
                 "databricks_cli_path")
_SDK_HINT = (f"Or install the {SDK_EXTRA} extra (pip install '{SDK_EXTRA}') to use "
             "databricks-sdk's authentication: notebooks and jobs, `databricks auth login`, "
             "Azure CLI and managed identities, GCP.")
_MISSING_CREDENTIALS = (
    "Databricks credentials are missing: set api_key= (DATABRICKS_TOKEN), or client_id= and "
    "client_secret= (DATABRICKS_CLIENT_ID, DATABRICKS_CLIENT_SECRET), or a profile in "
    "~/.databrickscfg (DATABRICKS_CONFIG_PROFILE), or a workload identity's JWT "
    "(DATABRICKS_OIDC_TOKEN, or DATABRICKS_OIDC_TOKEN_FILEPATH).")
_MISSING_HOST = ("The Databricks workspace is missing: set host= or DATABRICKS_HOST "
                 "(e.g. https://adb-1234567890123456.7.azuredatabricks.net), or a profile in "
                 "~/.databrickscfg.")
_SDK_FAILED = "databricks-sdk's authentication found no credentials either:"
_CREDENTIAL_KEYS = ("token", "client_id", "client_secret")


def _sdk_config_class() -> Any:
    """databricks-sdk's ``Config`` class, or None when the SDK is not installed."""
    try:
        from databricks.sdk.core import Config
    except ImportError:
        return None
    return Config


def profile_from_target_uri(target_uri: str) -> str | None:
    """The profile a databricks-langchain style ``target_uri`` names (None for ``databricks``)."""
    text = target_uri.strip() if isinstance(target_uri, str) else ""
    if text == "databricks":
        return None
    name = text.removeprefix("databricks://") if text.startswith("databricks://") else ""
    if name and not any(c in name for c in ":/@?#"):
        return name
    raise ConfigurationError(
        f"target_uri must be 'databricks' or 'databricks://<profile>', got {target_uri!r}.",
        hint="Secret-scope URIs (databricks://scope:prefix) are not supported: pass host= and "
             "token= (or profile=) instead.")


# -- the places credentials come from, in order -------------------------------------------------
@dataclass(frozen=True)
class _Place:
    """What one place (the arguments, the environment, a config profile) says: a host and
    credentials as given, and the names of its settings for error messages."""

    where: str
    values: Mapping[str, str | SecretStr | None]
    names: Mapping[str, str]

    def get(self, key: str) -> str | SecretStr | None:
        return self.values.get(key)

    def names_credentials(self) -> bool:
        return any(self.get(key) for key in _CREDENTIAL_KEYS)


def _from_arguments(host: str | None, api_key: Secret, client_id: str | None,
                    client_secret: Secret) -> _Place:
    return _Place("arguments", {"host": host, "token": api_key, "client_id": client_id,
                                "client_secret": client_secret},
                  {"token": "api_key", "client_id": "client_id",
                   "client_secret": "client_secret"})


def _from_environment(env: Mapping[str, str]) -> _Place:
    return _Place("environment", {
        "host": env.get("DATABRICKS_HOST"), "token": env.get("DATABRICKS_TOKEN"),
        "client_id": env.get("DATABRICKS_CLIENT_ID"),
        "client_secret": env.get("DATABRICKS_CLIENT_SECRET")},
        {"token": "DATABRICKS_TOKEN", "client_id": "DATABRICKS_CLIENT_ID",
         "client_secret": "DATABRICKS_CLIENT_SECRET"})


def _from_profile(section: Mapping[str, str], name: str | None) -> _Place:
    return _Place("profile", {key: section.get(key) for key in ("host", *_CREDENTIAL_KEYS)},
                  {key: f"{key} of the config profile {name or 'DEFAULT'!r}"
                   for key in _CREDENTIAL_KEYS})


def _first(places: list[_Place], key: str) -> str | SecretStr | None:
    return next((place.get(key) for place in places if place.get(key)), None)


def _same_host(host_url: str, profile_host: Any) -> bool:
    return normalize_url(str(profile_host), "the profile's host") == host_url


def _credentials_in(place: _Place, host_url: str, insecure: bool) -> DatabricksCredentials | None:
    """The credentials ``place`` names for the workspace ``host_url`` (None when it names
    none): a token, or a whole service principal; never both, never half of one, and never
    a profile's credentials for another workspace."""
    names = place.names
    token = _secret(place.get("token"), names["token"])
    cid = _client_id(place.get("client_id"), names["client_id"])
    csecret = _secret(place.get("client_secret"), names["client_secret"])
    if token is None and cid is None and csecret is None:
        return None
    own_host = place.get("host")
    if place.where == "profile" and own_host and not _same_host(host_url, own_host):
        raise ConfigurationError(
            f"The Databricks host is {host_url}, but the only credentials found are those of "
            f"the config profile for {own_host}; they are not sent to another workspace.",
            hint="Set DATABRICKS_TOKEN (or the service principal) for this host, or unset "
                 "DATABRICKS_HOST / host= to use the profile's own workspace.")
    if token is not None and cid:
        raise ConfigurationError(
            f"Ambiguous Databricks credentials in the {place.where}: both a token and a client "
            "id are set.",
            hint="Use either a personal access token (DATABRICKS_TOKEN) or a service "
                 "principal (DATABRICKS_CLIENT_ID and DATABRICKS_CLIENT_SECRET), not both.")
    if token is not None:
        return DatabricksCredentials(host_url, token=token, allow_insecure_http=insecure)
    if not (cid and csecret):
        missing = "client_secret (DATABRICKS_CLIENT_SECRET)" if cid else \
            "client_id (DATABRICKS_CLIENT_ID)"
        raise ConfigurationError(f"Databricks service principal is incomplete in the "
                                 f"{place.where}: {missing} is missing.")
    return DatabricksCredentials(host_url, client_id=cid, client_secret=csecret,
                                 allow_insecure_http=insecure)


def _only_the_sdk_reads(section: Mapping[str, str], place: _Place) -> bool:
    """Whether the profile's credentials are of a kind only databricks-sdk handles: an
    ``auth_type`` of its own, or only keys such as Azure's or GCP's."""
    auth_type = _text(section.get("auth_type"))
    return (auth_type not in (None, *OWN_AUTH_TYPES)) or (
        not place.names_credentials() and any(section.get(key) for key in SDK_ONLY_KEYS))


# -- workload identity (OIDC token federation) -------------------------------------------------
def _workload_identity(asked: str | None, places: list[_Place], section: Mapping[str, str],
                       profile_name: str | None, env: Mapping[str, str],
                       oidc_token_env: str | None,
                       oidc_token_filepath: str | None) -> SubjectToken | None:
    """Where the workload identity JWT comes from, when ``asked`` (the ``auth_type``) is
    ``env-oidc`` or ``file-oidc``, or, with no ``auth_type``, when no place names a token or a
    client secret but a JWT is there: the variable first, then the file, as databricks-sdk's
    default chain tries them after a token and a service principal. None otherwise (another
    ``auth_type`` included). A JWT that is asked for but missing or unusable is a
    ``ConfigurationError`` naming the setting."""
    if asked is not None and asked not in OIDC_AUTH_TYPES:
        return None
    profile = f"of the config profile {profile_name or 'DEFAULT'!r}"
    variable = (_text(oidc_token_env) or _text(env.get("DATABRICKS_OIDC_TOKEN_ENV"))
                or _text(section.get("oidc_token_env")) or OIDC_TOKEN_ENV)
    named_file = next(((setting, value) for setting, value in (
        ("oidc_token_filepath", _text(oidc_token_filepath)),
        ("DATABRICKS_OIDC_TOKEN_FILEPATH", _text(env.get("DATABRICKS_OIDC_TOKEN_FILEPATH"))),
        ("DATABRICKS_OIDC_TOKEN_FILE", _text(env.get("DATABRICKS_OIDC_TOKEN_FILE"))),
        (f"oidc_token_filepath {profile}", _text(section.get("oidc_token_filepath"))))
        if value), None)
    raw = env.get(variable)
    from_env = SubjectToken(variable, jwt=SecretStr(raw) if raw else None)
    from_file = SubjectToken(named_file[0], path=named_file[1]) if named_file else None
    if asked is None:
        if any(place.get("token") or place.get("client_secret") for place in places):
            return None
        chosen = from_env if raw and raw.strip() else from_file
    elif asked == "env-oidc":
        chosen = from_env
    else:
        if from_file is None:
            raise ConfigurationError(
                "auth_type file-oidc reads the workload identity JWT from a file, but none is "
                "named: set oidc_token_filepath= or DATABRICKS_OIDC_TOKEN_FILEPATH.")
        chosen = from_file
    if chosen is not None:
        chosen.read(ConfigurationError)  # there and usable now, or said now
    return chosen


def _auth_type_asked(auth_type: str | None, arguments: _Place, env: Mapping[str, str],
                     section: Mapping[str, str]) -> str | None:
    """The ``auth_type`` asked for (argument, ``DATABRICKS_AUTH_TYPE``, the profile's), or
    None; None too when the arguments name a token or a client secret and no ``auth_type``
    (arguments come before the environment). The argument may only ask for a workload
    identity: the other kinds are chosen by their own settings."""
    given = _text(auth_type)
    if given is not None and given not in OIDC_AUTH_TYPES:
        raise ConfigurationError(
            f"auth_type= takes {' or '.join(OIDC_AUTH_TYPES)} (workload identity), got "
            f"{given!r}.",
            hint="The other kinds of credentials are chosen by their own settings (api_key=, "
                 "client_id=/client_secret=, profile=), or by databricks-sdk from "
                 "DATABRICKS_AUTH_TYPE or a profile's auth_type.")
    if given is None and (arguments.get("token") or arguments.get("client_secret")):
        return None
    return given or _text(env.get("DATABRICKS_AUTH_TYPE")) or _text(section.get("auth_type"))


# -- databricks-sdk ------------------------------------------------------------------------------
def _sdk_credentials(config: Any, insecure: bool) -> DatabricksCredentials:
    raw_host = getattr(config, "host", None)
    if not raw_host:
        raise ConfigurationError(
            "The databricks-sdk configuration has no workspace host: set host= or "
            "DATABRICKS_HOST.")
    host = secure_url(normalize_url(str(raw_host), "the databricks-sdk host"),
                      "the databricks-sdk host", insecure)
    return DatabricksCredentials(host, sdk_config=config, allow_insecure_http=insecure)


def _from_workspace_client(workspace_client: Any, others: Mapping[str, Any],
                           insecure: bool) -> DatabricksCredentials:
    given = sorted(name for name, value in others.items() if value)
    if given:
        raise ConfigurationError(
            f"workspace_client= carries its own host and credentials, so {', '.join(given)} "
            "would be ignored.",
            hint="Pass either workspace_client= or host=/api_key=/client_id=/profile=, not both.")
    config = getattr(workspace_client, "config", workspace_client)
    if not callable(getattr(config, "authenticate", None)):
        raise ConfigurationError(
            f"workspace_client must be a databricks.sdk WorkspaceClient or its Config, got "
            f"{type(workspace_client).__name__}.")
    return _sdk_credentials(config, insecure)


def _from_sdk(without_sdk: str, failed: str, hint: str, insecure: bool, **settings: Any
              ) -> DatabricksCredentials:
    """Credentials from databricks-sdk, configured with ``settings`` and whatever it finds on its
    own. The errors: ``without_sdk`` when it is not installed, ``failed`` (followed by the
    SDK's reason) when it finds no credentials."""
    config_class = _sdk_config_class()
    if config_class is None:
        raise ConfigurationError(without_sdk, hint=hint)
    if not os.environ.get("DATABRICKS_RETRY_TIMEOUT_SECONDS"):
        settings = {**settings, "retry_timeout_seconds": defaults.DATABRICKS_SDK_PROBE_TIMEOUT}
    try:
        config = config_class(**{k: v for k, v in settings.items() if v})
    except Exception as exc:  # the SDK reports configuration problems as ValueError, mostly
        raise ConfigurationError(f"{failed} {exc}") from None
    return _sdk_credentials(config, insecure)


def _from_sdk_profile(name: str, section: Mapping[str, str], own_host: Any, host_url: str,
                      sdk_settings: Mapping[str, Any], insecure: bool) -> DatabricksCredentials:
    """A profile only databricks-sdk can read, read by it (for its own workspace only)."""
    auth_type = _text(section.get("auth_type"))
    what = f"auth_type {auth_type!r}" if auth_type else "credentials"
    profile_host = section.get("host")
    if own_host and profile_host and not _same_host(host_url, profile_host):
        raise ConfigurationError(
            f"The Databricks host is {host_url}, but the only credentials found are those of "
            f"the config profile for {profile_host}; they are not sent to another workspace.",
            hint="Unset DATABRICKS_HOST / host= to use the profile's own workspace.")
    return _from_sdk(
        f"The Databricks config profile {name!r} uses {what} that only databricks-sdk "
        "understands, and it is not installed.",
        f"databricks-sdk could not authenticate with the config profile {name!r}:",
        f"Install the {SDK_EXTRA} extra: pip install '{SDK_EXTRA}'.", insecure,
        **{**sdk_settings, "profile": name})


def _profile_asked(profile: str | None, target_uri: str | None) -> str | None:
    """The profile ``profile=`` and ``target_uri=`` name together (they must agree)."""
    if target_uri is None:
        return profile
    named = profile_from_target_uri(target_uri)
    if named and _text(profile) not in (None, named):
        raise ConfigurationError(
            f"target_uri names profile {named!r} but profile= is {profile!r}.")
    return _text(profile) or named


def resolve_databricks(
    *,
    host: str | None = None,
    api_key: Secret = None,
    client_id: str | None = None,
    client_secret: Secret = None,
    profile: str | None = None,
    config_file: str | None = None,
    env: Mapping[str, str] | None = None,
    workspace_client: Any = None,
    target_uri: str | None = None,
    allow_insecure_http: bool = False,
    auth_type: str | None = None,
    oidc_token_env: str | None = None,
    oidc_token_filepath: str | None = None,
) -> DatabricksCredentials:
    """Host and credentials, from the first place that names credentials: the arguments, the
    environment, a config profile (read when the first two do not name both a host and
    credentials, or when a profile is asked for), a workload identity, then databricks-sdk.

    A workload identity is used when ``auth_type`` (or ``DATABRICKS_AUTH_TYPE``, or the
    profile's) is ``env-oidc`` or ``file-oidc``, or when nothing above names a token or a client
    secret but its JWT is there: in the variable ``DATABRICKS_OIDC_TOKEN`` (or the one
    ``oidc_token_env`` / ``DATABRICKS_OIDC_TOKEN_ENV`` names), else in the file
    ``oidc_token_filepath`` / ``DATABRICKS_OIDC_TOKEN_FILEPATH``. The JWT is exchanged at the
    workspace for a Databricks token, as a service principal's federation policy says when a
    client id is set (``DATABRICKS_CLIENT_ID``), else as the account's does.

    ``workspace_client`` (a databricks-sdk ``WorkspaceClient`` or ``Config``) provides both on
    its own. When nothing names credentials, databricks-sdk's default authentication is tried if
    it is installed and ``env`` is the process environment (the SDK reads that environment, so
    a test's ``env=`` mapping keeps it out).

    Credentials go only over https, or plain http to a loopback host (127.0.0.0/8, ::1,
    localhost); ``allow_insecure_http=True`` allows plain http to any host (warned about once
    per host).
    """
    insecure = check_flag(allow_insecure_http)
    if workspace_client is not None:
        return _from_workspace_client(workspace_client, {
            "host": host, "api_key": api_key, "client_id": client_id,
            "client_secret": client_secret, "profile": profile, "config_file": config_file,
            "target_uri": target_uri}, insecure)
    profile = _profile_asked(profile, target_uri)
    use_sdk = env is None or env is os.environ
    env = os.environ if env is None else env
    named_profile = _text(profile) or _text(env.get("DATABRICKS_CONFIG_PROFILE"))
    places = [_from_arguments(host, api_key, client_id, client_secret), _from_environment(env)]
    # A host from the arguments or the environment; one from a profile the SDK reads itself
    # (given a host, it would not read the profile).
    own_host = _first(places, "host")
    has_credentials = any(place.names_credentials() for place in places)
    section: dict[str, str] = {}
    if not (own_host and has_credentials) or profile or env.get("DATABRICKS_CONFIG_PROFILE"):
        section = _profile(profile, config_file, env)
        places.append(_from_profile(section, named_profile))
    sdk_settings = {"host": _text(str(own_host)) if own_host else None,
                    "profile": named_profile,
                    "config_file": _text(config_file) or _text(env.get("DATABRICKS_CONFIG_FILE"))}

    raw_host = _first(places, "host")
    subject = _workload_identity(_auth_type_asked(auth_type, places[0], env, section), places,
                                 section, named_profile, env, oidc_token_env, oidc_token_filepath)
    if not raw_host:
        if subject is None and use_sdk and not has_credentials and not any(
                section.get(k) for k in _CREDENTIAL_KEYS):
            return _from_sdk(_MISSING_HOST, f"{_MISSING_HOST} {_SDK_FAILED}", _SDK_HINT,
                             insecure, **sdk_settings)
        raise ConfigurationError(_MISSING_HOST)
    host_url = secure_url(normalize_url(str(raw_host), "host / DATABRICKS_HOST"),
                          "host / DATABRICKS_HOST", insecure)
    if subject is not None:
        cid = next((_client_id(place.get("client_id"), place.names["client_id"])
                    for place in places if place.get("client_id")), None)
        return DatabricksCredentials(host_url, client_id=cid, subject=subject,
                                     allow_insecure_http=insecure)
    for place in places:
        if place.where == "profile" and _only_the_sdk_reads(section, place):
            return _from_sdk_profile(named_profile or "DEFAULT", section, own_host, host_url,
                                     sdk_settings, insecure)
        found = _credentials_in(place, host_url, insecure)
        if found is not None:
            return found
    if use_sdk:
        return _from_sdk(_MISSING_CREDENTIALS, f"{_MISSING_CREDENTIALS} {_SDK_FAILED}",
                         _SDK_HINT, insecure, **sdk_settings)
    raise ConfigurationError(_MISSING_CREDENTIALS, hint=_SDK_HINT)

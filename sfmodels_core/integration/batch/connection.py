"""Where a job's requests go, with which credentials, and the one client per executor process.

Settings are resolved once, on the driver, exactly as the core clients resolve them (arguments,
then the driver's environment, then a Databricks config profile). The result is a
:class:`Connection`: the core's resolved credentials
(:class:`~sfmodels_core.credentials.SalesforceCredentials` or
:class:`~sfmodels_core.credentials.DatabricksCredentials`, a small frozen value with the secrets
as ``pydantic.SecretStr``), which travels to the executors inside the job's pickled function. It is
never part of a plan string (plans name the function, not its contents), and its ``repr`` masks
the secrets. On an executor, :func:`client_for` builds the core client from it without reading
that machine's environment or files, and keeps it for the life of the Python worker process, so
tokens are minted once per process, not once per task or batch.

Credentials that only the driver can use (databricks-sdk's: a notebook's own identity,
``databricks auth login``, Azure CLI; or a workload identity's JWT) do not travel. With
``ship_token=True`` the driver mints one short-lived Databricks token from them (or from a
service principal) and the connection carries that token and its expiry instead: the workers
send it as it is, and once it has expired (or been refused) they send nothing more with it,
failing each request with :class:`~sfmodels_core.errors.TokenExpiredError` (a per-row error:
rerunning the job on its saved output redoes those rows).
"""

from __future__ import annotations

import logging
import threading
import time
from collections import OrderedDict
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, Literal

from pydantic import SecretStr

from sfmodels_core import DatabricksClient, SalesforceClient, defaults
from sfmodels_core.auth import DatabricksSDKCredentials
from sfmodels_core.credentials import (
    DatabricksCredentials,
    SalesforceCredentials,
    check_flag,
    resolve_databricks,
    resolve_salesforce,
)
from sfmodels_core.errors import ConfigurationError, InvalidInputError
from sfmodels_core.integration._mlflow_tracking import scrub, shown_uri
from sfmodels_core.options import ClientOptions

__all__ = [
    "MAX_CLIENTS",
    "PROVIDERS",
    "SETTINGS",
    "Client",
    "Connection",
    "Provider",
    "Tracking",
    "check_provider",
    "client_for",
    "make_client",
    "resolve",
    "ship",
]

logger = logging.getLogger("sfmodels")

Provider = Literal["salesforce", "databricks"]
PROVIDERS: tuple[Provider, ...] = ("salesforce", "databricks")
Client = SalesforceClient | DatabricksClient

#: The settings each provider takes, as the core clients name them.
SETTINGS: dict[str, tuple[str, ...]] = {
    "salesforce": ("domain", "client_id", "client_secret", "api_key", "access_token", "api_base",
                   "allow_insecure_http"),
    "databricks": ("host", "api_key", "token", "client_id", "client_secret", "profile",
                   "config_file", "allow_insecure_http", "auth_type", "oidc_token_env",
                   "oidc_token_filepath", "ship_token"),
}
#: Clients kept per executor process (one per distinct connection and options; jobs with the
#: same settings share one). The oldest is closed when a new one would exceed this.
MAX_CLIENTS = 8


@dataclass(frozen=True, repr=False)
class Connection:
    """Resolved settings of one provider: the core's credentials, as the driver resolved them.
    ``url`` is the Salesforce My Domain (when minting tokens) or the Databricks workspace;
    ``token`` a pre-minted Salesforce token, a Databricks personal access token, or a token the
    driver minted and shipped (``shipped``, valid until ``expires_at``, epoch seconds; None:
    not known); ``client_id``/``client_secret`` the app or service principal.
    ``allow_insecure_http``: plain http to hosts other than loopback ones was allowed."""

    credentials: SalesforceCredentials | DatabricksCredentials

    @property
    def provider(self) -> Provider:
        return "salesforce" if isinstance(self.credentials, SalesforceCredentials) else \
            "databricks"

    @property
    def url(self) -> str | None:
        credentials = self.credentials
        return credentials.domain if isinstance(credentials, SalesforceCredentials) else \
            credentials.host

    @property
    def api_base(self) -> str | None:
        credentials = self.credentials
        return credentials.api_base if isinstance(credentials, SalesforceCredentials) else None

    @property
    def token(self) -> SecretStr | None:
        return self.credentials.token

    @property
    def client_id(self) -> str | None:
        return self.credentials.client_id

    @property
    def client_secret(self) -> SecretStr | None:
        return self.credentials.client_secret

    @property
    def allow_insecure_http(self) -> bool:
        return self.credentials.allow_insecure_http

    @property
    def shipped(self) -> bool:
        credentials = self.credentials
        return isinstance(credentials, DatabricksCredentials) and credentials.shipped

    @property
    def expires_at(self) -> float | None:
        credentials = self.credentials
        return credentials.expires_at if isinstance(credentials, DatabricksCredentials) else None

    def __repr__(self) -> str:
        credentials = self.credentials
        if isinstance(credentials, DatabricksCredentials):
            auth = credentials.kind
        else:
            auth = ("token" if self.token is not None else
                    "client credentials" if self.client_secret is not None else "none")
        expires = ""
        if self.shipped:
            expires = ", expires=" + (repr(time.strftime("%Y-%m-%d %H:%M:%S UTC", time.gmtime(
                self.expires_at))) if self.expires_at is not None else "'unknown'")
        insecure = ", allow_insecure_http=True" if self.allow_insecure_http else ""
        return (f"Connection(provider={self.provider!r}, url={self.url!r}, "
                f"api_base={self.api_base!r}, auth={auth!r}{expires}{insecure})")

    __str__ = __repr__


@dataclass(frozen=True, repr=False)
class Tracking:
    """The MLflow tracking URI a Databricks feedback job logs to, as the driver resolved it.

    It travels to the executors like a :class:`Connection`: inside the job's pickled function,
    as a ``SecretStr`` (a URI may hold a password or a token), never in a plan string, its
    ``repr`` the URI with those parts masked. It holds no credentials of its own: with the
    ``databricks`` URI (or ``databricks://profile``), MLflow on each node reads the workspace
    credentials from that node's environment or Databricks config, as Databricks documents
    for MLflow inside Spark tasks (on a Databricks cluster the runtime provides them)."""

    secret_uri: SecretStr

    @property
    def uri(self) -> str:
        return self.secret_uri.get_secret_value()

    @property
    def shown(self) -> str:
        return shown_uri(self.uri)

    def scrub(self, text: str) -> str:
        """``text`` with the URI in it shown masked."""
        return scrub(text, self.uri)

    def __repr__(self) -> str:
        return f"Tracking({self.shown!r})"

    __str__ = __repr__


def check_provider(provider: Any) -> Provider:
    if provider not in PROVIDERS:
        raise InvalidInputError(f"provider must be 'salesforce' or 'databricks', got {provider!r}")
    return provider  # type: ignore[no-any-return]


def resolve(provider: Any, settings: Mapping[str, Any],
            env: Mapping[str, str] | None = None) -> Connection:
    """The connection for ``provider`` from the given settings and the driver's environment."""
    name = check_provider(provider)
    if name == "salesforce" and "ship_token" in settings:
        raise InvalidInputError(
            "ship_token is for Databricks: Salesforce's client credentials travel to the "
            "workers as they are, and each worker mints its own tokens")
    unknown = sorted(set(settings) - set(SETTINGS[name]))
    if unknown:
        raise InvalidInputError(
            f"unknown {name} setting(s) {', '.join(unknown)}; the settings are "
            f"{', '.join(SETTINGS[name])}")
    given = {k: v for k, v in settings.items() if v is not None}
    insecure = check_flag(given.pop("allow_insecure_http", False))
    if name == "salesforce":
        key = given.pop("api_key", None) or given.pop("access_token", None)
        given.pop("access_token", None)
        return Connection(resolve_salesforce(api_key=key, env=env, allow_insecure_http=insecure,
                                             **given))
    ship_token = given.pop("ship_token", False)
    if not isinstance(ship_token, bool):
        raise InvalidInputError(f"ship_token must be True or False, got {ship_token!r}")
    key = given.pop("api_key", None) or given.pop("token", None)
    given.pop("token", None)
    databricks = resolve_databricks(api_key=key, env=env, allow_insecure_http=insecure, **given)
    if ship_token:
        return Connection(ship(databricks))
    if databricks.sdk_config is not None or databricks.subject is not None:
        raise ConfigurationError(
            f"The Databricks credentials found on the driver ({databricks.kind}) work only "
            "there: they cannot travel to the workers.",
            hint="Pass ship_token=True to mint one short-lived token on the driver and send "
                 "that (the job must finish before it expires; a rerun on the saved output "
                 "resumes), or give the workers a service principal (client_id=, "
                 "client_secret=) or a personal access token (api_key=).")
    return Connection(databricks)


def ship(credentials: DatabricksCredentials) -> DatabricksCredentials:
    """One short-lived token minted now from ``credentials`` (a service principal, a workload
    identity, databricks-sdk's), as credentials that carry it and its expiry to the workers.

    Refused for a personal access token (it mints none, and travels as it is) and for
    credentials that are no bearer token; a token the driver cannot send for longer than
    :data:`~sfmodels_core.defaults.SHIPPED_TOKEN_MARGIN` is refused too."""
    if credentials.shipped:
        return credentials
    if credentials.token is not None:
        raise ConfigurationError(
            "ship_token=True mints a short-lived token on the driver, but the credentials are "
            "a personal access token, which mints none; it travels to the workers as it is.",
            hint="Drop ship_token=True.")
    expires_at: float | None
    if credentials.sdk_config is not None:
        token, expires_at = DatabricksSDKCredentials(credentials.sdk_config).bearer()
    else:
        with DatabricksClient.from_credentials(credentials) as client:
            minted = client.auth.get_token()
        token, expires_at = minted.value, minted.expires_at
    now = time.time()
    if expires_at is not None and expires_at - defaults.SHIPPED_TOKEN_MARGIN <= now:
        raise ConfigurationError(
            f"The token minted on the driver from {credentials.kind} expires in "
            f"{max(expires_at - now, 0):.0f} s, too soon to ship: workers stop sending a "
            f"shipped token {defaults.SHIPPED_TOKEN_MARGIN:g} s before its expiry.",
            hint="Give the workers a service principal (client_id=, client_secret=) instead.")
    logger.info("ship_token: a Databricks token minted on the driver from %s goes to the "
                "workers; it expires %s", credentials.kind,
                "at an unknown time" if expires_at is None else
                time.strftime("at %Y-%m-%d %H:%M:%S UTC", time.gmtime(expires_at)))
    return DatabricksCredentials(credentials.host, token=token, shipped=True,
                                 expires_at=expires_at,
                                 allow_insecure_http=credentials.allow_insecure_http)


def make_client(connection: Connection, options: ClientOptions) -> Client:
    """A core client for ``connection``; it reads no environment variable or file."""
    if connection.provider == "salesforce":
        return SalesforceClient(domain=connection.url, client_id=connection.client_id,
                                client_secret=connection.client_secret, api_key=connection.token,
                                api_base=connection.api_base, options=options, env={},
                                allow_insecure_http=connection.allow_insecure_http)
    assert isinstance(connection.credentials, DatabricksCredentials)
    return DatabricksClient.from_credentials(connection.credentials, options)


_clients: OrderedDict[tuple[Connection, ClientOptions], Client] = OrderedDict()
_lock = threading.Lock()


def client_for(connection: Connection, options: ClientOptions) -> Client:
    """This process's client for these settings, built on first use and kept."""
    key = (connection, options)
    with _lock:
        client = _clients.get(key)
        if client is not None:
            _clients.move_to_end(key)
            return client
        client = _clients[key] = make_client(connection, options)
        evicted = _clients.popitem(last=False)[1] if len(_clients) > MAX_CLIENTS else None
    if evicted is not None:
        evicted.close()
    return client

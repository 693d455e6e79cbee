"""Where a job's requests go, with which credentials, and the one client per executor process.

Settings are resolved once, on the driver, exactly as the core clients resolve them (arguments,
then the driver's environment, then a Databricks config profile). The result is a
:class:`Connection`: a small frozen value holding the URL and the credentials as
``pydantic.SecretStr``, which travels to the executors inside the job's pickled function. It is
never part of a plan string (plans name the function, not its contents), and its ``repr`` masks
the secrets. On an executor, :func:`client_for` builds the core client from it without reading
that machine's environment or files, and keeps it for the life of the Python worker process, so
tokens are minted once per process, not once per task or batch.
"""

from __future__ import annotations

import threading
from collections import OrderedDict
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, Literal

from pydantic import SecretStr

from sfmodels_core import DatabricksClient, SalesforceClient
from sfmodels_core.auth import DatabricksM2M, SalesforceClientCredentials, TokenSource
from sfmodels_core.config import check_flag, resolve_databricks, resolve_salesforce
from sfmodels_core.errors import ConfigurationError, InvalidInputError
from sfmodels_core.options import ClientOptions

Provider = Literal["salesforce", "databricks"]
PROVIDERS: tuple[Provider, ...] = ("salesforce", "databricks")
Client = SalesforceClient | DatabricksClient

#: The settings each provider takes, as the core clients name them.
SETTINGS: dict[str, tuple[str, ...]] = {
    "salesforce": ("domain", "client_id", "client_secret", "api_key", "access_token", "api_base",
                   "allow_insecure_http"),
    "databricks": ("host", "api_key", "token", "client_id", "client_secret", "profile",
                   "config_file", "allow_insecure_http"),
}
#: Clients kept per executor process (one per distinct connection and options; jobs with the
#: same settings share one). The oldest is closed when a new one would exceed this.
MAX_CLIENTS = 8


@dataclass(frozen=True)
class Connection:
    """Resolved settings of one provider. ``url`` is the Salesforce My Domain (when minting
    tokens) or the Databricks workspace; ``token`` a pre-minted Salesforce token or a Databricks
    personal access token; ``client_id``/``client_secret`` the app or service principal.
    ``allow_insecure_http``: plain http to hosts other than loopback ones was allowed."""

    provider: Provider
    url: str | None = None
    api_base: str | None = None
    client_id: str | None = None
    client_secret: SecretStr | None = None
    token: SecretStr | None = None
    allow_insecure_http: bool = False

    def __repr__(self) -> str:
        auth = ("token" if self.token is not None else
                "client credentials" if self.client_secret is not None else "none")
        insecure = ", allow_insecure_http=True" if self.allow_insecure_http else ""
        return (f"Connection(provider={self.provider!r}, url={self.url!r}, "
                f"api_base={self.api_base!r}, auth={auth!r}{insecure})")

    __str__ = __repr__


def check_provider(provider: Any) -> Provider:
    if provider not in PROVIDERS:
        raise InvalidInputError(f"provider must be 'salesforce' or 'databricks', got {provider!r}")
    return provider  # type: ignore[no-any-return]


def resolve(provider: Any, settings: Mapping[str, Any],
            env: Mapping[str, str] | None = None) -> Connection:
    """The connection for ``provider`` from the given settings and the driver's environment."""
    name = check_provider(provider)
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
        sf = resolve_salesforce(api_key=key, env=env, allow_insecure_http=insecure, **given)
        return _from_source("salesforce", sf.token_source, api_base=sf.api_base,
                            insecure=insecure)
    key = given.pop("api_key", None) or given.pop("token", None)
    given.pop("token", None)
    db = resolve_databricks(api_key=key, env=env, allow_insecure_http=insecure, **given)
    return _from_source("databricks", db.token_source, url=db.host, insecure=insecure)


def _from_source(provider: Provider, source: TokenSource, *, url: str | None = None,
                 api_base: str | None = None, insecure: bool = False) -> Connection:
    static = source.static_token()
    if static is not None:
        return Connection(provider, url=url, api_base=api_base, token=static.value,
                          allow_insecure_http=insecure)
    if isinstance(source, SalesforceClientCredentials):
        return Connection(provider, url=source.domain, api_base=api_base,
                          client_id=source.client_id, client_secret=source.client_secret,
                          allow_insecure_http=insecure)
    if isinstance(source, DatabricksM2M):
        return Connection(provider, url=url, client_id=source.client_id,
                          client_secret=source.client_secret, allow_insecure_http=insecure)
    raise ConfigurationError(f"{provider} credentials of kind {type(source).__name__} cannot be "
                             "sent to Spark executors")


def make_client(connection: Connection, options: ClientOptions) -> Client:
    """A core client for ``connection``; it reads no environment variable or file."""
    if connection.provider == "salesforce":
        return SalesforceClient(domain=connection.url, client_id=connection.client_id,
                                client_secret=connection.client_secret, api_key=connection.token,
                                api_base=connection.api_base, options=options, env={},
                                allow_insecure_http=connection.allow_insecure_http)
    return DatabricksClient(host=connection.url, api_key=connection.token,
                            client_id=connection.client_id,
                            client_secret=connection.client_secret, options=options, env={},
                            allow_insecure_http=connection.allow_insecure_http)


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

"""Connection settings shared by every class, and the lazily created core client behind them.

The field names are the public configuration names (constructor argument, then environment, then
default). Nothing here reads the environment: settings left as ``None`` go to the core client as
``None`` so that its own resolution (arguments, then environment, then the Databricks config
profile, with its ambiguity checks) applies. The core client is created on first use, so a class
can be constructed without credentials and the core's ``ConfigurationError`` (which names what is
missing) surfaces on the first call.

``sfmodels_core`` is imported only when a client is created: it pulls in httpx, and importing this
package must stay cheap.
"""

from __future__ import annotations

import threading
from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

from pydantic import BaseModel, ConfigDict, Field, PrivateAttr, SecretStr, model_validator

if TYPE_CHECKING:
    from sfmodels_core.databricks import DatabricksClient
    from sfmodels_core.salesforce import SalesforceClient

# One lock for every lazy creation: creations are rare and quick, and a lock stored on the
# instance would stop instances from being deep-copied.
_CREATE_LOCK = threading.Lock()

#: Options that go to the core client only when set (None keeps the client's own default).
_TUNING = ("timeout", "max_retries", "requests_per_minute")


class _CoreSettings(BaseModel):
    """Transport settings both providers share, and the lazy client."""

    model_config = ConfigDict(
        populate_by_name=True, arbitrary_types_allowed=True, extra="forbid",
        protected_namespaces=())

    timeout: float | None = None
    """Seconds to wait for an answer. None: the client default (60 s)."""
    max_retries: int | None = None
    """Retries after a rate limit, a server error or a broken connection. None: the client
    default (3)."""
    requests_per_minute: float | None = None
    """Pace requests on the client side to stay under the service's per-minute limit."""
    client: Any = Field(default=None, exclude=True, repr=False)
    """A core client to use instead of creating one from the settings above (share one client
    between several components to share its connection pool and token)."""

    _core: Any = PrivateAttr(default=None)

    def _client_kind(self) -> type[Any]:  # pragma: no cover - every subclass overrides it
        raise NotImplementedError

    def _client_settings(self) -> dict[str, Any]:  # pragma: no cover - overridden
        raise NotImplementedError

    @model_validator(mode="after")
    def _check_client(self) -> _CoreSettings:
        if self.client is None:
            return self
        if not isinstance(self.client, self._client_kind()):
            raise ValueError(
                f"client must be a {self._client_kind().__name__}, "
                f"got {type(self.client).__name__}")
        ignored = sorted(name for name, value in self._client_options().items()
                         if value is not None)
        if ignored:
            raise ValueError(f"client= is given, so {', '.join(ignored)} would be ignored: set "
                             "them on the client instead")
        return self

    def _client_options(self) -> dict[str, Any]:
        """Keyword arguments for the core client: credentials always, tuning only when set."""
        options = self._client_settings()
        options.update({name: getattr(self, name) for name in _TUNING
                        if getattr(self, name) is not None})
        return options

    def _get_client(self) -> Any:
        if self.client is not None:
            return self.client
        if self._core is None:
            with _CREATE_LOCK:
                if self._core is None:
                    self._core = self._client_kind()(**self._client_options())
        return self._core

    def model_copy(self, *, update: Mapping[str, Any] | None = None,
                   deep: bool = False) -> Any:
        """A copy; with ``update``, one that creates its own client from the new settings."""
        copied = super().model_copy(update=update, deep=deep)
        if update:
            copied._core = None
        return copied

    def __getstate__(self) -> dict[Any, Any]:
        # The client created on first use is left out (pools and locks do not pickle); the copy
        # creates its own when first used. A client passed in cannot travel.
        if self.client is not None:
            raise TypeError(
                "This object was given client=..., which cannot be pickled. Build it with the "
                "settings (domain/host, credentials) instead, or pass the client again after "
                "unpickling.")
        state: dict[Any, Any] = super().__getstate__()
        private = state.get("__pydantic_private__")
        if private and private.get("_core") is not None:
            state = {**state, "__pydantic_private__": {**private, "_core": None}}
        return state

    def __deepcopy__(self, memo: dict[int, Any] | None = None) -> Any:
        # A copy shares the client (a client is safe to share; its pools and locks cannot be
        # copied).
        memo = {} if memo is None else memo
        for shared in (self.client, self._core):
            if shared is not None:
                memo[id(shared)] = shared
        return super().__deepcopy__(memo)


class SalesforceSettings(_CoreSettings):
    """Settings of the Salesforce Models API classes."""

    domain: str | None = None
    """The org's My Domain URL, e.g. ``https://acme.my.salesforce.com``
    (env ``SALESFORCE_DOMAIN``)."""
    client_id: str | None = None
    """Consumer key of the External Client App (env ``SALESFORCE_CLIENT_ID``)."""
    client_secret: SecretStr | None = None
    """Consumer secret (env ``SALESFORCE_CLIENT_SECRET``)."""
    api_key: SecretStr | None = Field(default=None, alias="access_token")
    """A pre-minted access token; alias ``access_token`` (env ``SALESFORCE_ACCESS_TOKEN``)."""
    api_base: str | None = None
    """API base URL (env ``SALESFORCE_API_BASE``; default: the token's ``api_instance_url``,
    else ``https://api.salesforce.com/einstein/platform/v1``)."""

    def _client_kind(self) -> type[SalesforceClient]:
        from sfmodels_core.salesforce import SalesforceClient

        return SalesforceClient

    def _client_settings(self) -> dict[str, Any]:
        return {"domain": self.domain, "client_id": self.client_id,
                "client_secret": self.client_secret, "api_key": self.api_key,
                "api_base": self.api_base}

    @property
    def _salesforce(self) -> SalesforceClient:
        client: SalesforceClient = self._get_client()
        return client


class DatabricksSettings(_CoreSettings):
    """Settings of the Databricks model serving classes.

    ``profile="NAME"`` selects a profile of the Databricks config file; it is stored as
    ``config_profile`` because LangChain chat models already have a ``profile`` attribute (the
    model's capabilities).
    """

    host: str | None = None
    """Workspace URL, e.g. ``https://adb-1234567890123456.7.azuredatabricks.net``
    (env ``DATABRICKS_HOST``)."""
    api_key: SecretStr | None = Field(default=None, alias="token")
    """Personal access token; alias ``token`` (env ``DATABRICKS_TOKEN``)."""
    client_id: str | None = None
    """Service principal id for OAuth M2M (env ``DATABRICKS_CLIENT_ID``)."""
    client_secret: SecretStr | None = None
    """Service principal secret (env ``DATABRICKS_CLIENT_SECRET``)."""
    config_profile: str | None = None
    """Profile of the config file; pass it as ``profile=`` (env ``DATABRICKS_CONFIG_PROFILE``)."""
    config_file: str | None = None
    """Path of the config file (env ``DATABRICKS_CONFIG_FILE``, default ``~/.databrickscfg``)."""
    workspace_client: Any = Field(default=None, exclude=True, repr=False)
    """A databricks-sdk ``WorkspaceClient`` (or its ``Config``) whose credentials to use
    (needs the ``databricks-sdk`` extra); instead of host and credentials."""
    target_uri: str | None = None
    """``"databricks"`` or ``"databricks://<profile>"`` (names a profile, as databricks-langchain
    does)."""

    @model_validator(mode="before")
    @classmethod
    def _profile_name(cls, data: Any) -> Any:
        if isinstance(data, dict) and isinstance(data.get("profile"), str):
            data = dict(data)
            name = data.pop("profile")
            if data.get("config_profile") not in (None, name):
                raise ValueError("profile and config_profile name different profiles")
            data["config_profile"] = name
        return data

    def _client_kind(self) -> type[DatabricksClient]:
        from sfmodels_core.databricks import DatabricksClient

        return DatabricksClient

    def _client_settings(self) -> dict[str, Any]:
        return {"host": self.host, "api_key": self.api_key, "client_id": self.client_id,
                "client_secret": self.client_secret, "profile": self.config_profile,
                "config_file": self.config_file, "workspace_client": self.workspace_client,
                "target_uri": self.target_uri}

    @property
    def _databricks(self) -> DatabricksClient:
        client: DatabricksClient = self._get_client()
        return client


class BulkSettings(BaseModel):
    """Batching of the embeddings classes; None keeps the client's defaults."""

    batch_size: int | None = Field(default=None, ge=1)
    """Texts per request (client default: 16 for Salesforce, 150 for Databricks)."""
    max_concurrency: int | None = Field(default=None, ge=1)
    """Requests in flight at once for one bulk call (client default: 4)."""

    def _bulk_options(self) -> dict[str, Any]:
        return {name: value for name in ("batch_size", "max_concurrency")
                if (value := getattr(self, name)) is not None}


def no_unknown_kwargs(owner: str, kwargs: dict[str, Any], allowed: tuple[str, ...]) -> None:
    """Refuse call options a class would otherwise have to drop silently."""
    unknown = sorted(set(kwargs) - set(allowed))
    if unknown:
        from sfmodels_core.errors import InvalidInputError

        raise InvalidInputError(
            f"{owner} got unexpected option(s) {', '.join(unknown)}; it accepts "
            f"{', '.join(allowed)}")

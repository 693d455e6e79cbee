"""Connection settings shared by the LlamaIndex classes, and lazy creation of the core client.

Every setting is optional at construction. The core client is built on first use from the
settings given, with ``None`` for the rest, so that the core's own resolution (environment, then
``~/.databrickscfg`` for Databricks) fills the gaps and its ``ConfigurationError`` names what is
still missing. Secrets are ``SecretStr`` and are left out of ``model_dump``/``to_dict``.
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Mapping
from typing import TYPE_CHECKING, Any, Generic, TypeVar

from pydantic import AliasChoices, BaseModel, ConfigDict, Field, PrivateAttr, SecretStr

if TYPE_CHECKING:
    from sfmodels_core.databricks import DatabricksClient
    from sfmodels_core.salesforce import SalesforceClient

C = TypeVar("C")


class ClientSlot(Generic[C]):
    """Holds one core client, created at most once however many threads ask.

    A copy made by pickling or ``deepcopy`` of a slot that created its client starts empty (a
    client holds sockets and locks): the copy builds its own from the same settings on first
    use. A client passed in by the user is shared by ``deepcopy``, and cannot be pickled: the
    unpickled copy would otherwise quietly fall back to other settings.
    """

    def __init__(self, client: C | None = None) -> None:
        self.client = client
        self.owned = client is None
        self._lock = threading.Lock()

    def get(self, factory: Callable[[], C]) -> C:
        client = self.client
        if client is None:
            with self._lock:
                if self.client is None:
                    self.client = factory()
                    self.owned = True
                client = self.client
        return client

    def take_owned(self) -> C | None:
        """The client if this slot created it, emptying the slot; None otherwise."""
        with self._lock:
            client, owned = self.client, self.owned
            if owned:
                self.client = None
        return client if owned else None

    def __getstate__(self) -> dict[str, Any]:
        if self.client is not None and not self.owned:
            raise TypeError(
                "This object was given client=..., which cannot be pickled. Build it with the "
                "settings (domain/host, credentials) instead, or pass the client again after "
                "unpickling.")
        return {}

    def __deepcopy__(self, memo: dict[int, Any]) -> ClientSlot[C]:
        return ClientSlot(None if self.owned else self.client)

    def __setstate__(self, state: dict[str, Any]) -> None:
        self.__init__()  # type: ignore[misc]


#: Settings that only shape the core client this object would create.
_CLIENT_FIELDS = frozenset({"domain", "client_id", "client_secret", "api_key", "api_base", "host",
                            "profile", "config_file", "timeout", "max_retries",
                            "request_batch_size", "workspace_client", "target_uri"})


class _Connection(BaseModel):
    model_config = ConfigDict(populate_by_name=True)

    timeout: float | None = Field(
        default=60.0, description="Seconds to wait for each HTTP request (None: no limit).")
    max_retries: int = Field(
        default=3, ge=0, description="Retries of a failed request (429, 5xx, connection errors).")

    _slot: ClientSlot[Any] = PrivateAttr(default_factory=ClientSlot)

    def _adopt(self, client: Any, expected: type) -> None:
        if client is not None:
            if not isinstance(client, expected):
                raise TypeError(
                    f"client must be a {expected.__name__}, got {type(client).__name__}")
            ignored = sorted(self.model_fields_set & _CLIENT_FIELDS)
            if ignored:
                raise ValueError(
                    f"client= is given, so {', '.join(ignored)} would be ignored: set them on "
                    "the client instead")
            self._slot = ClientSlot(client)

    def _client_options(self) -> dict[str, Any]:
        """Extra keyword arguments for the core client (batching, concurrency)."""
        return {}

    def __getstate__(self) -> dict[Any, Any]:
        self._slot.__getstate__()  # refuses a passed-in client before LlamaIndex drops the slot
        state: dict[Any, Any] = super().__getstate__()
        return state

    def model_copy(self, *, update: Mapping[str, Any] | None = None,
                   deep: bool = False) -> Any:
        """A copy; with ``update``, one that builds its own client from the new settings (a
        client passed in with ``client=`` is kept)."""
        copied = super().model_copy(update=update, deep=deep)
        if update and self._slot.owned:
            copied._slot = ClientSlot()
        return copied

    def close(self) -> None:
        """Close the HTTP connections of the client this object created (not of a client that
        was passed in). A later call creates a new client."""
        client = self._slot.take_owned()
        if client is not None:
            client.close()

    async def aclose(self) -> None:
        client = self._slot.take_owned()
        if client is not None:
            await client.aclose()


class SalesforceConnection(_Connection):
    """Salesforce Models API settings: argument, then ``SALESFORCE_*`` environment variables."""

    domain: str | None = Field(
        default=None, description="My Domain URL, for the client credentials flow "
                                  "(SALESFORCE_DOMAIN).")
    client_id: str | None = Field(
        default=None, description="External Client App consumer key (SALESFORCE_CLIENT_ID).")
    client_secret: SecretStr | None = Field(
        default=None, exclude=True,
        description="External Client App consumer secret (SALESFORCE_CLIENT_SECRET).")
    api_key: SecretStr | None = Field(
        default=None, exclude=True, validation_alias=AliasChoices("api_key", "access_token"),
        description="A pre-minted access token, instead of the client credentials "
                    "(SALESFORCE_ACCESS_TOKEN).")
    api_base: str | None = Field(
        default=None, description="Models API base URL (SALESFORCE_API_BASE; default: from the "
                                  "token, else https://api.salesforce.com/einstein/platform/v1).")

    def __init__(self, *, client: SalesforceClient | None = None, **data: Any) -> None:
        super().__init__(**data)
        if client is not None:
            from sfmodels_core.salesforce import SalesforceClient

            self._adopt(client, SalesforceClient)

    @property
    def client(self) -> SalesforceClient:
        """The core client, created on first use."""
        return self._slot.get(self._new_client)  # type: ignore[no-any-return]

    def _new_client(self) -> SalesforceClient:
        from sfmodels_core.salesforce import SalesforceClient

        return SalesforceClient(
            domain=self.domain, client_id=self.client_id, client_secret=self.client_secret,
            api_key=self.api_key, api_base=self.api_base, timeout=self.timeout,
            max_retries=self.max_retries, **self._client_options())


class DatabricksConnection(_Connection):
    """Databricks settings: argument, then ``DATABRICKS_*`` variables, then
    ``~/.databrickscfg``."""

    host: str | None = Field(default=None, description="Workspace URL (DATABRICKS_HOST).")
    api_key: SecretStr | None = Field(
        default=None, exclude=True, validation_alias=AliasChoices("api_key", "token"),
        description="Personal access token (DATABRICKS_TOKEN).")
    client_id: str | None = Field(
        default=None, description="Service principal id, for OAuth (DATABRICKS_CLIENT_ID).")
    client_secret: SecretStr | None = Field(
        default=None, exclude=True,
        description="Service principal OAuth secret (DATABRICKS_CLIENT_SECRET).")
    profile: str | None = Field(
        default=None, description="Profile of the config file (DATABRICKS_CONFIG_PROFILE).")
    config_file: str | None = Field(
        default=None, description="Config file (DATABRICKS_CONFIG_FILE, default "
                                  "~/.databrickscfg).")
    workspace_client: Any = Field(
        default=None, exclude=True,
        description="A databricks-sdk WorkspaceClient (or its Config) whose credentials to use "
                    "(the databricks-sdk extra), instead of host and credentials.")
    target_uri: str | None = Field(
        default=None, description="'databricks' or 'databricks://<profile>' (names a profile).")

    def __init__(self, *, client: DatabricksClient | None = None, **data: Any) -> None:
        super().__init__(**data)
        if client is not None:
            from sfmodels_core.databricks import DatabricksClient

            self._adopt(client, DatabricksClient)

    @property
    def client(self) -> DatabricksClient:
        """The core client, created on first use."""
        return self._slot.get(self._new_client)  # type: ignore[no-any-return]

    def _new_client(self) -> DatabricksClient:
        from sfmodels_core.databricks import DatabricksClient

        return DatabricksClient(
            host=self.host, api_key=self.api_key, client_id=self.client_id,
            client_secret=self.client_secret, profile=self.profile,
            config_file=self.config_file, workspace_client=self.workspace_client,
            target_uri=self.target_uri, timeout=self.timeout, max_retries=self.max_retries,
            **self._client_options())

"""The settings every framework class shares, and the core client it creates from them.

Both framework packages build their classes as ``class ChatSalesforce(SalesforceClientFields,
BaseChatModel)``: the mixins here declare the public configuration names (constructor argument,
then environment, then default) and own the lazily created core client, so that:

- a class can be built without credentials: the core client is created on first use, and the
  core's ``ConfigurationError`` (naming what is missing) surfaces on the first call;
- ``client=`` shares an existing core client (its pool and its token); settings given beside it
  are refused rather than silently ignored;
- a copy (``copy.deepcopy``, ``model_copy()``) has the same settings and shares the client;
  pickling drops a client the object created (sockets and locks do not travel) and refuses one
  passed in (the unpickled copy would quietly fall back to other settings);
- ``model_copy(update=...)`` validates like construction (aliases, secrets, unknown names) and
  the copy builds its own client from its own settings;
- ``close()``/``aclose()`` and ``with``/``async with`` close the connections of a client the
  object created (never of one passed in).

Nothing here reads the environment: settings left ``None`` reach the core as ``None``, so the
core's own resolution (environment, then ``~/.databrickscfg``, with its ambiguity checks)
applies, and every default comes from :mod:`sfmodels_core.defaults`.
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Mapping
from typing import TYPE_CHECKING, Any, ClassVar, Generic, Literal, TypeVar

from pydantic import AliasChoices, BaseModel, Field, PrivateAttr, SecretStr, model_validator

from .._lifecycle import Closeable
from ..errors import InvalidInputError

if TYPE_CHECKING:
    from ..databricks import DatabricksClient
    from ..options import ClientOptions
    from ..salesforce import SalesforceClient

__all__ = [
    "ClientFields",
    "ClientSlot",
    "DatabricksClientFields",
    "SalesforceClientFields",
    "refuse_unknown_options",
]

C = TypeVar("C")


class ClientSlot(Generic[C]):
    """Holds one core client, created at most once however many threads ask."""

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

    def passed_in(self) -> C | None:
        return None if self.owned else self.client

    def check_picklable(self) -> None:
        if self.client is not None and not self.owned:
            raise TypeError(
                "This object was given client=..., which cannot be pickled. Build it with the "
                "settings (domain/host, credentials) instead, or pass the client again after "
                "unpickling.")

    def __getstate__(self) -> dict[str, Any]:
        self.check_picklable()
        return {}

    def __setstate__(self, state: dict[str, Any]) -> None:
        self.__init__()  # type: ignore[misc]

    def __deepcopy__(self, memo: dict[int, Any]) -> ClientSlot[C]:
        # A copy has the same settings, so it shares the client (and its pool and token); a
        # closed client reopens its connections on its next call.
        copied: ClientSlot[C] = ClientSlot(self.client)
        copied.owned = self.owned
        return copied


class ClientFields(Closeable, BaseModel):
    """Transport settings of every class, and the lazy core client (see the module docstring)."""

    timeout: float | None = Field(
        default=None, gt=0,
        description="Seconds to wait for each HTTP request (default 60).")
    max_retries: int | None = Field(
        default=None, ge=0,
        description="Retries of a failed request: 429, 408, 409, 423, 5xx and broken "
                    "connections (default 3).")
    requests_per_minute: float | None = Field(
        default=None, gt=0,
        description="Pace requests on the client side to stay under the service's limit.")
    async_http: Literal["httpx", "aiohttp"] | None = Field(
        default=None,
        description="What sends async requests: 'httpx' (default) or 'aiohttp' (pip install "
                    "sfmodels[aiohttp]), about half the CPU per call in a large fan-out.")
    allow_insecure_http: bool | None = Field(
        default=None,
        description="Allow plain http:// URLs to hosts other than this machine, which sends "
                    "credentials unencrypted (warned about once per host). Default False: "
                    "https only, and http to loopback hosts (127.0.0.1, ::1, localhost).")

    _slot: ClientSlot[Any] = PrivateAttr(default_factory=ClientSlot)

    #: Names that only shape the client this object would create (refused beside client=).
    _CLIENT_FIELDS: ClassVar[frozenset[str]] = frozenset(
        {"timeout", "max_retries", "requests_per_minute", "async_http", "allow_insecure_http"})

    def __init__(self, *, client: Any = None, **data: Any) -> None:
        super().__init__(**data)
        if client is not None:
            expected = self._client_class()
            if not isinstance(client, expected):
                raise TypeError(f"client must be a {expected.__name__}, "
                                f"got {type(client).__name__}")
            given = sorted(self.model_fields_set & self._CLIENT_FIELDS)
            if given:
                raise ValueError(f"client= is given, so {', '.join(given)} would be ignored: "
                                 "set them on the client instead")
            self._slot = ClientSlot(client)

    # -- what each provider's mixin says
    @classmethod
    def _client_class(cls) -> type[Any]:  # pragma: no cover - every provider overrides it
        raise NotImplementedError

    def _credentials(self) -> dict[str, Any]:  # pragma: no cover - every provider overrides it
        raise NotImplementedError

    def _bulk_options(self) -> dict[str, Any]:
        """Batching options for the core client (the embeddings classes set them)."""
        return {}

    # -- the client
    def client_options(self) -> ClientOptions:
        """The options the core client is (or would be) created with."""
        from ..options import ClientOptions

        return ClientOptions.build(timeout=self.timeout, max_retries=self.max_retries,
                                   requests_per_minute=self.requests_per_minute,
                                   async_http=self.async_http, **self._bulk_options())

    def _new_client(self) -> Any:
        return self._client_class()(**self._credentials(), options=self.client_options(),
                                    allow_insecure_http=bool(self.allow_insecure_http))

    @property
    def client(self) -> Any:
        """The core client: the one passed in, else one created from the settings on first
        use (shared by every call of this object)."""
        return self._slot.get(self._new_client)

    def close(self) -> None:
        """Close the connections of the client this object created (not of one passed in).
        A later call creates a new client."""
        client = self._slot.take_owned()
        if client is not None:
            client.close()

    async def aclose(self) -> None:
        client = self._slot.take_owned()
        if client is not None:
            await client.aclose()

    # -- copies
    def __getstate__(self) -> dict[Any, Any]:
        self._slot.check_picklable()  # before a framework's own pickling drops private state
        state: dict[Any, Any] = super().__getstate__()
        return state

    def model_copy(self, *, update: Mapping[str, Any] | None = None,
                   deep: bool = False) -> Any:
        """A copy. With ``update``, the copy is validated like a new object (aliases such as
        ``endpoint`` or ``access_token`` work, secrets stay secret, unknown names are refused)
        and creates its own client from its own settings; a client passed in is kept."""
        if not update:
            return super().model_copy(deep=deep)
        names = _names_by_alias(type(self))
        unknown = sorted(str(key) for key in update if key not in names)
        if unknown:
            raise ValueError(f"{type(self).__name__} has no setting {', '.join(unknown)}")
        data = {name: getattr(self, name) for name in self.model_fields_set}
        data.update({names[key]: value for key, value in update.items()})
        passed_in = self._slot.passed_in()
        return type(self)(**data, **({"client": passed_in} if passed_in is not None else {}))


def _names_by_alias(cls: type[BaseModel]) -> dict[str, str]:
    """Every name a field can be given by (its name and aliases) -> the field's name."""
    names: dict[str, str] = {}
    for name, info in cls.model_fields.items():
        names[name] = name
        if info.alias:
            names[info.alias] = name
        alias = info.validation_alias
        if isinstance(alias, str):
            names[alias] = name
        elif isinstance(alias, AliasChoices):
            names.update({choice: name for choice in alias.choices if isinstance(choice, str)})
    extra: Mapping[str, str] = getattr(cls, "_EXTRA_NAMES", {})
    names.update(extra)
    return names


def _secret(description: str, *aliases: str) -> Any:
    return Field(default=None, exclude=True, description=description,
                 validation_alias=AliasChoices(*aliases) if aliases else None)


class SalesforceClientFields(ClientFields):
    """Salesforce Models API settings: argument, then ``SALESFORCE_*`` environment variables."""

    domain: str | None = Field(
        default=None, description="The org's My Domain URL, e.g. https://acme.my.salesforce.com "
                                  "(SALESFORCE_DOMAIN).")
    client_id: str | None = Field(
        default=None, description="External Client App consumer key (SALESFORCE_CLIENT_ID).")
    client_secret: SecretStr | None = _secret(
        "External Client App consumer secret (SALESFORCE_CLIENT_SECRET).")
    api_key: SecretStr | None = _secret(
        "A pre-minted access token; alias access_token (SALESFORCE_ACCESS_TOKEN).",
        "api_key", "access_token")
    api_base: str | None = Field(
        default=None, description="Models API base URL (SALESFORCE_API_BASE; default: the "
                                  "token's api_instance_url, else "
                                  "https://api.salesforce.com/einstein/platform/v1).")

    _CLIENT_FIELDS = ClientFields._CLIENT_FIELDS | {
        "domain", "client_id", "client_secret", "api_key", "api_base"}

    @classmethod
    def _client_class(cls) -> type[SalesforceClient]:
        from ..salesforce import SalesforceClient

        return SalesforceClient

    def _credentials(self) -> dict[str, Any]:
        return {"domain": self.domain, "client_id": self.client_id,
                "client_secret": self.client_secret, "api_key": self.api_key,
                "api_base": self.api_base}

    @property
    def client(self) -> SalesforceClient:
        """The core ``SalesforceClient`` (passed in, or created on first use)."""
        return self._slot.get(self._new_client)  # type: ignore[no-any-return]


class DatabricksClientFields(ClientFields):
    """Databricks settings: argument, then ``DATABRICKS_*`` variables, then ``~/.databrickscfg``.

    ``profile="NAME"`` selects a profile of the config file; it is stored as ``config_profile``
    because LangChain chat models already have a ``profile`` attribute (the model's
    capabilities).
    """

    host: str | None = Field(
        default=None, description="Workspace URL, e.g. "
                                  "https://adb-1234567890123456.7.azuredatabricks.net "
                                  "(DATABRICKS_HOST).")
    api_key: SecretStr | None = _secret(
        "Personal access token; alias token (DATABRICKS_TOKEN).", "api_key", "token")
    client_id: str | None = Field(
        default=None, description="Service principal id, for OAuth M2M "
                                  "(DATABRICKS_CLIENT_ID).")
    client_secret: SecretStr | None = _secret(
        "Service principal OAuth secret (DATABRICKS_CLIENT_SECRET).")
    config_profile: str | None = Field(
        default=None, description="Profile of the config file; pass it as profile= "
                                  "(DATABRICKS_CONFIG_PROFILE).")
    config_file: str | None = Field(
        default=None, description="Config file (DATABRICKS_CONFIG_FILE, default "
                                  "~/.databrickscfg).")
    workspace_client: Any = Field(
        default=None, exclude=True, repr=False,
        description="A databricks-sdk WorkspaceClient (or its Config) whose credentials to use "
                    "(the databricks-sdk extra), instead of host and credentials.")
    target_uri: str | None = Field(
        default=None, description="'databricks' or 'databricks://<profile>' (names a profile, "
                                  "as databricks-langchain does).")

    _CLIENT_FIELDS = ClientFields._CLIENT_FIELDS | {
        "host", "api_key", "client_id", "client_secret", "config_profile", "config_file",
        "workspace_client", "target_uri"}
    _EXTRA_NAMES: ClassVar[Mapping[str, str]] = {"profile": "config_profile"}

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

    @classmethod
    def _client_class(cls) -> type[DatabricksClient]:
        from ..databricks import DatabricksClient

        return DatabricksClient

    def _credentials(self) -> dict[str, Any]:
        return {"host": self.host, "api_key": self.api_key, "client_id": self.client_id,
                "client_secret": self.client_secret, "profile": self.config_profile,
                "config_file": self.config_file, "workspace_client": self.workspace_client,
                "target_uri": self.target_uri}

    @property
    def client(self) -> DatabricksClient:
        """The core ``DatabricksClient`` (passed in, or created on first use)."""
        return self._slot.get(self._new_client)  # type: ignore[no-any-return]


def refuse_unknown_options(owner: str, kwargs: Mapping[str, Any],
                           allowed: tuple[str, ...]) -> None:
    """Refuse call options a class would otherwise have to drop silently."""
    unknown = sorted(set(kwargs) - set(allowed))
    if unknown:
        raise InvalidInputError(
            f"{owner} got unexpected option(s) {', '.join(unknown)}; it accepts "
            f"{', '.join(allowed)}")

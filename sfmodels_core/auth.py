"""Token sources and the ``httpx.Auth`` that attaches them.

A :class:`TokenSource` knows how to build a token request and parse its answer (pure). A
:class:`BearerAuth` caches the token, refreshes it ahead of expiry, lets one mint happen at a
time however many threads and asyncio tasks ask at once, and on a 401 re-mints once and resends
once. Its sync and async flows share every decision and differ only in how they send.
"""

from __future__ import annotations

import asyncio
import base64
import binascii
import concurrent.futures
import contextlib
import threading
import time
from collections.abc import Awaitable, Callable, Generator, Mapping
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import urlencode

import httpx
import pydantic_core
from pydantic import SecretStr

from . import defaults
from ._validation import character_kind, unprintable_at, url_problem, warn_insecure_http
from .errors import TokenError

__all__ = [
    "AsyncSender",
    "BearerAuth",
    "DatabricksM2M",
    "DatabricksSDKCredentials",
    "SalesforceClientCredentials",
    "Sender",
    "StaticToken",
    "Token",
    "TokenSource",
    "jwt_claims",
    "salesforce_token_hint",
]


@dataclass(frozen=True)
class Token:
    value: SecretStr
    expires_at: float | None  # epoch seconds; None: never expires as far as we know
    issued_at: float = field(default_factory=time.time)
    extra: Mapping[str, Any] = field(default_factory=dict)
    #: Headers to send instead of ``Authorization: Bearer {value}`` (credentials that are more
    #: than one bearer token, such as those databricks-sdk builds). Values are secrets.
    headers: Mapping[str, SecretStr] = field(default_factory=dict)

    def needs_refresh(self, now: float) -> bool:
        if self.expires_at is None:
            return False
        lifetime = max(self.expires_at - self.issued_at, 0.0)
        # Refresh a tenth of the lifetime early, at most a minute early.
        margin = min(defaults.TOKEN_REFRESH_MARGIN, lifetime / 10)
        return now >= self.expires_at - margin


class TokenSource:
    """Where access tokens come from. Subclasses that mint set ``refreshable = True``.

    A source mints either over HTTP (``build_request``/``parse_response``, sent through the
    client's transport) or, with ``mints_directly = True``, by a blocking call of its own
    (``mint``), which async callers run in a worker thread.
    """

    refreshable = False
    mints_directly = False
    provider = "token endpoint"

    def static_token(self) -> Token | None:
        return None

    def mint(self) -> Token:  # pragma: no cover - only for sources that mint directly
        raise NotImplementedError

    def build_request(self) -> httpx.Request:  # pragma: no cover - abstract for minting sources
        raise NotImplementedError

    def parse_response(self, response: httpx.Response) -> Token:  # pragma: no cover
        raise NotImplementedError


class StaticToken(TokenSource):
    """A token the user already has: a pre-minted Salesforce JWT or a Databricks PAT."""

    def __init__(self, token: SecretStr) -> None:
        self._token = Token(value=token, expires_at=None)

    def static_token(self) -> Token:
        return self._token

    def __repr__(self) -> str:
        return "StaticToken(token=SecretStr('**********'))"


def _running_loop() -> asyncio.AbstractEventLoop | None:
    try:
        return asyncio.get_running_loop()
    except RuntimeError:
        return None


def _oauth_error(response: httpx.Response) -> tuple[str | None, str | None]:
    try:
        body = pydantic_core.from_json(response.content)
    except ValueError:
        return None, response.text[:500] or response.reason_phrase
    if isinstance(body, dict):
        code = body.get("error") or body.get("error_code") or body.get("errorCode")
        message = (body.get("error_description") or body.get("message")
                   or body.get("error_message"))
        return (str(code) if code else None), (str(message) if message else None)
    return None, str(body)[:500]


def _redacted(text: str | None, secrets: tuple[str, ...]) -> str | None:
    """``text`` with every secret in ``secrets`` masked (a server may echo what it was sent)."""
    if text is None:
        return None
    for secret in secrets:
        if secret and secret in text:
            text = text.replace(secret, "***")
    return text


def _token_failure(provider: str, response: httpx.Response, hint: str | None,
                   secrets: tuple[str, ...] = ()) -> TokenError:
    code, message = _oauth_error(response)
    code, message = _redacted(code, secrets), _redacted(message, secrets)
    return TokenError(
        f"Could not get an access token from {provider}: {message or code or 'no reason given'}",
        status_code=response.status_code,
        error_code=code,
        provider_message=message,
        request_id=response.headers.get("x-request-id"),
        provider=provider,
        hint=hint,
    )


def _json_object(response: httpx.Response, provider: str) -> dict[str, Any]:
    """The token answer's JSON object, whose ``access_token`` is a non-empty string that a
    header can carry (printable ASCII without spaces), or a ``TokenError`` that never shows
    the token."""
    try:
        body = pydantic_core.from_json(response.content)
    except ValueError:
        body = None
    if not isinstance(body, dict) or not isinstance(body.get("access_token"), str) or not (
            body["access_token"]):
        raise TokenError(
            f"{provider} answered the token request without an access token",
            status_code=response.status_code, provider=provider,
            hint="Check that the URL points at the token endpoint of the right host.")
    found = unprintable_at(body["access_token"])
    if found is not None:
        position, kind = found
        raise TokenError(
            f"{provider} answered the token request with an access token holding {kind} at "
            f"character {position}, which no token holds; it was not used (its value is not "
            "shown)", status_code=response.status_code, provider=provider,
            request_id=response.headers.get("x-request-id"),
            hint="Check that the URL points at the token endpoint of the right host.")
    return body


def jwt_claims(token: str) -> dict[str, Any]:
    """The claims of a JWT, without verifying it (we only read ``exp``); {} if not a JWT."""
    parts = token.split(".")
    if len(parts) != 3:
        return {}
    payload = parts[1] + "=" * (-len(parts[1]) % 4)
    try:
        claims = pydantic_core.from_json(base64.urlsafe_b64decode(payload))
    except (ValueError, binascii.Error):
        return {}
    return claims if isinstance(claims, dict) else {}


def salesforce_token_hint(code: str | None, message: str | None) -> str | None:
    text = f"{code or ''} {message or ''}".lower()
    if "not supported on this domain" in text:
        return ("Use your org's My Domain URL (Setup > My Domain > Current My Domain URL, e.g. "
                "https://acme.my.salesforce.com) as `domain` / SALESFORCE_DOMAIN; "
                "login.salesforce.com and test.salesforce.com do not issue these tokens.")
    if "client credentials user" in text or "run as" in text:
        return ("Enable the Client Credentials Flow on the External Client App and choose its "
                "Run As user.")
    if "invalid_client" in text or "client identifier" in text or "client credentials" in text:
        return ("Check SALESFORCE_CLIENT_ID (the consumer key) and SALESFORCE_CLIENT_SECRET "
                "(the consumer secret) of the External Client App.")
    return None


class SalesforceClientCredentials(TokenSource):
    """OAuth 2.0 client credentials against ``{My Domain}/services/oauth2/token``."""

    refreshable = True
    provider = "Salesforce"

    def __init__(self, domain: str, client_id: str, client_secret: SecretStr, *,
                 allow_insecure_http: bool = False) -> None:
        self.domain = domain.rstrip("/")
        self.client_id = client_id
        self.client_secret = client_secret
        #: Whether the token answer's ``api_instance_url`` may be plain http to any host.
        self.allow_insecure_http = allow_insecure_http

    def __repr__(self) -> str:
        return f"SalesforceClientCredentials(domain={self.domain!r}, client_id='***')"

    def build_request(self) -> httpx.Request:
        form = {
            "grant_type": "client_credentials",
            "client_id": self.client_id,
            "client_secret": self.client_secret.get_secret_value(),
        }
        return httpx.Request(
            "POST", f"{self.domain}/services/oauth2/token", content=urlencode(form).encode(),
            headers={"content-type": "application/x-www-form-urlencoded",
                     "accept": "application/json"})

    def parse_response(self, response: httpx.Response) -> Token:
        if not response.is_success:
            code, message = _oauth_error(response)
            raise _token_failure("Salesforce", response, salesforce_token_hint(code, message),
                                 (self.client_secret.get_secret_value(),))
        body = _json_object(response, "Salesforce")
        self._check_instance_url(body.get("api_instance_url"), response)
        access = body["access_token"]
        now = time.time()
        issued = now
        with contextlib.suppress(TypeError, ValueError):
            issued = float(body.get("issued_at", "")) / 1000.0
        exp = jwt_claims(access).get("exp")
        expires_at = float(exp) if isinstance(exp, (int, float)) else (
            issued + defaults.SALESFORCE_TOKEN_LIFETIME)
        extra: dict[str, Any] = {k: body[k] for k in ("api_instance_url", "instance_url")
                                 if k in body}
        # Lifetimes are measured on our clock: the server's issued_at only sets the expiry.
        return Token(value=SecretStr(access), expires_at=expires_at,
                     issued_at=min(issued, now), extra=extra)

    def _check_instance_url(self, value: Any, response: httpx.Response) -> None:
        """The ``api_instance_url`` of a token answer, where API calls then go with the token:
        an http(s) URL without user info, query or fragment; https unless its host is loopback
        or ``allow_insecure_http`` is set. Else a ``TokenError`` (the token is not kept)."""
        if value is None:
            return
        problem: str | None
        try:
            url = httpx.URL(value) if isinstance(value, str) else None
        except (httpx.InvalidURL, ValueError):
            url = None
        if url is None or url.scheme not in ("http", "https") or not url.host:
            problem = "is not an http(s) URL"
        elif url.query or url.fragment:
            problem = "has a query or a fragment"
        else:
            problem = url_problem(url, allow_insecure_http=self.allow_insecure_http)
        if problem is not None:
            raise TokenError(
                f"Salesforce's token answer names an api_instance_url that {problem}; API calls "
                "are not sent there, and the token was not used", provider="Salesforce",
                status_code=response.status_code,
                request_id=response.headers.get("x-request-id"),
                hint="Set api_base (SALESFORCE_API_BASE) to the Models API's URL, or check "
                     "that domain points at your org's My Domain.")
        if self.allow_insecure_http and url is not None:
            warn_insecure_http(url)


class DatabricksM2M(TokenSource):
    """Databricks OAuth machine-to-machine: ``{host}/oidc/v1/token`` with ``scope=all-apis``."""

    refreshable = True
    provider = "Databricks"

    def __init__(self, host: str, client_id: str, client_secret: SecretStr) -> None:
        self.host = host.rstrip("/")
        self.client_id = client_id
        self.client_secret = client_secret

    def __repr__(self) -> str:
        return f"DatabricksM2M(host={self.host!r}, client_id='***')"

    def build_request(self) -> httpx.Request:
        basic = base64.b64encode(
            f"{self.client_id}:{self.client_secret.get_secret_value()}".encode()).decode()
        return httpx.Request(
            "POST", f"{self.host}/oidc/v1/token",
            content=urlencode({"grant_type": "client_credentials", "scope": "all-apis"}).encode(),
            headers={"content-type": "application/x-www-form-urlencoded",
                     "accept": "application/json", "authorization": f"Basic {basic}"})

    def parse_response(self, response: httpx.Response) -> Token:
        if not response.is_success:
            raise _token_failure(
                "Databricks", response,
                "Check DATABRICKS_CLIENT_ID and DATABRICKS_CLIENT_SECRET of the service "
                "principal, and that it may use the workspace.",
                (self.client_secret.get_secret_value(),))
        body = _json_object(response, "Databricks")
        now = time.time()
        try:
            lifetime = float(body.get("expires_in", defaults.DATABRICKS_TOKEN_LIFETIME))
        except (TypeError, ValueError):
            lifetime = defaults.DATABRICKS_TOKEN_LIFETIME
        return Token(value=SecretStr(body["access_token"]), expires_at=now + lifetime,
                     issued_at=now)


def _bearer_part(value: str) -> str:
    scheme, _, rest = value.partition(" ")
    return rest if scheme.lower() == "bearer" else ""


class DatabricksSDKCredentials(TokenSource):
    """Credentials from databricks-sdk: the headers of its ``Config.authenticate()``.

    The SDK decides how to get them (notebook runtime, ``databricks auth login``, Azure CLI or
    managed identity, GCP, OAuth, a config profile) and when its token needs refreshing; this
    source asks it again when the token it gave is about to expire (read from the token when
    it is a JWT, else after ``DATABRICKS_SDK_HEADERS_TTL`` seconds) and after a 401. Asking goes
    through :class:`BearerAuth`, so the SDK is called once per refresh however many threads
    and tasks need a token. Only the credentials come from the SDK: requests still go through
    this library's transport, retries and pools.
    """

    refreshable = True
    mints_directly = True
    provider = "databricks-sdk"

    def __init__(self, config: Any) -> None:
        self.config = config  # a databricks.sdk.core.Config (typed loosely: the SDK is optional)
        self.calls = 0

    def __repr__(self) -> str:
        return (f"DatabricksSDKCredentials(host={getattr(self.config, 'host', None)!r}, "
                f"auth_type={getattr(self.config, 'auth_type', None)!r})")

    def mint(self) -> Token:
        self.calls += 1
        auth_type = getattr(self.config, "auth_type", None) or "default"
        try:
            headers = self.config.authenticate()
        except Exception as exc:
            raise TokenError(
                f"databricks-sdk could not get credentials ({auth_type} auth): "
                f"{type(exc).__name__}: {exc}", provider=self.provider,
                hint="Check the workspace_client's configuration, or run `databricks auth "
                     "login` again if its login expired.") from exc
        if not isinstance(headers, Mapping) or not headers or not all(
                isinstance(k, str) and isinstance(v, str) for k, v in headers.items()):
            raise TokenError(f"databricks-sdk ({auth_type} auth) gave no usable credential "
                             "headers", provider=self.provider)
        _check_sdk_headers(headers, auth_type)
        authorization = next((v for k, v in headers.items() if k.lower() == "authorization"),
                             None)
        now = time.time()
        exp = jwt_claims(_bearer_part(authorization or "")).get("exp")
        expires_at: float | None
        if isinstance(exp, (int, float)) and not isinstance(exp, bool):
            expires_at = float(exp)
        elif auth_type == "pat":
            expires_at = None  # a personal access token: the SDK never refreshes it either
        else:
            expires_at = now + defaults.DATABRICKS_SDK_HEADERS_TTL
        value = authorization if authorization is not None else "\n".join(
            f"{k}: {v}" for k, v in sorted(headers.items()))
        return Token(value=SecretStr(value), expires_at=expires_at, issued_at=now,
                     headers={k: SecretStr(v) for k, v in headers.items()})


def _header_value_problem(value: str) -> tuple[int, str] | None:
    """The position (from 1) and kind of the first character a credential header's value may
    not hold: in ``Bearer <token>`` the token is printable ASCII without spaces; any other
    value is printable ASCII (spaces allowed). None when there is none."""
    scheme, space, token = value.partition(" ")
    if space and scheme.lower() == "bearer":
        found = unprintable_at(token)
        return None if found is None else (found[0] + len(scheme) + 1, found[1])
    for index, char in enumerate(value, 1):
        if not " " <= char <= "~":
            return index, character_kind(char)
    return None


def _check_sdk_headers(headers: Mapping[str, str], auth_type: str) -> None:
    """Refuse credential headers no request can carry: a name that is not an HTTP token, or a
    value with a control or non-ASCII character. The ``TokenError`` names the header, never
    its value."""
    for name, value in headers.items():
        if not name or unprintable_at(name) is not None or ":" in name:
            raise TokenError(f"databricks-sdk ({auth_type} auth) gave a credential header whose "
                             "name no HTTP header has", provider="databricks-sdk")
        found = _header_value_problem(value)
        if found is not None:
            position, kind = found
            raise TokenError(
                f"databricks-sdk ({auth_type} auth) gave a {name} header holding {kind} at "
                f"character {position}, which no header may hold; it was not used (its value "
                "is not shown)", provider="databricks-sdk")


Sender = Callable[[httpx.Request], httpx.Response]
AsyncSender = Callable[[httpx.Request], Awaitable[httpx.Response]]


class _Abandoned(Exception):
    """The caller minting a token went away (cancelled, interrupted) before it finished."""


@dataclass
class _Mint:
    """A token request in flight, which every other caller waits for instead of minting."""

    future: concurrent.futures.Future[Token]
    loop: asyncio.AbstractEventLoop | None  # the event loop of an async minter


class BearerAuth(httpx.Auth):
    """Attaches ``Authorization: Bearer`` from a token source, minting and caching as needed.

    One mint at a time, whoever asks: the first caller that needs a token mints it, and every
    other thread or task waits for that mint's result. No lock is held while waiting, so a sync
    call made on the thread of an event loop that is minting cannot deadlock it (it mints on
    its own instead).
    """

    def __init__(self, source: TokenSource, send: Sender | None = None,
                 asend: AsyncSender | None = None) -> None:
        self.source = source
        self.send = send
        self.asend = asend
        self.mints = 0
        self._token: Token | None = source.static_token()
        self._lock = threading.Lock()  # guards _token and _mint, never held across I/O
        self._mint: _Mint | None = None

    def __repr__(self) -> str:
        return f"BearerAuth(source={self.source!r})"

    @property
    def token(self) -> Token | None:
        """The cached token, if any (for reading its ``extra``, never for printing)."""
        return self._token

    def _usable(self, stale: SecretStr | None) -> Token | None:
        token = self._token
        if token is None:
            return None
        if not self.source.refreshable:
            return token
        if stale is not None and token.value.get_secret_value() == stale.get_secret_value():
            return None
        return None if token.needs_refresh(time.time()) else token

    def _claim(self, stale: SecretStr | None,
               loop: asyncio.AbstractEventLoop | None) -> tuple[Token | None, _Mint | None, bool]:
        """A usable token; or the mint in flight to wait for; or a new mint this caller owns."""
        with self._lock:
            token = self._usable(stale)
            if token is not None:
                return token, None, False
            if self._mint is not None:
                return None, self._mint, False
            self._mint = _Mint(concurrent.futures.Future(), loop)
            return None, self._mint, True

    def _mint_sync(self) -> Token:
        if self.source.mints_directly:
            return self._keep(self.source.mint())
        if self.send is None:
            raise TokenError("No way to mint a token: this auth has no transport")
        return self._keep(self.source.parse_response(self.send(self.source.build_request())))

    async def _mint_async(self) -> Token:
        if self.source.mints_directly:
            # The source blocks (it may do I/O of its own): keep the event loop free.
            return self._keep(await asyncio.to_thread(self.source.mint))
        if self.asend is None:
            raise TokenError("No way to mint a token: this auth has no transport")
        return self._keep(self.source.parse_response(
            await self.asend(self.source.build_request())))

    def _keep(self, token: Token) -> Token:
        with self._lock:
            self._token = token
            self.mints += 1
        return token

    def _finish(self, mint: _Mint, token: Token | None, error: BaseException | None) -> None:
        with self._lock:
            if self._mint is mint:
                self._mint = None
        if not mint.future.done():
            if error is None:
                mint.future.set_result(token)  # type: ignore[arg-type]
            else:
                mint.future.set_exception(error if isinstance(error, Exception)
                                          else _Abandoned())

    # -- getting a token: same decisions, sync or async I/O ------------------------------------
    def get_token(self, stale: SecretStr | None = None) -> Token:
        while True:
            token, mint, owner = self._claim(stale, None)
            if token is not None:
                return token
            assert mint is not None
            if owner:
                try:
                    token = self._mint_sync()
                except BaseException as exc:
                    self._finish(mint, None, exc)
                    raise
                self._finish(mint, token, None)
                return token
            if mint.loop is not None and mint.loop is _running_loop():
                # Called synchronously on the thread whose event loop is minting: waiting would
                # block that loop, and with it the mint. Mint separately instead.
                return self._mint_sync()
            try:
                return mint.future.result()
            except _Abandoned:
                continue  # the minter went away: try again, perhaps as the minter

    async def aget_token(self, stale: SecretStr | None = None) -> Token:
        loop = asyncio.get_running_loop()
        while True:
            token, mint, owner = self._claim(stale, loop)
            if token is not None:
                return token
            assert mint is not None
            if owner:
                try:
                    token = await self._mint_async()
                except BaseException as exc:
                    self._finish(mint, None, exc)
                    raise
                self._finish(mint, token, None)
                return token
            try:
                # Shielded: a waiter being cancelled must not cancel the mint others wait for.
                waited: Token = await asyncio.shield(asyncio.wrap_future(mint.future))
                return waited
            except _Abandoned:
                continue

    # -- the flow ------------------------------------------------------------------------------
    @staticmethod
    def _authorize(request: httpx.Request, token: Token) -> httpx.Request:
        if token.headers:
            for name, value in token.headers.items():
                request.headers[name] = value.get_secret_value()
        else:
            request.headers["Authorization"] = f"Bearer {token.value.get_secret_value()}"
        return request

    def _should_resend(self, response: httpx.Response) -> bool:
        return response.status_code == 401 and self.source.refreshable

    def sync_auth_flow(self, request: httpx.Request) -> Generator[httpx.Request, httpx.Response,
                                                                   None]:
        token = self.get_token()
        response = yield self._authorize(request, token)
        if self._should_resend(response):
            yield self._authorize(request, self.get_token(stale=token.value))

    async def async_auth_flow(self, request: httpx.Request) -> Any:
        token = await self.aget_token()
        response = yield self._authorize(request, token)
        if self._should_resend(response):
            yield self._authorize(request, await self.aget_token(stale=token.value))


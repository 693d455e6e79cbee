"""Token sources and the ``httpx.Auth`` that attaches them.

A :class:`TokenSource` knows how to build a token request and parse its answer (pure). A
:class:`BearerAuth` caches the token, refreshes it ahead of expiry, lets one mint happen at a
time however many threads and asyncio tasks ask at once, and on a 401 re-mints once and resends
once. Its sync and async flows share every decision and differ only in how they send.

The sources: a token the user has (:class:`StaticToken`); OAuth client credentials
(:class:`SalesforceClientCredentials`, :class:`DatabricksM2M`); a workload identity JWT
exchanged for a Databricks token (:class:`DatabricksTokenExchange`, reading a
:class:`SubjectToken`); databricks-sdk (:class:`DatabricksSDKCredentials`); and a token minted
on a batch job's driver and shipped to its workers with its expiry (:class:`ShippedToken`),
which fails locally with :class:`~sfmodels_core.errors.TokenExpiredError` once expired.
"""

from __future__ import annotations

import asyncio
import base64
import binascii
import concurrent.futures
import contextlib
import datetime
import threading
import time
from collections.abc import Awaitable, Callable, Generator, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import urlencode

import httpx
import pydantic_core
from pydantic import SecretStr

from . import defaults
from ._validation import character_kind, unprintable_at, url_problem, warn_insecure_http
from .errors import ConfigurationError, SFModelsError, TokenError, TokenExpiredError

__all__ = [
    "AsyncSender",
    "BearerAuth",
    "DatabricksM2M",
    "DatabricksSDKCredentials",
    "DatabricksTokenExchange",
    "SalesforceClientCredentials",
    "Sender",
    "ShippedToken",
    "StaticToken",
    "SubjectToken",
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

    def check(self, token: Token) -> None:
        """Raise if ``token`` must not be sent (called before each request); by default
        every token a source gives may be."""

    def refused(self, response: httpx.Response) -> SFModelsError | None:
        """The error to raise for a 401 with a token this source cannot refresh, or None to
        let the 401 be reported as the service's answer (the default)."""
        return None


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
                   secrets: tuple[str, ...] = (), what: str | None = None) -> TokenError:
    code, message = _oauth_error(response)
    code, message = _redacted(code, secrets), _redacted(message, secrets)
    what = what or f"Could not get an access token from {provider}"
    return TokenError(
        f"{what}: {message or code or 'no reason given'}",
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
        return _databricks_token(response)


def _databricks_token(response: httpx.Response) -> Token:
    """The token of a successful answer of Databricks' ``/oidc/v1/token``, lasting
    ``expires_in`` seconds (an hour when the answer does not say)."""
    body = _json_object(response, "Databricks")
    now = time.time()
    try:
        lifetime = float(body.get("expires_in", defaults.DATABRICKS_TOKEN_LIFETIME))
    except (TypeError, ValueError):
        lifetime = defaults.DATABRICKS_TOKEN_LIFETIME
    return Token(value=SecretStr(body["access_token"]), expires_at=now + lifetime,
                 issued_at=now)


#: RFC 8693 token exchange, as Databricks' workload identity federation takes it.
TOKEN_EXCHANGE_GRANT = "urn:ietf:params:oauth:grant-type:token-exchange"
JWT_TOKEN_TYPE = "urn:ietf:params:oauth:token-type:jwt"


@dataclass(frozen=True, repr=False)
class SubjectToken:
    """Where a workload identity's JWT (an OIDC ID token from the platform: a Kubernetes service
    account, a CI runner) comes from, as databricks-sdk's ``env-oidc`` and ``file-oidc`` take it:
    ``jwt``, the value of the environment variable ``setting`` as read when the credentials
    were resolved (a process's environment does not change under it), or ``path``, a file read
    again at every exchange (platforms rotate it). ``setting`` names where it came from in
    errors; the JWT itself is never shown."""

    setting: str
    jwt: SecretStr | None = None
    path: str | None = None

    @property
    def auth_type(self) -> str:
        return "file-oidc" if self.path is not None else "env-oidc"

    @property
    def where(self) -> str:
        """The setting, and the file it names, as errors say it."""
        return f"{self.setting} ({self.path})" if self.path is not None else self.setting

    def read(self, error: type[SFModelsError] = TokenError) -> str:
        """The JWT, now; an ``error`` naming the setting (never the value) when there is none
        or it holds a character no token holds."""
        hint = ("Check the platform's workload identity (the projected service account token, "
                "the CI job's OIDC token) and the setting that points at it.")
        if self.path is None:
            jwt = self.jwt.get_secret_value().strip() if self.jwt is not None else ""
            if not jwt:
                raise error(f"The workload identity token variable {self.setting} is empty or "
                            "not set (auth_type env-oidc reads the JWT from it)",
                            provider="Databricks", hint=hint)
        else:
            try:
                jwt = Path(self.path).expanduser().read_text(encoding="utf-8").strip()
            except FileNotFoundError:
                raise error(f"The workload identity token file {self.where} does not exist",
                            provider="Databricks", hint=hint) from None
            except (OSError, UnicodeDecodeError) as exc:
                raise error(f"The workload identity token file {self.where} could not be read "
                            f"({type(exc).__name__})", provider="Databricks",
                            hint=hint) from None
            if not jwt:
                raise error(f"The workload identity token file {self.where} is empty",
                            provider="Databricks", hint=hint)
        found = unprintable_at(jwt)
        if found is not None:
            position, kind = found
            raise error(f"The workload identity token from {self.where} holds {kind} at "
                        f"character {position}, which no token holds; it was not sent (its "
                        "value is not shown)", provider="Databricks", hint=hint)
        return jwt

    def __repr__(self) -> str:
        return f"SubjectToken({self.auth_type}, {self.where!r})"

    __str__ = __repr__


class DatabricksTokenExchange(TokenSource):
    """Databricks workload identity federation: the platform's JWT (a :class:`SubjectToken`)
    exchanged at ``{host}/oidc/v1/token`` for a Databricks OAuth token (RFC 8693, the request
    databricks-sdk's ``env-oidc`` and ``file-oidc`` send: ``scope=all-apis``, and ``client_id``
    when a service principal's federation policy is to be used). The JWT is read again for
    every exchange, one per token lifetime."""

    refreshable = True
    provider = "Databricks"

    def __init__(self, host: str, subject: SubjectToken, client_id: str | None = None) -> None:
        self.host = host.rstrip("/")
        self.subject = subject
        self.client_id = client_id
        self._sent = ""  # the JWT of the last exchange, masked in its error

    def __repr__(self) -> str:
        client = ", client_id='***'" if self.client_id else ""
        return f"DatabricksTokenExchange(host={self.host!r}, {self.subject!r}{client})"

    def build_request(self) -> httpx.Request:
        jwt = self.subject.read()
        self._sent = jwt
        form = {"grant_type": TOKEN_EXCHANGE_GRANT, "subject_token": jwt,
                "subject_token_type": JWT_TOKEN_TYPE, "scope": "all-apis"}
        if self.client_id:
            form["client_id"] = self.client_id
        return httpx.Request(
            "POST", f"{self.host}/oidc/v1/token", content=urlencode(form).encode(),
            headers={"content-type": "application/x-www-form-urlencoded",
                     "accept": "application/json"})

    def parse_response(self, response: httpx.Response) -> Token:
        if not response.is_success:
            policy = (" and that the service principal DATABRICKS_CLIENT_ID has a federation "
                      "policy for it" if self.client_id else
                      " (an account federation policy; set DATABRICKS_CLIENT_ID to use a "
                      "service principal's policy)")
            raise _token_failure(
                "Databricks", response,
                f"Check that the issuer, audience and subject of the JWT from "
                f"{self.subject.where} match a federation policy{policy}.",
                (self._sent,),
                what=f"Databricks refused to exchange the workload identity token from "
                     f"{self.subject.where} ({self.subject.auth_type})")
        return _databricks_token(response)


def _utc(epoch: float) -> str:
    return datetime.datetime.fromtimestamp(epoch, datetime.timezone.utc).strftime(
        "%Y-%m-%d %H:%M:%S UTC")


_RESUME = ("Rerun the job on its saved output: only the rows not done are sent again, with a "
           "token minted then.")


class ShippedToken(TokenSource):
    """A bearer token minted elsewhere (on a batch job's driver, ``ship_token=True``) and handed
    over with its expiry, used as it is: this process cannot mint another.

    A request is not sent within :data:`~sfmodels_core.defaults.SHIPPED_TOKEN_MARGIN` seconds of
    ``expires_at`` (it fails locally with :class:`~sfmodels_core.errors.TokenExpiredError`), and
    after the service has refused the token once (401: expired early, revoked) no further
    request is sent with it either. ``expires_at`` None: not known, used until refused."""

    provider = "Databricks"

    def __init__(self, token: SecretStr, expires_at: float | None, *,
                 clock: Callable[[], float] = time.time) -> None:
        self._token = Token(value=token, expires_at=expires_at)
        self.expires_at = expires_at
        self.clock = clock
        self._refusal: tuple[int, str | None] | None = None  # status, request id

    def __repr__(self) -> str:
        expiry = "unknown" if self.expires_at is None else _utc(self.expires_at)
        return f"ShippedToken(token=SecretStr('**********'), expires={expiry!r})"

    def static_token(self) -> Token:
        return self._token

    def _expired(self, now: float) -> bool:
        return self.expires_at is not None and (
            now >= self.expires_at - defaults.SHIPPED_TOKEN_MARGIN)

    def check(self, token: Token) -> None:
        if self._refusal is not None:
            status, request_id = self._refusal
            raise TokenExpiredError(
                f"The {self.provider} token shipped from the driver was refused (HTTP {status}) "
                "by an earlier request: it expired or was revoked, and this worker cannot mint "
                f"another, so the request was not sent. {_RESUME}",
                expires_at=self.expires_at, provider=self.provider, request_id=request_id)
        if self._expired(self.clock()):
            assert self.expires_at is not None
            raise TokenExpiredError(
                f"The {self.provider} token shipped from the driver expired at "
                f"{_utc(self.expires_at)} (requests stop {defaults.SHIPPED_TOKEN_MARGIN:g} s "
                "before), and this worker cannot mint another, so the request was not sent. "
                f"{_RESUME}", expires_at=self.expires_at, provider=self.provider)

    def refused(self, response: httpx.Response) -> SFModelsError:
        request_id = response.headers.get("x-request-id")
        self._refusal = (response.status_code, request_id)
        return TokenExpiredError(
            f"{self.provider} refused the token shipped from the driver (HTTP "
            f"{response.status_code}): it expired or was revoked, and this worker cannot mint "
            f"another; no further request is sent with it. {_RESUME}",
            expires_at=self.expires_at, status_code=response.status_code,
            provider=self.provider, request_id=request_id)


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


    def bearer(self) -> tuple[SecretStr, float | None]:
        """One bearer token for another process to use as it is, and its expiry (epoch
        seconds; None when neither the SDK nor the token says). OAuth credentials give the
        SDK's own token and expiry; others their ``Authorization: Bearer`` header, with the
        ``exp`` of a JWT. A ``ConfigurationError`` for credentials that are no bearer token
        (basic auth) or that are a personal access token (which travels as it is)."""
        auth_type = getattr(self.config, "auth_type", None) or "default"
        if auth_type == "pat":
            raise ConfigurationError(
                "ship_token=True mints a short-lived token on the driver, but databricks-sdk's "
                "credentials are a personal access token, which mints none: pass it as api_key= "
                "(DATABRICKS_TOKEN) without ship_token, and it travels to the workers as it is.")
        try:
            oauth = self.config.oauth_token()
        except Exception:  # not OAuth credentials: read the header instead
            oauth = None
        value = getattr(oauth, "access_token", None)
        if isinstance(value, str) and value and unprintable_at(value) is None:
            expiry = getattr(oauth, "expiry", None)
            return SecretStr(value), (expiry.timestamp() if isinstance(
                expiry, datetime.datetime) else None)
        token = self.mint()
        authorization = next((v.get_secret_value() for k, v in token.headers.items()
                              if k.lower() == "authorization"), "")
        bearer = _bearer_part(authorization)
        if not bearer:
            raise ConfigurationError(
                f"ship_token=True ships a bearer token, but databricks-sdk's {auth_type} "
                "credentials are not one.",
                hint="Use a service principal (DATABRICKS_CLIENT_ID, DATABRICKS_CLIENT_SECRET) "
                     "or a personal access token for the workers instead.")
        exp = jwt_claims(bearer).get("exp")
        return SecretStr(bearer), (float(exp) if isinstance(exp, (int, float))
                                   and not isinstance(exp, bool) else None)


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

    def _refusal(self, response: httpx.Response) -> SFModelsError | None:
        """What a 401 to a token the source cannot refresh is, if the source says."""
        if response.status_code != 401 or self.source.refreshable:
            return None
        return self.source.refused(response)

    def sync_auth_flow(self, request: httpx.Request) -> Generator[httpx.Request, httpx.Response,
                                                                   None]:
        token = self.get_token()
        self.source.check(token)
        response = yield self._authorize(request, token)
        if self._should_resend(response):
            yield self._authorize(request, self.get_token(stale=token.value))
        elif (refusal := self._refusal(response)) is not None:
            response.close()
            raise refusal

    async def async_auth_flow(self, request: httpx.Request) -> Any:
        token = await self.aget_token()
        self.source.check(token)
        response = yield self._authorize(request, token)
        if self._should_resend(response):
            yield self._authorize(request, await self.aget_token(stale=token.value))
        elif (refusal := self._refusal(response)) is not None:
            await response.aclose()
            raise refusal


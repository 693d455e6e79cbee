"""Run-time settings, counters, issued tokens, rate windows and fault draws.

All of it lives on the server's event loop; nothing here is touched from another thread.
"""

from __future__ import annotations

import base64
import dataclasses
import hashlib
import hmac
import json
import math
import random
import time
import uuid
from collections import deque
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from . import input_limits

FAULT_KINDS = ("429", "500", "503", "reset", "truncated", "hang")
DEFAULT_FAULT_KINDS = ("429", "500", "503", "reset", "truncated")
USAGE_MODES = ("every", "last", "none")

ROUTE_NAMES = (
    "salesforce.token",
    "salesforce.chat",
    "salesforce.generations",
    "salesforce.embeddings",
    "salesforce.feedback",
    "databricks.token",
    "databricks.invocations",
    "databricks.chat",
    "databricks.completions",
    "databricks.embeddings",
)

# Obviously fake credentials, fixed so that recordings made against the emulator are stable.
DEFAULT_SALESFORCE_CLIENT_ID = "emulator-salesforce-consumer-key"
DEFAULT_SALESFORCE_CLIENT_SECRET = "emulator-salesforce-consumer-secret"
DEFAULT_DATABRICKS_TOKEN = "dapi-emulator-personal-access-token"
DEFAULT_DATABRICKS_CLIENT_ID = "emulator-databricks-client-id"
DEFAULT_DATABRICKS_CLIENT_SECRET = "emulator-databricks-client-secret"


class SettingsError(ValueError):
    """A setting has an unknown name or an invalid value."""


def _number(name: str, value: Any, *, low: float = 0.0, high: float = math.inf) -> float:
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        raise SettingsError(f"{name} must be a number, got {value!r}")
    number = float(value)
    if not (low <= number <= high) or math.isnan(number):
        raise SettingsError(f"{name} must be between {low} and {high}, got {value!r}")
    return number


def _integer(name: str, value: Any, *, low: int = 0) -> int:
    if isinstance(value, bool) or not isinstance(value, int):
        raise SettingsError(f"{name} must be an integer, got {value!r}")
    if value < low:
        raise SettingsError(f"{name} must be at least {low}, got {value!r}")
    return value


def parse_fault_kinds(value: Any) -> tuple[str, ...]:
    """Accept ``"429,500"`` or a sequence of kinds; reject unknown kinds."""
    if isinstance(value, str):
        kinds = tuple(k.strip() for k in value.split(",") if k.strip())
    elif isinstance(value, Sequence):
        kinds = tuple(str(k).strip() for k in value)
    else:
        raise SettingsError(f"fault_kinds must be a list of kinds, got {value!r}")
    unknown = [k for k in kinds if k not in FAULT_KINDS]
    if unknown:
        raise SettingsError(
            f"unknown fault kind(s) {', '.join(unknown)}; choose from {', '.join(FAULT_KINDS)}"
        )
    if not kinds:
        raise SettingsError("fault_kinds must name at least one kind")
    return kinds


@dataclass
class Settings:
    """What can change while the server runs (``Emulator.configure``)."""

    latency_ms: float = 0.0
    stream_delay_ms: float = 0.0
    fault_rate: float = 0.0
    fault_kinds: tuple[str, ...] = DEFAULT_FAULT_KINDS
    retry_after_s: float = 0.0
    hang_s: float = 30.0
    token_ttl_s: float = 1800.0
    embedding_max_batch: int = 150
    rate_limit_rpm: int | None = None
    fault_token_routes: bool = False
    usage_mode: str = "every"
    max_inputs_before_429: dict[str, int] = field(default_factory=dict)

    def update(self, changes: Mapping[str, Any]) -> None:
        """Validate every change first, then apply them all (nothing applied on error)."""
        staged = dataclasses.replace(self)
        for key, value in changes.items():
            setattr(staged, key, _validate(key, value))
        for f in dataclasses.fields(self):
            setattr(self, f.name, getattr(staged, f.name))

    def as_dict(self) -> dict[str, Any]:
        data = dataclasses.asdict(self)
        data["fault_kinds"] = list(self.fault_kinds)
        return data


def _validate(key: str, value: Any) -> Any:
    if key in ("latency_ms", "stream_delay_ms", "retry_after_s", "hang_s"):
        return _number(key, value)
    if key == "token_ttl_s":
        return _number(key, value, low=0.0)
    if key == "fault_rate":
        return _number(key, value, high=1.0)
    if key == "fault_kinds":
        return parse_fault_kinds(value)
    if key == "embedding_max_batch":
        return _integer(key, value, low=1)
    if key == "rate_limit_rpm":
        return None if value is None else _integer(key, value, low=1)
    if key == "fault_token_routes":
        if not isinstance(value, bool):
            raise SettingsError(f"fault_token_routes must be true or false, got {value!r}")
        return value
    if key == input_limits.SETTING:
        return input_limits.validate(value)
    if key == "usage_mode":
        if value not in USAGE_MODES:
            raise SettingsError(f"usage_mode must be one of {', '.join(USAGE_MODES)}")
        return value
    names = ", ".join(f.name for f in dataclasses.fields(Settings))
    raise SettingsError(f"unknown setting {key!r}; known settings: {names}")


@dataclass(frozen=True)
class Credentials:
    salesforce_client_id: str = DEFAULT_SALESFORCE_CLIENT_ID
    salesforce_client_secret: str = DEFAULT_SALESFORCE_CLIENT_SECRET
    databricks_token: str = DEFAULT_DATABRICKS_TOKEN
    databricks_client_id: str = DEFAULT_DATABRICKS_CLIENT_ID
    databricks_client_secret: str = DEFAULT_DATABRICKS_CLIENT_SECRET


@dataclass(frozen=True)
class Config:
    """Everything the server is built from; ``reset`` returns to ``settings`` here."""

    settings: Settings = field(default_factory=Settings)
    credentials: Credentials = field(default_factory=Credentials)
    seed: int = 0

    def to_json(self) -> str:
        return json.dumps(
            {
                "settings": self.settings.as_dict(),
                "credentials": dataclasses.asdict(self.credentials),
                "seed": self.seed,
            }
        )

    @classmethod
    def from_json(cls, text: str) -> Config:
        data = json.loads(text)
        settings = Settings()
        settings.update(data.get("settings", {}))
        credentials = Credentials(**data.get("credentials", {}))
        return cls(settings=settings, credentials=credentials, seed=int(data.get("seed", 0)))


def _b64url(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode("ascii")


class State:
    """Mutable server state: settings, counters, tokens, rate windows and the fault RNG."""

    def __init__(self, config: Config) -> None:
        self.config = config
        self.settings = dataclasses.replace(config.settings)
        self.credentials = config.credentials
        self._signing_key = hashlib.sha256(f"sfmodels-emulator:{config.seed}".encode()).digest()
        self.salesforce_tokens: dict[str, float] = {}
        self.databricks_tokens: dict[str, float] = {}
        self.in_flight = 0
        self._zero()

    def _zero(self) -> None:
        self.requests: dict[str, int] = dict.fromkeys(ROUTE_NAMES, 0)
        self.tokens_minted = {"salesforce": 0, "databricks": 0}
        self.faults: dict[str, int] = dict.fromkeys(FAULT_KINDS, 0)
        self.rate_limited = 0
        self.input_limited = 0
        self.inputs: dict[str, int] = {"salesforce.embeddings": 0, "databricks.embeddings": 0}
        self.feedback: list[Any] = []
        self.max_in_flight = self.in_flight
        self.windows: dict[str, deque[float]] = {}
        self.rng = random.Random(self.config.seed)

    # ---- control -------------------------------------------------------------------------

    def reset(self) -> None:
        """Settings back to their start values; counters, feedback and rate windows cleared."""
        self.settings = dataclasses.replace(self.config.settings)
        self._zero()

    def expire_tokens(self) -> None:
        for tokens in (self.salesforce_tokens, self.databricks_tokens):
            for token in tokens:
                tokens[token] = 0.0

    def counters(self) -> dict[str, Any]:
        return {
            "requests": dict(self.requests),
            "tokens_minted": dict(self.tokens_minted),
            "faults": dict(self.faults),
            "rate_limited": self.rate_limited,
            "input_limited": self.input_limited,
            "inputs": dict(self.inputs),
            "feedback": len(self.feedback),
            "max_in_flight": self.max_in_flight,
            "in_flight": self.in_flight,
        }

    def count(self, route: str) -> None:
        self.requests[route] = self.requests.get(route, 0) + 1

    def enter(self) -> None:
        self.in_flight += 1
        if self.in_flight > self.max_in_flight:
            self.max_in_flight = self.in_flight

    def leave(self) -> None:
        self.in_flight -= 1

    # ---- tokens --------------------------------------------------------------------------

    def _jwt(self, claims: Mapping[str, Any]) -> tuple[str, str]:
        header = _b64url(b'{"alg":"HS256","typ":"JWT","kid":"sfmodels-emulator"}')
        payload = _b64url(json.dumps(claims, separators=(",", ":")).encode())
        signing_input = f"{header}.{payload}".encode("ascii")
        signature = hmac.new(self._signing_key, signing_input, hashlib.sha256).digest()
        return f"{header}.{payload}.{_b64url(signature)}", base64.b64encode(signature).decode()

    def mint_salesforce(self, instance_url: str) -> dict[str, str]:
        """A token response body shaped like Salesforce's client-credentials answer."""
        now = time.time()
        ttl = self.settings.token_ttl_s
        expires = _expiry(now, ttl)
        claims = {
            "iss": instance_url,
            "sub": "emulator-run-as-user",
            "aud": "api",
            "scp": "sfap_api api",
            "iat": int(now),
            "exp": expires,
            "jti": uuid.uuid4().hex,
        }
        token, signature = self._jwt(claims)
        self.salesforce_tokens[token] = expires
        self.tokens_minted["salesforce"] += 1
        return {
            "access_token": token,
            "signature": signature,
            "token_format": "jwt",
            "scope": "sfap_api api",
            "instance_url": instance_url,
            "id": f"{instance_url}/id/00DEM0000000001EAA/005EM0000000001AAA",
            "token_type": "Bearer",
            "issued_at": str(int(now * 1000)),
            "api_instance_url": instance_url,
        }

    def mint_databricks(self, scope: str) -> dict[str, Any]:
        now = time.time()
        ttl = self.settings.token_ttl_s
        expires = _expiry(now, ttl)
        claims = {
            "client_id": self.credentials.databricks_client_id,
            "scope": scope,
            "iat": int(now),
            "exp": expires,
            "jti": uuid.uuid4().hex,
        }
        token, _ = self._jwt(claims)
        self.databricks_tokens[token] = now + ttl
        self.tokens_minted["databricks"] += 1
        return {
            "access_token": token,
            "token_type": "Bearer",
            "scope": scope,
            "expires_in": int(ttl) if ttl == int(ttl) else ttl,
        }

    def salesforce_token_valid(self, token: str) -> bool:
        expiry = self.salesforce_tokens.get(token)
        return expiry is not None and expiry > time.time()

    def databricks_token_valid(self, token: str) -> bool:
        if token == self.credentials.databricks_token:
            return True
        expiry = self.databricks_tokens.get(token)
        return expiry is not None and expiry > time.time()

    # ---- faults and limits ---------------------------------------------------------------

    def draw_fault(self) -> str | None:
        """With probability ``fault_rate``, a fault kind drawn from ``fault_kinds``."""
        rate = self.settings.fault_rate
        if rate <= 0.0:
            return None
        if self.rng.random() >= rate:
            return None
        kind = self.rng.choice(self.settings.fault_kinds)
        self.faults[kind] = self.faults.get(kind, 0) + 1
        return kind

    def count_inputs(self, provider: str, count: int) -> None:
        """Texts received in one embeddings request."""
        key = f"{provider}.embeddings"
        self.inputs[key] = self.inputs.get(key, 0) + count

    def inputs_refused(self, name: str, count: int) -> int | None:
        """The limit of ``max_inputs_before_429`` that ``count`` inputs break, or None."""
        limit = input_limits.over_limit(self.settings.max_inputs_before_429, name, count)
        if limit is not None:
            self.input_limited += 1
        return limit

    def retry_after(self) -> str:
        return str(math.ceil(self.settings.retry_after_s))

    def rate_check(self, key: str) -> int | None:
        """Record a request for ``key``; return seconds to wait if it is over the limit."""
        limit = self.settings.rate_limit_rpm
        if limit is None:
            return None
        now = time.monotonic()
        window = self.windows.get(key)
        if window is None:
            window = self.windows[key] = deque()
        while window and window[0] <= now - 60.0:
            window.popleft()
        if len(window) >= limit:
            self.rate_limited += 1
            return max(1, math.ceil(window[0] + 60.0 - now))
        window.append(now)
        return None


def _expiry(now: float, ttl: float) -> int | float:
    """When a token minted ``now`` expires, as its claim says and as the emulator enforces.

    Whole seconds, as the real services send them; a lifetime with a fraction (short test
    lifetimes) keeps it, so the token dies exactly when the claim says (RFC 7519 allows
    non-integer dates)."""
    return math.ceil(now) + int(ttl) if ttl == int(ttl) else round(now + ttl, 3)

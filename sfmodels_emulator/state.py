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

from .catalogue import DATABRICKS_SHAPES
from .limits import Limits, RateWindows

FAULT_KINDS = ("423", "429", "500", "503", "reset", "truncated", "hang")
DEFAULT_FAULT_KINDS = ("429", "500", "503", "reset", "truncated")
#: Which stream chunks carry usage: cumulative on every chunk (Llama), on the last content chunk,
#: none, on every chunk with completion_tokens null until the last (Claude), alone in a final
#: chunk with "choices": [] (GPT-5), or like that only when the request sets
#: stream_options.include_usage (external models), else none.
USAGE_MODES = ("every", "last", "none", "null_until_last", "final_chunk", "on_request")
STREAM_FORMATS = ("sse", "json")
ERROR_SHAPES = ("plain", "external_model", "openai", "details")
#: What a Databricks embeddings endpoint does with ``encoding_format: "base64"``: honors it
#: (base64 of little-endian float32, as OpenAI-compatible servers do), ignores it (lists of
#: floats anyway), or rejects it (400 naming the field).
EMBEDDING_BASE64 = ("honor", "ignore", "reject")
FEEDBACK_BODIES = ("json", "empty", "text")
#: Token lifetimes of each service when ``token_ttl_s`` is not set.
SALESFORCE_TOKEN_TTL_S = 1800.0
#: API request bodies kept for :meth:`State.recorded_requests` (the oldest dropped first).
RECORDED_REQUESTS = 32
DATABRICKS_TOKEN_TTL_S = 3600.0
#: Settings that ``model_settings`` may set for one model or endpoint.
PER_MODEL_SETTINGS = (
    "usage_mode",
    "tool_call_index",
    "hostile",
    "hostile_trickle_s",
    "hostile_endless_bytes",
    "stream_format",
    "reasoning",
    "error_shape",
    "embedding_base64",
    "embedding_max_batch",
    "embedding_max_inputs_429",
    "extra_fields",
    "rate_limit_rpm",
    "rate_limit_rps",
    "rate_limit_rph",
    "rate_limit_tpm",
    "rate_limit_tph",
    "rate_limit_retry_after",
)

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
    "databricks.responses",
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
    #: Both services' token lifetime; None: Salesforce 30 minutes, Databricks one hour.
    token_ttl_s: float | None = None
    embedding_max_batch: int = 150
    rate_limit_rpm: int | None = None
    #: Requests per second per model or endpoint (Databricks' workspace QPS limit).
    rate_limit_rps: int | None = None
    fault_token_routes: bool = False
    usage_mode: str = "every"
    #: The next N API requests get a fault (kinds taken in turn from fault_kinds).
    fault_next: int = 0
    # -- hostile mode (see sfmodels_emulator.hostile; each also settable per model or endpoint)
    #: A named broken wire shape for every answer it applies to, or None (the default).
    hostile: str | None = None
    #: ``trickle``: seconds between two bytes of the body.
    hostile_trickle_s: float = 0.2
    #: ``endless_line``: bytes sent before the body gives up and ends.
    hostile_endless_bytes: int = 256 * 1024 * 1024
    # -- real-world shapes (each also settable per model or endpoint in model_settings)
    tool_call_index: bool = True
    stream_format: str = "sse"
    reasoning: bool = False
    error_shape: str = "plain"
    embedding_base64: str = "honor"
    embedding_max_inputs_429: int | None = None
    extra_fields: bool = False
    feedback_body: str = "json"
    rate_limit_rph: int | None = None
    rate_limit_tpm: int | None = None
    rate_limit_tph: int | None = None
    rate_limit_retry_after: bool = True
    model_settings: dict[str, dict[str, Any]] = field(default_factory=dict)
    configured_models: dict[str, str] = field(default_factory=dict)
    #: Inputs longer than this many tokens (a prompt, or one text to embed) are refused with 400.
    max_input_tokens: int | None = None
    #: Inputs containing one of these terms (any case) are refused as against content policy.
    blocked_terms: tuple[str, ...] = ()

    def update(self, changes: Mapping[str, Any]) -> None:
        """Validate every change first, then apply them all (nothing applied on error)."""
        staged = dataclasses.replace(self)
        staged.model_settings = {k: dict(v) for k, v in self.model_settings.items()}
        staged.configured_models = dict(self.configured_models)
        for key, value in changes.items():
            setattr(staged, key, _validate(key, value))
        for f in dataclasses.fields(self):
            setattr(self, f.name, getattr(staged, f.name))

    def as_dict(self) -> dict[str, Any]:
        data = dataclasses.asdict(self)
        data["fault_kinds"] = list(self.fault_kinds)
        data["blocked_terms"] = list(self.blocked_terms)
        return data

    def copy(self) -> Settings:
        copied = Settings()
        copied.update(self.as_dict())
        return copied


def _choice(key: str, value: Any, choices: Sequence[str]) -> str:
    if value not in choices:
        raise SettingsError(f"{key} must be one of {', '.join(choices)}, got {value!r}")
    return str(value)


def _flag(key: str, value: Any) -> bool:
    if not isinstance(value, bool):
        raise SettingsError(f"{key} must be true or false, got {value!r}")
    return value


def _model_settings(value: Any) -> dict[str, dict[str, Any]]:
    if not isinstance(value, Mapping):
        raise SettingsError("model_settings must map model or endpoint names to settings")
    out: dict[str, dict[str, Any]] = {}
    for name, changes in value.items():
        if not isinstance(name, str) or not name:
            raise SettingsError("model_settings keys must be model or endpoint names")
        if not isinstance(changes, Mapping):
            raise SettingsError(f"model_settings[{name!r}] must be an object of settings")
        for key in changes:
            if key not in PER_MODEL_SETTINGS:
                raise SettingsError(
                    f"{key!r} cannot be set per model; per-model settings: "
                    + ", ".join(PER_MODEL_SETTINGS))
        out[name] = {key: _validate(key, item) for key, item in changes.items()}
    return out


def _configured_models(value: Any) -> dict[str, str]:
    from .catalogue import SALESFORCE_MODELS

    if not isinstance(value, Mapping):
        raise SettingsError("configured_models must map API names to catalogue model names")
    for name, base in value.items():
        if not isinstance(name, str) or not name.strip() or "/" in name:
            raise SettingsError(f"configured model name {name!r} is not an API name")
        if base not in SALESFORCE_MODELS:
            raise SettingsError(f"configured model {name!r} must be based on a catalogue model, "
                                f"got {base!r}")
    return {str(k): str(v) for k, v in value.items()}


def _validate(key: str, value: Any) -> Any:
    if key in ("latency_ms", "stream_delay_ms", "retry_after_s", "hang_s"):
        return _number(key, value)
    if key == "token_ttl_s":
        return None if value is None else _number(key, value, low=0.0)
    if key == "fault_rate":
        return _number(key, value, high=1.0)
    if key == "fault_kinds":
        return parse_fault_kinds(value)
    if key == "embedding_max_batch":
        return _integer(key, value, low=1)
    if key in ("rate_limit_rpm", "rate_limit_rph", "rate_limit_tpm", "rate_limit_tph",
               "embedding_max_inputs_429", "rate_limit_rps"):
        return None if value is None else _integer(key, value, low=1)
    if key in ("fault_token_routes", "tool_call_index", "reasoning", "extra_fields",
               "rate_limit_retry_after"):
        return _flag(key, value)
    if key == "fault_next":
        return _integer(key, value, low=0)
    if key == "hostile":
        return _hostile(value)
    if key == "hostile_trickle_s":
        return _number(key, value)
    if key == "hostile_endless_bytes":
        return _integer(key, value, low=1)
    if key == "max_input_tokens":
        return None if value is None else _integer(key, value, low=1)
    if key == "blocked_terms":
        return _terms(value)
    if key == "usage_mode":
        return _choice(key, value, USAGE_MODES)
    if key == "stream_format":
        return _choice(key, value, STREAM_FORMATS)
    if key == "error_shape":
        return _choice(key, value, ERROR_SHAPES)
    if key == "embedding_base64":
        return _choice(key, value, EMBEDDING_BASE64)
    if key == "feedback_body":
        return _choice(key, value, FEEDBACK_BODIES)
    if key == "model_settings":
        return _model_settings(value)
    if key == "configured_models":
        return _configured_models(value)
    names = ", ".join(f.name for f in dataclasses.fields(Settings))
    raise SettingsError(f"unknown setting {key!r}; known settings: {names}")


def _hostile(value: Any) -> str | None:
    from .hostile import HOSTILE_CASES

    if value is None:
        return None
    return _choice("hostile", value, HOSTILE_CASES)


def _terms(value: Any) -> tuple[str, ...]:
    if isinstance(value, str) or not isinstance(value, Sequence) or not all(
            isinstance(term, str) and term.strip() for term in value):
        raise SettingsError(f"blocked_terms must be a list of non-empty strings, got {value!r}")
    return tuple(term.strip().lower() for term in value)


@dataclass(frozen=True)
class Credentials:
    salesforce_client_id: str = DEFAULT_SALESFORCE_CLIENT_ID
    salesforce_client_secret: str = DEFAULT_SALESFORCE_CLIENT_SECRET
    databricks_token: str = DEFAULT_DATABRICKS_TOKEN
    databricks_client_id: str = DEFAULT_DATABRICKS_CLIENT_ID
    databricks_client_secret: str = DEFAULT_DATABRICKS_CLIENT_SECRET
    #: Workload identity JWTs the token exchange accepts; empty: any well-formed, unexpired one.
    databricks_oidc_tokens: tuple[str, ...] = ()


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
        given = dict(data.get("credentials", {}))
        given["databricks_oidc_tokens"] = tuple(given.get("databricks_oidc_tokens", ()))
        credentials = Credentials(**given)
        return cls(settings=settings, credentials=credentials, seed=int(data.get("seed", 0)))


def _b64url(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode("ascii")


class State:
    """Mutable server state: settings, counters, tokens, rate windows and the fault RNG."""

    def __init__(self, config: Config) -> None:
        self.config = config
        self.settings = config.settings.copy()
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
        #: Feedback stored by its id: a retried submission is stored once.
        self.feedback: dict[str, Any] = {}
        self.feedback_repeats = 0
        self.input_limited = 0
        self.inputs: dict[str, int] = {"salesforce.embeddings": 0, "databricks.embeddings": 0}
        self.max_in_flight = self.in_flight
        self.windows = RateWindows()
        self.rng = random.Random(self.config.seed)
        self._next_faults = 0
        # When each request arrived (seconds since the last reset) and on which route: enough
        # to check a client's pacing over any window. Bounded, oldest dropped first.
        self.started = time.monotonic()
        self.arrivals: deque[tuple[float, str]] = deque(maxlen=100_000)
        # The bodies of the last API requests (token requests, which carry secrets, are not
        # kept), as they came: enough to check what a client sent.
        self.bodies: deque[tuple[str, bytes]] = deque(maxlen=RECORDED_REQUESTS)

    # ---- control -------------------------------------------------------------------------

    def reset(self) -> None:
        """Settings back to their start values; counters, feedback and rate windows cleared."""
        self.settings = self.config.settings.copy()
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
            "feedback_repeats": self.feedback_repeats,
            "max_in_flight": self.max_in_flight,
            "in_flight": self.in_flight,
        }

    def count(self, route: str) -> None:
        self.requests[route] = self.requests.get(route, 0) + 1
        self.arrivals.append((round(time.monotonic() - self.started, 6), route))

    def keep(self, route: str, body: bytes) -> None:
        self.bodies.append((route, body))

    def recorded_requests(self) -> list[dict[str, Any]]:
        """The last API requests, oldest first: the route and the body (JSON when it is)."""
        recorded = []
        for route, body in self.bodies:
            try:
                value: Any = json.loads(body)
            except ValueError:
                value = body.decode("utf-8", "replace")
            recorded.append({"route": route, "body": value})
        return recorded

    def enter(self) -> None:
        self.in_flight += 1
        if self.in_flight > self.max_in_flight:
            self.max_in_flight = self.in_flight

    def leave(self) -> None:
        self.in_flight -= 1

    def setting(self, key: str, target: str | None = None) -> Any:
        """A setting for one model or endpoint: its ``model_settings`` entry, else the shape the
        catalogue gives that endpoint, else the global setting."""
        if target is not None:
            own = self.settings.model_settings.get(target)
            if own is not None and key in own:
                return own[key]
            shape = DATABRICKS_SHAPES.get(target)
            if shape is not None and key in shape:
                return shape[key]
        return getattr(self.settings, key)

    def store_feedback(self, body: dict[str, Any]) -> bool:
        """Store feedback once per id; False when that id was already stored."""
        key = str(body.get("id"))
        if key in self.feedback:
            self.feedback_repeats += 1
            return False
        self.feedback[key] = body
        return True

    def token_ttl(self, provider: str) -> float:
        ttl = self.settings.token_ttl_s
        if ttl is not None:
            return ttl
        return SALESFORCE_TOKEN_TTL_S if provider == "salesforce" else DATABRICKS_TOKEN_TTL_S

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
        ttl = self.token_ttl("salesforce")
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

    def mint_databricks(self, scope: str, subject: str | None = None) -> dict[str, Any]:
        """A token response body shaped like Databricks' ``/oidc/v1/token`` answer; ``subject``:
        the ``sub`` of the workload identity JWT it was exchanged for."""
        now = time.time()
        ttl = self.token_ttl("databricks")
        expires = _expiry(now, ttl)
        claims = {
            "client_id": self.credentials.databricks_client_id,
            **({"sub": subject} if subject is not None else {}),
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
        """A fault for the next API request: one of the next ``fault_next`` (kinds in turn),
        else with probability ``fault_rate`` a kind drawn from ``fault_kinds``."""
        kinds = self.settings.fault_kinds
        if self.settings.fault_next > 0:
            self.settings.fault_next -= 1
            kind = kinds[self._next_faults % len(kinds)]
            self._next_faults += 1
        else:
            rate = self.settings.fault_rate
            if rate <= 0.0 or self.rng.random() >= rate:
                return None
            kind = self.rng.choice(kinds)
        self.faults[kind] = self.faults.get(kind, 0) + 1
        return kind

    def count_inputs(self, provider: str, count: int) -> None:
        """Texts received in one embeddings request."""
        key = f"{provider}.embeddings"
        self.inputs[key] = self.inputs.get(key, 0) + count

    def inputs_refused(self, name: str, count: int) -> int | None:
        """The ``embedding_max_inputs_429`` of model or endpoint ``name`` when ``count`` inputs
        are more than it, else None: such a request is answered 429, every time, as small
        Databricks workspaces do for a batch over their token limit (seen at 16 inputs)."""
        limit: int | None = self.setting("embedding_max_inputs_429", name)
        if limit is None or count <= limit:
            return None
        self.input_limited += 1
        return limit

    def retry_after(self) -> str:
        return str(math.ceil(self.settings.retry_after_s))

    def limits(self, key: str) -> Limits:
        return Limits(
            requests_per_second=self.setting("rate_limit_rps", key),
            requests_per_minute=self.setting("rate_limit_rpm", key),
            requests_per_hour=self.setting("rate_limit_rph", key),
            tokens_per_minute=self.setting("rate_limit_tpm", key),
            tokens_per_hour=self.setting("rate_limit_tph", key),
        )

    def rate_check(self, key: str) -> int | None:
        """Record a request for ``key`` (a model, an endpoint or ``feedback``); return the seconds
        to wait if it is over a request or token limit (it is then not recorded)."""
        wait = self.windows.admit(key, self.limits(key), time.monotonic())
        if wait is not None:
            self.rate_limited += 1
        return wait

    def charge_tokens(self, key: str, tokens: int) -> None:
        """Count the tokens of an answered request against ``key``'s token windows."""
        self.windows.charge(key, tokens, self.limits(key), time.monotonic())


def _expiry(now: float, ttl: float) -> int | float:
    """When a token minted ``now`` expires, as its claim says and as the emulator enforces.

    Whole seconds, as the real services send them; a lifetime with a fraction (short test
    lifetimes) keeps it, so the token dies exactly when the claim says (RFC 7519 allows
    non-integer dates)."""
    return math.ceil(now) + int(ttl) if ttl == int(ttl) else round(now + ttl, 3)


__all__ = [
    "DATABRICKS_TOKEN_TTL_S",
    "DEFAULT_DATABRICKS_CLIENT_ID",
    "DEFAULT_DATABRICKS_CLIENT_SECRET",
    "DEFAULT_DATABRICKS_TOKEN",
    "DEFAULT_FAULT_KINDS",
    "DEFAULT_SALESFORCE_CLIENT_ID",
    "DEFAULT_SALESFORCE_CLIENT_SECRET",
    "EMBEDDING_BASE64",
    "ERROR_SHAPES",
    "FAULT_KINDS",
    "FEEDBACK_BODIES",
    "PER_MODEL_SETTINGS",
    "RECORDED_REQUESTS",
    "ROUTE_NAMES",
    "SALESFORCE_TOKEN_TTL_S",
    "STREAM_FORMATS",
    "USAGE_MODES",
    "Config",
    "Credentials",
    "Settings",
    "SettingsError",
    "State",
    "parse_fault_kinds",
]

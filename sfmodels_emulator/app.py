"""Routing, per-request bookkeeping (counters, latency, faults, hostile mode) and the control
routes."""

from __future__ import annotations

import asyncio
import json
import urllib.parse
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from . import hostile
from .common import json_response
from .databricks import DatabricksApi
from .responses import RESPONSES_ENDPOINTS, RESPONSES_PATH, ResponsesApi
from .salesforce import API_PREFIX, SalesforceApi
from .server import Abort, Hang, HttpServer, Reply, Request, Response, StreamResponse, Truncate
from .state import Config, SettingsError, State

CONTROL_PREFIX = "/_emulator/"
LOGIN_PREFIX = "/login"
_MODELS_PREFIX = API_PREFIX + "/models/"
_ENDPOINTS_PREFIX = "/serving-endpoints/"
_INVOCATIONS_SUFFIX = "/invocations"


@dataclass(frozen=True)
class Route:
    name: str
    kind: str  # "api" or "token"
    provider: str  # "salesforce" or "databricks"
    call: Callable[[Request], Reply]


def public_url(host: str, port: int) -> str:
    """The URL clients use: wildcard binds are reached through loopback."""
    if host in ("", "0.0.0.0"):
        host = "127.0.0.1"
    elif host == "::":
        host = "::1"
    if ":" in host:
        host = f"[{host}]"
    return f"http://{host}:{port}"


class EmulatorApp:
    """The request handler behind :class:`~.server.HttpServer`."""

    def __init__(self, config: Config) -> None:
        self.state = State(config)
        self.url = ""
        self.salesforce = SalesforceApi(self.state, lambda: self.url)
        self.databricks = DatabricksApi(self.state)
        self.responses = ResponsesApi(self.databricks, lambda: self.url)
        #: Answers each hostile case rebuilt since the last reset.
        self.hostile_served: dict[str, int] = {}
        sf, db, rs = self.salesforce, self.databricks, self.responses
        self._static: dict[str, Route] = {
            "/services/oauth2/token": Route("salesforce.token", "token", "salesforce", sf.token),
            LOGIN_PREFIX + "/services/oauth2/token": Route(
                "salesforce.token", "token", "salesforce", sf.login_token
            ),
            API_PREFIX + "/feedback": Route(
                "salesforce.feedback", "api", "salesforce", sf.feedback
            ),
            "/oidc/v1/token": Route("databricks.token", "token", "databricks", db.token),
            "/serving-endpoints/chat/completions": Route(
                "databricks.chat", "api", "databricks", rs.chat_completions
            ),
            RESPONSES_PATH: Route("databricks.responses", "api", "databricks", rs.responses),
            "/serving-endpoints/completions": Route(
                "databricks.completions",
                "api",
                "databricks",
                lambda r: db.openai(r, "completions"),
            ),
            "/serving-endpoints/embeddings": Route(
                "databricks.embeddings",
                "api",
                "databricks",
                lambda r: db.openai(r, "embeddings"),
            ),
        }
        self._control: dict[tuple[str, str], Callable[[Request], Response]] = {
            ("GET", "health"): lambda r: json_response(200, {"status": "ok"}),
            ("GET", "counters"): lambda r: json_response(
                200, {**self.state.counters(), "hostile": dict(self.hostile_served)}
            ),
            ("GET", "feedback"): lambda r: json_response(200, list(self.state.feedback.values())),
            ("GET", "arrivals"): lambda r: json_response(200, list(self.state.arrivals)),
            ("GET", "requests"): lambda r: json_response(200, self.state.recorded_requests()),
            ("GET", "config"): lambda r: json_response(200, self.state.settings.as_dict()),
            ("POST", "config"): self._configure,
            ("POST", "reset"): self._reset,
            ("POST", "expire-tokens"): self._expire_tokens,
            ("POST", "salesforce-token"): lambda r: json_response(
                200, self.state.mint_salesforce(self.url)
            ),
        }

    # ---- routing -------------------------------------------------------------------------

    def match(self, path: str) -> Route | None:
        if len(path) > 1 and path.endswith("/"):
            path = path.rstrip("/")
        route = self._static.get(path)
        if route is not None:
            return route
        if path.startswith(_MODELS_PREFIX):
            model, sep, operation = path[len(_MODELS_PREFIX) :].partition("/")
            if not sep or not model:
                return None
            model = urllib.parse.unquote(model)
            sf = self.salesforce
            if operation == "chat-generations":
                return Route("salesforce.chat", "api", "salesforce", lambda r: sf.chat(r, model))
            if operation == "generations":
                return Route(
                    "salesforce.generations",
                    "api",
                    "salesforce",
                    lambda r: sf.generations(r, model),
                )
            if operation == "embeddings":
                return Route(
                    "salesforce.embeddings", "api", "salesforce", lambda r: sf.embeddings(r, model)
                )
            return None
        if path.startswith(_ENDPOINTS_PREFIX) and path.endswith(_INVOCATIONS_SUFFIX):
            endpoint = path[len(_ENDPOINTS_PREFIX) : -len(_INVOCATIONS_SUFFIX)]
            if endpoint and "/" not in endpoint:
                endpoint = urllib.parse.unquote(endpoint)
                db = self.databricks
                if endpoint in RESPONSES_ENDPOINTS:
                    return Route("databricks.invocations", "api", "databricks",
                                 lambda r: self.responses.invocations(r, endpoint))
                return Route(
                    "databricks.invocations",
                    "api",
                    "databricks",
                    lambda r: db.invocations(r, endpoint),
                )
        return None

    def _miss(self, request: Request) -> Response:
        path = request.path
        if path.startswith("/einstein/") or path.startswith(LOGIN_PREFIX + "/"):
            return self.salesforce.not_found(request)
        if path.startswith(_ENDPOINTS_PREFIX) or path.startswith("/api/"):
            return self.databricks.not_found(request)
        return json_response(
            404, {"error": "not_found", "message": f"No route for {request.method} {path}"}
        )

    # ---- handler protocol ----------------------------------------------------------------

    async def handle(self, request: Request) -> Reply:
        if request.path.startswith(CONTROL_PREFIX):
            return self._handle_control(request)
        discovery = self.responses.discovery(request)
        if discovery is not None:
            return discovery
        route = self.match(request.path)
        if route is None:
            return self._miss(request)
        if request.method != "POST":
            api = self.salesforce if route.provider == "salesforce" else self.databricks
            return api.method_not_allowed(request)
        state = self.state
        state.count(route.name)
        if route.kind == "api":
            state.keep(route.name, request.body)
        state.enter()
        request.route = route.name
        settings = state.settings
        if route.kind == "api" and settings.latency_ms > 0:
            await asyncio.sleep(settings.latency_ms / 1000.0)
        reply: Reply | None = None
        if route.kind == "api" or settings.fault_token_routes:
            kind = state.draw_fault()
            if kind is not None:
                reply = self._fault(kind, route, request)
        if reply is None:
            reply = self._hostile(route, request, route.call(request))
        if route.provider == "databricks" and route.kind == "api":
            reply = self.databricks.shape_error(reply, request)
        return reply

    def finished(self, request: Request) -> None:
        self.state.leave()

    def _fault(self, kind: str, route: Route, request: Request) -> Reply:
        if kind == "reset":
            return Abort()
        if kind == "hang":
            return Hang(self.state.settings.hang_s)
        if kind == "truncated":
            reply = route.call(request)
            if isinstance(reply, (Response, StreamResponse)):
                return Truncate(reply)
            return reply
        if route.kind == "token":
            return self._token_fault(kind)
        api = self.salesforce if route.provider == "salesforce" else self.databricks
        return api.fault(kind)

    def _hostile(self, route: Route, request: Request, reply: Reply) -> Reply:
        """``reply`` as the ``hostile`` case in force for this route and model says."""
        settings = self.state.settings
        if settings.hostile is None and not any(
            "hostile" in own for own in settings.model_settings.values()
        ):
            return reply
        target = self._target(route, request)
        case: str | None = self.state.setting("hostile", target)
        if case is None:
            return reply
        context = hostile.Context(
            route=route.name,
            state=self.state,
            trickle_s=self.state.setting("hostile_trickle_s", target),
            endless_bytes=self.state.setting("hostile_endless_bytes", target),
        )
        rebuilt = hostile.apply(case, reply, route.kind, context)
        if rebuilt is None:
            return reply
        self.hostile_served[case] = self.hostile_served.get(case, 0) + 1
        return rebuilt

    def _target(self, route: Route, request: Request) -> str | None:
        """The model or endpoint an API request is for (token routes: None)."""
        if route.kind != "api":
            return None
        if route.provider == "databricks":
            return self.databricks.endpoint_name(request)
        if request.path.startswith(_MODELS_PREFIX):
            model = request.path[len(_MODELS_PREFIX) :].partition("/")[0]
            return urllib.parse.unquote(model)
        return None

    def _token_fault(self, kind: str) -> Response:
        retry = (("retry-after", self.state.retry_after()),)
        if kind == "429":
            return json_response(
                429,
                {"error": "rate_limit_exceeded", "error_description": "too many token requests"},
                retry,
            )
        if kind == "503":
            return json_response(
                503,
                {"error": "temporarily_unavailable", "error_description": "service unavailable"},
                retry,
            )
        return json_response(
            500, {"error": "server_error", "error_description": "internal server error"}
        )

    # ---- control routes ------------------------------------------------------------------

    def _handle_control(self, request: Request) -> Response:
        action = request.path[len(CONTROL_PREFIX) :].strip("/")
        handler = self._control.get((request.method, action))
        if handler is None:
            known = any(a == action for _, a in self._control)
            status = 405 if known else 404
            return json_response(
                status,
                {
                    "error": "not_found" if status == 404 else "method_not_allowed",
                    "message": f"No control route {request.method} {request.path}",
                },
            )
        return handler(request)

    def _configure(self, request: Request) -> Response:
        try:
            changes: Any = json.loads(request.body or b"{}")
            if not isinstance(changes, dict):
                raise SettingsError("settings must be a JSON object")
            self.state.settings.update(changes)
        except (SettingsError, ValueError) as exc:
            return json_response(400, {"error": "invalid_setting", "message": str(exc)})
        return json_response(200, self.state.settings.as_dict())

    def _reset(self, request: Request) -> Response:
        self.state.reset()
        self.hostile_served.clear()
        return json_response(200, {"status": "reset"})

    def _expire_tokens(self, request: Request) -> Response:
        self.state.expire_tokens()
        return json_response(200, {"status": "expired"})


class EmulatorService:
    """The app and its HTTP server, run on the current event loop."""

    def __init__(self, config: Config) -> None:
        self.app = EmulatorApp(config)
        self.server = HttpServer(self.app)
        self.url = ""

    async def start(self, host: str, port: int) -> str:
        bound = await self.server.start(host, port)
        self.url = self.app.url = public_url(host, bound)
        return self.url

    async def close(self) -> None:
        await self.server.close()


__all__ = [
    "CONTROL_PREFIX",
    "LOGIN_PREFIX",
    "EmulatorApp",
    "EmulatorService",
    "Route",
    "public_url",
]

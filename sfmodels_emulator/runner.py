"""``Emulator``: start the server in a background thread or a child process and control it.

Every control method goes through the server's ``/_emulator/...`` HTTP routes, so the two modes
behave the same way.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import queue
import signal
import subprocess
import sys
import threading
import urllib.error
import urllib.request
from collections.abc import Mapping, Sequence
from pathlib import Path
from types import TracebackType
from typing import Any, Literal

from .app import EmulatorService
from .salesforce import API_PREFIX
from .state import (
    DEFAULT_DATABRICKS_CLIENT_ID,
    DEFAULT_DATABRICKS_CLIENT_SECRET,
    DEFAULT_DATABRICKS_TOKEN,
    DEFAULT_FAULT_KINDS,
    DEFAULT_SALESFORCE_CLIENT_ID,
    DEFAULT_SALESFORCE_CLIENT_SECRET,
    Config,
    Credentials,
    Settings,
)

Mode = Literal["thread", "process"]

_START_TIMEOUT_S = 20.0
_STOP_TIMEOUT_S = 10.0
_CONTROL_TIMEOUT_S = 30.0


def environment(url: str, credentials: Credentials) -> dict[str, str]:
    """The environment variables that point every client at an emulator at ``url``."""
    return {
        "SALESFORCE_DOMAIN": url,
        "SALESFORCE_CLIENT_ID": credentials.salesforce_client_id,
        "SALESFORCE_CLIENT_SECRET": credentials.salesforce_client_secret,
        "DATABRICKS_HOST": url,
        "DATABRICKS_TOKEN": credentials.databricks_token,
    }


class _ThreadRunner:
    """Runs the asyncio server on its own event loop in a daemon thread."""

    def __init__(self, config: Config, host: str, port: int) -> None:
        self._config = config
        self._host = host
        self._port = port
        self._thread: threading.Thread | None = None
        self._loop: asyncio.AbstractEventLoop | None = None
        self._stop: asyncio.Event | None = None
        self._error: BaseException | None = None
        self._ready = threading.Event()
        self.url = ""

    def start(self) -> str:
        self._thread = threading.Thread(target=self._run, name="sfmodels-emulator", daemon=True)
        self._thread.start()
        if not self._ready.wait(_START_TIMEOUT_S):
            raise RuntimeError("the emulator did not start in time")
        if self._error is not None:
            raise RuntimeError(f"the emulator could not start: {self._error}") from self._error
        return self.url

    def _run(self) -> None:
        loop = asyncio.new_event_loop()
        asyncio.set_event_loop(loop)
        service = EmulatorService(self._config)
        try:
            self.url = loop.run_until_complete(service.start(self._host, self._port))
            self._stop = asyncio.Event()
            self._loop = loop
        except BaseException as exc:
            self._error = exc
            self._ready.set()
            loop.close()
            return
        self._ready.set()
        try:
            loop.run_until_complete(self._stop.wait())
            loop.run_until_complete(service.close())
        finally:
            pending = asyncio.all_tasks(loop)
            for task in pending:
                task.cancel()
            if pending:
                loop.run_until_complete(asyncio.gather(*pending, return_exceptions=True))
            loop.run_until_complete(loop.shutdown_asyncgens())
            loop.close()

    def stop(self) -> None:
        if self._loop is not None and self._stop is not None:
            with contextlib.suppress(RuntimeError):  # the loop is already closed
                self._loop.call_soon_threadsafe(self._stop.set)
        if self._thread is not None:
            self._thread.join(_STOP_TIMEOUT_S)
        self._thread = None
        self._loop = None


class _ProcessRunner:
    """Runs ``python -m sfmodels_emulator`` and reads its URL from the first stdout line."""

    def __init__(self, config: Config, host: str, port: int) -> None:
        self._config = config
        self._host = host
        self._port = port
        self._process: subprocess.Popen[str] | None = None
        self._lines: queue.Queue[str | None] = queue.Queue()

    def start(self) -> str:
        package_root = str(Path(__file__).resolve().parents[2])
        env = dict(os.environ)
        env["PYTHONPATH"] = os.pathsep.join(
            p for p in (package_root, env.get("PYTHONPATH", "")) if p
        )
        env["PYTHONUNBUFFERED"] = "1"
        command = [
            sys.executable,
            "-m",
            "sfmodels_emulator",
            "--host",
            self._host,
            "--port",
            str(self._port),
            "--config-json",
            self._config.to_json(),
        ]
        self._process = subprocess.Popen(
            command,
            stdin=subprocess.DEVNULL,
            stdout=subprocess.PIPE,
            env=env,
            text=True,
            encoding="utf-8",
        )
        threading.Thread(target=self._drain, name="sfmodels-emulator-output", daemon=True).start()
        try:
            line = self._lines.get(timeout=_START_TIMEOUT_S)
        except queue.Empty:
            line = None
        url = next((word for word in (line or "").split() if word.startswith("http")), None)
        if url is None:
            self.stop()
            raise RuntimeError(f"the emulator process did not report its URL (got {line!r})")
        return url

    def _drain(self) -> None:
        process = self._process
        if process is None or process.stdout is None:
            return
        for line in process.stdout:
            self._lines.put(line)
        self._lines.put(None)

    def stop(self) -> None:
        process = self._process
        if process is None:
            return
        self._process = None
        if process.poll() is None:
            if sys.platform == "win32":
                process.terminate()
            else:
                process.send_signal(signal.SIGINT)
            try:
                process.wait(_STOP_TIMEOUT_S)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait()
        if process.stdout is not None:
            process.stdout.close()


class Emulator:
    """A local server speaking the Salesforce Models API and Databricks serving endpoints.

    ``with Emulator() as emu:`` starts it on a free port of 127.0.0.1; point clients at
    ``emu.url`` (or export ``emu.env()``) with the credentials it exposes. Databricks'
    ``/oidc/v1/token`` also exchanges a workload identity's JWT (``env-oidc``, ``file-oidc``):
    any well-formed, unexpired one, or only those given as ``databricks_oidc_tokens``.

    Every setting can be given here, changed while it runs with :meth:`configure`, and (for the
    response shapes and limits listed in ``PER_MODEL_SETTINGS``) set for one model or endpoint
    with ``model_settings={name: {setting: value}}`` or :meth:`configure_model`. The real-world
    shapes:

    * ``usage_mode`` — which stream chunks carry usage: ``every`` (cumulative, Llama),
      ``last``, ``none``, ``null_until_last`` (Claude), ``final_chunk`` (a last chunk with
      ``"choices": []``, GPT-5), ``on_request`` (like ``final_chunk`` only when the request sets
      ``stream_options.include_usage``, else none: external models);
    * ``tool_call_index=False`` — streamed tool calls without ``index`` (Gemini);
    * ``stream_format="json"`` — ``stream: true`` answered with one JSON body (pyfunc);
    * ``reasoning=True`` — content as a reasoning part then a text part;
    * ``error_shape`` — Databricks errors ``plain``, ``external_model`` (the provider's error as
      JSON inside ``message``), ``openai`` (``{"error": {...}}``) or ``details`` (a request id
      in ``details``);
    * ``embedding_max_inputs_429`` — embedding requests with more inputs than this answer 429
      every time, on both services (a small workspace's per-request token limit);
    * ``embedding_base64`` — what Databricks embeddings do with ``encoding_format: "base64"``:
      ``honor`` it (base64 of little-endian float32), ``ignore`` it (lists of floats), or
      ``reject`` it (400 naming the field);
    * ``extra_fields=True`` — Salesforce answers with fields beyond the spec, integer scores
      and a category list that varies by model;
    * ``feedback_body`` — feedback answered 202 with ``json``, an ``empty`` body or ``text``;
    * ``rate_limit_rps`` — requests per second (Databricks' workspace QPS limit), and
      ``rate_limit_rpm``/``_rph``/``_tpm``/``_tph`` — requests and tokens per minute and per
      hour, answered 429 with the error body, with ``Retry-After`` unless
      ``rate_limit_retry_after=False`` (as Databricks' QPS limit answers);
    * ``configured_models={"MyModel": "sfdc_ai__DefaultGPT4Omni"}`` — Salesforce API names of
      an org's configured models.

    Some endpoints answer in their real counterparts' shapes by default (see
    ``sfmodels_emulator.catalogue.DATABRICKS_SHAPES``).

    Hostile mode: ``hostile="cut_stream"`` (or any case of
    ``sfmodels_emulator.hostile.HOSTILE_CASES``) rebuilds every successful answer the case
    applies to in a broken wire shape: cut or erroring streams, a BOM or a non-UTF-8 byte, a line
    that never ends, a body sent a byte at a time (``hostile_trickle_s`` apart), a false
    ``Content-Encoding``, empty or mistyped bodies, null/NaN/ragged vectors, tokens with control
    characters, an ``api_instance_url`` over http or with userinfo. ``configure(hostile=None)``
    turns it off; ``configure_model(name, hostile=...)`` sets it for one model or endpoint.
    """

    def __init__(
        self,
        *,
        host: str = "127.0.0.1",
        port: int = 0,
        mode: Mode = "thread",
        latency_ms: float = 0.0,
        stream_delay_ms: float = 0.0,
        fault_rate: float = 0.0,
        fault_kinds: Sequence[str] = DEFAULT_FAULT_KINDS,
        retry_after_s: float = 0.0,
        hang_s: float = 30.0,
        token_ttl_s: float | None = None,
        embedding_max_batch: int = 150,
        rate_limit_rpm: int | None = None,
        rate_limit_rps: int | None = None,
        fault_token_routes: bool = False,
        usage_mode: str = "every",
        hostile: str | None = None,
        hostile_trickle_s: float = 0.2,
        hostile_endless_bytes: int = 256 * 1024 * 1024,
        tool_call_index: bool = True,
        stream_format: str = "sse",
        reasoning: bool = False,
        error_shape: str = "plain",
        embedding_base64: str = "honor",
        embedding_max_inputs_429: int | None = None,
        extra_fields: bool = False,
        feedback_body: str = "json",
        rate_limit_rph: int | None = None,
        rate_limit_tpm: int | None = None,
        rate_limit_tph: int | None = None,
        rate_limit_retry_after: bool = True,
        model_settings: Mapping[str, Mapping[str, Any]] | None = None,
        configured_models: Mapping[str, str] | None = None,
        seed: int = 0,
        salesforce_client_id: str = DEFAULT_SALESFORCE_CLIENT_ID,
        salesforce_client_secret: str = DEFAULT_SALESFORCE_CLIENT_SECRET,
        databricks_token: str = DEFAULT_DATABRICKS_TOKEN,
        databricks_client_id: str = DEFAULT_DATABRICKS_CLIENT_ID,
        databricks_client_secret: str = DEFAULT_DATABRICKS_CLIENT_SECRET,
        databricks_oidc_tokens: Sequence[str] = (),
    ) -> None:
        if mode not in ("thread", "process"):
            raise ValueError(f"mode must be 'thread' or 'process', got {mode!r}")
        settings = Settings()
        settings.update(
            {
                "latency_ms": latency_ms,
                "stream_delay_ms": stream_delay_ms,
                "fault_rate": fault_rate,
                "fault_kinds": list(fault_kinds),
                "retry_after_s": retry_after_s,
                "hang_s": hang_s,
                "token_ttl_s": token_ttl_s,
                "embedding_max_batch": embedding_max_batch,
                "rate_limit_rpm": rate_limit_rpm,
                "rate_limit_rps": rate_limit_rps,
                "fault_token_routes": fault_token_routes,
                "usage_mode": usage_mode,
                "hostile": hostile,
                "hostile_trickle_s": hostile_trickle_s,
                "hostile_endless_bytes": hostile_endless_bytes,
                "tool_call_index": tool_call_index,
                "stream_format": stream_format,
                "reasoning": reasoning,
                "error_shape": error_shape,
                "embedding_base64": embedding_base64,
                "embedding_max_inputs_429": embedding_max_inputs_429,
                "extra_fields": extra_fields,
                "feedback_body": feedback_body,
                "rate_limit_rph": rate_limit_rph,
                "rate_limit_tpm": rate_limit_tpm,
                "rate_limit_tph": rate_limit_tph,
                "rate_limit_retry_after": rate_limit_retry_after,
                "model_settings": {k: dict(v) for k, v in (model_settings or {}).items()},
                "configured_models": dict(configured_models or {}),
            }
        )
        self.host = host
        self.port = port
        self.mode: Mode = mode
        self.salesforce_client_id = salesforce_client_id
        self.salesforce_client_secret = salesforce_client_secret
        self.databricks_token = databricks_token
        self.databricks_client_id = databricks_client_id
        self.databricks_client_secret = databricks_client_secret
        self._config = Config(
            settings=settings,
            credentials=Credentials(
                salesforce_client_id=salesforce_client_id,
                salesforce_client_secret=salesforce_client_secret,
                databricks_token=databricks_token,
                databricks_client_id=databricks_client_id,
                databricks_client_secret=databricks_client_secret,
                databricks_oidc_tokens=tuple(databricks_oidc_tokens),
            ),
            seed=seed,
        )
        self._runner: _ThreadRunner | _ProcessRunner | None = None
        self._url: str | None = None
        self._opener = urllib.request.build_opener(urllib.request.ProxyHandler({}))

    # ---- lifecycle -----------------------------------------------------------------------

    def start(self) -> Emulator:
        if self._runner is not None:
            return self
        runner: _ThreadRunner | _ProcessRunner
        if self.mode == "process":
            runner = _ProcessRunner(self._config, self.host, self.port)
        else:
            runner = _ThreadRunner(self._config, self.host, self.port)
        self._url = runner.start()
        self._runner = runner
        return self

    def stop(self) -> None:
        runner, self._runner = self._runner, None
        if runner is not None:
            runner.stop()
        self._url = None

    def __enter__(self) -> Emulator:
        return self.start()

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.stop()

    def __repr__(self) -> str:
        where = self._url or "not running"
        return f"Emulator({where}, mode={self.mode!r})"

    # ---- addresses -----------------------------------------------------------------------

    @property
    def running(self) -> bool:
        return self._url is not None

    @property
    def url(self) -> str:
        if self._url is None:
            raise RuntimeError("the emulator is not running; call start() or use `with`")
        return self._url

    @property
    def salesforce_domain(self) -> str:
        """The org's "My Domain" stand-in: its /services/oauth2/token mints tokens."""
        return self.url

    @property
    def salesforce_login_url(self) -> str:
        """A generic login host stand-in, which refuses the client-credentials flow."""
        return self.url + "/login"

    @property
    def salesforce_api_base(self) -> str:
        return self.url + API_PREFIX

    @property
    def databricks_host(self) -> str:
        return self.url

    def env(self) -> dict[str, str]:
        return environment(self.url, self._config.credentials)

    # ---- control -------------------------------------------------------------------------

    def _control(self, method: str, action: str, payload: Any = None) -> Any:
        data = None if payload is None else json.dumps(payload).encode("utf-8")
        request = urllib.request.Request(
            f"{self.url}/_emulator/{action}",
            data=data,
            method=method,
            headers={"content-type": "application/json"},
        )
        try:
            with self._opener.open(request, timeout=_CONTROL_TIMEOUT_S) as response:
                body = response.read()
        except urllib.error.HTTPError as exc:
            detail = exc.read().decode("utf-8", "replace")
            try:
                message = json.loads(detail).get("message", detail)
            except ValueError:
                message = detail
            if exc.code == 400:
                raise ValueError(message) from None
            raise RuntimeError(
                f"emulator control {action} failed ({exc.code}): {message}"
            ) from None
        return json.loads(body) if body else None

    def configure(self, **settings: Any) -> None:
        """Change run-time settings (see the constructor; ``fault_next=N`` also gives the next N
        API requests a fault). ``model_settings`` replaces every per-model setting."""
        if "fault_kinds" in settings and not isinstance(settings["fault_kinds"], str):
            settings["fault_kinds"] = list(settings["fault_kinds"])
        self._control("POST", "config", settings)

    def configure_model(self, name: str, **settings: Any) -> None:
        """Set response shapes or limits for one model or endpoint (``feedback`` for the
        feedback route), keeping what other models have; ``None`` removes a setting."""
        current: dict[str, dict[str, Any]] = self.settings()["model_settings"]
        own = {**current.get(name, {}), **settings}
        current[name] = {k: v for k, v in own.items() if v is not None}
        self._control("POST", "config", {"model_settings": current})

    def settings(self) -> dict[str, Any]:
        """The run-time settings in force."""
        result: dict[str, Any] = self._control("GET", "config")
        return result

    def reset(self) -> None:
        self._control("POST", "reset", {})

    def expire_tokens(self) -> None:
        self._control("POST", "expire-tokens", {})

    def counters(self) -> dict[str, Any]:
        result: dict[str, Any] = self._control("GET", "counters")
        return result

    def feedback(self) -> list[dict[str, Any]]:
        result: list[dict[str, Any]] = self._control("GET", "feedback")
        return result

    def arrivals(self) -> list[tuple[float, str]]:
        """``(seconds since the last reset, route name)`` of each request, in arrival order."""
        return [(float(t), str(route)) for t, route in self._control("GET", "arrivals")]

    def recorded_requests(self) -> list[dict[str, Any]]:
        """The last API requests (at most ``RECORDED_REQUESTS``; token requests are not kept),
        oldest first, each as ``{"route": route name, "body": the body, decoded when JSON}``: what
        a client actually sent."""
        result: list[dict[str, Any]] = self._control("GET", "requests")
        return result

    def mint_salesforce_token(self) -> str:
        body = self._control("POST", "salesforce-token", {})
        return str(body["access_token"])


__all__ = [
    "Emulator",
    "Mode",
    "environment",
]

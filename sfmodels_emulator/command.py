"""The emulator's command line: ``python -m sfmodels_emulator`` (and ``sfmodels emulator``)."""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import shlex
import signal
import sys
from typing import Any

from .app import EmulatorService
from .hostile import HOSTILE_CASES
from .runner import environment
from .state import (
    DEFAULT_FAULT_KINDS,
    EMBEDDING_BASE64,
    ERROR_SHAPES,
    FAULT_KINDS,
    FEEDBACK_BODIES,
    STREAM_FORMATS,
    USAGE_MODES,
    Config,
    Settings,
    SettingsError,
)

DEFAULT_PORT = 8765


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """Add the emulator's options to ``parser``."""
    parser.add_argument("--host", default="127.0.0.1", help="address to listen on")
    parser.add_argument(
        "--port",
        type=int,
        default=DEFAULT_PORT,
        help=f"port to listen on, 0 for any free port (default {DEFAULT_PORT})",
    )
    parser.add_argument(
        "--latency-ms", type=float, default=0.0, help="delay before every API response"
    )
    parser.add_argument(
        "--stream-delay-ms", type=float, default=0.0, help="delay between server-sent events"
    )
    parser.add_argument(
        "--fault-rate",
        type=float,
        default=0.0,
        help="probability (0-1) that an API request gets an injected fault",
    )
    parser.add_argument(
        "--fault-kinds",
        default=",".join(DEFAULT_FAULT_KINDS),
        help=f"comma-separated faults to draw from: {','.join(FAULT_KINDS)}",
    )
    parser.add_argument(
        "--retry-after",
        type=float,
        default=0.0,
        help="Retry-After seconds sent with injected 429 and 503 responses",
    )
    parser.add_argument(
        "--hang-s", type=float, default=30.0, help="how long a 'hang' fault holds the response"
    )
    parser.add_argument(
        "--token-ttl",
        type=float,
        default=None,
        help="lifetime in seconds of newly minted OAuth tokens (default: each service's own, "
        "30 minutes for Salesforce and one hour for Databricks)",
    )
    parser.add_argument(
        "--embedding-max-batch",
        type=int,
        default=150,
        help="most texts accepted by one embeddings request",
    )
    parser.add_argument(
        "--rate-limit-rpm",
        type=int,
        default=None,
        help="requests per minute allowed per model or endpoint",
    )
    parser.add_argument(
        "--rate-limit-rps",
        type=int,
        default=None,
        help="requests per second allowed per model or endpoint (with --no-retry-after: "
        "Databricks' workspace QPS limit)",
    )
    parser.add_argument(
        "--fault-token-routes", action="store_true", help="inject faults on token routes too"
    )
    parser.add_argument(
        "--usage-mode",
        choices=USAGE_MODES,
        default="every",
        help="which stream chunks carry usage (null_until_last: Claude; final_chunk: GPT-5; "
        "on_request: external models, only with stream_options.include_usage)",
    )
    shapes = parser.add_argument_group("real-world response shapes and limits")
    shapes.add_argument(
        "--no-tool-call-index",
        dest="tool_call_index",
        action="store_false",
        help="stream tool calls without an index (as Gemini does)",
    )
    shapes.add_argument(
        "--stream-format",
        choices=STREAM_FORMATS,
        default="sse",
        help="json: answer stream=true with one ordinary JSON body (as pyfunc endpoints do)",
    )
    shapes.add_argument(
        "--reasoning", action="store_true", help="answer with reasoning content parts, then text"
    )
    shapes.add_argument(
        "--error-shape",
        choices=ERROR_SHAPES,
        default="plain",
        help="how Databricks error bodies are wrapped",
    )
    shapes.add_argument(
        "--embedding-base64",
        choices=EMBEDDING_BASE64,
        default="honor",
        help='what Databricks embeddings do with encoding_format "base64"',
    )
    shapes.add_argument(
        "--embedding-max-inputs-429",
        type=int,
        default=None,
        help="embedding requests with more inputs answer 429 every time",
    )
    shapes.add_argument(
        "--extra-fields",
        action="store_true",
        help="Salesforce answers carry fields beyond the spec and integer scores",
    )
    shapes.add_argument(
        "--feedback-body",
        choices=FEEDBACK_BODIES,
        default="json",
        help="the body of Salesforce's 202 feedback answer",
    )
    for unit, name in (("rph", "requests per hour"), ("tpm", "tokens per minute"),
                       ("tph", "tokens per hour")):
        shapes.add_argument(
            f"--rate-limit-{unit}",
            type=int,
            default=None,
            help=f"{name} allowed per model or endpoint",
        )
    shapes.add_argument(
        "--no-retry-after",
        dest="rate_limit_retry_after",
        action="store_false",
        help="answer rate-limited requests 429 without Retry-After",
    )
    shapes.add_argument(
        "--model-setting",
        action="append",
        default=[],
        metavar="NAME:KEY=VALUE",
        help="a setting for one model or endpoint, e.g. databricks-gpt-5:usage_mode=none "
        "(VALUE is JSON or text; repeatable)",
    )
    shapes.add_argument(
        "--configured-model",
        action="append",
        default=[],
        metavar="NAME=BASE",
        help="a Salesforce configured model's API name and the catalogue model it is built on "
        "(repeatable)",
    )
    hostile = parser.add_argument_group("hostile mode (see sfmodels_emulator.hostile)")
    hostile.add_argument(
        "--hostile",
        choices=HOSTILE_CASES,
        default=None,
        metavar="CASE",
        help="answer every request it applies to in this broken shape: "
        + ", ".join(HOSTILE_CASES),
    )
    hostile.add_argument(
        "--hostile-trickle-s",
        type=float,
        default=0.2,
        help="trickle: seconds between two bytes of a body (default 0.2)",
    )
    hostile.add_argument(
        "--hostile-endless-bytes",
        type=int,
        default=256 * 1024 * 1024,
        help="endless_line: bytes sent before the never-ending line gives up (default 256 MiB)",
    )
    parser.add_argument("--seed", type=int, default=0, help="seed of the fault generator")
    parser.add_argument("--config-json", default=None, help=argparse.SUPPRESS)


def config_from_args(args: argparse.Namespace) -> Config:
    if getattr(args, "config_json", None):
        return Config.from_json(args.config_json)
    settings = Settings()
    settings.update(
        {
            "latency_ms": args.latency_ms,
            "stream_delay_ms": args.stream_delay_ms,
            "fault_rate": args.fault_rate,
            "fault_kinds": args.fault_kinds,
            "retry_after_s": args.retry_after,
            "hang_s": args.hang_s,
            "token_ttl_s": args.token_ttl,
            "embedding_max_batch": args.embedding_max_batch,
            "rate_limit_rpm": args.rate_limit_rpm,
            "rate_limit_rps": args.rate_limit_rps,
            "fault_token_routes": bool(args.fault_token_routes),
            "usage_mode": args.usage_mode,
            "hostile": args.hostile,
            "hostile_trickle_s": args.hostile_trickle_s,
            "hostile_endless_bytes": args.hostile_endless_bytes,
            "tool_call_index": args.tool_call_index,
            "stream_format": args.stream_format,
            "reasoning": bool(args.reasoning),
            "error_shape": args.error_shape,
            "embedding_base64": args.embedding_base64,
            "embedding_max_inputs_429": args.embedding_max_inputs_429,
            "extra_fields": bool(args.extra_fields),
            "feedback_body": args.feedback_body,
            "rate_limit_rph": args.rate_limit_rph,
            "rate_limit_tpm": args.rate_limit_tpm,
            "rate_limit_tph": args.rate_limit_tph,
            "rate_limit_retry_after": args.rate_limit_retry_after,
            "model_settings": _model_settings(args.model_setting),
            "configured_models": _pairs(args.configured_model, "--configured-model NAME=BASE"),
        }
    )
    return Config(settings=settings, seed=args.seed)


def _pairs(items: list[str], form: str) -> dict[str, str]:
    out: dict[str, str] = {}
    for item in items:
        name, sep, value = item.partition("=")
        if not sep or not name or not value:
            raise SettingsError(f"expected {form}, got {item!r}")
        out[name] = value
    return out


def _model_settings(items: list[str]) -> dict[str, dict[str, Any]]:
    out: dict[str, dict[str, Any]] = {}
    for item in items:
        name, sep, rest = item.partition(":")
        key, eq, text = rest.partition("=")
        if not sep or not eq or not name or not key:
            raise SettingsError(f"expected --model-setting NAME:KEY=VALUE, got {item!r}")
        try:
            value: Any = json.loads(text)
        except ValueError:
            value = text
        out.setdefault(name, {})[key] = value
    return out


async def _serve(config: Config, host: str, port: int) -> None:
    service = EmulatorService(config)
    url = await service.start(host, port)
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for signum in (signal.SIGINT, signal.SIGTERM):
        with contextlib.suppress(NotImplementedError, RuntimeError, ValueError):
            loop.add_signal_handler(signum, stop.set)
    print(f"sfmodels emulator listening on {url}", flush=True)
    print("Point clients at it with:")
    for name, value in environment(url, config.credentials).items():
        print(f"export {name}={shlex.quote(value)}")
    print("Press Ctrl-C to stop.", flush=True)
    try:
        await stop.wait()
    finally:
        await service.close()


def run(args: argparse.Namespace) -> int:
    """Serve in the foreground until Ctrl-C; return the exit status."""
    try:
        config = config_from_args(args)
    except SettingsError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    try:
        asyncio.run(_serve(config, args.host, args.port))
    except KeyboardInterrupt:
        pass
    except OSError as exc:
        print(f"error: cannot listen on {args.host}:{args.port}: {exc}", file=sys.stderr)
        return 1
    return 0


__all__ = [
    "DEFAULT_PORT",
    "add_arguments",
    "config_from_args",
    "run",
]

"""The emulator's command line: ``python -m sfmodels_emulator`` (and ``sfmodels emulator``)."""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import shlex
import signal
import sys

from .app import EmulatorService
from .runner import environment
from .state import DEFAULT_FAULT_KINDS, FAULT_KINDS, USAGE_MODES, Config, Settings, SettingsError

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
        default=1800.0,
        help="lifetime in seconds of newly minted OAuth tokens",
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
        "--fault-token-routes", action="store_true", help="inject faults on token routes too"
    )
    parser.add_argument(
        "--usage-mode", choices=USAGE_MODES, default="every", help="which stream chunks carry usage"
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
            "fault_token_routes": bool(args.fault_token_routes),
            "usage_mode": args.usage_mode,
        }
    )
    return Config(settings=settings, seed=args.seed)


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

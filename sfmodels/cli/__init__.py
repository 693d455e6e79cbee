"""The ``sfmodels`` command: demo, chat, embed, feedback, token, emulator.

Each sub-command is one module of this package (or a package, like ``embed/``, when it has
several parts) that owns its options and its handler (``DESCRIPTION``, ``add_arguments(parser)``,
``run(args) -> int``). The table below names them; a module is imported only when its command
runs (or asks for ``--help``), so ``sfmodels chat`` never imports LangChain and
``sfmodels --help`` imports nothing heavy.

Every sub-command reads the same settings as the Python classes (the SALESFORCE_* and
DATABRICKS_* environment variables). Expected failures print one ``error:`` line and exit 1;
only a bug prints a traceback.
"""

from __future__ import annotations

import argparse
import importlib
import sys
from collections.abc import Sequence
from types import ModuleType

EXIT_ERROR = 1
EXIT_USAGE = 2
EXIT_INTERRUPTED = 130

#: Sub-command name -> (its module or package here, one-line help shown in ``sfmodels --help``).
COMMANDS: dict[str, tuple[str, str]] = {
    "demo": ("demo", "run the end-to-end tour (on the built-in emulator without credentials)"),
    "chat": ("chat", "ask one question"),
    "embed": ("embed", "bulk-embed lines of files into a JSONL file"),
    "feedback": ("feedback", "rate a generation: Salesforce feedback, or an MLflow assessment "
                             "on a Databricks trace"),
    "token": ("token", "check the configured credentials end to end"),
    "emulator": ("emulator", "serve the local emulator of both APIs"),
}


def load(name: str) -> ModuleType:
    """The module of sub-command ``name``."""
    return importlib.import_module(f"{__name__}.{COMMANDS[name][0]}")


def build_parser(only: str | None = None) -> argparse.ArgumentParser:
    """The parser; sub-commands other than ``only`` are listed but their modules not loaded."""
    parser = argparse.ArgumentParser(
        prog="sfmodels",
        description="Salesforce Models API and Databricks model serving, from the command line. "
                    "Settings come from SALESFORCE_* and DATABRICKS_* environment variables.",
    )
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")
    for name, (_, help_text) in COMMANDS.items():
        if only is not None and name != only:
            sub.add_parser(name, help=help_text, add_help=False)
            continue
        module = load(name)
        command = sub.add_parser(name, help=help_text, description=module.DESCRIPTION)
        module.add_arguments(command)
        command.set_defaults(handler=module.run)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    args_list = list(sys.argv[1:] if argv is None else argv)
    chosen = next((a for a in args_list if not a.startswith("-")), None)
    parser = build_parser(chosen if chosen in COMMANDS else None)
    args = parser.parse_args(args_list)
    handler = getattr(args, "handler", None)
    if handler is None:
        parser.print_help()
        return EXIT_USAGE
    from sfmodels_core.errors import SFModelsError

    try:
        return int(handler(args))
    except SFModelsError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return EXIT_ERROR
    except KeyboardInterrupt:
        print("interrupted", file=sys.stderr)
        return EXIT_INTERRUPTED
    except BrokenPipeError:  # e.g. piped into `head`
        return 0


if __name__ == "__main__":  # pragma: no cover
    raise SystemExit(main())


__all__ = [
    "COMMANDS",
    "EXIT_ERROR",
    "EXIT_INTERRUPTED",
    "EXIT_USAGE",
    "build_parser",
    "load",
    "main",
]

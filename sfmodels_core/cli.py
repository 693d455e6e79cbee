"""The ``sfmodels`` command: demo, chat, embed, feedback, token, emulator.

Every sub-command reads the same settings as the Python classes (the SALESFORCE_* and
DATABRICKS_* environment variables). Expected failures print one clear line and exit non-zero;
only a bug prints a traceback.
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Callable, Sequence

from .errors import SFModelsError

EXIT_ERROR = 1
EXIT_USAGE = 2
EXIT_INTERRUPTED = 130


def _demo(args: argparse.Namespace) -> int:
    from .demo import run

    return run(args)


def _chat(args: argparse.Namespace) -> int:
    from .commands import chat

    return chat(args)


def _embed(args: argparse.Namespace) -> int:
    from .commands import embed

    return embed(args)


def _feedback(args: argparse.Namespace) -> int:
    from .commands import feedback

    return feedback(args)


def _token(args: argparse.Namespace) -> int:
    from .commands import token

    return token(args)


def _emulator(args: argparse.Namespace) -> int:
    from .emulator.command import run

    return run(args)


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="sfmodels",
        description="Salesforce Models API and Databricks model serving, from the command line. "
                    "Settings come from SALESFORCE_* and DATABRICKS_* environment variables.",
    )
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")

    def add(name: str, handler: Callable[[argparse.Namespace], int], help_text: str,
            description: str) -> argparse.ArgumentParser:
        p = sub.add_parser(name, help=help_text, description=description)
        p.set_defaults(handler=handler)
        return p

    demo = add("demo", _demo, "run the end-to-end tour (on the built-in emulator without "
               "credentials)",
               "Answers a question from a small bundled corpus through both providers: chat, "
               "generation, embeddings, streaming, a tool call and feedback. Runs against the real "
               "services for each provider whose credentials are set, otherwise against the "
               "built-in emulator, and says which.")
    demo.add_argument("--emulator", action="store_true",
                      help="use the built-in emulator even when credentials are set")
    demo.add_argument("--salesforce-model", default=None, help="chat/text model API name")
    demo.add_argument("--databricks-endpoint", default=None, help="chat serving endpoint")
    demo.add_argument("--databricks-embedding-endpoint", default=None,
                      help="embeddings serving endpoint")

    chat = add("chat", _chat, "ask one question", "Sends one question and prints the answer, "
               "streaming it as it arrives where the provider streams (Databricks). Reads the "
               "question from standard input when none is given.")
    chat.add_argument("question", nargs="?", help="the question (default: read standard input)")
    chat.add_argument("--provider", choices=("salesforce", "databricks"), default="salesforce")
    chat.add_argument("--model", default=None,
                      help="model API name (Salesforce) or serving endpoint (Databricks)")
    chat.add_argument("--system", default=None, help="an optional system message")

    embed = add("embed", _embed, "bulk-embed lines of files into a JSONL file",
                "Embeds every non-empty line of each FILE (or each whole file with --whole-files) "
                "and appends {id, text, embedding} records to --out. Records whose id is already "
                "in --out are skipped, so an interrupted run resumes where it stopped.")
    embed.add_argument("files", nargs="+", metavar="FILE", help="text files ('-' for stdin)")
    embed.add_argument("--out", default="vectors.jsonl", help="output JSONL (default %(default)s)")
    embed.add_argument("--provider", choices=("salesforce", "databricks"), default="databricks")
    embed.add_argument("--model", default=None,
                       help="embedding model API name (Salesforce) or endpoint (Databricks)")
    embed.add_argument("--whole-files", action="store_true", help="one record per file")
    embed.add_argument("--batch-size", type=int, default=None, help="texts per request")
    embed.add_argument("--max-concurrency", type=int, default=4, help="requests at once")
    embed.add_argument("--instruction", default=None, help="Databricks embedding instruction")
    embed.add_argument("--no-progress", action="store_true", help="never show a progress bar")

    fb = add("feedback", _feedback, "send feedback on a Salesforce generation",
             "Records GOOD or BAD feedback on a generation id (printed by `sfmodels chat` and "
             "the demo) with Salesforce.")
    fb.add_argument("generation_id")
    fb.add_argument("verdict", choices=("good", "bad"), type=str.lower)
    fb.add_argument("--text", default=None, help="free-text feedback (stored up to 1024 chars)")
    fb.add_argument("--source", default="human", help="who gives it (default %(default)s)")

    tok = add("token", _token, "check the configured credentials end to end",
              "Resolves the settings exactly as the library does, obtains a token where the "
              "credentials mint one, and makes one small call to prove it works. Prints what it "
              "found, never the secret.")
    tok.add_argument("--provider", choices=("salesforce", "databricks", "all"), default="all")

    emu = add("emulator", _emulator, "serve the local emulator of both APIs",
              "Serves the Salesforce Models API and Databricks serving endpoints locally, for "
              "offline development and CI, and prints the variables that point every client "
              "at it.")
    from .emulator.command import add_arguments

    add_arguments(emu)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    handler = getattr(args, "handler", None)
    if handler is None:
        parser.print_help()
        return EXIT_USAGE
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

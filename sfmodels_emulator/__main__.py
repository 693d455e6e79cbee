"""``python -m sfmodels_emulator``: serve the emulator in the foreground."""

from __future__ import annotations

import argparse
import sys

from .command import add_arguments, run


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m sfmodels_emulator",
        description="Serve a local emulator of the Salesforce Models API and Databricks "
        "Foundation Model serving endpoints.",
    )
    add_arguments(parser)
    return run(parser.parse_args(argv))


if __name__ == "__main__":
    sys.exit(main())

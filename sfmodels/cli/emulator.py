"""``sfmodels emulator``: serve the local emulator (the same as ``python -m sfmodels_emulator``)."""

from __future__ import annotations

from sfmodels_emulator.command import add_arguments, run

DESCRIPTION = (
    "Serves the Salesforce Models API and Databricks serving endpoints locally, for offline "
    "development and CI, and prints the variables that point every client at it.")

__all__ = ["DESCRIPTION", "add_arguments", "run"]

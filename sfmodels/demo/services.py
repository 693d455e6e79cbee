"""Where each provider's calls go: the real service when its credentials are set (the
SALESFORCE_* and DATABRICKS_* variables), otherwise the built-in emulator."""

from __future__ import annotations

import contextlib
import os
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Any

from sfmodels_core import defaults
from sfmodels_core.credentials import resolve_databricks, resolve_salesforce
from sfmodels_core.errors import ConfigurationError


@dataclass
class Setup:
    """Where each provider's calls go: keyword settings for every class, and a description."""

    salesforce: dict[str, Any]
    databricks: dict[str, Any]
    salesforce_where: str
    databricks_where: str
    emulator: Any = None  # the running emulator, when one was started
    salesforce_model: str = defaults.SALESFORCE_CHAT_MODEL
    databricks_endpoint: str = defaults.DATABRICKS_CHAT_ENDPOINT
    databricks_embedding_endpoint: str = defaults.DATABRICKS_EMBEDDING_ENDPOINT

    def acknowledged(self, feedback_id: str) -> str:
        """What the emulator recorded for a feedback id (nothing to check on the real service)."""
        if self.emulator is None:
            return "accepted by Salesforce"
        mine = [f for f in self.emulator.feedback() if f.get("id") == feedback_id]
        return (f"emulator recorded it: {mine[0]['feedback']} on {mine[0]['generationId']}"
                if mine else "NOT recorded by the emulator")


def _configured(resolve: Callable[[], Any]) -> bool:
    try:
        resolve()
    except ConfigurationError:
        return False
    return True


def _configured_where(provider: str) -> str:
    """Where the settings in the environment point: the real service, or an emulator started
    elsewhere (``sfmodels emulator`` prints the variables; its credentials give it away)."""
    from sfmodels_emulator import state

    if provider == "salesforce":
        host = os.environ.get("SALESFORCE_DOMAIN") or os.environ.get("SALESFORCE_API_BASE")
        emulated = os.environ.get("SALESFORCE_CLIENT_ID") == state.DEFAULT_SALESFORCE_CLIENT_ID
    else:
        host = os.environ.get("DATABRICKS_HOST")
        emulated = os.environ.get("DATABRICKS_TOKEN") == state.DEFAULT_DATABRICKS_TOKEN or (
            os.environ.get("DATABRICKS_CLIENT_ID") == state.DEFAULT_DATABRICKS_CLIENT_ID)
    if emulated:
        return f"the emulator at {host}"
    return f"the real service ({provider.upper()}_* settings)"


@contextlib.contextmanager
def setup(force_emulator: bool) -> Iterator[Setup]:
    """The Setup for this run, with the built-in emulator running while it is in use when a
    provider has no credentials (or ``force_emulator``)."""
    real_sf = not force_emulator and _configured(resolve_salesforce)
    real_dbx = not force_emulator and _configured(resolve_databricks)
    if real_sf and real_dbx:
        yield Setup({}, {}, _configured_where("salesforce"), _configured_where("databricks"))
        return
    from sfmodels_emulator import Emulator

    with Emulator() as emu:
        where = f"the built-in emulator at {emu.url}"
        yield Setup(
            salesforce={} if real_sf else {
                "domain": emu.salesforce_domain, "client_id": emu.salesforce_client_id,
                "client_secret": emu.salesforce_client_secret},
            databricks={} if real_dbx else {
                "host": emu.databricks_host, "api_key": emu.databricks_token},
            salesforce_where=_configured_where("salesforce") if real_sf else where,
            databricks_where=_configured_where("databricks") if real_dbx else where,
            emulator=emu)

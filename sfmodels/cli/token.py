"""``sfmodels token``: check the configured credentials end to end, never printing a secret."""

from __future__ import annotations

import argparse
import time
from collections.abc import Callable, Iterator
from typing import Any

DESCRIPTION = (
    "Resolves the settings exactly as the library does, obtains a token where the credentials "
    "mint one, and makes one small call to prove it works. Prints what it found, never the "
    "secret.")


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--provider", choices=("salesforce", "databricks", "all"), default="all")


def run(args: argparse.Namespace) -> int:
    ok = True
    if args.provider in ("salesforce", "all"):
        ok &= _check("Salesforce", _describe_salesforce, _prove_salesforce)
    if args.provider in ("databricks", "all"):
        ok &= _check("Databricks", _describe_databricks, _prove_databricks)
    return 0 if ok else 1


def _check(name: str, describe: Callable[[], Iterator[str]],
           prove: Callable[[], Iterator[str]]) -> bool:
    from sfmodels_core.errors import SFModelsError

    print(f"{name}:")
    try:
        for line in describe():
            print(f"  {line}")
        for line in prove():
            print(f"  {line}")
    except SFModelsError as exc:
        print(f"  FAILED: {exc}".replace("\n", "\n  "))
        return False
    print("  OK")
    return True


def _describe_salesforce() -> Iterator[str]:
    from sfmodels_core.credentials import resolve_salesforce

    settings = resolve_salesforce()
    domain = getattr(settings.token_source, "domain", None)
    if domain:
        yield f"credentials: OAuth client credentials (consumer key set) via {domain}"
    else:
        yield "credentials: a pre-minted access token (SALESFORCE_ACCESS_TOKEN / api_key)"
    yield f"API base: {settings.api_base or 'from the token (api_instance_url), else default'}"


def _describe_databricks() -> Iterator[str]:
    from sfmodels_core.credentials import resolve_databricks

    settings = resolve_databricks()
    kind = {"token": "personal access token",
            "client credentials": "service principal (OAuth M2M)"}.get(settings.kind,
                                                                       settings.kind)
    yield f"workspace: {settings.host}"
    yield f"credentials: {kind}"


def _minted(client: Any) -> Iterator[str]:
    if client.auth.source.refreshable:
        left = (client.auth.get_token().expires_at or 0) - time.time()
        yield f"token: minted, valid for another {left / 60:.0f} min"


def _prove_salesforce() -> Iterator[str]:
    from sfmodels_core import SalesforceClient, defaults

    model = defaults.SALESFORCE_EMBEDDING_MODEL
    with SalesforceClient() as client:
        yield from _minted(client)
        yield f"API base in use: {client.api_base()}"
        result = client.embed(model, ["ping"])
        yield f"call: embeddings with {model} answered ({len(result.vectors[0])} dims)"


def _prove_databricks() -> Iterator[str]:
    from sfmodels_core import DatabricksClient, defaults

    endpoint = defaults.DATABRICKS_EMBEDDING_ENDPOINT
    with DatabricksClient() as client:
        yield from _minted(client)
        result = client.embed(endpoint, ["ping"])
        yield f"call: embeddings with {endpoint} answered ({len(result.vectors[0])} dims)"


__all__ = [
    "DESCRIPTION",
    "add_arguments",
    "run",
]

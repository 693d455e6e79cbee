"""The former name of :mod:`sfmodels_core.credentials`: the resolvers, for code that still
imports them from here."""

from __future__ import annotations

from .credentials import resolve_databricks, resolve_salesforce

__all__ = ["resolve_databricks", "resolve_salesforce"]

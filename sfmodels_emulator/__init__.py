"""A local, offline emulator of the Salesforce Models API and Databricks serving endpoints.

``with Emulator() as emu:`` serves both APIs on ``emu.url``: OAuth token routes, chat, text
generation, embeddings, feedback, streaming, tool calls and structured output, plus fault
injection (rate limits, server errors, resets, truncated bodies, hangs) for testing clients.
It depends on the Python standard library only.
"""

from __future__ import annotations

from .runner import Emulator

__all__ = ["Emulator"]

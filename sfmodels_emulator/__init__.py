"""A local, offline emulator of the Salesforce Models API and Databricks serving endpoints.

``with Emulator() as emu:`` serves both APIs on ``emu.url``: OAuth token routes, chat, text
generation, embeddings, feedback, streaming, tool calls and structured output, plus fault
injection (rate limits, server errors, resets, truncated bodies, hangs) for testing clients.
Its hostile mode (``hostile="cut_stream"`` and the other cases of :mod:`.hostile`) answers in the
broken wire shapes a client must survive: cut or erroring streams, undecodable bytes, endless or
trickled bodies, empty or mistyped answers, broken vectors and hostile token answers.
It depends on the Python standard library only.
"""

from __future__ import annotations

from .runner import Emulator

__all__ = ["Emulator"]

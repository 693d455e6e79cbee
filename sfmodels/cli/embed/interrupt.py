"""Ctrl-C: the first one stops sending and lets what is in flight be written; a second one is at
once."""

from __future__ import annotations

import signal
import threading
from collections.abc import Callable
from typing import Any


class Stop:
    """Set by the first Ctrl-C: send nothing more, write what is in flight, exit 130."""

    def __init__(self) -> None:
        self.requested = False

    def install(self) -> Callable[[], None]:
        """Catch SIGINT (in the main thread only); returns what restores the previous handler."""
        if threading.current_thread() is not threading.main_thread():
            return lambda: None

        def on_sigint(signum: int, frame: Any) -> None:
            self.requested = True
            signal.signal(signal.SIGINT, signal.default_int_handler)  # a second one is at once

        previous = signal.signal(signal.SIGINT, on_sigint)

        def restore() -> None:
            signal.signal(signal.SIGINT, previous)

        return restore

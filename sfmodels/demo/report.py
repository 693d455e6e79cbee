"""What the tour prints: each section as it runs, then which ones failed."""

from __future__ import annotations

import time
import traceback
from collections.abc import Callable
from dataclasses import dataclass, field

from sfmodels_core.errors import SFModelsError


@dataclass
class Report:
    """Prints sections as they run and remembers which ones failed."""

    failures: list[str] = field(default_factory=list)

    def line(self, label: str, text: str) -> None:
        print(f"  {label:<11} {text}".replace("\n", "\n" + " " * 14))

    def section(self, title: str, body: Callable[[Report], None]) -> None:
        print(f"\n== {title}")
        started = time.perf_counter()
        try:
            body(self)
        except SFModelsError as exc:
            self.fail(title, str(exc))
        except ImportError as exc:
            self.fail(title, f"{exc} (install the frameworks: pip install 'sfmodels[all]')")
        except Exception as exc:  # an unexpected failure still ends in a clear report
            self.fail(title, "".join(traceback.format_exception_only(exc)).strip())
        else:
            print(f"  {'':<11} ({(time.perf_counter() - started) * 1000:.0f} ms)")

    def fail(self, title: str, why: str) -> None:
        self.failures.append(title)
        self.line("FAILED", why)

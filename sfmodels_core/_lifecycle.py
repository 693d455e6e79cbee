"""``with`` and ``async with`` for everything that holds connections: one definition for the
core clients and for every framework class (which close the client they created)."""

from __future__ import annotations

from typing import TypeVar

T = TypeVar("T", bound="Closeable")


class Closeable:
    """``close()``/``aclose()`` on leaving a ``with`` or ``async with`` block."""

    def close(self) -> None:  # pragma: no cover - every subclass defines it
        raise NotImplementedError

    async def aclose(self) -> None:  # pragma: no cover - every subclass defines it
        raise NotImplementedError

    def __enter__(self: T) -> T:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    async def __aenter__(self: T) -> T:
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.aclose()

"""Time as the library sees it: injectable so that tests never sleep."""

from __future__ import annotations

import time
from typing import Protocol

import anyio

__all__ = ["Clock", "SystemClock"]


class Clock(Protocol):
    """A monotonic clock and a way to wait on it."""

    def now(self) -> float:
        """Seconds on a monotonic scale."""
        ...

    async def sleep(self, seconds: float) -> None:
        """Wait ``seconds`` on this clock."""
        ...


class SystemClock:
    """The real clock: ``time.monotonic`` and ``anyio.sleep``."""

    def now(self) -> float:
        """Seconds since an arbitrary point, never going back."""
        return time.monotonic()

    async def sleep(self, seconds: float) -> None:
        """Sleep on the event loop."""
        await anyio.sleep(seconds)

    def __repr__(self) -> str:
        return "SystemClock()"

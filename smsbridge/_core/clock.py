"""Time as the library sees it: injectable so that tests never sleep."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Coroutine
from typing import Any, Protocol

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
    """The real clock: ``time.monotonic`` and asyncio's sleep."""

    def now(self) -> float:
        """Seconds since an arbitrary point, never going back."""
        return time.monotonic()

    def sleep(self, seconds: float) -> Coroutine[Any, Any, None]:
        """Sleep on the event loop: asyncio's own sleep, handed back as it is (a coroutine
        of its own round it would be one more object for every wait in flight)."""
        return asyncio.sleep(seconds)

    def __repr__(self) -> str:
        return "SystemClock()"

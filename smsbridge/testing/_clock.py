"""A clock for tests: time moves only when told, or when someone sleeps on it."""

from __future__ import annotations

import anyio

__all__ = ["FakeClock"]


class FakeClock:
    """Satisfies :class:`smsbridge.Clock` without ever sleeping for real.

    ``sleep(s)`` moves time forward by ``s`` and yields once to the event loop, so code under
    test runs as if the wait had passed. With several tasks sleeping at once each moves time on
    its own account; serialised users (the limiter, retries of one request) see exact time.
    """

    def __init__(self, start: float = 0.0) -> None:
        self.time = start
        self.slept: list[float] = []

    def now(self) -> float:
        """The current fake time."""
        return self.time

    async def sleep(self, seconds: float) -> None:
        """Advance by ``seconds`` (negative counts as 0) and yield once."""
        seconds = max(0.0, seconds)
        self.slept.append(seconds)
        self.time += seconds
        await anyio.lowlevel.checkpoint()

    def advance(self, seconds: float) -> None:
        """Move time forward without yielding."""
        self.time += max(0.0, seconds)

    def __repr__(self) -> str:
        return f"FakeClock(time={self.time:.6f})"

"""Request-rate limiting per gateway account.

The gateways count requests in a *sliding* second: any 1-second window holding more than N
request starts is punished (429). A token bucket of capacity N lets up to 2N-1 starts into one
sliding second (a full bucket, then the refill), so the limiter here keeps a log of the last N
start times instead: start N+1 waits until the oldest is more than ``period + margin`` old.
That holds *every* window to N starts, while a continuous stream still runs at
``N / (period + margin)``: 98.5% of N with the default 15 ms margin, which absorbs network
jitter between our clock and the gateway's.
"""

from __future__ import annotations

import math
from collections import deque
from typing import Protocol

import anyio

from .clock import Clock, SystemClock
from .errors import ConfigurationError

__all__ = ["RateLimiter", "SlidingWindowLimiter"]


class RateLimiter(Protocol):
    """What the core needs from a limiter; in-memory and Redis implementations exist."""

    async def acquire(self) -> None:
        """Wait until one more request may start now, and count it as started."""
        ...

    async def defer(self, seconds: float) -> None:
        """Let no request start for ``seconds`` (the gateway asked us to back off)."""
        ...


class SlidingWindowLimiter:
    """At most ``limit`` request starts in any window of ``period`` seconds.

    Shared by every send and call of a client (pass one instance to several clients of the
    same account in one process). Waiters are served first come, first served.

    Args:
        limit: request starts allowed per ``period``; the gateways' documented 9 by default.
        period: the window the gateway counts in, in seconds.
        margin: extra seconds kept between a start and the start ``limit`` places later,
            so that network jitter cannot squeeze ``limit + 1`` arrivals into the gateway's
            window. Sustained throughput is ``limit / (period + margin)``.
        clock: time source; inject a fake one in tests.
    """

    def __init__(
        self,
        limit: int = 9,
        period: float = 1.0,
        *,
        margin: float = 0.015,
        clock: Clock | None = None,
    ) -> None:
        if not isinstance(limit, int) or limit < 1:
            raise ConfigurationError(f"limit must be a positive integer, got {limit!r}")
        if not (period > 0 and math.isfinite(period)):
            raise ConfigurationError(f"period must be a positive number, got {period!r}")
        if not (margin >= 0 and math.isfinite(margin)):
            raise ConfigurationError(f"margin must be zero or positive, got {margin!r}")
        self.limit = limit
        self.period = period
        self.margin = margin
        self._span = period + margin
        self._clock: Clock = clock or SystemClock()
        self._starts: deque[float] = deque(maxlen=limit)
        self._not_before = -math.inf
        self._lock = anyio.Lock(fast_acquire=True)

    def _wait_at(self, now: float) -> float:
        wait = self._not_before - now
        if len(self._starts) == self.limit:
            # measured as observers measure (a difference of times), so rounding cannot
            # let the start `limit` places later land a hair inside the window
            wait = max(wait, self._span - (now - self._starts[0]))
        return wait

    def has_capacity(self) -> bool:
        """Whether :meth:`acquire` would return without waiting right now."""
        return not self._lock.locked() and self._wait_at(self._clock.now()) <= 0

    async def acquire(self) -> None:
        """Wait for a free slot in the window, then record a request start."""
        if not self._lock.locked():
            now = self._clock.now()
            if self._wait_at(now) <= 0:  # free now, and nobody queued ahead: no suspension
                self._starts.append(now)
                return
        async with self._lock:
            while True:
                now = self._clock.now()
                wait = self._wait_at(now)
                if wait <= 0:
                    break
                await self._clock.sleep(max(wait, 1e-6))
            self._starts.append(now)

    async def defer(self, seconds: float) -> None:
        """Start nothing for ``seconds`` from now (used for a gateway's Retry-After)."""
        if seconds > 0:
            self._not_before = max(self._not_before, self._clock.now() + seconds)

    def __repr__(self) -> str:
        now = self._clock.now()
        recent = sum(1 for t in self._starts if now - t < self.period)
        return (
            f"SlidingWindowLimiter(limit={self.limit}, period={self.period}, "
            f"margin={self.margin}, started_last_period={recent})"
        )

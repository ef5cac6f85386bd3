"""Request-rate limiting per gateway account.

The gateways count requests in a *sliding* second as they arrive: any 1-second window holding
more than N arrivals is punished (429). A token bucket of capacity N lets up to 2N-1 starts
into one sliding second (a full bucket, then the refill), so the limiter here keeps a log of
the last N start times instead: start N+1 waits until the oldest is more than
``period + margin`` old. That holds *every* window to N starts, while a continuous stream
still runs at ``N / (period + margin)``: 97% of N with the default 30 ms margin, which
absorbs the jitter between our starts and the gateway's arrivals (network, and a host that
pauses either process: a 15 ms margin once let ten arrivals into one second on a busy CI
machine, and a 429 costs a second of the account's time, more than the margin ever does).

A start is the moment the request is written, not the moment its slot is granted: a request
that must first open a connection (TCP, TLS: one to three round trips) is written later than
one on a warm connection. So :meth:`RateLimiter.acquire` hands out a :class:`Slot` that the
transport starts once its connection is ready; until then the slot is *pending*, and a pending
slot counts as a start that may happen at any moment.
"""

from __future__ import annotations

import math
from collections import deque
from typing import Protocol

import anyio

from . import forks
from .clock import Clock, SystemClock
from .errors import ConfigurationError

__all__ = ["DEFAULT_MARGIN", "RateLimiter", "SlidingWindowLimiter", "Slot"]

DEFAULT_MARGIN = 0.03
"""Seconds added to the window in one process (see the module's text)."""

MAX_LIMIT = 10**9  # starts per period: any gateway's limit, and within what a deque can hold


class Slot(Protocol):
    """The right to start one request, granted by :meth:`RateLimiter.acquire`.

    Once the request's connection is ready: :meth:`ready`, then whatever must happen right
    before the write (a journal's intent), then :meth:`start` with no wait in between, and
    the write."""

    async def ready(self) -> None:
        """Wait until the slot may start now (a promise gone stale is asked for again)."""
        ...

    def start(self) -> bool:
        """Count the request as started now, and return ``True``; ``False`` when the slot
        went stale since :meth:`ready` (then call :meth:`ready` again)."""
        ...

    def close(self) -> None:
        """Done with the slot; if it never started, nothing was written and it is freed."""
        ...


class RateLimiter(Protocol):
    """What the core needs from a limiter; in-memory and Redis implementations exist.

    A limiter may also offer ``slot_nowait() -> Slot | None``: a slot at once when one is
    free and nobody waits for one, else ``None``; and its slots an ``instant = True``
    attribute when their :meth:`Slot.ready` never waits. The core then spares those waits
    their cancel scopes."""

    async def acquire(self) -> Slot:
        """Wait until one more request may start, and hold a slot for it."""
        ...

    async def defer(self, seconds: float) -> None:
        """Let no request start for ``seconds`` (the gateway asked us to back off)."""
        ...


class _Slot:
    __slots__ = ("_limiter", "_pending")

    instant = True  # ready() never waits

    def __init__(self, limiter: SlidingWindowLimiter) -> None:
        self._limiter = limiter
        self._pending = True

    async def ready(self) -> None:
        pass

    def start(self) -> bool:
        if self._pending:
            self._pending = False
            self._limiter._started_now()
        return True

    def close(self) -> None:
        if self._pending:
            self._pending = False
            self._limiter._abandoned()


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
        margin: float = DEFAULT_MARGIN,
        clock: Clock | None = None,
    ) -> None:
        if not isinstance(limit, int) or isinstance(limit, bool) or not 1 <= limit <= MAX_LIMIT:
            raise ConfigurationError(
                f"limit must be a positive integer up to {MAX_LIMIT:,}, got {limit!r}"
            )
        if not (period > 0 and math.isfinite(period)):
            raise ConfigurationError(f"period must be a positive number, got {period!r}")
        if not (margin >= 0 and math.isfinite(margin)):
            raise ConfigurationError(f"margin must be zero or positive, got {margin!r}")
        self.limit = limit
        self.period = period
        self.margin = margin
        self._span = period + margin
        self._clock: Clock = clock or SystemClock()
        self._starts: deque[float] = deque(maxlen=limit)  # in start order, so ascending
        self._pending = 0
        self._changed: anyio.Event | None = None
        self._not_before = -math.inf
        self._lock = anyio.Lock(fast_acquire=True)
        forks.on_fork(self)

    def _forked(self) -> None:
        """In a forked child, the parent's waiters and pending slots are no one's: the
        starts it logged still count."""
        self._pending = 0
        self._changed = None
        self._lock = anyio.Lock(fast_acquire=True)

    def _wait_at(self, now: float) -> float:
        """Seconds until one more slot may be granted; ``inf`` while only a pending slot's
        start (or abandonment) can make room."""
        free = self.limit - self._pending
        if free <= 0:
            return math.inf
        wait = self._not_before - now
        starts = self._starts
        if len(starts) >= free:
            # measured as observers measure (a difference of times), so rounding cannot
            # let the start `limit` places later land a hair inside the window
            wait = max(wait, self._span - (now - starts[-free]))
        return wait

    def _started_now(self) -> None:
        self._starts.append(self._clock.now())
        self._pending -= 1
        self._notify()

    def _abandoned(self) -> None:
        self._pending -= 1
        self._notify()

    def _notify(self) -> None:
        changed, self._changed = self._changed, None
        if changed is not None:
            changed.set()

    def has_capacity(self) -> bool:
        """Whether :meth:`acquire` would return without waiting right now."""
        return not self._lock.locked() and self._wait_at(self._clock.now()) <= 0

    def slot_nowait(self) -> Slot | None:
        """A slot at once when the window has room and nobody waits ahead, else ``None``."""
        if not self.has_capacity():
            return None
        self._pending += 1
        return _Slot(self)

    async def acquire(self) -> Slot:
        """Wait for room in the window, then hold a slot (pending until it starts)."""
        slot = self.slot_nowait()  # free now, and nobody queued ahead: no suspension
        if slot is not None:
            return slot
        async with self._lock:
            while True:
                wait = self._wait_at(self._clock.now())
                if wait <= 0:
                    break
                if math.isinf(wait):
                    if self._changed is None:
                        self._changed = anyio.Event()
                    await self._changed.wait()
                else:
                    await self._clock.sleep(max(wait, 1e-6))
            self._pending += 1
            return _Slot(self)

    async def defer(self, seconds: float) -> None:
        """Start nothing for ``seconds`` from now (used for a gateway's Retry-After)."""
        if seconds > 0:
            self._not_before = max(self._not_before, self._clock.now() + seconds)

    def __repr__(self) -> str:
        now = self._clock.now()
        recent = sum(1 for t in self._starts if now - t < self.period)
        return (
            f"SlidingWindowLimiter(limit={self.limit}, period={self.period}, "
            f"margin={self.margin}, started_last_period={recent}, pending={self._pending})"
        )

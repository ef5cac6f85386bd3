"""The duplicate window: the same text to the same number is sent once per window.

Keys are digests of (account, sender, text, phone) computed by the core; a store sees only
opaque bytes. A key goes through three steps: ``reserve`` when its batch is dispatched (only
one of several concurrent sends can win it), ``commit`` when the gateway accepted it (or may
have: an uncertain send must not be repeated either), ``release`` when it was surely not sent,
so a retry is not blocked. A reservation left behind by a crashed process expires with the TTL.
"""

from __future__ import annotations

import math
from collections import deque
from collections.abc import Sequence
from typing import Protocol

from .clock import Clock, SystemClock
from .errors import ConfigurationError

__all__ = ["DuplicateWindow", "MemoryWindow"]


class DuplicateWindow(Protocol):
    """What the core needs from a duplicate-window store (in-memory or Redis)."""

    ttl: float

    async def reserve(self, keys: Sequence[bytes]) -> list[bool]:
        """Claim each key not already held; ``True`` where this call claimed it.

        A key repeated within ``keys`` is claimed by its first occurrence only.
        """
        ...

    async def commit(self, keys: Sequence[bytes]) -> None:
        """Hold these keys for a full TTL from now: their messages were (maybe) sent."""
        ...

    async def release(self, keys: Sequence[bytes]) -> None:
        """Drop these reservations: their messages were surely not sent."""
        ...


class MemoryWindow:
    """An in-process duplicate window; the default.

    Memory is bounded by the keys reserved within one TTL (at 9 requests of 100 numbers per
    second and a 120 s TTL, at most 108,000 keys), not by the size of a send.

    Args:
        ttl: seconds a sent (text, number) pair stays blocked; the gateways use 120.
        clock: time source; inject a fake one in tests.
    """

    def __init__(self, ttl: float = 120.0, *, clock: Clock | None = None) -> None:
        if not (ttl >= 0 and math.isfinite(ttl)):
            raise ConfigurationError(f"ttl must be zero or a positive number, got {ttl!r}")
        self.ttl = ttl
        self._clock: Clock = clock or SystemClock()
        self._until: dict[bytes, float] = {}
        self._expiries: deque[tuple[float, bytes]] = deque()

    def __len__(self) -> int:
        return len(self._until)

    def _evict(self, now: float) -> None:
        expiries, until = self._expiries, self._until
        while expiries and expiries[0][0] <= now:
            _, key = expiries.popleft()
            current = until.get(key)
            if current is None:
                continue
            if current <= now:
                del until[key]
            else:
                # committed later than first reserved: look again when the new term ends
                expiries.append((current, key))

    async def reserve(self, keys: Sequence[bytes]) -> list[bool]:
        """Claim each key not held by a live reservation or commit."""
        now = self._clock.now()
        self._evict(now)
        until, expiries, expiry = self._until, self._expiries, now + self.ttl
        granted: list[bool] = []
        for key in keys:
            held = until.get(key)
            if held is not None and held > now:
                granted.append(False)
                continue
            if held is None:
                expiries.append((expiry, key))
            until[key] = expiry
            granted.append(True)
        return granted

    async def commit(self, keys: Sequence[bytes]) -> None:
        """Extend each key to a full TTL from now."""
        now = self._clock.now()
        expiry = now + self.ttl
        until, expiries = self._until, self._expiries
        for key in keys:
            if key not in until:
                expiries.append((expiry, key))
            until[key] = expiry

    async def release(self, keys: Sequence[bytes]) -> None:
        """Forget these keys."""
        until = self._until
        for key in keys:
            until.pop(key, None)

    def __repr__(self) -> str:
        return f"MemoryWindow(ttl={self.ttl}, keys={len(self._until)})"

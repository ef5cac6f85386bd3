"""The duplicate window: the same text to the same number is sent once per window.

A window derives one key per recipient from (sender, text, parameters, phone); the account
is the window's own, as each client has its own window or shares one of the same account.
The in-memory window keys by 64-bit hashes; the Redis one by an HMAC, so the store never
holds a number or a text.

A key goes through three steps: ``reserve`` when its batch is dispatched (only one of several
concurrent sends can win it), ``commit`` when the gateway accepted it (or may have: an
uncertain send must not be repeated either), ``release`` when it was surely not sent, so a
retry is not blocked. A reservation lasts ``ttl + slack``, so a batch answered within
``slack`` of its reservation is already held long enough and the core skips its commit; a
pair stays blocked at least ``ttl`` after the gateway answered. A reservation left behind by a
crashed process expires by itself.
"""

from __future__ import annotations

import math
from collections import deque
from collections.abc import Hashable, Sequence
from itertools import repeat
from typing import Protocol

from .clock import Clock, SystemClock
from .errors import ConfigurationError
from .gateway import Batch

__all__ = ["DuplicateWindow", "MemoryWindow"]


class DuplicateWindow(Protocol):
    """What the core needs from a duplicate-window store (in-memory or Redis)."""

    ttl: float
    slack: float

    def keys(self, sender: str, text: str | None, batch: Batch) -> Sequence[Hashable]:
        """One key per recipient of ``batch``; ``text`` is the shared one, if any."""
        ...

    async def reserve(self, keys: Sequence[Hashable]) -> list[bool]:
        """Claim each key not already held; ``True`` where this call claimed it.

        A key repeated within ``keys`` is claimed by its first occurrence only.
        """
        ...

    async def commit(self, keys: Sequence[Hashable]) -> None:
        """Hold these keys for a full TTL from now: their messages were (maybe) sent."""
        ...

    async def release(self, keys: Sequence[Hashable]) -> None:
        """Drop these reservations: their messages were surely not sent."""
        ...


class MemoryWindow:
    """An in-process duplicate window; the default.

    Memory is bounded by the keys reserved within one TTL (at 9 requests of 100 numbers per
    second and a 120 s TTL, at most 108,000 keys), not by the size of a send.

    Args:
        ttl: seconds a sent (text, number) pair stays blocked; the gateways use 120.
        slack: seconds a reservation outlasts the TTL, so a prompt answer needs no commit.
        clock: time source; inject a fake one in tests.
    """

    def __init__(
        self, ttl: float = 120.0, *, slack: float = 5.0, clock: Clock | None = None
    ) -> None:
        if not (ttl >= 0 and math.isfinite(ttl)) or not (slack >= 0 and math.isfinite(slack)):
            raise ConfigurationError(f"ttl and slack must be zero or positive, got {ttl!r}")
        self.ttl = ttl
        self.slack = slack
        self._clock: Clock = clock or SystemClock()
        self._until: dict[Hashable, float] = {}
        # (expiry, keys) per reserve or commit call, in time order: eviction works a call at a
        # time, and each key is checked against its current term before it goes
        self._terms: deque[tuple[float, Sequence[Hashable]]] = deque()

    def __len__(self) -> int:
        return len(self._until)

    def _evict(self, now: float) -> None:
        terms, until = self._terms, self._until
        while terms and terms[0][0] <= now:
            _, keys = terms.popleft()
            for key in keys:
                current = until.get(key)
                if current is not None and current <= now:
                    del until[key]

    def keys(self, sender: str, text: str | None, batch: Batch) -> list[Hashable]:
        """64-bit hashes of (sender, text, parameters, phone): collisions among the keys of
        one TTL are vanishingly rare (about 1 in 3 billion for 108,000 keys)."""
        if batch.texts is None and batch.params is None:
            scope = hash((sender, text))
            return [scope ^ h for h in map(hash, batch.phones)]
        texts = batch.texts if batch.texts is not None else repeat(text)
        params = batch.params if batch.params is not None else repeat(())
        return list(map(hash, zip(repeat(sender), texts, params, batch.phones)))

    async def reserve(self, keys: Sequence[Hashable]) -> list[bool]:
        """Claim each key not held by a live reservation or commit."""
        now = self._clock.now()
        self._evict(now)
        until, expiry = self._until, now + self.ttl + self.slack
        # the common case, every key new: claimed in one sweep; `expiry` is a fresh object,
        # so a value that *is* it was written by this call
        before, setdefault, clean = len(until), until.setdefault, True
        for key in keys:
            if setdefault(key, expiry) is not expiry:
                clean = False
                break
        if clean and len(until) - before == len(keys):
            self._terms.append((expiry, list(keys)))
            return [True] * len(keys)
        for key in keys:  # a key is held, or repeats within the call: undo, go one by one
            if until.get(key) is expiry:
                del until[key]
        granted: list[bool] = []
        claimed: list[Hashable] = []
        for key in keys:
            held = until.get(key)
            if held is not None and held > now:
                granted.append(False)
                continue
            until[key] = expiry
            claimed.append(key)
            granted.append(True)
        self._terms.append((expiry, claimed))
        return granted

    async def commit(self, keys: Sequence[Hashable]) -> None:
        """Extend each key to a full TTL from now."""
        expiry = self._clock.now() + self.ttl
        until = self._until
        for key in keys:
            until[key] = expiry
        self._terms.append((expiry, list(keys)))

    async def release(self, keys: Sequence[Hashable]) -> None:
        """Forget these keys."""
        until = self._until
        for key in keys:
            until.pop(key, None)

    def __repr__(self) -> str:
        return f"MemoryWindow(ttl={self.ttl}, keys={len(self._until)})"

"""The duplicate window: the same text to the same number is sent once per window.

One key per recipient, from (sender, text, parameters, phone) by one rule
(:func:`key_fields`); the account is the window's own, as each client has its own window or
shares one of the same account. The in-memory window keys by 64-bit hashes; the Redis one by
an HMAC of the same fields, so the store never holds a number or a text.

A key goes through three steps. ``reserve`` when its batch is dispatched claims it for one
recipient of one send (its *holder*); ``commit`` when the gateway accepted the message or may
have (an uncertain send must not be repeated either) holds it a full TTL from then;
``release`` when it was surely not sent drops it, so a later send is not blocked. A key held
by another recipient's reservation that is not yet settled is :attr:`Claim.PENDING`: whether
its message goes is not known yet, so the core waits for the settlement rather than call the
recipient ``suppressed`` on a send that may still fail. A reservation outlasts the TTL by
``slack``; one left behind by a crashed process expires by itself, and a resumed send with
the same holder (the same idempotency key) finds its own reservations again.
"""

from __future__ import annotations

import enum
import math
from collections import deque
from collections.abc import Hashable, Iterator, Sequence
from itertools import repeat
from typing import Protocol

from .clock import Clock, SystemClock
from .errors import ConfigurationError
from .gateway import Batch

__all__ = ["Claim", "DuplicateWindow", "MemoryWindow", "key_fields"]

_Term = tuple[float, tuple[Hashable, ...], str, tuple[int, ...]]
"""A reservation, shared by the keys of one reserve call: (expiry, keys, holder, indices)."""
_GONE: _Term = (-math.inf, (), "", ())


class Claim(enum.IntEnum):
    """What a reservation found for one key."""

    OURS = 0
    """Claimed for this recipient (new, or this holder's own earlier reservation)."""
    SENT = 1
    """Committed: the same message went (or may have) within the window."""
    PENDING = 2
    """Reserved for another recipient whose send has not settled yet."""


def key_fields(
    sender: str, text: str | None, batch: Batch
) -> Iterator[tuple[str, str, tuple[str, ...], str]]:
    """The one key rule: (sender, text, template parameters, phone) for each recipient; the
    recipient's own text where it has one, else the send's."""
    texts = batch.texts if batch.texts is not None else repeat(text or "")
    params = batch.params if batch.params is not None else repeat(())
    return zip(repeat(sender), texts, params, batch.phones)


class DuplicateWindow(Protocol):
    """What the core needs from a duplicate-window store (in-memory or Redis).

    ``holder`` names the send (a random id, or one derived from its idempotency key) and
    ``indices`` the recipients: together they name the reservation of each key, so the same
    recipient of the same send finds its own reservation again (a retry after the store
    timed out, a resumed campaign) instead of being blocked by it.
    """

    ttl: float
    slack: float

    def keys(self, sender: str, text: str | None, batch: Batch) -> Sequence[Hashable]:
        """One key per recipient of ``batch`` by :func:`key_fields`; ``text`` is the shared
        one, if any."""
        ...

    async def reserve(
        self, keys: Sequence[Hashable], holder: str, indices: Sequence[int]
    ) -> list[Claim]:
        """Claim each key not already held. A key repeated within ``keys`` is claimed by
        its first occurrence; the others find it :attr:`Claim.PENDING`."""
        ...

    async def commit(self, keys: Sequence[Hashable], holder: str, indices: Sequence[int]) -> None:
        """Hold these keys a full TTL from now: their messages were (maybe) sent."""
        ...

    async def release(self, keys: Sequence[Hashable], holder: str, indices: Sequence[int]) -> None:
        """Drop these reservations, where they are still this holder's: surely not sent."""
        ...


class MemoryWindow:
    """An in-process duplicate window; the default.

    Memory is bounded by the keys reserved within one TTL (at 9 requests of 100 numbers per
    second and a 120 s TTL, at most 108,000 keys), not by the size of a send. Each reservation
    names its holder and recipient, so a release drops only the releasing recipient's own,
    never another send's (or another recipient's of the same send) that holds the same key.
    In one process a live reservation is always a live send's, so a key reserved under the
    same holder and recipient is still :attr:`Claim.PENDING` (two sends with one idempotency
    key at once), not taken over as it is in Redis, where its holder may have died.

    Args:
        ttl: seconds a sent (text, number) pair stays blocked; the gateways use 120.
        slack: seconds a reservation outlasts the TTL.
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
        # a reserved key maps to its reserve call's term, (expiry, keys, holder, indices):
        # one tuple per call, shared by its keys, of atomic values only (left alone by the
        # cyclic collector)
        self._reserved: dict[Hashable, _Term] = {}
        self._sent: dict[Hashable, float] = {}
        # (expiry, keys, ...) per reserve or commit call, in time order: eviction works a call
        # at a time, and each key is checked against its current term before it goes
        self._terms: deque[_Term | tuple[float, tuple[Hashable, ...]]] = deque()

    def __len__(self) -> int:
        return len(self._reserved) + len(self._sent)

    def _evict(self, now: float) -> None:
        terms, reserved, sent = self._terms, self._reserved, self._sent
        while terms and terms[0][0] <= now:
            for key in terms.popleft()[1]:
                term = reserved.get(key)
                if term is not None and term[0] <= now:
                    del reserved[key]
                until = sent.get(key)
                if until is not None and until <= now:
                    del sent[key]

    def keys(self, sender: str, text: str | None, batch: Batch) -> list[Hashable]:
        """64-bit hashes of :func:`key_fields` (the message's hash XOR the phone's):
        collisions among the keys of one TTL are vanishingly rare (about 1 in 3 billion for
        108,000 keys)."""
        phones = batch.phones
        if batch.texts is None and batch.params is None:
            scope = hash((sender, text or "", ()))  # one message for all: hashed once
            return [scope ^ h for h in map(hash, phones)]
        return [hash((s, t, p)) ^ hash(phone) for s, t, p, phone in key_fields(sender, text, batch)]

    async def reserve(
        self, keys: Sequence[Hashable], holder: str, indices: Sequence[int]
    ) -> list[Claim]:
        """Claim each key not held by a live reservation or commit, for the recipient of
        ``indices`` at its place."""
        if len(indices) != len(keys):
            raise ValueError("one index per key")
        now = self._clock.now()
        self._evict(now)
        reserved, sent = self._reserved, self._sent
        expiry = now + self.ttl + self.slack
        # the common case, every key new: claimed in one sweep; `term` is a fresh object, so
        # a value that *is* it was written by this call
        term = (expiry, tuple(keys), holder, tuple(indices))
        before, setdefault, clean = len(reserved), reserved.setdefault, not sent
        if clean:
            for key in keys:
                if setdefault(key, term) is not term:
                    clean = False
                    break
        else:
            clean = True
            for key in keys:
                if key in sent or setdefault(key, term) is not term:
                    clean = False
                    break
        if clean and len(reserved) - before == len(keys):
            self._terms.append(term)
            return [Claim.OURS] * len(keys)
        for key in keys:  # a key is held, or repeats within the call: undo, go one by one
            if reserved.get(key) is term:
                del reserved[key]
        claims: list[Claim] = []
        claimed: dict[Hashable, int] = {}
        for key, index in zip(keys, indices, strict=True):
            if sent.get(key, -math.inf) > now:
                claims.append(Claim.SENT)
            elif key in claimed or reserved.get(key, _GONE)[0] > now:
                claims.append(Claim.PENDING)
            else:
                claimed[key] = index
                claims.append(Claim.OURS)
        term = (expiry, tuple(claimed), holder, tuple(claimed.values()))
        for key in claimed:
            reserved[key] = term
        self._terms.append(term)
        return claims

    async def commit(self, keys: Sequence[Hashable], holder: str, indices: Sequence[int]) -> None:
        """Hold each key a full TTL from now, whoever held it."""
        expiry = self._clock.now() + self.ttl
        reserved, sent = self._reserved, self._sent
        for key in keys:
            reserved.pop(key, None)
            sent[key] = expiry
        self._terms.append((expiry, tuple(keys)))

    async def release(self, keys: Sequence[Hashable], holder: str, indices: Sequence[int]) -> None:
        """Drop the reservations of these keys that are this holder's for the recipient of
        ``indices`` at the same place; a commit, or another's reservation, stays."""
        reserved = self._reserved
        first = reserved.get(keys[0]) if keys else None
        if (
            first is not None
            and first[2] == holder
            and first[1] == tuple(keys)
            and first[3] == tuple(indices)
        ):  # the common case: what one reserve call claimed, released together
            for key in keys:
                if reserved.get(key) is first:
                    del reserved[key]
            return
        owners: dict[int, tuple[_Term, dict[Hashable, int]]] = {}  # by the term's id
        for key, index in zip(keys, indices, strict=True):
            term = reserved.get(key)
            if term is None or term[2] != holder:
                continue
            found = owners.get(id(term))
            if found is None:
                found = owners[id(term)] = (term, dict(zip(term[1], term[3], strict=True)))
            if found[1].get(key) == index:
                del reserved[key]

    def __repr__(self) -> str:
        return f"MemoryWindow(ttl={self.ttl}, keys={len(self)})"

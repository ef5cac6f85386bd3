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

Two runs of one keyed send must never go at once: each would take the other's reservations
for its own. So a run first *holds* its key (:meth:`DuplicateWindow.hold`), a lease it renews
while it runs and drops at its end; a run that died leaves it to lapse within the lease.
"""

from __future__ import annotations

import enum
import math
from collections import deque
from collections.abc import Hashable, Iterator, Sequence
from itertools import repeat
from typing import Protocol

import msgspec

from . import forks
from .clock import Clock, SystemClock
from .errors import ConfigurationError
from .gateway import Batch

__all__ = ["SLACK", "Claim", "DuplicateWindow", "MemoryWindow", "extra_hold", "key_fields"]

SLACK = 65.0
"""Seconds a reservation outlasts the TTL by default: the default read timeout (60 s; a
request written may reach the gateway as late as its writer waits for an answer) and 5."""


def extra_hold(extra: float, slack: float) -> float:
    """How much longer than the TTL a commit asked to hold ``extra`` more holds: never less
    than 0, nor more than a reservation outlasts the TTL."""
    return min(max(extra, 0.0), slack)


class _Term(msgspec.Struct, gc=False):
    """What holds the keys of one call: a reservation (``holder`` names its send and
    ``indices`` its recipients, key by key) or, once ``holder`` is ``None``, a commit, both
    until ``expiry``. While it holds every one of its keys (``whole``), a commit of all of
    them changes it in place: one step for the call's keys.

    Never tracked by the cyclic collector (it holds no container that could close a cycle),
    so neither is the window's dictionary of keys: a full collection would otherwise walk
    every key of every window in the process (21.6 million at 200 accounts at full rate)."""

    expiry: float
    keys: tuple[Hashable, ...]
    holder: str | None
    indices: tuple[int, ...]
    whole: bool = True


_drain = deque[object](maxlen=0).extend  # runs an iterator out, in C


def _releases(holder: str, reserved_by: str) -> bool:
    """Whether a release by ``holder`` drops a reservation of ``reserved_by``: its own run's
    (``<send>/<run>``), or, for a bare send key, any run's of that send."""
    if "/" in holder:
        return reserved_by == holder
    return reserved_by.partition("/")[0] == holder


class _Places:
    """Which recipient each reservation holds each of its keys for, worked out once per
    reservation within one call (the reservation is kept, so its id is not reused)."""

    __slots__ = ("_by_term",)

    def __init__(self) -> None:
        self._by_term: dict[int, tuple[_Term, dict[Hashable, int]]] = {}

    def index(self, term: _Term, key: Hashable) -> int | None:
        found = self._by_term.get(id(term))
        if found is None:
            found = self._by_term[id(term)] = (
                term,
                dict(zip(term.keys, term.indices, strict=True)),
            )
        return found[1].get(key)


class Claim(enum.IntEnum):
    """What a reservation found for one key."""

    OURS = 0
    """Claimed for this recipient (new, or this run's own reservation, found again)."""
    SENT = 1
    """Committed: the same message went (or may have) within the window."""
    PENDING = 2
    """Reserved for another recipient whose send has not settled yet."""
    EARLIER = 3
    """Reserved for this recipient by an earlier run of the same send (the same idempotency
    key), which died or lost its hold: now this run's, and its message may have gone."""


def key_fields(
    sender: str, text: str | None, batch: Batch
) -> Iterator[tuple[str, str, tuple[str, ...], str]]:
    """The one key rule: (sender, text, template parameters, phone) for each recipient; the
    recipient's own text where it has one, else the send's."""
    texts = batch.texts if batch.texts is not None else repeat(text or "")
    params = batch.parameters if batch.parameters is not None else repeat(())
    return zip(repeat(sender), texts, params, batch.phones)


class DuplicateWindow(Protocol):
    """What the core needs from a duplicate-window store (in-memory or Redis).

    ``holder`` names the run of a send: ``<send>/<run>``, the send a random id or one derived
    from its idempotency key. With ``indices`` (the recipients) it names the reservation of
    each key, so the same recipient of the same run finds its own reservation again (a retry
    after the store timed out) instead of being blocked by it, and a later run of the same
    send takes over what an earlier one left (:attr:`Claim.EARLIER`, where a store can
    outlive a run).

    A store whose calls never suspend may say so with a true ``instant`` attribute: the core
    then settles outcomes without a cancel shield around them.
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

    async def commit(
        self,
        keys: Sequence[Hashable],
        holder: str,
        indices: Sequence[int],
        extra: float = 0.0,
    ) -> None:
        """Hold these keys a full TTL from now: their messages were (maybe) sent; ``extra``
        seconds more (at most the slack) where the gateway may act on them later still (a
        request on its way when its send was cancelled)."""
        ...

    async def release(self, keys: Sequence[Hashable], holder: str, indices: Sequence[int]) -> None:
        """Drop these reservations, where they are still this run's (a bare send key: any
        run's of that send): surely not sent."""
        ...

    async def hold(self, name: str, run: str, seconds: float) -> bool:
        """Take or renew the lease ``name`` for ``run`` for ``seconds``; false while another
        run holds it. (A store without this method cannot keep two runs of one idempotency
        key apart.)"""
        ...

    async def unhold(self, name: str, run: str) -> None:
        """Drop the lease ``name`` if ``run`` holds it."""
        ...


class MemoryWindow:
    """An in-process duplicate window; the default. Its calls never suspend (``instant``: a
    subclass whose calls do must set it false).

    Memory is bounded by the keys of about one TTL, not by the size of a send: at 9 requests
    of 100 numbers per second and a 120 s TTL, about 108,000 keys in steady traffic. Keys go
    a call at a time in call order, so a call that holds its keys longer (a reservation never
    committed: TTL and slack; a commit long after its reservation, when an answer was long
    in coming) keeps those reserved after it a while longer too: up to about twice as many.
    Each reservation names its holder and recipient, so a release drops only the releasing
    recipient's own, never another send's (or another recipient's of the same send) that
    holds the same key.
    In one process a live reservation is always a live send's, so a key reserved under the
    same holder and recipient is still :attr:`Claim.PENDING`, not taken over as it is in
    Redis, where its holder may have died. Leases (:meth:`hold`) never lapse here: each run
    drops its own as it ends.

    Args:
        ttl: seconds a sent (text, number) pair stays blocked; the gateways use 120.
        slack: seconds a reservation outlasts the TTL: at least as long as a request written
            may take to reach the gateway (the client's read timeout), and some. Clients make
            their own window with 5 s more than their read timeout.
        clock: time source; inject a fake one in tests.
    """

    instant = True
    leases_lapse = False

    def __init__(
        self, ttl: float = 120.0, *, slack: float = SLACK, clock: Clock | None = None
    ) -> None:
        if not (ttl >= 0 and math.isfinite(ttl)) or not (slack >= 0 and math.isfinite(slack)):
            raise ConfigurationError(f"ttl and slack must be zero or positive, got {ttl!r}")
        self.ttl = ttl
        self.slack = slack
        self._clock: Clock = clock or SystemClock()
        # each key maps to the term of the call that last reserved or committed it, shared by
        # the call's keys: a call's keys are claimed by dict operations that run in C, and
        # committed or released together by changing their term
        self._held: dict[Hashable, _Term] = {}
        # terms in call order: eviction works a call at a time, and drops a key only while
        # that call's term still holds it and has expired (a term committed or released in
        # place is due at its new expiry; one due later holds up those behind it a while)
        self._terms: deque[_Term] = deque()
        self._leases: dict[str, str] = {}  # name: the run holding it
        forks.on_fork(self)

    def __len__(self) -> int:
        return len(self._held)

    def _evict(self, now: float) -> None:
        terms, held = self._terms, self._held
        while terms and terms[0].expiry <= now:
            term = terms.popleft()
            if term.whole:  # every key of it still its own: dropped in C
                _drain(map(held.pop, term.keys, repeat(None)))
                continue
            for key in term.keys:
                if held.get(key) is term:
                    del held[key]

    def _take(self, keys: Sequence[Hashable], term: _Term) -> None:
        """Point ``keys`` at ``term``; the terms they leave no longer hold all of theirs."""
        held = self._held
        for key in keys:
            left = held.get(key)
            if left is not None:
                left.whole = False
        held.update(zip(keys, repeat(term)))

    def keys(self, sender: str, text: str | None, batch: Batch) -> list[Hashable]:
        """64-bit hashes of :func:`key_fields`, as ``hash((hash((sender, text)), params,
        phone))``: one tuple hash mixes the parts, so no choice of parameters cancels
        another part out (an XOR of the parts' hashes could); collisions among the keys of
        one TTL are vanishingly rare (about 1 in 3 billion for 108,000 keys)."""
        phones, params = batch.phones, batch.parameters
        if batch.texts is None:  # one text for all: hashed once, the rest in C
            scope = repeat(hash((sender, text or "")))
            return list(map(hash, zip(scope, params or repeat(()), phones, strict=False)))
        return [
            hash((hash((s, t)), p, phone)) for s, t, p, phone in key_fields(sender, text, batch)
        ]

    async def reserve(
        self, keys: Sequence[Hashable], holder: str, indices: Sequence[int]
    ) -> list[Claim]:
        """Claim each key not held by a live reservation or commit, for the recipient of
        ``indices`` at its place; a key this run holds for the same recipient is renewed
        (claimed again from now)."""
        n = len(keys)
        if len(indices) != n:
            raise ValueError("one index per key")
        now = self._clock.now()
        self._evict(now)
        held = self._held
        own = tuple(keys)
        term = _Term(now + self.ttl + self.slack, own, holder, tuple(indices))
        if held.keys().isdisjoint(own):  # the common case, every key new: one sweep
            before = len(held)
            held.update(zip(own, repeat(term)))
            if len(held) - before == n:
                self._terms.append(term)
                return [Claim.OURS] * n
            for key in own:  # a key repeats within the call: undo, go one by one
                held.pop(key, None)
        claims: list[Claim] = []
        claimed: dict[Hashable, int] = {}
        places = _Places()
        for key, index in zip(own, indices, strict=True):
            found = held.get(key)
            if (
                found is not None
                and found.expiry > now
                # this run's own reservation of it for this recipient is renewed
                and not (found.holder == holder and places.index(found, key) == index)
            ):
                claims.append(Claim.SENT if found.holder is None else Claim.PENDING)
            elif key in claimed:
                claims.append(Claim.PENDING)
            else:
                claimed[key] = index
                claims.append(Claim.OURS)
        term = _Term(term.expiry, tuple(claimed), holder, tuple(claimed.values()))
        self._take(tuple(claimed), term)
        self._terms.append(term)
        return claims

    async def commit(
        self,
        keys: Sequence[Hashable],
        holder: str,
        indices: Sequence[int],
        extra: float = 0.0,
    ) -> None:
        """Hold each key a full TTL (and ``extra`` seconds, at most the slack) from now,
        whoever held it."""
        now = self._clock.now()
        until = now + self.ttl + extra_hold(extra, self.slack)
        own = tuple(keys)
        first = self._held.get(own[0]) if own else None
        if (
            first is not None
            and first.whole
            and first.holder is not None
            and first.expiry > now
            and first.keys == own
        ):  # the common case: a live reservation that still holds all its keys, and all of
            # them committed
            first.expiry, first.holder, first.indices = until, None, ()  # queued already
            return
        term = _Term(until, own, None, ())
        self._take(own, term)
        self._terms.append(term)

    async def release(self, keys: Sequence[Hashable], holder: str, indices: Sequence[int]) -> None:
        """Drop the reservations of these keys that are this run's (or, for a bare send key,
        any run's of that send) for the recipient of ``indices`` at the same place; a commit,
        or another's reservation, stays."""
        held = self._held
        first = held.get(keys[0]) if keys else None
        if (
            first is not None
            and first.whole
            and first.holder == holder
            and first.keys == tuple(keys)
            and first.indices == tuple(indices)
        ):  # the common case: what one reserve call claimed (none renewed since), released
            for key in keys:
                if held.get(key) is first:
                    del held[key]
            # its keys are free now: another call may take them before it is evicted
            first.expiry, first.holder, first.indices, first.whole = -math.inf, None, (), False
            return
        places = _Places()
        for key, index in zip(keys, indices, strict=True):
            term = held.get(key)
            if term is None or term.holder is None or not _releases(holder, term.holder):
                continue
            if places.index(term, key) == index:
                del held[key]
                term.whole = False

    async def hold(self, name: str, run: str, seconds: float) -> bool:
        """See :meth:`DuplicateWindow.hold`; held until dropped (``leases_lapse`` is false:
        every run in this process drops its own as it ends; a forked child's window holds
        none of its parent's runs' leases: those runs do not go on in the child)."""
        found = self._leases.setdefault(name, run)
        return found == run

    def _forked(self) -> None:
        """In a forked child, the parent's runs, and so their leases, do not go on."""
        self._leases.clear()

    async def unhold(self, name: str, run: str) -> None:
        """See :meth:`DuplicateWindow.unhold`."""
        if self._leases.get(name) == run:
            del self._leases[name]

    def __repr__(self) -> str:
        return f"MemoryWindow(ttl={self.ttl}, keys={len(self)})"

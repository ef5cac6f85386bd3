"""One run at a time for a keyed send.

A send with an idempotency key may be run again (after a crash, from another process) and
then takes over the duplicate-window reservations its key left: that is how a resumed send
finds its own. Two runs of one key at once would each take the other's, and both send. So a
run holds its key for the whole run, in the store its reservations live in: a lease of
:data:`LEASE` seconds, renewed a third of that apart and dropped at the run's end. A run
that died (killed, its host gone) leaves the lease to lapse, and the next run waits for that;
a lease renewed past that wait is a live run's, and the new one is refused with
:class:`~smsbridge.SendInProgressError` before it reads anything. In one process's memory no
run can die and leave its hold (each drops it as it ends, cancelled or not): a lease there
never lapses, and a second run is refused at once.
"""

from __future__ import annotations

import contextlib
import logging
import math
import os
from collections.abc import Callable
from typing import Protocol

import anyio

from .clock import Clock
from .errors import SendInProgressError, SmsBridgeError, StateBackendError
from .events import NOTICE

__all__ = ["LEASE", "Lease", "Leases"]

log = logging.getLogger("smsbridge")

LEASE = 15.0
"""Seconds a run's hold on its key outlives its last renewal."""


class Leases(Protocol):
    """Where leases live: the duplicate window's store (see
    :meth:`~smsbridge.DuplicateWindow.hold`). A store whose leases never lapse (held in this
    process's memory) says so with a false ``leases_lapse`` attribute."""

    async def hold(self, name: str, run: str, seconds: float) -> bool: ...

    async def unhold(self, name: str, run: str) -> None: ...


class Lease:
    """One run's hold on ``name`` in ``store``."""

    def __init__(self, store: Leases, name: str, clock: Clock, seconds: float = LEASE) -> None:
        self._store = store
        self._name = name
        self._clock = clock
        self._seconds = seconds
        self._run = os.urandom(8).hex()
        self.lapses: bool = getattr(store, "leases_lapse", True)
        """Whether the hold lapses unless renewed (:meth:`keep` must then run)."""
        self._renewed = -math.inf

    async def take(self) -> None:
        """Hold the key, waiting out a lease a dead run left; refuse a live run's."""
        clock, deadline = self._clock, None
        while not await self._store.hold(self._name, self._run, self._seconds):
            now = clock.now()
            if deadline is None:
                deadline = now + self._seconds + 1.0 if self.lapses else now
                if self.lapses:
                    log.warning(
                        "another run holds this send's idempotency key; waiting up to %.0f s "
                        "for it to lapse (a run that died leaves it)",
                        self._seconds + 1.0,
                        extra=NOTICE,
                    )
            if now >= deadline:
                raise SendInProgressError(
                    "another run of this send (the same idempotency key) is still going; "
                    "nothing was sent"
                )
            await clock.sleep(min(1.0, deadline - now))
        self._renewed = clock.now()

    def fresh(self) -> bool:
        """Whether the hold is surely still this run's: renewed within two thirds of the
        lease (a write is held back past that, until a renewal gets through)."""
        return not self.lapses or self._clock.now() - self._renewed < self._seconds * 2 / 3

    async def keep(self, lost: Callable[[SmsBridgeError], None]) -> None:
        """Renew the hold until cancelled; tell ``lost`` if it cannot be kept."""
        while True:
            await self._clock.sleep(self._seconds / 3)
            try:
                kept = await self._store.hold(self._name, self._run, self._seconds)
            except SmsBridgeError as e:
                lost(e)
                return
            if not kept:
                lost(
                    StateBackendError(
                        "another run of this send (the same idempotency key) took it over "
                        "while the state store was out of reach"
                    )
                )
                return
            self._renewed = self._clock.now()

    async def drop(self, within: float | None = None) -> None:
        """Let the key go (a store out of reach, or slower than ``within`` seconds, lets it
        lapse instead)."""
        with (
            anyio.CancelScope(shield=True),
            anyio.move_on_after(within),
            contextlib.suppress(SmsBridgeError),
        ):
            await self._store.unhold(self._name, self._run)

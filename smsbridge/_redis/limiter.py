"""The sliding-window limiter shared through Redis: start times promised by one script on
Redis's clock, kept in local time."""

from __future__ import annotations

import math
import os
import weakref
from typing import Any

import redis.asyncio as aioredis

from .._core.clock import Clock, SystemClock
from .._core.errors import ConfigurationError
from .._core.limiter import DEFAULT_MARGIN, Slot
from .patience import Patience
from .scripts import ACQUIRE, DEFER

__all__ = ["RedisLimiter"]


class RedisLimiter:
    """The sliding-window limiter of :class:`SlidingWindowLimiter`, shared through Redis.

    Each start is scheduled by one Lua script that reads Redis's ``TIME`` (never the callers'
    clocks): it promises the caller the earliest moment at which no ``period + margin`` window
    across all processes would hold more than ``limit`` starts, records it, and returns how
    long to wait. The caller sleeps that long and goes; nobody polls, nobody races.

    Args:
        client: a ``redis.asyncio.Redis``.
        namespace: the account's key prefix (see the module docstring).
        limit, period, margin: as for :class:`SlidingWindowLimiter`; give every process the
            same values. The margin defaults to 50 ms (95% of ``limit`` sustained): a start
            promised by Redis reaches the gateway after one more hop and a wake-up in a
            process that may be busy or opening its first connection, so there is more jitter
            to absorb than in one process (measured here: up to 26 ms with four processes
            starting on two cores).
        outage: seconds to keep retrying while Redis is unreachable before giving up.
        patience: waits out an outage for this and the account's other state in Redis,
            so that it is counted once for all of them (``outage`` is then unused).
        clock: time source for the waits between tries.

    A request must be written within ``margin - 30 ms`` (at least half the margin) of the
    moment Redis promised it (the rest absorbs the way to the gateway, as in one process); a
    slot that would go later asks again, dropping its promise. A slot closed unused drops its
    promise with the next ask. A process that has been late lately asks for promises with a
    width (twice its recent lateness, at most half a period, shrinking as it keeps them): it
    may write that much after the start, and Redis counts the start from the end of it.

    Redis may lose the starts (a restart empty, a flush, an eviction, an older snapshot): a
    mark beside them tells it, the starts are made anew holding a whole window at that
    moment (new starts wait a span; so does an account's first in a week), and the process
    puts back its own starts and promises that still count (see the ``ACQUIRE`` script).
    """

    def __init__(
        self,
        client: aioredis.Redis,
        namespace: str,
        limit: int = 9,
        period: float = 1.0,
        *,
        margin: float = 0.05,
        outage: float = 30.0,
        clock: Clock | None = None,
        patience: Patience | None = None,
    ) -> None:
        if limit < 1 or period <= 0 or margin < 0:
            raise ConfigurationError("limit, period and margin must be positive")
        if period + margin > _LONGEST:  # Redis's clock in microseconds, plus a span, in a double
            raise ConfigurationError(
                "rate_period and rate_margin through Redis are at most a year (31,536,000 s)"
            )
        self.limit, self.period, self.margin = limit, period, margin
        # the way to the gateway keeps the rest of the margin, as in one process
        self.tolerance = max(margin - DEFAULT_MARGIN, margin / 2)
        self._redis = client
        self._keys = (f"{namespace}:starts", f"{namespace}:defer", f"{namespace}:mark")
        self._span_us = round((period + margin) * 1_000_000)
        self._acquire = client.register_script(ACQUIRE)
        self._defer = client.register_script(DEFER)
        self._me = os.urandom(6).hex()
        self._count = 0
        self._unused: list[str] = []  # promises of slots closed unused, dropped at the next ask
        self._held = _held(client, namespace)  # what this process holds in the starts
        self.width = 0.0  # seconds a promise may be kept late: how late this process runs
        self._offset = _Offset()
        self._clock: Clock = clock or SystemClock()
        self._patience = patience or Patience(outage, clock)
        self.outage = self._patience.outage

    def __repr__(self) -> str:
        return (
            f"RedisLimiter({self._keys[0].rsplit(':', 1)[0]!r}, limit={self.limit}, "
            f"period={self.period}, margin={self.margin})"
        )

    async def acquire(self) -> Slot:
        """Get a start time from Redis, and wait until shortly before it."""
        slot = _RedisSlot(self)
        try:
            await slot.promise()
        except BaseException:
            slot.close()  # cancelled while waiting: the promise is given back
            raise
        return slot

    async def defer(self, seconds: float) -> None:
        """Hold back every process's starts for ``seconds`` (a gateway's Retry-After)."""
        if seconds <= 0:
            return
        await self._patience.call(self._defer, self._keys[1:2], [int(seconds * 1_000_000)])


class _RedisSlot:
    """A start Redis promised, for a moment perhaps seconds ahead, on Redis's clock. The
    limiter knows how that clock stands to its own (:class:`_Offset`), so the slot sleeps
    until the promised moment in local time: most of the way before its request takes a
    connection, the last moment right before the write. If the request would still go later
    than the promise allows (the process busy), the promise is stale: the slot asks again,
    dropping it (it never happened, and while it stood it could only hold others back)."""

    __slots__ = ("_earliest", "_latest", "_limiter", "_member", "_started", "_width")

    _AHEAD = 0.2  # seconds before the promised moment at which the request takes a connection

    def __init__(self, limiter: RedisLimiter) -> None:
        self._limiter = limiter
        self._started = False
        self._earliest = self._latest = 0.0  # the promised moment, as far as local time knows
        self._member: str | None = None
        self._width = 0.0  # how late after it this promise may be kept

    async def promise(self, lead: float = 0.0) -> None:
        """Ask Redis for a start (at least ``lead`` seconds ahead), and sleep until shortly
        before it."""
        limiter = self._limiter
        clock = limiter._clock
        limiter._count += 1
        self._width = limiter.width
        width = round(self._width * 1_000_000)
        member = f"{limiter._me}:{limiter._count}" + (f"/{width}" if width else "")
        args: list[int | str] = [limiter.limit, limiter._span_us, member, ""]
        if self._member is None:
            args += ["0", 0, width]
        else:
            args += ["1", round(lead * 1_000_000), width]
            limiter._unused.append(self._member)  # the stale promise this one replaces
        held = limiter._held
        unused = limiter._unused
        if unused:
            limiter._unused = []
            for stale in unused:
                held.mine.pop(stale, None)
        self._member = member
        asked = clock.now()
        acquire, keys = limiter._acquire, limiter._keys
        args += [held.generation, held.heard_us, held.counting(limiter._span_us)]
        start_us, now_us, generation = await limiter._patience.call(
            acquire, keys, [*args, 0, *unused]
        )
        while int(start_us) < 0:  # Redis lost the starts: this process's go back first
            args[7] = held.generation = _text(generation)
            start_us, now_us, generation = await limiter._patience.call(
                acquire, keys, [*args, *held.put_back(), *unused]
            )
        answered = clock.now()
        held.generation = _text(generation)
        held.heard_us = max(held.heard_us, int(now_us))
        held.mine[member] = int(start_us) + width
        low, high = limiter._offset.learn(int(now_us) / 1e6, asked, answered)
        start = int(start_us) / 1e6
        self._earliest, self._latest = start - high, start - low
        early = self._latest - self._AHEAD - clock.now()
        if early > 0:
            await clock.sleep(early)

    def _late(self) -> float:
        # how far past the earliest moment the promise can stand for the clock is now
        return self._limiter._clock.now() - self._earliest

    async def ready(self) -> None:
        limiter = self._limiter
        clock = limiter._clock
        while True:
            rest = self._latest - clock.now()
            if rest > 0:
                await clock.sleep(rest)
            late = self._late()
            if late <= limiter.tolerance + self._width:
                return
            # the process was that busy: its promises get a width to be kept in, and this
            # one's successor leaves twice as long to keep it
            limiter.width = min(max(limiter.width, 2 * late), limiter.period / 2)
            await self.promise(lead=min(2 * late, limiter.period))

    def start(self) -> bool:
        limiter = self._limiter
        self._started = self._late() <= limiter.tolerance + self._width
        if self._started and limiter.width:  # kept: the process is less busy than feared
            width = limiter.width * 0.9
            limiter.width = width if width > 0.001 else 0.0
        return self._started

    def close(self) -> None:
        if not self._started and self._member is not None:
            self._limiter._unused.append(self._member)
            self._member = None


class _Held:
    """What this process holds in an account's starts, whichever of its limiters made it
    (two clients of one account): its starts and promises that may still count (member:
    score, in Redis's microseconds), the set's generation as last seen, and Redis's clock
    at the last answer. How a loss of the set is told, and what goes back into it then,
    all of it at once: a promise of one client, not put back when another found the loss,
    could share a span with the starts given meanwhile."""

    __slots__ = ("__weakref__", "generation", "heard_us", "mine")

    def __init__(self) -> None:
        self.mine: dict[str, int] = {}
        self.generation = ""
        self.heard_us = 0

    def counting(self, span_us: int) -> int:
        """How many may still count (the rest, which no span holds any more, forgotten)."""
        mine, oldest = self.mine, self.heard_us - span_us
        while mine:
            member = next(iter(mine))
            if mine[member] > oldest:
                break
            del mine[member]
        return len(mine)

    def put_back(self) -> list[int | str]:
        """As the script takes them back: their number, then score and member of each."""
        held = list(self.mine.items())  # at once: a limiter on another thread's loop may add
        pairs: list[int | str] = [len(held)]
        for member, score in held:
            pairs += [score, member]
        return pairs


class _Process:
    """This process, as what its limiters' holdings are kept by (a simulated process has
    a ``holder`` of its own)."""


_PROCESS = _Process()
# by process, then by Redis database and account; each held while a limiter of it lives
_HELD: weakref.WeakKeyDictionary[Any, weakref.WeakValueDictionary[str, _Held]] = (
    weakref.WeakKeyDictionary()
)


def _held(client: Any, namespace: str) -> _Held:
    """This process's holdings in an account's starts in one Redis database, shared by all
    its limiters of them (whatever client, spelling of the URL or timeout each reaches it
    by), and let go with the last of them."""
    accounts = _HELD.get(holder := getattr(client, "holder", _PROCESS))
    if accounts is None:
        accounts = _HELD[holder] = weakref.WeakValueDictionary()
    key = f"{_where(client)} {namespace}"
    held = accounts.get(key)
    if held is None:
        held = accounts[key] = _Held()
    return held


def _where(client: Any) -> str:
    """The Redis database a client reaches: its server (host and port, or socket) and
    database number, where it says (or its ``where``, a stand-in's); else the client."""
    where = getattr(client, "where", None)
    if isinstance(where, str):
        return where
    endpoint = getattr(client, "endpoint", None)  # smsbridge's own connection
    if endpoint is not None:
        host, port, path, db = endpoint.host, endpoint.port, endpoint.path, endpoint.db
    else:  # redis-py's
        given = getattr(getattr(client, "connection_pool", None), "connection_kwargs", None)
        if not isinstance(given, dict):
            return f"client {id(client)}"
        host, port, path, db = map(given.get, ("host", "port", "path", "db"))
    host = str(host).lower()
    return f"{'127.0.0.1' if host == 'localhost' else host}:{port}:{path}:{db or 0}"


def _text(value: bytes | str) -> str:
    """A reply's string (redis-py gives bytes)."""
    return value.decode() if isinstance(value, bytes) else value


class _Offset:
    """How Redis's clock stands to the local one: ``redis = local + offset``, ``offset``
    known within ``[low, high]``. Each answer narrows it (Redis read its clock somewhere
    between the local ask and answer); when the two clocks drift apart the bounds stop
    meeting and it starts over from the latest answer."""

    __slots__ = ("high", "low")

    def __init__(self) -> None:
        self.low, self.high = -math.inf, math.inf

    def learn(self, remote: float, asked: float, answered: float) -> tuple[float, float]:
        low, high = remote - answered, remote - asked
        if low > self.high or high < self.low:
            self.low, self.high = low, high
        else:
            self.low, self.high = max(self.low, low), min(self.high, high)
        return self.low, self.high


_LONGEST = 365 * 86400.0  # seconds a span of the limiter may be

"""Shared state in Redis (or Valkey): one limiter and one duplicate window for every process
and host sending for an account. Needs ``smsbridge[redis]``.

Clients use it when ``SMSBRIDGE_REDIS_URL`` (or ``redis_url=``) is set. Keys are namespaced by
gateway account and carry a hash tag, so an account's keys share one cluster slot::

    smsbridge:{smsclub:3f2a9c…}:starts     recent request starts (sorted set)
    smsbridge:{smsclub:3f2a9c…}:defer      no start before this server time (Retry-After)
    smsbridge:{smsclub:3f2a9c…}:w:17:<n>   the duplicate window's entries written in the n-th
                                           2^17 ms of Redis's clock (a hash: a keyed hash of
                                           the recipient -> until when, "r" reserved or "c"
                                           committed, the holder and recipient)
    smsbridge:{smsclub:3f2a9c…}:run:<send> the run of an idempotency key going now (a lease)
    smsbridge:{smsclub:3f2a9c…}:ids…       Webcom's id counter and blocks

Every operation is one Lua script, so a call that timed out on the client and was carried out
later by a frozen server cannot be mistaken for somebody else's: a reservation names its
holder, and the holder's retry finds its own.

Both fail closed: while Redis is unreachable no new start is admitted (starts it promised
before it went away, at most about ``concurrency / limit`` periods ahead, still go out). The
limiter and window keep trying for ``outage`` seconds, so a short outage only pauses a send;
past that the send stops with :class:`StateBackendError` and the recipients it had not sent
are ``failed``. A later send works again as soon as Redis is back.
"""

from __future__ import annotations

import logging
import math
import os
import secrets
from collections.abc import Awaitable, Callable, Hashable, Sequence
from functools import partial
from hashlib import blake2b
from typing import Any, TypeVar

import anyio

from ._core.client import StateFactory
from ._core.clock import Clock, SystemClock
from ._core.errors import ConfigurationError, StateBackendError
from ._core.events import NOTICE
from ._core.gateway import Batch
from ._core.limiter import DEFAULT_MARGIN, Slot
from ._core.window import SLACK, Claim, extra_hold, key_fields
from ._resp import Pipe, Run, parse_url

try:
    import redis.asyncio as aioredis
    from redis.exceptions import OutOfMemoryError, ReadOnlyError, RedisError, ResponseError
except ImportError as e:  # pragma: no cover - exercised only without the extra
    raise ImportError("smsbridge.redis needs: pip install 'smsbridge[redis]'") from e

__all__ = [
    "RedisLimiter",
    "RedisRanges",
    "RedisState",
    "RedisWindow",
    "connect",
    "redis_state",
    "scripts",
]

log = logging.getLogger("smsbridge.redis")

T = TypeVar("T")

# One atomic step on Redis's own clock. The caller is given a definite start time (and the
# clock's reading, from which it learns how Redis's clock stands to its own) -- now,
# or the moment the `limit`-th most recent start (past or already promised) leaves the span --
# and that time is recorded at once, so no other caller can take it: callers are served in
# the order they ask, across processes, and nobody polls. ARGV[7...] name promises of the same
# caller gone stale or left unused (dropped: they can only have held others back). A caller
# whose promise went stale (ARGV[5] = '1') takes the earliest safe start, not the back of the
# queue: a start `limit` places after the newest ones, plus the span, is safe wherever it
# falls among promises already made; first come, first served is only fairness. ARGV[6]
# (microseconds) puts the start at least that far ahead: a caller whose process was too busy
# to keep its promise in time asks for one it can keep (a later start is always safe).
# ARGV[7] (microseconds, the promise's width) lets a busy process write any time from the
# start to that much after it: the start is recorded as its latest moment, so every later
# start counts from a moment at or after the write, and nothing crowds a span; the member
# then ends in '/<width>', so that the queue's order goes by the start. (ARGV[4],
# and ARGV[2] of _DEFER, give "now" in microseconds for tests; callers leave them empty.)
_ACQUIRE = """
local now = tonumber(ARGV[4])
if not now then
    local t = redis.call('TIME')
    now = tonumber(t[1]) * 1000000 + tonumber(t[2])
end
local limit = tonumber(ARGV[1])
local span = tonumber(ARGV[2])
for i = 8, #ARGV do
    redis.call('ZREM', KEYS[1], ARGV[i])
end
local start = math.max(now + (tonumber(ARGV[6]) or 0), tonumber(redis.call('GET', KEYS[2]) or '0'))
redis.call('ZREMRANGEBYSCORE', KEYS[1], '-inf', now - span)
local count = redis.call('ZCARD', KEYS[1])
if count >= limit then
    local kth = redis.call('ZRANGE', KEYS[1], count - limit, count - limit, 'WITHSCORES')
    start = math.max(start, tonumber(kth[2]) + span)
end
if count > 0 and ARGV[5] ~= '1' then
    local last = redis.call('ZRANGE', KEYS[1], -1, -1, 'WITHSCORES')
    local width = tonumber(string.match(last[1], '/(%d+)$')) or 0
    start = math.max(start, tonumber(last[2]) - width)
end
local latest = start + (tonumber(ARGV[7]) or 0)
redis.call('ZADD', KEYS[1], latest, ARGV[3])
-- the key lives while any start it holds counts: a call never shortens what another needs
local keep = math.ceil((latest - now + span) / 1000) + 1000
if redis.call('PTTL', KEYS[1]) < keep then
    redis.call('PEXPIRE', KEYS[1], keep)
end
return {start, now}
"""

_DEFER = """
local now = tonumber(ARGV[2])
if not now then
    local t = redis.call('TIME')
    now = tonumber(t[1]) * 1000000 + tonumber(t[2])
end
local until_ = now + tonumber(ARGV[1])
if until_ > tonumber(redis.call('GET', KEYS[1]) or '0') then
    redis.call('SET', KEYS[1], until_, 'PX', math.ceil(tonumber(ARGV[1]) / 1000) + 1000)
end
return 0
"""


# The duplicate window is a few hashes per account, one per bucket of the server's clock
# (KEYS[1] names them, "<namespace>:w:<log2 of the bucket's length>:", and the bucket's
# number follows; a bucket is twice the TTL, longer than an entry lives, 2^18 ms for the
# default two minutes, so a live entry is in the current bucket or the one before): a
# recipient's entry is a field, its keyed hash, written into the bucket of the moment it was
# written, so
# a batch is one HMGET per bucket and one HSET, not a hundred keys. The value says until
# when it holds (13-digit server milliseconds; a hash only expires as a whole, once
# everything written into it has) and what it is: "r<send>/<run>:<index>" while reserved,
# "R…" once the run took it over from an earlier run of the send, "c…" once committed (the
# holder names a run of a send, see DuplicateWindow). A field's newest value is the one in the
# newest bucket that has it (a later write shadows an earlier one; a release drops them all).
# ARGV, the same for the three scripts: [1] milliseconds the entry holds (a release: how long
# entries may live, so how far back to look), [2] holder, [3] the recipients' indices,
# comma-separated, or "<first>+<count>" for a run of them (one argument, not one per key: a
# batch's call is a hundred keys), [4] the
# server's "now" in milliseconds, for tests (callers leave it empty), [5] the buckets'
# length in milliseconds, [6...] the fields (at most a few thousand: Lua's unpack has a limit).
_WINDOW = """
local now = tonumber(ARGV[4])
if not now then
    local t = redis.call('TIME')
    now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
end
local life, span = tonumber(ARGV[1]), tonumber(ARGV[5])
local bucket = math.floor(now / span)
local oldest = bucket - math.ceil(life / span)
local fields = {}
for i = 6, #ARGV do
    fields[i - 5] = ARGV[i]
end
local function newest()
    local found, missing = {}, #fields
    for b = bucket, oldest, -1 do
        if missing == 0 then
            break
        end
        local got = redis.call('HMGET', KEYS[1] .. b, unpack(fields))
        for i = 1, #fields do
            if found[i] == nil and got[i] then
                found[i] = got[i]
                missing = missing - 1
            end
        end
    end
    return found
end
local function write(sets)
    local key = KEYS[1] .. bucket
    redis.call('HSET', key, unpack(sets))
    local keep = (bucket + 1) * span + life - now + 1000
    if redis.call('PTTL', key) < keep then
        redis.call('PEXPIRE', key, keep)
    end
end
local stamp = string.format('%013d', now + life)
local function each(indices)
    local first, count = string.match(indices, '^(%d+)%+(%d+)$')
    if not first then
        return string.gmatch(indices, '[^,]+')
    end
    local index, last = tonumber(first) - 1, tonumber(first) + tonumber(count) - 1
    return function()
        if index < last then
            index = index + 1
            return index
        end
    end
end
"""

# Returns one digit per recipient: 0 (ours: new, or this run's own reservation), 1
# (committed, by anyone: this send's own commit too, its message went), 2 (reserved by
# another recipient, not yet settled), 3 (this recipient's reservation by an earlier run of
# the same send, taken over: it may have sent it). A call carried out twice (its first answer
# lost) answers the same: a takeover stays a takeover.
_RESERVE = (
    _WINDOW
    + """
local found = newest()
local send = string.match(ARGV[2], '^[^/]*') .. '/'
local out, sets, written = {}, {}, {}
local i = 0
for index in each(ARGV[3]) do
    i = i + 1
    local field, body, tail = fields[i], ARGV[2] .. ':' .. index, ':' .. index
    local held = written[field] or found[i]
    local state = nil
    if held and tonumber(string.sub(held, 1, 13)) > now then
        state, held = string.sub(held, 14, 14), string.sub(held, 15)
    end
    local mark = nil
    if not state then
        mark, out[i] = 'r', '0'
    elseif state == 'c' then
        out[i] = '1'
    elseif held == body then
        mark, out[i] = state, (state == 'r' and '0' or '3')
    elseif string.sub(held, 1, #send) == send and string.sub(held, -#tail) == tail then
        mark, out[i] = 'R', '3'
    else
        out[i] = '2'
    end
    if mark then
        written[field] = stamp .. mark .. body
        sets[#sets + 1] = field
        sets[#sets + 1] = written[field]
    end
end
if #sets > 0 then
    write(sets)
end
return table.concat(out)
"""
)

_COMMIT = (
    _WINDOW
    + """
local sets = {}
local i = 0
for index in each(ARGV[3]) do
    i = i + 1
    sets[2 * i - 1] = fields[i]
    sets[2 * i] = stamp .. 'c' .. ARGV[2] .. ':' .. index
end
if i > 0 then
    write(sets)
end
return i
"""
)

# Drops the live reservations of this run for these recipients (from every bucket); a bare
# send (no '/'), those of any run of that send (a journaled resume frees what a dead run
# reserved and surely did not write).
_RELEASE = (
    _WINDOW
    + """
local found = newest()
local any = not string.find(ARGV[2], '/', 1, true)
local send = ARGV[2] .. '/'
local gone = {}
local i = 0
for index in each(ARGV[3]) do
    i = i + 1
    local held, tail = found[i], ':' .. index
    if held and tonumber(string.sub(held, 1, 13)) > now and string.sub(held, 14, 14) ~= 'c' then
        held = string.sub(held, 15)
        local match
        if any then
            match = string.sub(held, 1, #send) == send and string.sub(held, -#tail) == tail
        else
            match = held == ARGV[2] .. tail
        end
        if match then
            gone[#gone + 1] = fields[i]
        end
    end
end
if #gone > 0 then
    for b = bucket, oldest, -1 do
        redis.call('HDEL', KEYS[1] .. b, unpack(gone))
    end
end
return #gone
"""
)

# KEYS[1]: a run's lease; ARGV[1]: the run; ARGV[2]: milliseconds. Taken or renewed (1)
# unless another run holds it (0).
_HOLD = """
local held = redis.call('GET', KEYS[1])
if held and held ~= ARGV[1] then
    return 0
end
redis.call('SET', KEYS[1], ARGV[1], 'PX', ARGV[2])
return 1
"""

_UNHOLD = """
if redis.call('GET', KEYS[1]) == ARGV[1] then
    return redis.call('DEL', KEYS[1])
end
return 0
"""

# KEYS[1]: the account's id counter, KEYS[2]: the block's name; ARGV: count, size, seconds
# the block is remembered. The same block name gets the same start (a retry after a timeout).
_CLAIM = """
local given = redis.call('GET', KEYS[2])
if given then
    return tonumber(given)
end
local size = tonumber(ARGV[2])
local start = tonumber(redis.call('GET', KEYS[1]) or ARGV[4] or '0') % size
redis.call('SET', KEYS[1], (start + tonumber(ARGV[1])) % size)
redis.call('SET', KEYS[2], start, 'EX', ARGV[3])
return start
"""

scripts = {
    "acquire": _ACQUIRE,
    "defer": _DEFER,
    "reserve": _RESERVE,
    "commit": _COMMIT,
    "release": _RELEASE,
    "hold": _HOLD,
    "unhold": _UNHOLD,
    "claim": _CLAIM,
}
"""Every Lua script smsbridge runs, by name (for tests and stand-ins of Redis)."""


def connect(url: str) -> aioredis.Redis:
    """A redis-py client with short timeouts, so an outage is noticed within seconds (for a
    :class:`RedisState` given ``client=``; with a URL it uses smsbridge's own connection)."""
    try:
        return aioredis.Redis.from_url(
            url, socket_connect_timeout=2.0, socket_timeout=2.0, health_check_interval=10
        )
    except ValueError as e:
        raise ConfigurationError(f"bad Redis URL: {e}") from None


def _unavailable(error: Exception) -> StateBackendError:
    return StateBackendError(f"Redis unavailable: {type(error).__name__}: {error}")


class _Patience:
    """Retries a Redis call while Redis is unreachable (or answers with an error that may
    pass), up to ``outage`` seconds; any other error reply ends it at once."""

    def __init__(self, outage: float, clock: Clock | None) -> None:
        if not (
            isinstance(outage, int | float)
            and not isinstance(outage, bool)
            and 0 <= outage < math.inf
        ):
            raise ConfigurationError(
                f"redis_outage must be a number of seconds from 0, got {outage!r}"
            )
        self.outage = outage
        self.clock: Clock = clock or SystemClock()

    async def call(self, operation: Callable[[], Awaitable[T]]) -> T:
        down_since: float | None = None
        while True:
            try:
                result = await operation()
            except ResponseError as e:
                if not _passing(e):  # Redis answered, and will answer the same again
                    raise StateBackendError(f"Redis refused: {e}") from e
                error: Exception = e
            except (RedisError, OSError) as e:
                error = e
            else:
                if down_since is not None:
                    log.warning("Redis reachable again; sending resumes", extra=NOTICE)
                return result
            now = self.clock.now()
            if down_since is None:
                down_since = now
                log.error("Redis unreachable; sending paused: %s", error, extra=NOTICE)
            if now - down_since >= self.outage:
                raise _unavailable(error) from error
            await self.clock.sleep(min(1.0, max(self.outage / 10, 0.05)))


# Error replies that a later try may not get: Redis loading its data, busy with a script,
# a replica promoted or demoted, out of memory or unable to persist for now, too few replicas,
# too many clients (the answer to AUTH). Redis before 7 wraps an error raised inside a script
# ("ERR Error running script ... -OOM ..."), hence the search for "-CODE" too.
_PASSING = (
    "LOADING",
    "BUSY",
    "MASTERDOWN",
    "READONLY",
    "TRYAGAIN",
    "OOM",
    "CLUSTERDOWN",
    "MISCONF",
    "NOREPLICAS",
)


def _passing(error: ResponseError) -> bool:
    text = str(error)
    return (
        isinstance(error, (ReadOnlyError, OutOfMemoryError))
        or text.startswith(_PASSING)
        or any(f"-{code} " in text for code in _PASSING)
        or "max number of clients" in text
    )


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
        clock: time source for the waits between tries.

    A request must be written within ``margin - 30 ms`` (at least half the margin) of the
    moment Redis promised it (the rest absorbs the way to the gateway, as in one process); a
    slot that would go later asks again, dropping its promise. A slot closed unused drops its
    promise with the next ask. A process that has been late lately asks for promises with a
    width (twice its recent lateness, at most half a period, shrinking as it keeps them): it
    may write that much after the start, and Redis counts the start from the end of it.
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
    ) -> None:
        if limit < 1 or period <= 0 or margin < 0:
            raise ConfigurationError("limit, period and margin must be positive")
        self.limit, self.period, self.margin, self.outage = limit, period, margin, outage
        # the way to the gateway keeps the rest of the margin, as in one process
        self.tolerance = max(margin - DEFAULT_MARGIN, margin / 2)
        self._redis = client
        self._keys = [f"{namespace}:starts", f"{namespace}:defer"]
        self._span_us = round((period + margin) * 1_000_000)
        self._acquire = client.register_script(_ACQUIRE)
        self._defer = client.register_script(_DEFER)
        self._me = os.urandom(6).hex()
        self._count = 0
        self._unused: list[str] = []  # promises of slots closed unused, dropped at the next ask
        self.width = 0.0  # seconds a promise may be kept late: how late this process runs
        self._offset = _Offset()
        self._clock: Clock = clock or SystemClock()
        self._patience = _Patience(outage, clock)

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
        await self._patience.call(
            lambda: self._defer(keys=self._keys[1:], args=[int(seconds * 1_000_000)])
        )


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
        args += limiter._unused
        limiter._unused = []
        self._member = member
        asked = clock.now()
        start_us, now_us = await limiter._patience.call(
            partial(limiter._acquire, limiter._keys, args)
        )
        answered = clock.now()
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


class RedisWindow:
    """The duplicate window in Redis: one Lua script per batch to reserve, commit or release.

    Entries are fields of a few hashes per account (one per bucket of the server's clock, a
    bucket as long as an entry lives, see the scripts), named by a keyed BLAKE2b (16 bytes) of
    :func:`~smsbridge._core.window.key_fields` under a key derived from the account's
    credentials, so neither numbers nor texts are stored, and all processes of the account
    compute the same fields. Values name the holder and recipient, so a retry of a
    reservation the server carried out after the client gave up finds it its own.

    Every process of an account should use the same ``ttl``: a window looks back as far as
    its own entries live.

    Args:
        client: a Redis client (``register_script``).
        namespace: the account's key prefix.
        secret: the key of the fields' hash (the client derives it from the credentials).
        ttl: seconds a sent (text, number) pair stays blocked.
        slack: seconds a reservation outlasts the TTL (see
            :class:`~smsbridge.MemoryWindow`).
        outage: seconds to keep retrying while Redis is unreachable before giving up.
        clock: time source for the waits between tries.
    """

    def __init__(
        self,
        client: Any,
        namespace: str,
        secret: bytes,
        ttl: float = 120.0,
        *,
        slack: float = SLACK,
        outage: float = 30.0,
        clock: Clock | None = None,
    ) -> None:
        if not (ttl > 0 and math.isfinite(ttl)) or not (slack >= 0 and math.isfinite(slack)):
            raise ConfigurationError("ttl must be positive and slack not negative")
        if ttl > _LONGEST:  # an entry's "until" is 13 digits of milliseconds
            raise ConfigurationError("window_ttl through Redis is at most a year (31,536,000 s)")
        self.ttl = ttl
        self.slack = slack
        # buckets twice the TTL, at least 2^17 ms, a power of two, so that processes of the
        # account whose TTL is nearly the same share them whatever their slack (their read
        # timeouts); an entry lives at most a bucket, so it is in the current one or the one
        # before, and a call reads those two whoever wrote it
        self._span = max(1 << 17, 1 << (int(2 * ttl * 1000) - 1).bit_length())
        longest = self._span / 1000 - ttl
        if slack > longest:
            raise ConfigurationError(
                f"a duplicate window of {ttl:g} s through Redis holds a reservation at most "
                f"{longest:g} s past the TTL, and this client's read timeout and 5 s make "
                f"{slack:g}: give a read timeout of at most {longest - 5:g} s, or a longer "
                "window_ttl"
            )
        self._hashes = [f"{namespace}:w:{self._span.bit_length() - 1}:"]
        self._framed = isinstance(client, Pipe)  # smsbridge's own connection frames the fields once
        self._blake = partial(blake2b, key=secret[:64], digest_size=16)
        self._ttl_ms = int(ttl * 1000)
        self._reserve_ms = int((ttl + slack) * 1000)
        self._reserve = client.register_script(_RESERVE)
        self._commit = client.register_script(_COMMIT)
        self._release = client.register_script(_RELEASE)
        self._hold = client.register_script(_HOLD)
        self._unhold = client.register_script(_UNHOLD)
        self._leases = f"{namespace}:run:"
        self._patience = _Patience(outage, clock)

    def __repr__(self) -> str:
        return f"RedisWindow({self._hashes[0][:-3]!r}, ttl={self.ttl})"

    def keys(self, sender: str, text: str | None, batch: Batch) -> list[Hashable]:
        """A 16-byte keyed hash per recipient (the field of its entry)."""
        if batch.texts is None and batch.params is None:  # one text for all: hashed once
            base = self._blake()
            base.update(key_head(sender, text or "", ()))
            out: list[Hashable] = []
            for phone in batch.phones:
                h = base.copy()
                h.update(phone.encode())
                out.append(h.digest())
            return out
        return [
            self._blake(key_head(sender, text, params) + phone.encode()).digest()
            for sender, text, params, phone in key_fields(sender, text, batch)
        ]

    async def reserve(
        self, keys: Sequence[Hashable], holder: str, indices: Sequence[int]
    ) -> list[Claim]:
        """Claim each key for its recipient; see :class:`~smsbridge._core.window.Claim`."""
        if len(keys) != len(indices):
            raise ValueError("one index per key")
        replies = await self._call(self._reserve, self._reserve_ms, holder, keys, indices)
        text = "".join(r.decode() if isinstance(r, bytes) else str(r) for r in replies)
        return list(map(_CLAIMS.__getitem__, text))

    async def commit(
        self,
        keys: Sequence[Hashable],
        holder: str,
        indices: Sequence[int],
        extra: float = 0.0,
    ) -> None:
        """Hold for a full TTL (and ``extra`` seconds, at most the slack) from now."""
        if keys:
            more = round(extra_hold(extra, self.slack) * 1000)
            await self._call(self._commit, self._ttl_ms + more, holder, keys, indices)

    async def release(self, keys: Sequence[Hashable], holder: str, indices: Sequence[int]) -> None:
        """Drop the reservations that are still this run's (a bare send key: any run's of
        that send); see :meth:`~smsbridge.DuplicateWindow.release`."""
        if keys:
            await self._call(self._release, self._reserve_ms, holder, keys, indices)

    async def _call(
        self,
        script: Callable[..., Awaitable[Any]],
        ms: int,
        holder: str,
        keys: Sequence[Hashable],
        indices: Sequence[int],
    ) -> list[Any]:
        """The script's replies over the batch, a thousand recipients a call (Lua's
        ``unpack`` takes no more than a few thousand at once)."""
        replies = []
        for at in range(0, len(keys), _CHUNK):
            chunk, chosen = keys[at : at + _CHUNK], indices[at : at + _CHUNK]
            args: list[Any] = [ms, holder, _joined(chosen), "", self._span]
            if self._framed:
                args.append(Run(chunk))  # type: ignore[arg-type]
            else:
                args += chunk
            replies.append(await self._patience.call(partial(script, self._hashes, args)))
        return replies

    async def hold(self, name: str, run: str, seconds: float) -> bool:
        """Take or renew the lease ``name`` for ``run`` (see
        :meth:`~smsbridge.DuplicateWindow.hold`); on the server's clock."""
        taken = await self._patience.call(
            partial(self._hold, [self._leases + name], [run, math.ceil(seconds * 1000)])
        )
        return bool(int(taken))

    async def unhold(self, name: str, run: str) -> None:
        """Drop the lease ``name`` if ``run`` holds it."""
        await self._patience.call(partial(self._unhold, [self._leases + name], [run]))


class RedisRanges:
    """An account's id ranges in Redis: one counter for every process and host of the account,
    and each block's start remembered for ``remember`` seconds (30 days), so that a send
    repeated with the same key gets the same ids.

    Args:
        client: a ``redis.asyncio.Redis``.
        namespace: the account's key prefix.
        outage: seconds to keep retrying while Redis is unreachable before giving up.
        clock: time source for the waits between tries.
    """

    def __init__(
        self,
        client: aioredis.Redis,
        namespace: str,
        *,
        remember: float = 30 * 86400.0,
        outage: float = 30.0,
        clock: Clock | None = None,
    ) -> None:
        self._counter = f"{namespace}:ids"
        self._prefix = f"{namespace}:ids:"
        self._remember = int(remember)
        self._claim = client.register_script(_CLAIM)
        self._patience = _Patience(outage, clock)

    async def claim(self, key: bytes, count: int, size: int) -> int:
        """See :meth:`~smsbridge._core.ranges.IdRanges.claim`."""
        keys = [self._counter, self._prefix + key.hex()]
        # a counter Redis lost (a restart without persistence, a flush) starts again from a
        # random point, as in memory, not from 0: ids handed out before would be repeated,
        # and a gateway answers a repeated id with the old message, sending nothing
        args = [count, size, self._remember, secrets.randbelow(size)]
        start = await self._patience.call(partial(self._claim, keys, args))
        return int(start)


_CHUNK = 1000  # recipients per window call
_EXACT = 10**13  # indices a run in Lua may reach: its numbers are doubles, written by %.14g
_LONGEST = 365 * 86400.0  # seconds a window entry may hold

_CLAIMS = {"0": Claim.OURS, "1": Claim.SENT, "2": Claim.PENDING, "3": Claim.EARLIER}


def _joined(indices: Sequence[int]) -> str:
    """Recipients' indices as the window scripts read them: ``"<first>+<count>"`` for a run
    of consecutive ones (a batch as it was packed), else comma-separated."""
    count = len(indices)
    if count > 2:
        first = indices[0]
        if (
            type(first) is int  # not True, whose run Lua would read as one index
            and first >= 0
            and indices[-1] - first == count - 1
            and first + count < _EXACT  # Lua's numbers write it digit for digit
            and list(range(first, first + count)) == indices
        ):
            return f"{first}+{count}"
    return ",".join(map(str, indices))


def key_head(sender: str, text: str, params: tuple[str, ...]) -> bytes:
    """What a recipient's field hashes before its number: the key fields as unambiguous bytes
    (NUL between fields, US between parameters). A text no gateway can carry (a lone
    surrogate) still has a key, so its recipients get their outcome (``failed``: the request
    cannot be built) instead of breaking the send."""
    joined = f"{sender}\x00{text}\x00{chr(31).join(params)}\x00"
    return joined.encode("utf-8", "surrogatepass")


class RedisState:
    """The limiter, window and id ranges of one account, shared through Redis.

    Given a URL, it runs on the process's one pipelined connection to that Redis (see
    :mod:`smsbridge._resp`), shared with every other account's state of the same URL.

    Args:
        url: the Redis URL (``redis://``, ``rediss://`` or ``unix://``), or pass ``client``.
        provider: the gateway's name, and
        account_id: the account's id: together they name the keys.
        secret: the window's HMAC key.
        limit, period, margin: the limiter's settings.
        window_ttl: the window's TTL (0: no window).
        window_slack: seconds a reservation outlasts it (the client's read timeout and 5).
        outage: seconds to wait for an unreachable Redis.
        clock: time source.
        client: a ``redis.asyncio.Redis`` (or a stand-in) instead of ``url``.
    """

    def __init__(
        self,
        url: str | None = None,
        *,
        provider: str,
        account_id: str,
        secret: bytes,
        limit: int,
        period: float,
        margin: float,
        window_ttl: float,
        window_slack: float = SLACK,
        outage: float = 30.0,
        clock: Clock | None = None,
        client: Any = None,
    ) -> None:
        if client is None:
            if url is None:
                raise ConfigurationError("give a Redis URL or client")
            client = Pipe(url)
        self.client = client
        namespace = f"smsbridge:{{{provider}:{account_id}}}"
        self.limiter = RedisLimiter(
            client, namespace, limit, period, margin=margin, outage=outage, clock=clock
        )
        self.window = (
            RedisWindow(
                client,
                namespace,
                secret,
                window_ttl,
                slack=window_slack,
                outage=outage,
                clock=clock,
            )
            if window_ttl
            else None
        )
        self.ranges = RedisRanges(client, namespace, outage=outage, clock=clock)

    async def aclose(self) -> None:
        """Give back the connection (closed once no other account of the process uses it)."""
        with anyio.CancelScope(shield=True):
            await self.client.aclose()


def redis_state(url: str, *, outage: float = 30.0) -> StateFactory:
    """What a client needs to keep its account's limiter and window in the Redis at ``url``
    (``SmsClub(state=redis_state(url))``; ``redis_url=`` and ``SMSBRIDGE_REDIS_URL`` do
    this). The URL is checked now; the connection is opened on first use."""
    parse_url(url)  # a bad URL fails here, not later

    def factory(
        *,
        provider: str,
        account: str,
        secret: bytes,
        limit: int,
        period: float,
        margin: float,
        window_ttl: float,
        window_slack: float = SLACK,
        clock: Clock,
    ) -> RedisState:
        return RedisState(
            url,
            provider=provider,
            account_id=account,
            secret=secret,
            limit=limit,
            period=period,
            margin=margin,
            window_ttl=window_ttl,
            window_slack=window_slack,
            outage=outage,
            clock=clock,
        )

    return factory

"""Shared state in Redis (or Valkey): one limiter and one duplicate window for every process
and host sending for an account. Needs ``smsbridge[redis]``.

Clients use it when ``SMSBRIDGE_REDIS_URL`` (or ``redis_url=``) is set. Keys are namespaced by
gateway account and carry a hash tag, so an account's keys share one cluster slot::

    smsbridge:{smsclub:3f2a9c…}:starts     recent request starts (sorted set)
    smsbridge:{smsclub:3f2a9c…}:defer      no start before this server time (Retry-After)
    smsbridge:{smsclub:3f2a9c…}:w:<hmac>   one duplicate-window entry

Both fail closed: while Redis is unreachable no new start is admitted (starts it promised
before it went away, at most about ``concurrency / limit`` periods ahead, still go out). The
limiter and window keep trying for ``outage`` seconds, so a short outage only pauses a send;
past that the send stops with :class:`StateBackendError` and the recipients it had not sent
are ``failed``. A later send works again as soon as Redis is back.
"""

from __future__ import annotations

import hashlib
import hmac
import logging
import math
import os
from collections.abc import Awaitable, Callable, Hashable, Sequence
from functools import partial
from itertools import repeat
from typing import Any, TypeVar

import anyio

from ._core.clock import Clock, SystemClock
from ._core.errors import ConfigurationError, StateBackendError
from ._core.gateway import Batch

try:
    import redis.asyncio as aioredis
    from redis.exceptions import RedisError
except ImportError as e:  # pragma: no cover - exercised only without the extra
    raise ImportError("smsbridge.redis needs: pip install 'smsbridge[redis]'") from e

__all__ = ["RedisLimiter", "RedisState", "RedisWindow", "connect"]

log = logging.getLogger("smsbridge.redis")

T = TypeVar("T")

# One atomic step on Redis's own clock. The caller is given a definite start time -- now,
# or the moment the `limit`-th most recent start (past or already promised) leaves the span --
# and that time is recorded at once, so no other caller can take it: callers are served in
# the order they ask, across processes, and nobody polls.
_ACQUIRE = """
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000000 + tonumber(t[2])
local limit = tonumber(ARGV[1])
local span = tonumber(ARGV[2])
local start = math.max(now, tonumber(redis.call('GET', KEYS[2]) or '0'))
redis.call('ZREMRANGEBYSCORE', KEYS[1], '-inf', now - span)
local count = redis.call('ZCARD', KEYS[1])
if count >= limit then
    local kth = redis.call('ZRANGE', KEYS[1], count - limit, count - limit, 'WITHSCORES')
    start = math.max(start, tonumber(kth[2]) + span)
end
if count > 0 then
    local last = redis.call('ZRANGE', KEYS[1], -1, -1, 'WITHSCORES')
    start = math.max(start, tonumber(last[2]))
end
redis.call('ZADD', KEYS[1], start, ARGV[3])
redis.call('PEXPIRE', KEYS[1], math.ceil((start - now + span) / 1000) + 1000)
return start - now
"""

_DEFER = """
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000000 + tonumber(t[2])
local until_ = now + tonumber(ARGV[1])
if until_ > tonumber(redis.call('GET', KEYS[1]) or '0') then
    redis.call('SET', KEYS[1], until_, 'PX', math.ceil(tonumber(ARGV[1]) / 1000) + 1000)
end
return 0
"""


def connect(url: str) -> aioredis.Redis:
    """A Redis client with short timeouts, so an outage is noticed within seconds."""
    try:
        return aioredis.Redis.from_url(
            url, socket_connect_timeout=2.0, socket_timeout=2.0, health_check_interval=10
        )
    except ValueError as e:
        raise ConfigurationError(f"bad Redis URL: {e}") from None


def _unavailable(error: Exception) -> StateBackendError:
    return StateBackendError(f"Redis unavailable: {type(error).__name__}: {error}")


class _Patience:
    """Retries a Redis call while Redis is unreachable, up to ``outage`` seconds."""

    def __init__(self, outage: float, clock: Clock | None) -> None:
        self.outage = outage
        self.clock: Clock = clock or SystemClock()

    async def call(self, operation: Callable[[], Awaitable[T]]) -> T:
        down_since: float | None = None
        while True:
            try:
                result = await operation()
            except (RedisError, OSError) as e:
                now = self.clock.now()
                if down_since is None:
                    down_since = now
                    log.error("Redis unreachable; sending paused: %s", e)
                if now - down_since >= self.outage:
                    raise _unavailable(e) from e
                await self.clock.sleep(min(1.0, max(self.outage / 10, 0.05)))
                continue
            if down_since is not None:
                log.warning("Redis reachable again; sending resumes")
            return result


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
            same values. The margin defaults to 40 ms (96% of ``limit`` sustained): a start
            promised by Redis reaches the gateway after one more hop and a wake-up in a
            process that may be busy or opening its first connection, so there is more jitter
            to absorb than in one process (measured here: up to 26 ms with four processes
            starting on two cores).
        outage: seconds to keep retrying while Redis is unreachable before giving up.
        clock: time source for the waits between tries.
    """

    def __init__(
        self,
        client: aioredis.Redis,
        namespace: str,
        limit: int = 9,
        period: float = 1.0,
        *,
        margin: float = 0.04,
        outage: float = 30.0,
        clock: Clock | None = None,
    ) -> None:
        if limit < 1 or period <= 0 or margin < 0:
            raise ConfigurationError("limit, period and margin must be positive")
        self.limit, self.period, self.margin, self.outage = limit, period, margin, outage
        self._redis = client
        self._keys = [f"{namespace}:starts", f"{namespace}:defer"]
        self._span_us = round((period + margin) * 1_000_000)
        self._acquire = client.register_script(_ACQUIRE)
        self._defer = client.register_script(_DEFER)
        self._me = os.urandom(6).hex()
        self._count = 0
        self._clock: Clock = clock or SystemClock()
        self._patience = _Patience(outage, clock)

    def __repr__(self) -> str:
        return (
            f"RedisLimiter({self._keys[0].rsplit(':', 1)[0]!r}, limit={self.limit}, "
            f"period={self.period}, margin={self.margin})"
        )

    async def acquire(self) -> None:
        """Get a start time from Redis, and wait for it."""
        self._count += 1
        args: list[int | str] = [self.limit, self._span_us, f"{self._me}:{self._count}"]
        wait_us = int(await self._patience.call(partial(self._acquire, self._keys, args)))
        if wait_us > 0:
            await self._clock.sleep(wait_us / 1_000_000)

    async def defer(self, seconds: float) -> None:
        """Hold back every process's starts for ``seconds`` (a gateway's Retry-After)."""
        if seconds <= 0:
            return
        await self._patience.call(
            lambda: self._defer(keys=self._keys[1:], args=[int(seconds * 1_000_000)])
        )


class RedisWindow:
    """The duplicate window in Redis: ``SET NX PX`` to reserve, ``SET PX`` to commit,
    ``DEL`` to release, each a single pipelined round trip per batch.

    Keys hold an HMAC of (sender, text, parameters, phone) under a key derived from the
    account's credentials, so neither numbers nor texts are stored, and all processes of the
    account compute the same keys.

    Args:
        client: a ``redis.asyncio.Redis``.
        namespace: the account's key prefix.
        secret: the HMAC key (the client derives it from the credentials).
        ttl: seconds a sent (text, number) pair stays blocked.
        slack: seconds a reservation outlasts the TTL, so a prompt answer needs no commit.
        outage: seconds to keep retrying while Redis is unreachable before giving up.
        clock: time source for the waits between tries.
    """

    def __init__(
        self,
        client: aioredis.Redis,
        namespace: str,
        secret: bytes,
        ttl: float = 120.0,
        *,
        slack: float = 5.0,
        outage: float = 30.0,
        clock: Clock | None = None,
    ) -> None:
        if not (ttl > 0 and math.isfinite(ttl)) or not (slack >= 0 and math.isfinite(slack)):
            raise ConfigurationError("ttl must be positive and slack not negative")
        self.ttl = ttl
        self.slack = slack
        self._redis = client
        self._prefix = f"{namespace}:w:"
        self._secret = secret
        self._ttl_ms = int(ttl * 1000)
        self._reserve_ms = int((ttl + slack) * 1000)
        self._patience = _Patience(outage, clock)

    def __repr__(self) -> str:
        return f"RedisWindow({self._prefix[:-3]!r}, ttl={self.ttl})"

    def keys(self, sender: str, text: str | None, batch: Batch) -> list[Hashable]:
        """``<namespace>:w:<hmac-sha256>`` per recipient."""
        texts = batch.texts if batch.texts is not None else repeat(text or "")
        params = batch.params if batch.params is not None else repeat(())
        base = hmac.new(self._secret, f"{sender}\x00".encode(), hashlib.sha256)
        keys: list[Hashable] = []
        for own, values, phone in zip(texts, params, batch.phones, strict=False):
            mac = base.copy()
            mac.update(f"{own}\x00{chr(31).join(values)}\x00{phone}".encode())
            keys.append(self._prefix + mac.hexdigest())
        return keys

    async def _run(self, commands: Callable[[Any], object]) -> list[Any]:
        async def once() -> list[Any]:
            async with self._redis.pipeline(transaction=False) as pipe:
                commands(pipe)
                return list(await pipe.execute())

        return await self._patience.call(once)

    async def reserve(self, keys: Sequence[Hashable]) -> list[bool]:
        """``SET key 1 NX PX ttl+slack`` for each: ``True`` where this call set it."""

        def commands(pipe: Any) -> None:
            for key in keys:
                pipe.set(key, b"1", nx=True, px=self._reserve_ms)

        return [bool(ok) for ok in await self._run(commands)]

    async def commit(self, keys: Sequence[Hashable]) -> None:
        """Hold for a full TTL from now."""

        def commands(pipe: Any) -> None:
            for key in keys:
                pipe.set(key, b"2", px=self._ttl_ms)

        await self._run(commands)

    async def release(self, keys: Sequence[Hashable]) -> None:
        """Forget the reservations."""
        if keys:
            await self._run(lambda pipe: pipe.delete(*keys))


class RedisState:
    """The limiter and window a client builds from a Redis URL; owns the connection."""

    def __init__(
        self,
        url: str,
        *,
        provider: str,
        account_id: str,
        secret: bytes,
        limit: int,
        period: float,
        margin: float,
        window_ttl: float,
        outage: float = 30.0,
        clock: Clock | None = None,
    ) -> None:
        self.client = connect(url)
        namespace = f"smsbridge:{{{provider}:{account_id}}}"
        self.limiter = RedisLimiter(
            self.client, namespace, limit, period, margin=margin, outage=outage, clock=clock
        )
        self.window = (
            RedisWindow(self.client, namespace, secret, window_ttl, outage=outage, clock=clock)
            if window_ttl
            else None
        )

    async def aclose(self) -> None:
        """Close the connection pool."""
        with anyio.CancelScope(shield=True):
            await self.client.aclose()

"""Shared state in Redis (or Valkey): one limiter and one duplicate window for every process
and host sending for an account. Needs ``smsbridge[redis]``.

Clients use it when ``SMSBRIDGE_REDIS_URL`` (or ``redis_url=``) is set. Keys are namespaced by
gateway account and carry a hash tag, so an account's keys share one cluster slot::

    smsbridge:{smsclub:3f2a9c…}:starts     recent request starts (sorted set; a week)
    smsbridge:{smsclub:3f2a9c…}:mark       the starts' generation and last call (a week):
                                           how a loss of them is told
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

from typing import Any

import anyio

from ._core.client import StateFactory
from ._core.clock import Clock
from ._core.errors import ConfigurationError
from ._core.window import SLACK
from ._resp import Pipe, parse_url

try:
    import redis.asyncio as aioredis
except ImportError as e:  # pragma: no cover - exercised only without the extra
    raise ImportError("smsbridge.redis needs: pip install 'smsbridge[redis]'") from e

from ._redis.limiter import RedisLimiter
from ._redis.patience import Patience
from ._redis.scripts import scripts
from ._redis.window import RedisRanges, RedisWindow

__all__ = [
    "RedisLimiter",
    "RedisRanges",
    "RedisState",
    "RedisWindow",
    "connect",
    "redis_state",
    "scripts",
]


def connect(url: str) -> aioredis.Redis:
    """A redis-py client with short timeouts, so an outage is noticed within seconds (for a
    :class:`RedisState` given ``client=``; with a URL it uses smsbridge's own connection)."""
    try:
        return aioredis.Redis.from_url(
            url, socket_connect_timeout=2.0, socket_timeout=2.0, health_check_interval=10
        )
    except ValueError as e:
        raise ConfigurationError(f"bad Redis URL: {e}") from None


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
        patience = Patience(outage, clock)  # one outage for the account's every call
        self.limiter = RedisLimiter(
            client, namespace, limit, period, margin=margin, clock=clock, patience=patience
        )
        self.window = (
            RedisWindow(
                client,
                namespace,
                secret,
                window_ttl,
                slack=window_slack,
                patience=patience,
            )
            if window_ttl
            else None
        )
        self.ranges = RedisRanges(client, namespace, patience=patience)

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

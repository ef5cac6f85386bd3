"""How a call to Redis waits out an outage: tried again while Redis is out of reach (or answers
with an error that may pass), up to the state's ``outage`` seconds."""

from __future__ import annotations

import logging
import math
from collections.abc import Awaitable, Callable, Sequence
from typing import Any, TypeVar

from redis.exceptions import OutOfMemoryError, ReadOnlyError, RedisError, ResponseError

from .._core.clock import Clock, SystemClock
from .._core.errors import ConfigurationError, StateBackendError
from .._core.events import NOTICE

__all__ = ["Patience"]

log = logging.getLogger("smsbridge.redis")

T = TypeVar("T")


def _unavailable(error: Exception) -> StateBackendError:
    """The error a send stops with once Redis stayed out of reach for its patience."""
    return StateBackendError(f"Redis unavailable: {type(error).__name__}: {error}")


class Patience:
    """Retries a Redis call while Redis is unreachable (or answers with an error that may
    pass), up to ``outage`` seconds; any other error reply ends it at once.

    The seconds count from when the outage was first seen by any call sharing this object
    (an account's limiter, window and ids share one): a call begun during an outage waits
    what is left of it, so a send that stopped on it settles with a try per call, not with
    an outage per call. A call after a quiet spell as long as the outage counts afresh."""

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
        self._down_since: float | None = None  # the outage's first failure seen
        self._failed_at = -math.inf  # its latest

    def out_of_reach(self) -> bool:
        """Whether the latest calls found Redis out of reach (and none reached it since)."""
        return self._down_since is not None and self.clock.now() - self._failed_at <= self.outage

    async def call(
        self, script: Callable[..., Awaitable[T]], keys: Sequence[Any], args: Sequence[Any]
    ) -> T:
        """``await script(keys, args)``, tried again as above."""
        if self._down_since is not None and not self.out_of_reach():
            self._down_since = None  # a quiet spell since the last failure: counted afresh
        while True:
            try:
                result = await script(keys, args)
            except ResponseError as e:
                if not _passing(e):  # Redis answered, and will answer the same again
                    raise StateBackendError(f"Redis refused: {e}") from e
                error: Exception = e
            except (RedisError, OSError) as e:
                error = e
            else:
                if self._down_since is not None:
                    self._down_since = None
                    log.warning("Redis reachable again", extra=NOTICE)
                return result
            now = self.clock.now()
            if self._down_since is None:
                self._down_since = now
                log.error("Redis unreachable; sending paused: %s", error, extra=NOTICE)
            self._failed_at = now
            if now - self._down_since >= self.outage:
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

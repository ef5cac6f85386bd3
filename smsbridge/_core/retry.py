"""When and how long to wait before trying a request again."""

from __future__ import annotations

import random

import msgspec

from .errors import ConfigurationError, ConnectError, RateLimitedError, SmsBridgeError

__all__ = ["RetryPolicy"]


class RetryPolicy(msgspec.Struct, frozen=True, kw_only=True):
    """Retries for requests the gateway surely did not process (429, refused connections),
    and, where retrying is safe, for ambiguous failures.

    Delays grow exponentially from ``backoff`` to ``max_backoff`` with full jitter, so
    processes that failed together do not retry together; a gateway's ``Retry-After`` is
    honoured as a floor.

    Attributes:
        attempts: tries per request in all, the first included.
        backoff: delay before the first retry, in seconds (before jitter).
        max_backoff: ceiling of the delay, in seconds.
        max_retry_after: a longer Retry-After than this fails the request instead of waiting.
    """

    attempts: int = 5
    backoff: float = 0.5
    max_backoff: float = 30.0
    max_retry_after: float = 300.0

    def __post_init__(self) -> None:
        if self.attempts < 1:
            raise ConfigurationError("attempts must be at least 1")
        if self.backoff < 0 or self.max_backoff < 0 or self.max_retry_after < 0:
            raise ConfigurationError("delays must not be negative")

    def delay(self, attempt: int, retry_after: float | None = None) -> float:
        """Seconds to wait after failed try number ``attempt`` (1-based)."""
        ceiling = min(self.max_backoff, self.backoff * (2 ** (attempt - 1)))
        jittered = random.uniform(ceiling / 2, ceiling)
        if retry_after is not None and retry_after > jittered:
            return retry_after + random.uniform(0, min(1.0, retry_after / 10))
        return jittered

    def after(self, error: SmsBridgeError, attempt: int, *, ambiguous_ok: bool) -> float | None:
        """Seconds to wait before trying again after ``error`` ended try ``attempt``, or
        ``None`` when the failure is final.

        429 and connections never opened are retried; failures that may have been processed
        only when ``ambiguous_ok`` (the gateway de-duplicates, the caller accepts repeats, or
        the call only reads); account-wide failures never.
        """
        if error.account_wide or attempt >= self.attempts:
            return None
        if isinstance(error, RateLimitedError):
            if error.retry_after is not None and error.retry_after > self.max_retry_after:
                return None
            return self.delay(attempt, error.retry_after)
        if isinstance(error, ConnectError) or (error.maybe_processed and ambiguous_ok):
            return self.delay(attempt)
        return None

"""The one retry decision (RetryPolicy.after) as a unit: what is tried again, when, and what
is final."""

from __future__ import annotations

import pytest

from smsbridge import (
    AuthenticationError,
    ConfigurationError,
    ConnectError,
    RateLimitedError,
    RejectedError,
    RetryPolicy,
    TransportTimeoutError,
    UnavailableError,
)

POLICY = RetryPolicy(attempts=4, backoff=1.0, max_backoff=8.0, max_retry_after=60.0)


def test_429_and_refused_connections_are_retried_with_growing_jittered_delays() -> None:
    """Full jitter between half and all of backoff * 2^(n-1), capped."""
    for attempt, ceiling in ((1, 1.0), (2, 2.0), (3, 4.0)):
        for error in (RateLimitedError("slow"), ConnectError("refused")):
            delay = POLICY.after(error, attempt, ambiguous_ok=False)
            assert delay is not None and ceiling / 2 <= delay <= ceiling
    assert POLICY.after(ConnectError("refused"), 4, ambiguous_ok=True) is None  # spent


def test_retry_after_is_a_floor_and_a_too_long_one_is_final() -> None:
    """Retry-After: 7 waits at least 7 s (plus a little spread); past max_retry_after the
    request fails instead of waiting."""
    delay = POLICY.after(RateLimitedError("slow", retry_after=7.0), 1, ambiguous_ok=False)
    assert delay is not None and 7.0 <= delay <= 7.7
    assert POLICY.after(RateLimitedError("s", retry_after=61.0), 1, ambiguous_ok=False) is None


@pytest.mark.parametrize("error", [TransportTimeoutError("t"), UnavailableError("5xx")])
def test_what_may_have_been_processed_is_retried_only_where_safe(error: Exception) -> None:
    """Ambiguous failures: retried when the gateway de-duplicates (or the call only reads),
    final otherwise."""
    assert POLICY.after(error, 1, ambiguous_ok=False) is None  # type: ignore[arg-type]
    assert POLICY.after(error, 1, ambiguous_ok=True) is not None  # type: ignore[arg-type]


@pytest.mark.parametrize(
    "error",
    [AuthenticationError("bad token"), RejectedError("no such sender")],
)
def test_refusals_and_account_errors_are_final(error: Exception) -> None:
    """A refusal will be refused again; an account error fails every request."""
    assert POLICY.after(error, 1, ambiguous_ok=True) is None  # type: ignore[arg-type]


def test_nonsense_policies_are_refused() -> None:
    """No attempts, or negative delays."""
    with pytest.raises(ConfigurationError):
        RetryPolicy(attempts=0)
    with pytest.raises(ConfigurationError):
        RetryPolicy(backoff=-1)

"""The in-memory duplicate window: reserve, commit, release and expiry on a fake clock."""

from __future__ import annotations

import pytest

from smsbridge import Claim, ConfigurationError, MemoryWindow
from smsbridge.testing import FakeClock

OURS, SENT, PENDING = Claim.OURS, Claim.SENT, Claim.PENDING


async def test_a_key_is_granted_once_until_released_or_expired(clock: FakeClock) -> None:
    """Reserve grants each key once; a repeat within one call finds it pending (its fate is
    the first occurrence's); a commit makes it sent; a release frees it."""
    window = MemoryWindow(120, clock=clock)
    assert await window.reserve([b"a", b"b", b"a"]) == [OURS, OURS, PENDING]
    assert await window.reserve([b"a"]) == [PENDING]
    await window.release([b"a"])
    assert await window.reserve([b"a"]) == [OURS]
    await window.commit([b"b"])
    assert await window.reserve([b"a", b"b"]) == [PENDING, SENT]


async def test_commit_holds_for_a_full_ttl_from_the_commit(clock: FakeClock) -> None:
    """A key committed late stays blocked for the TTL counted from the commit."""
    window = MemoryWindow(120, clock=clock)
    await window.reserve([b"k"])
    clock.advance(100)
    await window.commit([b"k"])
    clock.advance(100)  # 200 s after reserve, 100 s after commit
    assert await window.reserve([b"k"]) == [SENT]
    clock.advance(20)
    assert await window.reserve([b"k"]) == [OURS]


async def test_a_reservation_of_a_crashed_sender_expires(clock: FakeClock) -> None:
    """Nobody commits or releases: the key frees itself after the TTL and the slack."""
    window = MemoryWindow(120, slack=5, clock=clock)
    await window.reserve([b"k"])
    clock.advance(124.9)
    assert await window.reserve([b"k"]) == [PENDING]
    clock.advance(0.1)
    assert await window.reserve([b"k"]) == [OURS]


async def test_memory_is_bounded_by_what_one_ttl_holds(clock: FakeClock) -> None:
    """Old keys are evicted as time passes; the store holds only the live ones."""
    window = MemoryWindow(10, slack=2, clock=clock)
    for second in range(100):
        await window.reserve([f"{second}-{i}".encode() for i in range(100)])
        await window.commit([f"{second}-{i}".encode() for i in range(50)])
        clock.advance(1)
    assert len(window) <= (10 + 2 + 1) * 100
    assert repr(window) == f"MemoryWindow(ttl=10, keys={len(window)})"


def test_bad_ttl() -> None:
    """A negative or infinite TTL is a configuration error."""
    for ttl in (-1.0, float("inf"), float("nan")):
        with pytest.raises(ConfigurationError):
            MemoryWindow(ttl)
    with pytest.raises(ConfigurationError):
        MemoryWindow(120, slack=-1)

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
    assert await window.reserve([b"a", b"b", b"a"], "h", [0, 1, 2]) == [OURS, OURS, PENDING]
    assert await window.reserve([b"a"], "h", [3]) == [PENDING]
    await window.release([b"a"], "h", [0])
    assert await window.reserve([b"a"], "h", [3]) == [OURS]
    await window.commit([b"b"], "h", [1])
    assert await window.reserve([b"a", b"b"], "h", [4, 5]) == [PENDING, SENT]


async def test_a_release_drops_only_its_own_recipients_reservation(clock: FakeClock) -> None:
    """Another send's reservation, another recipient's of the same send and a commit all stay
    through a release; the recipient's own goes, whether its keys were claimed together or
    one by one among keys held by others."""
    window = MemoryWindow(120, clock=clock)
    assert await window.reserve([b"a", b"b", b"c"], "h1", [0, 1, 2]) == [OURS] * 3
    await window.release([b"a"], "h2", [0])  # another send, the same place
    await window.release([b"b"], "h1", [7])  # the same send, another recipient
    await window.commit([b"c"], "h1", [2])
    await window.release([b"c"], "h1", [2])  # sent: a release never undoes that
    assert await window.reserve([b"a", b"b", b"c"], "h2", [0, 1, 2]) == [PENDING, PENDING, SENT]
    await window.release([b"b", b"a"], "h1", [1, 0])  # its own, in another order
    assert await window.reserve([b"a", b"b"], "h2", [0, 1]) == [OURS, OURS]

    # released as claimed, all together: still only by their holder, for their recipients
    assert await window.reserve([b"p", b"q"], "h1", [0, 1]) == [OURS, OURS]
    await window.release([b"p", b"q"], "h2", [0, 1])
    await window.release([b"p", b"q"], "h1", [1, 0])
    assert await window.reserve([b"p", b"q"], "h2", [0, 1]) == [PENDING, PENDING]
    await window.release([b"p", b"q"], "h1", [0, 1])
    assert await window.reserve([b"p", b"q"], "h2", [0, 1]) == [OURS, OURS]

    # claimed one by one (some keys were held): each is still its recipient's alone
    assert await window.reserve([b"x", b"a", b"y"], "h1", [5, 6, 7]) == [OURS, PENDING, OURS]
    await window.release([b"x", b"a", b"y"], "h1", [5, 6, 8])
    assert await window.reserve([b"x", b"a", b"y"], "h3", [0, 1, 2]) == [OURS, PENDING, PENDING]
    await window.release([b"a"], "h2", [0])
    claims = await window.reserve([b"x", b"a", b"y", b"b"], "h4", [0, 1, 2, 3])
    assert claims == [PENDING, OURS, PENDING, PENDING]  # h3's, free, h1's, h2's


async def test_the_same_holder_and_recipient_still_wait_in_one_process(clock: FakeClock) -> None:
    """In memory a live reservation is a live send's: two sends with one idempotency key at
    once do not both take it (unlike Redis, where the holder may have died)."""
    window = MemoryWindow(120, clock=clock)
    assert await window.reserve([b"a"], "h", [0]) == [OURS]
    assert await window.reserve([b"a"], "h", [0]) == [PENDING]
    with pytest.raises(ValueError, match="one index per key"):
        await window.reserve([b"a", b"b"], "h", [0])


async def test_commit_holds_for_a_full_ttl_from_the_commit(clock: FakeClock) -> None:
    """A key committed late stays blocked for the TTL counted from the commit."""
    window = MemoryWindow(120, clock=clock)
    await window.reserve([b"k"], "h", [0])
    clock.advance(100)
    await window.commit([b"k"], "h", [0])
    clock.advance(100)  # 200 s after reserve, 100 s after commit
    assert await window.reserve([b"k"], "h", [1]) == [SENT]
    clock.advance(20)
    assert await window.reserve([b"k"], "h", [1]) == [OURS]


async def test_a_reservation_of_a_crashed_sender_expires(clock: FakeClock) -> None:
    """Nobody commits or releases: the key frees itself after the TTL and the slack."""
    window = MemoryWindow(120, slack=5, clock=clock)
    await window.reserve([b"k"], "dead", [0])
    clock.advance(124.9)
    assert await window.reserve([b"k"], "h", [0]) == [PENDING]
    clock.advance(0.1)
    assert await window.reserve([b"k"], "h", [0]) == [OURS]


async def test_memory_is_bounded_by_what_one_ttl_holds(clock: FakeClock) -> None:
    """Old keys are evicted as time passes; the store holds only the live ones."""
    window = MemoryWindow(10, slack=2, clock=clock)
    for second in range(100):
        await window.reserve([f"{second}-{i}".encode() for i in range(100)], "h", range(100))
        await window.commit([f"{second}-{i}".encode() for i in range(50)], "h", range(50))
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

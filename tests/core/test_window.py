"""The in-memory duplicate window: reserve, commit, release and expiry on a fake clock."""

from __future__ import annotations

import gc

import pytest
from hypothesis import example, given, settings
from hypothesis import strategies as st

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


async def test_a_run_renews_its_own_reservation_another_run_waits(clock: FakeClock) -> None:
    """In memory a live reservation is a live send's: another run of the same key does not
    take it (unlike Redis, where the holder may have died). The run that holds it, reserving
    the same recipient again (right before a write long after the first reservation),
    renews it from now."""
    window = MemoryWindow(120, slack=5, clock=clock)
    assert await window.reserve([b"a"], "h/1", [0]) == [OURS]
    assert await window.reserve([b"a"], "h/2", [0]) == [PENDING]
    assert await window.reserve([b"a"], "h/1", [1]) == [PENDING]  # another recipient
    clock.advance(100)
    assert await window.reserve([b"a"], "h/1", [0]) == [OURS]
    clock.advance(100)  # 200 s after the first reservation, 100 s after the renewal
    assert await window.reserve([b"a"], "h/2", [0]) == [PENDING]
    clock.advance(26)
    assert await window.reserve([b"a"], "h/2", [0]) == [OURS]
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


@pytest.mark.parametrize(("extra", "held"), [(30.0, 150.0), (500.0, 185.0), (-3.0, 120.0)])
async def test_an_uncertain_commit_holds_longer_where_its_request_may_be_on_its_way(
    clock: FakeClock, extra: float, held: float
) -> None:
    """A commit of a message whose request may still reach the gateway holds ``extra``
    seconds past the TTL, at most the slack (65 s by default)."""
    window = MemoryWindow(120, clock=clock)
    await window.reserve([b"k", b"j"], "h", [0, 1])
    await window.commit([b"k", b"j"], "h", [0, 1], extra)
    clock.advance(held - 0.1)
    assert await window.reserve([b"k"], "other", [0]) == [SENT]
    clock.advance(0.1)
    assert await window.reserve([b"k"], "other", [0]) == [OURS]


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


async def test_the_cyclic_collector_never_walks_the_keys(clock: FakeClock) -> None:
    """A process holding hundreds of clients holds millions of window keys (21.6 million at
    200 accounts at full rate): a full collection must not visit each of them, so the
    window's table of keys, and what holds them, stay out of the collector's sight through
    reserve, commit, release, a key claimed by another send and eviction."""
    window = MemoryWindow(10, slack=2, clock=clock)
    keys = list(range(100))
    await window.reserve(keys, "s/1", range(100))
    await window.commit(keys[:50], "s/1", range(50))
    await window.reserve(list(range(50, 150)), "t/1", range(100))
    await window.release(keys[50:], "s/1", range(50, 100))
    await window.commit([b"one", "two"], "u/1", [0, 1])
    clock.advance(11)
    await window.reserve([7], "v/1", [0])
    gc.collect()
    assert len(window) > 0
    assert not gc.is_tracked(window._held)


def test_bad_ttl() -> None:
    """A negative or infinite TTL is a configuration error."""
    for ttl in (-1.0, float("inf"), float("nan")):
        with pytest.raises(ConfigurationError):
            MemoryWindow(ttl)
    with pytest.raises(ConfigurationError):
        MemoryWindow(120, slack=-1)


class _Model:
    """The window's rules, key by key and slowly: what :class:`MemoryWindow` must agree with
    whatever shortcuts it takes for a call's keys together."""

    def __init__(self, ttl: float, slack: float, clock: FakeClock) -> None:
        self.ttl, self.slack, self.clock = ttl, slack, clock
        self.sent: dict[int, float] = {}
        self.reserved: dict[int, tuple[str, int, float]] = {}

    def reserve(self, keys: list[int], holder: str, indices: list[int]) -> list[Claim]:
        now, claims, claimed = self.clock.now(), [], set()
        for key, index in zip(keys, indices, strict=True):
            held = self.reserved.get(key)
            if self.sent.get(key, -1.0) > now:
                claims.append(SENT)
            elif key in claimed or (
                held is not None and held[2] > now and held[:2] != (holder, index)
            ):  # another's live reservation (this recipient's own is renewed)
                claims.append(PENDING)
            else:
                claimed.add(key)
                self.reserved[key] = (holder, index, now + self.ttl + self.slack)
                claims.append(OURS)
        return claims

    def commit(self, keys: list[int]) -> None:
        for key in keys:
            self.sent[key] = self.clock.now() + self.ttl
            self.reserved.pop(key, None)

    def release(self, keys: list[int], holder: str, indices: list[int]) -> None:
        for key, index in zip(keys, indices, strict=True):
            held = self.reserved.get(key)
            if held is not None and held[:2] == (holder, index):
                del self.reserved[key]


_Op = tuple[str, list[int], str, list[int], float]
_ops = st.lists(
    st.tuples(
        st.sampled_from(["reserve", "reserve", "commit", "release", "wait"]),
        st.lists(st.integers(0, 3), min_size=1, max_size=4),
        st.sampled_from(["h1", "h2"]),
        st.integers(0, 3),
        st.sampled_from([0.5, 3.0, 9.0, 10.0, 11.0]),
        st.booleans(),  # settle a part of an earlier call, not all of it
        st.integers(0, 99),  # which earlier call
    ),
    max_size=40,
)


@settings(max_examples=300)
@given(_ops)
# a reservation loses one key to a partial release, then all its keys are committed
@example(
    [
        ("reserve", [1, 2], "h1", 0, 0, False, 0),
        ("release", [0], "h1", 0, 0, True, 0),
        ("commit", [0], "h1", 0, 0, False, 0),
        ("reserve", [2], "h2", 0, 0, False, 0),
    ]
)
# another call commits one of its keys, time passes, then all its keys are committed: each
# is held a full TTL from the last commit
@example(
    [
        ("reserve", [1, 2], "h1", 0, 0, False, 0),
        ("reserve", [2], "h2", 5, 0, False, 0),
        ("commit", [0], "h2", 0, 0, False, 1),
        ("wait", [0], "h1", 0, 9.0, False, 0),
        ("commit", [0], "h1", 0, 0, False, 0),
        ("wait", [0], "h1", 0, 3.0, False, 0),
        ("reserve", [2], "h2", 9, 0, False, 0),
    ]
)
async def test_the_window_agrees_with_its_rules_key_by_key(ops: list[tuple]) -> None:  # type: ignore[type-arg]
    """Random reserves, whole and partial commits and releases, and waits: every claim is
    what the key-by-key rules give (a commit or release of all a call's keys is one step
    inside the window, and must not forget a key some other call took meanwhile)."""
    clock = FakeClock()
    window, model = MemoryWindow(10, slack=1, clock=clock), _Model(10, 1, clock)
    calls: list[tuple[list[int], str, list[int]]] = []
    for op, keys, holder, index, wait, part, which in ops:
        if op == "reserve":
            indices = [index + i for i in range(len(keys))]
            assert await window.reserve(keys, holder, indices) == model.reserve(
                keys, holder, indices
            ), ops
            calls.append((keys, holder, indices))
        elif op == "wait":
            clock.advance(wait)
        elif calls:
            keys, holder, indices = calls[which % len(calls)]
            if part and len(keys) > 1:
                keys, indices = keys[1:], indices[1:]
            if op == "commit":
                await window.commit(keys, holder, indices)
                model.commit(keys)
            else:
                await window.release(keys, holder, indices)
                model.release(keys, holder, indices)


async def test_a_window_whose_sends_all_failed_holds_nothing(clock: FakeClock) -> None:
    """Released reservations leave the window at once: a router reads an empty window as
    one it may share, whatever sends failed through it."""
    window = MemoryWindow(120, clock=clock)
    await window.reserve([1, 2, 3], "h", [0, 1, 2])
    await window.release([1, 2, 3], "h", [0, 1, 2])
    await window.reserve([4, 5], "h", [3, 4])
    await window.release([5], "h", [4])
    await window.release([4], "h", [3])
    assert len(window) == 0


def test_a_message_has_one_key_whichever_way_its_batch_carries_it() -> None:
    """The same (sender, text, parameters, phone) makes the same key whether the text is the
    send's or the recipient's own and whether parameters are absent or empty; another
    parameter makes another key."""
    from smsbridge._core.gateway import Batch

    window = MemoryWindow()
    phones = ["380500000001", "380500000002"]
    same = [
        window.keys("S", "hi", Batch([0, 1], phones, None, None)),
        window.keys("S", None, Batch([0, 1], phones, ["hi", "hi"], None)),
        window.keys("S", "hi", Batch([0, 1], phones, None, [(), ()])),
        window.keys("S", None, Batch([0, 1], phones, ["hi", "hi"], [(), ()])),
    ]
    assert all(keys == same[0] for keys in same)
    with_params = window.keys("S", "hi", Batch([0, 1], phones, None, [("x",), ("y",)]))
    assert with_params == window.keys(
        "S", None, Batch([0, 1], phones, ["hi"] * 2, [("x",), ("y",)])
    )
    assert not set(with_params) & set(same[0])
    assert window.keys("S", "hi!", Batch([0], phones[:1], None, None)) != same[0][:1]


def test_no_parameters_make_two_messages_one_key() -> None:
    """Parameters that spell the send's own sender and text (or another's) do not cancel
    them out of the key: two templates with such parameters to one number are two messages."""
    from smsbridge._core.gateway import Batch

    window = MemoryWindow()
    phone = ["994500000001"]
    one = window.keys("Shop", "template #1", Batch([0], phone, None, [("Shop", "template #1")]))
    two = window.keys("Shop", "template #2", Batch([0], phone, None, [("Shop", "template #2")]))
    swapped = window.keys("Shop", "template #2", Batch([0], phone, None, [("Shop", "template #1")]))
    other = window.keys("Shop", "template #1", Batch([0], phone, None, [("Shop", "template #2")]))
    assert len({one[0], two[0], swapped[0], other[0]}) == 4


async def test_a_released_reservation_evicted_later_leaves_the_keys_taken_since(
    clock: FakeClock,
) -> None:
    """A call's keys are evicted at once where its term still holds them all; a released
    one holds none, and keys committed since (a commit evicts nothing first) stay."""
    window = MemoryWindow(120, clock=clock)
    keys, indices = list(range(100)), list(range(100))
    assert await window.reserve(keys, "a/1", indices) == [Claim.OURS] * 100
    await window.release(keys, "a/1", indices)
    await window.commit(keys, "b/1", indices)  # the released term is due, not yet evicted
    assert await window.reserve(keys, "c/1", indices) == [Claim.SENT] * 100
    clock.advance(120)
    assert await window.reserve(keys, "c/1", indices) == [Claim.OURS] * 100
    assert len(window) == 100

"""The sliding-window limiter, on a fake clock: no sliding second over the limit, and at least
98% of the limit sustained from a cold start, in steady state and after an idle pause."""

from __future__ import annotations

import anyio
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from smsbridge import ConfigurationError, SlidingWindowLimiter
from smsbridge.testing import FakeClock, busiest_window


async def _go(limiter: SlidingWindowLimiter) -> None:
    """Take a slot and start it at once, as a request on a warm connection does."""
    slot = await limiter.acquire()
    await slot.ready()
    assert slot.start()


async def _starts(
    limiter: SlidingWindowLimiter, clock: FakeClock, gaps: list[float]
) -> list[float]:
    starts = []
    for gap in gaps:
        clock.advance(gap)
        await _go(limiter)
        starts.append(clock.now())
    return starts


@settings(max_examples=200, deadline=None)
@given(
    limit=st.integers(1, 20),
    margin=st.sampled_from([0.0, 0.001, 0.015, 0.05]),
    gaps=st.lists(
        st.one_of(
            st.just(0.0),
            st.floats(0, 0.2),
            st.floats(0.9, 1.1),
            st.floats(0, 5),
        ),
        min_size=1,
        max_size=300,
    ),
)
def test_no_sliding_window_ever_exceeds_the_limit(
    limit: int, margin: float, gaps: list[float]
) -> None:
    """Whatever the arrival pattern, no 1-second window holds more than `limit` starts."""

    async def run() -> list[float]:
        clock = FakeClock(0.0)
        limiter = SlidingWindowLimiter(limit, 1.0, margin=margin, clock=clock)
        return await _starts(limiter, clock, gaps)

    starts = anyio.run(run)
    assert busiest_window(starts, 1.0) <= limit
    # and closed windows too: start i and start i+limit are more than a period apart
    assert all(
        b - a > 1.0 or (margin == 0.0 and b - a >= 1.0)
        for a, b in zip(starts, starts[limit:], strict=False)
    )


@pytest.mark.parametrize("limit", [1, 9, 10, 200])
async def test_sustains_at_least_98_percent_from_cold_start_steady_state_and_after_idle(
    limit: int,
) -> None:
    """Back-to-back acquisitions run at >= 98% of the limit in every phase of a long run."""
    clock = FakeClock(0.0)
    limiter = SlidingWindowLimiter(limit, 1.0, clock=clock)
    starts: list[float] = []
    for _phase in range(3):  # cold start, then twice more after an idle pause
        phase_start = clock.now()
        while clock.now() - phase_start < 30.0:
            await _go(limiter)
            starts.append(clock.now())
        phase = [t for t in starts if t >= phase_start]
        for offset in (0.0, 10.0):  # the phase's first 10 s, and a 10 s stretch of steady state
            begin = phase_start + offset
            in_window = [t for t in phase if begin <= t < begin + 10.0]
            assert len(in_window) >= 0.98 * limit * 10.0, (offset, len(in_window))
        clock.advance(7.5)  # idle
    assert busiest_window(starts, 1.0) == limit


async def test_nine_per_second_is_not_seventeen() -> None:
    """A burst right after an idle full window gets 9 through, not 9 + a refill."""
    clock = FakeClock(0.0)
    limiter = SlidingWindowLimiter(9, clock=clock)
    starts = await _starts(limiter, clock, [0.0] * 9 + [0.99] + [0.0] * 17)
    assert busiest_window(starts, 1.0) == 9
    assert starts[:9] == [0.0] * 9
    assert starts[9] == pytest.approx(1.03)


async def test_concurrent_waiters_are_served_in_order_and_within_the_limit() -> None:
    """Fifty tasks hammering one limiter still get at most `limit` per sliding second."""
    clock = FakeClock(0.0)
    limiter = SlidingWindowLimiter(9, clock=clock)
    starts: list[tuple[int, float]] = []

    async def worker(n: int) -> None:
        for _ in range(10):
            await _go(limiter)
            starts.append((n, clock.now()))

    async with anyio.create_task_group() as tg:
        for n in range(50):
            tg.start_soon(worker, n)
    times = [t for _, t in starts]
    assert len(times) == 500
    assert times == sorted(times)
    assert busiest_window(times, 1.0) == 9
    assert sum(1 for t in times if t < 50.0) >= 0.98 * 9 * 50


async def test_defer_holds_every_start_back() -> None:
    """After defer(2), nothing starts for two seconds, then the window applies again."""
    clock = FakeClock(0.0)
    limiter = SlidingWindowLimiter(9, clock=clock)
    await _go(limiter)
    await limiter.defer(2.0)
    assert not limiter.has_capacity()
    await _go(limiter)
    assert clock.now() == pytest.approx(2.0)
    assert limiter.has_capacity()


async def test_repr_and_capacity() -> None:
    """The repr says the settings and how many started in the last period."""
    clock = FakeClock(0.0)
    limiter = SlidingWindowLimiter(2, clock=clock)
    assert limiter.has_capacity()
    await _go(limiter)
    slot = await limiter.acquire()
    assert not limiter.has_capacity()
    assert repr(limiter) == (
        "SlidingWindowLimiter(limit=2, period=1.0, margin=0.03, started_last_period=1, pending=1)"
    )
    slot.close()
    assert limiter.has_capacity()


async def test_a_late_start_counts_from_when_it_was_written() -> None:
    """A slot granted at 0 whose request opened a new connection and went out at 0.2 holds
    back the start `limit` places later until 1.23, not 1.03: the gateway counts
    arrivals."""
    clock = FakeClock(0.0)
    limiter = SlidingWindowLimiter(2, clock=clock)
    cold = await limiter.acquire()  # connecting...
    await _go(limiter)  # a warm one starts at 0
    clock.advance(0.2)
    assert cold.start()
    await _go(limiter)  # waits for the warm one's window: 1.03
    assert clock.now() == pytest.approx(1.03)
    await _go(limiter)  # and then for the cold one's: 1.23, not 1.03
    assert clock.now() == pytest.approx(1.23)


async def test_pending_slots_hold_the_next_grant_until_they_start_or_close() -> None:
    """With `limit` slots pending, the next waits until one of them starts or is closed
    (its request was never written) -- however long that takes on the clock."""
    clock = FakeClock(0.0)
    limiter = SlidingWindowLimiter(2, clock=clock)
    first, second = await limiter.acquire(), await limiter.acquire()
    granted: list[float] = []

    async def third() -> None:
        slot = await limiter.acquire()
        granted.append(clock.now())
        assert slot.start()

    async with anyio.create_task_group() as tg:
        tg.start_soon(third)
        await anyio.wait_all_tasks_blocked()
        assert granted == []
        clock.advance(5.0)
        first.close()  # never written: its room is free at once
        await anyio.wait_all_tasks_blocked()
        assert granted == [5.0]
    assert second.start()
    assert busiest_window([5.0, 5.0], 1.0) == 2


@pytest.mark.parametrize(
    ("args", "kwargs"),
    [
        ((0,), {}),
        ((2.5,), {}),
        ((10**23,), {}),  # past what its record of starts can hold
        ((9, 0.0), {}),
        ((9, float("inf")), {}),
        ((9,), {"margin": -1}),
    ],
)
def test_bad_settings_are_configuration_errors(
    args: tuple[float, ...], kwargs: dict[str, float]
) -> None:
    """Nonsense limits fail at construction with a typed error."""
    with pytest.raises(ConfigurationError):
        SlidingWindowLimiter(*args, **kwargs)  # type: ignore[arg-type]

"""Work that must end once begun (a cancelled send settling what it read): the caller's
cancellations wait for it, for a while; on virtual time."""

from __future__ import annotations

import asyncio

import anyio
import pytest

from smsbridge._core.finish import PATIENCE, detached, to_the_end
from smsbridge.testing._sim.loop import VirtualLoop, World


def _run(main: object) -> None:
    loop = VirtualLoop(World())
    try:
        loop.run_until_complete(main)  # type: ignore[arg-type]
    finally:
        loop.close()


def test_cancellations_wait_for_the_work_within_its_patience() -> None:
    """Cancelled five times while the work takes 8 s (virtual): the work ends, then the
    caller's task is cancelled; the caller cannot stop it halfway."""
    ended: list[float] = []

    async def work() -> None:
        await asyncio.sleep(8)
        ended.append(asyncio.get_running_loop().time())

    async def main() -> None:
        loop = asyncio.get_running_loop()
        started = loop.time()
        caller = asyncio.ensure_future(to_the_end(work()))
        for _ in range(5):
            await asyncio.sleep(1)
            caller.cancel()
        with pytest.raises(asyncio.CancelledError):
            await caller
        assert ended == [started + 8] and loop.time() == started + 8

    _run(main())


def test_a_cancellation_after_the_patience_returns_and_the_work_goes_on() -> None:
    """A callback of the caller's that takes for ever must not make its task impossible to
    cancel: past the patience, a cancellation is raised at once, and the work goes on by
    itself until it ends."""
    ended: list[float] = []

    async def work() -> None:
        await asyncio.sleep(PATIENCE + 30)
        ended.append(asyncio.get_running_loop().time())

    async def main() -> None:
        loop = asyncio.get_running_loop()
        started = loop.time()
        caller = asyncio.ensure_future(to_the_end(work()))
        await asyncio.sleep(1)
        caller.cancel()  # held
        await asyncio.sleep(PATIENCE)
        assert not caller.done()
        caller.cancel()  # past the patience: raised
        with pytest.raises(asyncio.CancelledError):
            await caller
        assert loop.time() == started + 1 + PATIENCE and not ended
        (left,) = detached()
        await left
        assert ended == [started + PATIENCE + 30] and not detached()

    _run(main())


def test_an_anyio_scope_cancelled_meanwhile_waits_without_spinning() -> None:
    """Inside a cancelled anyio scope, anyio cancels the task again at every turn of the
    loop: the work's wait is shielded from that, so the loop does not spin meanwhile (it
    turned some thousands of times a second before)."""
    loop = VirtualLoop(World())

    async def main() -> None:
        with anyio.move_on_after(0) as scope:
            await to_the_end(asyncio.sleep(5))
        assert scope.cancel_called

    try:
        loop.run_until_complete(main())
        assert loop.steps < 50
    finally:
        loop.close()


def test_work_left_going_and_cancelled_as_the_loop_shuts_down_is_logged(
    caplog: pytest.LogCaptureFixture,
) -> None:
    """The event loop cancels every task left as it shuts down, the work going on by itself
    too: its recipients may get no outcome, and that is not silent."""

    async def main() -> None:
        caller = asyncio.ensure_future(to_the_end(asyncio.sleep(PATIENCE + 30)))
        await asyncio.sleep(PATIENCE + 1)
        caller.cancel()
        with pytest.raises(asyncio.CancelledError):
            await caller
        (left,) = detached()
        left.cancel()  # as asyncio.run does to what is left
        with pytest.raises(asyncio.CancelledError):
            await left

    with caplog.at_level("ERROR", logger="smsbridge"):
        _run(main())
    assert "was itself cancelled" in caplog.text

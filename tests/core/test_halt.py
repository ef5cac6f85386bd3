"""The halt that ends the waits of requests not yet written (a stop, an account refused): a
wait under :meth:`Halt.cut` ends without an error, no cancellation of its leaks past it, a
cancellation of anyone else's is never taken for it, and an anyio cancel shield entered
within the wait holds it off. On virtual time: nothing here sleeps."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Awaitable, Callable
from typing import Any, TypeVar

import anyio
import pytest

from smsbridge._core.exchange import Halt
from smsbridge.testing._sim.loop import VirtualLoop, World

T = TypeVar("T")


def run(main: Callable[[], Awaitable[Any]]) -> Any:
    loop = VirtualLoop(World(), seconds=600)
    try:
        return loop.run_until_complete(main())
    finally:
        loop.close()


async def waiting(
    halt: Halt, body: float | Callable[[], Awaitable[Any]], grace: float = 0.0
) -> tuple[bool, float]:
    """Wait under a cut (``body`` seconds, or ``body()``): whether the halt cut it short,
    and when it ended."""
    loop = asyncio.get_running_loop()
    cut = halt.cut(grace)
    with cut:
        await (asyncio.sleep(body) if isinstance(body, int | float) else body())
    await asyncio.sleep(0)  # no cancellation left over for the next wait
    return cut.cut_short, loop.time()


async def halted_after(seconds: float, halt: Halt, wait: Awaitable[T]) -> T:
    """What ``wait``, run as a task, gave with the halt set ``seconds`` into it; its task
    is left with no cancellation."""
    task = asyncio.ensure_future(wait)
    await asyncio.sleep(seconds)
    halt.set("stopped")
    result = await task
    assert task.cancelling() == 0
    return result


def test_a_halt_ends_a_wait_at_once_and_the_task_goes_on() -> None:
    async def main() -> None:
        halt = Halt()
        began = asyncio.get_running_loop().time()
        assert await halted_after(3, halt, waiting(halt, 100)) == (True, began + 3)

    run(main)


def test_a_wait_that_ends_before_the_halt_is_not_cut_short() -> None:
    async def main() -> None:
        halt = Halt()
        began = asyncio.get_running_loop().time()
        assert await waiting(halt, 2) == (False, began + 2)
        halt.set("stopped")  # nothing waits any more: nothing is cancelled
        await asyncio.sleep(1)

    run(main)


def test_a_wait_begun_after_the_halt_ends_at_once() -> None:
    async def main() -> None:
        halt = Halt()
        halt.set("stopped")
        began = asyncio.get_running_loop().time()
        assert await waiting(halt, 100) == (True, began)

    run(main)


def test_a_graced_wait_ends_its_grace_after_the_halt() -> None:
    async def main() -> None:
        halt = Halt()
        began = asyncio.get_running_loop().time()
        short = asyncio.create_task(waiting(halt, 2, grace=3))
        long = asyncio.create_task(waiting(halt, 100, grace=3))
        await asyncio.sleep(1)
        halt.set("stopped")
        assert await short == (False, began + 2)  # done within its grace
        assert await long == (True, began + 4)

    run(main)


def test_a_halt_set_by_the_waiting_task_itself_ends_its_wait_and_leaks_nothing() -> None:
    async def main() -> None:
        loop = asyncio.get_running_loop()
        began = loop.time()
        halt = Halt()
        cut = halt.cut()
        with cut:
            halt.set("stopped")  # the task runs: it is cancelled once it waits
            await asyncio.sleep(100)
        assert cut.cut_short and loop.time() == began
        other = Halt()
        with other.cut():
            other.set("stopped")  # and the wait is over before it would wait
        await asyncio.sleep(5)  # no cancellation carried past it
        assert loop.time() == began + 5

    run(main)


def test_the_callers_cancellation_during_a_wait_is_not_taken_for_the_halt() -> None:
    async def main() -> None:
        halt = Halt()
        task = asyncio.create_task(waiting(halt, 100))
        await asyncio.sleep(1)
        task.cancel()
        halt.set("stopped")  # in the same turn: the task is cancelled, not cut short
        with pytest.raises(asyncio.CancelledError):
            await task
        assert task.cancelled()

        halt = Halt()
        task = asyncio.create_task(waiting(halt, 100))
        await asyncio.sleep(1)
        halt.set("stopped")
        task.cancel()  # the other order
        with pytest.raises(asyncio.CancelledError):
            await task
        assert task.cancelled()

    run(main)


def test_an_anyio_cancellation_with_the_halt_still_reaches_its_scope() -> None:
    async def main() -> None:
        loop = asyncio.get_running_loop()
        began = loop.time()
        halt = Halt()
        after: list[str] = []

        async def worker(scope: anyio.CancelScope) -> None:
            with scope:
                await waiting(halt, 100)
                after.append("past the wait")  # the scope's cancellation ends this
            after.append(f"scope ended at {loop.time() - began:g}, caught {scope.cancel_called}")

        scope = anyio.CancelScope()
        async with anyio.create_task_group() as tg:
            tg.start_soon(worker, scope)
            await asyncio.sleep(1)
            scope.cancel()
            halt.set("stopped")
        assert after == ["scope ended at 1, caught True"]

    run(main)


def test_an_anyio_shield_within_the_wait_holds_the_halt_off_until_it_ends() -> None:
    async def main() -> None:
        loop = asyncio.get_running_loop()
        began = loop.time()
        halt = Halt()
        steps: list[str] = []

        async def store_call() -> None:  # a user's store: its write must not be interrupted
            with anyio.CancelScope(shield=True):
                await asyncio.sleep(2)
                steps.append(f"written at {loop.time() - began:g}")
            await asyncio.sleep(100)
            steps.append("never")

        async def wait() -> bool:
            cut = halt.cut()
            with cut:
                await store_call()
            return cut.cut_short

        assert await halted_after(1, halt, wait())
        assert steps == ["written at 2"]
        assert loop.time() - began < 2.1  # the halt landed soon after the shield ended

    run(main)


def test_an_anyio_shield_the_wait_is_within_does_not_hold_it() -> None:
    async def main() -> None:
        halt = Halt()
        began = asyncio.get_running_loop().time()

        async def settle() -> tuple[bool, float]:
            with anyio.CancelScope(shield=True):  # as an outcome is recorded
                return await waiting(halt, 100, grace=3)
            raise AssertionError("a shield cancels nothing")

        assert await halted_after(1, halt, settle()) == (True, began + 4)

    run(main)


def test_an_anyio_cancellation_of_a_task_about_to_run_keeps_its_own_message() -> None:
    async def main() -> None:
        halt = Halt()
        after: list[str] = []

        async def worker(scope: anyio.CancelScope) -> None:
            with scope, halt.cut():
                while True:  # noqa: ASYNC110 - runnable at every turn, never waiting on a future
                    await asyncio.sleep(0)
            after.append(f"scope ended, caught {scope.cancelled_caught}")

        scope = anyio.CancelScope()
        async with anyio.create_task_group() as tg:
            tg.start_soon(worker, scope)
            for _ in range(3):
                await asyncio.sleep(0)
            scope.cancel()  # anyio cancels the task as it stands in the loop's queue,
            halt.set("stopped")  # and the halt comes in the same turn
        assert after == ["scope ended, caught True"]

    run(main)


def test_a_wait_that_catches_the_halts_cancellation_and_waits_again_is_cut_again() -> None:
    async def main() -> None:
        halt = Halt()
        began = asyncio.get_running_loop().time()

        async def stubborn() -> None:  # a user's store, say, that takes one cancellation
            with contextlib.suppress(asyncio.CancelledError):
                await asyncio.sleep(5)
            await asyncio.sleep(100)

        assert await halted_after(1, halt, waiting(halt, stubborn)) == (True, began + 1)

    run(main)


def test_a_wait_on_a_task_cancels_that_task_once() -> None:
    async def main() -> None:
        halt = Halt()
        began = asyncio.get_running_loop().time()
        cancels: list[int] = []

        async def inner() -> None:
            try:
                await asyncio.sleep(100)
            except asyncio.CancelledError:
                await asyncio.sleep(1)  # its cleanup takes a second
                cancels.append(asyncio.current_task().cancelling())  # type: ignore[union-attr]
                raise

        def on_a_task() -> Awaitable[None]:
            return asyncio.ensure_future(inner())

        loop = asyncio.get_running_loop()
        assert isinstance(loop, VirtualLoop)
        steps = loop.steps
        assert await halted_after(1, halt, waiting(halt, on_a_task)) == (True, began + 2)
        assert cancels == [1]
        assert loop.steps - steps < 30  # the halt waited for it, without looking every turn

    run(main)

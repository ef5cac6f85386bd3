"""An asyncio event loop on virtual time, for deterministic runs.

Time moves only when every task waits: the loop jumps to the next timer instead of sleeping.
With no I/O and no threads, the order in which callbacks run is fixed by the program, so one
seed gives one run. A loop with nothing ready and nothing scheduled can never move again: it
raises :class:`Deadlock` instead of blocking forever.
"""

from __future__ import annotations

import asyncio
import selectors
from collections.abc import Callable
from typing import Any

__all__ = ["Deadlock", "LoopClock", "VirtualLoop", "World"]


class Deadlock(RuntimeError):
    """Every task waits and nothing can ever wake one, or the run goes on past its budget of
    virtual time or loop steps (a livelock)."""


class World:
    """What outlives a process: the virtual clock (seconds)."""

    def __init__(self, start: float = 1000.0) -> None:
        self.now = start


class _Selector(selectors.DefaultSelector):
    def __init__(self, world: World) -> None:
        super().__init__()
        self.world = world

    def select(self, timeout: float | None = None) -> list[Any]:
        ready = super().select(0)  # the loop's own wake-up pipe, nothing else
        if ready:
            return ready
        if timeout is None:
            raise Deadlock("every task waits and no timer is set")
        if timeout > 0:
            self.world.now += timeout
        return []


class VirtualLoop(asyncio.SelectorEventLoop):
    """An event loop whose clock is the world's and which never sleeps for real.

    ``on_step`` is called before each iteration with the iteration's number: the simulator
    cancels a task or kills the process there, at "any await point".
    """

    def __init__(self, world: World, *, seconds: float = 20_000.0, steps: int = 2_000_000) -> None:
        super().__init__(_Selector(world))
        self.world = world
        self.steps = 0
        self._began = world.now
        self._until = world.now + seconds
        self._max_steps = steps
        self.on_step: Callable[[int], None] | None = None
        self.set_exception_handler(lambda loop, context: None)

    def time(self) -> float:
        return self.world.now

    def _run_once(self) -> None:
        self.steps += 1
        if self.steps > self._max_steps or self.world.now > self._until:
            raise Deadlock(
                f"still running after {self.steps:,} steps and "
                f"{self.world.now - self._began:,.0f} virtual seconds"
            )
        if self.on_step is not None:
            self.on_step(self.steps)
        super()._run_once()  # type: ignore[misc]


class LoopClock:
    """The running loop's time, and sleeping on it: a :class:`~smsbridge.Clock` that is
    virtual on a :class:`VirtualLoop`."""

    def now(self) -> float:
        """The loop's time."""
        return asyncio.get_running_loop().time()

    async def sleep(self, seconds: float) -> None:
        """Sleep on the loop."""
        await asyncio.sleep(max(0.0, seconds))

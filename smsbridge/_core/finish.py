"""Work that must end once begun, however often its caller's task is cancelled meanwhile."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Coroutine
from typing import Any, TypeVar

import anyio

__all__ = ["PATIENCE", "detached", "to_the_end"]

T = TypeVar("T")

PATIENCE = 10.0
"""Seconds for which :func:`to_the_end` holds its caller's cancellations back."""

_DETACHED: set[asyncio.Task[Any]] = set()

log = logging.getLogger("smsbridge")


def _ended(task: asyncio.Task[Any]) -> None:
    _DETACHED.discard(task)
    if task.cancelled():  # as the event loop shuts down, it cancels every task left
        log.error(
            "the settling of a cancelled send, which went on after its caller stopped waiting "
            "for it, was itself cancelled (the event loop shutting down?): recipients it had "
            "read may have no outcome"
        )


def detached() -> set[asyncio.Task[Any]]:
    """The work of this event loop whose callers stopped waiting for it, still running (the
    work of a loop closed meanwhile is forgotten)."""
    loop = asyncio.get_running_loop()
    for task in [t for t in _DETACHED if t.get_loop().is_closed()]:
        _DETACHED.discard(task)
    return {t for t in _DETACHED if t.get_loop() is loop}


async def to_the_end(work: Coroutine[Any, Any, T], patience: float = PATIENCE) -> T:
    """``work`` run to its end in a task of its own; the caller's cancellations meanwhile
    are held until it has ended, and then raised.

    A cancel shield holds against cancel scopes, not against ``task.cancel()``: a caller
    whose code cancels its task again while a send settles what it read (a timeout and a
    task group, say) would stop the settling halfway, and the rest would get no outcome.
    For ``patience`` seconds a cancellation waits for the work; one that comes later is
    raised at once, and the work goes on by itself (a callback of the caller's that never
    returns does not keep its task from ever being cancelled); if the event loop shuts down
    before it ends, that is logged. A cancellation of ``work`` from within is raised as it
    is."""
    task = asyncio.ensure_future(work)
    loop = asyncio.get_running_loop()
    until = loop.time() + patience
    held: asyncio.CancelledError | None = None
    # anyio's cancel scopes wait outside, instead of cancelling this task again at every
    # turn of the loop while the work runs
    with anyio.CancelScope(shield=True):
        while True:
            try:
                result = await asyncio.shield(task)
                break
            except asyncio.CancelledError as e:
                if task.done():
                    raise
                if loop.time() >= until:
                    _DETACHED.add(task)
                    task.add_done_callback(_ended)
                    raise
                held = e
    if held is not None:
        raise held
    return result

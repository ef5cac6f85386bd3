"""Work that must end once begun, however often its caller's task is cancelled meanwhile."""

from __future__ import annotations

import asyncio
from collections.abc import Coroutine
from typing import Any, TypeVar

__all__ = ["to_the_end"]

T = TypeVar("T")


async def to_the_end(work: Coroutine[Any, Any, T]) -> T:
    """``work`` run to its end in a task of its own; the caller's cancellations meanwhile
    are held until it has ended, and then raised.

    A cancel shield holds against cancel scopes, not against ``task.cancel()``: a caller
    whose code cancels its task again while a send settles what it read (a timeout and a
    task group, say) would stop the settling halfway, and the rest would get no outcome.
    A cancellation of ``work`` from within is raised as it is."""
    task = asyncio.ensure_future(work)
    cancelled: asyncio.CancelledError | None = None
    while True:
        try:
            result = await asyncio.shield(task)
        except asyncio.CancelledError as e:
            if task.done():
                raise
            cancelled = e
            continue
        if cancelled is not None:
            raise cancelled
        return result

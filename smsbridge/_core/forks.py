"""What a forked child must start over. A child inherits objects in the middle of their use:
a limiter's waiters and pending slots, a window's leases, a client's lock, each held by a
task or thread of the parent that does not exist in the child. Such an object is
registered here (:func:`on_fork`), and its ``_forked()`` is called in each child, in the
one thread the child has as it comes out of the fork."""

from __future__ import annotations

import os
import weakref
from typing import Protocol

__all__ = ["Forked", "on_fork"]


class Forked(Protocol):
    """An object that starts over in a forked child."""

    def _forked(self) -> None:
        """Let go of what the parent's tasks and threads held."""
        ...


_registered: weakref.WeakSet[Forked] = weakref.WeakSet()


def on_fork(thing: Forked) -> None:
    """Call ``thing._forked()`` in every child forked while it lives."""
    _registered.add(thing)


def _in_child() -> None:
    for thing in list(_registered):
        thing._forked()


os.register_at_fork(after_in_child=_in_child)

"""Which side of a fork this is. A forked child inherits objects in the middle of their use:
a limiter's waiters and pending slots, a window's leases, a client's lock, each held by a
task or thread of the parent that does not exist in the child. Such an object compares the
generation it last saw with :func:`generation` and, in a child, starts over from its state
alone."""

from __future__ import annotations

import os

__all__ = ["generation"]

_generation = 0


def _forked() -> None:
    global _generation
    _generation += 1


os.register_at_fork(after_in_child=_forked)


def generation() -> int:
    """A number that changes in each forked child (and stays the same in its parent)."""
    return _generation

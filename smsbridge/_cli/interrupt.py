"""Ctrl-C during a campaign: a flag set through the event loop, not an exception."""

from __future__ import annotations

import asyncio
import contextlib
import signal
import threading
from collections.abc import Callable, Iterator

__all__ = ["on_sigint"]


@contextlib.contextmanager
def on_sigint(handler: Callable[[], None]) -> Iterator[None]:
    """Ctrl-C sets a flag through the event loop instead of raising. Signals reach only the
    main thread: run elsewhere (``main()`` embedded in a worker thread), there is none to catch."""
    if threading.current_thread() is not threading.main_thread():
        yield
        return
    loop = asyncio.get_running_loop()
    loop.add_signal_handler(signal.SIGINT, handler)
    try:
        yield
    finally:
        with contextlib.suppress(Exception):
            loop.remove_signal_handler(signal.SIGINT)

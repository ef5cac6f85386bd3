"""Ctrl-C during a campaign: a flag set through the event loop, not an exception."""

from __future__ import annotations

import asyncio
import contextlib
import os
import signal
import sys
import threading
from collections.abc import Callable, Iterator

import anyio

__all__ = ["stopping_on_sigint"]


@contextlib.contextmanager
def _on_sigint(handler: Callable[[], None]) -> Iterator[None]:
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


def stopping_on_sigint(stop: anyio.Event) -> contextlib.AbstractContextManager[None]:
    """The campaign's Ctrl-C: the first sets ``stop`` (the requests in flight finish), the
    second aborts the process as Ctrl-C does."""

    def interrupted() -> None:
        if stop.is_set():
            signal.signal(signal.SIGINT, signal.SIG_DFL)
            os.kill(os.getpid(), signal.SIGINT)
            return
        stop.set()
        sys.stderr.write("\nStopping after the requests in flight (Ctrl-C again to abort)...\n")

    return _on_sigint(interrupted)

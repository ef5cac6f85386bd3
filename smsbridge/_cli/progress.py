"""The progress display of a campaign: a rich bar on a terminal, nothing elsewhere."""

from __future__ import annotations

import sys
import time
from types import TracebackType
from typing import Any

__all__ = ["Progress"]


class Progress:
    """Recipients done of the total, rate and ETA; silent unless stderr is a terminal."""

    def __init__(self, total: int, done: int) -> None:
        self.total = total
        self.done = done

    @classmethod
    def create(cls, total: int, done: int, *, enabled: bool) -> Progress:
        """A live bar when wanted and possible (rich installed, stderr a terminal)."""
        if enabled and sys.stderr.isatty():
            try:
                return _RichProgress(total, done)
            except ImportError:
                return _PlainProgress(total, done)
        return cls(total, done)

    def advance(self, count: int) -> None:
        """``count`` more recipients have their outcome."""
        self.done += count

    def __enter__(self) -> Progress:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        return None


class _PlainProgress(Progress):
    """One rewritten line, twice a second at most (when rich is not installed)."""

    def __init__(self, total: int, done: int) -> None:
        super().__init__(total, done)
        self._start, self._first, self._shown = time.monotonic(), done, 0.0

    def advance(self, count: int) -> None:
        super().advance(count)
        now = time.monotonic()
        if now - self._shown >= 0.5:
            self._shown = now
            rate = (self.done - self._first) / max(now - self._start, 1e-9)
            eta = (self.total - self.done) / rate if rate else 0.0
            sys.stderr.write(
                f"\r{self.done:,}/{self.total:,} recipients  {rate:,.0f}/s  ETA {eta:,.0f} s "
            )
            sys.stderr.flush()

    def __exit__(self, *exc: Any) -> None:
        sys.stderr.write("\n")


class _RichProgress(Progress):
    def __init__(self, total: int, done: int) -> None:
        from rich.progress import (
            BarColumn,
            MofNCompleteColumn,
            TaskProgressColumn,
            TextColumn,
            TimeElapsedColumn,
            TimeRemainingColumn,
        )
        from rich.progress import Progress as Bar

        super().__init__(total, done)
        self._bar = Bar(
            TextColumn("[bold]sending"),
            BarColumn(),
            MofNCompleteColumn(),
            TaskProgressColumn(),
            TextColumn("{task.fields[rate]}"),
            TimeElapsedColumn(),
            TimeRemainingColumn(),
            transient=False,
            redirect_stdout=False,
        )
        self._task = self._bar.add_task("send", total=total, completed=done, rate="")
        self._start, self._first = time.monotonic(), done

    def advance(self, count: int) -> None:
        super().advance(count)
        elapsed = max(time.monotonic() - self._start, 1e-9)
        rate = f"{(self.done - self._first) / elapsed:>7,.0f}/s"
        self._bar.update(self._task, completed=self.done, rate=rate)

    def __enter__(self) -> Progress:
        self._bar.start()
        return self

    def __exit__(self, *exc: Any) -> None:
        self._bar.stop()

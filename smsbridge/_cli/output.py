"""What the command prints: one JSON line with ``--json``, readable lines otherwise."""

from __future__ import annotations

import math
import sys
from collections import Counter
from collections.abc import Sequence
from typing import Any

import msgspec

from .._core.models import Counts, Outcome, Status

__all__ = ["OutputError", "Reasons", "counts_table", "duration", "json_line", "line"]

COUNTS = ("accepted", "rejected", "suppressed", "failed", "uncertain", "requests")


class OutputError(Exception):
    """Standard output cannot be written (closed, a full disk, a reader gone)."""


def line(text: str = "") -> None:
    """One line on standard output, written through at once: a failure to write it is an
    :class:`OutputError` here, not a traceback at exit."""
    out = sys.stdout
    if out is None:
        raise OutputError("standard output is closed")
    try:
        out.write(text + "\n")
        out.flush()
    except OSError as e:
        raise OutputError(f"could not write to standard output: {e.strerror or e}") from None


def json_line(value: Any) -> None:
    """``value`` as one line of JSON on standard output."""
    line(msgspec.json.encode(value).decode())


def counts_table(counts: Counts, left: int | None = None, *, journal: bool = False) -> None:
    """The counts, one per line, and what is left when something is (of a ``journal``'s
    campaign: the ``failed`` among it, which a resume tries again)."""
    for name in COUNTS:
        line(f"  {name:<11}{getattr(counts, name):>10,}")
    if left:
        again = min(counts.failed, left) if journal else 0
        among = f"   ({again:,} of them failed: a resume tries them again)" if again else ""
        line(f"  {'left':<11}{left:>10,}{among}")


def duration(seconds: float) -> str:
    """``1h02m03s`` or ``2m03s``."""
    minutes, secs = divmod(math.ceil(seconds), 60)
    hours, minutes = divmod(minutes, 60)
    return f"{hours}h{minutes:02d}m{secs:02d}s" if hours else f"{minutes}m{secs:02d}s"


class Reasons:
    """Why a run's recipients that were not accepted were not: each status and reason
    counted (up to a thousand different ones), the most common shown under the counts. The
    reasons are in the outcomes, which without ``--outcomes`` nobody sees."""

    __slots__ = ("_counts",)

    _KINDS = 1000

    def __init__(self) -> None:
        self._counts: Counter[tuple[str, str]] = Counter()

    def note(self, statuses: Sequence[Status], details: Sequence[str | None]) -> None:
        """A batch's outcomes (an accepted one's detail is its id, not a reason)."""
        if statuses.count(Status.ACCEPTED) == len(statuses):
            return
        counts = self._counts
        for status, detail in zip(statuses, details, strict=True):
            if status is not Status.ACCEPTED:
                key = (status.value, detail or "")
                if key in counts or len(counts) < self._KINDS:
                    counts[key] += 1

    def outcome(self, outcome: Outcome) -> None:
        """One recipient's outcome."""
        self.note((outcome.status,), (outcome.reason,))

    def show(self, most: int = 3) -> None:
        """The ``most`` common, one line each, under a line that says what they are."""
        if not self._counts:
            return
        line("Why not accepted, in this run (the most common):")
        for (status, reason), count in self._counts.most_common(most):
            shown = reason if len(reason) <= _REASON else reason[: _REASON - 3] + "..."
            line(f"  {status:<11}{count:>10,}  {shown}")


_REASON = 200  # characters of a reason shown

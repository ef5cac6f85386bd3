"""What the command prints: one JSON line with ``--json``, readable lines otherwise."""

from __future__ import annotations

import math
import sys
from typing import Any

import msgspec

from .._core.models import Counts

__all__ = ["OutputError", "counts_table", "duration", "json_line", "line"]

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

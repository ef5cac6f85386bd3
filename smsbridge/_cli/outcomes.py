"""``--outcomes FILE``: one row per recipient, written as outcomes arrive.

CSV with a header row (``index,phone,status,message_id,reason,gateway``), or JSON Lines when the
name ends in ``.jsonl``. Rows go through a buffered file as they are decided, so memory stays
flat for any list; the journal, not this file, is what survives a kill -9 (``smsbridge journal
FILE --outcomes OUT`` exports it whole).
"""

from __future__ import annotations

import csv
from collections.abc import Iterable
from pathlib import Path
from typing import IO

import msgspec

from .._core.models import Outcome
from .args import UsageError

__all__ = ["FIELDS", "OutcomeFile", "export"]

FIELDS = ("index", "phone", "status", "message_id", "reason", "gateway")


class OutcomeFile:
    """An open outcomes file; :meth:`write` is an ``on_outcome`` callback."""

    def __init__(self, path: Path) -> None:
        if str(path) == "-":
            raise UsageError("--outcomes needs a file: standard output carries the summary")
        self._jsonl = path.suffix.lower() == ".jsonl"
        try:
            self._file: IO[str] = path.open("w", encoding="utf-8", newline="")
        except OSError as e:
            raise UsageError(f"cannot write the outcomes to {path}: {e.strerror}") from None
        self._encoder = msgspec.json.Encoder()
        self._csv = None if self._jsonl else csv.writer(self._file)
        if self._csv is not None:
            self._csv.writerow(FIELDS)

    def write(self, outcome: Outcome) -> None:
        """One recipient's row."""
        if self._csv is None:
            self._file.write(self._encoder.encode(outcome).decode())
            self._file.write("\n")
        else:
            self._csv.writerow(
                (
                    outcome.index,
                    outcome.phone,
                    outcome.status.value,
                    outcome.message_id or "",
                    outcome.reason or "",
                    outcome.gateway or "",
                )
            )

    def close(self) -> None:
        """Flush and close."""
        self._file.close()

    def __enter__(self) -> OutcomeFile:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


def export(outcomes: Iterable[Outcome], path: Path) -> int:
    """Write ``outcomes`` to ``path``; returns how many."""
    count = 0
    with OutcomeFile(path) as out:
        for outcome in outcomes:
            out.write(outcome)
            count += 1
    return count

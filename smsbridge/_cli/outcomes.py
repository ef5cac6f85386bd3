"""``--outcomes FILE``: one row per recipient, written as outcomes arrive.

CSV with a header row (``index,phone,status,message_id,reason,gateway``), or JSON Lines when the
name ends in ``.jsonl``. Rows go through a buffered file as they are decided, so memory stays
flat for any list; the journal, not this file, is what survives a kill -9 (``smsbridge journal
FILE --outcomes OUT`` exports it whole).
"""

from __future__ import annotations

import csv
import os
from collections.abc import Callable, Iterable
from pathlib import Path
from typing import IO

import msgspec

from .._campaign import SQLITE_FILES
from .._core.models import Outcome
from .args import UsageError

__all__ = ["FIELDS", "OutcomeFile", "export"]

FIELDS = ("index", "phone", "status", "message_id", "reason", "gateway")


class OutcomeFile:
    """An open outcomes file; :meth:`write` is an ``on_outcome`` callback.

    Args:
        path: where; ``*.jsonl`` for JSON Lines, else CSV.
        keep_apart: files it must not be (the input, the journal): writing it would
            destroy them.
        on_error: called once if a write fails (a full disk): the caller stops its send;
            :attr:`error` says why.
    """

    def __init__(
        self,
        path: Path,
        *,
        keep_apart: Iterable[Path | None] = (),
        on_error: Callable[[], object] | None = None,
    ) -> None:
        self.check(path, keep_apart)
        self.path = path
        self._jsonl = path.suffix.lower() == ".jsonl"
        try:
            self._file: IO[str] = path.open("w", encoding="utf-8", newline="")
        except OSError as e:
            raise UsageError(f"cannot write the outcomes to {path}: {e.strerror}") from None
        self._encoder = msgspec.json.Encoder()
        self._csv = None if self._jsonl else csv.writer(self._file)
        self._on_error = on_error
        self.error: OSError | None = None
        self._guarded(lambda: self._csv.writerow(FIELDS) if self._csv is not None else None)

    @staticmethod
    def check(path: Path, keep_apart: Iterable[Path | None] = ()) -> None:
        """Refuse, before anything is opened, a path that cannot take the outcomes."""
        if str(path) == "-":
            raise UsageError("--outcomes needs a file: standard output carries the summary")
        for other in keep_apart:
            if other is None:
                continue
            for kept in (other, *_beside(other)):
                if _same_file(path, kept):
                    raise UsageError(f"--outcomes {path} would overwrite {kept}")
        if path.suffix.lower() == ".json":
            raise UsageError("--outcomes writes JSON Lines (*.jsonl) or CSV, not *.json")

    def write(self, outcome: Outcome) -> None:
        """One recipient's row (nothing more once a write has failed)."""
        if self.error is not None:
            return
        if self._csv is None:
            line = self._encoder.encode(outcome).decode() + "\n"
            self._guarded(lambda: self._file.write(line))
        else:
            row = (
                outcome.index,
                _cell(outcome.phone),
                outcome.status.value,
                _cell(outcome.message_id or ""),  # the gateway's words too
                _cell(outcome.reason or ""),
                outcome.gateway or "",
            )
            writer = self._csv
            self._guarded(lambda: writer.writerow(row))

    def _guarded(self, write: Callable[[], object]) -> None:
        try:
            write()
        except OSError as e:
            self.error = e
            if self._on_error is not None:
                self._on_error()

    def problem(self) -> str | None:
        """One line saying why the file is incomplete, or ``None``."""
        if self.error is None:
            return None
        return f"cannot write the outcomes to {self.path}: {self.error.strerror or self.error}"

    def close(self) -> None:
        """Flush and close (a failure is kept in :attr:`error`)."""
        self._guarded(self._file.close)

    def __enter__(self) -> OutcomeFile:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


def _beside(path: Path) -> list[Path]:
    """The files SQLite keeps beside a database (its log, its shared memory): beside the
    name given, and beside the file a link names. Writing one under a run breaks the
    journal, or the run."""
    return [
        Path(f"{base}{end}")
        for base in dict.fromkeys((str(path), os.path.realpath(path)))
        for end in SQLITE_FILES
    ]


def _same_file(path: Path, other: Path) -> bool:
    try:
        if path.exists() and other.exists():
            return os.path.samefile(path, other)
    except OSError:
        pass
    return path.resolve() == other.resolve()


def _cell(text: str) -> str:
    """A cell a spreadsheet will not run as a formula: one beginning as a formula does
    (``= @ + -``, a tab, a return) is quoted, but for a plain number with its sign."""
    first = text[:1]
    if first in ("=", "@", "\t", "\r") or (first in ("+", "-") and not text[1:].isdigit()):
        return "'" + text
    return text


def export(outcomes: Iterable[Outcome], path: Path, keep_apart: Iterable[Path] = ()) -> int:
    """Write ``outcomes`` to ``path``; returns how many."""
    count = 0
    with OutcomeFile(path, keep_apart=keep_apart) as out:
        for outcome in outcomes:
            out.write(outcome)
            count += 1
    if out.error is not None:
        raise UsageError(out.problem() or "")
    return count

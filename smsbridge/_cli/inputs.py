"""Campaign input: ``--to`` values, then the rows of ``--to-file``, each with a stable index.

The file is a CSV with a header row naming ``phone`` and optionally ``text`` and ``param1``
to ``param3``, or bare numbers one per line. It is read as a stream, never loaded whole: once
to digest and count it, then again to send.
"""

from __future__ import annotations

import csv
import hashlib
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any, Literal

from .._core.errors import ConfigurationError

__all__ = ["Mode", "Recipients"]

Mode = Literal["phones", "texts", "params"]
_PARAMS = ("param1", "param2", "param3")


class Recipients:
    """The recipients of a campaign.

    Args:
        to: numbers given on the command line.
        path: the CSV or plain list, or ``None``.
        mode: ``phones`` (one common text), ``texts`` (a ``text`` column may personalise) or
            ``params`` (template parameters from ``param1``..``param3``).
        default_text: the text for rows without one, in ``texts`` mode.
    """

    def __init__(
        self,
        to: Sequence[str],
        path: Path | None,
        mode: Mode,
        default_text: str | None = None,
    ) -> None:
        self.to = list(to)
        self.path = path
        self.mode = mode
        self.default_text = default_text
        self.header: list[str] | None = None
        if path is not None:
            if not path.is_file():
                raise ConfigurationError(f"no such file: {path}")
            self.header = self._header(path)
            if self.header is not None and "phone" not in self.header:
                raise ConfigurationError(f"{path}: the header row has no 'phone' column")

    @staticmethod
    def _header(path: Path) -> list[str] | None:
        with path.open(newline="", encoding="utf-8-sig") as f:
            for row in csv.reader(f):
                if not row or not any(cell.strip() for cell in row):
                    continue
                names = [cell.strip().lower() for cell in row]
                return names if {"phone", "text", *_PARAMS} & set(names) else None
        return None

    @property
    def personalised(self) -> bool:
        """Whether rows carry their own texts."""
        return self.mode == "texts" and self.header is not None and "text" in self.header

    def scan(self) -> tuple[str, int]:
        """A digest of the whole input and the number of recipients, in one streamed pass."""
        digest = hashlib.sha256()
        for value in self.to:
            digest.update(value.encode() + b"\n")
        digest.update(b"\x00file\x00")
        count = len(self.to)
        if self.path is not None:
            with self.path.open("rb") as f:
                while chunk := f.read(1 << 20):
                    digest.update(chunk)
            count += sum(1 for _ in self._file_rows())
        return digest.hexdigest(), count

    def _file_rows(self) -> Iterator[list[str]]:
        assert self.path is not None
        with self.path.open(newline="", encoding="utf-8-sig") as f:
            reader = csv.reader(f)
            seen_header = self.header is None
            for row in reader:
                if not row or not any(cell.strip() for cell in row):
                    continue
                if not seen_header:
                    seen_header = True
                    continue
                yield row

    def _entry(self, row: list[str]) -> Any:
        if self.header is None:
            phone = row[0].strip()
            if self.mode == "texts":
                return phone, self.default_text or ""
            return phone if self.mode == "phones" else (phone, ())
        cells = dict(zip(self.header, row, strict=False))
        phone = cells.get("phone", "").strip()
        if self.mode == "phones":
            return phone
        if self.mode == "texts":
            return phone, cells.get("text") or self.default_text or ""
        values = [cells.get(name, "") for name in _PARAMS if name in self.header]
        while values and not values[-1]:
            values.pop()
        return phone, tuple(values)

    def rows(self) -> Iterator[tuple[int, Any]]:
        """``(index, entry)`` for every recipient, in input order."""
        index = 0
        for value in self.to:
            if self.mode == "phones":
                yield index, value
            elif self.mode == "texts":
                yield index, (value, self.default_text or "")
            else:
                yield index, (value, ())
            index += 1
        if self.path is not None:
            for row in self._file_rows():
                yield index, self._entry(row)
                index += 1

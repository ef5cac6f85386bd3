"""Campaign input: ``--to`` values, then the rows of ``--to-file``, each with a stable index.

The file is a CSV, its delimiter sniffed (``,`` ``;`` or tab: spreadsheets in these countries
export ``;``), with a header row naming the phone column (``phone`` or a usual alias, or the
one ``--phone-column`` names) and optionally a text column and ``param1`` to ``param3``; or
bare numbers one per line. ``-`` reads standard input (kept in a temporary file, since the
input is read twice). The file is streamed, never loaded whole: once to check, digest and
count it, then again to send. Anything that cannot be read as asked is a :class:`InputError`
with one line saying where.
"""

from __future__ import annotations

import codecs
import csv
import hashlib
import os
import re
import shutil
import stat
import sys
import tempfile
from collections.abc import Generator, Iterator, Sequence
from contextlib import closing
from pathlib import Path
from typing import Any, BinaryIO, Literal

from .._core.errors import ConfigurationError

__all__ = ["InputError", "Mode", "Recipients"]

Mode = Literal["phones", "texts", "params"]
_PARAMS = ("param1", "param2", "param3")
PHONE_NAMES = (
    "phone",
    "phone_number",
    "phonenumber",
    "mobile",
    "msisdn",
    "number",
    "tel",
    "телефон",
    "номер",
)
TEXT_NAMES = ("text", "message", "sms", "текст", "сообщение", "повідомлення")
_PHONE_LIKE = re.compile(r"\s*\+?[\d\s().\-]{5,}\s*")
_SNIFF = 8 * 1024


class InputError(ConfigurationError):
    """The input file cannot be read as asked (encoding, delimiter, header, a field)."""


def _name(cell: str) -> str:
    return cell.strip().lower().replace(" ", "_")


class Recipients:
    """The recipients of a campaign.

    Args:
        to: numbers given on the command line.
        path: the CSV or plain list, ``-`` for standard input, or ``None``.
        mode: ``phones`` (one common text), ``texts`` (a text column may personalise) or
            ``params`` (template parameters from ``param1``..``param3``).
        default_text: the text for rows without one, in ``texts`` mode.
        phone_column, text_column: the header's names for them, when not the usual ones.
    """

    def __init__(
        self,
        to: Sequence[str],
        path: Path | None,
        mode: Mode,
        default_text: str | None = None,
        *,
        phone_column: str | None = None,
        text_column: str | None = None,
    ) -> None:
        self.to = list(to)
        self.mode = mode
        self.default_text = default_text
        self.header: list[str] | None = None
        self.delimiter = ","
        self._skip = 0  # lines before the rows: Excel's "sep=;"
        self._spool: str | None = None
        self._spool_fd: int | None = None  # the copy's descriptor, where it is read through it
        self._scanned: tuple[int, ...] | None = None  # the file as scan() read it
        self._blocks: list[bytes] = []  # and the digest of each block of its bytes
        self._suspect = False  # its change time moved: its blocks are compared as read
        self._verified = 0  # bytes compared so far
        self._name = "standard input" if str(path) == "-" else str(path)
        self.path = self._open(path) if path is not None else None
        self._phone = 0
        self._text: int | None = None
        self._params: list[int] = []
        self._takes: int | None = None  # the template's parameters, where known
        if self.path is not None:
            try:
                self._read_header(phone_column, text_column)
            except BaseException:
                self.close()  # the copy of standard input holds the caller's numbers
                raise

    def close(self) -> None:
        """Remove the copy of standard input, if one was made."""
        if self._spool is not None:
            os.unlink(self._spool)
            self._spool = None
        if self._spool_fd is not None:
            os.close(self._spool_fd)
            self._spool_fd = None

    # ----------------------------------------------------------------- opening

    def _open(self, path: Path) -> Path:
        if str(path) == "-":
            if sys.stdin is None:
                raise InputError("standard input is closed: give the recipients' file")
            try:
                return self._copy(sys.stdin.buffer)
            except OSError as e:
                raise InputError(f"cannot copy standard input: {e.strerror or e}") from None
        try:
            kind = path.stat().st_mode
        except FileNotFoundError:
            raise InputError(f"no such file: {path}") from None
        except OSError as e:
            raise InputError(f"cannot read {path}: {e.strerror}") from None
        if stat.S_ISDIR(kind):
            raise InputError(f"{path} is a directory, not a file")
        if not os.access(path, os.R_OK):
            raise InputError(f"cannot read {path}: permission denied")
        if not stat.S_ISREG(kind):  # a pipe (`--to-file <(...)`), read once: copied whole
            try:
                with path.open("rb") as stream:
                    return self._copy(stream)
            except OSError as e:
                raise InputError(f"cannot read {path}: {e.strerror}") from None
        return path

    def _copy(self, stream: BinaryIO) -> Path:
        """A private copy of an input that can be read only once (standard input, a pipe):
        the file is read more than once. Removed by :meth:`close`; where the system lets a
        file be opened again through its descriptor (Linux's ``/proc/self/fd``), removed
        from its folder at once, so that a run killed leaves no copy of the numbers."""
        fd, name = tempfile.mkstemp(prefix="smsbridge-stdin-", suffix=".csv")
        self._spool, self._spool_fd = name, fd
        try:
            with os.fdopen(os.dup(fd), "wb") as copy:
                shutil.copyfileobj(stream, copy)
        except BaseException:
            self.close()
            raise
        again = Path(f"/proc/self/fd/{fd}")
        try:
            seen_there = os.path.samestat(again.stat(), os.stat(name))
        except OSError:  # no such view of the descriptors
            seen_there = False
        if not seen_there:  # the copy is named until closed
            os.close(fd)
            self._spool_fd = None
            return Path(name)
        os.unlink(name)
        self._spool = None
        return again

    def _lines(self) -> Generator[str, None, None]:
        """The file's text, line by line; bytes that are not UTF-8 are an InputError. Once
        scanned, a file that is not as it was then is one too (looked at every few thousand
        lines): rows of another list would go under the first one's count and journal."""
        assert self.path is not None
        scanned = self._scanned
        try:
            with self.path.open(encoding="utf-8-sig", newline="") as f:
                if scanned is not None:
                    self._unchanged(f.fileno())
                for _ in range(self._skip):
                    next(f, None)
                if scanned is None:
                    yield from f
                    return
                # each part looked at before any of it goes (what was read of a file changed
                # since is the change's, however little)
                fd, lines, size = f.fileno(), [], 0
                for line in f:
                    lines.append(line)
                    size += len(line)
                    if len(lines) >= _LOOK_EVERY or size >= _LOOK_CHARS:
                        self._unchanged(fd)
                        yield from lines
                        lines, size = [], 0
                if lines:
                    self._unchanged(fd)
                    yield from lines
        except UnicodeDecodeError:
            raise self._not_utf8() from None
        except OSError as e:  # the disk or the network under the file failed
            raise InputError(f"{self._shown()}: cannot read it: {e.strerror or e}") from None

    def _unchanged(self, fd: int) -> None:
        """Raise unless the open file is as scanned. Where only its change time moved (a
        chmod, a hard link, a rename, or a rewrite at the same size with the modification
        time set back), its bytes are compared with the scan's, a block at a time: from then
        on each block as it is read (at most one more read of the file, however often)."""
        then = self._scanned
        assert then is not None
        now = _identity(os.fstat(fd))
        if now[:-1] == then[:-1] and ((now == then and not self._suspect) or self._same(fd)):
            return
        raise InputError(
            f"{self._shown()} changed while the campaign read it: stopped (what went is "
            "in the journal); send a file that stays as it is while it is sent"
        )

    def _same(self, fd: int) -> bool:
        """Whether the blocks read so far through ``fd`` (its position, read-ahead included)
        and not yet compared are the scan's; the file is suspect from now on."""
        self._suspect = True
        self._scanned = _identity(os.fstat(fd))
        end = os.lseek(fd, 0, os.SEEK_CUR)
        block = self._verified // _BLOCK
        while block * _BLOCK < end:
            data = os.pread(fd, _BLOCK, block * _BLOCK)
            if block >= len(self._blocks) or _block_digest(data) != self._blocks[block]:
                return False
            block += 1
        # the block read into last is compared again next time: its rest is not read yet
        self._verified = max(self._verified, end // _BLOCK * _BLOCK)
        return True

    def _not_utf8(self) -> InputError:
        """Where the file stops being UTF-8, found line by line (the fast read knows only
        that it does)."""
        assert self.path is not None
        decoder = codecs.getincrementaldecoder("utf-8-sig")()
        offset = 0
        with self.path.open("rb") as f:
            for line_number, raw in enumerate(f, start=1):
                try:
                    decoder.decode(raw)
                except UnicodeDecodeError as e:
                    return InputError(
                        f"{self._shown()}: line {line_number} is not UTF-8 text (byte "
                        f"0x{raw[e.start]:02x} at offset {offset + e.start}); save the file "
                        "as UTF-8"
                    )
                offset += len(raw)
        return InputError(f"{self._shown()}: the file is not UTF-8 text; save it as UTF-8")

    def _shown(self) -> str:
        return self._name

    def _rows(self, width: int | None = None) -> Generator[list[str], None, None]:
        """The file's rows that hold anything; with ``width`` (the header's named fields),
        one holding anything past it is an InputError (:meth:`_check_width`)."""
        # closed here, not when collected: an error's traceback would keep the file open
        with closing(self._lines()) as lines:
            # strict: a quote left open at the end would take every later row into one field
            reader = csv.reader(lines, delimiter=self.delimiter, strict=True)
            try:
                for row in reader:
                    if row and (row[0].strip() or any(cell.strip() for cell in row)):
                        if width is not None and len(row) > width:
                            self._check_width(row, width, reader.line_num + self._skip)
                        yield row
            except csv.Error as e:
                line = reader.line_num + self._skip
                raise InputError(f"{self._shown()}: line {line}: {e}") from None

    def _check_width(self, row: list[str], named: int, line: int) -> None:
        """A row with fields past the header's last named one (``named``): refused if any
        of them holds anything (under the header's trailing unnamed cells, or past its end),
        the empty cells a spreadsheet pads rows with being nothing."""
        shown = {",": "','", ";": "';'", "\t": "a tab"}.get(self.delimiter, repr(self.delimiter))
        if self.header is None:
            if not any(cell.strip() for cell in row[1:]):
                return  # a number and an empty cell: nothing cut off
            raise InputError(
                f"{self._shown()}: line {line} holds {len(row)} fields, but the file has no "
                "header: a list of numbers has one a line; name the columns in a first row "
                "(phone,text)"
            )
        if not any(cell.strip() for cell in row[named:]):
            return  # a spreadsheet's padding
        raise InputError(
            f"{self._shown()}: line {line} holds {len(row)} fields, the header {named}: quote "
            f'a field holding {shown} ("Hello, Olena"), or take the extra {shown} off'
        )

    def _named_width(self) -> int:
        """Fields up to the header's last named one (1 without a header)."""
        if self.header is None:
            return 1
        return next((i + 1 for i in range(len(self.header) - 1, -1, -1) if self.header[i]), 1)

    def _read_header(self, phone_column: str | None, text_column: str | None) -> None:
        with closing(self._lines()) as lines:
            sample = "".join(_take(lines, _SNIFF))
        if not sample.strip():
            return
        head, *rest = sample.splitlines(keepends=True)
        said = re.fullmatch(r"sep=(.)\s*", head)
        if said is not None and said[1] in ",;\t|":  # Excel's line naming the delimiter
            self.delimiter, self._skip = said[1], 1
            sample = "".join(rest)
        top = next((line for line in sample.splitlines() if line.strip()), "")
        by_count = sorted(",;\t", key=top.count, reverse=True)  # the first line's own
        if not self._skip and not any(d in sample for d in ",;\t"):
            self.delimiter = ","  # one column: nothing to sniff (and sniffing it is slow)
        elif not self._skip:  # (where the file named its delimiter, that one)
            try:
                self.delimiter = csv.Sniffer().sniff(sample, delimiters=",;\t").delimiter
            except csv.Error:  # rows that disagree: the first line's own delimiter
                self.delimiter = by_count[0]
        wanted_phone = _name(phone_column) if phone_column else None
        known = set(PHONE_NAMES) | set(TEXT_NAMES) | set(_PARAMS)

        def is_header(names: list[str]) -> bool:
            return wanted_phone in names if wanted_phone else bool(known & set(names))

        first = self._first_row()
        if first is None:
            return
        if not is_header([_name(cell) for cell in first]):
            # a guess a text misled (an apostrophe read as a quote): the first line's own
            # delimiters, if one of them makes it a header
            for other in by_count:
                if other != self.delimiter and top.count(other):
                    guessed, self.delimiter = self.delimiter, other
                    row = self._first_row()
                    if row is not None and is_header([_name(cell) for cell in row]):
                        first = row
                        break
                    self.delimiter = guessed
        names = [_name(cell) for cell in first]
        header = is_header(names)
        if not header:
            if wanted_phone is not None:
                raise InputError(
                    f"{self._shown()}: no column {phone_column!r} in the header {_brief(first)}"
                )
            if not _PHONE_LIKE.fullmatch(first[0]):
                raise InputError(
                    f"{self._shown()}: the header {_brief(first)} names no phone column; name it "
                    "'phone' or give --phone-column NAME"
                )
            return  # bare numbers, one per line
        self.header = names
        self._phone = self._find(
            names,
            [wanted_phone] if wanted_phone else list(PHONE_NAMES),
            "phone",
            first,
            required=True,
        )
        if self.mode == "params":
            pass  # a template's rows bring parameters, never a text
        elif text_column:
            self._text = self._find(names, [_name(text_column)], "text", first, required=True)
            if self._text == self._phone:
                raise InputError(f"{self._shown()}: the text column is the phone column")
        else:
            others = [n if i != self._phone else "" for i, n in enumerate(names)]
            self._text = self._find(others, list(TEXT_NAMES), "text", first, required=False)
        present = [p for p in _PARAMS if p in names]
        twice = [p for p in present if names.count(p) > 1]
        if twice and self.mode == "params":
            raise InputError(f"{self._shown()}: the header names {twice[0]} more than once")
        beyond = [n for n in names if re.fullmatch(r"param_?0*([4-9]|[1-9]\d+)", n)]
        if beyond and self.mode == "params":  # a parameter no template takes: not dropped
            raise InputError(
                f"{self._shown()}: the header has {beyond[0]}: a template takes at most "
                "three parameters, param1, param2, param3"
            )
        self._params = [names.index(p) for p in present]
        last = _PARAMS.index(present[-1]) if present and self.mode == "params" else 0
        missing = [p for p in _PARAMS[:last] if p not in names]
        if missing:  # param3 read as the second: its value would fill {2}
            raise InputError(
                f"{self._shown()}: the header has {present[-1]} but no {missing[0]}: "
                "parameters are param1, param2, param3 in turn"
            )

    def _find(
        self,
        names: list[str],
        candidates: list[str],
        what: str,
        first: list[str],
        *,
        required: bool,
    ) -> Any:
        present = [n for n in candidates if n in names]
        if not present:
            if required:
                raise InputError(
                    f"{self._shown()}: the header {_brief(first)} has no {what} column"
                )
            return None
        if len(present) > 1 or names.count(present[0]) > 1:
            raise InputError(
                f"{self._shown()}: the header {_brief(first)} names more than one {what} column"
            )
        return names.index(present[0])

    # ----------------------------------------------------------------- reading

    @property
    def personalised(self) -> bool:
        """Whether rows carry their own texts."""
        return self.mode == "texts" and self._text is not None

    @property
    def parametrised(self) -> bool:
        """Whether rows carry template parameters."""
        return self.mode == "params" and bool(self._params)

    def takes(self, parameters: int) -> None:
        """The template takes ``parameters``: a row's empty cells up to that many (of the
        file's parameter columns) are its parameters, empty, unless the row fills none."""
        self._takes = parameters

    def scan(self) -> tuple[str, int]:
        """A digest of the whole input and the number of recipients, in one streamed pass
        that also proves the file readable to its end."""
        digest = hashlib.sha256()
        for value in self.to:
            digest.update(value.encode() + b"\n")
        digest.update(b"\x00file\x00")
        count = len(self.to)
        if self.path is not None:
            self._scanned, self._blocks = None, []
            with self.path.open("rb") as f:
                before = _identity(os.fstat(f.fileno()))
                while chunk := f.read(_BLOCK):
                    digest.update(chunk)
                    self._blocks.append(_block_digest(chunk))
            count += sum(1 for _ in self._file_rows())
            if _identity(self.path.stat()) != before:
                raise InputError(f"{self._shown()} changed while it was being checked")
            self._scanned = before
        return digest.hexdigest(), count

    def reading(self) -> str | None:
        """Which columns of the file are read, in words (a journal holds a resume to them);
        ``None`` without a file."""
        if self.path is None:
            return None
        if self.header is None:
            return "numbers one a line"
        read = f"phone column {self.header[self._phone]!r}"
        if self.mode == "texts" and self._text is not None:
            read += f", text column {self.header[self._text]!r}"
        if self.mode == "params" and self._params:
            read += ", " + ", ".join(self.header[i] for i in self._params)
        return read

    def _first_row(self) -> list[str] | None:
        with closing(self._rows()) as rows:
            return next(rows, None)

    def _file_rows(self) -> Generator[list[str], None, None]:
        # a row too wide may hold a text or parameter cut off; where only numbers are read,
        # a number misread is rejected with its reason, and a file of numbers is checked
        numbers_only = self.header is not None and self.mode == "phones"
        width = None if numbers_only else self._named_width()
        with closing(self._rows(width)) as rows:
            if self.header is not None:
                next(rows, None)
            yield from rows

    def _entry(self, row: list[str]) -> Any:
        phone = row[self._phone].strip() if self._phone < len(row) else ""
        if self.mode == "phones":
            return phone
        if self.mode == "texts":
            text = row[self._text] if self._text is not None and self._text < len(row) else ""
            return phone, (text if text.strip() else self.default_text) or ""
        values = [row[i] if i < len(row) else "" for i in self._params]
        cells = sum(1 for i in self._params if i < len(row))  # those the row has, even empty
        while values and not values[-1]:
            values.pop()
        if values and self._takes is not None and len(values) < self._takes:
            # "Ivan,Lviv," for a template of three: its last parameter is empty, not missing
            values += [""] * (min(self._takes, cells) - len(values))
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


_LOOK_EVERY = 4096  # lines read between two looks at whether the file changed
_LOOK_CHARS = 1 << 20  # or characters, whichever comes first: memory stays flat
_BLOCK = 1 << 16  # bytes a scan digests apart, to compare a part of the file later


def _identity(status: os.stat_result) -> tuple[int, ...]:
    """What changes when a file is written or replaced."""
    # the change time too: a program can set the modification time back, not that
    return status.st_dev, status.st_ino, status.st_size, status.st_mtime_ns, status.st_ctime_ns


def _block_digest(data: bytes) -> bytes:
    return hashlib.blake2b(data, digest_size=16).digest()


def _brief(row: list[str], width: int = 160) -> str:
    """A header row as an error shows it: at most ``width`` characters of its repr (a row of
    half a million fields, or a binary file's first line, is no line to print)."""
    shown = repr(row)
    return shown if len(shown) <= width else f"{shown[: width - 5]}...]"


def _take(lines: Iterator[str], size: int) -> Iterator[str]:
    taken = 0
    for line in lines:
        yield line
        taken += len(line)
        if taken >= size:
            return

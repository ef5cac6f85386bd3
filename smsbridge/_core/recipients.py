"""Input entries into columns: the three shapes a send's recipients come in."""

from __future__ import annotations

from collections.abc import AsyncIterable, Callable, Iterable, Mapping, Sequence
from itertools import chain
from typing import Any

from .errors import InvalidInputError

__all__ = [
    "Columns",
    "Personal",
    "Phones",
    "Seen",
    "Unpacker",
    "check_text",
    "lone_surrogate",
    "phone_param_pairs",
    "phone_text_pairs",
    "phones_only",
    "recipients",
]

Phones = str | Iterable[str | int] | AsyncIterable[str | int]
"""One number as a ``str``, or any iterable or async iterable of numbers."""

Personal = (
    Mapping[str, str] | Iterable[tuple[str | int, str]] | AsyncIterable[tuple[str | int, str]]
)
"""``(phone, text)`` pairs, or a mapping of phone to text."""

Columns = tuple[Sequence[object], list[str] | None, list[tuple[str, ...]] | None, dict[int, str]]
"""Raw phones, texts (or ``None``), template parameters (or ``None``), and by position the
reasons of malformed entries."""

Unpacker = Callable[[list[Any]], Columns]
"""Splits a chunk of input entries into :data:`Columns`."""


_BINARY = bytes | bytearray | memoryview  # iterable, but as small integers: no recipients


def lone_surrogate(text: str) -> int | None:
    """Where ``text`` holds half of a surrogate pair alone (no gateway can carry it: it
    is no Unicode text), or ``None``."""
    if text.isascii():
        return None
    try:
        text.encode()
    except UnicodeEncodeError as e:
        return e.start
    return None


def check_text(text: object) -> str:
    """A send's one text: a non-empty string of Unicode text, else
    :class:`InvalidInputError` (before any request, where each batch failed to build)."""
    if not isinstance(text, str) or not text.strip():
        raise InvalidInputError("text must be a non-empty string")
    at = lone_surrogate(text)
    if at is not None:
        raise InvalidInputError(
            f"text holds a lone surrogate (U+{ord(text[at]):04X} at {at}): it is no Unicode text"
        )
    if "\x00" in text:
        raise InvalidInputError(f"text holds a NUL character (at {text.index(chr(0))}): {_NUL}")
    return text


_NUL = "a gateway may end the message there"


def _shown(entry: object) -> str:
    return entry if isinstance(entry, str) else repr(entry)[:64]


def phones_only(chunk: list[Any]) -> Columns:
    """Entries are numbers; the text is the send's."""
    return chunk, None, None, {}


def phone_text_pairs(chunk: list[Any]) -> Columns:
    """Entries are ``(phone, text)``; a missing or empty text is malformed."""
    phones: list[object] = []
    texts: list[str] = []
    bad: dict[int, str] = {}
    for position, entry in enumerate(chunk):
        try:
            phone, text = entry
        except (TypeError, ValueError):
            phones.append(_shown(entry))
            texts.append("")
            bad[position] = "not a (phone, text) pair"
            continue
        phones.append(phone)
        if isinstance(text, str) and text.strip():
            texts.append(text)
            if "\x00" in text:
                bad[position] = f"the text holds a NUL character: {_NUL}"
        else:
            texts.append("")
            bad[position] = (
                "empty text" if isinstance(text, str) or text is None else "the text is no str"
            )
    return phones, texts, None, bad


def phone_param_pairs(chunk: list[Any]) -> Columns:
    """Entries are ``(phone, params)`` with up to three string parameters (numbers are
    turned into strings; one string counts as one parameter)."""
    # the common shape, tuples of a phone and a tuple of strings, checked in bulk (tuples
    # of another length do not unpack into two columns of the same length)
    if chunk and set(map(type, chunk)) == {tuple}:
        try:
            phones, values = zip(*chunk, strict=True)
        except ValueError:
            return _phone_param_rows(chunk)
        strings = set(map(type, values)) == {tuple} and set(
            map(type, chain.from_iterable(values))
        ) <= {str}
        # a NUL is looked for in one join of the chunk's values: the rows are read one by one
        # only where there is one
        if strings and "\x00" not in "".join(chain.from_iterable(values)):
            return phones, None, list(values), {}
    return _phone_param_rows(chunk)


def _phone_param_rows(chunk: list[Any]) -> Columns:
    phones: list[object] = []
    params: list[tuple[str, ...]] = []
    bad: dict[int, str] = {}
    for position, entry in enumerate(chunk):
        try:
            phone, values = entry
        except (TypeError, ValueError):
            phones.append(_shown(entry))
            params.append(())
            bad[position] = "not a (phone, parameters) pair"
            continue
        phones.append(phone)
        if type(values) is not tuple:
            values = (values,) if isinstance(values, str | int) else _as_tuple(values)
        clean = values is not None
        if clean:
            for value in values:
                if type(value) is not str:
                    clean = False
                    break
        converted = values if clean else _strings(values)
        if converted is None:
            params.append(())
            bad[position] = "parameters must be strings or numbers"
            continue
        params.append(converted)
        if any("\x00" in value for value in converted):
            bad[position] = f"a template parameter holds a NUL character: {_NUL}"
    return phones, None, params, bad


def _as_tuple(values: object) -> tuple[object, ...] | None:
    if not isinstance(values, Iterable) or isinstance(values, _BINARY | Mapping):
        return None
    return tuple(values)


def _strings(values: tuple[object, ...] | None) -> tuple[str, ...] | None:
    if values is None:
        return None
    out: list[str] = []
    for value in values:
        if isinstance(value, bool) or not isinstance(value, str | int):
            return None
        out.append(str(value))
    return tuple(out)


def recipients(source: object, unpack: Unpacker) -> Iterable[Any] | AsyncIterable[Any]:
    """``source`` as the engine reads it. One number given as a ``str`` is one recipient (not
    its characters); a mapping of pairs gives its items; anything that is not a collection
    of recipients is refused here, before any request."""
    if unpack is phones_only and isinstance(source, str):
        return (source,)
    if unpack is not phones_only and isinstance(source, Mapping):
        return source.items()
    if isinstance(source, str | _BINARY | Mapping) or not isinstance(
        source, Iterable | AsyncIterable
    ):
        wanted = "phone numbers" if unpack is phones_only else "(phone, value) pairs"
        raise InvalidInputError(f"to= takes an iterable of {wanted}, got {type(source).__name__}")
    return source


class Seen:
    """The indices a send has read, to find one given twice: a byte each from the first
    read up to the highest while they are dense (a few bytes per index read at most: a
    megabyte for a million consecutive rows), the others in a set."""

    __slots__ = ("_base", "_bytes", "_count", "_sparse")

    def __init__(self) -> None:
        self._bytes = bytearray()
        self._sparse: set[int] = set()
        self._count = 0
        self._base: int | None = None

    def add(self, index: int) -> bool:
        """Note ``index`` (a whole number); whether it is new."""
        marks, sparse = self._bytes, self._sparse
        if self._base is None:
            self._base = index
        at = index - self._base
        if not 0 <= at < len(marks):
            room = 4 * self._count + 4096  # grown by doubling, within a few bytes an index
            if not 0 <= at < room:
                if index in sparse:
                    return False
                sparse.add(index)
                self._count += 1
                return True
            marks.extend(bytes(min(max(at + 1, 2 * len(marks)), room) - len(marks)))
        if marks[at] or (sparse and index in sparse):
            return False
        marks[at] = 1
        self._count += 1
        return True

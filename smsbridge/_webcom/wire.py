"""Webcom Mobi's (mysmpp) JSON shapes. Credentials travel in every body."""

from __future__ import annotations

from typing import Any, TypeVar

import msgspec

from .._core.gateway import UNREADABLE, without_bom

__all__ = [
    "Credentials",
    "Document",
    "Entry",
    "Envelope",
    "Message",
    "Package",
    "PhoneEntry",
    "StateEntry",
    "StateQuery",
    "decode_document",
    "decode_state",
    "encode",
    "entry",
]


class PhoneEntry(msgspec.Struct, omit_defaults=True):
    """One recipient of a message entry."""

    phone: str
    client_id_sms: int | None = None
    validity_period: str | None = None


class Message(msgspec.Struct):
    """One message entry: its own channel, sender, text and phones."""

    type_send_1: str
    sender: str
    text: str
    phones: list[PhoneEntry]


class Credentials(msgspec.Struct, omit_defaults=True):
    """``token``, or ``login`` and ``password``."""

    login: str | None = None
    password: str | None = None
    token: str | None = None


class Envelope(Credentials, omit_defaults=True):
    """``/json``: several message entries in one request."""

    message: list[Message] = msgspec.field(default_factory=list)


class StateQuery(Credentials, omit_defaults=True):
    """``/json/state.php``: one id (or several, where the gateway takes a list); ``detail``
    is documented as required (1: with the parts and the price)."""

    id_sms: int | str | list[int | str] = 0
    detail: int = 0


class Document(msgspec.Struct):
    """An answer object: a send's ``information`` (one entry per phone), a balance, or a
    document-level ``error``. Entries are read one by one (:func:`entry`), so one unreadable
    entry spoils only itself."""

    information: list[Any] | None = None
    error: Any = None
    money: Any = None
    currency: Any = None


class Entry(msgspec.Struct):
    """One phone's entry of a send's ``information``."""

    state: str | None = None
    id_sms: int | str | None = None
    error: Any = None


class StateEntry(msgspec.Struct):
    """One id's state (``state.php``)."""

    id_sms: int | str | None = None
    state: Any = None
    time_change_state: str | None = None
    num_parts: int | str | None = None
    price: float | str | None = None
    error: Any = None


class Package(msgspec.Struct):
    """One prepaid package of a balance: the documents name its count ``sms`` in the table
    and ``num_sms`` in the example."""

    type_sms: str | None = None
    area: str | None = None
    num_sms: int | str | None = None
    sms: int | str | None = None


_encoder = msgspec.json.Encoder()


def encode(body: msgspec.Struct) -> bytes:
    """JSON bytes of a request body."""
    return _encoder.encode(body)


class Sent(msgspec.Struct):
    """The common answer to a send, read in one pass: every entry readable, no
    document-level error."""

    information: list[Entry]
    error: None = None


_document = msgspec.json.Decoder(Document)
_sent = msgspec.json.Decoder(Sent)
_state = msgspec.json.Decoder(list[StateEntry] | Document)

T = TypeVar("T")


def decode_document(body: bytes) -> Document:
    """An answer object; raises ``msgspec.DecodeError`` (or ``ValidationError``) otherwise."""
    return _document.decode(without_bom(body))


def decode_sent(body: bytes) -> list[Entry] | None:
    """A send's entries where the answer is the common one (see :class:`Sent`), else
    ``None`` (read it as a :class:`Document`)."""
    try:
        return _sent.decode(without_bom(body)).information
    except UNREADABLE:
        return None


def decode_state(body: bytes) -> list[StateEntry] | Document:
    """A ``state.php`` answer: its entries, or an error document."""
    return _state.decode(without_bom(body))


def entries(values: list[Any]) -> list[Entry | None]:
    """A send's ``information`` as entries: all at once when all are readable, else one by
    one (``None`` for one that is not an entry)."""
    try:
        return msgspec.convert(values, list[Entry | None])
    except msgspec.ValidationError:
        return [entry(value, Entry) for value in values]


def entry(value: Any, kind: type[T]) -> T | None:
    """One entry as ``kind``, or ``None`` when it is not one."""
    try:
        return msgspec.convert(value, kind)
    except msgspec.ValidationError:
        return None

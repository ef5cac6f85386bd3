"""Webcom Mobi's (mysmpp) JSON shapes. Credentials travel in every body."""

from __future__ import annotations

from typing import Any

import msgspec

__all__ = [
    "Credentials",
    "Envelope",
    "Message",
    "PhoneEntry",
    "StateQuery",
    "decode_any",
    "encode",
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
    """``/json/state.php``: one id (or several, where the gateway takes a list)."""

    id_sms: int | str | list[int | str] = 0
    detail: int = 0


_encoder = msgspec.json.Encoder()


def encode(body: msgspec.Struct) -> bytes:
    """JSON bytes of a request body."""
    return _encoder.encode(body)


def decode_any(body: bytes) -> Any:
    """Any JSON value; raises ``msgspec.DecodeError`` on garbage."""
    return msgspec.json.decode(body)

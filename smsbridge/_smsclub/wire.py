"""SMS Club's JSON shapes, as the gateway sends and expects them.

Answers are decoded leniently (values typed ``Any`` and coerced afterwards) because the
gateway's own examples disagree on types; anything that is not even a JSON object is a
decode error.
"""

from __future__ import annotations

from typing import Any

import msgspec

from .._core.gateway import without_bom

__all__ = [
    "Answer",
    "BulkSend",
    "PersonalMessage",
    "PersonalSend",
    "Registration",
    "SenderQuery",
    "StatusQuery",
    "Success",
    "decode_answer",
    "encode",
]


class BulkSend(msgspec.Struct, omit_defaults=True):
    """``/sms/send``: one text to up to 100 numbers."""

    phone: list[str]
    src_addr: str
    message: str
    lifetime: int | None = None
    integration_id: int | None = None


class PersonalMessage(msgspec.Struct):
    """One entry of ``data_message``."""

    phone: str
    message: str


class PersonalSend(msgspec.Struct, omit_defaults=True):
    """``/v2/sms/send``: its own text for each of up to 100 numbers."""

    src_addr: str
    data_message: list[PersonalMessage]
    lifetime: int | None = None


class StatusQuery(msgspec.Struct):
    """``/sms/status``: up to 100 message ids."""

    id_sms: list[str]


class SenderQuery(msgspec.Struct):
    """``/originators/stat-originators`` for one sender name."""

    sender_id: str


class Registration(msgspec.Struct, omit_defaults=True):
    """``/originators/registration-originators``."""

    sender_id: str
    company_type: str
    company: str
    site: str
    description: str
    subject: str
    inn: str = ""
    okpo: str = ""


class Success(msgspec.Struct):
    """The ``success_request`` object: ``info`` and/or ``add_info``."""

    info: dict[str, Any] | list[Any] | None = None
    add_info: dict[str, Any] | list[Any] | str | None = None


class Answer(msgspec.Struct):
    """Any answer: a ``success_request``, or an error object (``status``/``name``/``message``)."""

    success_request: Success | None = None
    status: int | str | None = None
    name: Any = None
    message: Any = None


_encoder = msgspec.json.Encoder()
_answer = msgspec.json.Decoder(Answer)


def encode(body: msgspec.Struct) -> bytes:
    """JSON bytes of a request body."""
    return _encoder.encode(body)


def decode_answer(body: bytes) -> Answer:
    """Decode an answer; raises ``msgspec.DecodeError`` (or ``ValidationError``) on garbage."""
    return _answer.decode(without_bom(body))

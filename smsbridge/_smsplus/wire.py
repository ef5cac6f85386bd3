"""SMSPlus's JSON shapes."""

from __future__ import annotations

from typing import Any

import msgspec

from .._core.gateway import without_bom

__all__ = ["Answer", "Send", "TemplateQuery", "decode_answer", "encode"]


class Send(msgspec.Struct, omit_defaults=True):
    """``/api/sms/send``: one approved template, numbers and parallel parameter arrays."""

    sender_name: str
    message_template_id: int
    mobile_numbers: list[str]
    first_parameters: list[str] | None = None
    second_parameters: list[str] | None = None
    third_parameters: list[str] | None = None


class TemplateQuery(msgspec.Struct):
    """``/api/message/templates``: ``"all"`` or a list of ids."""

    data: str | list[int]


class Answer(msgspec.Struct):
    """Every answer: ``{success, code, message}``, plus ``data`` for templates."""

    success: Any = None
    code: Any = None
    message: Any = None
    data: Any = None


_encoder = msgspec.json.Encoder()
_answer = msgspec.json.Decoder(Answer)


def encode(body: msgspec.Struct) -> bytes:
    """JSON bytes of a request body."""
    return _encoder.encode(body)


def decode_answer(body: bytes) -> Answer:
    """Decode an answer; raises ``msgspec.DecodeError`` (or ``ValidationError``) on garbage."""
    return _answer.decode(without_bom(body))

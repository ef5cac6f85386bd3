"""Webcom delivery reports, translated: the gateway POSTs a JSON array of
``{id_sms, time, state}`` to a URL registered with its staff and expects back
``[{"id_sms": ...}, ...]`` for each report the receiver stored. Reports not echoed are sent
again (five tries in all), so echo only what was really stored. Pure: the receivers for web
frameworks are in :mod:`smsbridge._reports`."""

from __future__ import annotations

import datetime
import logging
import re
from collections.abc import Iterable
from typing import Any

import msgspec

from .._core.errors import ResponseDecodeError
from .._core.gateway import UNREADABLE, text_of, without_bom
from .._core.models import DeliveryState
from .adapter import STATES

__all__ = [
    "MAX_REPORT_BYTES",
    "DeliveryReport",
    "ack_id",
    "acknowledge",
    "parse_delivery_reports",
]

log = logging.getLogger("smsbridge.webcom")

MAX_REPORT_BYTES = 1024 * 1024


class DeliveryReport(msgspec.Struct, frozen=True, kw_only=True):
    """One delivery report.

    Attributes:
        message_id: the gateway's ``id_sms``, as a string.
        state: the state in the shared vocabulary.
        raw: the gateway's own word.
        time: when the state changed, as the gateway wrote it (its local time).
        at: ``time`` parsed, naive; ``None`` when unreadable.
    """

    message_id: str
    state: DeliveryState
    raw: str
    time: str = ""
    at: datetime.datetime | None = None


class _Entry(msgspec.Struct):
    id_sms: int | float | str | None = None  # a float of an integer's value: that integer
    time: Any = None  # a string by the documents; any other form is kept as its text
    state: Any = None


def _report(raw: Any) -> DeliveryReport | None:
    try:
        entry = msgspec.convert(raw, _Entry)
    except msgspec.ValidationError:
        return None
    if isinstance(entry.id_sms, float):
        if not entry.id_sms.is_integer():
            return None
        entry.id_sms = int(entry.id_sms)
    if entry.id_sms in (None, ""):
        return None
    state = text_of(entry.state) if entry.state is not None else ""
    when = text_of(entry.time) if entry.time not in (None, "") else ""
    try:
        at: datetime.datetime | None = datetime.datetime.strptime(when, "%Y-%m-%d %H:%M:%S")
    except ValueError:
        at = None
    return DeliveryReport(
        message_id=text_of(entry.id_sms),
        state=STATES.get(state.strip().lower(), DeliveryState.UNKNOWN),
        raw=state,
        time=when,
        at=at,
    )


def parse_delivery_reports(body: bytes) -> list[DeliveryReport]:
    """The reports in a webhook body; entries without an id are skipped (and so not
    acknowledged). Raises :class:`ResponseDecodeError` when the body is not a JSON array."""
    try:
        data = msgspec.json.decode(without_bom(body))
    except UNREADABLE:  # not JSON, or nested past any report's depth: not one
        raise ResponseDecodeError("the delivery report is not JSON", provider="webcom") from None
    if isinstance(data, dict):
        data = [data]
    if not isinstance(data, list):
        raise ResponseDecodeError("the delivery report is not a list", provider="webcom")
    reports = [r for r in map(_report, data) if r is not None]
    if len(reports) != len(data):
        log.warning("webcom: %d unreadable delivery report entries", len(data) - len(reports))
    return reports


_NUMERAL = re.compile(r"[0-9]{1,18}")  # ids given back as numbers; any other as it came


def ack_id(message_id: str) -> int | str:
    """An id as the answer gives it back: a number where it is one (so "07" and "7" are one
    message's), otherwise as it came."""
    return int(message_id) if _NUMERAL.fullmatch(message_id) else message_id


def acknowledge(message_ids: Iterable[str]) -> bytes:
    """The answer that tells the gateway these reports were stored."""
    return msgspec.json.encode([{"id_sms": i} for i in dict.fromkeys(map(ack_id, message_ids))])

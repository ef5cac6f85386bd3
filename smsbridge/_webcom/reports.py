"""Webcom delivery reports: the gateway POSTs a JSON array of ``{id_sms, time, state}`` to a
URL registered with its staff and expects back ``[{"id_sms": ...}, ...]`` for each report the
receiver stored. Reports not echoed are sent again (five tries in all), so echo only what was
really stored. The parser and acknowledgement are pure, usable from any web framework;
:func:`report_handler` is a ready aiohttp handler."""

from __future__ import annotations

import datetime
import logging
from collections.abc import Awaitable, Callable, Iterable, Sequence
from typing import Any

import msgspec
from aiohttp import web

from .._core.errors import ResponseDecodeError
from .._core.models import DeliveryState
from .adapter import STATES

__all__ = ["DeliveryReport", "acknowledge", "parse_delivery_reports", "report_handler"]

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


def _report(entry: Any) -> DeliveryReport | None:
    if not isinstance(entry, dict) or entry.get("id_sms") in (None, ""):
        return None
    raw = str(entry.get("state", ""))
    when = str(entry.get("time", ""))
    try:
        at: datetime.datetime | None = datetime.datetime.strptime(when, "%Y-%m-%d %H:%M:%S")
    except ValueError:
        at = None
    return DeliveryReport(
        message_id=str(entry["id_sms"]),
        state=STATES.get(raw, DeliveryState.UNKNOWN),
        raw=raw,
        time=when,
        at=at,
    )


def parse_delivery_reports(body: bytes) -> list[DeliveryReport]:
    """The reports in a webhook body; entries without an id are skipped (and so not
    acknowledged). Raises :class:`ResponseDecodeError` when the body is not a JSON array."""
    try:
        data = msgspec.json.decode(body)
    except (msgspec.DecodeError, RecursionError):  # nested past any report's depth: not one
        raise ResponseDecodeError("the delivery report is not JSON", provider="webcom") from None
    if isinstance(data, dict):
        data = [data]
    if not isinstance(data, list):
        raise ResponseDecodeError("the delivery report is not a list", provider="webcom")
    reports = [r for r in map(_report, data) if r is not None]
    if len(reports) != len(data):
        log.warning("webcom: %d unreadable delivery report entries", len(data) - len(reports))
    return reports


def acknowledge(message_ids: Iterable[str]) -> bytes:
    """The answer that tells the gateway these reports were stored."""
    return msgspec.json.encode(
        [{"id_sms": int(i) if i.isdigit() else i} for i in dict.fromkeys(message_ids)]
    )


Store = Callable[[Sequence[DeliveryReport]], Awaitable[Iterable[str]]]
"""Stores reports; returns the ids it stored (only those are acknowledged)."""


def report_handler(
    store: Store, *, max_bytes: int = MAX_REPORT_BYTES
) -> Callable[[web.Request], Awaitable[web.StreamResponse]]:
    """An aiohttp handler for the webhook: parse, ``await store(reports)``, echo stored ids.

    A body over ``max_bytes`` is refused with 413, an unreadable one with 400; if ``store``
    raises, nothing is acknowledged (500) and the gateway will send the reports again.
    """

    async def handle(request: web.Request) -> web.StreamResponse:
        if request.content_length is not None and request.content_length > max_bytes:
            return web.Response(status=413, text="too large")
        body = bytearray()
        async for chunk in request.content.iter_any():  # to the end, however it arrives
            body += chunk
            if len(body) > max_bytes:
                return web.Response(status=413, text="too large")
        try:
            reports = parse_delivery_reports(bytes(body))
        except ResponseDecodeError as e:
            return web.Response(status=400, text=e.message)
        stored = await store(reports)
        return web.Response(body=acknowledge(stored), content_type="application/json")

    return handle

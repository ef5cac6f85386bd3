"""Receiving delivery reports, an edge of its own: one receiver that reads a report body
whole (within a size limit), parses it, stores what it has not stored before and answers
with what it stored; :func:`report_handler` serves it through aiohttp, and
:func:`smsbridge.fastapi.webcom_report_router` through FastAPI."""

from __future__ import annotations

import asyncio
from collections import OrderedDict
from collections.abc import AsyncIterable, Awaitable, Callable, Iterable, Sequence

from aiohttp import web

from ._core.errors import ConfigurationError, ResponseDecodeError
from ._webcom.reports import (
    MAX_REPORT_BYTES,
    DeliveryReport,
    acknowledge,
    parse_delivery_reports,
)

__all__ = ["ReportReceiver", "Store", "report_handler"]

Store = Callable[[Sequence[DeliveryReport]], Awaitable[Iterable[str]]]
"""Stores reports; returns the ids it stored (only those are acknowledged)."""


class ReportReceiver:
    """One report POST in, one answer out: ``(status, body)``.

    413 over ``max_bytes``, 400 for a body that is no report, otherwise 200 with the ids
    acknowledged: those ``store`` stored, and repeats of reports already stored (the last
    ``remember`` (id, state) pairs are kept in memory) without storing them again. A report
    the gateway sends again while ``store`` is still storing it (a slow store, and the
    gateway's retry) waits for that: acknowledged once stored, never stored twice. If
    ``store`` raises, nothing is acknowledged and the gateway sends them again. (What is
    remembered is this process's: receivers in several processes each store a report
    once, and a store shared by them should be keyed by the report.)
    """

    def __init__(
        self, store: Store, *, max_bytes: int = MAX_REPORT_BYTES, remember: int = 100_000
    ) -> None:
        if not callable(store):
            raise ConfigurationError("store is an async function of the reports")
        if not _count(max_bytes) or max_bytes < 1:
            raise ConfigurationError(f"max_bytes is a number of bytes from 1, got {max_bytes!r}")
        if not _count(remember) or remember < 0:
            raise ConfigurationError(f"remember is a number of reports from 0, got {remember!r}")
        self._store = store
        self.max_bytes = max_bytes
        self._remember = remember
        self._seen: OrderedDict[tuple[str, str], None] = OrderedDict()
        # reports a request is storing now: (id, report) -> what that request stored
        self._storing: dict[tuple[str, str], asyncio.Future[frozenset[str]]] = {}

    async def receive(
        self, chunks: AsyncIterable[bytes], declared: int | None = None
    ) -> tuple[int, bytes]:
        """Read the body to its end, however it arrives, and answer it."""
        if declared is not None and declared > self.max_bytes:
            return 413, b"too large"
        body = bytearray()
        async for chunk in chunks:
            body += chunk
            if len(body) > self.max_bytes:
                return 413, b"too large"
        try:
            reports = parse_delivery_reports(bytes(body))
        except ResponseDecodeError as e:
            return 400, e.message.encode()
        seen, storing = self._seen, self._storing
        fresh: dict[tuple[str, str], DeliveryReport] = {}  # the first of each in the body
        elsewhere: list[tuple[str, asyncio.Future[frozenset[str]]]] = []
        for report in reports:
            pair = (report.message_id, report.raw)
            if pair in storing:  # the gateway sent it again while the store takes it
                elsewhere.append((report.message_id, storing[pair]))
            elif pair not in seen:
                fresh.setdefault(pair, report)
        kept = set(await self._stored(fresh)) if fresh else set()
        # an id is acknowledged once each of its reports here is stored (by this request,
        # an earlier one, or the one this waited for): the gateway stops sending all of them
        unstored = {message_id for message_id, _ in fresh if message_id not in kept}
        for message_id, storing_it in elsewhere:
            if message_id not in await asyncio.shield(storing_it):
                unstored.add(message_id)
        ids = dict.fromkeys(r.message_id for r in reports if r.message_id not in unstored)
        return 200, acknowledge(ids)

    async def _stored(self, fresh: dict[tuple[str, str], DeliveryReport]) -> frozenset[str]:
        """Store ``fresh`` (each a report no other request is storing), remembering those
        stored; meanwhile, a request bringing any of them again waits for the outcome."""
        seen, storing = self._seen, self._storing
        done: asyncio.Future[frozenset[str]] = asyncio.get_running_loop().create_future()
        for pair in fresh:
            storing[pair] = done
        kept: frozenset[str] = frozenset()
        try:
            kept = frozenset(_ids(await self._store(list(fresh.values()))))
            for pair in fresh:
                if pair[0] in kept:
                    seen[pair] = None
                    seen.move_to_end(pair)
            while len(seen) > self._remember:
                seen.popitem(last=False)
            return kept
        finally:  # also when the store failed or the request was cancelled: none stored
            done.set_result(kept)
            for pair in fresh:
                del storing[pair]


def _count(value: object) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


def _ids(stored: object) -> list[str]:
    """The ids ``store`` says it stored (numbers taken as their digits)."""
    if isinstance(stored, Iterable) and not isinstance(stored, str | bytes):
        ids = [str(i) if _count(i) else i for i in stored]
        if all(isinstance(i, str) for i in ids):
            return ids
    raise ConfigurationError(
        f"store returns the ids it stored (an iterable of str), got {type(stored).__name__}: "
        "nothing was acknowledged, and the gateway sends them again"
    )


def report_handler(
    store: Store, *, max_bytes: int = MAX_REPORT_BYTES, remember: int = 100_000
) -> Callable[[web.Request], Awaitable[web.StreamResponse]]:
    """An aiohttp handler for Webcom's delivery-report webhook (see :class:`ReportReceiver`):
    ``app.router.add_post("/webcom/reports", report_handler(store))``."""
    receiver = ReportReceiver(store, max_bytes=max_bytes, remember=remember)

    async def handle(request: web.Request) -> web.StreamResponse:
        status, body = await receiver.receive(request.content.iter_any(), request.content_length)
        if status != 200:
            return web.Response(status=status, body=body, content_type="text/plain")
        return web.Response(body=body, content_type="application/json")

    return handle

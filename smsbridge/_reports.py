"""Receiving delivery reports, an edge of its own: one receiver that reads a report body
whole (within a size limit), parses it, stores what it has not stored before and answers
with what it stored; :func:`report_handler` serves it through aiohttp, and
:func:`smsbridge.fastapi.webcom_report_router` through FastAPI."""

from __future__ import annotations

import asyncio
import inspect
from collections import OrderedDict
from collections.abc import AsyncIterable, Awaitable, Callable, Iterable, Sequence
from typing import cast

import anyio
import anyio.to_thread
from aiohttp import web

from ._core.errors import ConfigurationError, ResponseDecodeError
from ._webcom.reports import (
    MAX_REPORT_BYTES,
    DeliveryReport,
    ack_id,
    acknowledge,
    parse_delivery_reports,
)

__all__ = ["ReportReceiver", "Store", "report_handler"]

Store = Callable[[Sequence[DeliveryReport]], Awaitable[Iterable[str]] | Iterable[str]]
"""Stores reports; returns the ids it stored (only those are acknowledged). An async
function, or a plain one (a Django ORM write), which is run in a worker thread."""


def _is_async(store: Callable[..., object]) -> bool:
    """Whether calling ``store`` gives an awaitable (an async function, or an object whose
    ``__call__`` is one, a partial of one included)."""
    return inspect.iscoroutinefunction(store) or inspect.iscoroutinefunction(
        getattr(store, "__call__", None)  # noqa: B004 (the method itself)
    )


def _in_thread(
    store: Callable[[Sequence[DeliveryReport]], object],
) -> Callable[[Sequence[DeliveryReport]], Awaitable[Iterable[str]]]:
    """A plain ``store`` as an async one: run in a worker thread, the event loop not held
    while it writes (what it returns awaited, should it be an awaitable after all)."""

    async def stored(reports: Sequence[DeliveryReport]) -> Iterable[str]:
        result = await anyio.to_thread.run_sync(store, reports)
        if inspect.isawaitable(result):
            result = await result
        return result  # type: ignore[return-value]

    return stored


Pair = tuple[str, str]
"""A report as the receiver tells it from others: its id and the gateway's word for its state."""


class ReportReceiver:
    """One report POST in, one answer out: ``(status, body)``.

    413 over ``max_bytes``, 400 for a body that is no report, otherwise 200 with the ids
    acknowledged: those ``store`` stored, and repeats of reports already stored (the last
    ``remember`` (id, state) pairs are kept in memory) without storing them again. A report
    the gateway sends again while ``store`` is still storing it (a slow store, and the
    gateway's retry) waits for that: acknowledged once stored, never stored twice. The
    gateway takes an acknowledged id for every report of it, so an id is acknowledged only
    once each report of it, in this request or being stored by another now, is stored; and
    ``store`` is given one report of an id a call (it answers with ids). If ``store``
    raises, nothing is acknowledged and the gateway sends them again. (What is remembered
    is this process's: receivers in several processes each store a report once, and a
    store shared by them should be keyed by the report.)
    """

    def __init__(
        self, store: Store, *, max_bytes: int = MAX_REPORT_BYTES, remember: int = 100_000
    ) -> None:
        if not callable(store):
            raise ConfigurationError("store is a function of the reports (async, or plain)")
        if not _count(max_bytes) or max_bytes < 1:
            raise ConfigurationError(f"max_bytes is a number of bytes from 1, got {max_bytes!r}")
        if not _count(remember) or remember < 0:
            raise ConfigurationError(f"remember is a number of reports from 0, got {remember!r}")
        self._store: Callable[[Sequence[DeliveryReport]], Awaitable[Iterable[str]]] = (
            cast(Callable[[Sequence[DeliveryReport]], Awaitable[Iterable[str]]], store)
            if _is_async(store)
            else _in_thread(store)
        )
        self.max_bytes = max_bytes
        self._remember = remember
        self._seen: OrderedDict[Pair, None] = OrderedDict()
        # reports a request is storing now, and what it stored once done; and by their ids
        self._storing: dict[Pair, asyncio.Future[frozenset[Pair]]] = {}
        self._flying: dict[int | str, set[Pair]] = {}

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
        fresh: dict[Pair, DeliveryReport] = {}  # the first of each in the body
        awaited: dict[Pair, asyncio.Future[frozenset[Pair]]] = {}  # stored by another request
        for report in reports:
            pair = (report.message_id, report.raw)
            if pair in seen or pair in fresh:
                continue
            if pair in storing:  # the gateway sent it again while the store takes it
                awaited[pair] = storing[pair]
            else:
                fresh[pair] = report
        unstored: set[int | str] = set()  # ids with a report not stored
        if fresh:
            kept = await self._stored(fresh)
            unstored.update(ack_id(pair[0]) for pair in fresh if pair not in kept)
        # an id is acknowledged once every report of it is stored: those of this body, and
        # those of it that other requests are storing now (another state, sent meanwhile),
        # for the gateway takes the id for all of them
        ids = {ack_id(report.message_id) for report in reports}
        looked: set[Pair] = set()
        while True:
            for found in ids:
                for pair in self._flying.get(found, ()):
                    if pair not in fresh:
                        awaited.setdefault(pair, storing[pair])
            pending = [(pair, done) for pair, done in awaited.items() if pair not in looked]
            if not pending:
                break
            for pair, done in pending:
                looked.add(pair)
                if pair not in await asyncio.shield(done):
                    unstored.add(ack_id(pair[0]))
        return 200, acknowledge(
            r.message_id for r in reports if ack_id(r.message_id) not in unstored
        )

    async def _stored(self, fresh: dict[Pair, DeliveryReport]) -> frozenset[Pair]:
        """Store ``fresh`` (reports no other request is storing): the reports stored, also
        remembered. The store is given one report of an id at a time (it answers with ids),
        so a body with several states of one message takes a call for each, up to
        ``_ROUNDS`` (the rest are not stored: the gateway sends them again). Meanwhile, a
        request bringing any of them waits for the outcome."""
        seen, storing, flying = self._seen, self._storing, self._flying
        done: asyncio.Future[frozenset[Pair]] = asyncio.get_running_loop().create_future()
        rounds: list[dict[int | str, Pair]] = []
        for pair in fresh:
            storing[pair] = done
            key = ack_id(pair[0])
            flying.setdefault(key, set()).add(pair)
            for round_ in rounds:
                if key not in round_:
                    round_[key] = pair
                    break
            else:
                if len(rounds) < _ROUNDS:
                    rounds.append({key: pair})
        kept: set[Pair] = set()
        try:
            for round_ in rounds:
                given = [fresh[pair] for pair in round_.values()]
                said = {ack_id(i) for i in _ids(await self._store(given))}
                for key, pair in round_.items():
                    if key in said:
                        kept.add(pair)
                        seen[pair] = None
                        seen.move_to_end(pair)
                while len(seen) > self._remember:
                    seen.popitem(last=False)
            return frozenset(kept)
        finally:  # also when the store failed or the request was cancelled: what was stored
            done.set_result(frozenset(kept))
            for pair in fresh:
                del storing[pair]
                key = ack_id(pair[0])
                flying[key].discard(pair)
                if not flying[key]:
                    del flying[key]


_ROUNDS = 8  # store calls a request makes at most for several states of one message


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

"""Running a campaign against its journal: recover what a dead run left in flight, skip what is
done, send the rest, and write every batch's intent and outcomes as they happen.

The command line runs it on the real clock with the journal's writes in a worker thread; the
reliability simulator runs the very same code on virtual time with the writes inline.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Iterator, Sequence
from typing import Any, TypeVar

import anyio
import anyio.to_thread

from .._core.client import Client
from .._core.gateway import Batch
from .._core.limiter import SlidingWindowLimiter
from .._core.models import Report, Status
from .._core.ranges import IdRanges
from .journal import Journal

__all__ = [
    "CampaignObserver",
    "JournalRanges",
    "Offload",
    "Send",
    "pending",
    "run_campaign",
    "to_thread",
]

T = TypeVar("T")

Offload = Callable[..., Awaitable[Any]]
"""Runs a journal write: ``await offload(function, *args)``."""

Send = Callable[[Iterator[tuple[int, Any]], dict[str, Any]], Awaitable[Report]]
"""Sends ``(index, entry)`` pairs with these send options; returns the report."""


def to_thread() -> Offload:
    """Journal writes in one worker thread, in order (the command line's way)."""
    limiter = anyio.CapacityLimiter(1)

    async def offload(function: Callable[..., Any], *args: Any) -> Any:
        return await anyio.to_thread.run_sync(function, *args, limiter=limiter)

    return offload


def pending(
    rows: Iterator[tuple[int, Any]], journal: Journal | None, chunk: int = 1000
) -> Iterator[tuple[int, Any]]:
    """The input without what the journal already settled, read a chunk at a time."""
    if journal is None:
        yield from rows
        return
    while True:
        block = []
        for row in rows:
            block.append(row)
            if len(block) >= chunk:
                break
        if not block:
            return
        done = journal.done_between(block[0][0], block[-1][0] + 1)
        yield from (row for row in block if row[0] not in done)


class JournalRanges:
    """The account's id ranges, through the journal: a block an earlier run of the campaign
    claimed is the same block now (its recipients keep their ids on a resume)."""

    def __init__(self, inner: IdRanges, journal: Journal, offload: Offload) -> None:
        self._inner = inner
        self._journal = journal
        self._offload = offload

    async def claim(self, key: bytes, count: int, size: int) -> int:
        """See :meth:`~smsbridge._core.ranges.IdRanges.claim`."""
        start: int | None = await self._offload(self._journal.id_range, key)
        if start is None:
            start = await self._inner.claim(key, count, size)
            await self._offload(self._journal.keep_id_range, key, start)
        return start


class CampaignObserver:
    """Journals each batch (when there is a journal) and counts what is done."""

    def __init__(
        self,
        journal: Journal | None,
        done: Callable[[int], object],
        offload: Offload,
        gateway: str | None = None,
    ) -> None:
        self.journal = journal
        self.done = done
        self.gateway = gateway
        self._offload = offload

    async def before(self, batch: Batch) -> None:
        """Write the intent, durably, before the request."""
        if self.journal is not None:
            await self._offload(self.journal.intend, batch.indices, batch.phones)

    async def unsent(self, batch: Batch) -> None:
        """Close the intent: the gateway proved the batch unsent."""
        if self.journal is not None:
            await self._offload(self.journal.unsent, batch.indices)

    async def after(
        self, batch: Batch, statuses: Sequence[Status], details: Sequence[str | None]
    ) -> None:
        """Write the outcomes and count them."""
        if self.journal is not None:
            await self._offload(
                self.journal.record, batch.indices, batch.phones, statuses, details, self.gateway
            )
        self.done(len(batch))


def _nothing(count: int) -> None:
    pass


async def run_campaign(
    send: Send,
    rows: Callable[[], Iterator[tuple[int, Any]]],
    *,
    client: Client[Any],
    journal: Journal | None,
    send_key: bytes,
    stop: anyio.Event,
    offload: Offload,
    done: Callable[[int], object] | None = None,
) -> Report:
    """Send what the journal has not settled; the journal's run is noted around it.

    The caller has bound the journal to its campaign and recovered it
    (:meth:`Journal.recover`); ``send_key`` is the campaign's, so a resumed run is the same
    send for the duplicate window and the gateways' idempotency ids. ``done`` hears how many
    recipients settled, batch by batch (a progress bar). A resumed run also
    carries on where the dead one left its own state: its first request waits until the
    earlier run's last second is over, and what the earlier run sent within the duplicate
    window is held in this run's window (an in-memory window died with that run).
    """
    observer = CampaignObserver(journal, done or _nothing, offload, client.spec.name)
    options: dict[str, Any] = {
        "indexed": True,
        "observer": observer,
        "keep": "none",
        "stop": stop,
        "idempotency_key": send_key,
    }
    if journal is not None:
        await offload(journal.start_run)
        ages: dict[int, float | None] = await offload(journal.maybe_sent)
        now = client.clock.now()
        maybe_sent = options["maybe_sent"] = {
            index: None if age is None else now - age for index, age in ages.items()
        }
        limiter = client.limiter
        if isinstance(limiter, SlidingWindowLimiter):
            await limiter.defer(await offload(journal.quiet_for, limiter.period + limiter.margin))
        window = client.window
        if window is not None and window.ttl:
            # what a dead run sent is held again (its window died with it, or its commit did),
            # and what it left reserved but did not send is freed
            sent, unsent = await offload(journal.settled_since, window.ttl + window.slack)
            # what it had in flight and this run sends again under the same ids may have gone:
            # its key is held before any other recipient of the same message is read
            sent.update(maybe_sent)
            if sent or unsent:
                options["earlier"] = (
                    (row, row[0] in sent) for row in rows() if row[0] in sent or row[0] in unsent
                )
    report: Report | None = None
    ranges = client.ranges
    if journal is not None:
        client.ranges = JournalRanges(ranges, journal, offload)
    try:
        report = await send(pending(rows(), journal), options)
    finally:
        client.ranges = ranges
        if journal is not None:
            requests = report.requests if report is not None else 0
            with anyio.CancelScope(shield=True):
                await offload(journal.finish_run, requests, stop.is_set())
    return report

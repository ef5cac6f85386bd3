"""Running a campaign against its journal: recover what a dead run left in flight, skip what is
done, send the rest, and write every batch's intent and outcomes as they happen.

The command line runs it on the real clock with the journal's writes in a worker thread; the
reliability simulator runs the very same code on virtual time with the writes inline.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Iterator, Mapping, Sequence
from typing import Any, TypeVar

import anyio
import anyio.to_thread

from .._core.client import Client
from .._core.gateway import Batch, Message
from .._core.limiter import SlidingWindowLimiter
from .._core.models import Outcome, Report, Status
from .._core.ranges import IdRanges
from .._router import RoutedReport, RoutedResume, Router
from .journal import Journal

__all__ = [
    "CampaignObserver",
    "JournalRanges",
    "Offload",
    "Send",
    "endpoint_of",
    "pending",
    "recover_in_flight",
    "run_campaign",
    "run_routed_campaign",
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
        endpoint: str | None = None,
        told: Callable[[Sequence[Status], Sequence[str | None]], object] | None = None,
    ) -> None:
        self.journal = journal
        self.done = done
        self.told = told
        self.gateway = gateway
        self.endpoint = endpoint
        self._offload = offload

    async def before(self, batch: Batch) -> None:
        """Write the intent, durably, before the request."""
        if self.journal is not None:
            await self._offload(
                self.journal.intend, batch.indices, batch.phones, self.gateway, self.endpoint
            )

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
        if self.told is not None:
            self.told(statuses, details)


def _nothing(count: int) -> None:
    pass


def endpoint_of(client: Client[Any]) -> str:
    """Where ``client`` sends: its URL and account (a digest, no secret)."""
    return f"{str(client.base_url).rstrip('/')}|{client.account}"


def recover_in_flight(
    journal: Journal, client: Client[Any], *, gateway: str | None = None
) -> tuple[int, int]:
    """:meth:`Journal.recover` what a dead run left in flight on ``client``'s gateway (all of
    it with ``gateway=None``: one gateway's campaign). A repeat is trusted only to the URL and
    account the first copy went to: elsewhere, the endpoint knows nothing of it (no duplicate
    guard, no ids of it), so those recipients are ``uncertain``."""
    return journal.recover(
        retry_safe=client.spec.retry_safe,
        guard=client.repeat_guard,
        gateway=gateway,
        endpoint=endpoint_of(client),
    )


class _Run:
    """One run of a campaign around its send: noted in the journal, and carrying on where
    the runs before it left their own state (see :func:`run_campaign`)."""

    def __init__(
        self,
        journal: Journal | None,
        clients: Sequence[Client[Any]],
        rows: Callable[[], Iterator[tuple[int, Any]]],
        offload: Offload,
    ) -> None:
        self.journal = journal
        self.clients = clients
        self.rows = rows
        self.offload = offload
        # index -> (the gateway it was in flight on, seconds since its request was written)
        self.maybe_sent: dict[int, tuple[str | None, float | None]] = {}
        self._sent: set[int] = set()
        self._unsent: set[int] = set()
        self._ranges: list[IdRanges] = []

    async def start(self) -> None:
        """Note the run; wait out the earlier run's last second; find what it settled
        within the duplicate window; keep the id blocks it claimed."""
        journal, offload = self.journal, self.offload
        if journal is None:
            return
        await offload(journal.start_run)
        self.maybe_sent = await offload(journal.maybe_sent)
        for client in self.clients:
            limiter = client.limiter
            if isinstance(limiter, SlidingWindowLimiter):
                quiet = await offload(journal.quiet_for, limiter.period + limiter.margin)
                await limiter.defer(quiet)
        spans = [
            w.ttl + w.slack for w in (c.window for c in self.clients) if w is not None and w.ttl
        ]
        if spans:
            # what a dead run sent is held again (its window died with it, or its commit did),
            # and what it left reserved but did not send is freed
            self._sent, self._unsent = await offload(journal.settled_since, max(spans))
            # what it had in flight and this run sends again under the same ids may have gone:
            # its key is held before any other recipient of the same message is read
            self._sent.update(self.maybe_sent)
        self._ranges = [client.ranges for client in self.clients]
        for client in self.clients:
            client.ranges = JournalRanges(client.ranges, journal, offload)

    def times(self, client: Client[Any]) -> dict[int, float | None]:
        """The recipients in flight when an earlier run died, with when their request was
        written on ``client``'s clock."""
        now = client.clock.now()
        return {
            index: None if age is None else now - age for index, (_, age) in self.maybe_sent.items()
        }

    def by_gateway(
        self, clients: Mapping[str, Client[Any]], default: Client[Any]
    ) -> dict[str, dict[int, float | None]]:
        """:meth:`times` by the gateway each recipient was in flight on, on that gateway's
        clock; those of a gateway this run does not use are pinned there too (so they end
        ``uncertain``, never sent through another)."""
        pinned: dict[str, dict[int, float | None]] = {}
        for index, (on, age) in self.maybe_sent.items():
            name = on or "an unnamed gateway"
            client = clients.get(name, default)
            pinned.setdefault(name, {})[index] = None if age is None else client.clock.now() - age
        return pinned

    def earlier(self) -> Iterator[tuple[tuple[int, Any], bool]] | None:
        """``(row, sent)`` of what earlier runs settled within the duplicate window."""
        sent, unsent = self._sent, self._unsent
        if not (sent or unsent):
            return None
        return ((row, row[0] in sent) for row in self.rows() if row[0] in sent or row[0] in unsent)

    async def finish(
        self, requests: int, stopped: bool, by_gateway: dict[str, int] | None = None
    ) -> None:
        """Note the end of the run; the clients get their own id blocks back."""
        for client, ranges in zip(self.clients, self._ranges, strict=False):
            client.ranges = ranges
        if self.journal is not None:
            with anyio.CancelScope(shield=True):
                await self.offload(self.journal.finish_run, requests, stopped, by_gateway)


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
    told: Callable[[Sequence[Status], Sequence[str | None]], object] | None = None,
) -> Report:
    """Send what the journal has not settled; the journal's run is noted around it.

    The caller has bound the journal to its campaign and recovered it
    (:meth:`Journal.recover`); ``send_key`` is the campaign's, so a resumed run is the same
    send for the duplicate window and the gateways' idempotency ids. ``done`` hears how many
    recipients settled, batch by batch (a progress bar), and ``told`` their outcomes' statuses
    and details (a tally of reasons). A resumed run also
    carries on where the dead one left its own state: its first request waits until the
    earlier run's last second is over, and what the earlier run sent within the duplicate
    window is held in this run's window (an in-memory window died with that run).
    """
    observer = CampaignObserver(
        journal, done or _nothing, offload, client.spec.name, endpoint_of(client), told
    )
    options: dict[str, Any] = {
        "indexed": True,
        "observer": observer,
        "keep": "none",
        "stop": stop,
        "idempotency_key": send_key,
    }
    run = _Run(journal, [client], rows, offload)
    report: Report | None = None
    try:
        await run.start()
        if run.maybe_sent:
            options["maybe_sent"] = run.times(client)
        earlier = run.earlier()
        # always given: a journaled run knows what its earlier runs may have written
        options["earlier"] = earlier if earlier is not None else ()
        report = await send(pending(rows(), journal), options)
    finally:
        requests = report.requests if report is not None else 0
        await run.finish(requests, stop.is_set(), {client.spec.name: requests})
    return report


async def run_routed_campaign(
    router: Router,
    message: Message,
    rows: Callable[[], Iterator[tuple[int, Any]]],
    *,
    journal: Journal,
    send_key: bytes,
    stop: anyio.Event,
    offload: Offload,
    on_outcome: Callable[[Outcome], object] | None = None,
) -> RoutedReport:
    """:func:`run_campaign` for a routed campaign: each gateway's batches journaled under its
    name, a recipient an earlier run had in flight sent again through that gateway alone (the
    caller recovered the journal gateway by gateway), the router's own outcomes journaled."""
    clients = list(router.clients.values())

    async def settle(outcomes: Sequence[Outcome]) -> None:
        by_gateway: dict[str | None, list[Outcome]] = {}
        for outcome in outcomes:
            by_gateway.setdefault(outcome.gateway, []).append(outcome)
        for gateway, group in by_gateway.items():
            await offload(
                journal.record,
                [o.index for o in group],
                [o.phone for o in group],
                [o.status for o in group],
                [o.reason for o in group],
                gateway,
            )

    run = _Run(journal, clients, rows, offload)
    report: RoutedReport | None = None
    try:
        await run.start()
        earlier = run.earlier()
        resume = RoutedResume(
            idempotency_key=send_key,
            observers={
                client.spec.name: CampaignObserver(
                    journal, _nothing, offload, client.spec.name, endpoint_of(client)
                )
                for client in clients
            },
            maybe_sent=run.by_gateway(router.clients, clients[0]),
            earlier=list(earlier) if earlier is not None else (),
            settle=settle,
        )
        report = await router.send_journaled(
            message, to=pending(rows(), journal), resume=resume, on_outcome=on_outcome, stop=stop
        )
    finally:
        requests = report.by_gateway if report is not None else {}
        await run.finish(
            sum(c.requests for c in requests.values()),
            stop.is_set(),
            {name: c.requests for name, c in requests.items()},
        )
    return report

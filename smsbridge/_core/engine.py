"""The one way through the house, for one send.

::

    recipients (any iterable or async iterable, read lazily, a chunk at a time)
      -> unpack + normalise + check       bad entry: "rejected", no request spent
      -> gateway packer                   request-sized batches, in input order
      -> [workers] duplicate window       reserve; sent already: "suppressed"; held by a
                                          send not yet settled: wait for it
      -> capacity + rate slot             shared by every send and call of the client
      -> ready: still going? journal      the slot starts once the connection is ready
      -> gateway.build_send / transport / gateway.parse_send
      -> retry (429, no connection; ambiguous ones only where safe)
      -> outcomes                         counted, kept as asked, streamed to the caller

Recipients travel as column-wise :class:`Batch` es. Memory holds one input chunk, at most
``concurrency`` batches queued and those in flight; outcomes are counted and passed on, and
kept only when the caller asks.

A send stops for one of two reasons: the *caller* asked (the ``stop`` event, an exception in
the caller's own iterator, callback or observer) or the *account* cannot go on (an account-
wide error: bad credentials, no balance, the shared state store gone). Either way nothing more
is written, what is in flight finishes, and everything read gets an outcome. When the send's
task is cancelled, each recipient still gets one before the cancellation goes on: ``uncertain``
where a request may be on the wire, ``failed`` (its reservation released) elsewhere.

A recipient ``failed`` before this run reserved its key (the send had stopped, or was
cancelled, before its batch's turn) frees whatever reservation its own holder left: an
earlier run of the same send (the same idempotency key) that died after reserving it, and
would otherwise hold up the next send of its message until the reservation expired.
"""

from __future__ import annotations

import asyncio
import inspect
import logging
import os
from collections.abc import (
    AsyncIterable,
    AsyncIterator,
    Awaitable,
    Callable,
    Hashable,
    Iterable,
    Mapping,
    Sequence,
)
from itertools import filterfalse, islice
from typing import Any, Generic, Protocol, TypeVar

import anyio

from .clock import Clock
from .errors import (
    DuplicateMessageError,
    InvalidInputError,
    RejectedError,
    SmsBridgeError,
    StateBackendError,
)
from .events import NOTICE, Telemetry, mask_numbers
from .exchange import Attempts, Halt, NotWritten, Throttle
from .finish import to_the_end
from .gateway import Batch, BatchResult, Gateway, Job
from .lease import Lease
from .models import Counts, Keep, Outcome, Report, Status, keeps
from .phones import shown
from .recipients import Seen, Unpacker, lone_surrogate
from .retry import RetryPolicy
from .transport import HttpResponse, Transport
from .window import Claim, DuplicateWindow

__all__ = ["BatchObserver", "OutcomeCallback", "SendEngine", "accepts", "from_caller", "intake"]

log = logging.getLogger("smsbridge")

J = TypeVar("J", bound=Job)
T = TypeVar("T")

OutcomeCallback = Callable[[Outcome], "Awaitable[None] | None"]
"""Called with every outcome as it is decided; may be a coroutine function."""


class BatchObserver(Protocol):
    """Watches a send batch by batch (the campaign journal is one)."""

    async def before(self, batch: Batch) -> None:
        """Once a batch's request holds its rate slot and its connection, right before it is
        written; if it raises, nothing more is sent."""
        ...

    async def unsent(self, batch: Batch) -> None:
        """The gateway's answer proved that nothing of the batch was processed; it will be
        tried again (and announced again by :meth:`before`) or given an outcome."""
        ...

    async def after(
        self, batch: Batch, statuses: Sequence[Status], details: Sequence[str | None]
    ) -> None:
        """With the final outcomes of recipients, a batch (or part of one) at a time."""
        ...


_COMMIT = frozenset({Status.ACCEPTED, Status.UNCERTAIN})
_ACCEPTED = frozenset({Status.ACCEPTED})
_UNCERTAIN = frozenset({Status.UNCERTAIN})
_RELEASE = frozenset({Status.REJECTED, Status.FAILED})
_EARLIER = "an earlier try may have been processed; the retry said: "
_EARLIER_RUN = (
    "an earlier run of this send (the same idempotency key) reserved it and may have sent "
    "it; not sent again"
)
_SUPPRESSED = "sent the same text to this number within the duplicate window"
_SENT_BY_ANOTHER = (
    "an earlier run of this send may have sent it, and sent the same text to this number "
    "for another entry within the duplicate window: not sent again"
)
_SEVERAL = object()  # a key that went for more than one recipient (see _own_earlier)
_CANCELLED = "not sent: the send was cancelled"
_STOPPING_STORE_WAIT = 3.0  # seconds a stopping send's window updates may take
_HELD_NOTICE = 5.0  # seconds held up by another send's reservations before it is said
_HELD_BY_STORE = (
    " (a send stopped while the shared state was out of reach holds them until its "
    "reservations lapse)"
)
_ON_WIRE = "the send was cancelled while its request was on the wire: may have been sent"
_LAPSED = (
    "not sent: its request waited longer than its duplicate-window reservation lasts, and "
    "another send of the same text to this number holds it now"
)
_HELD_TOO_LONG = (
    "not sent: the same message to this number stayed reserved by another send that did not "
    "settle within the duplicate window"
)


def intake(
    gateway: Gateway[J], job: J, unpack: Unpacker, entries: list[Any], indices: list[int]
) -> tuple[Batch, dict[int, str]]:
    """Entries as the send reads them: their batch (numbers normalised) and, by position, why
    each that is ``rejected`` is (the input's shape, then the number, then the gateway's own
    pre-send checks)."""
    raw_phones, texts, params, problems = unpack(entries)
    phones, invalid = gateway.phones.normalise_many(raw_phones)
    batch = Batch(indices, phones, texts, params)
    if invalid:
        problems = {**invalid, **problems}
    checked = gateway.check(batch, job)
    if checked:
        problems = {**checked, **problems}
    return batch, problems


def _counted(statuses: Sequence[Status]) -> Counts:
    """How many of each status."""
    return Counts(
        accepted=statuses.count(Status.ACCEPTED),
        rejected=statuses.count(Status.REJECTED),
        suppressed=statuses.count(Status.SUPPRESSED),
        failed=statuses.count(Status.FAILED),
        uncertain=statuses.count(Status.UNCERTAIN),
    )


def _reason(error: BaseException) -> str:
    if isinstance(error, SmsBridgeError):
        return error.gateway_message or error.message
    return f"{type(error).__name__}: {error}"


class _Flight:
    """Recipients between their reservation and their outcome, for the cancellation path."""

    __slots__ = ("attempts", "batch", "earlier", "keys", "reserved", "written")

    def __init__(
        self,
        batch: Batch,
        keys: Sequence[Hashable] | None,
        written: float | None = None,
        *,
        earlier: bool = False,
        reserved: float | None = None,
    ) -> None:
        self.batch = batch
        self.keys = keys
        self.attempts: Attempts[BatchResult] | None = None
        self.written = written  # a part of a request that may have gone, first written then
        self.earlier = earlier  # taken over from an earlier run, which may have sent it
        self.reserved = reserved  # when its keys were last reserved (renewed)

    def part(
        self, batch: Batch, keys: Sequence[Hashable] | None, written: float | None = None
    ) -> _Flight:
        """A part of this flight's recipients (``keys`` theirs), reserved when it was."""
        return _Flight(batch, keys, written, reserved=self.reserved)

    def pick(self, rows: Sequence[int], written: float | None = None) -> _Flight:
        """The part of the recipients at ``rows``."""
        keys = self.keys
        return self.part(
            self.batch.pick(rows), None if keys is None else _picked(keys, rows), written
        )

    def split(
        self, bounds: Iterable[tuple[int, int]], written: float | None = None
    ) -> list[_Flight]:
        """Parts by ``(start, end)`` bounds."""
        batch, keys = self.batch, self.keys
        return [
            self.part(batch.slice(a, b), None if keys is None else keys[a:b], written)
            for a, b in bounds
        ]

    def maybe_sent(self) -> bool:
        attempts = self.attempts
        return self.earlier or (attempts is not None and (attempts.on_wire or attempts.ambiguous))


_FRESH_ROUNDS = 4
"""How many times a try's hook renews its keys after waiting (for a fresh lease, for the
observer) before it gives up on a store too slow to keep them fresh up to the write."""
_STORE_TOO_SLOW = (
    "not sent: the duplicate window's store answered too slowly to keep the reservation "
    "fresh up to the write"
)


class _Hooks:
    """What a flight's tries call back: ``ready`` right before each is written, ``unsent``
    when an answer proves nothing of it went, ``parse`` on an answer (one object and its
    bound methods per request, where closures would allocate a cell per variable)."""

    __slots__ = ("announced", "engine", "flight", "occupied")

    def __init__(self, engine: SendEngine[Any], flight: _Flight) -> None:
        self.engine, self.flight = engine, flight
        self.announced = self.occupied = False

    async def ready(self) -> None:
        engine = self.engine
        engine._go_on()
        if not self.occupied:
            self.occupied = True
            engine._occupy()
        observer = engine._observer
        waited, rounds = True, 0
        while waited:  # again after any wait: the renewal must be fresh at the write
            if rounds == _FRESH_ROUNDS:
                raise NotWritten(_STORE_TOO_SLOW)
            waited, rounds = False, rounds + 1
            # the keys first, then the lease: the renewal is a trip to the store, during
            # which the lease may go stale or the send be stopped
            await engine._renew(self.flight)
            holding = engine._holding
            while holding is not None and not holding.fresh():
                # not renewed for a while (the store out of reach): another run may hold the
                # key by now, so nothing is written until it is renewed, or the send stops
                await engine._clock.sleep(0.1)
                waited = True
                engine._go_on()
            engine._go_on()
            if not self.announced and observer is not None:
                # announced once begun: a before() cut short (a time limit) may have told
                # its journal, which then hears unsent() if nothing of the request goes
                self.announced = waited = True
                try:
                    await observer.before(self.flight.batch)
                except BaseException as e:
                    engine._caller_failed(from_caller(e))
                    raise NotWritten(engine._stopping() or "") from None

    async def unsent(self) -> None:
        observer = self.engine._observer
        if self.announced and observer is not None:
            self.announced = False
            try:
                await observer.unsent(self.flight.batch)
            except BaseException as e:
                self.engine._caller_failed(from_caller(e))

    def parse(self, response: HttpResponse) -> BatchResult:
        engine = self.engine
        return engine._gateway.parse_send(self.flight.batch, response, engine._job)


class SendEngine(Generic[J]):
    """Runs one send from input to outcomes. Built by a client; not a public class."""

    def __init__(
        self,
        *,
        gateway: Gateway[J],
        job: J,
        transport: Transport,
        throttle: Throttle,
        window: DuplicateWindow | None,
        retry: RetryPolicy,
        at_least_once: bool,
        clock: Clock,
        concurrency: int,
        holder: str,
        on_outcome: OutcomeCallback | None = None,
        keep: Keep = "all",
        stop: anyio.Event | None = None,
        observer: BatchObserver | None = None,
        maybe_sent: Mapping[int, float | None] | None = None,
        plan: bool = False,
        repeat_guard: float | None = None,
        repeat_stretch: tuple[float, float] | None = None,
        telemetry: Telemetry | None = None,
        exclusive: bool = False,
        held_up: float = 0.0,
        claim: Callable[[Batch], Awaitable[None]] | None = None,
    ) -> None:
        self._gateway = gateway
        # what the recipients of a batch need claimed before it is packed (a gateway's ids)
        self._claim = claim
        # how late a request written may reach the gateway (the read timeout): a key it
        # carries must hold a TTL past that (where the window can be told: a window written
        # before commit took ``extra`` holds it a TTL from the commit)
        self._held_up = held_up
        self._extra = window is not None and accepts(window.commit, "extra", unknown=False)
        self._telemetry = telemetry or Telemetry(gateway.name)
        self._send_id = 0
        self._repeat_guard = repeat_guard
        self._repeat_stretch = repeat_stretch
        self._job = job
        self._transport = transport
        self._throttle = throttle
        self._window = window
        self._retry = retry
        self._retry_ambiguous = gateway.retry_safe or at_least_once
        self._clock = clock
        self._concurrency = concurrency
        self._send_key = holder
        # this run's own name for its reservations (see DuplicateWindow)
        self._holder = f"{holder}/{os.urandom(4).hex()}"
        self._exclusive = exclusive  # a keyed send: one run of it at a time (see lease)
        self._journaled = False  # a resume that knows what its earlier run wrote
        self._holding: Lease | None = None  # this run's hold on its key, once taken
        self._on_outcome = on_outcome
        self._keep = keep
        self._kept: list[Outcome] = []
        self._counts = dict.fromkeys(Status, 0)
        self._materialise = on_outcome is not None or keep != "none"
        self._stop = stop
        self._ended = False  # the send's own end cancels its helpers, not the caller
        self._observer = observer
        # outcomes are recorded under a cancel shield only where recording can suspend
        self._window_suspends = window is not None and not getattr(window, "instant", False)
        self._shield_outcomes = (
            observer is not None or on_outcome is not None or self._window_suspends
        )
        # recipients an earlier run may have sent: the caller's, and reservations this run
        # takes over from an earlier run and sends again
        self._maybe_sent: dict[int, float | None] = dict(maybe_sent or {})
        # in a run that sends again what an earlier run may have sent, until each of those
        # has its outcome: the keys sent, by the earlier run or this one, each with the
        # recipient it went for (see _own_earlier)
        self._went_for: dict[Hashable, object] = {}
        self._unsettled_earlier = set(self._maybe_sent)
        # of those, the ones whose repeat rests on the duplicate guard: when first written
        self._written = {i: t for i, t in self._maybe_sent.items() if t is not None}
        self._plan = plan
        # the two reasons to stop: the caller's (its event, or its code failed) and the account's
        self._caller_error: BaseException | None = None
        self._caller_stopped = False
        self._account_error: SmsBridgeError | None = None
        self._halt = Halt()  # set with either: waits of requests not yet written end at once
        self._window_failed = False  # a window update failed: the optional ones are skipped
        self._flights: dict[_Flight, None] = {}  # in the order they began
        self._held: list[Batch] = []
        self._requests = 0
        self._next_index = 0
        self._indexed = False
        self._seen = Seen()  # the indices an indexed send has read
        # entries read and not yet made into batches, for the cancellation path
        self._reading: list[Any] = []
        # the wait for an async input's next entry, which the caller's stop event ends (or
        # its code failing: a callback or an observer), where there is one
        self._waiting: anyio.CancelScope | None = None
        self._can_stop = stop is not None or on_outcome is not None or observer is not None
        self._packer = gateway.packer(job)
        # workers start one at a time, as those there are all get busy (see _occupy)
        self._spawn: Callable[[], object] = lambda: None
        self._workers = 0
        self._occupied = 0
        self._told_held = False  # the wait for another send's reservations, said once a send

    # ----------------------------------------------------------------- entry point

    async def run(
        self,
        source: Iterable[Any] | AsyncIterable[Any],
        unpack: Unpacker,
        *,
        indexed: bool = False,
        earlier: Iterable[tuple[Any, bool]] | None = None,
    ) -> Report:
        """Send to every recipient of ``source``; return the report when all have outcomes.

        With ``indexed``, entries are ``(index, entry)`` and outcomes carry those indices
        (a resumed campaign skips what is done and keeps each row's number). ``earlier`` are
        ``(entry, sent)`` pairs an earlier run of this send settled: the window is put back as
        that run left it."""
        self._indexed = indexed
        self._journaled = earlier is not None
        started = self._clock.now()
        lease = self._lease()
        telemetry = self._telemetry
        try:
            if lease is not None:
                try:
                    await lease.take()
                    self._holding = lease
                except StateBackendError as e:  # nothing can go: each recipient ends failed
                    self._account_failed(e)
            self._send_id = telemetry.new_send()
            # one batch waits at most (workers never wait on intake); `None` ends a worker.
            # Batches wait in the queue, not in a woken task, so a cancelled send finds each
            # one not yet taken. (anyio's memory streams pass every item through two
            # checkpoints: two more trips round the event loop per request.)
            handoff: asyncio.Queue[Batch | None] = asyncio.Queue(1)
            try:
                # the intake runs as a child task too, so that cancelling the caller's task
                # reaches every part of the send through the task group (and respects shields)
                async with anyio.create_task_group() as outer:
                    if self._stop is not None:
                        outer.start_soon(self._halt_on_stop, self._stop)
                    if self._window_suspends or lease is not None:
                        outer.start_soon(self._halt_on_cancel)
                    if self._holding is not None and self._holding.lapses:
                        outer.start_soon(self._holding.keep, self._account_failed)
                    if earlier is not None and self._window is not None:
                        await self._hold_earlier(earlier, unpack)
                    async with anyio.create_task_group() as tg:
                        self._spawn = lambda: tg.start_soon(self._worker, handoff)
                        self._workers = 1
                        tg.start_soon(self._worker, handoff)
                        tg.start_soon(self._read, source, unpack, handoff)
                    self._ended = True
                    outer.cancel_scope.cancel()
            except anyio.get_cancelled_exc_class():
                with anyio.CancelScope(shield=True):
                    await to_the_end(self._settle_cancelled(handoff, unpack))
                if self._caller_error is not None:  # the cancellation goes on in its place:
                    # said here, where it would be lost (the caller learns it from nothing else)
                    log.warning(
                        "%s: the send was cancelled after an error in the caller's code: %s",
                        self._gateway.name,
                        mask_numbers(repr(self._caller_error)),
                    )
                raise
        finally:
            if lease is not None:
                await to_the_end(self._drop(lease))
        if self._caller_error is not None:
            raise self._caller_error
        counts = self._counts
        report = Report(
            accepted=counts[Status.ACCEPTED],
            rejected=counts[Status.REJECTED],
            suppressed=counts[Status.SUPPRESSED],
            failed=counts[Status.FAILED],
            uncertain=counts[Status.UNCERTAIN],
            requests=self._requests,
            elapsed=self._clock.now() - started,
            outcomes=tuple(self._kept),
            error=self._account_error,
            stopped=self._caller_stopped,
        )
        telemetry.finished(
            self._send_id,
            report.counts(),
            report.elapsed,
            error=report.error,
            stopped=report.stopped,
            dry_run=self._plan,
        )
        return report

    def _lease(self) -> Lease | None:
        """The hold a keyed send's run keeps on its key, where its window can keep one."""
        window = self._window
        if not self._exclusive or self._plan or window is None or not hasattr(window, "hold"):
            return None
        return Lease(window, f"{self._gateway.name}:{self._send_key}", self._clock)

    # ----------------------------------------------------------------- stopping

    def _stopping(self) -> str | None:
        """Why nothing more may be written, or ``None`` while the send goes on."""
        if self._account_error is not None:
            return f"not sent: the send stopped after an account-wide error: {self._account_error}"
        return self._caller_stopping()

    def _go_on(self) -> None:
        """Raise :class:`NotWritten` once nothing more may be written."""
        reason = self._stopping()
        if reason is not None:
            raise NotWritten(reason)

    def _caller_stopping(self) -> str | None:
        """Why the caller wants no more of the input read, or ``None``. (An account-wide
        error reads on: every recipient of the input is then ``failed``.)"""
        if self._caller_error is not None:
            return (
                "not sent: the send stopped after an error in the caller's code: "
                f"{self._caller_error!r}"
            )
        if self._stop is not None and self._stop.is_set():
            self._caller_stopped = True
            return "not sent: the send was stopped"
        return None

    async def _halt_on_stop(self, stop: anyio.Event) -> None:
        await stop.wait()
        self._halt.set(self._stopping() or "")
        self._unwait()

    async def _halt_on_cancel(self) -> None:
        """A send cancelled (a timeout round it, its task cancelled) halts as a stopped one
        does: what waits on a store out of reach then waits a while, not an outage."""
        try:
            await anyio.sleep_forever()
        finally:
            if not self._ended:
                self._halt.set(_CANCELLED)

    def _unwait(self) -> None:
        """The caller stops the send: a wait on its async input ends (see _fill)."""
        if self._waiting is not None:
            self._waiting.cancel()

    def _caller_failed(self, error: BaseException) -> None:
        """The caller's code failed (iterator, callback, observer): stop, raise it at the end."""
        if self._caller_error is None:
            self._caller_error = error
            self._caller_stopped = True
            self._halt.set(self._stopping() or "")
            self._unwait()

    def _store_failed(self, error: BaseException) -> SmsBridgeError:
        """What a duplicate window's error means to the send: its own, or, for one it did
        not mean to raise (a bug in a store of the user's), a :class:`StateBackendError`:
        the recipients still settle, and the send stops as for a store gone. An interrupt
        (KeyboardInterrupt, SystemExit) is also raised at the send's end."""
        error = from_caller(error)
        if isinstance(error, SmsBridgeError):
            return error
        if not isinstance(error, Exception):
            self._caller_failed(error)
        said = f"{type(error).__name__}: {mask_numbers(str(error))}"
        log.error("%s: the duplicate window failed: %s", self._gateway.name, said)
        return StateBackendError(f"the duplicate window failed: {said}")

    def _account_failed(self, error: SmsBridgeError) -> None:
        if self._account_error is None:
            log.error("%s: stopping the send: %s", self._gateway.name, mask_numbers(str(error)))
            self._account_error = error
            if isinstance(error, StateBackendError):
                self._window_failed = True
            self._halt.set(self._stopping() or "")

    # ----------------------------------------------------------------- intake

    async def _hold_earlier(self, earlier: Iterable[tuple[Any, bool]], unpack: Unpacker) -> None:
        """Put the window where an earlier run of this send left it (see ``earlier``)."""
        window = self._window
        assert window is not None
        pairs = iter(earlier)
        while chunk := list(islice(pairs, 1000)):
            try:
                entries, indices = _earlier_rows(chunk, self._indexed)
            except (TypeError, ValueError, IndexError) as e:
                self._caller_failed(
                    InvalidInputError(
                        "earlier= takes ((index, entry), sent) pairs for an indexed send, "
                        f"(entry, sent) for another: {e}"
                    )
                )
                return
            raw_phones, texts, params, _ = unpack(entries)
            phones, invalid = self._gateway.phones.normalise_many(raw_phones)
            batch = Batch(indices, phones, texts, params)
            sent = [i for i, (_, went) in enumerate(chunk) if went and i not in invalid]
            unsent = [i for i, (_, went) in enumerate(chunk) if not went and i not in invalid]
            try:
                keys = window.keys(self._job.sender, self._job.text, batch)
                if self._unsettled_earlier:  # which recipient each key went for: _own_earlier
                    # (an input without indices does not say which of its rows an entry was)
                    rows = _picked(indices, sent) if self._indexed else [_SEVERAL] * len(sent)
                    self._went(_picked(keys, sent), rows)
                # what it sent is held as this run's (as uncertain: a request of it may still
                # be on its way); what it surely did not send is freed, whichever run of the
                # send reserved it (the bare send key names them all)
                if sent:
                    await self._commit(_picked(keys, sent), _picked(indices, sent), self._held_up)
                if unsent:
                    await window.release(
                        _picked(keys, unsent), self._send_key, _picked(indices, unsent)
                    )
            except BaseException as e:
                e = self._store_failed(e)
                log.warning("%s: the window not restored: %s", self._gateway.name, e)
                return

    async def _read(
        self,
        source: Iterable[Any] | AsyncIterable[Any],
        unpack: Unpacker,
        send: asyncio.Queue[Batch | None],
    ) -> None:
        try:
            await self._intake(source, unpack, send)
        except BaseException as e:
            # the caller's iterator or callback failed: finish what was read, re-raise
            self._caller_failed(from_caller(e))
            await self._queue(self._packer.flush(), send)
        await send.put(None)  # the end: each worker that meets it passes it on

    async def _intake(
        self,
        source: Iterable[Any] | AsyncIterable[Any],
        unpack: Unpacker,
        send: asyncio.Queue[Batch | None],
    ) -> None:
        size = self._gateway.batch_size
        if self._caller_stopping() is not None:
            return
        # what is read and not yet fed: if the send is cancelled meanwhile (an async input
        # that waits), its entries are settled from here
        chunk = self._reading
        try:
            if isinstance(source, AsyncIterable):
                waiting = aiter(source)
                while await self._fill(waiting, chunk, size):
                    await self._feed(self._taken(), unpack, send)
                    if self._caller_stopping() is not None:  # checked before reading on
                        break
            else:
                entries = iter(source)
                while True:
                    chunk.extend(islice(entries, size))  # what was read stays, if it fails
                    if not chunk:
                        break
                    short = len(chunk) < size
                    await self._feed(self._taken(), unpack, send)
                    if short or self._caller_stopping() is not None:
                        break
        except BaseException as e:
            # the caller's input failed: what it gave before has its outcome too
            self._caller_failed(from_caller(e))
            if chunk:
                await self._feed(self._taken(), unpack, send)
            raise
        if chunk:
            await self._feed(self._taken(), unpack, send)
        await self._queue(self._packer.flush(), send)

    async def _fill(self, entries: AsyncIterator[Any], chunk: list[Any], size: int) -> bool:
        """Read an async input onto ``chunk`` up to ``size`` entries; whether it may have
        more. A stop is looked for at each entry: one given as they come (a queue) is not
        read on to fill a request after it. And a stop (the caller's event, or its code
        failed) ends a wait for the next entry: it is not held up by an input that gives
        nothing (the entry that was being made is not read, so it has no outcome)."""
        if not self._can_stop:
            async for entry in entries:
                chunk.append(entry)
                if len(chunk) >= size:
                    return True
            return False
        more, append = True, chunk.append
        with anyio.CancelScope() as self._waiting:  # one per chunk: only the waits are in it
            try:
                async for entry in entries:
                    append(entry)
                    if len(chunk) >= size or self._caller_stopping() is not None:
                        break
                else:
                    more = False
            finally:
                self._waiting = None
        return more and bool(chunk)

    def _taken(self) -> list[Any]:
        """The entries read and not yet fed, taken out of :attr:`_reading` to be fed."""
        part = self._reading[:]
        self._reading.clear()
        return part

    async def _queue(self, batches: list[Batch], send: asyncio.Queue[Batch | None]) -> None:
        """Hand batches to the workers; the ones not yet handed are ``_held`` meanwhile."""
        held = self._held = list(batches)
        while held:
            await send.put(held[0])
            del held[0]

    async def _feed(
        self, chunk: list[Any], unpack: Unpacker, send: asyncio.Queue[Batch | None]
    ) -> None:
        """Turn a chunk of input entries into batches for the workers."""
        batch, problems, failure = self._batch_of(chunk, unpack)
        # the caller's entries, read: not held while the batch waits for a worker (a chunk
        # of tuples per account, which the collector would walk again and again)
        del chunk
        if failure is not None:  # a defect in a gateway's reading or checks: nothing of the
            # chunk was sent, and each entry still settles, under the caller's index
            log.error(
                "%s: a chunk of the input could not be read",
                self._gateway.name,
                exc_info=failure,
            )
            reason = f"not sent: the entry could not be read: {type(failure).__name__}"
            await self._settle(batch, Status.FAILED, reason)
            return
        self._held = [batch]  # a cancellation while it is rejected or claimed settles it here
        if problems:
            batch = await self._reject(batch, problems)
            self._held = [batch]
        if self._claim is not None and len(batch) and self._account_error is None:
            try:
                await self._claim(batch)
            except SmsBridgeError as e:
                self._account_failed(e)
            except Exception as e:  # a caller's own id ranges failed
                self._account_failed(StateBackendError(f"the id ranges failed: {_reason(e)}"))
        if self._account_error is not None:
            # rejected above for what they are; the rest are not sent
            await self._settle(batch, Status.FAILED, self._stopping() or "")
            self._held = []
            return
        ready = self._packer.pack(batch) if len(batch) else []
        await self._queue(ready, send)
        if not ready:
            await anyio.lowlevel.checkpoint()

    def _batch_of(
        self, chunk: list[Any], unpack: Unpacker
    ) -> tuple[Batch, dict[int, str], Exception | None]:
        """Read entries: their batch under the caller's indices (or positions), why each that
        cannot go cannot (by position), and the error that kept the chunk from being read,
        if one did (the batch then shows each entry as it is)."""
        base = self._next_index
        self._next_index = base + len(chunk)
        indices = list(range(base, base + len(chunk)))
        misplaced: dict[int, str] = {}
        if self._indexed:  # never raises: an entry it cannot read is rejected alone
            indices, chunk, misplaced = _unpair(chunk, self._seen)
        try:
            batch, problems = intake(self._gateway, self._job, unpack, chunk, indices)
        except Exception as e:
            phones = [shown(x[0] if type(x) is tuple and x else x) for x in chunk]
            return Batch(indices, phones), {}, e
        problems.update(misplaced)
        return batch, problems, None

    async def _reject(self, batch: Batch, problems: dict[int, str]) -> Batch:
        """Settle the recipients of ``batch`` that can never go as ``rejected``, each with
        its reason (``problems``, by position); the others."""
        bad = sorted(problems)
        await self._emit(
            batch.pick(bad), [Status.REJECTED] * len(bad), list(map(problems.__getitem__, bad))
        )
        return batch.pick(list(filterfalse(problems.__contains__, range(len(batch)))))

    # ----------------------------------------------------------------- dispatch

    async def _worker(self, receive: asyncio.Queue[Batch | None]) -> None:
        while (batch := await receive.get()) is not None:
            await self._dispatch(batch)
        receive.put_nowait(None)  # for the next worker: the queue is empty, as it was taken

    def _occupy(self) -> None:
        """A worker is busy past its turn (its request on the wire, or waiting for another
        send to settle): when every worker is, one more starts, up to ``concurrency``.
        Workers beyond those would only wait for a rate slot, each holding a batch."""
        self._occupied += 1
        if self._occupied >= self._workers and self._workers < self._concurrency:
            self._workers += 1
            self._spawn()

    async def _settle(self, batch: Batch, status: Status, reason: str) -> None:
        n = len(batch)
        await self._emit(batch, [status] * n, [reason] * n)

    async def _dispatch(self, batch: Batch) -> None:
        """Reserve the batch's keys, then send what is ours; wait out keys that another send
        holds until it settles."""
        waiting = _Flight(batch, None)
        self._flights[waiting] = None
        window = self._window
        if window is None:
            await self._deliver(waiting)
            return
        delay, deadline = 0.05, self._clock.now() + 2 * (window.ttl + window.slack)
        held_since: float | None = None
        while True:
            reason = self._stopping()
            if reason is not None:
                await self._settle_flight(waiting, Status.FAILED, reason)
                return
            claims: list[Claim] | None = None
            try:
                keys = window.keys(self._job.sender, self._job.text, batch)
                # while the claim is on its way, it may be made: a cancellation releases the
                # keys (a store that can be interrupted there drops only this holder's
                # reservations)
                waiting.keys = keys
                if self._window_suspends:
                    with self._halt.cut():  # a stop does not wait for a store out of reach
                        claims = await window.reserve(keys, self._holder, batch.indices)
                else:
                    claims = await window.reserve(keys, self._holder, batch.indices)
                if claims is not None:
                    claims = _checked(claims, len(keys))
            except BaseException as e:
                e = self._store_failed(e)
                self._account_failed(e)
                await self._settle_flight(
                    waiting, Status.FAILED, f"not sent: duplicate window unavailable: {e}"
                )
                return
            if claims is None:
                await self._settle_flight(waiting, Status.FAILED, self._stopping() or _CANCELLED)
                return
            if self._maybe_sent:
                claims = _own_earlier(claims, keys, batch.indices, self._maybe_sent, self._went_for)
            reserved = self._clock.now()
            if claims.count(Claim.OURS) == len(claims):
                waiting.reserved = reserved
                del claims  # not held across the request: the collector would walk it
                await self._deliver(waiting)
                return
            if Claim.EARLIER in claims and (self._retry_ambiguous or self._journaled):
                # an earlier run's reservation goes again where that is known to be safe: the
                # gateway makes a repeat safe (its own ids), or a journal says what the earlier
                # run may have written (the rest it surely did not: it notes before it writes).
                # Without a journal the earlier run may have sent it: if this try fails, it is
                # uncertain, not failed
                if not self._journaled:
                    self._maybe_sent.update(
                        (i, None)
                        for i, c in zip(batch.indices, claims, strict=True)
                        if c is Claim.EARLIER
                    )
                claims = [Claim.OURS if c is Claim.EARLIER else c for c in claims]
            # register every part before the first await, so a cancellation finds them all
            self._flights.pop(waiting, None)
            ours = [i for i, c in enumerate(claims) if c is Claim.OURS]
            flight = (
                _Flight(batch.pick(ours), _picked(keys, ours), reserved=reserved) if ours else None
            )
            held = [i for i, c in enumerate(claims) if c is Claim.PENDING]
            waiting = _Flight(batch.pick(held), None)
            # taken over from a run that may have sent them: not sent again, and uncertain
            earlier = [i for i, c in enumerate(claims) if c is Claim.EARLIER]
            taken = _Flight(batch.pick(earlier), _picked(keys, earlier), earlier=True)
            for part in (flight, waiting, taken):
                if part is not None and len(part.batch):
                    self._flights[part] = None
            sent = [i for i, c in enumerate(claims) if c is Claim.SENT]
            if sent and self._maybe_sent:  # an earlier run's try of one of them may have gone
                indices = batch.indices
                tried = [i for i in sent if indices[i] in self._maybe_sent]
                if tried:
                    await self._settle(batch.pick(tried), Status.UNCERTAIN, _SENT_BY_ANOTHER)
                    sent = [i for i in sent if indices[i] not in self._maybe_sent]
            if sent:
                await self._settle(batch.pick(sent), Status.SUPPRESSED, _SUPPRESSED)
            if earlier:
                await self._settle_flight(taken, Status.UNCERTAIN, _EARLIER_RUN)
            if flight is not None:
                await self._deliver(flight)
            if not held:
                return
            # another send holds these and has not settled: its outcome decides ours
            batch = waiting.batch
            now = self._clock.now()
            if now > deadline:
                await self._settle_flight(waiting, Status.FAILED, _HELD_TOO_LONG)
                return
            if held_since is None:
                held_since = now
            elif now - held_since >= _HELD_NOTICE and not self._told_held:
                self._told_held = True  # a pause a person watching would take for a hang
                log.warning(
                    "%s: numbers of this send are held by a send of the same message that "
                    "has not settled (another send, or an earlier copy of the number in this "
                    "one); waiting for its outcome, up to %.0f s more%s",
                    self._gateway.name,
                    deadline - now,
                    _HELD_BY_STORE if self._window_suspends else "",
                    extra=NOTICE,
                )
            self._occupy()
            try:
                await self._clock.sleep(delay)
            finally:
                self._occupied -= 1
            delay = min(delay * 2, 1.0)

    async def _deliver_earlier(self, flight: _Flight, times: list[float | None]) -> None:
        """A batch holding recipients an earlier run may have sent: those go as a repeat of
        that run's request (within the duplicate guard from when it was written), the others
        as a first try."""
        again = [i for i, t in enumerate(times) if t is not None]
        fresh = [i for i, t in enumerate(times) if t is None]
        written = min(t for t in times if t is not None)
        self._flights.pop(flight, None)
        parts = [flight.pick(rows, at) for rows, at in ((again, written), (fresh, None)) if rows]
        self._flights.update(dict.fromkeys(parts))
        for part in parts:
            await self._deliver(part)

    async def _deliver(self, flight: _Flight) -> None:
        """Send one batch (halving it where the gateway blames one unnamed recipient) and
        settle it."""
        batch, job = flight.batch, self._job
        if self._written and flight.written is None and not self._plan:
            times = list(map(self._written.get, batch.indices))
            if any(t is not None for t in times):
                await self._deliver_earlier(flight, times)
                return
        try:
            request = self._gateway.build_send(batch, job)
        except SmsBridgeError as e:
            status = Status.REJECTED if isinstance(e, RejectedError) else Status.FAILED
            await self._settle_flight(flight, status, _reason(e))
            if e.account_wide:
                self._account_failed(e)
            return
        except Exception as e:  # an adapter that cannot encode what it was given: nothing
            # was sent, and its recipients still settle
            refused = _not_unicode(batch)
            if refused:  # a lone surrogate in recipients' own texts: they alone, the rest go
                self._flights.pop(flight, None)
                parts = [flight.pick(sorted(refused), flight.written)]
                rest = [i for i in range(len(batch)) if i not in refused]
                if rest:
                    parts.append(flight.pick(rest, flight.written))
                self._flights.update(dict.fromkeys(parts))
                what = "text" if batch.texts is not None else "template parameter"
                reason = f"the {what} holds a lone surrogate: it is no Unicode text"
                await self._settle_flight(parts[0], Status.REJECTED, reason)
                if rest:
                    await self._deliver(parts[1])
                return
            log.exception("%s: a request could not be built", self._gateway.name)
            reason = f"not sent: the request could not be built: {type(e).__name__}"
            await self._settle_flight(flight, Status.FAILED, reason)
            return
        if self._plan:  # a dry run: the request is built and counted, and goes nowhere
            self._requests += 1
            await self._emit(batch, [Status.ACCEPTED] * len(batch), [None] * len(batch), flight)
            return
        attempts: Attempts[BatchResult] = Attempts(
            self._throttle,
            self._transport,
            self._retry,
            self._clock,
            telemetry=self._telemetry,
            recipients=len(batch),
            send=self._send_id,
            ambiguous_ok=self._retry_ambiguous,
            halt=self._halt,
            guard=self._repeat_guard,
            stretch=self._repeat_stretch,
            written=flight.written,
        )
        flight.attempts = attempts
        hooks = _Hooks(self, flight)
        n = len(batch)
        try:
            try:
                result = await attempts.run(
                    request,
                    hooks.parse,
                    ready=hooks.ready,
                    unsent=hooks.unsent,
                    carry_on=self._stopping,
                )
            finally:
                if hooks.occupied:
                    self._occupied -= 1
        except NotWritten as e:
            self._requests += attempts.tries
            if attempts.ambiguous:  # an earlier try may have gone: not "not sent"
                reason = "an earlier try may have been processed; not tried again: "
                await self._settle_flight(
                    flight, Status.UNCERTAIN, reason + e.reason.removeprefix("not sent: ")
                )
            else:
                await self._settle_flight(flight, Status.FAILED, e.reason)
            return
        except SmsBridgeError as e:
            self._requests += attempts.tries
            error = e
        else:
            self._requests += attempts.tries
            if attempts.ambiguous and not attempts.guarded:
                _after_ambiguous(result)
            await self._emit(batch, result.statuses, result.details, flight)
            if result.account_error is not None:
                self._account_failed(result.account_error)
            return
        if attempts.guarded and isinstance(error, DuplicateMessageError):
            if n == 1:  # the gateway refused the repeat: the earlier try sent it
                await self._emit(batch, [Status.ACCEPTED], [None], flight)
                return
            # someone of the batch went; the gateway may have refused others that time: each
            # alone, still within the guard, says which (453: it went; an answer: it had not)
            self._flights.pop(flight, None)
            parts = flight.split([(i, i + 1) for i in range(n)], attempts.first_written)
            self._flights.update(dict.fromkeys(parts))
            async with anyio.create_task_group() as singles:
                for part in parts:
                    singles.start_soon(self._deliver, part)
            return
        if (
            isinstance(error, RejectedError)
            and error.splittable
            and n > 1
            and not attempts.ambiguous
        ):
            # one recipient spoiled the request and nothing was sent: halve to isolate it
            await hooks.unsent()
            self._flights.pop(flight, None)
            half = n // 2
            parts = flight.split(((0, half), (half, n)))
            self._flights.update(dict.fromkeys(parts))
            for part in parts:
                await self._deliver(part)
            return
        reason = _reason(error)
        if attempts.ambiguous:
            status, reason = Status.UNCERTAIN, _EARLIER + reason
        elif isinstance(error, RejectedError):
            status = Status.REJECTED
        elif error.maybe_processed:
            status = Status.UNCERTAIN
        else:
            status = Status.FAILED
        await self._settle_flight(flight, status, reason)
        if error.account_wide:
            self._account_failed(error)

    async def _renew(self, flight: _Flight) -> None:
        """Right before a request is written long after its keys were reserved (a long
        Retry-After, a slow limiter), reserve them again: a reservation holds for the TTL
        and some slack, and one that lapsed while its request waited may have been taken by
        another send of the same text, which would then go twice. Renewed, the keys hold at
        least a TTL past the write even if its commit is lost."""
        window, keys, reserved = self._window, flight.keys, flight.reserved
        if window is None or keys is None or reserved is None:
            return
        now = self._clock.now()
        if now - reserved <= max(window.slack - self._held_up, 0.0) / 2:
            return
        try:
            claims = _checked(
                await window.reserve(keys, self._holder, flight.batch.indices), len(keys)
            )
        except BaseException as e:
            e = self._store_failed(e)
            raise NotWritten(f"not sent: duplicate window unavailable: {e}") from None
        if self._maybe_sent:  # as when they were first reserved: see _dispatch
            claims = _own_earlier(
                claims, keys, flight.batch.indices, self._maybe_sent, self._went_for
            )
        # a key taken over from an earlier run goes only where _dispatch lets it go
        kept = _OURS_OR_TAKEN if self._retry_ambiguous or self._journaled else _OURS_ONLY
        if not kept.issuperset(claims):
            raise NotWritten(_LAPSED)
        flight.reserved = now

    # ----------------------------------------------------------------- outcomes

    async def _settle_flight(self, flight: _Flight, status: Status, reason: str) -> None:
        n = len(flight.batch)
        await self._emit(flight.batch, [status] * n, [reason] * n, flight)

    def _went(self, keys: Sequence[Hashable], indices: Sequence[object]) -> None:
        """Note the recipient each key went (or may have gone) for; a key that went for two
        is no recipient's own (see _own_earlier)."""
        went_for = self._went_for
        for key, index in zip(keys, indices, strict=True):
            if went_for.setdefault(key, index) != index:
                went_for[key] = _SEVERAL

    def _settled_earlier(self, indices: Sequence[int]) -> None:
        """Note that these recipients have their outcomes; once every one an earlier run may
        have sent has, no key is looked up by the recipient it went for any more."""
        unsettled = self._unsettled_earlier
        unsettled.difference_update(indices)
        if not unsettled:
            self._went_for.clear()

    async def _emit(
        self,
        batch: Batch,
        statuses: Sequence[Status],
        details: Sequence[str | None],
        flight: _Flight | None = None,
    ) -> None:
        """Record outcomes: window, observer, counts, kept outcomes, the caller's callback.
        Once begun, a cancellation waits for it to finish: under a shield where recording can
        suspend, and where it cannot, nothing can interrupt it."""
        if self._shield_outcomes:
            with anyio.CancelScope(shield=True):
                await self._record(batch, statuses, details, flight)
        else:  # nothing in it suspends, so nothing can interrupt it
            await self._record(batch, statuses, details, flight)

    async def _record(
        self,
        batch: Batch,
        statuses: Sequence[Status],
        details: Sequence[str | None],
        flight: _Flight | None,
    ) -> None:
        if self._maybe_sent:
            statuses, details = _earlier_run(batch.indices, statuses, details, self._maybe_sent)
        if flight is not None:
            self._flights.pop(flight, None)
        if self._unsettled_earlier:
            self._settled_earlier(batch.indices)
        # the journal first: what it records is final, whatever happens to the window
        if self._observer is not None and len(batch):
            try:
                await self._observer.after(batch, statuses, details)
            except BaseException as e:
                self._caller_failed(from_caller(e))
        if flight is not None and flight.keys is not None:
            # cancelled while a try was on its way: it may reach the gateway later still
            attempts = flight.attempts
            late = self._held_up if attempts is not None and attempts.on_wire else 0.0
            await self._settle_window(flight.keys, batch.indices, statuses, late)
        elif self._window is not None and Status.FAILED in statuses:
            await self._release_unreserved(batch, statuses)
        counts, n = self._counts, len(statuses)
        first = statuses[0] if n else None
        if first is not None and statuses.count(first) == n:
            counts[first] += n
        else:
            for status in statuses:
                counts[status] += 1
        if self._telemetry.hook is not None and n:
            self._telemetry.outcomes(self._send_id, _counted(statuses))
        if not self._materialise:
            return
        keep, kept, callback = self._keep, self._kept, self._on_outcome
        gateway = self._gateway.name
        for index, phone, status, detail in zip(
            batch.indices, batch.phones, statuses, details, strict=True
        ):
            if status is Status.ACCEPTED:
                outcome = Outcome(
                    index=index, phone=phone, status=status, message_id=detail, gateway=gateway
                )
            else:
                outcome = Outcome(
                    index=index, phone=phone, status=status, reason=detail, gateway=gateway
                )
            if keeps(keep, status):
                kept.append(outcome)
            if callback is not None:
                # every outcome reaches the callback, also after it failed once (the
                # first failure stops the send and is raised at its end)
                try:
                    pending = callback(outcome)
                    if pending is not None and inspect.isawaitable(pending):
                        await pending
                except BaseException as e:
                    self._caller_failed(from_caller(e))

    async def _settle_window(
        self,
        keys: Sequence[Hashable],
        indices: Sequence[int],
        statuses: Sequence[Status],
        late: float = 0.0,
    ) -> None:
        """Commit what went or may have (the uncertain ``late`` seconds longer, where the
        gateway may yet act on them), release what surely did not."""
        window = self._window
        assert window is not None
        if self._unsettled_earlier:  # which recipient each key went for (see _own_earlier)
            went = [i for i, status in enumerate(statuses) if status in _COMMIT]
            self._went(_picked(keys, went), _picked(indices, went))
        # without ``late`` both kinds of commit are one
        sure_kind = _ACCEPTED if late else _COMMIT
        if statuses.count(statuses[0]) == len(statuses):
            uniform = statuses[0]
            sure = (keys, indices) if uniform in sure_kind else None
            unsure = (keys, indices) if late and uniform is Status.UNCERTAIN else None
            release = (keys, indices) if uniform in _RELEASE else None
        else:
            sure = _where(keys, indices, statuses, sure_kind)
            unsure = _where(keys, indices, statuses, _UNCERTAIN) if late else None
            release = _where(keys, indices, statuses, _RELEASE)
        if not self._window_suspends:
            error = await self._update_window(sure, unsure, release, late)
        else:
            # a stopping send waits for its store a while, not for an outage (also where
            # the stop comes during the wait): what it leaves undone stays held until it
            # lapses (TTL and slack), safe if less available
            error = None
            cut = self._halt.cut(_STOPPING_STORE_WAIT)
            with cut:
                error = await self._update_window(sure, unsure, release, late)
            if cut.cut_short:
                error = StateBackendError("the store took too long while the send stopped")
        if error is not None:
            # reservations stay held until they expire: safe, if less available
            self._window_failed = True
            log.warning("%s: duplicate window not updated: %s", self._gateway.name, error)

    async def _drop(self, lease: Lease) -> None:
        """Let the send's key go; a stopped send waits for its store a while, not for an
        outage (a lease not dropped lapses by itself, and the next run waits it out)."""
        await lease.drop(_STOPPING_STORE_WAIT if self._halt.reason is not None else None)

    async def _update_window(
        self,
        sure: tuple[Sequence[Hashable], Sequence[int]] | None,
        unsure: tuple[Sequence[Hashable], Sequence[int]] | None,
        release: tuple[Sequence[Hashable], Sequence[int]] | None,
        late: float,
    ) -> SmsBridgeError | None:
        """Commit ``sure`` and ``unsure``, release ``release``: the first error, if any."""
        window = self._window
        assert window is not None
        error: SmsBridgeError | None = None
        cancelled: BaseException | None = None
        try:
            if sure is not None and sure[0]:
                await window.commit(sure[0], self._holder, sure[1])
            if unsure is not None and unsure[0]:
                await self._commit(unsure[0], unsure[1], late)
        except BaseException as e:
            try:
                error = self._store_failed(e)
            except BaseException as c:  # cancelled (or cut short): raised once released
                cancelled = c
        try:  # tried also after a failed or cancelled commit: a store may keep it to do later
            if release is not None and release[0]:
                await window.release(release[0], self._holder, release[1])
        except BaseException as e:
            if cancelled is None:
                error = error or self._store_failed(e)
        if cancelled is not None:
            raise cancelled
        return error

    async def _commit(self, keys: Sequence[Hashable], indices: Sequence[int], extra: float) -> None:
        window = self._window
        assert window is not None
        if extra and self._extra:
            await window.commit(keys, self._holder, indices, extra)
        else:
            await window.commit(keys, self._holder, indices)

    async def _release_unreserved(self, batch: Batch, statuses: Sequence[Status]) -> None:
        """In a journaled resume, free the keys of the ``failed`` recipients of ``batch``,
        which this run never reserved, where a reservation of this send (any run's, for their
        index) holds them: an earlier run may have left it, and the journal says it wrote
        none of them but those in ``maybe_sent``. Anyone else's stays; and without a journal
        nothing is freed (what the earlier run did is unknown: its reservation expires, or
        the next run of the send takes it over as uncertain). Skipped once the window has
        failed: the reservations then expire by themselves."""
        window = self._window
        assert window is not None
        if self._window_failed or not self._journaled:
            return
        unwritten = [
            n
            for n, (s, i) in enumerate(zip(statuses, batch.indices, strict=True))
            if s is Status.FAILED and i not in self._maybe_sent
        ]
        if not unwritten:
            return
        if len(unwritten) != len(batch):
            batch = batch.pick(unwritten)
        try:
            keys = window.keys(self._job.sender, self._job.text, batch)
            await window.release(keys, self._send_key, batch.indices)
        except BaseException as e:
            e = self._store_failed(e)
            self._window_failed = True
            log.warning("%s: duplicate window not updated: %s", self._gateway.name, e)

    async def _settle_cancelled(
        self, leftovers: asyncio.Queue[Batch | None], unpack: Unpacker
    ) -> None:
        """The send's task was cancelled: one outcome for every recipient read so far. The
        batches in flight settle together: a store out of reach keeps them its grace once,
        not once a batch."""
        flights = list(self._flights)
        if flights:
            async with anyio.create_task_group() as settling:
                for flight in flights:
                    status, reason = (
                        (Status.UNCERTAIN, _ON_WIRE)
                        if flight.maybe_sent()
                        else (Status.FAILED, _CANCELLED)
                    )
                    settling.start_soon(self._settle_flight, flight, status, reason)
        unsettled = list(self._held)
        self._held = []
        if self._reading:  # read while the input made the send wait, and not yet fed
            unread, problems, _ = self._batch_of(self._taken(), unpack)
            if problems:  # what could never go keeps its own verdict
                unread = await self._reject(unread, problems)
            unsettled.append(unread)
        while not leftovers.empty():
            if (batch := leftovers.get_nowait()) is not None:
                unsettled.append(batch)
        unsettled.extend(self._packer.flush())
        for batch in unsettled:
            if len(batch):
                await self._settle(batch, Status.FAILED, _CANCELLED)


def accepts(function: Callable[..., Any], name: str, *, unknown: bool) -> bool:
    """Whether ``function`` takes the keyword ``name`` (a caller's window or state factory
    may be written to an older protocol); ``unknown`` where its signature cannot be read."""
    try:
        parameters = inspect.signature(function).parameters
    except (TypeError, ValueError):
        return unknown
    return name in parameters or any(
        p.kind is inspect.Parameter.VAR_KEYWORD for p in parameters.values()
    )


def _unpair(chunk: list[Any], seen: Seen) -> tuple[list[int], list[Any], dict[int, str]]:
    """An indexed chunk's indices and entries, and why an entry cannot go, by position: it is
    no ``(index, entry)`` pair, its index is not a whole number of 0 or more (either shown
    as index -1 when there is no number to show), or its index came earlier in the send
    (``seen``): a gateway may derive a message's id from it, and two recipients of one id
    would be answered as one. Its neighbours go on."""
    indices: list[int] = []
    entries: list[Any] = []
    bad: dict[int, str] = {}
    for position, pair in enumerate(chunk):
        try:
            if not isinstance(pair, tuple | list) or len(pair) != 2:
                raise ValueError
            index, entry = pair
        except Exception:  # no pair, or one that cannot be read as one (its len() lies...)
            bad[position] = "the entry is not an (index, entry) pair"
            indices.append(-1)
            entries.append(shown(pair))  # read as a number, shown; this reason wins
            continue
        if type(index) is not int or index < 0:
            bad[position] = f"its index {_repr(index)} is not a whole number of 0 or more"
            index = index if type(index) is int else -1
        elif not seen.add(index):
            bad[position] = f"its index {_repr(index)} repeats an earlier entry's in this send"
        indices.append(index)
        entries.append(entry)
    return indices, entries, bad


def _repr(value: object) -> str:
    """``repr(value)``, or what :func:`shown` makes of it where that fails."""
    try:
        return repr(value)
    except Exception:
        return shown(value)


def _not_unicode(batch: Batch) -> set[int]:
    """The rows whose own text or template parameters hold a lone surrogate (which no
    request can carry); checked only once a request failed to build."""
    if batch.texts is not None:
        values: Iterable[str] = batch.texts
    elif batch.parameters is not None:
        values = map("".join, batch.parameters)
    else:
        return set()
    return {row for row, value in enumerate(values) if lone_surrogate(value) is not None}


def _checked(claims: object, count: int) -> list[Claim]:
    """A window's claims, one :class:`Claim` per key (a store of the user's may answer
    numbers, or the wrong number of them: trusted, recipients fell through every part)."""
    if not isinstance(claims, list) or len(claims) != count:
        raise StateBackendError(
            f"the duplicate window answered {type(claims).__name__} "
            f"{'of ' + str(len(claims)) + ' ' if isinstance(claims, list) else ''}"
            f"for {count} keys: a list of one Claim each"
        )
    if claims.count(Claim.OURS) != count and not all(type(c) is Claim for c in claims):
        claims = [Claim(c) for c in claims]  # numbers as the claims they are, or a ValueError
    return claims


def from_caller(error: BaseException) -> BaseException:
    """What the caller's code (its input, callback, observer, store) raised, to stop the
    send with and raise at its end: anything but the cancellation of the send's own task,
    which goes on as it came. (A KeyboardInterrupt, a SystemExit, a BaseException of the
    caller's own, or a CancelledError of something it awaited that someone else cancelled,
    left to go through the send's task groups, would end the worker it came in, and leave
    recipients already sent without an outcome.)"""
    if isinstance(error, asyncio.CancelledError):
        task = asyncio.current_task()
        if task is None or task.cancelling():  # this task is being cancelled: the send's own
            raise error
    return error


def _picked(items: Sequence[T], rows: Iterable[int]) -> list[T]:
    """The items at ``rows`` (a function of its own: a comprehension in a coroutine would
    give each of its calls a cell for the list it reads)."""
    return [items[i] for i in rows]


def _where(
    keys: Sequence[Hashable],
    indices: Sequence[int],
    statuses: Sequence[Status],
    wanted: frozenset[Status],
) -> tuple[list[Hashable], list[int]]:
    picked = [i for i, s in enumerate(statuses) if s in wanted]
    return _picked(keys, picked), _picked(indices, picked)


def _earlier_run(
    indices: Sequence[int],
    statuses: Sequence[Status],
    details: Sequence[str | None],
    maybe_sent: Mapping[int, float | None],
) -> tuple[Sequence[Status], Sequence[str | None]]:
    """Recipients an earlier run may have sent are uncertain, whatever this run's try said."""
    if not any(i in maybe_sent for i in indices):
        return statuses, details
    out_statuses, out_details = list(statuses), list(details)
    for n, index in enumerate(indices):
        if index in maybe_sent and statuses[n] in _RELEASE:
            out_statuses[n] = Status.UNCERTAIN
            out_details[n] = f"an earlier run may have sent it; this run's try said: {details[n]}"
    return out_statuses, out_details


_TAKEN = (Claim.SENT, Claim.EARLIER)
_OURS_ONLY = frozenset({Claim.OURS})
_OURS_OR_TAKEN = frozenset({Claim.OURS, Claim.EARLIER})


def _earlier_rows(chunk: list[Any], indexed: bool) -> tuple[list[Any], list[int]]:
    """The entries and indices of ``earlier`` pairs (a ``TypeError`` or ``ValueError`` where
    they are not such pairs)."""
    entries: list[Any] = []
    for pair in chunk:
        entry, went = pair
        if type(went) is not bool:
            raise TypeError(f"whether it was sent is {went!r}, not True or False")
        entries.append(entry)
    if not indexed:
        return entries, list(range(len(entries)))
    rows = [(index, entry) for index, entry in entries]
    if not all(type(index) is int and index >= 0 for index, _ in rows):
        raise TypeError("an index is not a whole number from 0")
    return [entry for _, entry in rows], [index for index, _ in rows]


def _own_earlier(
    claims: list[Claim],
    keys: Sequence[Hashable],
    indices: Sequence[int],
    maybe_sent: Mapping[int, float | None],
    went_for: Mapping[Hashable, object],
) -> list[Claim]:
    """A recipient an earlier run may have sent is sent again under the same id, whatever the
    window says: the key it finds held is its own earlier try's (see ``earlier``). Unless
    that key was sent (or may have been) for another recipient, by the earlier run or by
    this one (the same number twice in the input): that one's text may have reached the
    number, and this one's is not sent again."""
    return [
        Claim.OURS
        if claim in _TAKEN and index in maybe_sent and went_for.get(key, index) == index
        else claim
        for claim, key, index in zip(claims, keys, indices, strict=True)
    ]


def _after_ambiguous(result: BatchResult) -> None:
    """An earlier try may have been processed: a refusal now may be of our own repeat."""
    for i, status in enumerate(result.statuses):
        if status in _RELEASE:
            result.statuses[i] = Status.UNCERTAIN
            result.details[i] = f"{_EARLIER}{result.details[i]}"

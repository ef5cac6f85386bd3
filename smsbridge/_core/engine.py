"""The one way through the house, for one send.

::

    recipients (any iterable or async iterable, read lazily, a chunk at a time)
      -> unpack + normalise + check       bad entry: "rejected", no request spent
      -> gateway packer                   request-sized batches, in input order
      -> [workers] duplicate window       reserve; a key already held: "suppressed"
      -> capacity + rate limiter          shared by every send and call of the client
      -> gateway.build_send / transport / gateway.parse_send
      -> retry (429, no connection; ambiguous ones only where safe)
      -> outcomes                         counted, kept as asked, streamed to the caller

Recipients travel as column-wise :class:`Batch` es. Memory holds one input chunk, at most
``concurrency`` batches queued and those in flight; outcomes are counted and passed on, and
kept only when the caller asks.
"""

from __future__ import annotations

import inspect
import logging
import math
from collections.abc import AsyncIterable, Awaitable, Callable, Hashable, Iterable, Sequence
from itertools import islice
from typing import Any, Generic, Protocol, TypeVar

import anyio
from anyio.abc import ObjectReceiveStream, ObjectSendStream

from .clock import Clock
from .errors import (
    RateLimitedError,
    RejectedError,
    ResponseDecodeError,
    SmsBridgeError,
)
from .gateway import Batch, BatchResult, Gateway, Job
from .limiter import RateLimiter
from .models import Keep, Outcome, Report, Status
from .recipients import Unpack
from .retry import RetryPolicy
from .transport import HttpRequest, HttpResponse, Transport
from .window import DuplicateWindow

__all__ = ["BatchObserver", "OutcomeCallback", "SendEngine", "Throttle", "exchange"]

log = logging.getLogger("smsbridge")

J = TypeVar("J", bound=Job)

OutcomeCallback = Callable[[Outcome], "Awaitable[None] | None"]
"""Called with every outcome as it is decided; may be a coroutine function."""


class BatchObserver(Protocol):
    """Watches a send batch by batch (the campaign journal is one)."""

    async def before(self, batch: Batch) -> None:
        """Once a batch's first request holds its rate slot, right before it is written;
        if it raises, nothing more is sent."""
        ...

    async def after(
        self, batch: Batch, statuses: Sequence[Status], details: Sequence[str | None]
    ) -> None:
        """With the final outcomes of recipients, a batch (or part of one) at a time."""
        ...


_COMMIT = frozenset({Status.ACCEPTED, Status.UNCERTAIN})
_RELEASE = frozenset({Status.REJECTED, Status.FAILED})
_EARLIER = "an earlier try may have been processed; the retry said: "
_SUPPRESSED = "sent the same text to this number within the duplicate window"


class Throttle:
    """A client's shared gates: at most ``capacity`` requests in flight, started at the
    limiter's pace. Every send and every call of the client passes through the same one."""

    def __init__(self, limiter: RateLimiter, concurrency: int) -> None:
        self.limiter = limiter
        self.capacity = anyio.Semaphore(concurrency, fast_acquire=True)


async def exchange(throttle: Throttle, transport: Transport, request: HttpRequest) -> HttpResponse:
    """One HTTP exchange inside the client's concurrency and rate limits."""
    async with throttle.capacity:
        await throttle.limiter.acquire()
        return await transport.send(request)


def _reason(error: BaseException) -> str:
    if isinstance(error, SmsBridgeError):
        return error.gateway_message or error.message
    return f"{type(error).__name__}: {error}"


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
        on_outcome: OutcomeCallback | None = None,
        keep: Keep = "all",
        stop: anyio.Event | None = None,
        observer: BatchObserver | None = None,
    ) -> None:
        self._gateway = gateway
        self._job = job
        self._transport = transport
        self._throttle = throttle
        self._window = window
        self._retry = retry
        self._retry_ambiguous = gateway.retry_safe or at_least_once
        self._clock = clock
        self._concurrency = concurrency
        self._on_outcome = on_outcome
        self._keep = keep
        self._kept: list[Outcome] = []
        self._counts = dict.fromkeys(Status, 0)
        self._materialise = on_outcome is not None or keep != "none"
        self._stop_requested = stop
        self._observer = observer
        self._error: SmsBridgeError | None = None
        self._fatal: Exception | None = None
        self._stopped = False
        self._requests = 0
        self._next_index = 0
        self._indexed = False
        self._packer = gateway.packer(job)

    # ----------------------------------------------------------------- entry point

    async def run(
        self,
        source: Iterable[Any] | AsyncIterable[Any],
        unpack: Unpack,
        *,
        indexed: bool = False,
    ) -> Report:
        """Send to every recipient of ``source``; return the report when all have outcomes.

        With ``indexed``, entries are ``(index, entry)`` and outcomes carry those indices
        (a resumed campaign skips what is done and keeps each row's number)."""
        self._indexed = indexed
        started = self._clock.now()
        send, receive = anyio.create_memory_object_stream[Batch](self._concurrency)
        async with anyio.create_task_group() as tg:
            for _ in range(self._concurrency):
                tg.start_soon(self._worker, receive.clone())
            receive.close()
            async with send:
                try:
                    await self._intake(source, unpack, send)
                except Exception as e:
                    # the caller's iterator or callback failed: finish what was read, re-raise
                    self._fail(e)
                    for batch in self._packer.flush():
                        await send.send(batch)
        if self._fatal is not None:
            raise self._fatal
        counts = self._counts
        return Report(
            accepted=counts[Status.ACCEPTED],
            rejected=counts[Status.REJECTED],
            suppressed=counts[Status.SUPPRESSED],
            failed=counts[Status.FAILED],
            uncertain=counts[Status.UNCERTAIN],
            requests=self._requests,
            elapsed=self._clock.now() - started,
            outcomes=tuple(self._kept),
            error=self._error,
            stopped=self._stopped,
        )

    # ----------------------------------------------------------------- intake

    async def _intake(
        self,
        source: Iterable[Any] | AsyncIterable[Any],
        unpack: Unpack,
        send: ObjectSendStream[Batch],
    ) -> None:
        size = self._gateway.batch_size
        if self._halted():
            return
        if isinstance(source, AsyncIterable):
            chunk: list[Any] = []
            async for entry in source:
                chunk.append(entry)
                if len(chunk) >= size:
                    await self._feed(chunk, unpack, send)
                    chunk = []
                    if self._halted():  # checked before reading on: nothing read is dropped
                        break
            if chunk:
                await self._feed(chunk, unpack, send)
        else:
            entries = iter(source)
            while part := list(islice(entries, size)):
                await self._feed(part, unpack, send)
                if len(part) < size or self._halted():
                    break
        for batch in self._packer.flush():
            await send.send(batch)

    def _halted(self) -> bool:
        """Stop reading input: the caller asked, or the caller's code failed."""
        stop = self._stop_requested
        if self._fatal is not None or (stop is not None and stop.is_set()):
            self._stopped = True
        return self._stopped

    async def _feed(self, chunk: list[Any], unpack: Unpack, send: ObjectSendStream[Batch]) -> None:
        """Turn a chunk of input entries into batches for the workers."""
        base = self._next_index
        self._next_index = base + len(chunk)
        if self._indexed:
            indices = [entry[0] for entry in chunk]
            chunk = [entry[1] for entry in chunk]
        else:
            indices = list(range(base, base + len(chunk)))
        raw_phones, texts, params, problems = unpack(chunk)
        phones, invalid = self._gateway.phones.normalise_many(raw_phones)
        batch = Batch(indices, phones, texts, params)
        if self._error is not None:
            await self._settle_all(batch, Status.FAILED, self._not_sent_reason())
            return
        if invalid:
            problems = {**invalid, **problems}
        checked = self._gateway.check(batch, self._job)
        if checked:
            problems = {**checked, **problems}
        if problems:
            bad = sorted(problems)
            await self._emit(
                batch.pick(bad), [Status.REJECTED] * len(bad), [problems[i] for i in bad], None
            )
            batch = batch.pick([i for i in range(len(batch)) if i not in problems])
        ready = self._packer.pack(batch) if len(batch) else []
        for full in ready:
            await send.send(full)
        if not ready:
            await anyio.lowlevel.checkpoint()

    # ----------------------------------------------------------------- dispatch

    def _not_sent_reason(self) -> str:
        if self._error is not None:
            return f"not sent: the send stopped after an account-wide error: {self._error}"
        if self._fatal is not None:
            return (
                f"not sent: the send stopped after an error in the caller's code: {self._fatal!r}"
            )
        return "not sent: the send was stopped"

    def _fail(self, error: Exception) -> None:
        """The caller's code failed (iterator, callback, hook): stop, raise it at the end."""
        if self._fatal is None:
            self._fatal = error

    def _abort(self, error: SmsBridgeError) -> None:
        if self._error is None:
            log.error("%s: stopping the send: %s", self._gateway.name, error)
            self._error = error

    async def _worker(self, receive: ObjectReceiveStream[Batch]) -> None:
        async with receive:
            async for batch in receive:
                await self._dispatch(batch)

    async def _settle_all(
        self, batch: Batch, status: Status, reason: str, keys: Sequence[Hashable] | None = None
    ) -> None:
        n = len(batch)
        await self._emit(batch, [status] * n, [reason] * n, keys)

    async def _dispatch(self, batch: Batch) -> None:
        if self._error is not None or self._halted():
            await self._settle_all(batch, Status.FAILED, self._not_sent_reason())
            return
        keys: Sequence[Hashable] | None = None
        window = self._window
        reserved_at = self._clock.now()
        if window is not None:
            keys = window.keys(self._job.sender, self._job.text, batch)
            try:
                granted = await window.reserve(keys)
            except SmsBridgeError as e:
                self._abort(e)
                await self._settle_all(
                    batch, Status.FAILED, f"not sent: duplicate window unavailable: {e}"
                )
                return
            if not all(granted):
                repeat = [i for i, ok in enumerate(granted) if not ok]
                await self._settle_all(batch.pick(repeat), Status.SUPPRESSED, _SUPPRESSED)
                fresh = [i for i, ok in enumerate(granted) if ok]
                batch = batch.pick(fresh)
                keys = [keys[i] for i in fresh]
                if not fresh:
                    return
        await self._send(batch, keys, reserved_at, announce=True)

    async def _send(
        self,
        batch: Batch,
        keys: Sequence[Hashable] | None,
        reserved_at: float,
        *,
        announce: bool,
    ) -> None:
        verdict = await self._attempt(batch, announce=announce)
        if verdict is None:
            # one recipient spoiled the request and nothing was sent: halve to isolate it
            half = len(batch) // 2
            for start, stop_at in ((0, half), (half, len(batch))):
                part_keys = None if keys is None else keys[start:stop_at]
                await self._send(
                    batch.slice(start, stop_at), part_keys, reserved_at, announce=False
                )
            return
        statuses, details, stop = verdict
        await self._emit(batch, statuses, details, keys, reserved_at)
        if stop is not None:
            self._abort(stop)

    async def _attempt(
        self, batch: Batch, *, announce: bool
    ) -> tuple[list[Status], list[str | None], SmsBridgeError | None] | None:
        """Send one batch, retrying where that is safe: one verdict per recipient, or
        ``None`` when the batch should be sent in halves.

        With ``announce``, the observer hears of the batch once its first request holds a
        rate slot, right before it is written: a journal's intent then covers only what may
        really be on the wire."""
        n = len(batch)
        try:
            request = self._gateway.build_send(batch, self._job)
        except SmsBridgeError as e:
            status = Status.REJECTED if isinstance(e, RejectedError) else Status.FAILED
            return [status] * n, [_reason(e)] * n, e if e.account_wide else None
        ambiguous_before = False
        attempt = 0
        while True:
            attempt += 1
            if attempt > 1 and (self._error is not None or self._fatal is not None):
                status = Status.UNCERTAIN if ambiguous_before else Status.FAILED
                return [status] * n, [self._not_sent_reason()] * n, None
            error: SmsBridgeError
            response: HttpResponse | None = None
            try:
                async with self._throttle.capacity:
                    await self._throttle.limiter.acquire()
                    if announce and attempt == 1 and not await self._announce(batch):
                        return [Status.FAILED] * n, [self._not_sent_reason()] * n, None
                    self._requests += 1
                    response = await self._transport.send(request)
                result: BatchResult = self._gateway.parse_send(batch, response, self._job)
            except SmsBridgeError as e:
                error = e
            except Exception as e:
                # a defect in an adapter must not lose recipients: they may have been sent
                log.exception("%s: unexpected failure handling a send", self._gateway.name)
                sent = response is None or 200 <= response.status < 300
                error = ResponseDecodeError(
                    f"unexpected failure: {type(e).__name__}",
                    provider=self._gateway.name,
                    maybe_processed=sent,
                )
            else:
                if ambiguous_before:
                    _after_ambiguous(result)
                return result.statuses, result.details, result.stop
            delay = self._retry.after(error, attempt, ambiguous_ok=self._retry_ambiguous)
            if delay is None:
                if (
                    isinstance(error, RejectedError)
                    and error.splittable
                    and n > 1
                    and not ambiguous_before
                ):
                    return None
                reason = _reason(error)
                if ambiguous_before:
                    status, reason = Status.UNCERTAIN, _EARLIER + reason
                elif isinstance(error, RejectedError):
                    status = Status.REJECTED
                elif error.maybe_processed:
                    status = Status.UNCERTAIN
                else:
                    status = Status.FAILED
                return [status] * n, [reason] * n, error if error.account_wide else None
            ambiguous_before = ambiguous_before or error.maybe_processed
            log.warning(
                "%s: retrying a batch of %d in %.2fs (try %d): %s",
                self._gateway.name,
                n,
                delay,
                attempt,
                error,
            )
            if isinstance(error, RateLimitedError):
                await self._throttle.limiter.defer(delay)
            await self._clock.sleep(delay)

    async def _announce(self, batch: Batch) -> bool:
        """Tell the observer a batch is going out; ``False`` (and the send stops) if it fails."""
        if self._observer is None:
            return True
        try:
            await self._observer.before(batch)
        except Exception as e:
            self._fail(e)
            return False
        return True

    # ----------------------------------------------------------------- outcomes

    async def _emit(
        self,
        batch: Batch,
        statuses: Sequence[Status],
        details: Sequence[str | None],
        keys: Sequence[Hashable] | None,
        reserved_at: float = -math.inf,
    ) -> None:
        if keys is not None:
            await self._settle_window(keys, statuses, reserved_at)
        if self._observer is not None and len(batch):
            try:
                await self._observer.after(batch, statuses, details)
            except Exception as e:
                self._fail(e)
        counts, n = self._counts, len(statuses)
        first = statuses[0] if n else None
        if first is not None and statuses.count(first) == n:
            counts[first] += n
        else:
            for status in statuses:
                counts[status] += 1
        if not self._materialise:
            return
        keep, kept, callback = self._keep, self._kept, self._on_outcome
        for index, phone, status, detail in zip(
            batch.indices, batch.phones, statuses, details, strict=True
        ):
            if status is Status.ACCEPTED:
                outcome = Outcome(index=index, phone=phone, status=status, message_id=detail)
            else:
                outcome = Outcome(index=index, phone=phone, status=status, reason=detail)
            if keep == "all" or (
                keep == "problems"
                and status is not Status.ACCEPTED
                and status is not Status.SUPPRESSED
            ):
                kept.append(outcome)
            if callback is not None and self._fatal is None:
                try:
                    pending = callback(outcome)
                    if pending is not None and inspect.isawaitable(pending):
                        await pending
                except Exception as e:
                    self._fail(e)

    async def _settle_window(
        self, keys: Sequence[Hashable], statuses: Sequence[Status], reserved_at: float
    ) -> None:
        window = self._window
        assert window is not None
        # answered within the reservation's slack: it already holds a full TTL from now
        prompt = self._clock.now() - reserved_at < window.slack
        if statuses and statuses.count(statuses[0]) == len(statuses):
            uniform = statuses[0]
            commit = keys if uniform in _COMMIT else []
            release = keys if uniform in _RELEASE else []
        else:
            commit = [k for k, s in zip(keys, statuses, strict=True) if s in _COMMIT]
            release = [k for k, s in zip(keys, statuses, strict=True) if s in _RELEASE]
        try:
            if commit and not prompt:
                await window.commit(commit)
            if release:
                await window.release(release)
        except SmsBridgeError as e:
            # reservations stay held until their TTL: safe, if less available
            log.warning("%s: duplicate window not updated: %s", self._gateway.name, e)


def _after_ambiguous(result: BatchResult) -> None:
    """An earlier try may have been processed: a refusal now may be of our own repeat."""
    for i, status in enumerate(result.statuses):
        if status in _RELEASE:
            result.statuses[i] = Status.UNCERTAIN
            result.details[i] = f"{_EARLIER}{result.details[i]}"

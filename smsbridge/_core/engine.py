"""The one way through the house, for one send.

::

    recipients (any iterable or async iterable, read lazily)
      -> unpack + normalise + check       bad entry: "rejected", no request spent
      -> gateway packer                   request-sized batches, in input order
      -> [workers] duplicate window       reserve; a key already held: "suppressed"
      -> capacity + rate limiter          shared by every send and call of the client
      -> gateway.build_send / transport / gateway.parse_send
      -> retry (429, no connection; ambiguous ones only where safe)
      -> outcomes                         counted, kept as asked, streamed to the caller

Memory holds at most ``concurrency`` batches in the queue plus those in flight; outcomes are
counted and passed on, and kept only when the caller asks.
"""

from __future__ import annotations

import hashlib
import inspect
import logging
from collections.abc import AsyncIterable, Awaitable, Callable, Iterable, Sequence
from typing import Any, Generic, TypeVar

import anyio
from anyio.abc import ObjectReceiveStream, ObjectSendStream

from .clock import Clock
from .errors import (
    ConnectError,
    RateLimitedError,
    RejectedError,
    ResponseDecodeError,
    SmsBridgeError,
)
from .gateway import BatchResult, Gateway, Item, Job
from .limiter import RateLimiter
from .models import Keep, Outcome, Report, Status
from .phones import InvalidPhone
from .retry import RetryPolicy
from .transport import HttpRequest, HttpResponse, Transport
from .window import DuplicateWindow

__all__ = ["BatchHook", "OutcomeCallback", "SendEngine", "Throttle", "Unpack"]

log = logging.getLogger("smsbridge")

J = TypeVar("J", bound=Job)

Unpack = Callable[[Any], tuple[object, str, tuple[str, ...]]]
"""Turns one input entry into (raw phone, text, params); raises ValueError when malformed."""

OutcomeCallback = Callable[[Outcome], "Awaitable[None] | None"]
"""Called with every outcome as it is decided; may be a coroutine function."""

BatchHook = Callable[[Sequence[Item]], Awaitable[None]]
"""Awaited with a batch's items right before its first request (the journal's intent)."""

_COMMIT = frozenset({Status.ACCEPTED, Status.UNCERTAIN})
_RELEASE = frozenset({Status.REJECTED, Status.FAILED})
_CHECKPOINT_EVERY = 1024
_EARLIER = "an earlier try may have been processed; the retry said: "


class Throttle:
    """A client's shared gates: at most ``capacity`` requests in flight, started at the
    limiter's pace. Every send and every call of the client passes through the same one."""

    def __init__(self, limiter: RateLimiter, concurrency: int) -> None:
        self.limiter = limiter
        self.capacity = anyio.CapacityLimiter(concurrency)


async def exchange(throttle: Throttle, transport: Transport, request: HttpRequest) -> HttpResponse:
    """One HTTP exchange inside the client's concurrency and rate limits."""
    async with throttle.capacity:
        await throttle.limiter.acquire()
        return await transport.send(request)


def _reason(error: BaseException) -> str:
    if isinstance(error, SmsBridgeError):
        return error.gateway_message or error.message
    return f"{type(error).__name__}: {error}"


class _Tally:
    __slots__ = ("counts", "keep", "kept")

    def __init__(self, keep: Keep) -> None:
        self.counts = dict.fromkeys(Status, 0)
        self.kept: list[Outcome] = []
        self.keep = keep


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
        account_key: bytes,
        retry: RetryPolicy,
        at_least_once: bool,
        clock: Clock,
        concurrency: int,
        on_outcome: OutcomeCallback | None = None,
        keep: Keep = "all",
        stop: anyio.Event | None = None,
        before_batch: BatchHook | None = None,
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
        self._tally = _Tally(keep)
        self._materialise = on_outcome is not None or keep != "none"
        self._stop_requested = stop
        self._before_batch = before_batch
        self._error: SmsBridgeError | None = None
        self._fatal: Exception | None = None
        self._stopped = False
        self._requests = 0
        self._next_index = 0
        self._early: list[tuple[Item, Status, str]] = []
        self._normalise = gateway.phones.normalise
        self._check = gateway.check(job)
        self._packer = gateway.packer(job)
        self._key_base = hashlib.blake2b(key=account_key, digest_size=16)
        self._key_base.update(job.sender.encode() + b"\x00")
        self._key_text: str | None = None
        self._key_text_hash = self._key_base

    # ----------------------------------------------------------------- entry point

    async def run(self, source: Iterable[Any] | AsyncIterable[Any], unpack: Unpack) -> Report:
        """Send to every recipient of ``source``; return the report when all have outcomes."""
        started = self._clock.now()
        send, receive = anyio.create_memory_object_stream[list[Item]](self._concurrency)
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
                    await self._flush_early()
        if self._fatal is not None:
            raise self._fatal
        counts = self._tally.counts
        return Report(
            accepted=counts[Status.ACCEPTED],
            rejected=counts[Status.REJECTED],
            suppressed=counts[Status.SUPPRESSED],
            failed=counts[Status.FAILED],
            uncertain=counts[Status.UNCERTAIN],
            requests=self._requests,
            elapsed=self._clock.now() - started,
            outcomes=tuple(self._tally.kept),
            error=self._error,
            stopped=self._stopped,
        )

    # ----------------------------------------------------------------- intake

    async def _intake(
        self,
        source: Iterable[Any] | AsyncIterable[Any],
        unpack: Unpack,
        send: ObjectSendStream[list[Item]],
    ) -> None:
        if self._halted():
            return
        take = self._take
        if isinstance(source, AsyncIterable):
            async for entry in source:
                batches = take(entry, unpack)
                if batches:
                    for batch in batches:
                        await send.send(batch)
                if self._early:
                    await self._flush_early()
                if self._halted():  # checked before pulling the next: no entry read and dropped
                    break
        else:
            for entry in source:
                batches = take(entry, unpack)
                if batches:
                    for batch in batches:
                        await send.send(batch)
                if self._early:
                    await self._flush_early()
                elif not self._next_index % _CHECKPOINT_EVERY:
                    await anyio.lowlevel.checkpoint()
                if self._halted():
                    break
        for batch in self._packer.flush():
            await send.send(batch)
        await self._flush_early()

    def _halted(self) -> bool:
        """Stop reading input: the caller asked, or the caller's code failed."""
        stop = self._stop_requested
        if self._fatal is not None or (stop is not None and stop.is_set()):
            self._stopped = True
        return self._stopped

    def _take(self, entry: Any, unpack: Unpack) -> list[list[Item]] | None:
        index = self._next_index
        self._next_index = index + 1
        try:
            raw, text, params = unpack(entry)
        except (TypeError, ValueError) as e:
            shown = entry if isinstance(entry, str) else repr(entry)[:64]
            self._early.append((Item(index, shown, ""), Status.REJECTED, str(e)))
            return None
        if self._error is not None:
            self._early.append(
                (Item(index, str(raw), text), Status.FAILED, self._not_sent_reason())
            )
            return None
        try:
            phone = self._normalise(raw)
        except InvalidPhone as e:
            self._early.append((Item(index, str(raw), text), Status.REJECTED, str(e)))
            return None
        item = Item(index, phone, text, params)
        if self._check is not None:
            problem = self._check(item)
            if problem is not None:
                self._early.append((item, Status.REJECTED, problem))
                return None
        return self._packer.add(item)

    async def _flush_early(self) -> None:
        early, self._early = self._early, []
        for item, status, reason in early:
            await self._emit([item], [status], [reason], None)

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

    def _key(self, item: Item) -> bytes:
        if item.text is not self._key_text:
            self._key_text = item.text
            self._key_text_hash = self._key_base.copy()
            self._key_text_hash.update(item.text.encode() + b"\x00")
        h = self._key_text_hash.copy()
        if item.params:
            h.update("\x1f".join(item.params).encode() + b"\x00")
        h.update(item.phone.encode())
        return h.digest()

    async def _worker(self, receive: ObjectReceiveStream[list[Item]]) -> None:
        async with receive:
            async for batch in receive:
                await self._dispatch(batch)

    async def _dispatch(self, items: list[Item]) -> None:
        if self._error is not None or self._fatal is not None or self._stopped:
            reason = self._not_sent_reason()
            await self._emit(items, [Status.FAILED] * len(items), [reason] * len(items), None)
            return
        keys: list[bytes] | None = None
        if self._window is not None:
            keys = [self._key(item) for item in items]
            try:
                granted = await self._window.reserve(keys)
            except SmsBridgeError as e:
                self._abort(e)
                reason = f"not sent: duplicate window unavailable: {e}"
                await self._emit(items, [Status.FAILED] * len(items), [reason] * len(items), None)
                return
            if not all(granted):
                repeat = [it for it, ok in zip(items, granted, strict=True) if not ok]
                await self._emit(
                    repeat,
                    [Status.SUPPRESSED] * len(repeat),
                    ["sent the same text to this number within the duplicate window"] * len(repeat),
                    None,
                )
                items = [it for it, ok in zip(items, granted, strict=True) if ok]
                keys = [k for k, ok in zip(keys, granted, strict=True) if ok]
                if not items:
                    return
        if self._before_batch is not None:
            try:
                await self._before_batch(items)
            except Exception as e:
                self._fail(e)
                n = len(items)
                await self._emit(items, [Status.FAILED] * n, [self._not_sent_reason()] * n, keys)
                return
        statuses, details, stop = await self._attempt(items)
        await self._emit(items, statuses, details, keys)
        if stop is not None:
            self._abort(stop)

    async def _attempt(
        self, items: list[Item]
    ) -> tuple[list[Status], list[str | None], SmsBridgeError | None]:
        """Send one batch, retrying where that is safe; one verdict per item."""
        n = len(items)
        try:
            request = self._gateway.build_send(items, self._job)
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
                self._requests += 1
                response = await exchange(self._throttle, self._transport, request)
                result: BatchResult = self._gateway.parse_send(items, response, self._job)
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
                    self._after_ambiguous(result)
                return result.statuses, result.details, result.stop
            delay = self._retry_delay(error, attempt)
            if delay is None:
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

    def _retry_delay(self, error: SmsBridgeError, attempt: int) -> float | None:
        """Seconds to wait before retrying, or ``None`` when this is final."""
        if error.account_wide or attempt >= self._retry.attempts:
            return None
        if isinstance(error, RateLimitedError):
            if error.retry_after is not None and error.retry_after > self._retry.max_retry_after:
                return None
            return self._retry.delay(attempt, error.retry_after)
        if isinstance(error, ConnectError) or (error.maybe_processed and self._retry_ambiguous):
            return self._retry.delay(attempt)
        return None

    @staticmethod
    def _after_ambiguous(result: BatchResult) -> None:
        """An earlier try may have been processed: a refusal now may be of our own repeat."""
        for i, status in enumerate(result.statuses):
            if status in _RELEASE:
                result.statuses[i] = Status.UNCERTAIN
                result.details[i] = f"{_EARLIER}{result.details[i]}"

    # ----------------------------------------------------------------- outcomes

    async def _emit(
        self,
        items: Sequence[Item],
        statuses: Sequence[Status],
        details: Sequence[str | None],
        keys: Sequence[bytes] | None,
    ) -> None:
        if keys is not None and self._window is not None:
            await self._settle(keys, statuses)
        counts = self._tally.counts
        if not self._materialise:
            for status in statuses:
                counts[status] += 1
            return
        keep, kept, callback = self._tally.keep, self._tally.kept, self._on_outcome
        for item, status, detail in zip(items, statuses, details, strict=True):
            counts[status] += 1
            if status is Status.ACCEPTED:
                outcome = Outcome(
                    index=item.index, phone=item.phone, status=status, message_id=detail
                )
            else:
                outcome = Outcome(index=item.index, phone=item.phone, status=status, reason=detail)
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

    async def _settle(self, keys: Sequence[bytes], statuses: Sequence[Status]) -> None:
        assert self._window is not None
        commit = [k for k, s in zip(keys, statuses, strict=True) if s in _COMMIT]
        release = [k for k, s in zip(keys, statuses, strict=True) if s in _RELEASE]
        try:
            if commit:
                await self._window.commit(commit)
            if release:
                await self._window.release(release)
        except SmsBridgeError as e:
            # reservations stay held until their TTL: safe, if less available
            log.warning("%s: duplicate window not updated: %s", self._gateway.name, e)

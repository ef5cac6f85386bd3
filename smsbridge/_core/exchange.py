"""One request through the client's gates, tried again where that is safe: the single retry
loop of sends and plain calls alike.

A try takes a place among the requests in flight (``capacity``), then a rate slot, then the
transport; the slot starts when the connection is ready, right before the request is written,
after the caller's ``ready`` hook (the send engine checks there that it should still go, and
tells its journal). Between tries :meth:`RetryPolicy.after` decides. A :class:`Halt` cuts
short the waits of tries not yet written (for a rate slot, before a retry) once nothing more
may be written: a stopped send ends when its requests on the wire are answered, not when the
slots it queued for come round.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable
from types import TracebackType
from typing import Any, Generic, TypeVar

import anyio

from .clock import Clock
from .errors import RateLimitedError, ResponseDecodeError, SmsBridgeError
from .events import Telemetry
from .limiter import RateLimiter, Slot
from .retry import RetryPolicy
from .transport import HttpRequest, HttpResponse, Ready, Transport

_anyio_states: Any
try:  # where anyio keeps each task's cancel scopes, to respect its shields
    from anyio._backends._asyncio import _task_states as _anyio_states
except ImportError:  # pragma: no cover
    _anyio_states = None

__all__ = ["Attempts", "Halt", "NotWritten", "Throttle", "last_repeat"]

log = logging.getLogger("smsbridge")

T = TypeVar("T")


class Throttle:
    """A client's shared gates: at most ``capacity`` requests in flight, started at the
    limiter's pace. Every send and every call of the client passes through the same one."""

    def __init__(self, limiter: RateLimiter, concurrency: int) -> None:
        self.limiter = limiter
        self.capacity = anyio.Semaphore(concurrency, fast_acquire=True)
        self.slot_nowait: Callable[[], Slot | None] | None = getattr(limiter, "slot_nowait", None)


class NotWritten(Exception):
    """Raised by a ``ready`` hook to keep a request off the wire; ``reason`` says why."""

    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason


class Halt:
    """Set once nothing more may be written (``reason`` says why): every wait under
    :meth:`cut` ends at once, and :meth:`check` raises :class:`NotWritten` from then on."""

    __slots__ = ("_cuts", "reason")

    def __init__(self) -> None:
        self.reason: str | None = None
        # the waits under way, in the order they began (a set's order would make a seeded
        # replay differ)
        self._cuts: dict[_Cut, None] = {}

    def set(self, reason: str) -> None:
        """Halt: end the waits under :meth:`cut`."""
        if self.reason is None:
            self.reason = reason
            for cut in list(self._cuts):
                cut.end()

    def cut(self, grace: float = 0.0) -> _Cut:
        """A wait that ends early (without an error) when the halt comes, or ``grace``
        seconds after it."""
        return _Cut(self, grace)

    def check(self) -> None:
        """Raise :class:`NotWritten` once halted."""
        if self.reason is not None:
            raise NotWritten(self.reason)


class _Cut:
    """:meth:`Halt.cut`'s context: the halt cancels the task waiting in it, and that
    cancellation ends here (an anyio cancel scope, with its sets and bookkeeping, was most
    of the objects of a request's waits through a shared store). The task is cancelled as
    asyncio's ``timeout()`` cancels it, with anyio's care: only while it waits (a task
    cancelled while it runs could take the cancellation past the wait), not inside an anyio
    cancel shield entered within the wait, and again while the wait goes on (code within
    that catches a cancellation and waits again is cancelled again), until it ends.

    One difference from a cancel scope of anyio's stays: an anyio deadline scope of the
    same task round the cut, expiring in the turn the halt came and left without another
    wait, ends with the cut's cancellation taken, and raises no ``TimeoutError``. No wait
    of the library is in such a scope."""

    __slots__ = (
        "_cancelling",
        "_fired",
        "_grace",
        "_halt",
        "_hit",
        "_outer",
        "_task",
        "_timer",
        "cut_short",
    )

    def __init__(self, halt: Halt, grace: float) -> None:
        self._halt = halt
        self._grace = grace
        self._task: asyncio.Task[Any] | None = None
        self._cancelling = 0
        self._outer: object = None  # the task's anyio cancel scope as the wait began
        self._fired = 0  # the cancellations it made
        self._hit: asyncio.Future[Any] | None = None  # what it waited on when last cancelled
        self._timer: asyncio.Handle | None = None
        self.cut_short = False  # whether the halt ended the wait

    def __enter__(self) -> None:
        task = asyncio.current_task()
        if task is None:
            raise RuntimeError("a wait under a halt needs a task")
        self._task = task
        self._cancelling = task.cancelling()
        self._outer = _anyio_scope(task)
        halt = self._halt
        halt._cuts[self] = None
        if halt.reason is not None:
            self.end()

    def end(self) -> None:
        """The halt came: end the wait, at once or after its grace."""
        if self._grace:
            if self._timer is None:
                loop = asyncio.get_running_loop()
                self._timer = loop.call_at(loop.time() + self._grace, self._fire)
        else:
            self._fire()

    def _fire(self) -> None:
        task = self._task
        if task is None:
            return
        loop = asyncio.get_running_loop()
        if _shielded(task, self._outer):
            self._timer = loop.call_at(loop.time() + _SHIELD_POLL, self._fire)
            return
        waiter: asyncio.Future[Any] | None = getattr(task, "_fut_waiter", None)
        if waiter is not None and waiter is self._hit and not waiter.done():
            # a task it waits on, cancelled and still ending: looked at again once it has
            self._timer = None
            waiter.add_done_callback(self._again)
            return
        self._timer = loop.call_soon(self._fire)  # looked at again next turn, while it waits
        if (
            task is asyncio.current_task()
            or getattr(task, "_must_cancel", False)
            or (waiter is not None and waiter.done())
        ):
            # running, or about to take a cancellation (cancelled now, the two would be one,
            # with this one's message)
            return
        self._fired += 1
        self._hit = waiter
        task.cancel()

    def _again(self, _: object) -> None:
        self._fire()

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> bool:
        task, self._task = self._task, None
        self._halt._cuts.pop(self, None)
        self._hit = None
        if self._timer is not None:
            self._timer.cancel()
            self._timer = None
        if not self._fired or task is None:
            return False
        for _ in range(self._fired - 1):
            task.uncancel()
        # the halt's cancellation ends here, unless another is pending besides
        if (
            task.uncancel() <= self._cancelling
            and exc_type is not None
            and issubclass(exc_type, asyncio.CancelledError)
        ):
            self.cut_short = True
            return True
        return False


_SHIELD_POLL = 0.05  # seconds between looks while a halted wait is inside a cancel shield


def _anyio_scope(task: asyncio.Task[Any]) -> object:
    """The innermost anyio cancel scope ``task`` is in, where anyio's asyncio backend keeps
    it (``None`` outside any, or where that is not known)."""
    state = _anyio_states.get(task) if _anyio_states is not None else None
    return getattr(state, "cancel_scope", None)


def _shielded(task: asyncio.Task[Any], outer: object) -> bool:
    """Whether ``task`` is inside an anyio cancel shield entered since it was in ``outer``."""
    scope = _anyio_scope(task)
    while scope is not None and scope is not outer:
        if getattr(scope, "shield", False):
            return True
        scope = getattr(scope, "_parent_scope", None)
    return False


class _Try:
    """One try's ``ready`` hook, for the transport to await once the connection is ready:
    the rate slot's start, the caller's hook, the duplicate guard; then the request is on
    the wire. (An object of its own, where a closure would allocate a cell for each of its
    fields; and one per try, so that a hook kept past its try lets nothing be written.)"""

    __slots__ = (
        "asked",
        "attempt",
        "attempts",
        "deadline",
        "ready",
        "request",
        "slot",
        "telemetry",
    )

    def __init__(
        self,
        attempts: Attempts[Any],
        slot: Slot,
        ready: Ready | None,
        request: HttpRequest,
        attempt: int,
        telemetry: Telemetry | None,
        asked: float,
        deadline: float | None,
    ) -> None:
        self.attempts, self.ready = attempts, ready
        self.slot: Slot | None = slot
        self.request, self.attempt, self.telemetry, self.asked = request, attempt, telemetry, asked
        self.deadline = deadline  # when a repeat's own time limit ends (None: it has none)

    async def go(self) -> None:
        slot, attempts = self.slot, self.attempts
        if slot is None:
            raise NotWritten(_HOOK_ENDED)
        halt = attempts._halt
        if not getattr(slot, "instant", False):
            with halt.cut():
                await slot.ready()
        halt.check()
        ready = self.ready
        while True:
            if ready is not None:
                # again before each start: what it sees to (the keys' reservation renewed,
                # the lease fresh) holds at the write, however long a missed start waited
                await ready()
            if slot.start():
                break
            with halt.cut():  # too late for its start now: another one
                await slot.ready()
            halt.check()  # that wait may be long: a stop since holds the request
        if self.slot is None:  # the try ended while this hook waited
            raise NotWritten(_HOOK_ENDED)
        if attempts.ambiguous and not attempts.ambiguous_ok:
            if not attempts._may_repeat(self.deadline):
                raise NotWritten(_GUARD_RUN_OUT)
            attempts.guarded = True
        clock = attempts._clock
        if attempts._first_written is None:
            attempts._first_written = clock.now()
        attempts.on_wire = True
        telemetry = self.telemetry
        if telemetry is not None:
            attempts._written_at = now = clock.now()
            attempts._waited = now - self.asked
            telemetry.sent(
                self.request.path,
                attempts._recipients,
                self.attempt,
                attempts._waited,
                attempts._send,
            )


_NEVER = Halt()

MIN_REPEAT_READ = 2.0
"""Seconds: the shortest wait for an answer a repeat relying on the duplicate guard is
given; with less of the guard left, it is not written."""
WRITE_ALLOWANCE = 2.0
"""Seconds a repeat's time limit leaves at least for its turn and its write (a rate slot, a
connection), besides :data:`MIN_REPEAT_READ` for the answer."""
_GUARD_RUN_OUT = "the gateway's duplicate guard has run out since the first try"


def last_repeat(span: float) -> float:
    """Seconds after a first try in which a repeat relying on the duplicate guard may still
    be tried, where the transport ends its exchange within the ``span`` (the guard less its
    margin) left: enough of it must remain for the write and an answer."""
    return span - MIN_REPEAT_READ - WRITE_ALLOWANCE


_HOOK_ENDED = "not sent: the try this hook was given for has ended"


class Attempts(Generic[T]):
    """The tries of one request: :meth:`run` returns the parsed answer, or raises the final
    :class:`SmsBridgeError` (or :class:`NotWritten`).

    What happened along the way stays readable, also when the run is cancelled:
    ``on_wire`` is ``True`` while a written try awaits its answer, ``ambiguous`` once a try
    that may have been processed failed, ``tries`` counts the tries made.

    Args:
        telemetry: the client's listeners (and the gateway's name, for the log).
        recipients: how many recipients the request carries, for them.
        send: the send the request belongs to, for them; ``None`` for a plain call.
        ambiguous_ok: a try that may have been processed may be repeated (the gateway
            de-duplicates, the caller accepts repeats, or the request only reads).
        halt: ends the waits of tries not yet written; they raise :class:`NotWritten`.
        guard: seconds after the first try is written in which a repeat of it, however long
            the network holds it up while its writer waits for the answer, still reaches the
            gateway within its duplicate guard (less a margin, and the read timeout): within
            them a try that may have been processed is repeated even when ``ambiguous_ok`` is
            not, and ``guarded`` is set, so that the caller reads a refusal of the repeat as
            "the first one went".
        stretch: ``(span, read)`` where the transport ends a request's exchange within its
            own time limit: the guard less the margin, and the transport's read timeout
            (less than the span). A repeat then goes while at least :data:`MIN_REPEAT_READ`
            and :data:`WRITE_ALLOWANCE` of the span are left, its whole exchange limited to
            what is left (a held-up repeat cannot arrive after its writer stops waiting).
        written: when an earlier request carrying these recipients was first written (a
            part of a request that may have been processed): every try is then a repeat.
    """

    __slots__ = (
        "_clock",
        "_first_written",
        "_guard",
        "_halt",
        "_name",
        "_policy",
        "_recipients",
        "_send",
        "_stretch",
        "_telemetry",
        "_throttle",
        "_transport",
        "_waited",
        "_written_at",
        "ambiguous",
        "ambiguous_ok",
        "guarded",
        "on_wire",
        "tries",
    )

    def __init__(
        self,
        throttle: Throttle,
        transport: Transport,
        policy: RetryPolicy,
        clock: Clock,
        *,
        telemetry: Telemetry,
        ambiguous_ok: bool,
        recipients: int = 0,
        send: int | None = None,
        halt: Halt = _NEVER,
        guard: float | None = None,
        stretch: tuple[float, float] | None = None,
        written: float | None = None,
    ) -> None:
        self._halt = halt
        self._guard = guard
        self._stretch = stretch
        self._first_written = written
        self.guarded = False
        self._throttle = throttle
        self._transport = transport
        self._policy = policy
        self._clock = clock
        self._name = telemetry.gateway
        self._telemetry = telemetry
        self._recipients = recipients
        self._send = send
        self._written_at: float | None = None
        self._waited = 0.0
        self.ambiguous_ok = ambiguous_ok
        self.ambiguous = written is not None
        self.on_wire = False
        self.tries = 0

    async def _once(self, request: HttpRequest, ready: Ready | None, attempt: int) -> HttpResponse:
        throttle, halt = self._throttle, self._halt
        telemetry = self._telemetry if self._telemetry.listening else None
        asked = self._clock.now() if telemetry is not None else 0.0
        self._written_at = None
        capacity = throttle.capacity
        if capacity.value:
            capacity.acquire_nowait()  # free: no checkpoint, no trip round the loop
        else:
            await capacity.acquire()
        try:
            halt.check()
            nowait = throttle.slot_nowait
            slot = nowait() if nowait is not None else None
            if slot is None:
                with halt.cut():
                    slot = await throttle.limiter.acquire()
                if slot is None:
                    raise NotWritten(halt.reason or "")
            hook = _Try(self, slot, ready, request, attempt, telemetry, asked, None)
            try:
                limit = self._repeat_limit()
                if limit is None:
                    sent = request
                else:
                    sent = request.within(limit)
                    hook.deadline = self._clock.now() + limit
                self.tries += 1
                try:
                    return await self._transport.send(sent, hook.go)
                except NotWritten:
                    self.tries -= 1
                    raise
            finally:
                hook.slot = None
                slot.close()
        finally:
            capacity.release()

    def _told(
        self, request: HttpRequest, attempt: int, status: int | None, error: SmsBridgeError | None
    ) -> None:
        """A written try ended: tell who listens."""
        written = self._written_at
        if written is not None:
            self._written_at = None
            self._telemetry.answered(
                request.path,
                self._recipients,
                attempt,
                status=status,
                error=error,
                seconds=self._clock.now() - written,
                waited=self._waited,
                send=self._send,
            )

    @property
    def first_written(self) -> float | None:
        """When the first try (or the request this one repeats a part of) was written."""
        return self._first_written

    def _within_guard(self) -> bool:
        """Whether a repeat relying on the duplicate guard may still be tried."""
        first = self._first_written
        if first is None:
            return False
        since = self._clock.now() - first
        if self._stretch is not None:
            return since < last_repeat(self._stretch[0])
        return self._guard is not None and since < self._guard

    def _repeat_limit(self) -> float | None:
        """The time limit of a repeat about to be tried, where the transport is given one:
        what is left of the guard (``None``: its own timeouts leave the repeat within the
        guard, or it is no repeat relying on it); raises :class:`NotWritten` when too little
        of the guard is left."""
        stretch, first = self._stretch, self._first_written
        if stretch is None or first is None or not self.ambiguous or self.ambiguous_ok:
            return None
        span, read = stretch
        left = span - (self._clock.now() - first)
        if left >= read + WRITE_ALLOWANCE:
            return None
        if left < MIN_REPEAT_READ + WRITE_ALLOWANCE:
            raise NotWritten(_GUARD_RUN_OUT)
        return left

    def _may_repeat(self, deadline: float | None) -> bool:
        """Whether a repeat may be written now: one whose exchange must end by ``deadline``
        (which the guard covers) while :data:`MIN_REPEAT_READ` of it is left; another only
        within ``guard`` (where the read timeout it may be awaited still ends within the
        guard)."""
        first = self._first_written
        if first is None:
            return False
        if deadline is not None:  # checked here too: the transport's timer may run late
            return self._clock.now() + MIN_REPEAT_READ <= deadline
        return self._guard is not None and self._clock.now() - first < self._guard

    async def run(
        self,
        request: HttpRequest,
        parse: Callable[[HttpResponse], T],
        *,
        ready: Ready | None = None,
        unsent: Callable[[], Awaitable[None]] | None = None,
        carry_on: Callable[[], str | None] | None = None,
    ) -> T:
        """Try until answered or the policy gives up.

        Args:
            request: what to send, the same bytes every try.
            parse: the answer's meaning; raises a typed error for a failure.
            ready: awaited right before each try is written (may raise :class:`NotWritten`).
            unsent: awaited when an answer proves that nothing of the request was processed
                so far and another try follows (a journal closes its intent).
            carry_on: before a retry, the reason to give up instead, or ``None`` to go on.
        """
        attempt = 0
        while True:
            attempt += 1
            try:
                response = await self._once(request, ready, attempt)
            except SmsBridgeError as e:
                error = self._telemetry.scrub(e)
                self._told(request, attempt, None, error)
            else:
                self.on_wire = False
                try:
                    result = parse(response)
                except SmsBridgeError as e:
                    error = self._telemetry.scrub(e)
                except Exception as e:
                    # a defect in an adapter must not lose recipients: they may have been sent
                    log.exception("%s: unexpected failure reading an answer", self._name)
                    error = ResponseDecodeError(
                        f"unexpected failure: {type(e).__name__}",
                        provider=self._name,
                        maybe_processed=200 <= response.status < 300,
                    )
                else:
                    self._told(request, attempt, response.status, None)
                    return result
                self._told(request, attempt, response.status, error)
            self.on_wire = False
            ok = self.ambiguous_ok or self._within_guard()
            delay = self._policy.after(error, attempt, ambiguous_ok=ok)
            if delay is None:
                raise error
            if not error.maybe_processed and not self.ambiguous and unsent is not None:
                await unsent()
            self.ambiguous = self.ambiguous or error.maybe_processed
            if carry_on is not None and (reason := carry_on()) is not None:
                raise NotWritten(reason)
            self._telemetry.retry(request.path, attempt, delay, error, self._send)
            if isinstance(error, RateLimitedError):
                await self._throttle.limiter.defer(delay)
            with self._halt.cut():
                await self._clock.sleep(delay)

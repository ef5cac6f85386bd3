"""Following sent messages until each reaches a final state: polling the gateway's status
call within the account's limiter, and taking delivery reports from a webhook on the way."""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator, Awaitable, Callable, Iterable
from typing import Protocol

import anyio

from .clock import Clock
from .errors import ConfigurationError, InvalidInputError, SmsBridgeError
from .events import mask_numbers
from .models import DeliveryState, MessageStatus

__all__ = ["DeliveryTracker", "HasState", "statuses_of"]

log = logging.getLogger("smsbridge")


class HasState(Protocol):
    """What a delivery report or a status has in common."""

    @property
    def message_id(self) -> str:
        """The gateway's id."""
        ...

    @property
    def state(self) -> DeliveryState:
        """The state in the shared vocabulary."""
        ...

    @property
    def raw(self) -> str:
        """The gateway's own word."""
        ...


StatusCall = Callable[[list[str]], Awaitable[list[MessageStatus]]]


def statuses_of(reports: Iterable[HasState]) -> list[MessageStatus]:
    """Delivery reports as statuses, every one checked before any is taken."""
    if not isinstance(reports, Iterable) or hasattr(reports, "message_id"):
        raise InvalidInputError(
            f"feed takes a list of delivery reports, got {type(reports).__name__}"
        )
    statuses = []
    for report in reports:
        message_id = getattr(report, "message_id", None)
        state = getattr(report, "state", None)
        if not isinstance(message_id, str) or not isinstance(state, DeliveryState):
            raise InvalidInputError(
                "feed takes delivery reports (a message_id and a DeliveryState state), got "
                f"{type(report).__name__}"
            )
        raw = getattr(report, "raw", None)
        if type(report) is MessageStatus and isinstance(raw, str):
            statuses.append(report)  # as it is (the blocking feed's, checked once already)
        else:
            raw = raw if isinstance(raw, str) else state.value
            statuses.append(MessageStatus(message_id=message_id, state=state, raw=raw))
    return statuses


def _seconds(value: object) -> bool:
    return isinstance(value, int | float) and not isinstance(value, bool)


class DeliveryTracker:
    """An async iterator of :class:`MessageStatus`: each id once, when it reaches a final
    state, or at the deadline with the last state known (``ENROUTE``, or ``UNKNOWN`` when the
    gateway never told). Get one from a client's :meth:`track`.

    Each round asks the gateway for every id still open (in its status call's chunks, through
    the account's limiter), then waits ``every`` seconds. Delivery reports given to
    :meth:`feed` (from a webhook) settle their ids without a poll; both paths give the same
    :class:`MessageStatus`. A round the gateway fails is logged and the next one tries again;
    an account-wide refusal (a wrong token) ends the iteration with its error.
    """

    def __init__(
        self,
        ids: Iterable[str | int] | str | int,
        status: StatusCall,
        clock: Clock,
        *,
        every: float,
        deadline: float | None,
    ) -> None:
        if not _seconds(every) or not every > 0:
            raise ConfigurationError(f"every must be positive seconds, got {every!r}")
        if deadline is not None and (not _seconds(deadline) or not deadline >= 0):
            raise ConfigurationError(f"deadline must be zero or more seconds, got {deadline!r}")
        self._open: dict[str, MessageStatus] = {}
        if isinstance(ids, str | int):
            ids = (ids,)  # one id, not its characters
        elif isinstance(ids, bytes | bytearray) or not isinstance(ids, Iterable):
            raise InvalidInputError(
                "track() takes message ids (str or int, or an iterable of them), "
                f"got {type(ids).__name__}"
            )
        for i in ids:
            if isinstance(i, bool) or not isinstance(i, str | int):
                raise InvalidInputError(f"a message id is a str or an int, got {i!r}")
            key = str(i)
            self._open[key] = MessageStatus(message_id=key, state=DeliveryState.UNKNOWN)
        self._fed: list[MessageStatus] = []
        self._woken: anyio.Event | None = None  # set by a final report fed during a wait
        self._status = status
        self._clock = clock
        self.every = every
        self.deadline = deadline

    @property
    def pending(self) -> int:
        """Ids not yet given out."""
        return len(self._open)

    def feed(self, reports: Iterable[HasState]) -> None:
        """States heard another way (a webhook's delivery reports): final ones settle their
        ids at the next step of the iteration, without a poll. Each needs a ``message_id``
        and a ``state`` (its ``raw`` word is the state's name where it has none); an entry
        without them is an :class:`~smsbridge.InvalidInputError`, and none is taken."""
        for status in statuses_of(reports):
            if status.message_id in self._open and status.state.final:
                self._fed.append(status)
                if self._woken is not None:
                    self._woken.set()

    def __aiter__(self) -> AsyncIterator[MessageStatus]:
        return self._follow()

    async def _follow(self) -> AsyncIterator[MessageStatus]:
        started = self._clock.now()
        while self._open:
            for status in self._settle_fed():
                yield status
            if not self._open:
                return
            try:
                answers = await self._status(list(self._open))
            except SmsBridgeError as e:
                if e.account_wide or isinstance(e, ConfigurationError):
                    raise  # a refused account, a closed client: no later round does better
                log.warning("tracking: a status round failed: %s", mask_numbers(str(e)))
                answers = []
            for status in self._settle_fed():
                yield status
            for answer in answers:
                if answer.message_id not in self._open:
                    continue
                if answer.state.final:
                    del self._open[answer.message_id]
                    yield answer
                else:
                    self._open[answer.message_id] = answer
            if not self._open:
                return
            elapsed = self._clock.now() - started
            if self.deadline is not None and elapsed + self.every > self.deadline:
                break
            wake_at = self._clock.now() + self.every
            while True:  # a final report fed meanwhile is given out at once, not after the wait
                await self._nap(wake_at - self._clock.now())
                for status in self._settle_fed():
                    yield status
                if not self._open:
                    return
                if self._clock.now() >= wake_at:
                    break
        for status in self._settle_fed():
            yield status
        last, self._open = list(self._open.values()), {}
        for status in last:
            yield status

    async def _nap(self, seconds: float) -> None:
        """Wait ``seconds``, or until a final report is fed."""
        self._woken = woken = anyio.Event()
        async with anyio.create_task_group() as naps:

            async def sleep() -> None:
                await self._clock.sleep(seconds)
                naps.cancel_scope.cancel()

            async def wake() -> None:
                await woken.wait()
                naps.cancel_scope.cancel()

            naps.start_soon(sleep)
            naps.start_soon(wake)
        self._woken = None

    def _settle_fed(self) -> list[MessageStatus]:
        settled = []
        fed, self._fed = self._fed, []
        for status in fed:
            if self._open.pop(status.message_id, None) is not None:
                settled.append(status)
        return settled

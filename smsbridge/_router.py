"""One send over several gateways: each recipient goes to the first gateway of its country's
route, and moves to the next only when its outcome proves the message did not go.

Only ``failed`` moves (surely not sent: a gateway that cannot be reached, an account refused,
429s to the end of the retries); ``uncertain`` never does (it may have arrived), nor does
``rejected`` (the content or the number was refused). The duplicate window is one for the
whole route, each gateway keeps its own limiter, and a gateway that keeps failing is skipped
for a cool-down instead of costing a timeout per request.
"""

from __future__ import annotations

import inspect
import math
from collections import deque
from collections.abc import (
    AsyncIterable,
    AsyncIterator,
    Awaitable,
    Callable,
    Iterable,
    Mapping,
    Sequence,
)
from typing import Any, Unpack

import anyio
import msgspec
import phonenumbers

from ._core.client import Client, SendOptions, checked_options
from ._core.clock import Clock, SystemClock
from ._core.engine import BatchObserver, from_caller
from ._core.errors import ConfigurationError, InvalidInputError, SmsBridgeError
from ._core.finish import to_the_end
from ._core.gateway import Batch, Message, checked_message
from ._core.models import Counts, Keep, Outcome, Report, Status, checked_keep, keeps
from ._core.phones import InvalidPhone, PhoneRules, international, parsed, shown, unmeant
from ._core.phones import compact as bare_digits
from ._core.recipients import Phones, Seen, phone_text_pairs, phones_only, recipients
from ._core.window import MemoryWindow

__all__ = ["RoutedReport", "RoutedResume", "Router"]

_NOT_SENT = "not sent: the send was stopped"
_CANCELLED = "not sent: the send was cancelled"
_CALLER = "not sent: the send stopped after an error in the caller's code"


class RoutedReport(Counts, frozen=True, kw_only=True):
    """What a routed send did: the counts over every gateway, and each gateway's own.

    Attributes:
        accepted, rejected, suppressed, failed, uncertain: recipients per final outcome.
        requests: HTTP requests made on every gateway, retries included.
        elapsed: seconds from the first recipient read to the last outcome.
        by_gateway: each gateway's counts, failed-over recipients counted where they ended.
        outcomes: the kept outcomes (see ``keep``), each naming its gateway.
        moved: recipients that ended on a later gateway of their route than the first (it
            failed them, or was skipped).
        errors: the account-wide error that stopped a gateway's sends, by gateway.
        stopped: the caller stopped the send before its input ended.
    """

    elapsed: float = 0.0
    by_gateway: dict[str, Counts] = msgspec.field(default_factory=dict)
    outcomes: tuple[Outcome, ...] = ()
    moved: int = 0
    errors: dict[str, str] = msgspec.field(default_factory=dict)
    stopped: bool = False

    @property
    def ok(self) -> bool:
        """``True`` when nobody is ``failed`` or ``uncertain`` and nothing stopped the send."""
        return not (self.failed or self.uncertain or self.stopped)


def _one_window(clients: list[Client[Any]]) -> MemoryWindow | None:
    """The window the clients will share: the one that already holds sends (never a fresh
    one over it: that would forget them), else the longest; ``None`` when any client keeps
    its window elsewhere (Redis) or has none."""
    windows = [c.window for c in clients]
    if not windows or not all(isinstance(w, MemoryWindow) for w in windows):
        return None
    distinct = list({id(w): w for w in windows if isinstance(w, MemoryWindow)}.values())
    held = [w for w in distinct if len(w)]
    if len(held) > 1:
        raise ConfigurationError(
            "the clients' duplicate windows already hold different sends: give the clients "
            "one window (window=MemoryWindow(...)) before routing them"
        )
    if held:
        shared = held[0]
    else:
        # the longest, with a slack for the slowest read timeout among the clients
        longest = max(distinct, key=lambda w: w.ttl)
        slack = max(c._slack() for c in clients)
        shared = (
            longest
            if longest.slack >= slack
            else MemoryWindow(longest.ttl, slack=slack, clock=longest._clock)
        )
    for client in clients:
        client._check_window(shared)  # a window holding sends is kept only where it fits
    for client in clients:
        client._window = shared
    return shared


class RoutedResume(msgspec.Struct, kw_only=True):
    """What a journaled campaign gives a routed send (see :meth:`Router.send_journaled`).

    Attributes:
        idempotency_key: the campaign's key, the same on every gateway and every run.
        observers: each gateway's journal writer, told of its batches.
        maybe_sent: by gateway, the recipients (by index) an earlier run had in flight on it,
            with when their request was first written where a repeat rests on the gateway's
            duplicate guard: they go again through that gateway alone, or end ``uncertain``.
        earlier: ``((index, entry), sent)`` of what earlier runs settled within the duplicate
            window, held in each gateway's window before its first recipient is read.
        settle: writes the outcomes the router gives itself (no route, a skipped gateway, a
            stop), a batch at a time.
    """

    idempotency_key: bytes
    observers: Mapping[str, BatchObserver]
    maybe_sent: Mapping[str, Mapping[int, float | None]]
    earlier: Sequence[tuple[tuple[int, Any], bool]] = ()
    settle: Callable[[Sequence[Outcome]], Awaitable[None]]


class _Health:
    """A gateway's recent record: consecutive requests that surely did not go."""

    __slots__ = ("failures", "open_until")

    def __init__(self) -> None:
        self.failures = 0
        self.open_until = -math.inf


class Router:
    """Sends through several gateways by the recipients' countries, failing over per
    recipient only where the message surely did not go.

    ``Router({"UA": [club, webcom], "RU": [webcom], "AZ": [plus]})``: a Ukrainian number goes
    to SMS Club, and to Webcom only if SMS Club's outcome for it is ``failed``. The clients
    are opened and closed by their owner. The router gives them one duplicate window (the
    same text to the same number is suppressed whichever gateway carried it first): the one
    that already holds sends, else the longest, when their windows are in memory (clients
    sharing state through Redis keep their own); each keeps its own limiter.

    Args:
        routes: ISO country (``"UA"``, as phonenumbers names the number's country) to the
            clients to try in order, each at most once.
        trip_after: consecutive requests of a gateway that surely did not go (all their
            recipients ``failed``) after which it is skipped.
        cooldown: seconds a tripped gateway is skipped; then its next requests probe it (as
            many as are ready at once, up to its client's concurrency), and one more failure
            trips it again.
        clock: time source for the cool-downs.
        default_region: the country of numbers written without a country code (``0...``);
            without it they are ``rejected``: a national number names no route.
        unavailable: countries whose gateways cannot be used now (no credentials), with the
            reason: their recipients end ``failed`` (not sent, and could be), not
            ``rejected``.
    """

    def __init__(
        self,
        routes: Mapping[str, Sequence[Client[Any]]],
        *,
        trip_after: int = 3,
        cooldown: float = 60.0,
        clock: Clock | None = None,
        default_region: str | None = None,
        unavailable: Mapping[str, str] | None = None,
    ) -> None:
        if not isinstance(routes, Mapping):
            raise ConfigurationError(
                "routes are a mapping of a country to its clients, {'UA': [SmsClub(...)]}, "
                f"got {type(routes).__name__}"
            )
        if unavailable is not None and not (
            isinstance(unavailable, Mapping)
            and all(isinstance(r, str) and isinstance(w, str) for r, w in unavailable.items())
        ):
            raise ConfigurationError("unavailable maps a country to why it is not served")
        if not isinstance(trip_after, int) or isinstance(trip_after, bool):
            raise ConfigurationError(f"trip_after is a whole number, got {trip_after!r}")
        if not isinstance(cooldown, int | float) or isinstance(cooldown, bool):
            raise ConfigurationError(f"cooldown is a number of seconds, got {cooldown!r}")
        self.unavailable = {r.upper(): why for r, why in (unavailable or {}).items()}
        if not routes and not self.unavailable:
            raise ConfigurationError("a router needs at least one route")
        if trip_after < 1 or not cooldown >= 0:
            raise ConfigurationError("trip_after must be 1 or more, cooldown 0 or more seconds")
        self.routes: dict[str, tuple[Client[Any], ...]] = {}
        clients: dict[str, Client[Any]] = {}
        for region, route in routes.items():
            if not isinstance(region, str):
                raise ConfigurationError(f"a route's country is a region code, got {region!r}")
            if not isinstance(route, Sequence) or isinstance(route, str | bytes):
                raise ConfigurationError(
                    f"the route of {region} is a list of clients (SmsClub(...), ...), "
                    f"got {type(route).__name__}"
                )
            if not all(isinstance(c, Client) for c in route):
                raise ConfigurationError(
                    f"the route of {region} is a list of clients (SmsClub(...), ...), got {route!r}"
                )
            if not route:
                raise ConfigurationError(f"the route of {region} names no gateway")
            if not phonenumbers.country_code_for_region(region.upper()):
                raise ConfigurationError(f"unknown country {region!r} in the routes")
            names = [client.spec.name for client in route]
            if len(set(names)) < len(names):  # it would be given again what it did not send
                raise ConfigurationError(f"the route of {region} names a gateway twice")
            for client in route:
                known = clients.setdefault(client.spec.name, client)
                if known is not client:
                    raise ConfigurationError(f"two {client.spec.name} clients in the routes")
            if region.upper() in self.routes:
                raise ConfigurationError(f"two routes of {region.upper()}")
            self.routes[region.upper()] = tuple(route)
        self.clients = clients
        self.trip_after = trip_after
        self.cooldown = cooldown
        self._clock: Clock = clock or SystemClock()
        self._health = {name: _Health() for name in clients}
        self.default_region = default_region
        self._phones = PhoneRules(default_region or "UA")
        self.window = _one_window(list(clients.values()))

    def __repr__(self) -> str:
        routes = ", ".join(
            f"{region}={','.join(c.spec.name for c in route)}"
            for region, route in self.routes.items()
        )
        return f"Router({routes})"

    async def send(
        self, text: str, *, to: Phones, sender: str, **options: Unpack[SendOptions]
    ) -> RoutedReport:
        """One text to every number of ``to``; ``on_outcome``, ``keep`` and ``stop`` as for
        a client's send."""
        return await self.send_message(Message(sender=sender, text=text), to=to, **options)

    async def send_message(
        self,
        message: Message,
        *,
        to: Iterable[Any] | AsyncIterable[Any] | str,
        **options: Unpack[SendOptions],
    ) -> RoutedReport:
        """Send ``message`` (see :class:`Message`) to every recipient of ``to``, routed."""
        message = checked_message(message)
        unknown = set(options) - {"on_outcome", "keep", "stop"}
        if unknown:
            raise InvalidInputError(f"a routed send does not take {', '.join(sorted(unknown))}")
        checked_options(options)
        keep = checked_keep(options.get("keep", "all"))
        self._check_open()
        run = _RoutedSend(self, message, options.get("on_outcome"), keep, options.get("stop"))
        try:
            return await run.run(to)
        except BaseExceptionGroup as group:
            raise _alone(group) from None

    async def plan(
        self, message: Message, *, to: Iterable[Any] | AsyncIterable[Any] | str
    ) -> RoutedReport:
        """A dry run: each recipient to the first usable gateway of its route, through that
        client's own dry run (numbers checked, duplicates found, requests built and counted,
        nothing sent). ``by_gateway`` is the plan per gateway; no failover is planned."""
        run = _RoutedSend(self, checked_message(message), None, "none", None, plan=True)
        try:
            return await run.run(to)
        except BaseExceptionGroup as group:
            raise _alone(group) from None

    async def send_journaled(
        self,
        message: Message,
        *,
        to: Iterable[tuple[int, Any]] | AsyncIterable[tuple[int, Any]],
        resume: RoutedResume,
        on_outcome: Any = None,
        stop: anyio.Event | None = None,
    ) -> RoutedReport:
        """A routed send of a campaign's ``(index, entry)`` rows with its journal (the
        command's ``send route --journal``): see :class:`RoutedResume`. Keeps no outcomes."""
        self._check_open()
        run = _RoutedSend(self, checked_message(message), on_outcome, "none", stop, resume=resume)
        try:
            return await run.run(to)
        except BaseExceptionGroup as group:
            raise _alone(group) from None

    def _check_open(self) -> None:
        """Every client of the routes open, before anything is read: a gateway of a route
        that cannot send would only be found out when a recipient fails over to it."""
        for name, client in self.clients.items():
            if not client.is_open:
                raise ConfigurationError(
                    f"the {name} client is not open: open it (`async with`) before sending"
                )

    def _usable(self, client: Client[Any], now: float) -> bool:
        health = self._health[client.spec.name]
        return health.failures < self.trip_after or now >= health.open_until

    def _record(self, gateway: str, went: bool) -> bool:
        """A request's recipients may have gone (``went``), or surely did not: whether the
        gateway has just tripped."""
        health = self._health[gateway]
        if went:
            health.failures = 0
            return False
        health.failures += 1
        if health.failures >= self.trip_after:
            health.open_until = self._clock.now() + self.cooldown
            return True
        return False


class _Item(msgspec.Struct, gc=False):
    index: int
    entry: Any
    route: tuple[Client[Any], ...]
    position: int
    refused: str | None = None  # why it can go nowhere, decided when it was read
    status: Status = Status.REJECTED  # what that makes it
    pinned: bool = False  # an earlier run had it in flight on its one gateway: never failed
    on: str | None = None  # that gateway, when this run does not have it


class _Both:
    """Two observers of one gateway's batches, in order (the journal, then the health)."""

    def __init__(self, first: BatchObserver, second: BatchObserver) -> None:
        self.first = first
        self.second = second

    async def before(self, batch: Batch) -> None:
        """Both, before the request."""
        await self.first.before(batch)
        await self.second.before(batch)

    async def unsent(self, batch: Batch) -> None:
        """Both, when a try proved unsent."""
        await self.first.unsent(batch)
        await self.second.unsent(batch)

    async def after(
        self, batch: Batch, statuses: Sequence[Status], details: Sequence[str | None]
    ) -> None:
        """Both, with the outcomes."""
        await self.first.after(batch, statuses, details)
        await self.second.after(batch, statuses, details)


class _HealthWatch:
    """Tells the router of each request of one gateway: did anything go? Trips the send's
    stop when the gateway has failed too often."""

    def __init__(self, router: Router, gateway: str, stop: anyio.Event) -> None:
        self.router = router
        self.gateway = gateway
        self.stop = stop

    async def before(self, batch: Batch) -> None:
        """Nothing to do before a request."""

    async def unsent(self, batch: Batch) -> None:
        """Nothing to do when a try proved unsent."""

    async def after(
        self, batch: Batch, statuses: Sequence[Status], details: Sequence[str | None]
    ) -> None:
        """A request's outcomes: some went, or all surely did not (a stop is no failure)."""
        went = any(s is Status.ACCEPTED or s is Status.UNCERTAIN for s in statuses)
        # "not sent: ..." is ours (a stop, a cancellation, the caller's failure, a send that
        # stopped after the account's error): the request itself that failed counts
        failed = all(s is Status.FAILED for s in statuses) and not any(
            d is not None and d.startswith("not sent:") for d in details
        )
        if (went or failed) and self.router._record(self.gateway, went):
            self.stop.set()


class _RoutedSend:
    """One routed send: rounds of per-gateway sends, the failed recipients of one round
    going to the next gateway of their route in the next."""

    def __init__(
        self,
        router: Router,
        message: Message,
        on_outcome: Any,
        keep: Keep,
        stop: anyio.Event | None,
        *,
        plan: bool = False,
        resume: RoutedResume | None = None,
    ) -> None:
        self.router = router
        self.plan = plan
        self.resume = resume
        self.unsettled: list[Outcome] = []  # the router's own outcomes not yet journaled
        self.held: set[str] = set()  # gateways whose window holds the earlier runs' sends
        self.earlier: list[tuple[tuple[int, Any], bool]] | None = None
        self.jobs: dict[str, Any] = {}  # each gateway's prepared job, to check what it never read
        self.message = message
        self.kind = message.kind
        self.on_outcome = on_outcome
        # whether a decision can wait: a template looked up, the journal, or the caller's
        # callback (any but one written in C, as list.append, may give an awaitable)
        self.decisions_wait = (
            resume is not None
            or self.kind == "template"
            or (on_outcome is not None and not inspect.isbuiltin(on_outcome))
        )
        self.keep = keep
        self.stop = stop
        self.halt = anyio.Event()  # the caller's stop, or the caller's code failed
        # the wait for the caller's next entry, which a halt ends
        self.waiting: anyio.CancelScope | None = None
        self.may_wait = False
        self.failing_over = False  # the first round is over: the rounds of failovers
        self.caller_error: BaseException | None = None
        self.queued: deque[_Item] = deque()  # a later round's items not yet handed out
        self.kept: list[Outcome] = []
        self.counts: dict[str | None, dict[Status, int]] = {}
        self.requests: dict[str, int] = {}
        self.moved = 0
        self.errors: dict[str, str] = {}
        self.failovers: deque[_Item] = deque()  # failed where they were, for their next gateway
        self._ended: set[str] = set()  # gateways whose send of this round has stopped
        self.holding: _Item | None = None  # read, waiting for the failovers ahead of it

    async def run(self, to: Any) -> RoutedReport:
        clock = self.router._clock
        started = clock.now()
        source = recipients(to, phones_only if self.kind == "text" else phone_text_pairs)
        self.may_wait = isinstance(source, AsyncIterable)  # only an async input waits
        first = self._first_round(source)
        try:
            async with anyio.create_task_group() as watch:
                if self.stop is not None:
                    watch.start_soon(self._relay, self.stop)
                watch.start_soon(self._unwait)
                await self._round(self._interleaved(first))
                self.failing_over = True
                while self.failovers and not self._stopped():
                    self.queued.extend(self.failovers)
                    self.failovers.clear()
                    await self._round(self._interleaved(self._dequeue()))
                watch.cancel_scope.cancel()
        except anyio.get_cancelled_exc_class():
            with anyio.CancelScope(shield=True):  # read, and not sent: failed, as in a send
                await to_the_end(self._settled(_CANCELLED))
            raise
        # the caller stopped, or its code failed: what waits is failed where it was (to the
        # end: a cancellation meanwhile found what it had taken out nobody's to settle)
        await to_the_end(self._settled(_CALLER if self.caller_error is not None else _NOT_SENT))
        if self.caller_error is not None:
            raise self.caller_error
        total = dict.fromkeys(Status, 0)
        by_gateway: dict[str, Counts] = {}
        for gateway, counts in self.counts.items():
            for status, n in counts.items():
                total[status] += n
            if gateway is not None:
                by_gateway[gateway] = Counts(
                    **{s.value: n for s, n in counts.items()},
                    requests=self.requests.get(gateway, 0),
                )
        for gateway, requests in self.requests.items():  # all it had failed over
            by_gateway.setdefault(gateway, Counts(requests=requests))
        return RoutedReport(
            accepted=total[Status.ACCEPTED],
            rejected=total[Status.REJECTED],
            suppressed=total[Status.SUPPRESSED],
            failed=total[Status.FAILED],
            uncertain=total[Status.UNCERTAIN],
            requests=sum(self.requests.values()),
            elapsed=clock.now() - started,
            by_gateway=by_gateway,
            outcomes=tuple(self.kept),
            moved=self.moved,
            errors=self.errors,
            stopped=self.stop is not None and self.stop.is_set(),
        )

    def _stopped(self) -> bool:
        return self.halt.is_set()

    async def _relay(self, stop: anyio.Event) -> None:
        await stop.wait()
        self.halt.set()

    async def _unwait(self) -> None:
        """A halt ends a wait for the caller's next entry: an input that gives nothing does
        not hold up a stop (the entry it was making is not read, so it has no outcome)."""
        await self.halt.wait()
        if self.waiting is not None:
            self.waiting.cancel()

    async def _next_item(self, items: AsyncIterator[_Item]) -> _Item | None:
        """The next item, or ``None`` once there is none or a halt ends the wait for it."""
        if self._stopped():  # what was read and waits (held, failovers) settles at the end
            return None
        if not self.may_wait:
            return await anext(items, None)
        with anyio.CancelScope() as self.waiting:
            try:
                return await anext(items, None)
            finally:
                self.waiting = None
        return None

    def _caller_failed(self, error: BaseException) -> None:
        """The caller's code failed: stop reading, let what is on the wire finish, raise it
        at the end (as a client's send does)."""
        if self.caller_error is None:
            self.caller_error = error
        self.halt.set()

    async def _interleaved(self, items: AsyncIterator[_Item]) -> AsyncIterator[_Item]:
        """``items``, with what a gateway has failed meanwhile going on to its next gateway
        before the next one is read: a failover waits for no round to end. (What fails
        after the last is read goes in the next round.)"""
        failovers = self.failovers
        async for item in items:
            if failovers:
                # read and not yet handed out: if the send stops meanwhile, it is settled
                # with what waits
                self.holding = item
                while failovers:
                    yield failovers.popleft()
                self.holding = None
            yield item

    async def _dequeue(self) -> AsyncIterator[_Item]:
        while self.queued:
            yield self.queued.popleft()

    async def _settled(self, reason: str) -> None:
        """The routed send ends before its rounds have: what waits failed with ``reason``,
        and the journal written."""
        await self._settle_failovers(reason)
        await self._journal()

    async def _settle_failovers(self, reason: str) -> None:
        items = [*self.queued, *self.failovers]
        if self.holding is not None:
            items.append(self.holding)
        self.holding = None
        self.queued.clear()
        self.failovers.clear()
        for item in items:
            if item.refused is not None:  # held before it was handed out: its own verdict
                await self._decide(item, item.status, item.refused, None)
                continue
            where = item.route[item.position - 1] if item.position else None
            await self._decide(item, Status.FAILED, reason, where)

    async def _first_round(self, source: Any) -> AsyncIterator[_Item]:
        index = 0
        indexed = self.resume is not None
        seen = Seen()
        if isinstance(source, AsyncIterable):
            async for entry in source:
                yield self._indexed(entry, seen) if indexed else self._item(index, entry)
                index += 1
        else:
            for entry in source:
                yield self._indexed(entry, seen) if indexed else self._item(index, entry)
                index += 1
                if index % 256 == 0:
                    await anyio.lowlevel.checkpoint()

    def _indexed(self, pair: tuple[int, Any], seen: Seen) -> _Item:
        """A journaled ``(index, entry)`` row; rejected where its index came before (its
        outcomes would be told apart by nothing)."""
        index, entry = pair
        if type(index) is int and index >= 0 and not seen.add(index):
            why = f"its index {shown(index)} repeats an earlier entry's in this send"
            return _Item(index, entry, (), 0, why)
        return self._item(index, entry)

    def _canonical(self, entry: Any) -> Any:
        """The entry with its number in international digits, as the gateways get it."""
        text = self.kind == "text"
        raw = entry if text else _first(entry)
        if self.router.default_region is None:
            raw = _international(raw)
        digits = self.router._phones.normalise(raw)
        return digits if text else (digits, *tuple(entry)[1:])

    def _item(self, index: int, entry: Any) -> _Item:
        """The entry with its number in international digits (each gateway would read a
        national number as its own country's), and its route."""
        router = self.router
        try:
            entry = self._canonical(entry)
            digits = entry if self.kind == "text" else entry[0]
            region = phonenumbers.region_code_for_number(phonenumbers.parse("+" + digits))
        except InvalidPhone as e:
            return _Item(index, entry, (), 0, str(e))
        except phonenumbers.NumberParseException:
            return _Item(index, entry, (), 0, "not a phone number")
        except Exception:  # an entry of another shape than the send's (a bare number where
            # (phone, text) pairs are read...): rejected, as each gateway's client does
            return _Item(index, entry, (), 0, _NOT_AN_ENTRY[self.kind])
        if self.resume is not None:
            for name, indices in self.resume.maybe_sent.items():
                if index in indices:
                    return self._pinned(index, entry, name)
        if region in router.unavailable and region not in router.routes:
            why = router.unavailable[region]
            reason = f"not sent: no gateway of the {region} route can be used ({why})"
            return _Item(index, entry, (), 0, reason, Status.FAILED)
        if region not in router.routes:
            where = f"numbers of {region}" if region and region != "ZZ" else "this number"
            return _Item(index, entry, (), 0, f"no route for {where}")
        route = tuple(c for c in router.routes[region] if self.kind in c.spec.messages)
        if not route:
            refused = f"no gateway of the {region} route sends {_KINDS[self.kind]}"
            return _Item(index, entry, (), 0, refused)
        return _Item(index, entry, route, 0)

    def _earlier(self) -> list[tuple[tuple[int, Any], bool]]:
        """The earlier runs' settled rows, numbers as the gateways got them."""
        assert self.resume is not None
        if self.earlier is None:
            self.earlier = []
            for (index, entry), sent in self.resume.earlier:
                try:
                    self.earlier.append(((index, self._canonical(entry)), sent))
                except (InvalidPhone, phonenumbers.NumberParseException):
                    continue  # never sent, nor reserved
        return self.earlier

    def _pinned(self, index: int, entry: Any, name: str) -> _Item:
        """A recipient an earlier run had in flight on ``name``: it goes again there alone
        (where the repeat is safe), never through another gateway."""
        client = self.router.clients.get(name)
        if client is None:
            reason = (
                f"in flight on {name} when an earlier run stopped (may have been sent); "
                f"{name} is not in this run's routes"
            )
            return _Item(index, entry, (), 0, reason, Status.UNCERTAIN, pinned=True, on=name)
        return _Item(index, entry, (client,), 0, pinned=True)

    async def _round(self, items: AsyncIterator[_Item]) -> None:
        """Hand each item to its gateway; every gateway of the round sends concurrently."""
        streams: dict[str, tuple[Any, Any]] = {}
        try:
            await self._hand_out(items, streams)
        finally:
            for send, receive in streams.values():
                send.close()
                receive.close()

    async def _hand_out(self, items: AsyncIterator[_Item], streams: dict[str, Any]) -> None:
        async with anyio.create_task_group() as tg:
            try:
                await self._hand_items(items, streams, tg)
            except BaseException as e:  # the caller's input failed: the sends finish theirs
                self._caller_failed(from_caller(e))
            for send, _ in streams.values():
                send.close()

    async def _hand_items(
        self, items: AsyncIterator[_Item], streams: dict[str, Any], tg: Any
    ) -> None:
        while (item := await self._next_item(items)) is not None:
            if self._stopped() and item.refused is None:  # this one was read: it is failed
                gateway = item.route[item.position - 1] if item.position else None
                reason = _CALLER if self.caller_error is not None else _NOT_SENT
                await self._decide(item, Status.FAILED, reason, gateway)
                return  # and nothing more is read
            client = await self._gateway_for(item)
            if client is None:
                continue
            name = client.spec.name
            if name not in streams or self._back(client):
                # its first item of the round, or the first since its cool-down ended (its
                # send stopped when it tripped): a send of its own, which probes it
                self._ended.discard(name)
                for end in streams.get(name, ()):  # the stopped send's: done with
                    end.close()
                streams[name] = anyio.create_memory_object_stream[_Item](256)
                tg.start_soon(self._send_through, client, streams[name][1])
            try:
                await streams[name][0].send(item)
            except anyio.BrokenResourceError:  # that gateway's send stopped: next one
                await self._skipped(item, client, self._closed(client))
            except anyio.get_cancelled_exc_class():
                with anyio.CancelScope(shield=True):
                    await self._decide(item, Status.FAILED, _CANCELLED, client)
                raise

    def _back(self, client: Client[Any]) -> bool:
        """Whether ``client``'s send of this round stopped when it tripped, and its cool-down
        has ended since (it is usable again: ``_gateway_for`` chose it)."""
        name = client.spec.name
        if name not in self._ended or self._stopped() or self._closed(client):
            return False
        return self.router._health[name].failures >= self.router.trip_after

    async def _gateway_for(self, item: _Item) -> Client[Any] | None:
        """The first usable gateway of the item's route from its position, or ``None``
        when the item was given its outcome here."""
        if item.refused is not None:
            await self._decide(item, item.status, item.refused, None)
            return None
        now = self.router._clock.now()
        while item.position < len(item.route):
            client = item.route[item.position]
            if self.router._usable(client, now):
                return client
            item.position += 1
        last = item.route[-1]
        reason = (
            f"not sent: {last.spec.name} is skipped for {self.router.cooldown:g} s after "
            f"{self.router.trip_after} requests in a row that did not go"
        )
        await self._decide(item, Status.FAILED, reason, last)
        return None

    async def _skipped(self, item: _Item, client: Client[Any], why: str = "") -> None:
        item.position += 1
        if item.position < len(item.route) and not self._stopped():
            self.failovers.append(item)
        else:
            reason = why or f"not sent: {client.spec.name} stopped taking recipients"
            await self._decide(item, Status.FAILED, reason, client)

    def _closed(self, client: Client[Any]) -> str:
        """Why ``client`` takes nothing: it was closed under the routed send; else ``""``."""
        if self.plan or client.is_open:
            return ""
        return f"not sent: the {client.spec.name} client was closed"

    async def _send_through(self, client: Client[Any], stream: Any) -> None:
        name = client.spec.name
        closed = self._closed(client)
        if closed:  # its share goes on
            async for item in stream:
                await self._skipped(item, client, closed)
            return
        waiting: dict[int, _Item] = {}
        stop = anyio.Event()
        halt = self.halt

        async def rows() -> AsyncIterator[tuple[int, Any]]:
            # the stream stays open when the send stops reading: what it holds is drained below
            async for item in stream:
                waiting[item.index] = item
                yield item.index, item.entry

        async def note(outcome: Outcome) -> None:
            item = waiting.pop(outcome.index)
            if (
                outcome.status is Status.FAILED
                and item.position + 1 < len(item.route)
                and not self._stopped()
            ):
                item.position += 1
                self.failovers.append(item)
                return
            if item.position:
                self.moved += 1
            await self._emit(outcome)

        report: Report | None = None
        reason = _CANCELLED
        try:
            async with anyio.create_task_group() as watch:

                async def relay() -> None:
                    await halt.wait()
                    stop.set()

                watch.start_soon(relay)
                if self.plan:
                    report = await client.plan(
                        self.message, to=rows(), indexed=True, on_outcome=note, keep="none"
                    )
                else:
                    report = await client.send_message(
                        self.message, to=rows(), **self._options(name, note, stop)
                    )
                watch.cancel_scope.cancel()
        except anyio.get_cancelled_exc_class():
            reason = _CANCELLED
            raise
        except BaseException as e:
            # closed while its send was being prepared (a template looked up): "not open"
            closed = self._closed(client) if _all_of(e, ConfigurationError) else ""
            if not closed:
                reason = _CALLER
                raise
        finally:
            # what the send never read: on to the next gateway, or failed here (all of it
            # failed when the routed send itself is cancelled: it was read, and did not go)
            leftovers = [*waiting.values()]
            waiting.clear()
            while True:
                try:
                    leftovers.append(stream.receive_nowait())
                except (anyio.WouldBlock, anyio.EndOfStream, anyio.ClosedResourceError):
                    break
            stream.close()  # no await since the last receive: nothing slips in between
            self._ended.add(name)
            with anyio.CancelScope(shield=True):
                for item in leftovers:
                    if closed:
                        await self._skipped(item, client, closed)
                    elif report is None:
                        await self._decide(item, Status.FAILED, reason, client)
                    else:
                        await self._skipped(item, client)
        if closed:
            return
        assert report is not None  # the send returned: it did not raise
        self.requests[name] = self.requests.get(name, 0) + report.requests
        if report.error is not None:
            self.errors[name] = str(report.error)

    def _options(self, name: str, note: Any, stop: anyio.Event) -> SendOptions:
        """The options of one gateway's send in a round."""
        observer: BatchObserver = _HealthWatch(self.router, name, stop)
        options: SendOptions = {"indexed": True, "on_outcome": note, "keep": "none", "stop": stop}
        resume = self.resume
        if resume is not None:
            observer = _Both(resume.observers[name], observer)
            options["idempotency_key"] = resume.idempotency_key
            # the rows in flight when a run died are pinned to their gateway, all in the
            # first round: a later one never has them (and its send need not look out)
            if name in resume.maybe_sent and not self.failing_over:
                options["maybe_sent"] = resume.maybe_sent[name]
            if name not in self.held and resume.earlier:
                self.held.add(name)  # each gateway's window, once, before its first read
                options["earlier"] = self._earlier()
            else:  # nothing more to put back, and still a resume that knows what went
                options["earlier"] = ()
        options["observer"] = observer
        return options

    async def _rejection(self, item: _Item, client: Client[Any], patience: float) -> str | None:
        """Why ``client`` would reject the item had it read it (it never did), or ``None``:
        a recipient it cannot ever carry is ``rejected``, not ``failed``, as in its own send.
        What the check needs (a template) is looked up for ``patience`` seconds at most."""
        name = client.spec.name
        if name not in self.jobs:
            with anyio.move_on_after(patience):  # out of time: not known now, asked again later
                try:  # a template may have to be looked up; if that fails, nothing is known
                    self.jobs[name] = await client._prepare(self.message, {})
                except SmsBridgeError:
                    self.jobs[name] = None
        prepared = self.jobs.get(name)
        if prepared is None:
            return None
        return client._rejections(prepared, [item.entry]).get(0)

    async def _decide(
        self, item: _Item, status: Status, reason: str, client: Client[Any] | None
    ) -> None:
        # once begun, a decision is made whatever cancels the send meanwhile: the recipient
        # was read, and is nobody else's to settle (where it can wait, in a task of its own:
        # a shield does not hold against the caller's task.cancel())
        with anyio.CancelScope(shield=True):
            if self.decisions_wait:
                await to_the_end(self._decided(item, status, reason, client))
            else:
                await self._decided(item, status, reason, client)

    async def _decided(
        self, item: _Item, status: Status, reason: str, client: Client[Any] | None
    ) -> None:
        # a recipient no gateway read yet is checked by the one it was going to
        judge = client
        if judge is None and item.position < len(item.route):
            judge = item.route[item.position]
        if status is Status.FAILED and judge is not None and not item.pinned and not self.plan:
            # on the way out of a stopped, cancelled or failed send nothing may be waited on:
            # only a check that needs no lookup (a template not yet fetched) is made
            quick = reason in (_CANCELLED, _CALLER) or self._stopped()
            refused = await self._rejection(item, judge, 0 if quick else _PREPARE_PATIENCE)
            if refused is not None:
                status, reason, client = Status.REJECTED, refused, judge
        phone = item.entry if self.kind == "text" else _first(item.entry)
        if item.position and client is not item.route[0]:
            self.moved += 1
        if item.pinned and status is Status.FAILED:  # it may have gone before: it may now
            status = Status.UNCERTAIN
            reason = f"in flight when an earlier run stopped (may have been sent); now {reason}"
        outcome = Outcome(
            index=item.index,
            phone=phone if isinstance(phone, str) else shown(phone),
            status=status,
            reason=reason,
            gateway=client.spec.name if client is not None else item.on,
        )
        if self.resume is not None:
            self.unsettled.append(outcome)
            if len(self.unsettled) >= 256:
                await self._journal()
        await self._emit(outcome)

    async def _journal(self) -> None:
        """Write the router's own outcomes to the journal."""
        if self.resume is not None and self.unsettled:
            outcomes, self.unsettled = self.unsettled, []
            with anyio.CancelScope(shield=True):
                await self.resume.settle(outcomes)

    async def _emit(self, outcome: Outcome) -> None:
        per = self.counts.setdefault(outcome.gateway, dict.fromkeys(Status, 0))
        per[outcome.status] += 1
        if keeps(self.keep, outcome.status):
            self.kept.append(outcome)
        if self.on_outcome is not None:
            try:
                pending = self.on_outcome(outcome)
                if inspect.isawaitable(pending):
                    await pending
            except BaseException as e:  # every outcome still reaches it; raised at the end
                self._caller_failed(from_caller(e))


_PREPARE_PATIENCE = 10.0  # seconds to look up what checking a recipient needs (a template)

_KINDS = {"text": "texts", "personal": "personal texts", "template": "templates"}
_NOT_AN_ENTRY = {
    "text": "not a phone number",
    "personal": "not a (phone, text) pair",
    "template": "not a (phone, parameters) pair",
}


def _international(raw: Any) -> str:
    """``raw`` as ``+digits`` when it is written internationally (``+``, ``00``, or bare
    digits that make a possible number after a country code); else :class:`InvalidPhone`:
    without a default country, a national number names no route."""
    if isinstance(raw, int) and not isinstance(raw, bool):
        try:
            raw = str(raw)
        except ValueError:  # past Python's digit limit for str()
            raise InvalidPhone("not a phone number: too long") from None
    if not isinstance(raw, str):
        raise InvalidPhone(f"not a phone number: {type(raw).__name__}")
    text = str(raw).strip()
    compact = bare_digits(text)
    reason = unmeant(text, compact)
    if reason is not None:  # as each gateway's own reading would refuse it
        raise InvalidPhone(reason)
    if compact.startswith("00"):
        compact = "+" + compact[2:]
    digits = compact.removeprefix("+")
    if not digits.isdigit() or not digits.isascii():
        # what the gateways read with the full parser (full-width digits, tel:, a trailing
        # comma...) is read the same way, when it is written internationally
        read = parsed(text, None)
        digits = international(read)
    try:
        number: phonenumbers.PhoneNumber | None = phonenumbers.parse("+" + digits)
    except phonenumbers.NumberParseException:
        number = None
    if digits.startswith("0") or number is None or not phonenumbers.is_possible_number(number):
        raise InvalidPhone(
            "no country code: a national number names no route (give +country, or default_region=)"
        )
    return "+" + digits


def _all_of(error: BaseException, kind: type[BaseException]) -> bool:
    """Whether ``error`` is a ``kind``, or a group of nothing else."""
    if isinstance(error, BaseExceptionGroup):
        return all(_all_of(e, kind) for e in error.exceptions)
    return isinstance(error, kind)


def _alone(group: BaseExceptionGroup[BaseException]) -> BaseException:
    """The one exception a group of concurrent sends wraps (the caller's own, as a client's
    send raises it), or the group when there are several."""
    leaves: list[BaseException] = []
    stack: list[BaseException] = [group]
    while stack:
        error = stack.pop()
        if isinstance(error, BaseExceptionGroup):
            stack.extend(error.exceptions)
        else:
            leaves.append(error)
    # each gateway's send refusing the same way (an input error) is one error
    alike = {(type(e), str(e)) for e in leaves}
    return leaves[0] if len(alike) == 1 else group


def _first(entry: Any) -> Any:
    try:
        return entry[0]
    except (TypeError, IndexError, KeyError):
        return entry

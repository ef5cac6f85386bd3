"""Running one seed: the real clients, engine, limiter, duplicate window, journal and adapters
against a fake gateway and (when drawn) a fake Redis, on virtual time.

A run is either the *library* mode (one to three sends at once, on one client or two clients
of the same account, some cancelled or stopped by their caller, maybe the same list again
afterwards) or the *campaign* mode (the command line's journal-backed campaign, its process
killed at drawn moments and resumed until it ends). A routed world runs the library mode
through a :class:`~smsbridge.Router` over one client of each of its gateways, each gateway
with its own fake and network.
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import gc
import os
import random
import shutil
import sqlite3
import tempfile
import warnings
from collections import Counter
from collections.abc import AsyncIterator, Awaitable, Callable, Hashable, Iterator, Sequence
from decimal import Decimal
from typing import Any

import anyio
import msgspec

from ..._campaign import Campaign, Journal, recover_in_flight, run_campaign
from ..._core.client import Client, holder_for
from ..._core.errors import StateBackendError
from ..._core.finish import detached
from ..._core.gateway import Message
from ..._core.limiter import SlidingWindowLimiter
from ..._core.models import Outcome, Report
from ..._core.ranges import MemoryRanges
from ..._core.transport import Timeouts
from ..._core.window import MemoryWindow
from ..._fake import FakeGateway
from ..._router import RoutedReport, Router
from ..._smsclub.client import SmsClub
from ..._smsclub.fake import FakeSmsClub
from ..._smsplus.adapter import Template
from ..._smsplus.client import SmsPlus
from ..._smsplus.fake import FakeSmsPlus
from ..._webcom.client import Webcom
from ..._webcom.fake import FakeWebcom
from ...redis import RedisState, RedisWindow
from .loop import Deadlock, LoopClock, VirtualLoop, World
from .net import WRITER, Process, SimTransport, Wire, Written
from .redis import FakeRedis
from .scenario import SENDER, TEMPLATE, TEMPLATE_ID, Account, Scenario, SendPlan, draw

__all__ = ["SendRecord", "Trace", "run", "run_scenario"]

TOKEN = "sim-token"  # noqa: S105 - the fake gateway's
JOURNALS = "/dev/shm" if os.path.isdir("/dev/shm") else None  # noqa: S108 - fsync is free there


class _Killed(BaseException):
    """The simulated process dies here (kill -9)."""


class SendRecord(msgspec.Struct, kw_only=True):
    """What one send did, as its caller saw it."""

    name: str
    entries: list[int]
    holder: str | None = None
    outcomes: list[Outcome] = msgspec.field(default_factory=list)
    report: Report | RoutedReport | None = None
    raised: str | None = None
    cancelled: bool = False
    stopped: bool = False
    killed: bool = False
    stopped_at: float | None = None
    caller_error: str | None = None
    pulled: int = 0  # entries the send read from its input
    trickled: bool = False  # its input made it wait between entries


@dataclasses.dataclass
class Trace:
    """Everything the oracle reads after a run."""

    scenario: Scenario
    gateways: dict[str, FakeGateway]
    """Each gateway's fake, by the gateway's name."""
    written: list[Written]
    kills: dict[str, float]
    open_at_kill: set[int]
    """The entries a killed campaign run had noted it was about to write, unsettled: whether it
    wrote them, no later run can know."""
    redis: FakeRedis | None
    windows: list[MemoryWindow]
    sends: list[SendRecord]
    journal: dict[int, tuple[str, str | None]] | None
    campaign_holder: str | None
    stats: Counter[str]
    deadlock: str | None
    steps: int
    seconds: float


def _fake(account: Account, world: World) -> FakeGateway:
    tokens = [] if account.bad_token else [TOKEN]
    senders = [] if account.unknown_sender else [SENDER]
    options: dict[str, Any] = {
        "rate_limit": account.gateway_limit,
        "faults": account.faults,
        "clock": lambda: world.now,
        "language": account.language,
    }
    if account.gateway == "smsclub":
        return FakeSmsClub(
            tokens=tokens,
            senders=senders,
            blacklist=account.refused_numbers,
            balance=Decimal(account.balance if account.balance is not None else 1000),
            price=Decimal(1 if account.balance is not None else 0),
            **options,
        )
    if account.gateway == "smsplus":
        return FakeSmsPlus(
            tokens=tokens,
            senders=senders,
            templates={TEMPLATE_ID: TEMPLATE},
            balance=account.balance,
            **options,
        )
    return FakeWebcom(
        tokens=tokens,
        senders=senders,
        stop_list=account.refused_numbers,
        stop_list_errors="document" if account.webcom_document_refusals else "phone",
        sms_left=account.balance,
        held_after=account.held_after,
        **options,
    )


class _World:
    """One run's shared things: the world clock, the gateways, Redis, the random source."""

    def __init__(self, sc: Scenario) -> None:
        self.sc = sc
        self.world = World()
        self.rng = random.Random(sc.seed ^ 0x5EED)
        self.stats: Counter[str] = Counter()
        self.gateways = {a.gateway: _fake(a, self.world) for a in sc.accounts}
        self.redis = (
            FakeRedis(self.world, sc.redis, random.Random(sc.seed ^ 0xBEEF), self.stats)
            if sc.state == "redis"
            else None
        )
        self.written: list[Written] = []
        self.kills: dict[str, float] = {}
        self.open_at_kill: set[int] = set()
        self.wires = {name: Wire(g, self.written, name) for name, g in self.gateways.items()}
        self.windows: list[MemoryWindow] = []
        self.ranges: dict[tuple[Process, str], MemoryRanges] = {}
        self.owners: list[Process] = []
        self.clock = LoopClock()

    def client(
        self,
        process: Process,
        shared: tuple[SlidingWindowLimiter, MemoryWindow | None] | None = None,
        account: Account | None = None,
    ) -> Client[Any]:
        sc = self.sc
        account = account or sc.accounts[0]
        name = account.gateway
        timeouts = Timeouts(connect=2.0, read=sc.read_timeout, total=sc.read_timeout + 5)
        options: dict[str, Any] = {
            "base_url": "http://127.0.0.1:9",
            "rate": sc.rate,
            "window_ttl": sc.window_ttl,
            "concurrency": sc.concurrency,
            "timeouts": timeouts,
            "retry": sc.retry,
            "at_least_once": sc.at_least_once,
            "clock": self.clock,
            "transport": SimTransport(
                self.gateways[name],
                account.net,
                timeouts,
                self.rng,
                process,
                self.stats,
                self.wires[name],
            ),
        }
        if self.redis is not None:
            state = RedisState(
                client=self.redis.client(process),
                provider=name,
                account_id="sim",
                secret=b"s" * 32,
                limit=sc.rate,
                period=1.0,
                margin=0.04,
                window_ttl=sc.window_ttl,
                window_slack=sc.read_timeout + 5.0,
                clock=self.clock,
            )
            options["limiter"] = state.limiter
            if state.window is not None:
                options["window"] = state.window
                _watch_releases(state.window, self.redis.unreleased_by)
        elif shared is not None:
            options["limiter"] = shared[0]
            if shared[1] is not None:
                options["window"] = shared[1]
        if name == "smsclub":
            client: Client[Any] = SmsClub(TOKEN, batch_size=sc.batch_size, **options)
        elif name == "smsplus":
            client = SmsPlus(TOKEN, batch_size=sc.batch_size, **options)
            if sc.routing is not None:
                # as a lone send is given its template (send_template(template=...)), so the
                # routed one's client knows it: a lookup that fails would leave parameters
                # unchecked, and the oracle's bad parameters are refused before any request
                client._templates[TEMPLATE_ID] = Template(id=TEMPLATE_ID, text=TEMPLATE)
        else:
            client = Webcom(TOKEN, batch_size=sc.batch_size, **options)
        if self.redis is not None:
            client.ranges = state.ranges
        else:  # one process's memory, dying with it, from a point that the seed decides
            if (process, name) not in self.ranges:
                start = (sc.seed * 7919 + len(self.ranges) * 104729) % (1 << 31)
                self.ranges[process, name] = MemoryRanges(start)
            client.ranges = self.ranges[process, name]
        if isinstance(client.window, MemoryWindow) and client.window not in self.windows:
            self.windows.append(client.window)
            self.owners.append(process)
        return client

    def entries(self, indices: list[int], indexed: bool) -> Iterator[Any]:
        sc = self.sc
        kind = sc.kind
        for i in indices:
            entry = sc.entries[i]
            if kind == "template":
                item: Any = (entry.raw, entry.params or ())
            elif kind == "personal":
                item = (entry.raw, entry.text)
            else:
                item = entry.raw
            yield (i, item) if indexed else item

    async def send(
        self, client: Client[Any] | Router, to: Any, options: dict[str, Any]
    ) -> Report | RoutedReport:
        sc = self.sc
        if isinstance(client, Router):
            kind = sc.kind
            if kind == "text":
                return await client.send(sc.text, to=to, sender=SENDER, **options)
            message = Message(sender=SENDER, template=TEMPLATE_ID if kind == "template" else None)
            return await client.send_message(message, to=to, **options)
        if isinstance(client, SmsPlus):
            template = Template(id=TEMPLATE_ID, text=TEMPLATE)
            return await client.send_template(
                TEMPLATE_ID, sender=SENDER, to=to, template=template, **options
            )
        assert isinstance(client, SmsClub | Webcom)
        if sc.personal:
            return await client.send_personal(to, sender=SENDER, **options)
        return await client.send(sc.text, to=to, sender=SENDER, **options)


def _watch_releases(window: RedisWindow, failed: set[str]) -> None:
    """Note the sends (by name) a release of which ``window`` gave up on (Redis out of reach
    past the patience, or refusing), or their send gave up on (stopping)."""
    release = window.release

    async def watched(keys: Sequence[Hashable], holder: str, indices: Sequence[int]) -> None:
        try:
            await release(keys, holder, indices)
        except (StateBackendError, asyncio.CancelledError):  # out of reach, or given up on
            failed.add(WRITER.get())
            raise

    window.release = watched  # type: ignore[method-assign]


def _bury(loop: VirtualLoop) -> None:
    """Close a dead process's loop: its coroutines are closed now (not by the collector at
    some later, unrepeatable moment), and nothing of theirs reaches the world."""
    closed: set[asyncio.Task[Any]] = set()
    previous = asyncio._get_running_loop()
    # a coroutine's ``finally`` that schedules work as it is closed (to_the_end: a task of
    # its own) schedules it here, where it is closed in turn, not on whatever loop is current
    asyncio._set_running_loop(loop)
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")  # coroutines never started are closed unawaited
            while tasks := asyncio.all_tasks(loop) - closed:
                for task in tasks:
                    closed.add(task)
                    with contextlib.suppress(BaseException):
                        task.get_coro().close()
    finally:
        asyncio._set_running_loop(previous)
    loop.close()


def _library(w: _World, sends: list[SendRecord]) -> tuple[str | None, int]:
    """The library mode: one process; if it is killed (a keyed send's process, as drawn),
    another that runs the same sends again, as their caller would after the crash."""
    deadlock, steps, killed = _library_process(w, sends, first=True)
    if not killed or deadlock is not None:
        return deadlock, steps
    w.world.now += w.rng.uniform(0.0, 3.0)  # the restart
    deadlock, more, _ = _library_process(w, sends, first=False)
    return deadlock, steps + more


def _library_process(
    w: _World, sends: list[SendRecord], *, first: bool
) -> tuple[str | None, int, bool]:
    sc = w.sc
    process = Process("library" if first else "library, again")
    loop = VirtualLoop(w.world)
    actions: dict[int, list[Any]] = {}
    mine: list[SendRecord] = []

    async def main() -> None:
        shared = None
        if sc.clients > 1 and w.redis is None:
            shared = (
                SlidingWindowLimiter(sc.rate, clock=w.clock),
                MemoryWindow(sc.window_ttl, slack=sc.read_timeout + 5.0, clock=w.clock)
                if sc.window_ttl
                else None,
            )
        if sc.routing is None:
            clients = [w.client(process, shared) for _ in range(sc.clients)]
        else:
            clients = [w.client(process, account=a) for a in sc.routing.accounts]
        async with contextlib.AsyncExitStack() as stack:
            for client in clients:
                await stack.enter_async_context(client)
            senders: list[Client[Any] | Router] = [*clients]
            if sc.routing is not None:
                senders = [_router(w, clients)]
            rounds = [sc.sends, sc.sends] if sc.repeat and first else [sc.sends]
            for round_number, plans in enumerate(rounds):
                tasks = []
                for n, plan in enumerate(plans):
                    key = f"{sc.seed}/retry" if sc.retry_key else f"{sc.seed}/{round_number}/{n}"
                    routed = sc.routing is not None  # a routed send takes no idempotency key
                    record = SendRecord(
                        name=f"send {round_number}.{n}" if first else f"send again {n}",
                        entries=plan.entries,
                        holder=None if routed else holder_for(key),
                    )
                    sends.append(record)
                    mine.append(record)
                    stop = anyio.Event()
                    options: dict[str, Any] = {
                        "on_outcome": record.outcomes.append,
                        "keep": "none",
                        "stop": stop,
                    }
                    if not routed:
                        options["idempotency_key"] = key
                    task = asyncio.ensure_future(
                        _one(w, senders[plan.client], plan, options, record)
                    )
                    tasks.append(task)
                    if first and round_number == 0 and plan.cancel_at is not None:
                        actions.setdefault(plan.cancel_at, []).append(("cancel", task, record))
                    if first and round_number == 0 and plan.stop_at is not None:
                        actions.setdefault(plan.stop_at, []).append(("stop", stop, record))
                    if first and round_number == 0 and plan.cancel_in_store is not None:
                        in_store[record.name] = [plan.cancel_in_store, task, record]
                await asyncio.gather(*tasks, return_exceptions=True)
                # a send cancelled again after the settling's patience returned at once,
                # and settles on by itself, with this process still alive
                while pending := detached():
                    await asyncio.gather(*pending, return_exceptions=True)

    # sends to cancel at their n-th command to the shared store: [n, task, record] by name
    in_store: dict[str, list[Any]] = {}

    def on_command(writer: str) -> None:
        cancel = in_store.get(writer)
        if cancel is not None:
            cancel[0] -= 1
            if cancel[0] == 0 and not cancel[1].done():
                del in_store[writer]
                cancel[2].cancelled = True
                cancel[2].stopped_at = w.world.now
                w.stats["caller: cancelled a send while it waited on Redis"] += 1
                cancel[1].cancel()

    if w.redis is not None:
        w.redis.on_command = on_command

    def on_step(step: int) -> None:
        if first and step == sc.library_kill_at:
            raise _Killed
        for kind, target, record in actions.pop(step, ()):
            if kind == "cancel" and not target.done():
                record.cancelled = True
                record.stopped_at = w.world.now
                target.cancel()
            elif kind == "stop":
                record.stopped = True
                record.stopped_at = w.world.now
                target.set()

    loop.on_step = on_step
    try:
        loop.run_until_complete(main())
        return None, loop.steps, False
    except _Killed:
        process.alive = False
        w.kills[process.name] = w.world.now  # the writer of its requests died now
        for record in mine:
            if record.report is None and record.raised is None:
                record.killed = True
        w.stats["kill -9"] += 1
        return None, loop.steps, True
    except Deadlock as e:
        return f"deadlock: {e}", loop.steps, False
    finally:
        if not loop.is_closed():
            _bury(loop)


class _Router(Router):
    """The router, counting in the run's statistics each time a gateway trips."""

    stats: Counter[str]

    def _record(self, gateway: str, went: bool) -> bool:
        tripped = super()._record(gateway, went)
        if tripped:
            self.stats["routed: a gateway tripped"] += 1
        return tripped


def _router(w: _World, clients: list[Client[Any]]) -> Router:
    """The routed world's router over one client of each of its gateways."""
    routing = w.sc.routing
    assert routing is not None
    by_name = {c.spec.name: c for c in clients}
    router = _Router(
        {country: [by_name[n] for n in names] for country, names in routing.routes.items()},
        trip_after=routing.trip_after,
        cooldown=routing.cooldown,
        clock=w.clock,
        default_region=routing.default_region,
        unavailable=routing.unavailable,
    )
    router.stats = w.stats
    return router


class CallerError(Exception):
    """The caller's own code failed (its callback or its input), as drawn."""


class CallerInterrupt(BaseException):
    """The caller's own code raised what is no Exception (as KeyboardInterrupt is)."""


def _caller_raises(sc: Scenario, what: str) -> BaseException:
    """What the caller's failing code raises: an Exception, a BaseException of its own, or
    a CancelledError where nothing cancelled the send (a future it awaited, cancelled
    elsewhere), by the seed (no draw: the scenarios stay as they were)."""
    kind = sc.seed % 3
    if kind == 1:
        return CallerInterrupt(f"the {what} failed")
    if kind == 2:
        return asyncio.CancelledError(f"the {what} failed")
    return CallerError(f"the {what} failed")


async def _one(
    w: _World,
    client: Client[Any] | Router,
    plan: SendPlan,
    options: dict[str, Any],
    record: SendRecord,
) -> None:
    WRITER.set(record.name)
    sc = w.sc
    first = record.name == "send 0.0"
    to: Any = w.entries(plan.entries, False)
    if first and sc.input_fails_at is not None:
        to = _failing(to, sc.input_fails_at, _caller_raises(sc, "input"))
        record.caller_error = "input"
    to = _counting(to, record)
    if first and sc.callback_fails_at is not None:
        options["on_outcome"] = _failing_callback(
            record, sc.callback_fails_at, _caller_raises(sc, "callback")
        )
        record.caller_error = "callback"
    if plan.spread is not None:
        to, options["on_outcome"] = _spread(to, options["on_outcome"], plan.spread)
        options["indexed"] = True
    if plan.trickle is not None:
        to = _trickling(to, plan.trickle, record)
    if plan.cancel_again is not None:
        task = asyncio.current_task()
        assert task is not None
        options["on_outcome"] = _again(options["on_outcome"], record, plan.cancel_again, task, w)
    try:
        record.report = await w.send(client, to, options)
        if isinstance(getattr(record.report, "error", None), StateBackendError):
            w.stats["redis: a send stopped, out of reach past its patience"] += 1
    except (asyncio.CancelledError, CallerInterrupt, Exception) as e:
        if record.killed:  # its process died: what its coroutines raise as they are closed
            raise  # (in the burial) is nobody's outcome
        record.raised = _raised(record, e)


def _raised(record: SendRecord, e: BaseException) -> str:
    """What a send raised, as its record tells it."""
    if isinstance(e, asyncio.CancelledError):
        # the send's own cancellation, or what the caller's code raised (nobody cancelled)
        mine = record.caller_error is not None and not record.cancelled and str(e)
        return f"caller: {e}" if mine else "cancelled"
    if isinstance(e, CallerError | CallerInterrupt):
        return f"caller: {e}"
    return f"{type(e).__name__}: {e}"


def _spread(
    entries: Iterator[Any], note: Callable[[Outcome], None], spread: int
) -> tuple[Iterator[Any], Callable[[Outcome], None]]:
    """``entries`` indexed ``p * spread + 3``, and ``note`` given each outcome under its
    entry's position again (as the oracle reads every send's outcomes)."""

    def indexed() -> Iterator[Any]:
        for position, entry in enumerate(entries):
            yield position * spread + 3, entry

    def by_position(outcome: Outcome) -> None:
        note(msgspec.structs.replace(outcome, index=(outcome.index - 3) // spread))

    return indexed(), by_position


def _again(
    note: Callable[[Outcome], None],
    record: SendRecord,
    after: int,
    task: asyncio.Task[Any],
    w: _World,
) -> Callable[[Outcome], Awaitable[None]]:
    """``note`` as an async callback that, once the send is cancelled, cancels it again at
    the ``after``-th outcome after that: the caller's code cancelling twice (a timeout in a
    task group), while the send settles what it read."""
    seen = 0

    async def collect(outcome: Outcome) -> None:
        nonlocal seen
        note(outcome)
        if record.cancelled:
            seen += 1
            if seen == after + 1 and not task.done():
                w.stats["caller: cancelled a send again while it settled"] += 1
                task.cancel()
        await asyncio.sleep(0)

    return collect


def _counting(entries: Iterator[Any], record: SendRecord) -> Iterator[Any]:
    for entry in entries:
        record.pulled += 1
        yield entry


async def _trickling(
    entries: Iterator[Any], pause: float, record: SendRecord
) -> AsyncIterator[Any]:
    """``entries`` as an async input that waits ``pause`` seconds after every seventh: the
    send holds a part-filled chunk meanwhile (what a stop, a cancellation or a kill then
    finds)."""
    for n, entry in enumerate(entries, 1):
        yield entry
        if n % 7 == 0:
            record.trickled = True
            await asyncio.sleep(pause)


def _failing(entries: Iterator[Any], at: int, error: BaseException) -> Iterator[Any]:
    for n, entry in enumerate(entries):
        if n == at:
            raise error
        yield entry


def _failing_callback(record: SendRecord, at: int, error: BaseException) -> Any:
    def collect(outcome: Outcome) -> None:
        record.outcomes.append(outcome)
        if len(record.outcomes) == at + 1:
            raise error

    return collect


def _open_intents(path: str) -> set[int]:
    """The entries of the intents open in the journal at ``path``, as a dead run left it."""
    with contextlib.closing(sqlite3.connect(path)) as db:
        rows = db.execute("SELECT indices FROM intents WHERE open = 1").fetchall()
    return {
        i
        for (blob,) in rows
        for i in msgspec.json.decode(blob, type=tuple[list[int], list[str]])[0]
    }


def _campaign(w: _World, sends: list[SendRecord]) -> tuple[str | None, int, dict[int, Any], str]:
    sc = w.sc
    folder = tempfile.mkdtemp(prefix="smsbridge-sim-", dir=JOURNALS)
    path = os.path.join(folder, "campaign.journal")
    campaign = Campaign(key=f"sim-{sc.seed}", description="simulated", total=len(sc.entries))
    send_key = w.rng.randbytes(16)
    steps = 0
    try:
        for run_number in range(len(sc.kills) + 1):
            kill_at = sc.kills[run_number] if run_number < len(sc.kills) else None
            record = SendRecord(name=f"run {run_number}", entries=list(range(len(sc.entries))))
            sends.append(record)
            process = Process(f"run {run_number}")
            loop = VirtualLoop(w.world)
            stop = anyio.Event()
            stop_at = sc.campaign_stop_at if run_number == 0 else None

            def on_step(
                step: int,
                kill_at: int | None = kill_at,
                stop_at: int | None = stop_at,
                stop: anyio.Event = stop,
                record: SendRecord = record,
            ) -> None:
                if step == kill_at:
                    raise _Killed
                if step == stop_at:
                    record.stopped = True
                    record.stopped_at = w.world.now
                    stop.set()

            async def offload(function: Any, *args: Any, process: Process = process) -> Any:
                process.check()
                await anyio.lowlevel.checkpoint()
                process.check()
                return function(*args)

            async def main(
                process: Process = process,
                record: SendRecord = record,
                stop: anyio.Event = stop,
                offload: Any = offload,
            ) -> None:
                WRITER.set(record.name)
                journal = Journal(path, clock=lambda: w.world.now)
                try:
                    key = journal.bind(campaign, send_key)
                    client = w.client(process)
                    recover_in_flight(journal, client)  # as the command line does

                    def collect(outcome: Outcome) -> None:
                        process.check()
                        record.outcomes.append(outcome)

                    async def send(
                        rows: Iterator[tuple[int, Any]], options: dict[str, Any]
                    ) -> Report:
                        options["on_outcome"] = collect
                        if "earlier" in options:
                            options["earlier"] = (
                                (next(w.entries([row[0]], True)), sent)
                                for row, sent in options["earlier"]
                            )
                        report = await w.send(client, _entries(w, rows), options)
                        assert isinstance(report, Report)  # a campaign is never routed
                        return report

                    async with client:
                        record.report = await run_campaign(
                            send,
                            lambda: iter([(i, None) for i in range(len(sc.entries))]),
                            client=client,
                            journal=journal,
                            send_key=key,
                            stop=stop,
                            offload=offload,
                        )
                finally:
                    if process.alive:
                        journal.close()

            loop.on_step = on_step
            try:
                loop.run_until_complete(main())
            except _Killed:
                process.alive = False
                w.kills[process.name] = w.world.now
                w.open_at_kill.update(_open_intents(path))
                record.killed = True
                w.stats["kill -9"] += 1
            except Deadlock as e:
                return f"deadlock: {e}", steps + loop.steps, {}, ""
            finally:
                steps += loop.steps
                _bury(loop)
            w.world.now += w.rng.uniform(0.0, 3.0)  # the restart
        journal = Journal(path, create=False)
        try:
            final = {
                idx: (status, message_id)
                for idx, status, message_id in journal._db.execute(
                    "SELECT idx, status, message_id FROM outcomes"
                )
            }
        finally:
            journal.close()
        return None, steps, final, holder_for(send_key)
    finally:
        shutil.rmtree(folder, ignore_errors=True)


def _entries(w: _World, rows: Iterator[tuple[int, Any]]) -> Iterator[Any]:
    """The campaign's ``(index, entry)`` rows, with the entries filled in as the send needs."""
    for index, _ in rows:
        yield from w.entries([index], True)


def run(seed: int) -> Trace:
    """Run the scenario of ``seed``."""
    return run_scenario(draw(seed))


def run_scenario(sc: Scenario) -> Trace:
    """Run one scenario (a drawn one, or one kept as a regression test).

    The cyclic garbage collector is kept out of the run: a finaliser it would call at a
    moment of its choosing (an async generator's, a connector's) adds loop steps, and the
    caller's cancellation, stop and kill are drawn as loop steps."""
    gc.disable()
    try:
        return _run(sc)
    finally:
        gc.enable()


def _run(sc: Scenario) -> Trace:
    random.seed(sc.seed)  # retry jitter draws from the module's random source
    w = _World(sc)
    sends: list[SendRecord] = []
    journal: dict[int, Any] | None = None
    holder: str | None = None
    if sc.mode == "library":
        deadlock, steps = _library(w, sends)
    else:
        deadlock, steps, journal, holder = _campaign(w, sends)
    for wire in w.wires.values():
        wire.deliver(float("inf"))
    if w.redis is not None:
        w.redis.settle()
    return Trace(
        scenario=sc,
        gateways=w.gateways,
        written=w.written,
        kills=w.kills,
        open_at_kill=w.open_at_kill,
        redis=w.redis,
        windows=[win for win, p in zip(w.windows, w.owners, strict=True) if p.alive],
        sends=sends,
        journal=journal,
        campaign_holder=holder,
        stats=w.stats,
        deadlock=deadlock,
        steps=steps,
        seconds=w.world.now - 1000.0,
    )

"""Routed sends against fake gateways over loopback: each recipient to its country's first
gateway, on to the next only when its outcome proves the message did not go, one duplicate
window over the route, a dead gateway skipped for a cool-down. Every check reads what the
fakes recorded: each number at most once across them."""

from __future__ import annotations

import asyncio
import contextlib
import re
from collections import Counter
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator, Sequence
from typing import Any

import anyio
import pytest

from smsbridge import (
    ConfigurationError,
    Event,
    HttpRequest,
    HttpResponse,
    InvalidInputError,
    MemoryWindow,
    Message,
    MockTransport,
    Outcome,
    RetryPolicy,
    RetryScheduled,
    Router,
    SmsClub,
    SmsPlus,
    Status,
    Template,
    Timeouts,
    Webcom,
)
from smsbridge._core.gateway import Batch
from smsbridge._core.http1 import Http1Transport
from smsbridge._router import RoutedResume
from smsbridge.testing import FakeClock, FakeSmsClub, FakeSmsPlus, FakeWebcom, Faults

from ..conftest import free_port
from ..helpers import TOKEN, then_waiting

UA = [f"38050{i:07d}" for i in range(400)]
RU = [f"7916{i:07d}" for i in range(50)]


@pytest.fixture
async def webcom() -> AsyncIterator[FakeWebcom]:
    """A fake Webcom on loopback, unlimited."""
    async with FakeWebcom(tokens=[TOKEN], rate_limit=None) as fake:
        yield fake


class _Delaying:
    """The real transport, each request first awaiting ``wait`` (a test's pause)."""

    time_limits = True

    def __init__(self, url: str, wait: Callable[[HttpRequest], Awaitable[None]]) -> None:
        self.inner = Http1Transport(url)
        self.wait = wait

    async def send(self, request: HttpRequest, ready: Any = None) -> HttpResponse:
        await self.wait(request)
        return await self.inner.send(request, ready)

    async def aclose(self) -> None:
        await self.inner.aclose()


def _sent_once(*fakes: FakeSmsClub | FakeWebcom) -> Counter[str]:
    """Every number the fakes sent, counted across them."""
    return Counter(m.phone for fake in fakes for m in fake.record().sent)


async def test_a_dead_gateway_fails_over_and_costs_a_few_requests_not_one_per_batch(
    clock: FakeClock, webcom: FakeWebcom
) -> None:
    """SMS Club down (nothing listens): every UA number accepted through Webcom, each once;
    SMS Club was tried for a handful of its 4 batches, not all of them, before being
    skipped; RU numbers went to Webcom from the start."""
    club_events: list[Event] = []
    dead = f"http://127.0.0.1:{free_port()}"
    async with (
        SmsClub(
            TOKEN, base_url=dead, clock=clock, concurrency=2, on_event=club_events.append
        ) as club,
        Webcom(token=TOKEN, base_url=webcom.url, clock=clock) as wc,
    ):
        router = Router({"UA": [club, wc], "RU": [wc]}, trip_after=2, clock=clock)
        report = await router.send("Sale", to=[*UA, *RU], sender="Shop")
    assert (report.accepted, report.failed, report.uncertain) == (450, 0, 0)
    assert report.by_gateway["webcom"].accepted == 450
    assert report.moved == 400
    assert _sent_once(webcom) == Counter(dict.fromkeys(UA + RU, 1))
    tried = {e.send for e in club_events if isinstance(e, RetryScheduled)}
    retries = [e for e in club_events if isinstance(e, RetryScheduled)]
    assert len(tried) == 1  # one send on SMS Club
    assert len(retries) <= 4 * 3  # at most three batches' retries (concurrency 2, trip at 2)
    assert {o.gateway for o in report.outcomes} == {"webcom"}


async def test_an_answer_that_may_have_gone_never_moves(
    clock: FakeClock, webcom: FakeWebcom
) -> None:
    """SMS Club answering 5xx after sending: those recipients are uncertain on SMS Club and
    none of them reaches Webcom."""
    async with (
        FakeSmsClub(tokens=[TOKEN], rate_limit=None, faults=Faults(error_after=1.0)) as fake,
        SmsClub(TOKEN, base_url=fake.url, clock=clock, repeat_guard=False) as club,
        Webcom(token=TOKEN, base_url=webcom.url, clock=clock) as wc,
    ):
        report = await Router({"UA": [club, wc]}, clock=clock).send(
            "Sale", to=UA[:150], sender="Shop"
        )
    assert (report.uncertain, report.accepted, report.moved) == (150, 0, 0)
    assert report.by_gateway == {"smsclub": report.by_gateway["smsclub"]}
    assert webcom.record().sent == []
    assert _sent_once(fake) == Counter(dict.fromkeys(UA[:150], 1))
    assert not report.ok


async def test_countries_without_a_route_or_a_gateway_for_the_message_are_rejected(
    clock: FakeClock, webcom: FakeWebcom
) -> None:
    """An AZ number whose route has only SMSPlus (templates only), a US number with no route,
    a national number and garbage: rejected with reasons, at no request."""
    async with (
        FakeSmsClub(tokens=[TOKEN], rate_limit=None) as fake,
        SmsClub(TOKEN, base_url=fake.url, clock=clock) as club,
        SmsPlus(TOKEN, base_url="http://127.0.0.1:9", clock=clock) as plus,
        Webcom(token=TOKEN, base_url=webcom.url, clock=clock) as wc,
    ):
        router = Router({"UA": [club], "RU": [wc], "AZ": [plus]}, clock=clock)
        numbers = ["380501234567", "994501234567", "12025550123", "0501234567", "nope", RU[0]]
        report = await router.send("Sale", to=numbers, sender="Shop")
    by_index = {o.index: o for o in report.outcomes}
    assert [by_index[i].status for i in range(6)] == [
        Status.ACCEPTED,
        Status.REJECTED,
        Status.REJECTED,
        Status.REJECTED,
        Status.REJECTED,
        Status.ACCEPTED,
    ]
    assert by_index[1].reason == "no gateway of the AZ route sends texts"
    assert by_index[2].reason == "no route for numbers of US"
    assert by_index[3].reason is not None and "no country code" in by_index[3].reason
    assert [by_index[i].gateway for i in range(6)] == ["smsclub", None, None, None, None, "webcom"]
    assert report.by_gateway["smsclub"].accepted == 1 and report.by_gateway["webcom"].accepted == 1
    assert report.requests == 2


async def test_one_window_over_the_route(clock: FakeClock, webcom: FakeWebcom) -> None:
    """The same number twice, its first gateway down: it goes through Webcom once and the
    repeat is suppressed; sent later through SMS Club directly, the route's window holds it."""
    dead = f"http://127.0.0.1:{free_port()}"
    async with (
        SmsClub(TOKEN, base_url=dead, clock=clock) as club,
        Webcom(token=TOKEN, base_url=webcom.url, clock=clock) as wc,
    ):
        router = Router({"UA": [club, wc]}, clock=clock)
        report = await router.send("Sale", to=[UA[0], UA[1], UA[0]], sender="Shop")
        again = await wc.send("Sale", to=[UA[1]], sender="Shop")
    assert (report.accepted, report.suppressed) == (2, 1)
    assert again.suppressed == 1
    assert _sent_once(webcom) == Counter({UA[0]: 1, UA[1]: 1})


async def test_a_tripped_gateway_is_skipped_until_its_cool_down_ends(
    clock: FakeClock, webcom: FakeWebcom
) -> None:
    """After tripping, the next send does not touch SMS Club at all; after the cool-down one
    request probes it (now up) and its recipients go there again."""
    port = free_port()
    club_events: list[Event] = []
    async with (
        SmsClub(
            TOKEN, base_url=f"http://127.0.0.1:{port}", clock=clock, on_event=club_events.append
        ) as club,
        Webcom(token=TOKEN, base_url=webcom.url, clock=clock) as wc,
    ):
        router = Router({"UA": [club, wc]}, trip_after=1, cooldown=60, clock=clock)
        first = await router.send("A", to=UA[:100], sender="Shop")
        tries = len(club_events)
        second = await router.send("B", to=UA[:100], sender="Shop")
        assert len(club_events) == tries  # skipped: not even a connection attempt
        assert second.by_gateway["webcom"].accepted == 100
        clock.advance(61)
        async with FakeSmsClub(tokens=[TOKEN], rate_limit=None, port=port) as club_fake:
            third = await router.send("C", to=UA[:100], sender="Shop")
    assert first.by_gateway["webcom"].accepted == 100
    assert third.by_gateway["smsclub"].accepted == 100
    assert len(club_fake.record().sent) == 100


async def test_a_gateway_that_tripped_takes_recipients_again_within_the_send_after_its_cool_down(
    clock: FakeClock,
) -> None:
    """A long send (an async input, hours of it): the only gateway of a route trips early on
    and its share of the send stops; once its cool-down has ended, the next recipients probe
    it again in the same send and go. Before, the rest of the send went to the next gateway
    of the route, or (the only one) ended failed without a request."""
    port = free_port()
    up = anyio.Event()

    async def numbers() -> AsyncIterator[str]:
        for phone in UA[:5]:
            yield phone
        await anyio.sleep(0.3)
        clock.advance(120)  # past the cool-down
        up.set()
        for phone in UA[5:10]:
            await anyio.sleep(0.05)
            yield phone

    seen: list[Outcome] = []
    all_in = anyio.Event()

    def note(outcome: Outcome) -> None:
        seen.append(outcome)
        if len(seen) == 10:
            all_in.set()

    async with SmsClub(
        TOKEN, base_url=f"http://127.0.0.1:{port}", clock=clock, batch_size=1, rate=1000
    ) as club:
        router = Router({"UA": [club]}, trip_after=1, cooldown=60, clock=clock)
        async with anyio.create_task_group() as tg:
            tg.start_soon(lambda: router.send("A", to=numbers(), sender="Shop", on_outcome=note))
            await up.wait()
            async with FakeSmsClub(tokens=[TOKEN], rate_limit=None, port=port) as fake:
                with anyio.fail_after(10):
                    await all_in.wait()
    by_index = {o.index: o.status for o in seen}
    assert [by_index[i] for i in range(5, 10)] == [Status.ACCEPTED] * 5
    assert {by_index[i] for i in range(5)} == {Status.FAILED}
    assert sorted(m.phone for m in fake.record().sent) == sorted(UA[5:10])


@pytest.mark.parametrize(
    ("message", "said"),
    [
        (Message(sender="Shop", text="a\ud800b"), "lone surrogate"),
        (Message(sender="Shop", text=" "), "text must be a non-empty string"),
        (Message(sender="ABCDEFGHIJKL", text="hi"), "not a valid sender name"),
        ("Sale", "a message is a smsbridge.Message"),
    ],
)
async def test_a_message_no_gateway_can_send_is_one_error_of_a_routed_send_and_plan(
    clock: FakeClock, message: Any, said: str
) -> None:
    """Each gateway refusing the same message: one InvalidInputError, where the dry run
    raised an ExceptionGroup of them (a 79-line traceback at the command line)."""
    async with (
        SmsClub(TOKEN, base_url=f"http://127.0.0.1:{free_port()}", clock=clock) as club,
        Webcom(token=TOKEN, base_url=f"http://127.0.0.1:{free_port()}", clock=clock) as wc,
    ):
        router = Router({"UA": [club, wc]}, clock=clock)
        for call in (router.plan, router.send_message):
            with pytest.raises(InvalidInputError, match=re.escape(said)):
                await call(message, to=[UA[0]])


def test_bad_routes_are_refused() -> None:
    """An unknown country, an empty route, two clients of one gateway, and a route naming
    one twice (its failovers went back into the send that had read them, which now rejects
    an index it has read: surely unsent recipients would have ended ``rejected``)."""
    club, other = SmsClub(TOKEN), SmsClub("other-token")
    with pytest.raises(ConfigurationError, match="unknown country"):
        Router({"XX": [club]})
    with pytest.raises(ConfigurationError, match="names no gateway"):
        Router({"UA": []})
    with pytest.raises(ConfigurationError, match="two smsclub clients"):
        Router({"UA": [club], "RU": [other]})
    with pytest.raises(ConfigurationError, match="the route of UA names a gateway twice"):
        Router({"UA": [club, club]})
    # names, a client alone, nothing, a generator (used up by a check): one line each
    for route in (["smsclub"], "smsclub", [club, None], club, None, 5, (c for c in [club])):
        with pytest.raises(ConfigurationError, match="the route of UA is a list of clients"):
            Router({"UA": route})  # type: ignore[dict-item]
    with pytest.raises(ConfigurationError, match="a route's country is a region code"):
        Router({380: [club]})  # type: ignore[dict-item]
    with pytest.raises(ConfigurationError, match="routes are a mapping"):
        Router([("UA", [club])])  # type: ignore[arg-type]
    with pytest.raises(ConfigurationError, match="two routes of UA"):
        Router({"UA": [club], "ua": [club]})
    with pytest.raises(ConfigurationError, match="unavailable maps a country"):
        Router({"UA": [club]}, unavailable=["RU"])  # type: ignore[arg-type]
    with pytest.raises(ConfigurationError, match="trip_after is a whole number"):
        Router({"UA": [club]}, trip_after="3")  # type: ignore[arg-type]
    with pytest.raises(ConfigurationError, match="cooldown is a number"):
        Router({"UA": [club]}, cooldown="60")  # type: ignore[arg-type]


@pytest.mark.parametrize("stop", [False, True], ids=["no stop", "a stop event"])
async def test_every_recipient_once_when_a_gateway_trips_mid_stream(
    clock: FakeClock, webcom: FakeWebcom, stop: bool
) -> None:
    """SMS Club refuses the token and trips while its stream still holds recipients: what
    it never read moves on too. (Two of 2,000 were lost once the caller passed a stop event:
    the stream was closed with them in it.)"""
    import anyio

    numbers = [f"38067{2_000_000 + i}" for i in range(2000)]
    async with (
        FakeSmsClub(tokens=["another"], rate_limit=None) as club_fake,
        SmsClub(TOKEN, base_url=club_fake.url, clock=clock, rate=1000) as club,
        Webcom(token=TOKEN, base_url=webcom.url, clock=clock, rate=1000) as wc,
    ):
        seen: list[int] = []
        options = {"stop": anyio.Event()} if stop else {}
        report = await Router({"UA": [club, wc]}, clock=clock).send(
            "Sale",
            to=numbers,
            sender="Shop",
            on_outcome=lambda o: seen.append(o.index),
            keep="none",
            **options,  # type: ignore[arg-type]
        )
    assert sorted(seen) == list(range(2000))
    assert report.accepted == 2000
    assert _sent_once(webcom) == Counter(dict.fromkeys(numbers, 1))


async def test_numbers_reach_every_gateway_in_international_form(
    clock: FakeClock, webcom: FakeWebcom
) -> None:
    """With default_region="UA", a Ukrainian national number goes to Webcom (whose home is
    Russia) as 380..., not as 7050...; without it, national and bare numbers are rejected."""
    async with Webcom(token=TOKEN, base_url=webcom.url, clock=clock) as wc:
        routed = Router({"UA": [wc]}, default_region="UA", clock=clock)
        report = await routed.send("Sale", to=["0501234567", "050 123 45 68"], sender="Shop")
        strict = Router({"UA": [wc]}, clock=clock)
        refused = await strict.send(
            "Sale", to=["501234569", "(050) 123-45-70", "+380501234571"], sender="Shop"
        )
    assert report.accepted == 2
    assert [o.status for o in refused.outcomes] != []
    by_index = {o.index: o for o in refused.outcomes}
    assert by_index[0].status is Status.REJECTED and by_index[1].status is Status.REJECTED
    assert "no country code" in (by_index[1].reason or "")
    assert by_index[2].status is Status.ACCEPTED
    assert sorted(m.phone for m in webcom.record().sent) == [
        "380501234567",
        "380501234568",
        "380501234571",
    ]


async def test_a_router_reads_numbers_as_its_gateways_do(
    clock: FakeClock, webcom: FakeWebcom
) -> None:
    """Without default_region, an international number with letters, a star, an extension or
    a float's .0 is rejected as each gateway's own reading rejects it: the router's reading
    sent '+380 50 TAXI 777' to 380508294777, and extensions dropped."""
    wrong = [
        ("+380 50 TAXI 777", "letters in it"),
        ("+380501234567 ext 12", "letters in it"),
        ("+380501234568#12", "it has an extension"),
        ("+380 50 123 45 69;ext=9", "letters in it"),
        ("+38050123*4570", "not a phone number"),
        ("+380501234571.0", "written as a decimal"),
        ("\u200b" * 56 + "+380501234573", "too long"),  # as long as a client's reading allows
    ]
    async with Webcom(token=TOKEN, base_url=webcom.url, clock=clock) as wc:
        report = await Router({"UA": [wc]}, clock=clock).send(
            "Sale", to=[raw for raw, _ in wrong] + ["\u200e+380501234572"], sender="Shop"
        )
    by_index = {o.index: o for o in report.outcomes}
    for i, (_, said) in enumerate(wrong):
        assert by_index[i].status is Status.REJECTED, by_index[i]
        assert said in (by_index[i].reason or "")
    assert by_index[len(wrong)].status is Status.ACCEPTED
    assert [m.phone for m in webcom.record().sent] == ["380501234572"]


async def test_the_callers_own_error_comes_out_bare(clock: FakeClock, webcom: FakeWebcom) -> None:
    """An on_outcome that raises: the routed send raises that exception, as a client's send
    does, not a group of groups."""

    def boom(outcome: object) -> None:
        raise RuntimeError("boom")

    async with Webcom(token=TOKEN, base_url=webcom.url, clock=clock) as wc:
        with pytest.raises(RuntimeError, match="boom"):
            await Router({"RU": [wc]}, clock=clock).send(
                "Sale", to=RU[:3], sender="Shop", on_outcome=boom
            )


async def test_a_cancelled_routed_send_gives_every_recipient_it_read_one_outcome(
    clock: FakeClock, webcom: FakeWebcom
) -> None:
    """The caller's task cancelled mid-send, with SMS Club refusing and Webcom carrying the
    rest: every number the router read has exactly one outcome, the accepted ones were sent,
    and no number it did not call accepted or uncertain was sent."""
    import anyio

    numbers = [f"38067{3_000_000 + i}" for i in range(3000)]
    read: list[str] = []
    outcomes: list[Any] = []

    def source() -> Any:
        for n in numbers:
            read.append(n)
            yield n

    async with (
        FakeSmsClub(tokens=["another"], rate_limit=None) as club_fake,
        SmsClub(TOKEN, base_url=club_fake.url, clock=clock, rate=1000) as club,
        Webcom(token=TOKEN, base_url=webcom.url, clock=clock, rate=1000, concurrency=2) as wc,
    ):
        with anyio.CancelScope() as scope:

            def note(outcome: Any) -> None:
                outcomes.append(outcome)
                if len(outcomes) == 700:
                    scope.cancel()

            await Router({"UA": [club, wc]}, clock=clock).send(
                "Sale", to=source(), sender="Shop", on_outcome=note, keep="none"
            )
    assert scope.cancelled_caught
    assert sorted(o.index for o in outcomes) == list(range(len(read)))
    sent = {m.phone for m in webcom.record().sent}
    went = {o.phone for o in outcomes if o.status in (Status.ACCEPTED, Status.UNCERTAIN)}
    assert {o.phone for o in outcomes if o.status is Status.ACCEPTED} <= sent
    assert sent <= went


async def test_a_second_router_keeps_the_window_the_clients_hold(
    clock: FakeClock, webcom: FakeWebcom
) -> None:
    """Routers made one after the other over the same clients share what the first sent (a
    new router once gave them a fresh window, and everything went out again)."""
    async with Webcom(token=TOKEN, base_url=webcom.url, clock=clock) as wc:
        await wc.send("Sale", to=RU[:5], sender="Shop")
        first = await Router({"RU": [wc]}, clock=clock).send("Sale", to=RU[:10], sender="Shop")
        second = await Router({"RU": [wc]}, clock=clock).send("Sale", to=RU[:10], sender="Shop")
    assert (first.accepted, first.suppressed) == (5, 5)
    assert second.suppressed == 10
    assert _sent_once(webcom) == Counter(dict.fromkeys(RU[:10], 1))


async def test_the_callers_failures_and_a_cancel_in_a_failover_round_lose_nobody(
    clock: FakeClock, webcom: FakeWebcom
) -> None:
    """SMS Club down, so everyone fails over. A callback that raises once, an input that
    raises at row 2,500, and a cancellation at Webcom's first outcome: each time every
    recipient read has one outcome, what went out was not cut off, and the caller's own
    error comes out bare."""
    import anyio

    dead = f"http://127.0.0.1:{free_port()}"
    numbers = [f"38067{4_000_000 + i}" for i in range(3000)]

    async def failing_input() -> Any:
        for i, n in enumerate(numbers):
            if i == 2500:
                raise ValueError("row 2500 is broken")
            yield n

    async with (
        SmsClub(TOKEN, base_url=dead, clock=clock, rate=1000) as club,
        Webcom(token=TOKEN, base_url=webcom.url, clock=clock, rate=1000) as wc,
    ):
        router = Router({"UA": [club, wc]}, clock=clock)
        seen: list[Outcome] = []

        def once(outcome: Outcome) -> None:
            seen.append(outcome)
            if len(seen) == 1:
                raise RuntimeError("callback broke")

        with pytest.raises(RuntimeError, match="callback broke"):
            await router.send("A", to=numbers[:500], sender="Shop", on_outcome=once)
        # it stops reading at the failure: what it read, each once
        assert sorted(o.index for o in seen) == list(range(len(seen)))

        seen = []
        with pytest.raises(ValueError, match="row 2500"):
            await router.send("B", to=failing_input(), sender="Shop", on_outcome=seen.append)
        assert sorted(o.index for o in seen) == list(range(2500))
        assert not any(o.status is Status.UNCERTAIN for o in seen)

        seen = []
        with anyio.CancelScope() as scope:

            def cancel_at_first_webcom(outcome: Outcome) -> None:
                seen.append(outcome)
                if outcome.gateway == "webcom":
                    scope.cancel()

            # SMS Club never skipped: each recipient fails there first, then goes to Webcom
            patient = Router({"UA": [club, wc]}, trip_after=10_000, clock=clock)
            read = 0

            def counted() -> Any:
                nonlocal read
                for n in numbers:
                    read += 1
                    yield n

            await patient.send("C", to=counted(), sender="Shop", on_outcome=cancel_at_first_webcom)
        assert scope.cancelled_caught
        assert read > 0 and sorted(o.index for o in seen) == list(range(read))


async def test_a_stop_ends_the_reading_of_an_endless_input(
    clock: FakeClock, webcom: FakeWebcom
) -> None:
    """stop= means stop reading, as in a client's send: an endless source ends."""
    import anyio

    stop = anyio.Event()

    async def endless() -> Any:
        i = 0
        while True:
            yield f"7916{i:07d}"
            i += 1

    def note(outcome: Outcome) -> None:
        if outcome.index >= 300:
            stop.set()

    async with Webcom(token=TOKEN, base_url=webcom.url, clock=clock, rate=1000) as wc:
        with anyio.fail_after(30):
            report = await Router({"RU": [wc]}, clock=clock).send(
                "Sale", to=endless(), sender="Shop", on_outcome=note, stop=stop
            )
    assert report.stopped and 300 < report.total < 5000


async def test_a_stop_ends_a_wait_on_an_input_that_gives_nothing_more(
    clock: FakeClock, webcom: FakeWebcom
) -> None:
    """An input gives 150 numbers and then waits for ever (a queue nobody fills): a stop
    took effect only when it gave its next entry, so the routed send never ended. Now the
    stop ends the wait (in the router, and in the gateway's send it feeds): each number read
    has its outcome, and the send returns."""
    stop = anyio.Event()
    numbers = [f"7916{i:07d}" for i in range(150)]
    all_read = asyncio.Event()
    source = then_waiting(numbers, all_read)
    async with Webcom(token=TOKEN, base_url=webcom.url, clock=clock, rate=1000) as wc:
        send = asyncio.ensure_future(
            Router({"RU": [wc]}, clock=clock).send("Sale", to=source, sender="Shop", stop=stop)
        )
        await all_read.wait()
        stop.set()
        with anyio.fail_after(10):
            report = await send
    assert report.stopped and report.total == 150
    assert sorted(o.phone for o in report.outcomes) == numbers
    sent = {m.phone for m in webcom.record().sent}
    assert {o.phone for o in report.outcomes if o.status is Status.ACCEPTED} == sent


async def test_a_number_the_first_gateway_refuses_is_rejected_there_and_moves_nowhere(
    clock: FakeClock, webcom: FakeWebcom
) -> None:
    """SMS Club refuses two numbers (its black list): they end rejected on SMS Club, and
    Webcom, the next gateway of their route, never sees them; the rest go through SMS Club."""
    refused = set(UA[:2])
    async with (
        FakeSmsClub(tokens=[TOKEN], rate_limit=None, blacklist=refused) as fake,
        SmsClub(TOKEN, base_url=fake.url, clock=clock) as club,
        Webcom(token=TOKEN, base_url=webcom.url, clock=clock) as wc,
    ):
        report = await Router({"UA": [club, wc]}, clock=clock).send(
            "Sale", to=UA[:150], sender="Shop"
        )
        assert _sent_once(fake, webcom) == Counter(dict.fromkeys(UA[2:150], 1))
    rejected = [o for o in report.outcomes if o.status is Status.REJECTED]
    assert {(o.phone, o.gateway) for o in rejected} == {(n, "smsclub") for n in refused}
    assert report.moved == 0 and webcom.record().requests == []


async def test_a_recipient_its_tripped_gateway_never_read_is_rejected_if_it_could_never_go(
    clock: FakeClock,
) -> None:
    """AZ=[smsplus], SMSPlus down and skipped after its first request: recipients it never
    read end failed (they could go later), except the one whose parameters its template
    cannot fit: rejected with the reason SMSPlus itself gives, as in a send of its own."""
    dead = f"http://127.0.0.1:{free_port()}"
    numbers = [(f"99450{i:07d}", (f"C{i}",)) for i in range(3000)] + [
        ("994509999999", ("x" * 200,))
    ]
    template = Template(id=2, text="Code {1}")
    async with SmsPlus(TOKEN, base_url=dead, clock=clock, concurrency=1) as plus:
        plus._templates[2] = template
        router = Router({"AZ": [plus]}, trip_after=1, clock=clock)
        report = await router.send_message(
            Message(sender="Shop", template=2), to=numbers, keep="all"
        )
    by_index = {o.index: o for o in report.outcomes}
    assert by_index[3000].status is Status.REJECTED and "160" in (by_index[3000].reason or "")
    assert {by_index[i].status for i in range(3000)} == {Status.FAILED}


async def test_a_number_pasted_with_en_dashes_is_routed_and_a_minus_sign_is_not_a_number(
    clock: FakeClock, webcom: FakeWebcom
) -> None:
    """The router reads numbers with the same separators as the gateways: en dashes as
    pasted from a document route the number; a leading minus makes it no number."""
    async with Webcom(token=TOKEN, base_url=webcom.url, clock=clock) as wc:
        numbers: list[str | int] = [
            "+7\u2013916\u2013000\u20130001",
            "-79160000002",
            "tel:+79160000003",
            10**5000,
        ]
        report = await Router({"RU": [wc]}, clock=clock).send("Sale", to=numbers, sender="Shop")
    by_index = {o.index: o for o in report.outcomes}
    assert by_index[0].status is Status.ACCEPTED and by_index[0].phone == "79160000001"
    assert by_index[1].status is Status.REJECTED
    assert by_index[2].status is Status.ACCEPTED  # as a gateway reads it
    assert by_index[3].status is Status.REJECTED and "too long" in (by_index[3].reason or "")
    assert sorted(m.phone for m in webcom.record().sent) == ["79160000001", "79160000003"]


def test_the_shared_window_outlasts_the_slowest_read_timeout() -> None:
    """Each gateway's request may reach it as late as its read timeout: the route's one
    window holds reservations that long and 5 s past the TTL for the slowest of them (it
    was SMS Club's 65 s, under Webcom's 300 s read timeout, and the text went twice); a
    window already holding sends that cannot is refused."""
    club = SmsClub(TOKEN, transport=MockTransport(_unused))
    wc = Webcom(
        token=TOKEN, https=True, transport=MockTransport(_unused), timeouts=Timeouts(read=300)
    )
    router = Router({"UA": [club], "RU": [wc]})
    assert router.window is not None and router.window.slack == 305.0
    assert club.window is wc.window is router.window

    busy = MemoryWindow()
    asyncio.run(busy.reserve([b"k"], "h/a", [0]))  # holds a send
    club = SmsClub(TOKEN, transport=MockTransport(_unused), window=busy)
    wc = Webcom(
        token=TOKEN, https=True, transport=MockTransport(_unused), timeouts=Timeouts(read=300)
    )
    with pytest.raises(ConfigurationError, match="shorter than the read timeout"):
        Router({"UA": [club], "RU": [wc]})


def _unused(request: HttpRequest) -> HttpResponse:
    raise AssertionError("nothing is sent")


async def test_an_entry_of_another_shape_is_rejected_as_a_gateway_would(
    clock: FakeClock, webcom: FakeWebcom
) -> None:
    """Personal texts are (phone, text) pairs: a bare number among them (an int here) is
    rejected with the reason a gateway's own client gives, where it raised TypeError out of
    the routed send; its neighbours go."""
    async with Webcom(token=TOKEN, base_url=webcom.url, clock=clock) as wc:
        entries: list[Any] = [("79160000001", "Hi"), 79160000002, ("79160000003", "Yo")]
        report = await Router({"RU": [wc]}, clock=clock).send_message(
            Message(sender="Shop"), to=entries, keep="all"
        )
    by_index = {o.index: o for o in report.outcomes}
    assert [by_index[i].status for i in range(3)] == [
        Status.ACCEPTED,
        Status.REJECTED,
        Status.ACCEPTED,
    ]
    assert by_index[1].reason == "not a (phone, text) pair"
    assert sorted(m.phone for m in webcom.record().sent) == ["79160000001", "79160000003"]


async def test_a_gateway_whose_client_is_closed_takes_nothing_and_loses_nothing() -> None:
    """A route's client not open: a routed send raised ConfigurationError when the first
    recipient failed over to it, and the recipients it had read (280 of 300) got no outcome.
    Now a client not open when the send starts is refused before anything is read, and one
    closed under the send has its share fail over, or end failed with the reason."""
    numbers = [f"38050{i:07d}" for i in range(300)]
    async with (
        FakeSmsClub(tokens=["another-token"]) as club_fake,  # 401: every recipient fails over
        FakeWebcom(tokens=[TOKEN]) as web_fake,
    ):
        club = SmsClub(TOKEN, base_url=club_fake.url)
        web = Webcom(TOKEN, base_url=web_fake.url)
        router = Router({"UA": [club, web]})
        async with club:
            with pytest.raises(ConfigurationError, match="the webcom client is not open"):
                await router.send("Sale", to=numbers, sender="Shop")
            async with web:
                assert web.is_open
                send = asyncio.ensure_future(router.send("Sale", to=numbers, sender="Shop"))
                await asyncio.sleep(0)  # it has started, both open
            assert not web.is_open
            report = await send
    assert sorted(o.phone for o in report.outcomes) == numbers
    assert {(o.status, o.reason) for o in report.outcomes} == {
        (Status.FAILED, "not sent: the webcom client was closed")
    }
    assert web_fake.sent == [] and club_fake.sent == []


@pytest.mark.parametrize("seed", [0, 2])
async def test_a_stop_while_failovers_go_first_leaves_no_recipient_read_without_outcome(
    seed: int,
) -> None:
    """Failovers go before the next recipient read: that one was held, and a stop meanwhile
    ended the hand-out with it neither handed out nor decided (read 410, 409 outcomes: a
    review's find, pre-existing). Webcom closed under the send makes failovers pile up."""
    numbers = [f"38050{i:07d}" for i in range(500)]
    read: list[str] = []
    outcomes: list[Outcome] = []
    stop = anyio.Event()
    faults = Faults(rate_limited=0.3, retry_after=0, seed=seed)
    once = RetryPolicy(attempts=1, backoff=0)
    async with (
        FakeSmsClub(tokens=[TOKEN], rate_limit=None, faults=faults) as club_fake,
        FakeWebcom(tokens=[TOKEN], rate_limit=None) as web_fake,
        SmsClub(TOKEN, base_url=club_fake.url, retry=once) as club,
        Webcom(TOKEN, base_url=web_fake.url, retry=once) as web,
    ):

        def source() -> Iterator[str]:
            for number in numbers:
                read.append(number)
                yield number

        async def note(outcome: Outcome) -> None:
            outcomes.append(outcome)
            if len(outcomes) == 50:
                await web.aclose()
            if len(outcomes) == 350:
                stop.set()

        router = Router({"UA": [club, web]}, trip_after=100)
        await router.send("Sale", to=source(), sender="Shop", on_outcome=note, stop=stop)
    assert sorted(o.phone for o in outcomes) == sorted(read)


async def test_a_client_closed_while_its_send_looks_up_its_template_takes_nothing() -> None:
    """SMSPlus looks its template up before it sends: closed meanwhile, its send raised
    ConfigurationError ("not open") out of the routed send, and the recipients it had been
    given ended failed as if the caller's code had failed. Now its share ends failed with
    the reason (it has no next gateway) and the routed send returns."""
    looking = asyncio.Event()
    go_on = asyncio.Event()

    async def lookup_waits(request: HttpRequest) -> None:
        if "template" in request.path:
            looking.set()
            await go_on.wait()

    numbers = [(f"99450{i:07d}", ("1234",)) for i in range(300)]
    async with FakeSmsPlus(tokens=[TOKEN], templates={1: "Your code is {1}"}) as fake:
        transport = _Delaying(fake.url, lookup_waits)
        plus = SmsPlus(TOKEN, base_url=fake.url, transport=transport)
        router = Router({"AZ": [plus]})
        async with plus:
            message = Message(sender="Shop", template=1)
            send = asyncio.ensure_future(router.send_message(message, to=numbers))
            await looking.wait()
        go_on.set()
        report = await send
        await transport.aclose()
    assert sorted(o.phone for o in report.outcomes) == [phone for phone, _ in numbers]
    assert {(o.status, o.reason) for o in report.outcomes} == {
        (Status.FAILED, "not sent: the smsplus client was closed")
    }
    assert fake.sent == []


async def test_a_journaled_routed_send_rejects_an_index_read_twice() -> None:
    """A journaled routed send keys what waits by index: a row repeating an index replaced
    the first, and the first's outcome raised KeyError out of the send after the gateway
    had sent it (a review's find). The repeat is now rejected with the reason, as a
    gateway's own send rejects it; the others go."""

    class Journal:
        async def before(self, batch: Batch) -> None: ...

        async def unsent(self, batch: Batch) -> None: ...

        async def after(self, batch: Batch, statuses: Any, details: Any) -> None: ...

    settled: list[Outcome] = []

    async def settle(outcomes: Sequence[Outcome]) -> None:
        settled.extend(outcomes)

    numbers = [f"38050{i:07d}" for i in range(3)]
    resume = RoutedResume(
        idempotency_key=b"campaign", observers={"smsclub": Journal()}, maybe_sent={}, settle=settle
    )
    outcomes: list[Outcome] = []
    async with FakeSmsClub(tokens=[TOKEN]) as fake, SmsClub(TOKEN, base_url=fake.url) as club:
        rows = [(0, numbers[0]), (1, numbers[1]), (0, numbers[2])]
        await Router({"UA": [club]}).send_journaled(
            Message(sender="Shop", text="Hi"), to=rows, resume=resume, on_outcome=outcomes.append
        )
    assert sorted((o.index, o.phone, o.status, o.reason) for o in outcomes) == [
        (0, numbers[0], Status.ACCEPTED, None),
        (0, numbers[2], Status.REJECTED, "its index 0 repeats an earlier entry's in this send"),
        (1, numbers[1], Status.ACCEPTED, None),
    ]
    assert sorted(m.phone for m in fake.sent) == numbers[:2]


async def test_a_refused_recipient_held_behind_failovers_keeps_its_own_verdict() -> None:
    """A recipient read while failovers went ahead of it, and settled when the send stopped
    then, ended failed with the stop's reason even where it had been refused when read (a
    number that is none: rejected). It keeps its own verdict now (a review's find)."""

    async def slow(request: HttpRequest) -> None:
        await asyncio.sleep(0.2)  # failovers pile up meanwhile

    read: list[str] = []
    outcomes: list[Outcome] = []

    def source() -> Iterator[str]:
        for i in range(3000):
            read.append(f"38050{i:07d}" if i % 2 == 0 else "abc")
            yield read[-1]

    def note(outcome: Outcome) -> None:
        outcomes.append(outcome)
        if outcome.gateway == "webcom":
            raise RuntimeError("the caller's callback")

    refusing = Faults(rate_limited=1.0, retry_after=0, seed=1)  # every number fails over
    once = RetryPolicy(attempts=1, backoff=0)
    async with (
        FakeSmsClub(tokens=[TOKEN], rate_limit=None, faults=refusing) as club_fake,
        FakeWebcom(tokens=[TOKEN], rate_limit=None) as web_fake,
        SmsClub(TOKEN, base_url=club_fake.url, retry=once) as club,
        Webcom(
            TOKEN, base_url=web_fake.url, retry=once, transport=_Delaying(web_fake.url, slow)
        ) as web,
    ):
        router = Router({"UA": [club, web]}, trip_after=10**6)
        with pytest.raises(RuntimeError, match="the caller's callback"):
            await router.send("Hi", to=source(), sender="Shop", on_outcome=note, keep="none")
    assert len(outcomes) == len(read)
    assert {(o.status, o.reason) for o in outcomes if o.phone == "abc"} == {
        (Status.REJECTED, "not a phone number: letters in it")
    }


async def test_a_stopped_routed_send_decides_what_it_reads_without_waiting_and_whole() -> None:
    """After a stop, the next recipient read is failed; deciding it looked the gateway's
    template up first (up to 10 s), unshielded: a cancellation meanwhile left it with no
    outcome (a review's find). A stopped send now decides without a lookup, and a decision
    once begun is made whatever cancels the send."""

    async def slow_templates(request: HttpRequest) -> None:
        if "template" in request.path:
            await asyncio.sleep(1.0)

    entries: list[Any] = [("abc", ("1",)), *((f"99450{i:07d}", ("1234",)) for i in range(5))]
    read: list[Any] = []

    def source() -> Iterator[Any]:
        for entry in entries:
            read.append(entry)
            yield entry

    outcomes: list[Outcome] = []
    stop = anyio.Event()

    def note(outcome: Outcome) -> None:
        outcomes.append(outcome)
        stop.set()

    async with FakeSmsPlus(tokens=[TOKEN], templates={1: "Your code is {1}"}) as fake:
        transport = _Delaying(fake.url, slow_templates)
        async with SmsPlus(TOKEN, base_url=fake.url, transport=transport) as plus:
            router = Router({"AZ": [plus]})
            message = Message(sender="Shop", template=1)
            send = asyncio.ensure_future(
                router.send_message(message, to=source(), on_outcome=note, stop=stop)
            )
            await asyncio.sleep(0.3)
            send.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await send
        await transport.aclose()
    assert sorted(o.index for o in outcomes) == list(range(len(read)))
    assert {(o.index == 0, o.status) for o in outcomes} <= {
        (True, Status.REJECTED),
        (False, Status.FAILED),
    }
    assert fake.sent == []


async def test_a_stopped_routed_send_cancelled_while_it_settles_what_waits_settles_it_all(
    clock: FakeClock,
) -> None:
    """SMS Club refuses the account, and 30 recipients wait to move on to Webcom when the
    caller stops the send; the router settles them failed. The caller's code cancels the
    task while its async callback awaits: that settling ran in the caller's task without
    a handler, and 29 of the 30 got no outcome. Now it runs to its end."""
    numbers = [f"38050{i:07d}" for i in range(30)]
    stop = anyio.Event()

    def club_answer(request: HttpRequest) -> HttpResponse:
        stop.set()
        return HttpResponse(401, b"")

    outcomes: list[Outcome] = []

    async def note(outcome: Outcome) -> None:
        outcomes.append(outcome)
        if len(outcomes) == 1:
            send.cancel()
        await asyncio.sleep(0)

    club = SmsClub(TOKEN, transport=MockTransport(club_answer), clock=clock)
    wc = Webcom(
        TOKEN,
        https=True,
        transport=MockTransport(lambda request: HttpResponse(500, b"")),
        clock=clock,
    )
    async with club, wc:
        router = Router({"UA": [club, wc]}, clock=clock)
        send = asyncio.ensure_future(
            router.send("Sale", to=numbers, sender="Shop", on_outcome=note, stop=stop)
        )
        with pytest.raises(asyncio.CancelledError):
            await send
    assert sorted(o.phone for o in outcomes) == numbers
    assert {o.status for o in outcomes} == {Status.FAILED}

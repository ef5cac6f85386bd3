"""A keyed send through Redis: one run of a key at a time across processes, a dead run's hold
lapses, a lost hold stops the run, a rerun of a finished send finds its messages sent (it
used to take its own commits for reservations and send them all again), and what a dead run
reserved is not sent again where that is not safe."""

from __future__ import annotations

import uuid

import anyio
import pytest
import redis.asyncio as aioredis

from smsbridge import (
    Claim,
    SendInProgressError,
    SmsClub,
    SmsPlus,
    StateBackendError,
    Status,
    Webcom,
)
from smsbridge._core.client import holder_for
from smsbridge._core.gateway import Batch
from smsbridge._core.lease import Lease
from smsbridge.redis import RedisWindow
from smsbridge.testing import FakeClock, FakeSmsClub, FakeSmsPlus, FakeWebcom

from ..helpers import TOKEN, held_after_first, keyed_run_going

NUMBERS = ["994501234567", "994501234568", "994501234569"]


def account() -> str:
    """A fresh account per test, so tests never share Redis keys."""
    return f"acct-{uuid.uuid4().hex}"


async def test_a_rerun_of_a_finished_send_finds_its_messages_sent(redis_url: str) -> None:
    """SMSPlus has no duplicate guard of its own: the rerun must be stopped by the window."""
    pairs = [(n, ["a"]) for n in NUMBERS]
    name = account()
    async with FakeSmsPlus(tokens=[TOKEN], templates={3: "Hi {1}"}, rate_limit=None) as fake:
        for _ in range(2):
            async with SmsPlus(TOKEN, base_url=fake.url, redis_url=redis_url, account=name) as sms:
                report = await sms.send_template(3, sender="Shop", to=pairs, idempotency_key="k")
    assert [o.status for o in report.outcomes] == [Status.SUPPRESSED] * 3
    assert sorted(m.phone for m in fake.sent) == NUMBERS


async def test_a_live_run_in_another_process_keeps_its_key(redis_url: str) -> None:
    """Two clients of one account (as two processes would be): while the first run waits on
    its input, the second run of its key waits out the lease (on its own fake clock) and is
    refused; it read nothing, and every number went once."""
    name, second_read = account(), list[str]()
    numbers = [f"38050{i:07d}" for i in range(4)]
    async with (
        FakeSmsClub(tokens=[TOKEN], rate_limit=None) as fake,
        SmsClub(TOKEN, base_url=fake.url, redis_url=redis_url, account=name) as one,
        SmsClub(
            TOKEN, base_url=fake.url, redis_url=redis_url, account=name, clock=FakeClock()
        ) as two,
        keyed_run_going(one, numbers) as reports,
    ):
        second = held_after_first(numbers, anyio.Event(), second_read, anyio.Event())
        with anyio.fail_after(5), pytest.raises(SendInProgressError):
            await two.send("Hi", to=second, sender="Shop", idempotency_key="k")
    assert second_read == [] and reports[0].accepted == 4
    assert sorted(m.phone for m in fake.sent) == numbers


async def test_a_dead_runs_hold_lapses_and_the_next_run_goes(redis_url: str) -> None:
    """A run killed while it held its key left the hold behind: the next run waits for it
    to lapse (here 0.3 s) and sends."""
    name = account()
    async with (
        FakeSmsClub(tokens=[TOKEN], rate_limit=None) as fake,
        SmsClub(TOKEN, base_url=fake.url, redis_url=redis_url, account=name) as sms,
    ):
        window = sms.window
        assert isinstance(window, RedisWindow)
        assert await window.hold(f"smsclub:{holder_for('k')}", "dead run", 0.3)
        with anyio.fail_after(5):
            report = await sms.send("Hi", to=["380501234567"], sender="Shop", idempotency_key="k")
    assert report.accepted == 1


async def test_a_hold_taken_over_stops_the_run(redis_url: str) -> None:
    """Renewing finds another run holding the key (this run's hold lapsed while Redis was
    out of its reach): the run is told, as an account-wide state error."""
    client = aioredis.Redis.from_url(redis_url)
    clock = FakeClock()
    window = RedisWindow(client, f"smsbridge:{{test:{account()}}}", b"secret", clock=clock)
    lost: list[Exception] = []
    try:
        lease = Lease(window, "smsclub:abc", clock)
        await lease.take()
        assert not await window.hold("smsclub:abc", "another run", 15)
        await client.delete(f"{window._leases}smsclub:abc")
        assert await window.hold("smsclub:abc", "another run", 15)
        with anyio.fail_after(5):
            await lease.keep(lost.append)
        await lease.drop()  # not its own any more: left alone
        assert not await window.hold("smsclub:abc", "a third run", 15)
    finally:
        await client.aclose()
    assert len(lost) == 1 and isinstance(lost[0], StateBackendError)
    assert "took it over" in str(lost[0])


async def test_what_a_dead_run_reserved_is_uncertain_where_a_repeat_is_not_safe(
    redis_url: str,
) -> None:
    """A run of a keyed SMSPlus send died with two requests on the wire (it reserved their
    keys; whether they went is unknown, and SMSPlus has no guard against a repeat): the next
    run sends the rest and ends those two uncertain, sending nothing twice."""
    pairs = [(n, ["a"]) for n in NUMBERS]
    name = account()
    async with (
        FakeSmsPlus(tokens=[TOKEN], templates={3: "Hi {1}"}, rate_limit=None) as fake,
        SmsPlus(TOKEN, base_url=fake.url, redis_url=redis_url, account=name) as sms,
    ):
        window = sms.window
        assert isinstance(window, RedisWindow)
        batch = Batch([0, 1], NUMBERS[:2], None, [("a",), ("a",)])
        keys = window.keys("Shop", "template #3", batch)
        dead = f"{holder_for('k')}/dead"
        assert await window.reserve(keys, dead, [0, 1]) == [Claim.OURS] * 2
        report = await sms.send_template(3, sender="Shop", to=pairs, idempotency_key="k")
    statuses = [o.status for o in sorted(report.outcomes, key=lambda o: o.index)]
    assert statuses == [Status.UNCERTAIN, Status.UNCERTAIN, Status.ACCEPTED]
    assert "earlier run" in (report.outcomes[0].reason or "")
    assert [m.phone for m in fake.sent] == NUMBERS[2:]


async def test_what_a_dead_run_reserved_goes_again_where_the_gateway_makes_it_safe(
    redis_url: str,
) -> None:
    """The same on Webcom: a repeat carries the same client_id_sms, so it goes again and the
    gateway answers it (here it had not got the first)."""
    numbers = ["79161234567", "79161234568"]
    name = account()
    async with (
        FakeWebcom(tokens=[TOKEN]) as fake,
        Webcom(TOKEN, base_url=fake.url, redis_url=redis_url, account=name) as sms,
    ):
        window = sms.window
        assert isinstance(window, RedisWindow)
        keys = window.keys("Shop", "Hi", Batch([0], numbers[:1]))
        assert await window.reserve(keys, f"{holder_for('k')}/dead", [0]) == [Claim.OURS]
        report = await sms.send("Hi", to=numbers, sender="Shop", idempotency_key="k")
    assert report.accepted == 2
    assert sorted(m.phone for m in fake.sent) == numbers


async def test_a_run_that_never_reached_a_dead_runs_recipient_leaves_its_reservation(
    redis_url: str,
) -> None:
    """A dead run reserved #1 (its request perhaps on the wire); the next run is stopped
    before #1's turn, and ends it failed without freeing that reservation, since it does not
    know whether the dead run wrote it. A third run then ends #1 uncertain: never sent
    twice."""
    pairs = [(n, ["a"]) for n in NUMBERS]
    name = account()
    async with (
        FakeSmsPlus(tokens=[TOKEN], templates={3: "Hi {1}"}, rate_limit=None) as fake,
        SmsPlus(
            TOKEN, base_url=fake.url, redis_url=redis_url, account=name, batch_size=1, concurrency=1
        ) as sms,
    ):
        window = sms.window
        assert isinstance(window, RedisWindow)
        keys = window.keys("Shop", "template #3", Batch([1], NUMBERS[1:2], None, [("a",)]))
        assert await window.reserve(keys, f"{holder_for('k')}/dead", [1]) == [Claim.OURS]
        stop = anyio.Event()
        second = await sms.send_template(
            3,
            sender="Shop",
            to=pairs,
            idempotency_key="k",
            stop=stop,
            on_outcome=lambda _: stop.set(),
        )
        third = await sms.send_template(3, sender="Shop", to=pairs, idempotency_key="k")
    assert {o.index: o.status for o in second.outcomes}[1] is Status.FAILED
    assert {o.index: o.status for o in third.outcomes}[1] is Status.UNCERTAIN
    assert sorted(m.phone for m in fake.sent) == [NUMBERS[0], NUMBERS[2]]

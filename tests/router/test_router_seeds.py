"""Routed sends under seeded faults on both gateways at once, checked against what the two
fakes recorded (the simulator's invariants, for the routing layer): one outcome per
recipient; nobody sent twice, on one gateway or across two; accepted means sent by the gateway
the outcome names; failed and rejected mean sent nowhere; uncertain never moved on.

The fakes answer over real loopback sockets; the clients and the router run on an injected
clock, so retries and cool-downs cost no time. A failing seed names itself."""

from __future__ import annotations

import random
from collections import Counter
from typing import Any

import anyio
import pytest

from smsbridge import Outcome, Router, SmsClub, Status, Webcom
from smsbridge.testing import FakeClock, FakeSmsClub, FakeWebcom, Faults

from ..conftest import free_port
from ..helpers import TOKEN

SEEDS = range(20)
WINDOW = 10**6
"""The duplicate window, in seconds: the injected clock moves on for every task that sleeps
on it, so a run's retries add up to more virtual time than the usual 120 s would cover."""


def _faults(rng: random.Random) -> Faults:
    odds = [0.0, 0.0, 0.05, 0.2]
    return Faults(
        rate_limited=rng.choice(odds),
        error_before=rng.choice(odds),
        error_after=rng.choice(odds),
        garbage_after=rng.choice(odds),
        reset_after=rng.choice(odds),
        retry_after=rng.choice([None, 0.0, 1.0]),
        seed=rng.randrange(1 << 30),
    )


async def _run(seed: int) -> None:
    rng = random.Random(seed)
    count = rng.choice([1, 7, 120, 350, 1500])
    numbers = [f"38050{i:07d}" if rng.random() < 0.7 else f"7916{i:07d}" for i in range(count)]
    numbers += rng.sample(numbers, k=min(len(numbers), rng.choice([0, 3])))  # repeats
    if rng.random() < 0.3:
        numbers.append("12025550123")  # no route
    clock = FakeClock(1000.0)
    club_down = rng.random() < 0.2
    club_token = TOKEN if rng.random() < 0.7 else "wrong"
    stop = anyio.Event() if rng.random() < 0.5 else None  # given, and set half the time
    stop_after = rng.randint(0, count) if rng.random() < 0.5 else None
    outcomes: list[Outcome] = []

    def note(outcome: Outcome) -> None:
        outcomes.append(outcome)
        if stop is not None and stop_after is not None and len(outcomes) >= stop_after:
            stop.set()

    async with (
        FakeSmsClub(tokens=[TOKEN], rate_limit=None, faults=_faults(rng)) as club_fake,
        FakeWebcom(tokens=[TOKEN], rate_limit=None, faults=_faults(rng)) as webcom_fake,
    ):
        club_url = f"http://127.0.0.1:{free_port()}" if club_down else club_fake.url
        batch = rng.choice([1, 10, 100])
        async with (
            SmsClub(
                club_token,
                base_url=club_url,
                clock=clock,
                rate=1000,
                window_ttl=WINDOW,
                concurrency=rng.choice([1, 4]),
                repeat_guard=rng.random() < 0.5,
            ) as club,
            Webcom(
                token=TOKEN,
                base_url=webcom_fake.url,
                clock=clock,
                rate=1000,
                window_ttl=WINDOW,
                batch_size=batch,
            ) as webcom,
        ):
            router = Router(
                {"UA": [club, webcom], "RU": [webcom, club]},
                trip_after=rng.choice([1, 3]),
                clock=clock,
            )
            options: dict[str, Any] = {"on_outcome": note, "keep": "none"}
            if stop is not None:
                options["stop"] = stop
            report = await router.send("Sale", to=numbers, sender="Shop", **options)
        sent = {
            "smsclub": Counter(m.phone for m in club_fake.record().sent),
            "webcom": Counter(m.phone for m in webcom_fake.record().sent),
        }
        ids = {
            "smsclub": {m.phone: m.id for m in club_fake.record().sent},
            "webcom": {m.phone: m.id for m in webcom_fake.record().sent},
        }

    where = f"seed {seed}"
    # each recipient read has one outcome; a stop ends the reading (the rest has none)
    read = len(outcomes) if stop is not None and stop.is_set() else len(numbers)
    assert sorted(o.index for o in outcomes) == list(range(read)), where
    assert report.total == read, where
    for name, counter in sent.items():
        twice = [n for n, k in counter.items() if k > 1]
        assert not twice, (f"{where}: {name} sent {twice[:3]} twice", outcomes)
    assert not set(sent["smsclub"]) & set(sent["webcom"]), f"{where}: sent on both"
    anywhere = set(sent["smsclub"]) | set(sent["webcom"])
    for o in outcomes:
        if o.status is Status.ACCEPTED:
            assert o.gateway is not None and o.phone in sent[o.gateway], (where, o)
            if o.message_id is not None:
                assert ids[o.gateway][o.phone] == o.message_id, (where, o)
        elif o.status in (Status.FAILED, Status.REJECTED):
            # a number given twice may have gone for its other occurrence
            if numbers.count(o.phone) == 1:
                assert o.phone not in anywhere, (where, o)
        elif o.status is Status.UNCERTAIN:
            other = "webcom" if o.gateway == "smsclub" else "smsclub"
            assert o.phone not in sent[other], (where, o)


@pytest.mark.parametrize("seed", SEEDS)
async def test_routed_sends_keep_the_invariants(seed: int) -> None:
    """One seeded world: faults on both gateways, a dead or refused gateway now and then,
    repeats, numbers with no route, a caller who stops."""
    await _run(seed)

"""One run of a keyed send at a time: a second run of the same idempotency key, while the
first goes on, is refused before it reads anything (with ``earlier=`` too, which would
otherwise free the live run's reservations); once the first has ended, a rerun finds its
messages sent. Against the fake SMS Club and SMSPlus on loopback, in memory (the Redis
store's lease is in tests/redis/test_lease.py)."""

from __future__ import annotations

from collections.abc import AsyncIterator

import anyio
import pytest

from smsbridge import SendInProgressError, SmsClub, SmsPlus, Status
from smsbridge.testing import FakeSmsClub, FakeSmsPlus

from ..helpers import TOKEN, held_after_first, keyed_run_going, ua_numbers


async def test_a_second_run_of_a_live_key_is_refused_before_it_reads() -> None:
    numbers = list(ua_numbers(6))
    later, numbers = numbers[5], numbers[:5]
    second_read: list[str] = []
    async with (
        FakeSmsClub(tokens=[TOKEN], rate_limit=None) as fake,
        SmsClub(TOKEN, base_url=fake.url, batch_size=1) as sms,
        keyed_run_going(sms, numbers) as reports,
    ):
        second = held_after_first(numbers, anyio.Event(), second_read, anyio.Event())
        with anyio.fail_after(5), pytest.raises(SendInProgressError, match="still going"):
            await sms.send("Hi", to=second, sender="Shop", idempotency_key="k")
        # an earlier= resume would release the live run's reservations: refused alike
        with anyio.fail_after(5), pytest.raises(SendInProgressError):
            await sms.send(
                "Hi",
                to=numbers,
                sender="Shop",
                idempotency_key="k",
                earlier=[(numbers[0], False)],
            )
        # another key is another send
        other = await sms.send("Hi", to=[later], sender="Shop", idempotency_key="other")
        assert other.accepted == 1
    assert second_read == []
    assert reports[0].accepted == 5
    # once the first run has ended, a rerun of its key finds every message sent
    assert sms.window is not None
    async with SmsClub(TOKEN, base_url=fake.url, window=sms.window) as again:
        rerun = await again.send("Hi", to=numbers, sender="Shop", idempotency_key="k")
    assert rerun.counts().suppressed == 5
    assert sorted(m.phone for m in fake.sent) == sorted([*numbers, later])


async def test_a_cancelled_run_lets_its_key_go() -> None:
    """Cancelled while it waits on its input, the run drops its hold: the next run of the
    key goes, and sends what the cancelled run had not."""
    numbers = list(ua_numbers(3))
    go = anyio.Event()
    read: list[str] = []
    async with (
        FakeSmsPlus(tokens=[TOKEN], templates={3: "Hi {1}"}, rate_limit=None) as fake,
        SmsPlus(TOKEN, base_url=fake.url, batch_size=1) as sms,
    ):
        pairs = [(n.replace("380", "994", 1), ["a"]) for n in numbers]

        async def held() -> AsyncIterator[tuple[str, list[str]]]:
            for n, pair in enumerate(pairs):
                if n == 1:
                    await go.wait()
                read.append(pair[0])
                yield pair

        answered = anyio.Event()
        async with anyio.create_task_group() as tg:
            tg.start_soon(
                lambda: sms.send_template(
                    3,
                    sender="Shop",
                    to=held(),
                    idempotency_key="k",
                    on_outcome=lambda _: answered.set(),
                )
            )
            await answered.wait()
            tg.cancel_scope.cancel()
        report = await sms.send_template(3, sender="Shop", to=pairs, idempotency_key="k")
    statuses = [o.status for o in report.outcomes]
    assert statuses == [Status.SUPPRESSED, Status.ACCEPTED, Status.ACCEPTED]
    assert sorted(m.phone for m in fake.sent) == sorted(p for p, _ in pairs)

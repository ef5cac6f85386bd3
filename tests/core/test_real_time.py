"""Volume against the fake gateway in its own process over loopback: 100,000 recipients as
fast as this machine goes, then a 6-second run at the real 9 requests per second (the one
test where real time is the thing tested: it runs alone, see ``make unit``). Every recipient
is accounted for once, the gateway never answers 429 or 453, and at 9/s its busiest sliding
second holds the limit and no more.
"""

from __future__ import annotations

import pytest

from smsbridge import Outcome, SmsClub, Status
from smsbridge.testing import FakeProcess, Record

from ..helpers import TOKEN, ua_numbers


async def _send_and_check(rate: int, recipients: int, concurrency: int, *, limited: bool) -> Record:
    fake_limit = str(rate) if limited else "none"
    async with FakeProcess("smsclub", "--token", TOKEN, "--rate-limit", fake_limit) as fake:
        seen = bytearray(recipients)
        ids: dict[int, str] = {}

        def note(outcome: Outcome) -> None:
            seen[outcome.index] += 1
            if outcome.status is Status.ACCEPTED:
                assert outcome.message_id is not None
                ids[outcome.index] = outcome.message_id

        async with SmsClub(TOKEN, base_url=fake.url, rate=rate, concurrency=concurrency) as sms:
            report = await sms.send(
                "Sale today",
                to=ua_numbers(recipients),
                sender="Shop",
                on_outcome=note,
                keep="none",
            )
        assert report.accepted == recipients
        assert report.total == recipients
        assert report.requests == recipients // 100
        assert set(seen) == {1}  # every recipient exactly one outcome
        record = await fake.record()
        assert record.count(429) == 0
        assert record.count(453) == 0
        sent = record.sent
        assert len(sent) == recipients
        assert len({m.phone for m in sent}) == recipients
        by_id = {m.id: m.phone for m in sent}
        assert all(by_id[ids[i]] == f"38050{i:07d}" for i in range(recipients))
        return record


async def test_hundred_thousand_recipients_at_full_speed() -> None:
    """100k numbers, 1,000 requests, 32 at a time: nobody lost, nobody twice, every id right.

    The rate is set past what the machine can do and the fake counts nothing: the limiter's
    precision is proven on the injected clock and at the real 9/s below, not here."""
    await _send_and_check(rate=100_000, recipients=100_000, concurrency=32, limited=False)


@pytest.mark.realtime
async def test_five_seconds_at_the_real_nine_per_second() -> None:
    """45 requests at the documented 9/s: the busiest sliding second holds 9, never more,
    and the account runs at no less than 96% of the limit."""
    record = await _send_and_check(rate=9, recipients=4_500, concurrency=10, limited=True)
    assert record.busiest_window(1.0) == 9
    arrivals = record.arrivals()
    assert (len(arrivals) - 1) / (arrivals[-1] - arrivals[0]) >= 0.96 * 9

"""A misbehaving gateway: 429s, 5xx before and after sending, hangs after accepting, unreadable
answers and dropped connections. Nobody is sent twice, and everyone the gateway accepted is
reported accepted or uncertain; failed and rejected recipients were surely not sent."""

from __future__ import annotations

import math

import pytest

from smsbridge import Outcome, RetryPolicy, SmsClub, Status, Timeouts
from smsbridge.testing import FakeProcess, FakeSmsClub, Faults

from ..helpers import TOKEN, ua_numbers

FAULTS = Faults(
    rate_limited=0.25,
    error_before=0.04,
    error_after=0.04,
    hang_after=0.04,
    garbage_before=0.03,
    garbage_after=0.04,
    reset_after=0.04,
    hang_seconds=3.0,
    retry_after=0.01,
    seed=20261122,
)


async def test_faults_never_send_twice_and_never_hide_a_send() -> None:
    """20,000 recipients through faulty requests, then the same list again."""
    recipients = 20_000
    async with FakeSmsClub(tokens=[TOKEN], rate_limit=None, faults=FAULTS) as fake:
        outcomes: dict[int, Outcome] = {}

        def record(outcome: Outcome) -> None:
            assert outcome.index not in outcomes, "two outcomes for one recipient"
            outcomes[outcome.index] = outcome

        async with SmsClub(
            TOKEN,
            base_url=fake.url,
            rate=500,
            concurrency=16,
            timeouts=Timeouts(connect=2, read=0.5, total=5),
            retry=RetryPolicy(attempts=2, backoff=0.01),
        ) as sms:
            report = await sms.send(
                "Sale", to=ua_numbers(recipients), sender="Shop", on_outcome=record, keep="none"
            )
            assert sorted(outcomes) == list(range(recipients))
            assert report.uncertain > 0
            assert report.accepted > 0
            assert report.failed > 0  # 429 twice in a row: surely unsent, retried next time

            sent = {m.phone: m for m in fake.sent}
            assert len(sent) == len(fake.sent), "a phone was accepted twice"
            for outcome in outcomes.values():
                if outcome.phone in sent:
                    assert outcome.status in (Status.ACCEPTED, Status.UNCERTAIN)
                else:
                    assert outcome.status is not Status.ACCEPTED
                if outcome.status is Status.ACCEPTED and outcome.message_id is not None:
                    assert sent[outcome.phone].id == outcome.message_id
            # an ambiguous request repeated within the gateway's 453 guard: refused, so the
            # first try went (accepted without its id)
            assert any(
                o.status is Status.ACCEPTED and o.message_id is None for o in outcomes.values()
            )

            # The same list again: only what surely was not sent may go now.
            fake.faults = Faults()
            before = len(fake.sent)
            again = await sms.send("Sale", to=ua_numbers(recipients), sender="Shop", keep="all")
            newly = {m.phone for m in fake.sent[before:]}
            not_sent_first = {o.phone for o in outcomes.values() if o.status is Status.FAILED}
            assert newly == not_sent_first
            assert again.accepted == len(not_sent_first)
            assert again.suppressed == recipients - len(not_sent_first)
        assert max(fake.sent_counts().values()) == 1
    faults = {r.fault for r in fake.requests}  # hanging requests are logged once released
    assert faults == {
        "ok",
        "rate_limited",
        "error_before",
        "error_after",
        "hang_after",
        "garbage_before",
        "garbage_after",
        "reset_after",
    }


@pytest.mark.parametrize(
    ("field", "value"),
    [("rate_limited", 1.5), ("reset_after", -0.1), ("error_after", math.nan), ("hang_seconds", -1)],
)
def test_faults_out_of_range_are_refused_when_built(field: str, value: float) -> None:
    with pytest.raises(ValueError, match=f"Faults.{field} is "):
        Faults(**{field: value})  # type: ignore[arg-type]


async def test_faults_the_fake_refuses_come_back_with_its_reason() -> None:
    faults = Faults()
    faults.rate_limited = 2.0  # past the check at construction, as a caller's mutation is
    async with FakeProcess("smsclub", "--token", TOKEN) as fake:
        with pytest.raises(ValueError, match=r"the fake refused the faults: .*rate_limited"):
            await fake.set_faults(faults)
        await fake.set_faults(Faults(rate_limited=1.0, retry_after=None))

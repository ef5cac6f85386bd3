"""SMS Club end to end: the real client against the fake gateway over loopback sockets,
asserting from the fake's own record who got what."""

from __future__ import annotations

from decimal import Decimal

import pytest

from smsbridge import (
    AuthenticationError,
    DeliveryState,
    InsufficientBalanceError,
    InvalidInputError,
    SenderRegistration,
    SenderState,
    SmsClub,
    Status,
)
from smsbridge.testing import FakeSmsClub

from ..helpers import TOKEN, ua_numbers


async def test_send_reaches_exactly_the_valid_numbers(smsclub: FakeSmsClub) -> None:
    """Valid numbers get the text once; invalid ones are rejected without a request."""
    smsclub.blacklist.add("380500000007")
    phones = [*ua_numbers(250), "0501234567", "12345", "+380 50 000 0001"]
    async with SmsClub(TOKEN, base_url=smsclub.url) as sms:
        report = await sms.send("Your order shipped", to=phones, sender="Shop")
    assert (report.accepted, report.rejected, report.suppressed) == (250, 2, 1)
    assert report.requests == 3
    sent = {m.phone: m for m in smsclub.sent}
    assert len(smsclub.sent) == 250
    assert "380500000007" not in sent and "380501234567" in sent
    assert all(m.text == "Your order shipped" and m.sender == "Shop" for m in smsclub.sent)
    by_index = {o.index: o for o in report.outcomes}
    assert by_index[7].status is Status.REJECTED
    assert by_index[7].reason == "This number is in the black list"
    assert by_index[251].reason is not None and "wrong length" in by_index[251].reason
    assert by_index[252].status is Status.SUPPRESSED
    for outcome in report.by_status(Status.ACCEPTED):
        assert sent[outcome.phone].id == outcome.message_id


async def test_personal_texts_and_statuses(smsclub: FakeSmsClub) -> None:
    """Each number gets its own text; statuses come back for every id, 100 per request."""
    pairs = [(phone, f"Hello {i}") for i, phone in enumerate(ua_numbers(230))]
    async with SmsClub(TOKEN, base_url=smsclub.url) as sms:
        report = await sms.send_personal(pairs, sender="Shop")
        assert report.accepted == 230
        assert {m.phone: m.text for m in smsclub.sent} == dict(pairs)
        for message in smsclub.sent[:5]:
            smsclub.states[message.id] = "DELIVRD"
        before = len(smsclub.requests)
        statuses = await sms.status(report.message_ids())
        assert len(smsclub.requests) - before == 3
    assert [s.message_id for s in statuses] == report.message_ids()
    delivered = {m.id for m in smsclub.sent[:5]}
    assert all((s.state is DeliveryState.DELIVRD) == (s.message_id in delivered) for s in statuses)


async def test_account_calls(smsclub: FakeSmsClub) -> None:
    """Balance, sender names, registration and sender-name states."""
    async with SmsClub(TOKEN, base_url=smsclub.url) as sms:
        balance = await sms.balance()
        assert (balance.money, balance.currency) == (Decimal("1000.0000"), "UAH")
        assert await sms.senders() == ["Shop"]
        registered = await sms.register_sender(
            SenderRegistration(
                sender_id="NewShop",
                company="Shop LLC",
                site="https://shop.example",
                description="Household goods",
                subject="Order status notifications",
                company_type="tov",
                okpo="12345678",
            )
        )
        assert (registered.sender, registered.state) == ("NewShop", SenderState.MODERATION)
        states = {s.sender: s.state for s in await sms.sender_status()}
        assert states == {"Shop": SenderState.APPROVED, "NewShop": SenderState.MODERATION}
        assert await sms.sender_status("Missing") == []
        with pytest.raises(InvalidInputError):
            await sms.register_sender(
                SenderRegistration(
                    sender_id="X",
                    company="c",
                    site="s",
                    description="d",
                    subject="s",
                    company_type="plc",
                )
            )


async def test_wrong_token_fails_everyone_and_says_why(smsclub: FakeSmsClub) -> None:
    """401: nobody is sent to, every recipient is failed, the report carries the error."""
    async with SmsClub("wrong", base_url=smsclub.url, concurrency=1) as sms:
        report = await sms.send("hi", to=ua_numbers(1000), sender="Shop", keep="none")
    assert (report.failed, report.total) == (1000, 1000)
    assert isinstance(report.error, AuthenticationError)
    assert smsclub.sent == [] and smsclub.count(401) <= 2


async def test_unknown_sender_is_rejected_per_batch(smsclub: FakeSmsClub) -> None:
    """A sender the gateway does not know: each batch rejected with the gateway's words."""
    async with SmsClub(TOKEN, base_url=smsclub.url) as sms:
        report = await sms.send("hi", to=ua_numbers(150), sender="Nobody")
    assert report.rejected == 150 and report.requests == 2
    assert {o.reason for o in report.outcomes} == {"src_addr: Sender name is incorrect"}
    with pytest.raises(InvalidInputError):
        async with SmsClub(TOKEN, base_url=smsclub.url) as sms:
            await sms.send("hi", to=["380501234567"], sender="A much too long sender")
    with pytest.raises(InvalidInputError):
        async with SmsClub(TOKEN, base_url=smsclub.url) as sms:
            await sms.send("   ", to=["380501234567"], sender="Shop")


async def test_the_gateways_453_when_our_window_is_off(smsclub: FakeSmsClub) -> None:
    """With our window disabled the gateway's own refuses the repeat: rejected, not resent."""
    async with SmsClub(TOKEN, base_url=smsclub.url, window_ttl=0) as sms:
        first = await sms.send("hi", to=["380501234567"], sender="Shop")
        second = await sms.send("hi", to=["380501234567"], sender="Shop")
    assert (first.accepted, second.rejected, smsclub.count(453)) == (1, 1, 1)
    assert second.outcomes[0].reason is not None and "Duplication" in second.outcomes[0].reason
    assert len(smsclub.sent) == 1


async def test_our_window_suppresses_before_any_request(smsclub: FakeSmsClub) -> None:
    """With the window on, a repeat never reaches the gateway."""
    async with SmsClub(TOKEN, base_url=smsclub.url) as sms:
        await sms.send("hi", to=list(ua_numbers(100)), sender="Shop")
        again = await sms.send("hi", to=list(ua_numbers(100)), sender="Shop")
        other_text = await sms.send("bye", to=list(ua_numbers(100)), sender="Shop")
    assert (again.suppressed, again.requests) == (100, 0)
    assert other_text.accepted == 100
    assert smsclub.count(453) == 0 and len(smsclub.sent) == 200


async def test_balance_running_out_stops_the_send(smsclub: FakeSmsClub) -> None:
    """Money for 150 of 300: 150 accepted, the other 150 failed (none rejected, none lost)."""
    smsclub.price = Decimal(1)
    smsclub.balance = Decimal(150)
    async with SmsClub(TOKEN, base_url=smsclub.url, concurrency=1) as sms:
        report = await sms.send("hi", to=ua_numbers(300), sender="Shop", keep="none")
    assert report.accepted == 150 == len(smsclub.sent)
    assert report.rejected == 0 and report.failed == 150
    assert isinstance(report.error, InsufficientBalanceError)


async def test_a_gateway_answering_in_russian() -> None:
    """Refusals, the money running out and status words in Russian mean what the English ones
    do: a stop-listed and a malformed number rejected with the gateway's words, the unpaid
    ones failed and the send stopped, "Доставлено" delivered, an unknown id "not found"."""
    async with FakeSmsClub(
        tokens=[TOKEN], language="ru", blacklist=["380500000001"], price=Decimal(1)
    ) as fake:
        fake.balance = Decimal(3)
        async with SmsClub(TOKEN, base_url=fake.url, concurrency=1) as sms:
            to = ["380500000000", "380500000001", "380500000002", "380500000003", "380500000004"]
            report = await sms.send("hi", to=[*to, "3805000000"], sender="Shop", keep="all")
            by_phone = {o.phone: o for o in report.outcomes}
            assert by_phone["380500000001"].status is Status.REJECTED
            assert by_phone["380500000001"].reason == "Этот номер в черном списке"
            assert [by_phone[p].status for p in to[2:]] == [
                Status.ACCEPTED,
                Status.ACCEPTED,
                Status.FAILED,
            ]
            assert isinstance(report.error, InsufficientBalanceError)
            first = by_phone["380500000000"].message_id
            assert first is not None
            fake.states[first] = "DELIVRD"
            delivered, unknown = await sms.status([first, "999999"])
    assert (delivered.state, delivered.raw) == (DeliveryState.DELIVRD, "Доставлено")
    assert (unknown.state, unknown.error) == (DeliveryState.UNKNOWN, "Сообщение не найдено")

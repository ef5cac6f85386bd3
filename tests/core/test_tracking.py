"""Following sent messages to their final states: polls through the gateway's status call
(read back from what the fake recorded), webhook reports fed in on the way, the deadline, a
failing round, and a gateway without a status call."""

from __future__ import annotations

import json

import pytest

from smsbridge import (
    AuthenticationError,
    ConfigurationError,
    DeliveryState,
    HttpRequest,
    HttpResponse,
    InvalidInputError,
    MessageStatus,
    MockTransport,
    SmsClub,
    SmsPlus,
    Webcom,
    parse_delivery_reports,
)
from smsbridge.testing import FakeClock, FakeSmsClub, FakeWebcom

from ..helpers import TOKEN, ua_numbers


async def test_each_id_once_when_final_or_at_the_deadline(clock: FakeClock) -> None:
    """150 sent: 50 delivered by the first poll, 50 undeliverable by the second, 50 still on
    their way at the deadline (120 s, every 30 s: five rounds). Each id comes out once; the
    rounds asked 100 ids per request, and only for the ids still open."""
    async with (
        FakeSmsClub(tokens=[TOKEN], rate_limit=None) as fake,
        SmsClub(TOKEN, base_url=fake.url, clock=clock) as sms,
    ):
        report = await sms.send("Sale", to=ua_numbers(150), sender="Shop")
        ids = report.message_ids()
        for i in ids[:50]:
            fake.states[i] = "DELIVRD"
        seen: list[MessageStatus] = []
        started = clock.now()
        async for status in sms.track(ids, every=30, deadline=120):
            seen.append(status)
            if len(seen) == 50:  # the first round is over: the next 50 fail meanwhile
                for i in ids[50:100]:
                    fake.states[i] = "UNDELIV"
        asked = [r for r in fake.record().requests if r.path == "/sms/status"]
    assert [s.message_id for s in seen[:50]] == ids[:50]
    assert {s.state for s in seen[:50]} == {DeliveryState.DELIVRD}
    assert sorted(s.message_id for s in seen[50:100]) == sorted(ids[50:100])
    assert {s.state for s in seen[50:100]} == {DeliveryState.UNDELIV}
    assert {s.state for s in seen[100:]} == {DeliveryState.ENROUTE}
    assert sorted(s.message_id for s in seen) == sorted(ids)
    assert len(asked) == 2 + 1 + 1 + 1 + 1  # 150 open, then 100, then 50 three times
    assert clock.now() - started == pytest.approx(120, abs=1)


async def test_webhook_reports_settle_ids_without_a_poll(clock: FakeClock) -> None:
    """Webcom: two of three ids reported through the webhook are given out as the poll would
    give them, and only the third is asked for."""
    async with (
        FakeWebcom(tokens=[TOKEN], rate_limit=None) as fake,
        Webcom(token=TOKEN, base_url=fake.url, clock=clock) as sms,
    ):
        report = await sms.send(
            "Sale", to=["79161234567", "79161234568", "79161234569"], sender="Shop"
        )
        ids = report.message_ids()
        tracker = sms.track(ids, every=10, deadline=60)
        body = [
            {"id_sms": int(i), "time": "2026-11-30 10:00:00", "state": "deliver"} for i in ids[:2]
        ]
        tracker.feed(parse_delivery_reports(json.dumps(body).encode()))
        fake.states[int(ids[2])] = "deliver"
        seen = [status async for status in tracker]
        asked = [r for r in fake.record().requests if r.path == "/json/state.php"]
    assert [s.message_id for s in seen] == ids
    assert len({(s.state, s.raw) for s in seen}) == 1  # the webhook's and the poll's alike
    assert seen[0] == MessageStatus(message_id=ids[0], state=DeliveryState.DELIVRD, raw="deliver")
    assert len(asked) == 1
    assert tracker.pending == 0


async def test_a_failed_round_is_tried_again_and_a_refused_account_ends_it(
    clock: FakeClock,
) -> None:
    """A round whose status call fails all its tries (five 500s) logs and waits for the
    next round, which reads the states; a wrong token raises out of the iteration."""
    answers = iter([500] * 5)
    asked: list[int] = []

    def gateway(request: HttpRequest) -> HttpResponse:
        status = next(answers, 200)
        asked.append(status)
        if status != 200:
            return HttpResponse(status, b"Internal Server Error")
        ids = json.loads(request.body)["id_sms"]
        info = dict.fromkeys(ids, "DELIVRD")
        return HttpResponse(200, json.dumps({"success_request": {"info": info}}).encode())

    async with SmsClub(TOKEN, transport=MockTransport(gateway), clock=clock) as sms:
        started = clock.now()
        seen = [s async for s in sms.track(["11", "12"], every=30, deadline=300)]
        waited = clock.now() - started
    assert [(s.message_id, s.state) for s in seen] == [
        ("11", DeliveryState.DELIVRD),
        ("12", DeliveryState.DELIVRD),
    ]
    assert asked == [500] * 5 + [200]
    assert waited >= 30  # the second round came after the interval

    def refuse(request: HttpRequest) -> HttpResponse:
        return HttpResponse(401, json.dumps({"status": 401, "message": "Unauthorized"}).encode())

    async with SmsClub(TOKEN, transport=MockTransport(refuse), clock=clock) as sms:
        with pytest.raises(AuthenticationError):
            async for _ in sms.track(["11"], every=30, deadline=300):
                pass


def test_a_gateway_without_a_status_call_cannot_track() -> None:
    """SMSPlus has no status call: a clear error, not an AttributeError."""
    with pytest.raises(ConfigurationError, match="no status call"):
        SmsPlus(TOKEN).track(["1"])


@pytest.mark.parametrize(("every", "deadline"), [(0, 10), (-1, 10), (10, -1)])
def test_settings_are_checked(every: float, deadline: float) -> None:
    """Non-positive intervals and negative deadlines are refused at once."""
    with pytest.raises(ConfigurationError):
        SmsClub(TOKEN).track(["1"], every=every, deadline=deadline)


async def test_one_id_as_a_str_and_a_closed_client(clock: FakeClock) -> None:
    """track("100") follows id 100, not "1", "0", "0"; a bad id is refused; on a closed
    client the first round raises instead of polling until the deadline."""
    asked: list[list[str]] = []

    def gateway(request: HttpRequest) -> HttpResponse:
        ids = json.loads(request.body)["id_sms"]
        asked.append(ids)
        info = dict.fromkeys(ids, "DELIVRD")
        return HttpResponse(200, json.dumps({"success_request": {"info": info}}).encode())

    sms = SmsClub(TOKEN, transport=MockTransport(gateway), clock=clock)
    async with sms:
        seen = [s.message_id async for s in sms.track("100")]
    assert seen == ["100"] and asked == [["100"]]
    with pytest.raises(ConfigurationError):
        async for _ in sms.track(["100"], every=30, deadline=3600):
            pass
    with pytest.raises(InvalidInputError):
        sms.track([None])  # type: ignore[list-item]
    for bad in (None, b"12", 3.5):  # bytes would be read as ids 49 and 50
        with pytest.raises(InvalidInputError, match="message ids"):
            sms.track(bad)  # type: ignore[arg-type]

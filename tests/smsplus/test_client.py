"""SMSPlus end to end against the fake over loopback: 20,000 templated recipients each
getting exactly their own text, every code path, and parameters that stay with their number
through splits, repeats and validation drops (hypothesis)."""

from __future__ import annotations

import contextlib
import json
from collections import Counter
from collections.abc import Iterator
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from smsbridge import (
    AuthenticationError,
    HttpRequest,
    HttpResponse,
    InsufficientBalanceError,
    InvalidInputError,
    MockTransport,
    PhoneRules,
    SmsPlus,
    Status,
    Template,
)
from smsbridge.testing import FakeClock, FakeSmsPlus, Faults

from ..helpers import TOKEN

ORDER = "Hi {1}, order {2} ships {3}"


def az(i: int) -> str:
    return f"99450{i:07d}"


def recipients(count: int) -> Iterator[tuple[str, tuple[str, str, str]]]:
    for i in range(count):
        yield az(i), (f"Name{i}", f"A-{i}", "today" if i % 2 else "tomorrow")


async def test_twenty_thousand_recipients_each_get_their_own_text() -> None:
    """Every number receives exactly its own rendered text, once."""
    async with (
        FakeSmsPlus(tokens=[TOKEN], templates={3: ORDER}, rate_limit=None) as fake,
        SmsPlus(TOKEN, base_url=fake.url, rate=1000, concurrency=16) as sms,
    ):
        report = await sms.send_template(3, sender="Shop", to=recipients(20_000), keep="none")
    assert (report.accepted, report.requests) == (20_000, 200)
    assert fake.count(200, ["/api/message/templates"]) == 1  # looked up once, then checked
    got = {m.phone: m.text for m in fake.sent}
    assert len(fake.sent) == len(got) == 20_000
    for phone, (name, order, day) in recipients(20_000):
        assert got[phone] == f"Hi {name}, order {order} ships {day}"


async def test_a_parameter_no_request_can_carry_is_its_recipient_s_alone() -> None:
    """A lone surrogate in one recipient's parameters: that recipient is rejected, and the
    others of its request go (the request could not be built, and each was failed)."""
    to = [(f"99450123456{i}", ("A", str(i), "x")) for i in range(5)]
    to[2] = ("994501234562", ("A\ud800", "2", "x"))
    async with (
        FakeSmsPlus(tokens=[TOKEN], templates={3: ORDER}, rate_limit=None) as fake,
        SmsPlus(TOKEN, base_url=fake.url, rate=1000) as sms,
    ):
        report = await sms.send_template(3, sender="Shop", to=to)
    assert (report.accepted, report.rejected, report.failed, report.requests) == (4, 1, 0, 1)
    refused = next(o for o in report.outcomes if o.status is Status.REJECTED)
    assert refused.phone == "994501234562"
    assert refused.reason == "the template parameter holds a lone surrogate: it is no Unicode text"
    assert sorted(m.phone for m in fake.sent) == [p for i, (p, _) in enumerate(to) if i != 2]


async def test_a_parameter_holding_a_nul_rejects_its_recipient_alone() -> None:
    """A NUL in a template parameter would go into the message (a gateway may end it there),
    as in a text: that recipient is rejected before any request, the others go; a number
    given as parameter is read as ever."""
    to: list[tuple[str, tuple[Any, ...]]] = [
        (f"99450123456{i}", ("A", str(i), "x")) for i in range(4)
    ]
    to[1] = ("994501234561", ("a\x00b", "1", "x"))
    to[3] = ("994501234563", ("A", 3, "x\x00"))
    async with (
        FakeSmsPlus(tokens=[TOKEN], templates={3: ORDER}, rate_limit=None) as fake,
        SmsPlus(TOKEN, base_url=fake.url, rate=1000) as sms,
    ):
        report = await sms.send_template(3, sender="Shop", to=to)
    assert (report.accepted, report.rejected) == (2, 2)
    refused = {o.phone: o.reason for o in report.outcomes if o.status is Status.REJECTED}
    assert refused == dict.fromkeys(
        ["994501234561", "994501234563"],
        "a template parameter holds a NUL character: a gateway may end the message there",
    )
    assert sorted(m.phone for m in fake.sent) == ["994501234560", "994501234562"]


async def test_validation_before_any_request() -> None:
    """Bad numbers, foreign numbers, wrong counts and long texts cost no request."""
    to = [
        ("994501234567", ("A", "1", "x")),
        ("380501234567", ("A", "1", "x")),  # not Azerbaijani
        ("994501234568", ("A", "1")),  # two of three parameters
        ("994501234569", ("A", "1", "x" * 150)),  # 170 characters rendered
        ("0501234570", ["B", "2", "y"]),  # national format
        ("994501234571", "one string"),
        "not a pair",
    ]
    async with (
        FakeSmsPlus(tokens=[TOKEN], templates={3: ORDER}) as fake,
        SmsPlus(TOKEN, base_url=fake.url) as sms,
    ):
        report = await sms.send_template(3, sender="Shop", to=to)  # type: ignore[arg-type]
    reasons = {o.index: (o.status.value, o.reason) for o in report.outcomes}
    assert reasons == {
        0: ("accepted", None),
        1: ("rejected", "country code +380 is not served by this gateway (serves AZ)"),
        2: ("rejected", "template 3 takes 3 parameters, got 2"),
        3: ("rejected", "the text would be 170 characters, over 160"),
        4: ("accepted", None),
        5: ("rejected", "template 3 takes 3 parameters, got 1"),
        6: ("rejected", "not a (phone, parameters) pair"),
    }
    assert [m.phone for m in fake.sent] == ["994501234567", "994501234570"]
    assert fake.count(200, ["/api/sms/send"]) == 1


async def test_unknown_template_fails_fast() -> None:
    """A template the account does not have stops the send before it starts."""
    async with (
        FakeSmsPlus(tokens=[TOKEN], templates={3: ORDER}) as fake,
        SmsPlus(TOKEN, base_url=fake.url) as sms,
    ):
        with pytest.raises(InvalidInputError, match="template 9 is not among"):
            await sms.send_template(9, sender="Shop", to=[("994501234567", ())])
    assert fake.sent == []


async def test_a_template_that_cannot_be_looked_up_still_gets_its_parameters(
    clock: FakeClock,
) -> None:
    """The gateway cannot list templates (HTTP 500): the send goes ahead unchecked, and every
    recipient's parameters travel exactly as given, in requests of one width each, never
    padded with blanks ("Hi Bob, order  ships ")."""
    sent: list[dict[str, Any]] = []

    def gateway(request: HttpRequest) -> HttpResponse:
        if request.path == "/api/message/templates":
            return HttpResponse(500, b"<html>down</html>")
        sent.append(json.loads(request.body))
        return HttpResponse(200, b'{"code": 100}')

    to = [
        (az(0), ("Bob", "A-1", "today")),
        (az(1), ("Ann",)),
        (az(2), ("Eve", "A-3")),
        (az(3), ("Kim", "A-4", "later")),
    ]
    async with SmsPlus(TOKEN, transport=MockTransport(gateway), clock=clock) as sms:
        report = await sms.send_template(4, sender="Shop", to=to)
    assert report.accepted == 4
    given: dict[str, tuple[str, ...]] = {}
    for body in sent:
        columns = [
            body.get(k) for k in ("first_parameters", "second_parameters", "third_parameters")
        ]
        present = [c for c in columns if c is not None]
        assert columns[: len(present)] == present  # no gap: a width, not blanks
        for n, phone in enumerate(body["mobile_numbers"]):
            given[phone] = tuple(c[n] for c in present)
    assert given == dict(to)
    assert all("" not in values for values in given.values())


@pytest.mark.parametrize(
    ("setup", "to", "code", "status"),
    [
        ({"tokens": ["other"]}, [("994501234567", ("a",))], "101", Status.FAILED),
        ({"account_problem": "104"}, [("994501234567", ("a",))], "104", Status.FAILED),
        ({"senders": ["Other"]}, [("994501234567", ("a",))], "110", Status.REJECTED),
        ({}, [("994501234567", ("a",))], "111", Status.REJECTED),
        ({}, [("994501234567", ())], "113", Status.REJECTED),
        ({}, [("994501234567", ("x" * 200,))], "120", Status.REJECTED),
        ({"balance": 0}, [("994501234567", ("a",))], "119", Status.FAILED),
    ],
)
async def test_gateway_codes_reach_the_outcomes(
    setup: dict[str, object], to: list[tuple[str, tuple[str, ...]]], code: str, status: Status
) -> None:
    """Each code the gateway answers becomes the documented outcome, with its reason."""
    options: dict[str, object] = {"tokens": [TOKEN], "templates": {1: "Code {1}"}, **setup}
    # the template is passed in unchecked, so the gateway itself judges the request
    unchecked = Template(id=7 if code == "111" else 1)
    async with FakeSmsPlus(**options) as fake, SmsPlus(TOKEN, base_url=fake.url) as sms:  # type: ignore[arg-type]
        report = await sms.send_template(unchecked.id, sender="Shop", to=to, template=unchecked)
    outcome = report.outcomes[0]
    assert outcome.status is status
    assert fake.sent == []
    if status is Status.FAILED:
        assert report.error is not None and report.error.code == code
    else:
        assert fake.count(400, ["/api/sms/send"]) == 1


async def test_foreign_numbers_when_allowed_meet_code_121() -> None:
    """Widened number rules let a foreign number through: the gateway refuses with 121."""
    async with (
        FakeSmsPlus(tokens=[TOKEN], templates={1: "Code {1}"}) as fake,
        SmsPlus(TOKEN, base_url=fake.url, phones=PhoneRules("AZ")) as sms,
    ):
        report = await sms.send_template(1, sender="Shop", to=[("380501234567", ("1",))])
    assert report.outcomes[0].status is Status.REJECTED
    assert report.outcomes[0].reason == "The format of the mobile number is incorrect."


async def test_account_wide_codes_stop_the_send_and_fail_the_rest() -> None:
    """Balance for 150 of 500 at 100 per request: the second request meets 119."""
    async with (
        FakeSmsPlus(tokens=[TOKEN], templates={3: ORDER}, balance=150) as fake,
        SmsPlus(TOKEN, base_url=fake.url, concurrency=1) as sms,
    ):
        report = await sms.send_template(3, sender="Shop", to=recipients(500), keep="none")
    assert (report.accepted, report.failed, report.total) == (100, 400, 500)
    assert isinstance(report.error, InsufficientBalanceError)
    assert len(fake.sent) == 100

    async with (
        FakeSmsPlus(tokens=["x"], templates={3: ORDER}) as fake,
        SmsPlus(TOKEN, base_url=fake.url) as sms,
    ):
        report = await sms.send_template(
            3, sender="Shop", to=recipients(300), template=Template(id=3, text=ORDER), keep="none"
        )
    assert (report.failed, report.total) == (300, 300)
    assert isinstance(report.error, AuthenticationError)


async def test_code_122_and_garbage_are_uncertain_never_resent() -> None:
    """A send failure (122) or an unreadable answer may have sent: uncertain, one try."""
    faults = Faults(seed=1)
    async with (
        FakeSmsPlus(tokens=[TOKEN], templates={3: ORDER}, faults=faults) as fake,
        SmsPlus(TOKEN, base_url=fake.url) as sms,
    ):
        fake.script(["error_after", "garbage_after", "garbage_before"])
        report = await sms.send_template(3, sender="Shop", to=recipients(300), keep="all")
    assert report.uncertain == 300
    assert report.requests == 3  # three sends, none repeated
    assert len(fake.sent) == 200
    assert max(fake.sent_counts().values()) == 1


# --------------------------------------------------------------------------- lockstep property

POOL = [az(i) for i in range(6)] + ["99450", "12345", "+994 50 000 00 02"]
PARAMS = st.tuples(st.sampled_from(["a", "b", "ç", "ə"]), st.sampled_from(["1", "2"]))


def _lockstep_transport(rows: list[tuple[str, tuple[str, ...]]]) -> MockTransport:
    def handler(request: HttpRequest) -> HttpResponse:
        body = json.loads(request.body)
        numbers = body["mobile_numbers"]
        firsts, seconds = body["first_parameters"], body["second_parameters"]
        assert len(firsts) == len(seconds) == len(numbers)
        assert len(set(numbers)) == len(numbers), "a number twice in one request"
        rows.extend(zip(numbers, zip(firsts, seconds, strict=True), strict=True))
        return HttpResponse(200, b'{"success": true, "code": "100", "message": "ok"}')

    return MockTransport(handler)


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    entries=st.lists(st.tuples(st.sampled_from(POOL), PARAMS), max_size=60),
    batch_size=st.integers(1, 7),
    window=st.booleans(),
)
def test_parameters_stay_with_their_number(
    entries: list[tuple[str, tuple[str, str]]], batch_size: int, window: bool
) -> None:
    """Across batch boundaries, repeats and dropped invalid numbers, each sent row is an
    input recipient's own (number, parameters); nothing valid is lost; exact repeats are
    suppressed (with the window) and no request holds a number twice."""
    import anyio

    rows: list[tuple[str, tuple[str, ...]]] = []

    async def run() -> object:
        async with SmsPlus(
            TOKEN,
            transport=_lockstep_transport(rows),
            clock=FakeClock(),
            batch_size=batch_size,
            window_ttl=120 if window else 0,
        ) as sms:
            return await sms.send_template(
                3, sender="Shop", to=entries, template=Template(id=3, text="{1}{2}")
            )

    report = anyio.run(run)
    rules = PhoneRules("AZ", countries=["AZ"])
    valid: list[tuple[str, tuple[str, ...]]] = []
    for phone, params in entries:
        with contextlib.suppress(ValueError):
            valid.append((rules.normalise(phone), params))
    expected = Counter(set(valid)) if window else Counter(valid)
    assert Counter(rows) == expected
    assert report.total == len(entries)  # type: ignore[attr-defined]
    assert report.accepted == len(rows)  # type: ignore[attr-defined]
    assert report.suppressed == (len(valid) - len(set(valid)) if window else 0)  # type: ignore[attr-defined]

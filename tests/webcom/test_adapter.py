"""Webcom, purely: envelopes, answers mapped back across message entries, every error shape,
state, balance, delivery reports."""

from __future__ import annotations

import datetime
import json
from typing import Any

import anyio
import msgspec
import pytest

from smsbridge import (
    AuthenticationError,
    DeliveryState,
    GatewayError,
    HttpResponse,
    InsufficientBalanceError,
    RejectedError,
    ResponseDecodeError,
    SmsBridgeError,
    Status,
    UnavailableError,
    acknowledge,
    parse_delivery_reports,
)
from smsbridge._core.gateway import Batch
from smsbridge._core.ranges import IdBlocks, MemoryRanges
from smsbridge._webcom.adapter import WebcomGateway, WebcomJob, format_validity
from smsbridge._webcom.client import MOSCOW

GW = WebcomGateway(token="webcom-secret")
KEY = b"k" * 16
BATCH = Batch(
    [10, 11, 12, 13],
    ["79161234567", "79161234568", "79161234569", "79161234570"],
    ["sale", "hello", "sale", "bye"],
)


def claimed(key: bytes, start: int) -> IdBlocks:
    """Id blocks with the first block claimed at ``start``."""
    ids = IdBlocks(MemoryRanges(start), key, 31)
    anyio.run(ids.cover, 99)
    return ids


JOB = WebcomJob(sender="Shop", ids=claimed(KEY, 1000), validity="2026-12-31 23:59:59")


def answer(body: Any, status: int = 200) -> HttpResponse:
    return HttpResponse(status, body if isinstance(body, bytes) else json.dumps(body).encode())


def test_envelope_groups_texts_and_carries_client_ids() -> None:
    """Recipients sharing a text share a message entry; each phone has its stable id."""
    request = GW.build_send(BATCH, JOB)
    body = json.loads(request.body)
    assert request.path == "/json"
    assert request.headers["Content-Type"] == "text/json; charset=utf-8"
    assert body["token"] == "webcom-secret"
    assert "webcom-secret" not in repr(request)
    entries = [(m["text"], [p["phone"] for p in m["phones"]]) for m in body["message"]]
    assert entries == [
        ("sale", ["79161234567", "79161234569"]),
        ("hello", ["79161234568"]),
        ("bye", ["79161234570"]),
    ]
    first = body["message"][0]
    assert first["type_send_1"] == "sms" and first["sender"] == "Shop"
    assert first["phones"][0] == {
        "phone": "79161234567",
        "client_id_sms": 1011,  # 1 + the block's start + the recipient's offset
        "validity_period": "2026-12-31 23:59:59",
    }
    again = json.loads(GW.build_send(BATCH, JOB).body)
    assert again == body  # a retry carries the same ids
    other = WebcomJob(sender="Shop", ids=claimed(b"x" * 16, 5000))
    assert json.loads(GW.build_send(BATCH, other).body)["message"][0]["phones"][0] == {
        "phone": "79161234567",
        "client_id_sms": 5011,
    }


def test_login_and_password_instead_of_a_token() -> None:
    """Credentials by login travel as login and password, and no token field."""
    gateway = WebcomGateway(login="shop", password="pw")
    body = json.loads(gateway.build_send(BATCH, JOB).body)
    assert (body["login"], body["password"], "token" in body) == ("shop", "pw", False)
    assert "pw" not in repr(gateway)


def test_answers_map_back_across_entries() -> None:
    """information runs in envelope order (sale, sale, hello, bye), not input order."""
    body = {
        "information": [
            {"state": "send", "id_sms": 1},
            {"error": "Phone number is on the stop list"},
            {"state": "send", "id_sms": 2},
            {"state": "send", "id_sms": "3", "error": ""},
        ]
    }
    result = GW.parse_send(BATCH, answer(body), JOB)
    assert result.statuses == [Status.ACCEPTED, Status.ACCEPTED, Status.REJECTED, Status.ACCEPTED]
    assert result.details == ["1", "2", "Phone number is on the stop list", "3"]
    assert result.account_error is None


def test_an_entry_with_an_id_and_an_error_of_nothing_went() -> None:
    """The document's entries carry ``state``, ``id_sms`` and ``error`` each: an error of
    "0" or blanks beside an id is no error (they were rejected, and sent again would go
    twice). An answer behind a byte-order mark is read as without it."""
    body = {
        "information": [
            {"state": "send", "id_sms": 1, "error": "0"},
            {"state": "send", "id_sms": 2, "error": " "},
            {"state": "send", "id_sms": 3, "error": 0},
            {"error": "Phone number is on the stop list"},
        ]
    }
    for raw in (msgspec.json.encode(body), b"\xef\xbb\xbf" + msgspec.json.encode(body)):
        result = GW.parse_send(BATCH, HttpResponse(200, raw, {}), JOB)
        assert result.statuses == [Status.ACCEPTED] * 3 + [Status.REJECTED]


def test_held_until_paid_in_any_words_is_uncertain_and_stops_the_send() -> None:
    """ "Queued until you top up", as the documents write it, with a comma, in the plural, in
    English, or "not enough money" alone: uncertain (the gateway sends it once paid), and the
    send stops; before, any wording but one exact phrase was a refusal (rejected, sent again
    by a caller after paying: twice)."""
    for text in (
        "Недостаточно средств для отправки SMS. SMS будет отправлена, как только вы пополните "
        "счет по данному направлению.",
        "SMS будут отправлены, как только вы пополните счет",
        "Not enough money: the SMS will be sent once you top up your account.",
        "Недостаточно средств",
    ):
        body = {"information": [{"state": "send", "id_sms": 1}] + [{"error": text}] * 3}
        result = GW.parse_send(BATCH, answer(body), JOB)
        assert result.statuses == [Status.ACCEPTED] + [Status.UNCERTAIN] * 3, text
        assert isinstance(result.account_error, InsufficientBalanceError)


def test_a_document_error_beside_entries_with_ids_leaves_those_sent() -> None:
    """A document-level error beside entries that carry ids: those went (they were failed,
    and failed frees the window: the next send sends them again); the answer being at odds
    with itself, the entries without one stay unknown, with the error as their reason, and
    an account's error stops the send, also where every entry has its id."""
    body: dict[str, Any] = {
        "error": "Закончились SMS.",
        "information": [
            {"state": "send", "id_sms": 1},
            {"state": "send", "id_sms": 2},
            {"state": "send", "id_sms": 3},
            {},
        ],
    }
    result = GW.parse_send(BATCH, answer(body), JOB)
    assert result.statuses == [Status.ACCEPTED] * 3 + [Status.UNCERTAIN]  # in envelope order
    assert sorted(map(str, result.details[:3])) == ["1", "2", "3"]  # see the test above
    assert result.details[3] == "Закончились SMS."
    assert isinstance(result.account_error, InsufficientBalanceError)
    body["information"][3] = {"state": "send", "id_sms": 4}
    result = GW.parse_send(BATCH, answer(body), JOB)
    assert result.statuses == [Status.ACCEPTED] * 4
    assert isinstance(result.account_error, InsufficientBalanceError)
    body["error"] = "0"  # an error of nothing, as beside an entry
    assert GW.parse_send(BATCH, answer(body), JOB).account_error is None


def test_per_phone_out_of_sms_stops_the_send() -> None:
    """A per-phone balance error rejects that phone and stops the send."""
    body = {"information": [{"state": "send", "id_sms": 1}] + [{"error": "Out of SMS"}] * 3}
    result = GW.parse_send(BATCH, answer(body), JOB)
    assert isinstance(result.account_error, InsufficientBalanceError)


@pytest.mark.parametrize(
    ("response", "kind", "maybe", "splittable"),
    [
        # the request could not be read: every request would fail, so the send stops
        (answer({"error": "Incorrect JSON document format"}), GatewayError, False, False),
        (
            answer({"error": "Your account is locked Incorrect login or password"}),
            AuthenticationError,
            False,
            False,
        ),
        (answer({"error": "POST data is missing"}), GatewayError, False, False),
        (
            answer({"error": "We have run out of SMS. Contact your manager"}, 400),
            InsufficientBalanceError,
            False,
            False,
        ),
        (answer({"error": "Account blocked"}, 400), AuthenticationError, False, False),
        (answer({"error": "There is no such sender"}, 400), RejectedError, False, False),
        (answer({"error": "SMS text rejected by moderator"}, 400), RejectedError, False, False),
        (answer({"error": "Phone number is on the stop list"}, 400), RejectedError, False, True),
        (answer({"error": "This destination is closed for you"}, 400), RejectedError, False, True),
        (
            answer({"information": [{"state": "send", "id_sms": 1}]}),
            ResponseDecodeError,
            True,
            False,
        ),
        (answer({"something": "else"}), ResponseDecodeError, True, False),
        (answer(b"<html>oops</html>"), ResponseDecodeError, True, False),
        (answer(b"<html>oops</html>", 503), UnavailableError, True, False),
        (answer({"error": "internal"}, 500), UnavailableError, True, False),
    ],
)
def test_document_level_errors(
    response: HttpResponse, kind: type[SmsBridgeError], maybe: bool, splittable: bool
) -> None:
    """Errors in 200 and 400 answers, garbage and short answers are typed."""
    with pytest.raises(kind) as caught:
        GW.parse_send(BATCH, response, JOB)
    assert type(caught.value) is kind
    assert caught.value.maybe_processed is maybe
    assert getattr(caught.value, "splittable", False) is splittable
    assert "webcom-secret" not in str(caught.value)


def test_state_and_balance() -> None:
    """States map to the shared vocabulary (``partly_deliver``: final, never called
    undelivered); an unknown id is "not found" however the gateway says it; state.php
    carries ``detail`` as documented; balance reads money and per-area counts by either
    name, unlimited in either language, and leaves out a package it cannot read."""
    response = answer(
        [
            {"id_sms": 82216, "time_change_state": "2021-04-26 15:15:03", "state": "deliver"},
            {"id_sms": 82217, "state": "partly_deliver"},
            {"id_sms": 82218, "state": "read"},
            {
                "id_sms": 82219,
                "time_change_state": "",
                "state": "Сообщение с таким ID не принималось",
            },
        ]
    )
    states = GW.parse_state(["82216", "82217", "82218", "82219", "9"], response)
    assert [(s.state, s.raw) for s in states[:3]] == [
        (DeliveryState.DELIVRD, "deliver"),
        (DeliveryState.UNCONFIRMED, "partly_deliver"),
        (DeliveryState.DELIVRD, "read"),
    ]
    assert [s.state for s in states[3:]] == [DeliveryState.UNKNOWN] * 2
    assert all(s.error is not None and s.error.startswith("not found") for s in states[3:])
    missing = GW.parse_state(["1"], answer({"error": "SMS not found"}))
    assert missing[0].error == "not found: SMS not found"
    query = json.loads(GW.build_state(["82216"]).body)
    assert (query["id_sms"], query["detail"]) == (82216, 1)
    balance = GW.parse_balance(
        answer(
            {
                "money": "19023,9",
                "currency": "RUR",
                "information": [
                    {"type_sms": "sms", "area": "Tele2", "num_sms": "72029"},
                    {"type_sms": "sms", "area": "MTS", "sms": 500},
                    {"type_sms": "viber", "area": "all", "num_sms": "Unlim"},
                    {"type_sms": "sms", "area": "Все", "num_sms": "Безлимит"},
                    {"type_sms": "sms", "area": "Beeline", "num_sms": "many"},
                    "not a package",
                ],
            }
        )
    )
    assert str(balance.money) == "19023.9" and balance.currency == "RUR"
    assert [(p.channel, p.area, p.count) for p in balance.packages] == [
        ("sms", "Tele2", 72029),
        ("sms", "MTS", 500),
        ("viber", "all", None),
        ("sms", "Все", None),
    ]
    with pytest.raises(ResponseDecodeError):
        GW.parse_balance(answer({"money": "lots"}))


def test_validity_is_written_in_the_gateways_zone() -> None:
    """Aware times convert to Moscow time; naive ones are taken as given."""
    utc = datetime.datetime(2026, 11, 22, 21, 0, tzinfo=datetime.UTC)
    assert format_validity(utc, MOSCOW) == "2026-11-23 00:00:00"
    assert format_validity(datetime.datetime(2026, 1, 2, 3, 4, 5), MOSCOW) == "2026-01-02 03:04:05"
    assert format_validity(None, MOSCOW) is None


def test_delivery_reports_parse_and_acknowledge() -> None:
    """Reports decode to the shared states; only what is passed is acknowledged."""
    body = json.dumps(
        [
            {"id_sms": 3234, "time": "2011-01-01 12:57:46", "state": "deliver"},
            {"id_sms": 3235, "time": "bad time", "state": "weird"},
            {"time": "2011-01-01 12:57:46", "state": "deliver"},
            {"id_sms": 3236, "time": 1293886666, "state": "deliver"},  # a time of another form
            {"id_sms": 3237.0, "time": "", "state": "deliver"},  # an id written as a float
        ]
    ).encode()
    reports = parse_delivery_reports(body)
    assert [(r.message_id, r.state, r.at) for r in reports] == [
        ("3234", DeliveryState.DELIVRD, datetime.datetime(2011, 1, 1, 12, 57, 46)),
        ("3235", DeliveryState.UNKNOWN, None),
        ("3236", DeliveryState.DELIVRD, None),  # kept (dropped, it was never acknowledged)
        ("3237", DeliveryState.DELIVRD, None),
    ]
    assert reports[2].time == "1293886666"
    assert json.loads(acknowledge(["3234", "3234", "x1"])) == [{"id_sms": 3234}, {"id_sms": "x1"}]
    for garbage in (b"<html>", b'"string"', b"42"):
        with pytest.raises(ResponseDecodeError):
            parse_delivery_reports(garbage)


def test_ids_that_are_not_plain_numbers_are_acknowledged_as_they_came() -> None:
    """An id of 5,000 digits passed the int limit, "²" passes ``isdigit`` but not ``int``
    (a 500 after the reports were stored), and "١" was given back as 1, another id."""
    ids = ["42", "9" * 5000, "²", "١"]
    assert json.loads(acknowledge(ids)) == [{"id_sms": 42}] + [{"id_sms": i} for i in ids[1:]]

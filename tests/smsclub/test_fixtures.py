"""SMS Club's answers as its documents and public clients show them (tests/fixtures/smsclub,
with their provenance), through the adapter's pure parsers."""

from __future__ import annotations

from decimal import Decimal
from pathlib import Path

import pytest

from smsbridge import DeliveryState, HttpResponse, RejectedError, Status
from smsbridge._core.gateway import Batch
from smsbridge._smsclub.adapter import SmsClubGateway, SmsClubJob

FIXTURES = Path(__file__).parents[1] / "fixtures" / "smsclub"
GW = SmsClubGateway("t")
JOB = SmsClubJob(sender="Shop", text="hi")
A, R = Status.ACCEPTED, Status.REJECTED


def answer(name: str, status: int = 200) -> HttpResponse:
    return HttpResponse(status, (FIXTURES / name).read_bytes())


@pytest.mark.parametrize(
    ("name", "phones", "statuses", "details"),
    [
        ("send_success_doc.json", ["380989361131"], [A], ["106"]),
        (
            "send_success_two_numbers_mock.json",
            ["380971234568", "380971234567"],
            [A, A],
            ["107", "106"],
        ),
        ("send_success_10digit_id_mock.json", ["380931234567"], [A], ["1241725993"]),
        (
            "send_add_info_incorrect_phone_mock.json",
            ["38093123456789"],
            [R],
            ["Incorrect phone number"],
        ),
        (
            "send_add_info_invalid_recipient_ru_comment.json",
            ["380XXXXXXXX"],
            [R],
            ["380XXXXXXXX: Некорректный номер получателя"],
        ),
    ],
)
def test_send_answers(
    name: str, phones: list[str], statuses: list[Status], details: list[str]
) -> None:
    """Accepted numbers get their ids whatever the order; refused ones the gateway's words."""
    result = GW.parse_send(Batch(list(range(len(phones))), phones), answer(name), JOB)
    assert result.statuses == statuses
    assert result.details == details
    assert result.account_error is None


def test_a_refused_sender_name_refuses_the_request() -> None:
    """HTTP 400 naming ``src_addr`` (in Ukrainian): the request's recipients are rejected
    with the gateway's words, field by field."""
    with pytest.raises(RejectedError) as refused:
        GW.parse_send(
            Batch([0], ["380931234567"]), answer("send_add_info_src_addr_400_mock.json", 400), JOB
        )
    assert refused.value.gateway_message == "src_addr: Некоректне Альфа Ім'я"
    assert not refused.value.maybe_processed and not refused.value.account_wide


def test_balance_answer() -> None:
    balance = GW.parse_balance(answer("balance_success_mock.json"))
    assert (balance.money, balance.currency) == (Decimal("8111.1700"), "UAH")


@pytest.mark.parametrize(
    ("name", "ids"),
    [("status_enroute_doc.json", ["107"]), ("status_two_enroute_mock.json", ["1235", "1234"])],
)
def test_status_answers(name: str, ids: list[str]) -> None:
    statuses = GW.parse_status(ids, answer(name))
    assert [(s.message_id, s.state) for s in statuses] == [(i, DeliveryState.ENROUTE) for i in ids]


def test_every_fixture_is_read_by_a_test() -> None:
    """A fixture added to the folder must be given a test here."""
    source = Path(__file__).read_text(encoding="utf-8")
    assert all(f'"{path.name}"' in source for path in FIXTURES.glob("*.json"))

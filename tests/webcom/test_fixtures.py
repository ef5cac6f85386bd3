"""Webcom's answers as its documents show them, in English and Russian (tests/fixtures/webcom,
with their provenance), through the adapter's pure parsers."""

from __future__ import annotations

from decimal import Decimal
from pathlib import Path

import anyio
import pytest

from smsbridge import DeliveryState, HttpResponse, RejectedError, Status, parse_delivery_reports
from smsbridge._core.gateway import Batch
from smsbridge._core.ranges import IdBlocks, MemoryRanges
from smsbridge._webcom.adapter import WebcomGateway, WebcomJob
from smsbridge._webcom.texts import Kind, kind_of

FIXTURES = Path(__file__).parents[1] / "fixtures" / "webcom"
GW = WebcomGateway(token="t")
IDS = IdBlocks(MemoryRanges(0), b"k", 31)
anyio.run(IDS.cover, 99)
JOB = WebcomJob(sender="Shop", ids=IDS, text="hi")
BATCH = Batch([0, 1], ["79161234567", "79161234568"])


def answer(name: str, status: int = 200) -> HttpResponse:
    return HttpResponse(status, (FIXTURES / name).read_bytes())


@pytest.mark.parametrize(
    ("name", "russia"),
    [("json_balance_en_doc.json", "Russia"), ("json_balance_ru_doc.json", "Россия")],
)
def test_balance_in_either_language(name: str, russia: str) -> None:
    """Money, and per-area packages: a count, or unlimited ("Unlim" / "Безлимит") as None."""
    balance = GW.parse_balance(answer(name))
    assert (balance.money, balance.currency) == (Decimal("19023.9"), "RUR")
    assert [(p.channel, p.area, p.count) for p in balance.packages] == [
        ("sms", "Tele2", 72029),
        ("sms", russia, None),
    ]


def test_the_documented_400_refuses_the_request() -> None:
    with pytest.raises(RejectedError) as refused:
        GW.parse_send(BATCH, answer("json_error_400_doc.json", 400), JOB)
    assert refused.value.gateway_message == "Error message"


def test_the_send_answers_shape() -> None:
    """The document's shape (placeholders): one entry per phone; an entry with an error is
    that phone's refusal, in the gateway's words."""
    result = GW.parse_send(BATCH, answer("json_send_response_doc_template.json"), JOB)
    assert result.statuses == [Status.REJECTED, Status.REJECTED]
    assert result.details == ["Error message.", "Error message."]


def test_state_with_detail() -> None:
    (status,) = GW.parse_state(["82216"], answer("json_state_deliver_doc.json"))
    assert (status.message_id, status.state, status.raw) == (
        "82216",
        DeliveryState.DELIVRD,
        "deliver",
    )


def test_the_webhooks_shape() -> None:
    """The document's webhook shape (placeholders): two reports, an unknown state word kept
    raw as UNKNOWN, the time read."""
    reports = parse_delivery_reports((FIXTURES / "json_webhook_doc_template.json").read_bytes())
    assert [(r.state, r.raw, r.time) for r in reports] == [
        (DeliveryState.UNKNOWN, "Status", "2011-01-01 12:57:46")
    ] * 2


def test_every_fixture_is_read_by_a_test() -> None:
    """A fixture added to the folder must be given a test here."""
    source = Path(__file__).read_text(encoding="utf-8")
    assert all(f'"{path.name}"' in source for path in FIXTURES.glob("*.json"))


# the platform's error texts as its documents and its clients (XML API and other brands of the
# platform) show them; see tests/fixtures/PROVENANCE.md
PLATFORM_TEXTS = [
    ("Неправильный формат JSON документа", "FORMAT"),
    ("Incorrect JSON document format", "FORMAT"),
    ("POST данные отсутствуют", "FORMAT"),
    ("Ваш аккаунт заблокирован", "ACCOUNT"),
    ("Your account is locked", "ACCOUNT"),
    ("Неправильный логин или пароль", "ACCOUNT"),
    ("Incorrect login or password", "ACCOUNT"),
    ("Аккаунт заблокирован.", "ACCOUNT"),
    ("У нас закончились SMS. Для разрешения проблемы свяжитесь с менеджером.", "BALANCE"),
    ("Закончились SMS.", "BALANCE"),
    ("Укажите номер телефона.", "NUMBER"),
    ("Номер телефона присутствует в стоп-листе.", "NUMBER"),
    ("Данное направление закрыто для вас.", "NUMBER"),
    ("Данное направление закрыто.", "NUMBER"),
    ("Номер телефона должен быть меньше 15 символов.", "NUMBER"),
    ("Текст SMS отклонен модератором.", "CONTENT"),
    ("Нет отправителя.", "CONTENT"),
    (
        "Отправитель не должен превышать 15 символов для цифровых номеров и 11 символов для "
        "буквенно-числовых.",
        "CONTENT",
    ),
    ("Нет текста сообщения.", "CONTENT"),
    ("Такого отправителя Нет.", "CONTENT"),
    ("Такого отправителя нет.", "CONTENT"),
    ("Отправитель не прошел модерацию.", "CONTENT"),
    (
        "Недостаточно средств для отправки SMS. SMS будет отправлена как только вы пополните "
        "счет по данному направлению.",
        "QUEUED",
    ),
    ("error: Попытка отправки более одного одинакового запроса в течение минуты", "REPEAT"),
    # the same in other words: a refusal to resend would send it twice once paid
    (
        "Недостаточно средств для отправки SMS. SMS будет отправлена, как только вы пополните "
        "счет по данному направлению.",
        "QUEUED",
    ),
    ("Недостаточно средств. SMS будут отправлены, как только вы пополните счет.", "QUEUED"),
    ("Not enough money: the SMS will be sent once you top up your account.", "QUEUED"),
    ("Недостаточно средств на счете", "QUEUED"),
    ("Insufficient funds.", "QUEUED"),
]


@pytest.mark.parametrize(("text", "kind"), PLATFORM_TEXTS)
def test_the_platforms_texts_mean_what_they_say(text: str, kind: str) -> None:
    assert kind_of(text) is Kind[kind]

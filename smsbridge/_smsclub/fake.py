"""A fake SMS Club: the documented endpoints, answers and limits, on loopback."""

from __future__ import annotations

import itertools
import re
from collections.abc import Callable, Iterable
from decimal import Decimal
from typing import Any, Unpack

from .._fake import (
    FakeAnswer,
    FakeGateway,
    FakeOptions,
    FakeRequest,
    Reply,
    SentMessage,
    decode_json,
    json_answer,
    texts_of,
)

__all__ = ["FakeSmsClub"]

_VALID = re.compile(r"\d{10,15}")

# The gateway's words in English and Russian (its site and SDK speak both), kept here and not
# taken from the adapter's table: a fake that shares the table cannot catch a wrong one.
TEXTS = {
    "phones": (
        "Incorrect phones array or phones quantity greater than 100",
        "Некорректный массив телефонов или количество телефонов больше 100",
    ),
    "phone": ("Incorrect phone number", "Некорректный номер получателя"),
    "blacklisted": ("This number is in the black list", "Этот номер в черном списке"),
    "money": (
        "Not enough money. It is necessary to refill the balance",
        "Недостаточно средств. Необходимо пополнить баланс",
    ),
    "not found": ("Message not found", "Сообщение не найдено"),
}
STATE_WORDS = {
    "ENROUTE": "Отправлено",
    "DELIVRD": "Доставлено",
    "EXPIRED": "Просрочено",
    "UNDELIV": "Недоставляемое",
    "REJECTD": "Отклонено",
}
"""The status words in Russian, as the gateway's own SDK maps them."""


def _answer(info: Any = None, add_info: Any = None) -> FakeAnswer:
    success: dict[str, Any] = {}
    if info is not None:
        success["info"] = info
    if add_info:
        success["add_info"] = add_info
    return json_answer({"success_request": success})


def _error(status: int, message: str) -> FakeAnswer:
    return json_answer({"status": status, "message": message}, status)


class FakeSmsClub(FakeGateway):
    """SMS Club as its documents describe it, for tests and staging.

    Bearer-token auth (401), 429 past ``rate_limit`` requests in any sliding ``rate_period``,
    453 when a text goes again to a number within ``duplicate_ttl`` seconds, partial success
    with ``add_info`` for malformed and blacklisted numbers, balance and sender names.
    ``sent`` records every message accepted.

    Args:
        tokens: accepted bearer tokens.
        senders: approved sender names.
        blacklist: numbers answered "This number is in the black list".
        balance: money on the account; each accepted message costs ``price``.
        currency: the balance's currency.
        duplicate_ttl: the 453 window in seconds (0 disables it).
        **options: rate limit, faults, host, port, clock, language (``"ru"``: refusals and
            status words in Russian; see :class:`FakeOptions`).
    """

    def __init__(
        self,
        *,
        tokens: Iterable[str] = ("test-token",),
        senders: Iterable[str] = ("Shop",),
        blacklist: Iterable[str] = (),
        balance: Decimal = Decimal("1000.0000"),
        price: Decimal = Decimal(0),
        currency: str = "UAH",
        duplicate_ttl: float = 120.0,
        **options: Unpack[FakeOptions],
    ) -> None:
        super().__init__(**options)
        self.tokens = set(tokens)
        self.sender_states: dict[str, str] = dict.fromkeys(senders, "Approved")
        self.blacklist = set(blacklist)
        self.balance = balance
        self.price = price
        self.currency = currency
        self.duplicate_ttl = duplicate_ttl
        self.states: dict[str, str] = {}
        """Each message's state, in the API's own words (``ENROUTE``, ``DELIVRD``…)."""
        self.texts = texts_of(self.language, TEXTS)
        # keyed by "text\0phone": str keys keep this big dict out of the cyclic GC's way,
        # whose pauses would otherwise skew the arrival times the rate limit is judged on
        self._last_sent: dict[str, float] = {}
        self._ids = itertools.count(100)
        for path, handler in (
            ("/sms/send", self._send),
            ("/v2/sms/send", self._send_personal),
            ("/sms/status", self._status),
            ("/sms/balance", self._balance),
            ("/sms/originator", self._originators),
            ("/originators/registration-originators", self._register),
            ("/originators/stat-originators", self._stat_originators),
        ):
            self.route(path, self._authenticated(handler))

    def credential(self, request: FakeRequest) -> str | None:
        """The bearer token."""
        return request.headers.get("authorization", "")

    def numbers(self, request: FakeRequest) -> tuple[str, ...]:
        """``phone``, or the phones of ``data_message``."""
        body = decode_json(request.body)
        if not isinstance(body, dict):
            return ()
        phones = body.get("phone")
        if isinstance(phones, list):
            return tuple(str(p) for p in phones)
        data = body.get("data_message")
        if isinstance(data, list):
            return tuple(str(e.get("phone", "")) for e in data if isinstance(e, dict))
        return ()

    def _authenticated(
        self, handler: Callable[[FakeRequest, dict[str, Any]], Reply]
    ) -> Callable[[FakeRequest], Reply]:
        def guarded(request: FakeRequest) -> Reply:
            header = request.headers.get("authorization", "")
            if not header.startswith("Bearer ") or header[7:] not in self.tokens:
                return json_answer(
                    {
                        "name": "Unauthorized",
                        "message": "Your request was made with invalid credentials.",
                        "code": 0,
                        "status": 401,
                    },
                    401,
                )
            body = decode_json(request.body) if request.body else {}
            if not isinstance(body, dict):
                return _error(400, "Incorrect JSON")
            return handler(request, body)

        return guarded

    # ----------------------------------------------------------------- sending

    def _send(self, request: FakeRequest, body: dict[str, Any]) -> Reply:
        phones = body.get("phone")
        if not isinstance(phones, list) or len(phones) > 100:
            return self.refuse(phones or (), _answer(add_info={"phone": self.texts["phones"]}))
        text = body.get("message")
        pairs = [(str(p), text) for p in phones]
        return self._deliver(request, body, pairs)

    def _send_personal(self, request: FakeRequest, body: dict[str, Any]) -> Reply:
        data = body.get("data_message")
        if not isinstance(data, list) or len(data) > 100:
            return _answer(add_info={"data_message": self.texts["phones"]})
        pairs = []
        for entry in data:
            if not isinstance(entry, dict):
                return _answer(add_info={"data_message": self.texts["phones"]})
            pairs.append((str(entry.get("phone", "")), entry.get("message")))
        return self._deliver(request, body, pairs)

    def _deliver(
        self, request: FakeRequest, body: dict[str, Any], pairs: list[tuple[str, Any]]
    ) -> Reply:
        sender = body.get("src_addr")
        phones = [phone for phone, _ in pairs]
        if not sender:
            return self.refuse(
                phones, _answer(add_info={"src_addr": "Sender Name cannot be blank."})
            )
        state = self.sender_states.get(sender)
        if state is None:
            return self.refuse(phones, _answer(add_info={"src_addr": "Sender name is incorrect"}))
        if state != "Approved":
            return self.refuse(
                phones,
                _answer(
                    add_info={"src_addr": f'Sender Name has state "{state}" and not available'}
                ),
            )
        if not pairs:
            return _answer(add_info={"phone": "Phone number cannot be blank."})
        if any(not isinstance(text, str) or not text for _, text in pairs):
            return self.refuse(phones, _answer(add_info={"message": "Message cannot be blank."}))

        refused = self.fault_before()
        if refused is not None:
            return refused

        now = request.at
        seen: set[str] = set()
        for phone, text in pairs:
            key = f"{text}\x00{phone}"
            last = self._last_sent.get(key)
            if (self.duplicate_ttl and last is not None and now - last < self.duplicate_ttl) or (
                key in seen
            ):
                return self.refuse(
                    phones,
                    _error(453, "Duplication of the message in an interval of less than 2 minutes"),
                )
            seen.add(key)

        info: dict[str, str] = {}
        add_info: dict[str, str] = {}
        for phone, text in pairs:
            if not _VALID.fullmatch(phone):
                add_info[phone] = f"{self.texts['phone']} ({phone})"
                self.refused.append(phone)
            elif phone in self.blacklist:
                add_info[phone] = self.texts["blacklisted"]
                self.refused.append(phone)
            elif self.balance < self.price:
                add_info[phone] = self.texts["money"]
                self.refused.append(phone)
            else:
                self.balance -= self.price
                message_id = str(next(self._ids))
                info[message_id] = phone
                self._last_sent[f"{text}\x00{phone}"] = now
                self.sent.append(SentMessage(message_id, phone, text, sender, now))
                self.states[message_id] = "ENROUTE"

        return self.fault_after(_answer(info=info or None, add_info=add_info))

    # ----------------------------------------------------------------- other calls

    def _status(self, request: FakeRequest, body: dict[str, Any]) -> Reply:
        ids = body.get("id_sms")
        if not isinstance(ids, list) or not ids or len(ids) > 100:
            return _answer(add_info="Incorrect id_sms")
        words = STATE_WORDS if self.language == "ru" else {}
        info = {
            str(i): words.get(self.states[str(i)], self.states[str(i)])
            for i in ids
            if str(i) in self.states
        }
        unknown = {str(i): self.texts["not found"] for i in ids if str(i) not in self.states}
        if not info:
            return _answer(add_info="Incorrect id_sms")
        return _answer(info=info, add_info=unknown)

    def _balance(self, request: FakeRequest, body: dict[str, Any]) -> Reply:
        money = self.balance.quantize(Decimal("0.0001"))
        return _answer(info={"money": str(money), "currency": self.currency})

    def _originators(self, request: FakeRequest, body: dict[str, Any]) -> Reply:
        approved = [name for name, state in self.sender_states.items() if state == "Approved"]
        return _answer(info=approved)

    def _register(self, request: FakeRequest, body: dict[str, Any]) -> Reply:
        required = {
            "sender_id": "Sender name cannot be blank.",
            "company": "Legal name of the company cannot be blank.",
            "company_type": "Company type cannot be blank.",
        }
        missing = {field: text for field, text in required.items() if not body.get(field)}
        if missing:
            return _answer(add_info=missing)
        name = str(body["sender_id"])
        self.sender_states.setdefault(name, "Being moderated")
        return _answer(info={"originator": name, "status": self.sender_states[name]})

    def _stat_originators(self, request: FakeRequest, body: dict[str, Any]) -> Reply:
        name = body.get("sender_id")
        if name is None:
            return _answer(info=dict(self.sender_states))
        if name in self.sender_states:
            return _answer(info={name: self.sender_states[name]})
        return _answer(add_info={str(name): "Error. Data not found"})

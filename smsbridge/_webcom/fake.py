"""A fake Webcom Mobi (mysmpp): envelopes, client_id_sms replay, state, balance, webhooks,
answering in English or Russian."""

from __future__ import annotations

import asyncio
import datetime
import re
from collections.abc import Iterable, Mapping
from decimal import Decimal
from typing import Any, Literal, Unpack

import aiohttp
import msgspec

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

__all__ = ["FakeWebcom"]

_SENDER = re.compile(r"[A-Za-z0-9 ._&!'-]{1,11}|\d{1,15}")


# The platform's texts in its two languages (its English and Russian pages), kept here
# independently of the adapter: a fake that shared the adapter's table could not catch it out.
TEXTS: dict[str, tuple[str, str]] = {
    "json": ("Incorrect JSON document format", "Неправильный формат XML документа"),
    "no_post": ("POST data is missing", "POST данные отсутствуют"),
    "auth": ("Your account is locked Incorrect login or password", "Неправильный логин или пароль"),
    "out": ("Out of SMS", "Закончились SMS."),
    "no_phone": ("Specify phone number", "Укажите номер телефона."),
    "stop_list": ("Phone number is on the stop list", "Номер телефона присутствует в стоп-листе."),
    "closed": ("This destination is closed", "Данное направление закрыто."),
    "too_long": (
        "Phone number must be less than 15 characters",
        "Номер телефона должен быть меньше 15 символов.",
    ),
    "no_text": ("No message text", "Нет текста сообщения."),
    "no_sender": ("No sender", "Нет отправителя."),
    "unknown_sender": ("There is no such sender", "Такого отправителя нет."),
    "sender_format": (
        "The sender must not exceed 15 characters for numeric numbers and 11 characters "
        "for alphanumeric numbers",
        "Отправитель не должен превышать 15 символов для цифровых номеров и 11 символов для "
        "буквенно-числовых.",
    ),
    "not_found": ("SMS not found", "Сообщение с таким ID не принималось"),
    "rate": ("Too many requests", "Слишком много запросов"),
    "held": (
        "Insufficient funds to send SMS. SMS will be sent as soon as you top up your account "
        "for this destination.",
        "Недостаточно средств для отправки SMS. SMS будет отправлена как только вы пополните "
        "счет по данному направлению.",
    ),
}


class FakeWebcom(FakeGateway):
    """Webcom Mobi as its document describes it, for tests and staging.

    Token or login/password in the body; several message entries per request; one
    ``information`` entry per phone; a repeated ``client_id_sms`` returns the earlier id and
    sends nothing; ``state.php``, ``balance.php``; and :meth:`post_reports`, which plays the
    gateway's delivery-report webhook, retrying what is not acknowledged (5 tries in all).

    Args:
        tokens: accepted tokens.
        accounts: accepted ``{login: password}``.
        senders: known sender names (others: "There is no such sender").
        stop_list: numbers refused.
        stop_list_errors: ``"phone"`` refuses them in their ``information`` entry;
            ``"document"`` refuses the whole request with 400, as the document also lists.
        sms_left: messages the account can still send; ``None`` for unlimited.
        held_after: after this many messages, the account's money is out and the platform
            holds each further message until the account is topped up (its per-phone "will
            be sent as soon as you top up" answer); ``held`` lists them.
        **options: rate limit (none by default: Webcom documents none), faults, language
            (``"ru"`` answers in Russian), host, port, clock (see :class:`FakeOptions`).
    """

    def __init__(
        self,
        *,
        tokens: Iterable[str] = ("test-token",),
        accounts: Mapping[str, str] | None = None,
        senders: Iterable[str] = ("Shop",),
        stop_list: Iterable[str] = (),
        stop_list_errors: Literal["phone", "document"] = "phone",
        sms_left: int | None = None,
        held_after: int | None = None,
        **options: Unpack[FakeOptions],
    ) -> None:
        options.setdefault("rate_limit", None)
        super().__init__(**options)
        self.tokens = set(tokens)
        self.accounts = dict(accounts or {})
        self.senders = set(senders)
        self.stop_list = set(stop_list)
        self.stop_list_errors = stop_list_errors
        self.sms_left = sms_left
        self.held_after = held_after
        self.held: list[SentMessage] = []
        self.held_ids: set[object] = set()
        self.money = Decimal("19023.9")
        self.states: dict[int, str] = {}
        self.by_client_id: dict[int, int] = {}
        self.replayed = 0
        self.report_posts: list[list[int]] = []
        self.acknowledged: set[int] = set()
        self._ids = 82_000
        self.texts = texts_of(self.language, TEXTS)
        self.route("/json", self._send)
        self.route("/json/", self._send)
        self.route("/json/state.php", self._state)
        self.route("/json/balance.php", self._balance)

    def _error(self, key: str, status: int = 400) -> FakeAnswer:
        return json_answer({"error": self.texts[key]}, status)

    def credential(self, request: FakeRequest) -> str | None:
        """Requests are counted together (the credentials are in the body)."""
        return "all"

    def numbers(self, request: FakeRequest) -> tuple[str, ...]:
        """The phones of every message entry."""
        body = decode_json(request.body)
        messages = body.get("message") if isinstance(body, dict) else None
        if not isinstance(messages, list):
            return ()
        return tuple(
            str(entry.get("phone", ""))
            for message in messages
            if isinstance(message, dict) and isinstance(message.get("phones"), list)
            for entry in message["phones"]
            if isinstance(entry, dict)
        )

    def rate_limited_body(self) -> Any:
        """An error object, as every refusal of the platform is."""
        return {"error": self.texts["rate"]}

    def _authenticated(self, request: FakeRequest) -> dict[str, Any] | FakeAnswer:
        if not request.body:
            return self._error("no_post", 200)
        body = decode_json(request.body)
        if not isinstance(body, dict):
            return self._error("json", 200)
        token, login = body.get("token"), body.get("login")
        if token in self.tokens and token:
            return body
        if login and self.accounts.get(login) == body.get("password"):
            return body
        return self._error("auth", 200)

    def _send(self, request: FakeRequest) -> Reply:
        body = self._authenticated(request)
        if isinstance(body, FakeAnswer):
            return body
        messages = body.get("message")
        if not isinstance(messages, list) or not messages:
            return self._error("no_text")
        listed = [
            str(entry.get("phone", ""))
            for message in messages
            if isinstance(message, dict) and isinstance(message.get("phones"), list)
            for entry in message["phones"]
            if isinstance(entry, dict)
        ]
        count = 0
        for message in messages:
            if not isinstance(message, dict):
                return self._error("json", 200)
            sender, text, phones = message.get("sender"), message.get("text"), message.get("phones")
            if not sender:
                return self.refuse(listed, self._error("no_sender"))
            if not isinstance(sender, str) or not _SENDER.fullmatch(sender):
                return self.refuse(listed, self._error("sender_format"))
            if sender not in self.senders:
                return self.refuse(listed, self._error("unknown_sender"))
            if not text:
                return self.refuse(listed, self._error("no_text"))
            if message.get("type_send_1") not in ("sms", "viber"):
                return self.refuse(listed, self._error("closed"))
            if not isinstance(phones, list) or not phones:
                return self.refuse(listed, self._error("no_phone"))
            for entry in phones:
                phone = str(entry.get("phone", "")) if isinstance(entry, dict) else ""
                if not phone:
                    return self.refuse(listed, self._error("no_phone"))
                if len(phone) >= 15:
                    return self.refuse(listed, self._error("too_long"))
                if self.stop_list_errors == "document" and phone in self.stop_list:
                    return self.refuse(listed, self._error("stop_list"))
                count += 1
        fresh = sum(
            1
            for message in messages
            for entry in message["phones"]
            if entry.get("client_id_sms") not in self.by_client_id
        )
        if self.sms_left is not None and fresh > self.sms_left:
            return self.refuse(listed, self._error("out"))

        refused = self.fault_before()
        if refused is not None:
            return refused

        now = request.at
        information: list[dict[str, Any]] = []
        for message in messages:
            for entry in message["phones"]:
                phone, client_id = str(entry["phone"]), entry.get("client_id_sms")
                if phone in self.stop_list:
                    information.append({"error": self.texts["stop_list"]})
                    self.refused.append(phone)
                    continue
                if client_id is not None and client_id in self.by_client_id:
                    self.replayed += 1
                    information.append({"state": "send", "id_sms": self.by_client_id[client_id]})
                    continue
                if self.held_after is not None and len(self.sent) >= self.held_after:
                    if client_id is None or client_id not in self.held_ids:
                        self.held.append(
                            SentMessage("", phone, message["text"], message["sender"], now)
                        )
                        self.held_ids.add(client_id)
                    information.append({"error": self.texts["held"]})
                    continue
                self._ids += 1
                if client_id is not None:
                    self.by_client_id[client_id] = self._ids
                if self.sms_left is not None:
                    self.sms_left -= 1
                self.states[self._ids] = "send"
                self.sent.append(
                    SentMessage(
                        str(self._ids),
                        phone,
                        message["text"],
                        message["sender"],
                        now,
                        None if client_id is None else str(client_id),
                    )
                )
                information.append({"state": "send", "id_sms": self._ids})

        return self.fault_after(json_answer({"information": information}))

    def _state(self, request: FakeRequest) -> Reply:
        body = self._authenticated(request)
        if isinstance(body, FakeAnswer):
            return body
        wanted = body.get("id_sms")
        ids: list[Any] = wanted if isinstance(wanted, list) else [wanted]
        answer = []
        for raw in ids:
            if not str(raw).isdigit():
                continue
            message_id = int(str(raw))
            if message_id in self.states:
                answer.append(
                    {
                        "id_sms": message_id,
                        "time_change_state": "2021-04-26 15:15:03",
                        "state": self.states[message_id],
                        "num_parts": 1,
                        "price": 10.6,
                    }
                )
        if not answer:
            return self._error("not_found", 200)
        return json_answer(answer)

    def _balance(self, request: FakeRequest) -> Reply:
        body = self._authenticated(request)
        if isinstance(body, FakeAnswer):
            return body
        left = "Unlim" if self.sms_left is None else str(self.sms_left)
        return json_answer(
            {
                "money": str(self.money),
                "currency": "RUR",
                "information": [
                    {"type_sms": "sms", "area": "Tele2", "num_sms": "72029"},
                    {"type_sms": "sms", "area": "MTS", "num_sms": left},
                ],
            }
        )

    async def post_reports(
        self,
        url: str,
        states: Mapping[int, str] | None = None,
        *,
        tries: int = 5,
        pause: float = 0.0,
        headers: Mapping[str, str] | None = None,
    ) -> list[list[int]]:
        """Play the delivery-report webhook: POST ``{id_sms, time, state}`` for ``states``
        (default: every sent message, ``deliver``) to ``url``, and again for the ids the answer
        did not echo, up to ``tries`` posts in all. Returns the ids of each post. ``headers``
        stand for what a proxy in front of the receiver adds (the gateway sends none)."""
        pending = dict(states) if states is not None else dict.fromkeys(self.states, "deliver")
        for message_id, state in pending.items():
            self.states[message_id] = state
        posts: list[list[int]] = []
        stamp = datetime.datetime(2026, 11, 22, 12, 0, 0).strftime("%Y-%m-%d %H:%M:%S")
        async with aiohttp.ClientSession() as session:
            for _ in range(tries):
                if not pending:
                    break
                reports = [{"id_sms": i, "time": stamp, "state": s} for i, s in pending.items()]
                posts.append(list(pending))
                echoed: set[int] = set()
                try:
                    async with session.post(url, json=reports, headers=headers) as response:
                        if response.status == 200:
                            answer = msgspec.json.decode(await response.read())
                            echoed = {
                                int(str(a.get("id_sms")))
                                for a in answer
                                if isinstance(a, dict) and str(a.get("id_sms", "")).isdigit()
                            }
                except (aiohttp.ClientError, msgspec.DecodeError):
                    echoed = set()
                self.acknowledged |= echoed & set(pending)
                pending = {i: s for i, s in pending.items() if i not in echoed}
                if pending and pause:
                    await asyncio.sleep(pause)
        self.report_posts.extend(posts)
        return posts

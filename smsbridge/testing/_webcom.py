"""A fake Webcom Mobi (mysmpp): envelopes, client_id_sms replay, state, balance, webhooks."""

from __future__ import annotations

import asyncio
import datetime
import re
from collections.abc import Iterable, Mapping
from decimal import Decimal
from typing import Any, Literal, Unpack

import aiohttp
import msgspec
from aiohttp import web

from ._base import FakeGateway, FakeOptions, SentMessage

__all__ = ["FakeWebcom"]

_SENDER = re.compile(r"[A-Za-z0-9 ._&!'-]{1,11}|\d{1,15}")


def _error(text: str, status: int = 400) -> web.Response:
    return web.json_response({"error": text}, status=status)


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
        **options: rate limit (none by default: Webcom documents none), faults, host, port,
            clock (see :class:`FakeOptions`).
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
        self.money = Decimal("19023.9")
        self.states: dict[int, str] = {}
        self.by_client_id: dict[int, int] = {}
        self.replayed = 0
        self.report_posts: list[list[int]] = []
        self.acknowledged: set[int] = set()
        self._ids = 82_000
        self.app.router.add_post("/json", self._send)
        self.app.router.add_post("/json/", self._send)
        self.app.router.add_post("/json/state.php", self._state)
        self.app.router.add_post("/json/balance.php", self._balance)

    def credential(self, request: web.Request) -> str | None:
        """Requests are counted together (the credentials are in the body)."""
        return "all"

    async def _authenticated(self, request: web.Request) -> dict[str, Any] | web.Response:
        raw = await request.read()
        if not raw:
            return _error("POST data is missing", 200)
        try:
            body = msgspec.json.decode(raw)
        except msgspec.DecodeError:
            return _error("Incorrect JSON document format", 200)
        if not isinstance(body, dict):
            return _error("Incorrect JSON document format", 200)
        token, login = body.get("token"), body.get("login")
        if token in self.tokens and token:
            return body
        if login and self.accounts.get(login) == body.get("password"):
            return body
        return _error("Your account is locked Incorrect login or password", 200)

    async def _send(self, request: web.Request) -> web.StreamResponse:
        body = await self._authenticated(request)
        if isinstance(body, web.Response):
            return body
        messages = body.get("message")
        if not isinstance(messages, list) or not messages:
            return _error("No message text")
        count = 0
        for message in messages:
            if not isinstance(message, dict):
                return _error("Incorrect JSON document format", 200)
            sender, text, phones = message.get("sender"), message.get("text"), message.get("phones")
            if not sender:
                return _error("No sender")
            if not isinstance(sender, str) or not _SENDER.fullmatch(sender):
                return _error(
                    "The sender must not exceed 15 characters for numeric numbers and 11 "
                    "characters for alphanumeric numbers"
                )
            if sender not in self.senders:
                return _error("There is no such sender")
            if not text:
                return _error("No message text")
            if message.get("type_send_1") not in ("sms", "viber"):
                return _error("This destination is closed")
            if not isinstance(phones, list) or not phones:
                return _error("Specify phone number")
            for entry in phones:
                phone = str(entry.get("phone", "")) if isinstance(entry, dict) else ""
                if not phone:
                    return _error("Specify phone number")
                if len(phone) >= 15:
                    return _error("Phone number must be less than 15 characters")
                if self.stop_list_errors == "document" and phone in self.stop_list:
                    return _error("Phone number is on the stop list")
                count += 1
        fresh = sum(
            1
            for message in messages
            for entry in message["phones"]
            if entry.get("client_id_sms") not in self.by_client_id
        )
        if self.sms_left is not None and fresh > self.sms_left:
            return _error("Out of SMS")

        refused = self.fault_before(request)
        if refused is not None:
            return refused

        now = self.now()
        information: list[dict[str, Any]] = []
        for message in messages:
            for entry in message["phones"]:
                phone, client_id = str(entry["phone"]), entry.get("client_id_sms")
                if phone in self.stop_list:
                    information.append({"error": "Phone number is on the stop list"})
                    continue
                if client_id is not None and client_id in self.by_client_id:
                    self.replayed += 1
                    information.append({"state": "send", "id_sms": self.by_client_id[client_id]})
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

        return await self.fault_after(request, web.json_response({"information": information}))

    async def _state(self, request: web.Request) -> web.StreamResponse:
        body = await self._authenticated(request)
        if isinstance(body, web.Response):
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
            return _error("SMS not found", 200)
        return web.json_response(answer)

    async def _balance(self, request: web.Request) -> web.StreamResponse:
        body = await self._authenticated(request)
        if isinstance(body, web.Response):
            return body
        left = "Unlim" if self.sms_left is None else str(self.sms_left)
        return web.json_response(
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
    ) -> list[list[int]]:
        """Play the delivery-report webhook: POST ``{id_sms, time, state}`` for ``states``
        (default: every sent message, ``deliver``) to ``url``, and again for the ids the answer
        did not echo, up to ``tries`` posts in all. Returns the ids of each post."""
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
                    async with session.post(url, json=reports) as response:
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

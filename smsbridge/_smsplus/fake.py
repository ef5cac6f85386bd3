"""A fake SMSPlus: template sends with parameter arrays and every documented code."""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping
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
)

__all__ = ["FakeSmsPlus"]

_NUMBER = re.compile(r"994\d{9}")
_SLOT = re.compile(r"\{([123])\}")
MAX_TEXT = 160


class _Template:
    """The fake's own template: ``{1}``..``{3}`` slots, rendered independently of the client."""

    def __init__(self, template_id: int, text: str) -> None:
        self.id, self.text = template_id, text
        self.name = f"template {template_id}"
        slots = [int(n) for n in _SLOT.findall(text)]
        self.parameters = max(slots, default=0)

    def render(self, values: list[str]) -> str:
        return _SLOT.sub(lambda m: values[int(m.group(1)) - 1], self.text)


_ARRAYS = ("first_parameters", "second_parameters", "third_parameters")

# the gateway's own words, as its document gives them (the fake keeps its own copy)
_MESSAGES = {
    "100": "Messages sent successfully.",
    "101": "The customer's token was not found.",
    "102": "The customer's e-mail address has not been verified.",
    "103": "The customer's mobile number has not been verified.",
    "104": "The customer's passport photo has not been uploaded.",
    "105": "The customer's passport has not been approved.",
    "106": "The customer's contract is not signed.",
    "107": "The sender's name is required.",
    "108": "The message's template is required.",
    "109": "The mobile numbers is required.",
    "110": "Sender name not found or not yet approved.",
    "111": "Message template not found or not yet approved.",
    "112": "There are duplicate mobile numbers.",
    "113": "The template has a parameter: the values of the first parameter are required.",
    "114": "The template has a parameter: the values of the second parameter are required.",
    "115": "The template has a parameter: the values of the third parameter are required.",
    "116": "First parameters count can not be different count of mobile numbers.",
    "117": "Second parameters count can not be different count of mobile numbers.",
    "118": "Third parameters count can not be different count of mobile numbers.",
    "119": "SMS balance insufficient.",
    "120": "The maximum number of characters in a message is 160.",
    "121": "The format of the mobile number is incorrect.",
    "122": "There was an error sending the message.",
    "123": "The method is not supported for this route.",
}


def _code(code: str, status: int = 200) -> FakeAnswer:
    return json_answer({"success": code == "100", "code": code, "message": _MESSAGES[code]}, status)


class FakeSmsPlus(FakeGateway):
    """SMSPlus as its document describes it, for tests and staging.

    Templates render ``{1}``..``{3}``; every code 101-123 can occur: account problems through
    ``account_problem``, request faults from the request itself, 119 from ``balance``, 122 as
    the ``error_after`` fault (sent, then the gateway reports a failure). ``sent`` records
    every rendered message.

    Args:
        tokens: accepted bearer tokens (others: 101).
        senders: approved sender names (others: 110).
        templates: approved templates by id (others: 111).
        balance: messages the account can still pay for; ``None`` for no limit.
        account_problem: a code 102-106 every request answers, to simulate an unready account.
        **options: rate limit, faults, host, port, clock (see :class:`FakeOptions`).
    """

    def __init__(
        self,
        *,
        tokens: Iterable[str] = ("test-token",),
        senders: Iterable[str] = ("Shop",),
        templates: Mapping[int, str] | None = None,
        balance: int | None = None,
        account_problem: str | None = None,
        **options: Unpack[FakeOptions],
    ) -> None:
        super().__init__(**options)
        self.tokens = set(tokens)
        self.senders = set(senders)
        texts = templates if templates is not None else {1: "Your code is {1}"}
        self.templates = {i: _Template(i, t) for i, t in texts.items()}
        self.balance = balance
        self.account_problem = account_problem
        self._ids = 0
        self.route("/api/sms/send", self._send)
        self.route("/api/message/templates", self._templates)

    def credential(self, request: FakeRequest) -> str | None:
        """The bearer token."""
        return request.headers.get("authorization", "")

    def numbers(self, request: FakeRequest) -> tuple[str, ...]:
        """``mobile_numbers``."""
        body = decode_json(request.body)
        numbers = body.get("mobile_numbers") if isinstance(body, dict) else None
        return tuple(str(n) for n in numbers) if isinstance(numbers, list) else ()

    def rate_limited_body(self) -> Any:
        """A throttled request, as the framework behind the gateway answers it."""
        return {"message": "Too Many Attempts."}

    def _body(self, request: FakeRequest) -> dict[str, Any] | FakeAnswer:
        if request.method != "POST":
            return _code("123", 405)
        header = request.headers.get("authorization", "")
        if not header.startswith("Bearer ") or header[7:] not in self.tokens:
            return _code("101", 401)
        if self.account_problem is not None:
            return _code(self.account_problem, 403)
        body = decode_json(request.body)
        if not isinstance(body, dict):
            return json_answer({"success": False, "code": "400", "message": "Bad JSON"}, 400)
        return body

    def _send(self, request: FakeRequest) -> Reply:
        body = self._body(request)
        if isinstance(body, FakeAnswer):
            return body
        sender = body.get("sender_name")
        template_id = body.get("message_template_id")
        numbers = body.get("mobile_numbers")
        listed = numbers if isinstance(numbers, list) else []
        if not sender:
            return self.refuse(listed, _code("107", 400))
        if template_id is None:
            return self.refuse(listed, _code("108", 400))
        if not isinstance(numbers, list) or not numbers:
            return self.refuse(listed, _code("109", 400))
        if sender not in self.senders:
            return self.refuse(listed, _code("110", 400))
        template = self.templates.get(template_id) if isinstance(template_id, int) else None
        if template is None:
            return self.refuse(listed, _code("111", 400))
        if len(set(map(str, numbers))) != len(numbers):
            return self.refuse(listed, _code("112", 400))
        wanted = template.parameters
        columns: list[list[Any]] = []
        for position, name in enumerate(_ARRAYS):
            values = body.get(name)
            if position < wanted and values is None:
                return self.refuse(listed, _code(str(113 + position), 400))
            if values is not None:
                if not isinstance(values, list) or len(values) != len(numbers):
                    return self.refuse(listed, _code(str(116 + position), 400))
                columns.append(values)
        rendered = [
            template.render([str(column[row]) for column in columns]) for row in range(len(numbers))
        ]
        if any(len(text) > MAX_TEXT for text in rendered):
            return self.refuse(listed, _code("120", 400))
        if any(not isinstance(n, str) or not _NUMBER.fullmatch(n) for n in numbers):
            return self.refuse(listed, _code("121", 400))
        if self.balance is not None and self.balance < len(numbers):
            return self.refuse(listed, _code("119", 400))

        refused = self.fault_before()
        if refused is not None:
            return refused

        now = request.at
        if self.balance is not None:
            self.balance -= len(numbers)
        for number, text in zip(numbers, rendered, strict=True):
            self._ids += 1
            self.sent.append(SentMessage(str(self._ids), number, text, sender, now))

        return self.fault_after(_code("100"), error=_code("122", 500))

    def _templates(self, request: FakeRequest) -> Reply:
        body = self._body(request)
        if isinstance(body, FakeAnswer):
            return body
        wanted = body.get("data")
        if wanted == "all":
            chosen = list(self.templates.values())
        elif isinstance(wanted, list):
            chosen = [self.templates[i] for i in wanted if i in self.templates]
        else:
            return _code("108", 400)
        data = [{"id": t.id, "name": t.name, "text": t.text} for t in chosen]
        return json_answer({"success": True, "code": "100", "message": "Templates", "data": data})

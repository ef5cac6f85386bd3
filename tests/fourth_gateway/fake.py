"""A fake Toy."""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any, Unpack

from smsbridge._fake import (
    FakeGateway,
    FakeOptions,
    FakeRequest,
    Reply,
    SentMessage,
    decode_json,
    json_answer,
)


class FakeToy(FakeGateway):
    """Toy as it behaves."""

    def __init__(
        self,
        *,
        tokens: Iterable[str] = ("test-token",),
        senders: Iterable[str] = ("Shop",),
        **options: Unpack[FakeOptions],
    ) -> None:
        super().__init__(**options)
        self.tokens = set(tokens)
        self.route("/send", self._send)
        self.route("/balance", self._balance)

    def _authorised(self, request: FakeRequest) -> bool:
        return request.headers.get("authorization", "")[7:] in self.tokens

    def _send(self, request: FakeRequest) -> Reply:
        if not self._authorised(request):
            return json_answer({"error": "who?"}, 401)
        body: Any = decode_json(request.body)
        ids = []
        for phone in body["to"]:
            ids.append(f"toy-{len(self.sent)}")
            self.sent.append(SentMessage(ids[-1], phone, body["text"], body["from"], request.at))
        return json_answer({"ids": ids})

    def _balance(self, request: FakeRequest) -> Reply:
        if not self._authorised(request):
            return json_answer({"error": "who?"}, 401)
        return json_answer({"money": "12.50"})

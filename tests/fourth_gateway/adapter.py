"""Toy, translated: ``POST /send {"to": [...], "text": ...}`` answers ``{"ids": [...]}``."""

from __future__ import annotations

from decimal import Decimal

import msgspec

from smsbridge import Balance, Batch, HttpRequest, HttpResponse, Status
from smsbridge._core.gateway import BatchResult, ChunkPacker, Packer, status_error

from .spec import SPEC


class ToyJob(msgspec.Struct, frozen=True):
    """One send."""

    sender: str
    text: str | None


class Sent(msgspec.Struct):
    """The answer to a send."""

    ids: list[str]


class ToyGateway:
    """The adapter."""

    name = SPEC.name
    retry_safe = SPEC.retry_safe
    batch_size = SPEC.batch_size
    phones = SPEC.phone_rules()

    def __init__(self, token: str) -> None:
        self._headers = {"Authorization": f"Bearer {token}"}

    def packer(self, job: ToyJob) -> Packer:
        """Runs of consecutive recipients."""
        return ChunkPacker(self.batch_size)

    def check(self, batch: Batch, job: ToyJob) -> dict[int, str] | None:
        """Nothing to check."""
        return None

    def build_send(self, batch: Batch, job: ToyJob) -> HttpRequest:
        """The send."""
        body = msgspec.json.encode({"to": batch.phones, "text": job.text, "from": job.sender})
        return HttpRequest("/send", body, self._headers)

    def parse_send(self, batch: Batch, response: HttpResponse, job: ToyJob) -> BatchResult:
        """Everyone accepted, or the status's error."""
        error = status_error(self.name, response)
        if error is not None:
            raise error
        ids = msgspec.json.decode(response.body, type=Sent).ids
        return BatchResult([Status.ACCEPTED] * len(ids), list[str | None](ids))

    def build_balance(self) -> HttpRequest:
        """The balance."""
        return HttpRequest("/balance", b"", self._headers)

    def parse_balance(self, response: HttpResponse) -> Balance:
        """Money."""
        error = status_error(self.name, response)
        if error is not None:
            raise error
        return Balance(money=Decimal(msgspec.json.decode(response.body)["money"]), currency="UAH")

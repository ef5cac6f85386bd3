"""Toy's client."""

from __future__ import annotations

from typing import Unpack

from smsbridge import Balance, ClientOptions, InvalidInputError, SendOptions
from smsbridge._client import GatewayClient
from smsbridge._core.gateway import Message, check_sender
from smsbridge._core.recipients import Unpacker, phones_only

from .adapter import ToyGateway, ToyJob
from .spec import SPEC


class Toy(GatewayClient[ToyJob]):
    """A client for Toy."""

    spec = SPEC

    def __init__(self, token: str | None = None, **options: Unpack[ClientOptions]) -> None:
        super().__init__({"token": token}, options)
        self.gateway: ToyGateway = self._gateway  # type: ignore[assignment]

    def _adapter(self, credentials: dict[str, str]) -> ToyGateway:
        return ToyGateway(credentials["token"])

    async def _prepare(self, message: Message, options: SendOptions) -> tuple[ToyJob, Unpacker]:
        if message.kind != "text":
            raise InvalidInputError("Toy sends one text")
        return ToyJob(check_sender(message.sender), message.text), phones_only

    async def balance(self) -> Balance:
        """Money left."""
        return await self._call(self.gateway.build_balance(), self.gateway.parse_balance)

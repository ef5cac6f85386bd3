"""The SMS Club client."""

from __future__ import annotations

from collections.abc import Iterable
from typing import Unpack

import msgspec

from .._client import GatewayClient
from .._core.client import ClientOptions, SendOptions
from .._core.errors import InvalidInputError
from .._core.gateway import Message, check_sender
from .._core.models import Balance, MessageStatus, Report, SenderStatus
from .._core.phones import PhoneRules
from .._core.recipients import (
    Personal,
    Phones,
    Unpacker,
    check_text,
    phone_text_pairs,
    phones_only,
)
from . import wire
from .adapter import MAX_BATCH, SmsClubGateway, SmsClubJob
from .spec import SPEC

__all__ = ["SenderRegistration", "SmsClub"]


class SenderRegistration(msgspec.Struct, frozen=True, kw_only=True):
    """An application for a new sender name.

    Attributes:
        sender_id: the sender name wanted.
        company: legal name of the company.
        site: website or social-network page.
        description: what the company does.
        subject: what the messages are for (the gateway suggests wordings).
        company_type: ``"tov"`` (a company, needs ``okpo``) or ``"fop"`` (a sole trader,
            needs ``inn``).
        okpo: the company's registration number, for ``tov``.
        inn: the taxpayer number, for ``fop``.
    """

    sender_id: str
    company: str
    site: str
    description: str
    subject: str
    company_type: str
    okpo: str = ""
    inn: str = ""


def _lifetime(lifetime: int | None) -> int | None:
    if lifetime is not None and (not isinstance(lifetime, int) or lifetime < 1):
        raise InvalidInputError("lifetime is in whole minutes, at least 1")
    return lifetime


class SmsClub(GatewayClient[SmsClubJob]):
    """Client for SMS Club (Ukraine), ``https://im.smsclub.mobi``.

    ::

        async with SmsClub(token=...) as sms:
            report = await sms.send("Your order shipped", to=phones, sender="Shop")

    Args:
        token: the JSON API token; default ``SMSBRIDGE_SMSCLUB_TOKEN``.
        batch_size: numbers per request, at most 100.
        integration_id: the referral-programme id the gateway may ask for.
        phones: number rules (default: any country, Ukrainian national format accepted).
        **options: see :class:`ClientOptions` (rate, windows, timeouts, base URL, ...).
    """

    spec = SPEC

    def __init__(
        self,
        token: str | None = None,
        *,
        batch_size: int = MAX_BATCH,
        integration_id: int | None = None,
        phones: PhoneRules | None = None,
        **options: Unpack[ClientOptions],
    ) -> None:
        self._batch_size = batch_size
        self._phones = phones
        self._integration_id = integration_id
        super().__init__({"token": token}, options)
        self.gateway: SmsClubGateway = self._gateway  # type: ignore[assignment]

    def _adapter(self, credentials: dict[str, str]) -> SmsClubGateway:
        return SmsClubGateway(
            credentials["token"], batch_size=self._batch_size, phones=self._phones
        )

    def _job(self, message: Message, lifetime: int | None = None) -> SmsClubJob:
        if message.kind == "template":
            raise InvalidInputError("SMS Club sends texts, not templates")
        return SmsClubJob(
            sender=check_sender(message.sender),
            text=None if message.text is None else check_text(message.text),
            lifetime=_lifetime(lifetime),
            integration_id=self._integration_id,
        )

    async def _prepare(self, message: Message, options: SendOptions) -> tuple[SmsClubJob, Unpacker]:
        job = self._job(message)
        return job, phones_only if job.text is not None else phone_text_pairs

    async def send(
        self,
        text: str,
        *,
        to: Phones,
        sender: str,
        lifetime: int | None = None,
        **options: Unpack[SendOptions],
    ) -> Report:
        """Send one text to every number of ``to`` (any iterable or async iterable).

        Args:
            text: the message.
            to: the numbers, read lazily; any size (one number as a ``str`` is one).
            sender: an approved sender name.
            lifetime: minutes the gateway keeps trying to deliver.
            **options: ``on_outcome``, ``keep``, ``stop``, ``observer``, ``indexed``; see
                :class:`SendOptions`.
        """
        job = self._job(Message(sender=sender, text=check_text(text)), lifetime)
        return await self._run_send(job, to, phones_only, options)

    async def send_personal(
        self,
        messages: Personal,
        *,
        sender: str,
        lifetime: int | None = None,
        **options: Unpack[SendOptions],
    ) -> Report:
        """Send each ``(phone, text)`` pair its own text (``/v2/sms/send``).

        A pair with an empty text is ``rejected``; otherwise as :meth:`send`.
        """
        job = self._job(Message(sender=sender), lifetime)
        return await self._run_send(job, messages, phone_text_pairs, options)

    async def status(self, message_ids: Iterable[str | int]) -> list[MessageStatus]:
        """Delivery state of each id, in order; asked 100 at a time, concurrently."""
        return await self._chunked_calls(
            [str(i) for i in message_ids],
            MAX_BATCH,
            self.gateway.build_status,
            self.gateway.parse_status,
        )

    async def balance(self) -> Balance:
        """Money on the account."""
        return await self._call(self.gateway.build_balance(), self.gateway.parse_balance)

    async def senders(self) -> list[str]:
        """Sender names usable now."""
        return await self._call(self.gateway.build_senders(), self.gateway.parse_senders)

    async def register_sender(self, registration: SenderRegistration) -> SenderStatus:
        """Apply for a new sender name; returns its state (usually under moderation)."""
        if registration.company_type not in ("tov", "fop"):
            raise InvalidInputError('company_type must be "tov" or "fop"')
        body = wire.Registration(**msgspec.structs.asdict(registration))
        return await self._call(
            self.gateway.build_register(body), self.gateway.parse_register, idempotent=False
        )

    async def sender_status(self, sender: str | None = None) -> list[SenderStatus]:
        """The state of one sender name, or of all the account's names."""
        return await self._call(
            self.gateway.build_sender_status(sender), self.gateway.parse_sender_status
        )

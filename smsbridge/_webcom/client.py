"""The Webcom Mobi client."""

from __future__ import annotations

import datetime
import hashlib
import os
from collections.abc import Awaitable, Callable, Iterable
from typing import Unpack

from .._client import GatewayClient
from .._core.client import ClientOptions, SendOptions
from .._core.errors import ConfigurationError, InvalidInputError
from .._core.gateway import Batch, Message
from .._core.models import Balance, MessageStatus, Report
from .._core.phones import PhoneRules
from .._core.ranges import IdBlocks
from .._core.recipients import (
    Personal,
    Phones,
    Unpacker,
    check_text,
    phone_text_pairs,
    phones_only,
)
from .adapter import (
    CHANNELS,
    DEFAULT_BATCH,
    WebcomGateway,
    WebcomJob,
    check_sender,
    format_validity,
)
from .spec import SPEC

__all__ = ["MOSCOW", "Webcom"]

MOSCOW = datetime.timezone(datetime.timedelta(hours=3), "MSK")
"""The gateway's time zone as assumed for ``validity_period`` (Moscow, no daylight saving)."""

Validity = datetime.datetime | datetime.timedelta | None


class Webcom(GatewayClient[WebcomJob]):
    """Client for Webcom Mobi (mysmpp), ``http://lk.mysmpp.ru``.

    ::

        async with Webcom(token=...) as sms:      # or login=..., password=...
            report = await sms.send("Sale today", to=phones, sender="Shop")

    Sends are exactly-once: every recipient carries a ``client_id_sms`` that no other recipient
    of the account shares (see ``client_id_bits``), the same on every retry of the send, and
    the gateway answers a repeated id with the earlier message instead of sending again, so
    timeouts, 5xx and dropped connections are retried.

    The documented address is plain HTTP and the credentials travel in the request body: pass
    ``base_url="https://…"`` where the gateway offers TLS. The default plain-HTTP address is
    allowed with a warning (:class:`InsecureTransportWarning`, once per host); any other
    ``http://`` address off loopback needs ``allow_insecure_http=True``.

    Args:
        token: the secret key; default ``SMSBRIDGE_WEBCOM_TOKEN``.
        login, password: instead of a token; default ``SMSBRIDGE_WEBCOM_LOGIN`` and
            ``SMSBRIDGE_WEBCOM_PASSWORD``.
        batch_size: phones per request (undocumented; default 100).
        status_batch: ids per status request (undocumented whether a list is taken; 1).
        phones: number rules (default: any country, Russian national format accepted).
        validity_tz: the time zone ``validity_period`` is written in (undocumented; Moscow).
        client_id_bits: the width of a ``client_id_sms`` (16 to 53). The documents say "Int"
            and real clients send up to 11 digits: 31 bits fits a signed 32-bit integer, so a
            gateway that stores ids that way cannot truncate two into one. Ids come from
            ranges of the account (in this process; through Redis, across processes and
            hosts), so none repeats until ``2**bits - 1`` have been used.
        **options: see :class:`ClientOptions`.
    """

    spec = SPEC

    def __init__(
        self,
        token: str | None = None,
        *,
        login: str | None = None,
        password: str | None = None,
        batch_size: int = DEFAULT_BATCH,
        status_batch: int = 1,
        phones: PhoneRules | None = None,
        validity_tz: datetime.tzinfo = MOSCOW,
        client_id_bits: int = 31,
        **options: Unpack[ClientOptions],
    ) -> None:
        if not isinstance(client_id_bits, int) or not 16 <= client_id_bits <= 53:
            raise ConfigurationError(f"client_id_bits must be 16 to 53, got {client_id_bits!r}")
        self._id_bits = client_id_bits
        self._batch_size = batch_size
        self._status_batch = status_batch
        self._phones = phones
        self._validity_tz = validity_tz
        super().__init__({"token": token, "login": login, "password": password}, options)
        self.gateway: WebcomGateway = self._gateway  # type: ignore[assignment]

    def _adapter(self, credentials: dict[str, str]) -> WebcomGateway:
        return WebcomGateway(
            token=credentials.get("token"),
            login=credentials.get("login"),
            password=credentials.get("password"),
            batch_size=self._batch_size,
            phones=self._phones,
            status_batch=self._status_batch,
        )

    async def _prepare(self, message: Message, options: SendOptions) -> tuple[WebcomJob, Unpacker]:
        if message.kind == "template":
            raise InvalidInputError("Webcom sends texts, not templates")
        job = self._job(message.sender, message.text, "sms", None, options.get("idempotency_key"))
        return job, phones_only if message.text is not None else phone_text_pairs

    def _job(
        self,
        sender: str,
        text: str | None,
        channel: str,
        validity: Validity,
        idempotency_key: str | bytes | None,
    ) -> WebcomJob:
        if channel not in CHANNELS:
            raise InvalidInputError(f"channel must be one of {CHANNELS}, got {channel!r}")
        if text is not None:
            check_text(text)
        if idempotency_key is None:
            send_key = os.urandom(16)
        else:
            raw = idempotency_key.encode() if isinstance(idempotency_key, str) else idempotency_key
            # the message is part of what the key names: a key reused for another text takes
            # other ids, which the gateway would otherwise answer as "already sent"
            message = f"{sender}\x00{text}\x00{channel}".encode("utf-8", "surrogatepass")
            send_key = hashlib.blake2b(
                len(raw).to_bytes(8, "big") + raw + message, digest_size=16
            ).digest()
        return WebcomJob(
            sender=check_sender(sender),
            ids=IdBlocks(self.ranges, send_key, self._id_bits),
            text=text,
            channel=channel,
            validity=format_validity(validity, self._validity_tz),
        )

    def _claim(self, job: WebcomJob) -> Callable[[Batch], Awaitable[None]]:
        """The id blocks of a batch's recipients, claimed up to its highest index (the
        adapter has rejected an index past what the ids can tell apart)."""
        ids = job.ids

        async def claim(batch: Batch) -> None:
            highest = max(batch.indices)
            if highest >= ids.covered:
                await ids.cover(highest)

        return claim

    async def send(
        self,
        text: str,
        *,
        to: Phones,
        sender: str,
        channel: str = "sms",
        validity: Validity = None,
        **options: Unpack[SendOptions],
    ) -> Report:
        """Send one text to every number of ``to``.

        Args:
            text: the message.
            to: the numbers, any iterable or async iterable, read lazily (one number as a
                ``str`` is one).
            sender: up to 11 letters and digits, or 15 digits.
            channel: ``"sms"`` or ``"viber"`` (``type_send_1``).
            validity: when delivery attempts stop (a datetime, or a timedelta from now).
            **options: see :class:`SendOptions`; with ``idempotency_key``, re-running the
                same send (after a crash) cannot send anyone twice.
        """
        job = self._job(sender, text, channel, validity, options.get("idempotency_key"))
        return await self._run_send(job, to, phones_only, options)

    async def send_personal(
        self,
        messages: Personal,
        *,
        sender: str,
        channel: str = "sms",
        validity: Validity = None,
        **options: Unpack[SendOptions],
    ) -> Report:
        """Send each ``(phone, text)`` its own text; recipients sharing a text travel in one
        message entry, many entries per request. Otherwise as :meth:`send`."""
        job = self._job(sender, None, channel, validity, options.get("idempotency_key"))
        return await self._run_send(job, messages, phone_text_pairs, options)

    async def status(self, message_ids: Iterable[str | int]) -> list[MessageStatus]:
        """Delivery state of each id, in order (``/json/state.php``)."""
        return await self._chunked_calls(
            [str(i) for i in message_ids],
            self.gateway.status_batch,
            self.gateway.build_state,
            self.gateway.parse_state,
        )

    async def balance(self) -> Balance:
        """Money (``Decimal``) and prepaid messages per area (``None`` for unlimited)."""
        return await self._call(self.gateway.build_balance(), self.gateway.parse_balance)

"""The Webcom Mobi client."""

from __future__ import annotations

import datetime
import hashlib
import os
from collections.abc import AsyncIterable, AsyncIterator, Iterable
from itertools import islice
from typing import Any, Unpack

from .._client import GatewayClient
from .._core.client import ClientOptions, SendOptions
from .._core.engine import Chunked
from .._core.errors import ConfigurationError, InvalidInputError
from .._core.gateway import Message
from .._core.models import Balance, MessageStatus, Report
from .._core.phones import PhoneRules
from .._core.ranges import IdBlocks
from .._core.recipients import Personal, Phones, Unpacker, phone_text_pairs, phones_only
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
        if text is not None and (not isinstance(text, str) or not text.strip()):
            raise InvalidInputError("text must be a non-empty string")
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

    def _source(
        self, job: WebcomJob, source: Iterable[Any] | AsyncIterable[Any], indexed: bool
    ) -> Iterable[Any] | AsyncIterable[Any]:
        if isinstance(source, AsyncIterable):
            return _claiming(job.ids, source, indexed=indexed)
        return _Claiming(job.ids, source, indexed=indexed)

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


async def _claiming(
    ids: IdBlocks, source: Iterable[Any] | AsyncIterable[Any], *, indexed: bool
) -> AsyncIterator[Any]:
    """``source``, each recipient's id block claimed before the recipient is read on. The
    block of the next position is claimed before the next entry is taken from the caller's
    input, so a cancellation while it is claimed leaves no entry read and unsent (an indexed
    entry whose index runs past the blocks claims its own after it is read)."""
    position, covered = 0, ids.covered
    is_async = isinstance(source, AsyncIterable)
    entries: Any = aiter(source) if is_async else iter(source)  # type: ignore[arg-type]
    while True:
        if position >= covered:
            await ids.cover(position)
            covered = ids.covered
        try:
            entry = await anext(entries) if is_async else next(entries)
        except (StopIteration, StopAsyncIteration):
            return
        index = _index(entry, ids) if indexed else None
        if index is not None and index >= covered:
            await ids.cover(index)
            covered = ids.covered
        position += 1
        yield entry


class _Claiming(Chunked):
    """A caller's plain iterable, read a chunk at a time by the engine (``fill``) with the id
    blocks of the whole chunk claimed before any of it is read: as :func:`_claiming`, but
    with one check per chunk instead of a trip through an async generator per recipient."""

    __slots__ = ("_entries", "_ids", "_indexed", "_position")

    def __init__(self, ids: IdBlocks, source: Iterable[Any], *, indexed: bool) -> None:
        self._ids = ids
        self._entries = iter(source)
        self._indexed = indexed
        self._position = 0

    async def fill(self, into: list[Any], count: int) -> None:
        """Read up to ``count`` entries onto ``into`` (what was read stays there if the
        caller's input fails), their blocks claimed first."""
        ids, end = self._ids, self._position + count
        if end > ids.covered:
            await ids.cover(end - 1)
        before = len(into)
        into.extend(islice(self._entries, count))
        self._position += len(into) - before
        if self._indexed and len(into) > before:
            indices = (_index(entry, ids) for entry in into[before:])
            highest = max((i for i in indices if i is not None), default=-1)
            if highest >= ids.covered:
                await ids.cover(highest)


def _index(entry: Any, ids: IdBlocks) -> int | None:
    """An indexed entry's index, where its id block may be claimed: a whole number below
    what the send's ids can tell apart (the engine and the adapter reject the others, and
    an entry that is no pair)."""
    try:
        index = entry[0]
    except Exception:
        return None
    return index if type(index) is int and 0 <= index < ids.limit else None

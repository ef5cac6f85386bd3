"""Webcom Mobi (mysmpp), translated: multi-message envelopes, no I/O.

One request carries several message entries, each with its own sender, text and phones; the
answer has one ``information`` entry per phone, in the order the phones appear across the
entries. Each phone carries a ``client_id_sms`` from the send's id blocks (ranges no other
recipient of the account shares, claimed by the client before the batch is read): the gateway
answers a repeated id with the earlier message id and sends nothing, so any ambiguous failure
can be retried without sending twice.
"""

from __future__ import annotations

import datetime
import logging
import operator
import re
from collections.abc import Sequence
from decimal import Decimal, InvalidOperation
from types import EllipsisType
from typing import Any

import msgspec

from .._core.errors import (
    AuthenticationError,
    GatewayError,
    InsufficientBalanceError,
    InvalidInputError,
    RateLimitedError,
    RejectedError,
    ResponseDecodeError,
    SmsBridgeError,
)
from .._core.gateway import (
    UNREADABLE,
    Batch,
    BatchResult,
    ChunkPacker,
    Packer,
    decisive_status_error,
    status_error,
    text_of,
)
from .._core.models import Balance, BalancePackage, DeliveryState, MessageStatus, Status
from .._core.phones import PhoneRules
from .._core.ranges import IdBlocks
from .._core.transport import HttpRequest, HttpResponse
from . import wire
from .spec import SPEC
from .texts import Kind, kind_of

__all__ = ["DEFAULT_BATCH", "STATES", "WebcomGateway", "WebcomJob", "classify"]

log = logging.getLogger("smsbridge.webcom")

NAME = SPEC.name

DEFAULT_BATCH = 100
"""Phones per request. Webcom documents no limit; a document-level error refuses the whole
request, so requests stay at the size SMS Club documents, with bodies of a few kilobytes."""

CHANNELS = ("sms", "viber")

STATES: dict[str, DeliveryState] = {
    "send": DeliveryState.ENROUTE,
    "deliver": DeliveryState.DELIVRD,
    "read": DeliveryState.DELIVRD,
    "not_deliver": DeliveryState.UNDELIV,
    "partly_deliver": DeliveryState.UNCONFIRMED,
    "expired": DeliveryState.EXPIRED,
}
"""Webcom's states in the shared vocabulary (``read`` is Viber's delivered-and-read;
``partly_deliver`` is, by the Russian pages, sent on with no final status ever received: it
may well have arrived, so it is final and not "undelivered")."""

_SENDER = re.compile(r"[A-Za-z0-9 ._&!'-]{1,11}|\d{1,15}")


def classify(text: str, *, status: int, document: bool) -> SmsBridgeError:
    """The typed error a Webcom error text means (see :mod:`.texts`); ``document`` when it
    refused a whole request rather than one phone of it."""
    kw: dict[str, Any] = {"provider": NAME, "status": status, "gateway_message": text}
    kind = kind_of(text)
    if kind is Kind.ACCOUNT:
        return AuthenticationError("the account cannot send (credentials or blocked)", **kw)
    if kind is Kind.BALANCE:
        return InsufficientBalanceError("the account is out of SMS", **kw)
    if kind is Kind.QUEUED:
        return InsufficientBalanceError(
            "held by the gateway until the account is topped up: it goes then; not resent",
            maybe_processed=True,
            **kw,
        )
    if kind is Kind.RATE:
        return RateLimitedError("the gateway asked us to slow down", **kw)
    if kind is Kind.FORMAT:
        return GatewayError(
            "the gateway could not read the request; every request would fail",
            account_wide=True,
            maybe_processed=False,
            **kw,
        )
    if kind is Kind.REPEAT:
        return GatewayError(
            "the gateway refused a repeat of a request it received shortly before: that one "
            "may have been processed",
            maybe_processed=True,
            **kw,
        )
    if kind is Kind.NUMBER and document:
        # one number spoiled the whole document; nothing was sent, so the core may split it
        return RejectedError("the gateway refused a number of the request", splittable=True, **kw)
    return RejectedError("the gateway refused the request", **kw)


def check_sender(sender: object) -> str:
    """Up to 11 letters/digits, or up to 15 digits, as documented."""
    if not isinstance(sender, str) or not _SENDER.fullmatch(sender):
        raise InvalidInputError(
            f"sender {sender!r} must be 1-11 letters and digits, or up to 15 digits"
        )
    return sender


def format_validity(
    validity: datetime.datetime | datetime.timedelta | None, tz: datetime.tzinfo
) -> str | None:
    """``validity_period`` as ``YYYY-MM-DD HH:MM:SS`` in the gateway's time zone."""
    if validity is None:
        return None
    if isinstance(validity, datetime.timedelta):
        validity = datetime.datetime.now(tz) + validity
    elif validity.tzinfo is not None:
        validity = validity.astimezone(tz)
    return validity.strftime("%Y-%m-%d %H:%M:%S")


class WebcomJob(msgspec.Struct, frozen=True, kw_only=True):
    """One send: sender, shared text (``None`` when personalised), channel, validity, and the
    blocks its ``client_id_sms`` values come from."""

    sender: str
    ids: IdBlocks
    text: str | None = None
    channel: str = "sms"
    validity: str | None = None


def envelope_rows(batch: Batch, text: str | None) -> list[tuple[str, list[int]]]:
    """The message entries of a request: each text with its rows, in first-appearance order.
    Building and parsing both walk this, so answers map back to the right recipient."""
    if batch.texts is None:
        assert text is not None
        return [(text, list(range(len(batch))))]
    groups: dict[str, list[int]] = {}
    for row, own in enumerate(batch.texts):
        groups.setdefault(own, []).append(row)
    return list(groups.items())


def _an_error(value: Any) -> bool:
    """Whether an ``error`` field says something: "0" or blanks, as entries carry the field
    beside an id, are no error."""
    return bool(value) and text_of(value).strip() not in ("", "0")


def _has_ids(information: list[Any] | None) -> bool:
    return bool(information) and any(
        isinstance(entry, dict) and entry.get("id_sms") not in (None, "")
        for entry in information  # type: ignore[union-attr]
    )


def _accepted_ids(items: list[wire.Entry]) -> list[str | None] | None:
    """Each entry's id as text where every entry is accepted with one, else ``None``."""
    values = list(map(_ID, items))
    if any(map(_ERROR, items)) or None in values or "" in values:
        return None
    if set(map(type, values)) == {int}:  # the common answer, turned to text in C
        return list(map(str, values))
    return [str(v) if type(v) is int else text_of(v) for v in values]


_ID = operator.attrgetter("id_sms")
_ERROR = operator.attrgetter("error")


class WebcomGateway:
    """The Webcom adapter.

    Args:
        token: the secret key, or
        login, password: the account's credentials.
        batch_size: phones per request (see :data:`DEFAULT_BATCH`).
        phones: number rules; Russian national format (``8 916 …``) accepted by default.
        status_batch: ids per ``state.php`` request; the documents show one, so 1.
    """

    name = NAME
    retry_safe = SPEC.retry_safe

    def __init__(
        self,
        *,
        token: str | None = None,
        login: str | None = None,
        password: str | None = None,
        batch_size: int = DEFAULT_BATCH,
        phones: PhoneRules | None = None,
        status_batch: int = 1,
    ) -> None:
        if batch_size < 1 or status_batch < 1:
            raise InvalidInputError("batch_size and status_batch must be positive")
        self.batch_size = batch_size
        self.status_batch = status_batch
        self.phones = phones or SPEC.phone_rules()
        if token:
            self._credentials = wire.Credentials(token=token)
        else:
            self._credentials = wire.Credentials(login=login or "", password=password or "")
        self._headers = {"Content-Type": "text/json; charset=utf-8"}

    def __repr__(self) -> str:
        kind = "token" if self._credentials.token else "login"
        return f"WebcomGateway({kind}, batch_size={self.batch_size})"

    # ----------------------------------------------------------------- sending

    def packer(self, job: WebcomJob) -> Packer:
        """Up to ``batch_size`` phones per request, however many entries they need."""
        return ChunkPacker(self.batch_size)

    def check(self, batch: Batch, job: WebcomJob) -> dict[int, str] | None:
        """An index past what the send's ids can tell apart (an indexed send): its
        ``client_id_sms`` would be another recipient's, and the gateway would answer it with
        that one's message and send nothing."""
        limit = job.ids.limit
        if not batch.indices or max(batch.indices) < limit:
            return None
        reason = f"its index is past the {limit:,} a send's message ids can tell apart"
        return {row: reason for row, index in enumerate(batch.indices) if index >= limit}

    def build_send(self, batch: Batch, job: WebcomJob) -> HttpRequest:
        """``/json``: one message entry per distinct text, with each phone's client id."""
        phones, validity = batch.phones, job.validity
        ids = job.ids.ids(batch.indices)
        messages = [
            wire.Message(
                type_send_1=job.channel,
                sender=job.sender,
                text=text,
                phones=[wire.PhoneEntry(phones[row], ids[row], validity) for row in rows],
            )
            for text, rows in envelope_rows(batch, job.text)
        ]
        c = self._credentials
        body = wire.Envelope(login=c.login, password=c.password, token=c.token, message=messages)
        return HttpRequest("/json", wire.encode(body), self._headers)

    def parse_send(self, batch: Batch, response: HttpResponse, job: WebcomJob) -> BatchResult:
        """Each ``information`` entry back to its recipient, across the message entries."""
        if response.status == 200 and batch.texts is None:
            # the common answer, read straight into entries: one per phone, in the order
            # sent, every one accepted with an id
            fast = wire.decode_sent(response.body)
            if fast is not None and len(fast) == len(batch):
                ids = _accepted_ids(fast)
                if ids is not None:
                    return BatchResult([Status.ACCEPTED] * len(batch), ids)
        document = self._document(response, entries_first=True)
        information = document.information
        order = [row for _, rows in envelope_rows(batch, job.text) for row in rows]
        if information is None or len(information) != len(order):
            raise ResponseDecodeError(
                "the answer does not have one entry per phone",
                provider=NAME,
                status=response.status,
                maybe_processed=True,
            )
        items = wire.entries(information)
        if order == list(range(len(batch))) and None not in items and not document.error:
            # every phone accepted, in the order sent (personal texts, or an answer the
            # quick read above refused for something beside the entries)
            accepted = _accepted_ids(items)  # type: ignore[arg-type]
            if accepted is not None:
                return BatchResult([Status.ACCEPTED] * len(batch), accepted)
        statuses: list[Status] = [Status.UNCERTAIN] * len(batch)
        details: list[str | None] = ["unreadable answer entry"] * len(batch)
        stop: SmsBridgeError | None = None
        for row, item in zip(order, items, strict=True):
            if item is None:
                continue
            if _an_error(item.error):
                reason = text_of(item.error)
                kind = classify(reason, status=response.status, document=False)
                if isinstance(kind, RejectedError):
                    statuses[row] = Status.REJECTED
                elif kind.maybe_processed:
                    statuses[row] = Status.UNCERTAIN  # held until paid, or an earlier copy
                else:
                    statuses[row] = Status.FAILED
                details[row] = reason
                if kind.account_wide and stop is None:
                    stop = kind
            elif item.id_sms not in (None, ""):
                statuses[row], details[row] = Status.ACCEPTED, text_of(item.id_sms)
        if _an_error(document.error):
            # beside entries with ids: theirs went; an answer at odds with itself leaves the
            # others unknown (it may have sent them too), and an account's error stops the send
            reason = text_of(document.error)
            kind = classify(reason, status=response.status, document=True)
            for row, status in enumerate(statuses):
                if status is Status.UNCERTAIN and details[row] == "unreadable answer entry":
                    details[row] = reason
            if kind.account_wide and stop is None:
                stop = kind
        return BatchResult(statuses, details, stop)

    def _document(self, response: HttpResponse, *, entries_first: bool = False) -> wire.Document:
        """The answer object, or the error a document-level failure means: the HTTP status
        first where it says what happened (a 429 is no refusal, whatever its text), then the
        gateway's words. ``entries_first``: a send's answer whose entries carry ids is read
        whatever its document-level error says (those went; the caller reads the error)."""
        try:
            document: wire.Document | None = wire.decode_document(response.body)
        except UNREADABLE:
            document = None
        if entries_first and document is not None and _has_ids(document.information):
            decisive = decisive_status_error(NAME, response, None)
            if decisive is not None:
                raise decisive
            return document
        self._raise_for(response, document)
        assert document is not None
        return document

    def _raise_for(self, response: HttpResponse, document: wire.Document | None) -> None:
        error = document.error if document is not None else None
        message = text_of(error) if error else None
        decisive = decisive_status_error(NAME, response, message)
        if decisive is not None:
            raise decisive
        if message is not None:
            raise classify(message, status=response.status, document=True)
        failure = status_error(NAME, response, None)
        if failure is not None:
            raise failure
        if document is None:
            raise ResponseDecodeError(
                "the gateway's answer is not the JSON it documents",
                provider=NAME,
                status=response.status,
                maybe_processed=True,
            )

    # ----------------------------------------------------------------- other calls

    def build_state(self, ids: Sequence[str]) -> HttpRequest:
        """``/json/state.php`` for one id (or several, with ``status_batch`` > 1), with
        ``detail`` as documented."""
        values: list[int | str] = [int(i) if i.isdigit() else i for i in ids]
        c = self._credentials
        query = wire.StateQuery(
            login=c.login,
            password=c.password,
            token=c.token,
            id_sms=values[0] if len(values) == 1 else values,
            detail=1,
        )
        return HttpRequest("/json/state.php", wire.encode(query), self._headers)

    def parse_state(self, ids: Sequence[str], response: HttpResponse) -> list[MessageStatus]:
        """One status per asked id, in order; an id the gateway never took says so."""
        try:
            answer: list[wire.StateEntry] | wire.Document | None = wire.decode_state(response.body)
        except UNREADABLE:
            answer = None
        if not isinstance(answer, list):
            try:
                self._raise_for(response, answer)
            except RejectedError as e:  # "no such id", said for the whole answer
                said = e.gateway_message or e.message
                return [_not_found(i, said) for i in ids]
            answer = []
        found = {text_of(e.id_sms): e for e in answer if e.id_sms is not None}
        result = []
        for message_id in ids:
            item = found.get(message_id)
            if item is None:
                result.append(_not_found(message_id, "the gateway's answer does not mention it"))
                continue
            raw = text_of(item.state or "")
            if kind_of(raw) is Kind.NOT_FOUND:
                result.append(_not_found(message_id, raw))
                continue
            result.append(
                MessageStatus(
                    message_id=message_id,
                    state=STATES.get(raw.strip().lower(), DeliveryState.UNKNOWN),
                    raw=raw,
                    error=text_of(item.error) if item.error else None,
                )
            )
        return result

    def build_balance(self) -> HttpRequest:
        """``/json/balance.php``."""
        return HttpRequest("/json/balance.php", wire.encode(self._credentials), self._headers)

    def parse_balance(self, response: HttpResponse) -> Balance:
        """Money as a ``Decimal``; prepaid counts per area, ``None`` for unlimited. A package
        that cannot be read is left out, not the whole balance."""
        document = self._document(response)
        try:
            money = Decimal(text_of(document.money).replace(",", ".").strip())
        except (InvalidOperation, ValueError):
            raise ResponseDecodeError(
                "unreadable balance: no money in it", provider=NAME, status=response.status
            ) from None
        packages = []
        for raw in document.information or ():
            item = wire.entry(raw, wire.Package)
            count = _count(item.num_sms if item.num_sms is not None else item.sms) if item else ...
            if item is None or count is ...:
                log.warning("webcom: a balance package could not be read; left out")
                continue
            packages.append(
                BalancePackage(channel=item.type_sms or "", area=item.area or "", count=count)
            )
        currency = text_of(document.currency) if document.currency is not None else ""
        return Balance(money=money, currency=currency, packages=tuple(packages))


def _not_found(message_id: str, said: str) -> MessageStatus:
    return MessageStatus(
        message_id=message_id, state=DeliveryState.UNKNOWN, error=f"not found: {said}"
    )


_UNLIMITED = ("unlim", "безлимит", "безлім")


def _count(value: object) -> int | EllipsisType | None:
    """A package's count: ``None`` for unlimited, ``...`` when unreadable."""
    text = text_of(value).strip().lower() if value is not None else ""
    if text.startswith(_UNLIMITED):
        return None
    try:
        return int(text)
    except ValueError:
        return ...

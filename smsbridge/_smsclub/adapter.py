"""SMS Club, translated: requests built and answers parsed, no I/O.

Answer shapes handled (all seen in the gateway's documents or its own SDK):

- ``{"success_request": {"info": {id: phone}}}``: all accepted;
- plus ``"add_info": {phone: reason}``: those recipients rejected (partial success);
- ``"add_info": {field: reason}`` keyed by a field (``src_addr``, ``phone``, ``message``...):
  the whole request refused;
- ``{"status": 401, "message": ...}`` and ``{"name": ..., "message": ...}`` error objects;
- HTTP 400/401/429/453/5xx with any body; anything unreadable.

A number the answer does not mention at all may or may not have been sent: ``uncertain``.
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from decimal import Decimal, InvalidOperation
from typing import Any

import msgspec

from .._core.errors import (
    DuplicateMessageError,
    InsufficientBalanceError,
    InvalidInputError,
    RejectedError,
    ResponseDecodeError,
    SmsBridgeError,
)
from .._core.gateway import (
    UNREADABLE,
    Batch,
    BatchResult,
    Packer,
    UniquePhonePacker,
    decisive_status_error,
    status_error,
    text_of,
)
from .._core.models import (
    Balance,
    DeliveryState,
    MessageStatus,
    SenderState,
    SenderStatus,
    Status,
)
from .._core.phones import PhoneRules
from .._core.transport import HttpRequest, HttpResponse, header_fields
from . import wire
from .spec import SPEC
from .texts import Kind, kind_of, state_of

__all__ = ["MAX_BATCH", "SmsClubGateway", "SmsClubJob"]

NAME = SPEC.name
MAX_BATCH = SPEC.max_batch or SPEC.batch_size
"""Numbers per send request and ids per status request, as documented."""

_DIGITS = re.compile(r"\D+")

_SENDER_STATES: dict[str, SenderState] = {
    "approved": SenderState.APPROVED,
    "разрешено": SenderState.APPROVED,
    "being moderated": SenderState.MODERATION,
    "на модерации": SenderState.MODERATION,
    "awaiting moderation by operator": SenderState.OPERATOR_MODERATION,
    "на модерации у оператора": SenderState.OPERATOR_MODERATION,
    "waiting for additional. information": SenderState.NEEDS_INFORMATION,
    "ожидаем доп. информацию": SenderState.NEEDS_INFORMATION,
    "rejected": SenderState.REJECTED,
    "отклонено": SenderState.REJECTED,
}


class SmsClubJob(msgspec.Struct, frozen=True, kw_only=True):
    """One send: the sender, the common text (``None`` for personalised), options."""

    sender: str
    text: str | None = None
    lifetime: int | None = None
    integration_id: int | None = None


def _digits(value: Any) -> str:
    return _DIGITS.sub("", str(value))


_PHONE_KEY = re.compile(r"\s*\+?[\d\s()\-]{7,}\s*")  # an add_info key that is a number


_TOO_MANY = re.compile(
    r"\s*(too many (requests|attempts)|rate limit exceeded)[.!]?\s*", re.IGNORECASE
)


def _is_number(value: Any) -> bool:
    """A number as an answer writes one: digits, perhaps after a plus."""
    text = str(value).strip().removeprefix("+")
    return text.isdigit() and text.isascii() and len(text) >= 7


def _ids_of_numbers(info: Any) -> bool:
    """Whether ``info`` maps ids to numbers, as a send's answer does (not a refusal's words
    under the same name)."""
    return (
        isinstance(info, dict)
        and bool(info)
        and all(str(key).isdigit() and _is_number(value) for key, value in info.items())
    )


def _inner_status(answer: wire.Answer | None) -> int:
    """The ``status`` an answer's body gives (0 where none)."""
    if answer is None or answer.status is None:
        return 0
    try:
        return int(answer.status)
    except (TypeError, ValueError):
        return 0


def _placed(digits: str, batch: set[str]) -> str:
    """The batch's number an answer names as ``digits``: itself, or the one number it ends
    (the answer wrote it nationally, ``0989361130`` for ``380989361130``); where several
    end so, none (the recipients stay unknown rather than take another's verdict)."""
    if digits in batch or len(digits) < 9:
        return digits
    ending = [phone for phone in batch if phone.endswith(digits)]
    return ending[0] if len(ending) == 1 else digits


class SmsClubGateway:
    """The SMS Club adapter.

    Args:
        token: the JSON API bearer token.
        batch_size: numbers per request; at most the documented 100.
        phones: number rules; Ukrainian national format accepted by default.
    """

    name = NAME
    retry_safe = SPEC.retry_safe

    def __init__(
        self, token: str, *, batch_size: int = MAX_BATCH, phones: PhoneRules | None = None
    ) -> None:
        if not 1 <= batch_size <= MAX_BATCH:
            raise InvalidInputError(f"batch_size must be 1..{MAX_BATCH}, got {batch_size}")
        self.batch_size = batch_size
        self.phones = phones or SPEC.phone_rules()
        self._headers = header_fields(
            {
                "Authorization": f"Bearer {token}",
                "Content-Type": "application/json",
                "Accept": "application/json",
            },
            "the SMS Club token",
        )

    def __repr__(self) -> str:
        return f"SmsClubGateway(batch_size={self.batch_size})"

    def _request(self, path: str, body: msgspec.Struct | None = None) -> HttpRequest:
        return HttpRequest(path, b"" if body is None else wire.encode(body), self._headers)

    # ----------------------------------------------------------------- sending

    def packer(self, job: SmsClubJob) -> Packer:
        """Up to ``batch_size`` recipients, no number twice: the gateway refuses a whole
        request with 453 when it repeats a message to a number."""
        return UniquePhonePacker(self.batch_size)

    def check(self, batch: Batch, job: SmsClubJob) -> dict[int, str] | None:
        """No per-recipient checks beyond the number: the gateway judges texts."""
        return None

    def build_send(self, batch: Batch, job: SmsClubJob) -> HttpRequest:
        """``/sms/send`` for a common text, ``/v2/sms/send`` for personalised ones."""
        if batch.texts is None:
            assert job.text is not None
            return self._request(
                "/sms/send",
                wire.BulkSend(
                    phone=batch.phones,
                    src_addr=job.sender,
                    message=job.text,
                    lifetime=job.lifetime,
                    integration_id=job.integration_id,
                ),
            )
        return self._request(
            "/v2/sms/send",
            wire.PersonalSend(
                src_addr=job.sender,
                data_message=[
                    wire.PersonalMessage(phone, text)
                    for phone, text in zip(batch.phones, batch.texts, strict=True)
                ],
                lifetime=job.lifetime,
            ),
        )

    def parse_send(self, batch: Batch, response: HttpResponse, job: SmsClubJob) -> BatchResult:
        """One verdict per recipient, or the request-level error."""
        success = self._success(response)
        info = success.info if isinstance(success.info, dict) else {}
        phones = batch.phones
        if not success.add_info and len(info) == len(phones):
            # the common answer, every number accepted: matched at C speed, by their order
            # where it is the order sent, else through a table
            if list(info.values()) == phones:
                return BatchResult([Status.ACCEPTED] * len(phones), list(info))
            by_phone = dict(zip(info.values(), info.keys(), strict=True))
            if len(by_phone) == len(info):
                ids = list(map(by_phone.get, phones))
                if None not in ids:
                    return BatchResult([Status.ACCEPTED] * len(phones), ids)
        return self._parse_mixed(phones, info, success.add_info, response.status)

    def _parse_mixed(
        self,
        phones: list[str],
        info: dict[str, Any],
        add_info: dict[str, Any] | list[Any] | str | None,
        status: int,
    ) -> BatchResult:
        batch = set(phones)
        ids_by_phone: dict[str, list[str]] = {}
        for message_id, phone in info.items():
            if _is_number(phone):  # an id for a number (other words name no one)
                ids_by_phone.setdefault(_placed(_digits(phone), batch), []).append(message_id)

        per_phone: dict[str, str] = {}
        request_problem: str | None = None
        problems: list[str] = []
        if isinstance(add_info, dict):
            for key, value in add_info.items():
                reason = text_of(value)
                problems.append(reason)
                if _PHONE_KEY.fullmatch(key):  # a number, however written: its own reason
                    # (one this request did not carry names nobody: the rest stay unknown)
                    per_phone[_placed(_digits(key), batch)] = reason
                else:
                    request_problem = f"{key}: {reason}"
        elif add_info is not None:
            request_problem = text_of(add_info)
            problems.append(request_problem)

        statuses: list[Status] = []
        details: list[str | None] = []
        for phone in phones:
            ids = ids_by_phone.get(phone)
            if ids:
                statuses.append(Status.ACCEPTED)
                details.append(ids.pop(0))
            elif phone in per_phone:
                reason = per_phone[phone]
                # not paid for is not refused: it may go once the account is topped up
                unpaid = kind_of(reason) is Kind.BALANCE
                statuses.append(Status.FAILED if unpaid else Status.REJECTED)
                details.append(reason)
            elif request_problem is not None:
                statuses.append(Status.REJECTED)
                details.append(request_problem)
            else:
                statuses.append(Status.UNCERTAIN)
                details.append("the gateway's answer does not mention this number")

        stop: SmsBridgeError | None = None
        broke = next((p for p in problems if kind_of(p) is Kind.BALANCE), None)
        if broke is not None:
            stop = InsufficientBalanceError(
                "the account's balance is insufficient",
                provider=NAME,
                status=status,
                gateway_message=broke,
            )
            if not info:
                raise stop
        return BatchResult(statuses, details, stop)

    # ----------------------------------------------------------------- answers

    def _success(self, response: HttpResponse) -> wire.Success:
        """The ``success_request`` of a 2xx answer, or the error the answer means."""
        try:
            answer: wire.Answer | None = wire.decode_answer(response.body)
        except UNREADABLE:
            answer = None
        message = None
        if answer is not None:
            if answer.message is not None:
                message = text_of(answer.message)
            elif answer.name is not None:
                message = text_of(answer.name)
            elif answer.success_request is not None and answer.success_request.add_info:
                message = text_of(answer.success_request.add_info)
        if response.status == 453:
            raise DuplicateMessageError(
                "the same text went to a number of this request less than 2 minutes ago",
                splittable=True,
                provider=NAME,
                status=453,
                gateway_message=message,
            )
        error = decisive_status_error(NAME, response, message)
        if error is not None:
            raise error
        if not 200 <= response.status < 300:
            success = answer.success_request if answer is not None else None
            if success is not None and _ids_of_numbers(success.info):
                return success  # ids given for numbers, whatever the status: they went
            inner = _inner_status(answer)
            if inner in (429, 453) and inner != response.status:  # its body's say is exact
                self._success(HttpResponse(inner, response.body, response.headers))
            if message and kind_of(message) is Kind.BALANCE:
                raise InsufficientBalanceError(
                    "the account's balance is insufficient",
                    provider=NAME,
                    status=response.status,
                    gateway_message=message,
                )
            raise status_error(NAME, response, message) or ResponseDecodeError(
                "unexpected HTTP status", provider=NAME, status=response.status
            )
        if answer is None:
            raise ResponseDecodeError(
                "the gateway's answer is not the JSON it documents",
                provider=NAME,
                status=response.status,
                maybe_processed=True,
            )
        if answer.success_request is not None:
            return answer.success_request
        # an error object inside a 200: map its status as if it were the HTTP status
        inner = _inner_status(answer)
        if inner >= 300:
            self._success(HttpResponse(inner, response.body, response.headers))
        if message and _TOO_MANY.fullmatch(message):  # a rate limiter's words alone
            self._success(HttpResponse(429, response.body, response.headers))
        if answer.name is not None or answer.message is not None:
            if message and kind_of(message) is Kind.BALANCE:
                raise InsufficientBalanceError(
                    "the account's balance is insufficient",
                    provider=NAME,
                    status=response.status,
                    gateway_message=message,
                )
            raise RejectedError(
                "the gateway refused the request",
                provider=NAME,
                status=response.status,
                gateway_message=message,
            )
        raise ResponseDecodeError(
            "the gateway's answer has no success_request",
            provider=NAME,
            status=response.status,
            maybe_processed=True,
        )

    # ----------------------------------------------------------------- other calls

    def build_status(self, ids: Sequence[str]) -> HttpRequest:
        """``/sms/status`` for up to 100 ids."""
        return self._request("/sms/status", wire.StatusQuery(list(ids)))

    def parse_status(self, ids: Sequence[str], response: HttpResponse) -> list[MessageStatus]:
        """One status per requested id, in order."""
        success = self._success(response)
        info = success.info if isinstance(success.info, dict) else {}
        add_info = success.add_info
        result: list[MessageStatus] = []
        for message_id in ids:
            if message_id in info:
                raw = text_of(info[message_id])
                result.append(MessageStatus(message_id=message_id, state=state_of(raw), raw=raw))
                continue
            if isinstance(add_info, dict) and message_id in add_info:
                error = text_of(add_info[message_id])
            elif isinstance(add_info, str):
                error = add_info
            else:
                error = "the gateway's answer does not mention this id"
            result.append(
                MessageStatus(message_id=message_id, state=DeliveryState.UNKNOWN, error=error)
            )
        return result

    def build_balance(self) -> HttpRequest:
        """``/sms/balance`` (no body)."""
        return self._request("/sms/balance")

    def parse_balance(self, response: HttpResponse) -> Balance:
        """Money as a ``Decimal``, and the currency."""
        info = self._success(response).info
        try:
            if not isinstance(info, dict):
                raise TypeError(type(info).__name__)
            return Balance(money=Decimal(str(info["money"])), currency=text_of(info["currency"]))
        except (KeyError, TypeError, InvalidOperation) as e:
            raise ResponseDecodeError(
                f"unreadable balance ({type(e).__name__})", provider=NAME, status=response.status
            ) from None

    def build_senders(self) -> HttpRequest:
        """``/sms/originator`` (no body)."""
        return self._request("/sms/originator")

    def parse_senders(self, response: HttpResponse) -> list[str]:
        """Active sender names."""
        info = self._success(response).info
        if isinstance(info, dict):
            return [text_of(v) for v in info.values()]
        return [text_of(v) for v in info or ()]

    def build_register(self, registration: wire.Registration) -> HttpRequest:
        """``/originators/registration-originators``."""
        return self._request("/originators/registration-originators", registration)

    def parse_register(self, response: HttpResponse) -> SenderStatus:
        """The application's state, or a RejectedError naming the fields at fault."""
        success = self._success(response)
        info = success.info
        if isinstance(info, dict) and "originator" in info:
            raw = text_of(info.get("status", ""))
            return SenderStatus(
                sender=text_of(info["originator"]), state=_sender_state(raw), raw=raw
            )
        raise RejectedError(
            "the gateway refused the sender registration",
            provider=NAME,
            status=response.status,
            code=",".join(success.add_info) if isinstance(success.add_info, dict) else None,
            gateway_message=_fields(success.add_info),
        )

    def build_sender_status(self, sender: str | None) -> HttpRequest:
        """``/originators/stat-originators``, for one name or all."""
        body = None if sender is None else wire.SenderQuery(sender)
        return self._request("/originators/stat-originators", body)

    def parse_sender_status(self, response: HttpResponse) -> list[SenderStatus]:
        """Each known name with its state; unknown names are simply absent."""
        info = self._success(response).info
        if not isinstance(info, dict):
            return []
        return [
            SenderStatus(sender=name, state=_sender_state(text_of(raw)), raw=text_of(raw))
            for name, raw in info.items()
        ]


def _sender_state(raw: str) -> SenderState:
    return _SENDER_STATES.get(raw.strip().lower(), SenderState.UNKNOWN)


def _fields(add_info: Mapping[str, Any] | list[Any] | str | None) -> str:
    if isinstance(add_info, Mapping):
        return "; ".join(f"{k}: {text_of(v)}" for k, v in add_info.items())
    return text_of(add_info) if add_info is not None else "no reason given"

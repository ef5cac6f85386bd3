"""SMSPlus, translated: template sends with parallel parameter arrays, no I/O.

Every answer is ``{success, code, message}`` with ``code`` a string; ``"100"`` means sent. A
failure code refuses the whole request. The gateway returns no per-message ids, so accepted
outcomes carry none.
"""

from __future__ import annotations

import functools
import re
from collections.abc import Mapping, Sequence
from typing import Any

import msgspec

from .._core.errors import (
    AuthenticationError,
    InsufficientBalanceError,
    InvalidInputError,
    RateLimitedError,
    RejectedError,
    ResponseDecodeError,
    SmsBridgeError,
    UnavailableError,
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
from .._core.models import Status
from .._core.phones import PhoneRules
from .._core.transport import HttpRequest, HttpResponse, header_fields
from . import wire
from .spec import SPEC

__all__ = ["CODES", "DEFAULT_BATCH", "SmsPlusGateway", "SmsPlusJob", "Template"]

NAME = SPEC.name
MAX_TEXT = 160

DEFAULT_BATCH = 100
"""Numbers per request. SMSPlus documents no limit, and one bad entry (code 112, 116-118,
120, 121) refuses the whole request, so a request is kept at the size SMS Club documents:
small enough that a refusal costs few recipients, large enough to waste few requests."""

_PLACEHOLDER = re.compile(r"\{\{?\s*(1|2|3|first|second|third)\s*\}?\}", re.IGNORECASE)
_ORDINAL = {"1": 0, "2": 1, "3": 2, "first": 0, "second": 1, "third": 2}

CODES: dict[str, str] = {
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
"""Every documented code and its meaning, in the gateway's words."""


class Template(msgspec.Struct, frozen=True, kw_only=True):
    """An approved message template.

    Attributes:
        id: the template's id (``message_template_id``).
        name: its name, when the gateway gives one.
        text: its text with placeholders, when known. Placeholders are read as ``{1}``,
            ``{2}``, ``{3}`` (or ``{first}``... , with single or double braces): the
            documents do not show the gateway's syntax.
        parameters: how many parameters it takes; counted from ``text`` when not given.
    """

    id: int
    name: str | None = None
    text: str | None = None
    parameters: int | None = None

    def __post_init__(self) -> None:
        if self.parameters is None and self.text is not None:
            used = {_ORDINAL[m.lower()] for m in _PLACEHOLDER.findall(self.text)}
            msgspec.structs.force_setattr(self, "parameters", max(used) + 1 if used else 0)

    def rendered_length(self, params: Sequence[str]) -> int | None:
        """Characters of :meth:`render`'s result, without building it; ``None`` if unknown."""
        if self.text is None:
            return None
        fixed, uses = _shape(self.text)
        return fixed + sum(
            count * len(params[p]) if p < len(params) else width for p, count, width in uses
        )

    @classmethod
    def from_answer(cls, entry: Any) -> Template | None:
        """A template from one entry of the templates answer (field names vary)."""
        if not isinstance(entry, Mapping):
            return None
        raw_id = next(
            (entry[k] for k in ("id", "template_id", "message_template_id") if k in entry), None
        )
        try:
            template_id = int(raw_id)  # type: ignore[arg-type]
        except (TypeError, ValueError):
            return None
        text = next(
            (entry[k] for k in ("text", "message", "template", "body", "content") if k in entry),
            None,
        )
        name = next((entry[k] for k in ("name", "title") if k in entry), None)
        count = next(
            (entry[k] for k in ("parameters", "parameters_count", "params_count") if k in entry),
            None,
        )
        return cls(
            id=template_id,
            name=str(name) if name is not None else None,
            text=text if isinstance(text, str) else None,
            parameters=count if isinstance(count, int) and not isinstance(count, bool) else None,
        )


@functools.lru_cache(maxsize=64)
def _shape(text: str) -> tuple[int, tuple[tuple[int, int, int], ...]]:
    """A template text's length without placeholders, and per parameter position how often it
    appears and how wide its placeholders are in all (kept as they are when the value is
    missing; each may be written differently: ``{2}``, ``{ second }``)."""
    counts: dict[int, tuple[int, int]] = {}
    fixed = len(text)
    for match in _PLACEHOLDER.finditer(text):
        position = _ORDINAL[match.group(1).lower()]
        count, width = counts.get(position, (0, 0))
        counts[position] = (count + 1, width + len(match.group(0)))
        fixed -= len(match.group(0))
    return fixed, tuple((p, c, w) for p, (c, w) in counts.items())


class SmsPlusJob(msgspec.Struct, frozen=True, kw_only=True):
    """One template send: the sender, the template id and, when known, the template."""

    sender: str
    template_id: int
    template: Template | None = None

    @property
    def text(self) -> str:
        """The template's identity stands in for the text in duplicate-window keys."""
        return f"template #{self.template_id}"


def _param_counts(batch: Batch) -> list[int]:
    return batch.parameters.widths if batch.parameters is not None else [0] * len(batch)


def _code_text(code: object) -> str:
    """A code as the gateway means it: ``100``, ``"100"``, ``100.0`` and ``"100.0"`` alike."""
    if isinstance(code, float) and code.is_integer():
        return str(int(code))
    text = str(code).strip()
    whole, dot, zeros = text.partition(".")
    return whole if dot and whole.isdigit() and zeros.strip("0") == "" else text


def code_error(code: str, message: str | None, status: int) -> SmsBridgeError:
    """The typed error of a failure code."""
    said = message or CODES.get(code)
    kw: dict[str, Any] = {"provider": NAME, "status": status, "code": code, "gateway_message": said}
    number = int(code) if code.isdigit() else 0
    if number == 429:  # as Laravel's throttle writes it into the body
        return RateLimitedError("the gateway asked to slow down", **kw)
    if 101 <= number <= 106:
        return AuthenticationError("the account cannot send (credentials or contract)", **kw)
    if number == 119:
        return InsufficientBalanceError("the SMS balance is insufficient", **kw)
    if number == 122:
        return UnavailableError("the gateway failed while sending; some may have gone", **kw)
    if 107 <= number <= 123:
        return RejectedError("the gateway refused the request", **kw)
    return RejectedError(f"the gateway refused the request with unknown code {code}", **kw)


class SmsPlusGateway:
    """The SMSPlus adapter.

    Args:
        token: the bearer token from the customer's personal page.
        batch_size: numbers per request (see :data:`DEFAULT_BATCH`).
        phones: number rules; Azerbaijani numbers only by default.
    """

    name = NAME
    retry_safe = SPEC.retry_safe

    def __init__(
        self, token: str, *, batch_size: int = DEFAULT_BATCH, phones: PhoneRules | None = None
    ) -> None:
        if batch_size < 1:
            raise InvalidInputError(f"batch_size must be positive, got {batch_size}")
        self.batch_size = batch_size
        self.phones = phones or SPEC.phone_rules()
        self._headers = header_fields(
            {
                "Authorization": f"Bearer {token}",
                "Content-Type": "application/json",
                "Accept": "application/json",
            },
            "the SMSPlus token",
        )

    def __repr__(self) -> str:
        return f"SmsPlusGateway(batch_size={self.batch_size})"

    def packer(self, job: SmsPlusJob) -> Packer:
        """Batches with no number twice (code 112), whose recipients all carry the same
        number of parameters: the arrays stay exactly as given, never padded with blanks."""
        return UniquePhonePacker(self.batch_size, shapes=_param_counts)

    def check(self, batch: Batch, job: SmsPlusJob) -> dict[int, str] | None:
        """More than three parameters (the request has three arrays); wrong counts and
        over-long rendered texts, when the template is known."""
        parameters = batch.parameters
        if parameters is None:
            return None
        template = job.template
        if template is None:  # only what no template can take
            widths = parameters.widths
            if max(widths, default=0) <= 3:
                return None
            return {row: f"at most 3 parameters, got {w}" for row, w in enumerate(widths) if w > 3}
        expected = template.parameters
        if (
            template.text is not None
            and expected is not None
            and expected <= 3
            and parameters.uniform() == expected
        ):
            # every row has the right count: the longest value of each column, in C, bounds
            # every row's length (the rows are read one by one only where the bound is over)
            fixed, uses = _shape(template.text)
            columns = parameters.columns[:expected]
            longest = fixed
            for position, count, width in uses:
                if position < len(columns):
                    longest += count * max(map(len, columns[position]), default=0)
                else:  # no value: the placeholders stay
                    longest += width
            if longest <= MAX_TEXT:
                return None
        problems: dict[int, str] = {}
        for row, params in enumerate(parameters):
            if len(params) > 3:
                problems[row] = f"at most 3 parameters, got {len(params)}"
            elif expected is not None and len(params) != expected:
                problems[row] = (
                    f"template {template.id} takes {expected} parameters, got {len(params)}"
                )
            else:
                length = template.rendered_length(params)
                if length is not None and length > MAX_TEXT:
                    problems[row] = f"the text would be {length} characters, over {MAX_TEXT}"
        return problems or None

    def build_send(self, batch: Batch, job: SmsPlusJob) -> HttpRequest:
        """``/api/sms/send`` with the parameter arrays aligned to the numbers (the packer
        gives every recipient of a request the same number of parameters)."""
        params = batch.parameters
        width = 0
        if params is not None and len(params):
            uniform = params.uniform()
            if uniform is None:
                raise InvalidInputError("recipients of one request must carry as many parameters")
            width = uniform
        columns: list[list[str] | None] = [None, None, None]
        for position in range(min(width, 3)):
            columns[position] = params.columns[position]  # type: ignore[union-attr]
        body = wire.Send(
            sender_name=job.sender,
            message_template_id=job.template_id,
            mobile_numbers=batch.phones,
            first_parameters=columns[0],
            second_parameters=columns[1],
            third_parameters=columns[2],
        )
        return HttpRequest("/api/sms/send", wire.encode(body), self._headers)

    def parse_send(self, batch: Batch, response: HttpResponse, job: SmsPlusJob) -> BatchResult:
        """Code 100: everyone accepted; any other code raises its typed error."""
        self._answer(response)
        n = len(batch)
        return BatchResult([Status.ACCEPTED] * n, [None] * n)

    def _answer(self, response: HttpResponse) -> wire.Answer:
        """The answer of a 2xx with code 100, or the error it means: the HTTP status first
        where it says what happened, then the gateway's code."""
        try:
            answer: wire.Answer | None = wire.decode_answer(response.body)
        except UNREADABLE:
            answer = None
        code = None if answer is None or answer.code is None else _code_text(answer.code)
        message = None if answer is None or answer.message is None else text_of(answer.message)
        decisive = decisive_status_error(NAME, response, message)
        if decisive is not None:
            if code is not None and code != "100" and decisive.account_wide:
                refined = code_error(code, message, response.status)
                if refined.account_wide:  # 101-106 name the account's problem exactly
                    raise refined
            raise decisive
        if code == "100" and answer is not None and answer.success is not False:
            return answer
        if code is not None:
            # an answer at odds with itself (sent, and no success; or a success with a code
            # that says nothing known) may have sent: not a refusal to send again
            known = code in CODES
            said_success = answer is not None and answer.success in (True, 1, "true", "True")
            if code == "100" or (said_success and not known):
                raise ResponseDecodeError(
                    f"the gateway's answer contradicts itself (code {code}, success "
                    f"{answer.success if answer is not None else None!r})",
                    provider=NAME,
                    status=response.status,
                    code=code,
                    gateway_message=message,
                    maybe_processed=True,
                )
            raise code_error(code, message, response.status)
        error = status_error(NAME, response, message)
        if error is not None:
            raise error
        raise ResponseDecodeError(
            "the gateway's answer has no code",
            provider=NAME,
            status=response.status,
            maybe_processed=True,
        )

    def build_templates(self, ids: Sequence[int] | None) -> HttpRequest:
        """``/api/message/templates`` for some ids, or all."""
        body = wire.TemplateQuery("all" if ids is None else list(ids))
        return HttpRequest("/api/message/templates", wire.encode(body), self._headers)

    def parse_templates(self, response: HttpResponse) -> list[Template]:
        """The templates the answer lists; entries it cannot read are skipped."""
        data = self._answer(response).data
        if isinstance(data, Mapping):
            data = list(data.values())
        if not isinstance(data, list):
            raise ResponseDecodeError(
                "the templates answer has no list", provider=NAME, status=response.status
            )
        return [t for t in (Template.from_answer(entry) for entry in data) if t is not None]

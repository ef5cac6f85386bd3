"""The contract between the core and a gateway adapter.

An adapter is sans-I/O: it says how to cut recipients into requests (:class:`Packer`),
builds each request as bytes (:meth:`Gateway.build_send`) and turns each answer into one
verdict per recipient or a typed error (:meth:`Gateway.parse_send`). The core does
everything else: reading the input, numbers, the duplicate window, the limiter, retries,
outcomes. It knows no gateway by name.
"""

from __future__ import annotations

import datetime
import email.utils
import math
import operator
from collections.abc import Callable, Hashable, Iterable, Iterator, Mapping, Sequence
from itertools import repeat
from typing import Any, Generic, Literal, Protocol, TypeVar

import msgspec

from .errors import (
    AuthenticationError,
    GatewayError,
    InsufficientBalanceError,
    InvalidInputError,
    RateLimitedError,
    RejectedError,
    ResponseDecodeError,
    SmsBridgeError,
    UnavailableError,
)
from .models import Status
from .phones import PhoneRules
from .recipients import check_text
from .transport import HttpRequest, HttpResponse

__all__ = [
    "UNREADABLE",
    "Batch",
    "BatchResult",
    "ChunkPacker",
    "Gateway",
    "GatewaySpec",
    "Job",
    "Message",
    "Packer",
    "Params",
    "UniquePhonePacker",
    "check_sender",
    "checked_message",
    "decisive_status_error",
    "retry_after_seconds",
    "status_error",
    "text_of",
    "without_bom",
]


MessageKind = Literal["text", "personal", "template"]
"""What a send carries: one text for everyone, each recipient's own text, or a template."""

Call = Literal["status", "balance", "senders", "templates"]
"""The calls besides sending that a gateway may offer."""


class GatewaySpec(msgspec.Struct, frozen=True, kw_only=True):
    """A gateway, declared once, in its own package: what the core, the command line, the
    dry run, the fakes' catalogue and the web edges know of it.

    Attributes:
        name: the short name (``smsclub``): the command line's word, the environment
            prefix (``SMSBRIDGE_SMSCLUB_*``), the name in errors and logs.
        title: the name people know (``SMS Club``).
        default_url: the documented base URL.
        plain_http_default: the documented URL is plain HTTP (allowed, with a warning).
        https_url: an HTTPS address of the same platform, where one is known.
        region: the home country, whose national format is accepted (``UA``).
        countries: the countries served; ``None`` for any.
        batch_size: recipients per request by default; max_batch: the documented ceiling.
        retry_safe: a repeat of an ambiguous request cannot send twice (the gateway
            de-duplicates by an id the adapter puts in each request).
        repeat_guard: seconds in which the gateway refuses the same text to the same number
            again with :class:`DuplicateMessageError` (SMS Club's 453, 120 s): within them an
            ambiguous request can be repeated, the refusal saying that the first one went.
        credentials: the ways to authenticate, each a tuple of argument names (also read
            from ``SMSBRIDGE_<NAME>_<ARGUMENT>``), the first complete one wins.
        messages: what it can send (see :data:`MessageKind`).
        calls: what else it can do (see :data:`Call`).
        client: the client class, as ``module:Class``.
        fake: its fake gateway class for tests, as ``module:Class``.
    """

    name: str
    title: str
    default_url: str
    region: str
    client: str
    fake: str
    plain_http_default: bool = False
    https_url: str | None = None
    countries: tuple[str, ...] | None = None
    batch_size: int = 100
    max_batch: int | None = None
    retry_safe: bool = False
    repeat_guard: float | None = None
    credentials: tuple[tuple[str, ...], ...] = (("token",),)
    messages: frozenset[MessageKind] = frozenset({"text"})
    calls: frozenset[Call] = frozenset()

    @property
    def env_prefix(self) -> str:
        """``SMSBRIDGE_<NAME>``: the prefix of its environment variables."""
        return f"SMSBRIDGE_{self.name.upper()}"

    def phone_rules(self) -> PhoneRules:
        """How it wants its numbers."""
        return PhoneRules(self.region, countries=self.countries)


class Message(msgspec.Struct, frozen=True, kw_only=True):
    """What a send says, whatever the gateway: a sender, and one text for everyone, or an
    approved template, or neither (each recipient brings its own text).

    The recipients of :meth:`~smsbridge.SmsClub.send_message` follow the kind: numbers for
    a text, ``(number, text)`` pairs for personal texts, ``(number, parameters)`` pairs for a
    template.
    """

    sender: str
    text: str | None = None
    template: int | None = None

    @property
    def kind(self) -> MessageKind:
        """``template``, ``text`` or ``personal``."""
        if self.template is not None:
            return "template"
        return "text" if self.text is not None else "personal"


def checked_message(message: object) -> Message:
    """``message`` if it is a :class:`Message` whose sender and text (if one) can be sent;
    else :class:`InvalidInputError` (a text given where a message goes, say: ``send`` takes
    the text), once, before any gateway's own checks."""
    if not isinstance(message, Message):
        raise InvalidInputError(
            f"a message is a smsbridge.Message (Message(sender=..., text=...)), got "
            f"{type(message).__name__}; send() takes a text"
        )
    check_sender(message.sender)
    if message.text is not None:
        check_text(message.text)
    return message


class Params(Sequence[tuple[str, ...]]):
    """Each recipient's template parameters: a sequence of tuples of strings, as given,
    held as columns (the first parameter of every recipient, the second, ...) and each
    recipient's count.

    Columns hold strings only, which the cyclic collector does not track: the tuples a
    caller's input makes for each recipient are let go once read, where holding them while
    a batch waits for its turn made a young collection every few requests in a process of
    many accounts. A recipient's tuple is made again when asked for.
    """

    __slots__ = ("columns", "widths")

    def __init__(self, rows: Iterable[tuple[str, ...]] = ()) -> None:
        if not isinstance(rows, Sequence):
            rows = list(rows)
        if not all(map(isinstance, rows, repeat(tuple))):  # a str would be its characters
            raise ValueError("a batch's parameters are a tuple for each of its recipients")
        widths = list(map(len, rows))
        width = max(widths, default=0)
        self.widths = widths
        if not width:
            self.columns: list[list[str]] = []
        elif widths.count(width) == len(widths):
            self.columns = list(map(list, zip(*rows, strict=True)))
        else:
            self.columns = [[row[k] if k < len(row) else "" for row in rows] for k in range(width)]

    @classmethod
    def _of(cls, columns: list[list[str]], widths: list[int]) -> Params:
        made = cls.__new__(cls)
        made.columns, made.widths = columns, widths
        return made

    def __len__(self) -> int:
        return len(self.widths)

    def _row(self, i: int) -> tuple[str, ...]:
        width = self.widths[i]
        columns = self.columns
        if width == 1:
            return (columns[0][i],)
        return tuple([columns[k][i] for k in range(width)])

    def __getitem__(self, at: Any) -> Any:
        if isinstance(at, slice):
            return Params._of([c[at] for c in self.columns], self.widths[at])
        if at < 0:
            at += len(self.widths)
            if at < 0:
                raise IndexError("Params index out of range")
        return self._row(at)

    def __iter__(self) -> Iterator[tuple[str, ...]]:
        columns = self.columns
        if columns and self.uniform() == len(columns):
            return zip(*columns, strict=True)
        return map(self._row, range(len(self.widths)))

    def __eq__(self, other: object) -> bool:
        if isinstance(other, Params | list | tuple):
            return len(self) == len(other) and all(map(operator.eq, self, other))
        return NotImplemented

    __hash__ = None  # type: ignore[assignment]

    def __repr__(self) -> str:
        return f"Params({list(self)!r})"

    def uniform(self) -> int | None:
        """How many parameters every recipient has, where all have as many."""
        widths = self.widths
        if not widths:
            return None
        width = widths[0]
        return width if widths.count(width) == len(widths) else None

    def pick(self, positions: Sequence[int]) -> Params:
        """The recipients at these positions, in this order."""
        widths = self.widths
        return Params._of(
            [[c[i] for i in positions] for c in self.columns], [widths[i] for i in positions]
        )

    def append(self, row: tuple[str, ...]) -> None:
        """One more recipient."""
        self._widen(len(row))
        for k, column in enumerate(self.columns):
            column.append(row[k] if k < len(row) else "")
        self.widths.append(len(row))

    def extend(self, other: Params | Sequence[tuple[str, ...]]) -> None:
        """More recipients."""
        if not isinstance(other, Params):
            other = Params(other)
        self._widen(len(other.columns))
        n = len(other)
        for k, column in enumerate(self.columns):
            column.extend(other.columns[k] if k < len(other.columns) else [""] * n)
        self.widths.extend(other.widths)

    def _widen(self, width: int) -> None:
        columns = self.columns
        while len(columns) < width:
            columns.append([""] * len(self.widths))


class Batch:
    """Recipients travelling together, column by column: one request's worth, or part of one.

    Columns rather than one object per recipient keep the per-recipient cost of a
    million-number send down to a few list slots.

    Attributes:
        indices: each recipient's 0-based position in the caller's input.
        phones: numbers in the gateway's form.
        texts: each recipient's own text, or ``None`` when they share the job's text.
        parameters: each recipient's template parameters as columns (:class:`Params`), or
            ``None`` for plain texts; :attr:`params` gives them as a list of tuples.
    """

    __slots__ = ("indices", "parameters", "phones", "texts")

    parameters: Params | None

    def __init__(
        self,
        indices: list[int],
        phones: list[str],
        texts: list[str] | None = None,
        params: Iterable[tuple[str, ...]] | None = None,
    ) -> None:
        self.indices = indices
        self.phones = phones
        self.texts = texts
        self.params = params

    @property
    def params(self) -> list[tuple[str, ...]] | None:
        """Each recipient's template parameters, a tuple each (a new list at every read),
        or ``None`` for plain texts."""
        parameters = self.parameters
        return None if parameters is None else list(parameters)

    @params.setter
    def params(self, rows: Iterable[tuple[str, ...]] | None) -> None:
        parameters = rows if rows is None or type(rows) is Params else Params(rows)
        if parameters is not None and len(parameters) != len(self.phones):
            raise ValueError("a batch's parameters are a tuple for each of its recipients")
        self.parameters = parameters

    def __len__(self) -> int:
        return len(self.phones)

    def __repr__(self) -> str:
        return f"Batch({len(self.phones)} recipients)"

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, Batch):
            return NotImplemented
        return (self.indices, self.phones, self.texts, self.parameters) == (
            other.indices,
            other.phones,
            other.texts,
            other.parameters,
        )

    __hash__ = None  # type: ignore[assignment]

    def slice(self, start: int, stop: int) -> Batch:
        """Recipients ``start`` to ``stop`` (exclusive)."""
        return Batch(
            self.indices[start:stop],
            self.phones[start:stop],
            None if self.texts is None else self.texts[start:stop],
            None if self.parameters is None else self.parameters[start:stop],
        )

    def pick(self, positions: Sequence[int]) -> Batch:
        """The recipients at these positions, in this order."""
        texts, params = self.texts, self.parameters
        return Batch(
            [self.indices[i] for i in positions],
            [self.phones[i] for i in positions],
            None if texts is None else [texts[i] for i in positions],
            None if params is None else params.pick(positions),
        )

    def extend(self, other: Batch) -> None:
        """Append ``other``'s recipients (both must carry the same columns)."""
        self.indices.extend(other.indices)
        self.phones.extend(other.phones)
        if self.texts is not None and other.texts is not None:
            self.texts.extend(other.texts)
        if self.parameters is not None and other.parameters is not None:
            self.parameters.extend(other.parameters)

    def empty(self) -> Batch:
        """A batch with no recipients and the same columns."""
        return Batch(
            [],
            [],
            None if self.texts is None else [],
            None if self.parameters is None else Params(),
        )


class BatchResult(msgspec.Struct):
    """The verdict on each recipient of a request, aligned with the batch.

    ``details[i]`` is the gateway's message id for an accepted recipient and the reason for
    any other. ``account_error`` is an account-wide error noticed alongside (the balance ran
    out mid-batch): the core stops the send after recording these verdicts.
    """

    statuses: list[Status]
    details: list[str | None]
    account_error: SmsBridgeError | None = None


class Job(Protocol):
    """What the core needs to know of a send; each adapter defines its own richer job."""

    @property
    def sender(self) -> str:
        """The sender name (part of the duplicate-window key)."""
        ...

    @property
    def text(self) -> str | None:
        """The text all recipients share, or ``None`` when each has its own."""
        ...


class Packer(Protocol):
    """Cuts a stream of batches into request-sized ones, keeping recipients in order."""

    def pack(self, batch: Batch) -> list[Batch]:
        """Take more recipients; return the requests they completed, if any."""
        ...

    def flush(self) -> list[Batch]:
        """Return every request still open; called once, at the end of the input."""
        ...


class ChunkPacker:
    """Consecutive recipients, ``size`` at a time: the batching of most gateways."""

    def __init__(self, size: int) -> None:
        if size < 1:
            raise ValueError("batch size must be at least 1")
        self.size = size
        self._open: Batch | None = None

    def pack(self, batch: Batch) -> list[Batch]:
        """Append; hand back every full request."""
        size = self.size
        if self._open is None or not len(self._open):
            if len(batch) == size:  # the common case: a whole request, untouched
                return [batch]
            self._open = batch.empty()
        current = self._open
        current.extend(batch)
        if len(current) < size:
            return []
        full = [current.slice(i, i + size) for i in range(0, len(current) - size + 1, size)]
        self._open = current.slice(len(full) * size, len(current))
        return full

    def flush(self) -> list[Batch]:
        """The last, partial request, if any."""
        batch, self._open = self._open, None
        return [batch] if batch is not None and len(batch) else []


class UniquePhonePacker:
    """Batches of up to ``size`` in which no number appears twice, for gateways that refuse a
    whole request over one repeated number. A repeated number goes to the next batch that
    lacks it, so each number's entries stay in input order across batches, every column
    moving in lockstep.

    With ``shapes`` (a batch's recipients' shapes, in order), only recipients of the same
    shape share a batch (SMSPlus: the same number of parameters). At most ``max_open``
    batches wait to be filled; past that the oldest goes out part-full.
    """

    def __init__(
        self,
        size: int,
        max_open: int = 8,
        shapes: Callable[[Batch], Sequence[Hashable]] | None = None,
    ) -> None:
        self.size = size
        self.max_open = max_open
        self._shapes = shapes
        self._open: list[tuple[Batch, set[str], Hashable]] = []

    def pack(self, batch: Batch) -> list[Batch]:
        """Place each recipient in the first open batch without its number (and of its
        shape)."""
        size = self.size
        shapes = self._shapes(batch) if self._shapes is not None else None
        if (
            not self._open
            and len(batch) == size
            and len(set(batch.phones)) == size
            and (shapes is None or len(set(shapes)) == 1)
        ):
            return [batch]
        ready: list[Batch] = []
        texts, params = batch.texts, batch.parameters
        for row, phone in enumerate(batch.phones):
            kind = None if shapes is None else shapes[row]
            for target, phones, target_kind in self._open:
                if phone not in phones and len(target) < size and target_kind == kind:
                    break
            else:
                target, phones = batch.empty(), set()
                self._open.append((target, phones, kind))
            phones.add(phone)
            target.indices.append(batch.indices[row])
            target.phones.append(phone)
            if texts is not None and target.texts is not None:
                target.texts.append(texts[row])
            if params is not None and target.parameters is not None:
                target.parameters.append(params[row])
            while self._open and (len(self._open[0][0]) >= size or len(self._open) > self.max_open):
                ready.append(self._open.pop(0)[0])
        return ready

    def flush(self) -> list[Batch]:
        """Every open batch, oldest first."""
        ready = [b for b, _, _ in self._open if len(b)]
        self._open = []
        return ready


J = TypeVar("J", bound=Job, contravariant=True)


class Gateway(Protocol, Generic[J]):
    """A gateway adapter: pure translation between batches and HTTP, no I/O.

    Attributes:
        name: short provider name used in errors and logs.
        phones: how this gateway wants its numbers.
        batch_size: recipients per request the core should aim for.
        retry_safe: ``True`` when an ambiguous send may be repeated without sending twice
            (the gateway de-duplicates by an id the adapter puts in each request).
    """

    name: str
    phones: PhoneRules
    batch_size: int
    retry_safe: bool

    def packer(self, job: J) -> Packer:
        """A fresh packer for one send."""
        ...

    def check(self, batch: Batch, job: J) -> dict[int, str] | None:
        """Pre-send rejections: position in ``batch`` -> reason; ``None`` when all pass."""
        ...

    def build_send(self, batch: Batch, job: J) -> HttpRequest:
        """The request that sends ``batch``."""
        ...

    def parse_send(self, batch: Batch, response: HttpResponse, job: J) -> BatchResult:
        """Verdicts for ``batch`` from the answer, or raise a typed error for the request."""
        ...


UNREADABLE = (msgspec.DecodeError, msgspec.ValidationError, RecursionError)
"""What decoding an answer raises where it is not the JSON documented: not JSON, another
shape, or nested past the decoder's depth."""


def without_bom(body: bytes) -> bytes:
    """A JSON answer without the byte-order mark some servers put before it (JSON has none:
    a decoder refuses it, and an answer that went would read as unreadable)."""
    return body[3:] if body[:3] == b"\xef\xbb\xbf" else body


def text_of(value: Any) -> str:
    """A value of a gateway's answer as text: strings as they are, a mapping of texts as
    ``key: text; …`` (a field-by-field complaint), anything else as JSON."""
    if isinstance(value, str):
        return value
    if type(value) is int:
        return str(value)  # as JSON writes it
    if isinstance(value, dict) and value and all(isinstance(v, str) for v in value.values()):
        return "; ".join(f"{key}: {text}" for key, text in value.items())
    return msgspec.json.encode(value).decode()


def check_sender(sender: object) -> str:
    """A sender name a handset can show: 1-11 printable characters, or up to 15 digits (the
    GSM limits; the gateways document nothing stricter)."""
    if not isinstance(sender, str) or not sender.strip():
        raise InvalidInputError("sender must be a non-empty string")
    if len(sender) > (15 if sender.isdigit() else 11) or not sender.isprintable():
        raise InvalidInputError(
            f"sender {sender!r} is not a valid sender name: at most 11 printable characters, "
            "or 15 digits"
        )
    return sender


def retry_after_seconds(headers: Mapping[str, str]) -> float | None:
    """The ``Retry-After`` header in seconds (delta or HTTP date), ``None`` when absent or bad."""
    value = headers.get("retry-after")
    if not value:
        return None
    value = value.strip()
    try:
        seconds = float(value)
    except ValueError:
        try:
            when = email.utils.parsedate_to_datetime(value)
        except (TypeError, ValueError):
            return None
        if when.tzinfo is None:
            when = when.replace(tzinfo=datetime.UTC)
        seconds = (when - datetime.datetime.now(datetime.UTC)).total_seconds()
    if not math.isfinite(seconds):
        return None
    return max(0.0, seconds)


def _decisive(status: int) -> bool:
    return status in (401, 403, 404, 405, 429) or 300 <= status < 400 or status >= 500


def decisive_status_error(
    provider: str, response: HttpResponse, gateway_message: str | None = None
) -> SmsBridgeError | None:
    """The error of an HTTP status that says what happened whatever the body's text says
    (401/403 credentials, 429 slow down, 5xx may have been processed, 3xx/404/405 a wrong
    base URL), or ``None`` where the body decides. Adapters ask this *before* they classify
    a body's words: a 429 whose body says "Too many requests" is not a refusal."""
    if _decisive(response.status):
        return status_error(provider, response, gateway_message)
    return None


def status_error(
    provider: str, response: HttpResponse, gateway_message: str | None = None
) -> SmsBridgeError | None:
    """The error an HTTP status means by itself, or ``None`` for 2xx.

    Gateways refine this (SMS Club's 453); the shared meaning is: 401/403 bad credentials,
    402 no money, 429 slow down, 3xx/404/405 a wrong base URL (every request would fail),
    other 4xx a refusal of this request, 5xx a failure that may have processed it.
    """
    status = response.status
    kw: dict[str, Any] = {
        "provider": provider,
        "status": status,
        "gateway_message": gateway_message,
    }
    if 200 <= status < 300:
        return None
    if status in (401, 403):
        return AuthenticationError("the gateway refused the credentials", **kw)
    if status == 402:
        return InsufficientBalanceError("the account's balance is insufficient", **kw)
    if status == 429:
        return RateLimitedError(
            "the gateway asked us to slow down",
            retry_after=retry_after_seconds(response.headers),
            **kw,
        )
    if 300 <= status < 400 or status in (404, 405):
        return GatewayError(
            "the gateway has no such endpoint here; check the base URL",
            account_wide=True,
            maybe_processed=False,
            **kw,
        )
    if 400 <= status < 500:
        return RejectedError("the gateway refused the request", **kw)
    if status >= 500:
        return UnavailableError("the gateway failed; the request may have been processed", **kw)
    return ResponseDecodeError("unexpected HTTP status", maybe_processed=True, **kw)

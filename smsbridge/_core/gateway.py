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
from collections.abc import Callable, Mapping, Sequence
from typing import Any, Generic, Protocol, TypeVar

import msgspec

from .errors import (
    AuthenticationError,
    GatewayError,
    InsufficientBalanceError,
    RateLimitedError,
    RejectedError,
    ResponseDecodeError,
    SmsBridgeError,
    UnavailableError,
)
from .models import Status
from .phones import PhoneRules
from .transport import HttpRequest, HttpResponse

__all__ = [
    "BatchResult",
    "ChunkPacker",
    "Gateway",
    "Item",
    "Job",
    "Packer",
    "retry_after_seconds",
    "status_error",
]


class Item(msgspec.Struct, gc=False):
    """One recipient inside the core: input position, gateway-form number, text, parameters.

    For template gateways ``text`` is the template's identity and ``params`` its values.
    """

    index: int
    phone: str
    text: str
    params: tuple[str, ...] = ()


class BatchResult(msgspec.Struct):
    """The verdict on each recipient of a request, aligned with the request's items.

    ``details[i]`` is the gateway's message id for an accepted item and the reason for any
    other. ``stop`` is an account-wide error noticed alongside (the balance ran out mid-batch):
    the core stops the send after recording these verdicts.
    """

    statuses: list[Status]
    details: list[str | None]
    stop: SmsBridgeError | None = None


class Job(Protocol):
    """What the core needs to know of a send; each adapter defines its own richer job."""

    @property
    def sender(self) -> str:
        """The sender name (part of the duplicate-window key)."""
        ...


class Packer(Protocol):
    """Cuts a stream of items into request-sized batches, in order."""

    def add(self, item: Item) -> list[list[Item]] | None:
        """Take one item; return the batches it completed, if any."""
        ...

    def flush(self) -> list[list[Item]]:
        """Return every batch still open; called once, at the end of the input."""
        ...


class ChunkPacker:
    """Consecutive items, ``size`` at a time: the batching of most gateways."""

    def __init__(self, size: int) -> None:
        if size < 1:
            raise ValueError("batch size must be at least 1")
        self.size = size
        self._open: list[Item] = []

    def add(self, item: Item) -> list[list[Item]] | None:
        """Append; hand back the batch when it is full."""
        batch = self._open
        batch.append(item)
        if len(batch) >= self.size:
            self._open = []
            return [batch]
        return None

    def flush(self) -> list[list[Item]]:
        """The last, partial batch, if any."""
        batch, self._open = self._open, []
        return [batch] if batch else []


J = TypeVar("J", bound=Job, contravariant=True)


class Gateway(Protocol, Generic[J]):
    """A gateway adapter: pure translation between items and HTTP, no I/O.

    Attributes:
        name: short provider name used in errors and logs.
        phones: how this gateway wants its numbers.
        retry_safe: ``True`` when an ambiguous send may be repeated without sending twice
            (the gateway de-duplicates by an id the adapter puts in each request).
    """

    name: str
    phones: PhoneRules
    retry_safe: bool

    def packer(self, job: J) -> Packer:
        """A fresh packer for one send."""
        ...

    def check(self, job: J) -> Callable[[Item], str | None] | None:
        """A per-recipient pre-send check returning a rejection reason, or ``None`` for none."""
        ...

    def build_send(self, items: Sequence[Item], job: J) -> HttpRequest:
        """The request that sends ``items``."""
        ...

    def parse_send(self, items: Sequence[Item], response: HttpResponse, job: J) -> BatchResult:
        """Verdicts for ``items`` from the answer, or raise a typed error for the request."""
        ...


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

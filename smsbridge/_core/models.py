"""Public result types: per-recipient outcomes, the send report, statuses and balances."""

from __future__ import annotations

import enum
from decimal import Decimal
from typing import Literal

import msgspec

from .errors import InvalidInputError, SmsBridgeError

__all__ = [
    "Balance",
    "BalancePackage",
    "Counts",
    "DeliveryState",
    "Keep",
    "MessageStatus",
    "Outcome",
    "Report",
    "SenderState",
    "SenderStatus",
    "Status",
]


class Status(enum.StrEnum):
    """How one recipient's send ended. Every recipient ends with exactly one of these."""

    ACCEPTED = "accepted"
    """The gateway took the message and gave it an id."""
    REJECTED = "rejected"
    """The gateway, or validation before it, said no; ``reason`` says why. Nothing was sent."""
    SUPPRESSED = "suppressed"
    """The same text went to the same number within the duplicate window; not sent again."""
    FAILED = "failed"
    """Never reached the gateway, or the gateway surely did not take it."""
    UNCERTAIN = "uncertain"
    """The request may have been processed (timeout after the body was written, 5xx...)."""


Keep = Literal["all", "problems", "none"]
"""Which outcomes a :class:`Report` keeps: every one, all but accepted and suppressed, or none
(counts only; stream outcomes with ``on_outcome`` instead, for flat memory)."""


def keeps(keep: Keep, status: Status) -> bool:
    """Whether a report kept as ``keep`` holds an outcome of ``status``."""
    return keep == "all" or (
        keep == "problems" and status is not Status.ACCEPTED and status is not Status.SUPPRESSED
    )


def checked_keep(keep: object) -> Keep:
    """``keep`` if it is one of :data:`Keep`'s values, else :class:`InvalidInputError`."""
    if keep not in ("all", "problems", "none"):
        raise InvalidInputError(f"keep= takes 'all', 'problems' or 'none', got {keep!r}")
    return keep


class Outcome(msgspec.Struct, frozen=True, kw_only=True, gc=False):
    """The final outcome of one recipient.

    Attributes:
        index: the recipient's 0-based position in the input.
        phone: the normalised number, or the input as given when it could not be parsed.
        status: how it ended.
        message_id: the gateway's id, for ``accepted`` outcomes.
        reason: why, for every other status.
        gateway: the gateway that decided it (``None`` when none did: a :class:`Router`
            found no route).
    """

    index: int
    phone: str
    status: Status
    message_id: str | None = None
    reason: str | None = None
    gateway: str | None = None


class Counts(msgspec.Struct, frozen=True, kw_only=True):
    """Outcome counts plus the number of HTTP requests made (retries included)."""

    accepted: int = 0
    rejected: int = 0
    suppressed: int = 0
    failed: int = 0
    uncertain: int = 0
    requests: int = 0

    @property
    def total(self) -> int:
        """Recipients that received an outcome."""
        return self.accepted + self.rejected + self.suppressed + self.failed + self.uncertain

    def counts(self) -> Counts:
        """The counts alone, as a struct that encodes to JSON."""
        return Counts(
            accepted=self.accepted,
            rejected=self.rejected,
            suppressed=self.suppressed,
            failed=self.failed,
            uncertain=self.uncertain,
            requests=self.requests,
        )


class Report(Counts, frozen=True, kw_only=True):
    """What a send did: counts for every outcome, and the outcomes the caller asked to keep.

    Attributes:
        accepted, rejected, suppressed, failed, uncertain: recipients per outcome.
        requests: HTTP requests made, retries included.
        elapsed: seconds from the first recipient read to the last outcome.
        outcomes: kept outcomes (see ``keep=``), in completion order.
        error: the account-wide error that stopped the send early (bad token, no balance);
            the recipients it left unsent are counted as ``failed``.
        stopped: ``True`` when the caller asked the send to stop before its input ended; the
            unread recipients have no outcome.
    """

    elapsed: float = 0.0
    outcomes: tuple[Outcome, ...] = ()
    error: SmsBridgeError | None = None
    stopped: bool = False

    @property
    def ok(self) -> bool:
        """``True`` when nobody is ``failed`` or ``uncertain`` and nothing stopped the send."""
        return not (self.failed or self.uncertain or self.error is not None or self.stopped)

    def message_ids(self) -> list[str]:
        """Gateway ids of the kept accepted outcomes, in completion order."""
        return [o.message_id for o in self.outcomes if o.message_id is not None]

    def by_status(self, status: Status) -> list[Outcome]:
        """The kept outcomes with this status."""
        return [o for o in self.outcomes if o.status is status]


class DeliveryState(enum.StrEnum):
    """Where a sent message is, one vocabulary for every gateway."""

    ENROUTE = "ENROUTE"
    """Sent on; not yet delivered."""
    DELIVRD = "DELIVRD"
    """Delivered to the handset."""
    EXPIRED = "EXPIRED"
    """Its lifetime ran out before delivery."""
    UNDELIV = "UNDELIV"
    """Cannot be delivered."""
    REJECTD = "REJECTD"
    """Rejected by the network (blacklist or other filters)."""
    UNCONFIRMED = "UNCONFIRMED"
    """Final: sent on, but the network never confirmed the delivery. It may well have
    arrived: never send it again (Webcom's ``partly_deliver``)."""
    UNKNOWN = "UNKNOWN"
    """The gateway gave a state this library does not know, or none; see ``raw``."""

    @property
    def final(self) -> bool:
        """A state the message never leaves (``ENROUTE`` and ``UNKNOWN`` are not)."""
        return self not in (DeliveryState.ENROUTE, DeliveryState.UNKNOWN)


class MessageStatus(msgspec.Struct, frozen=True, kw_only=True):
    """The delivery state of one message.

    Attributes:
        message_id: the gateway's id, as given to :meth:`status`.
        state: the state in the shared vocabulary.
        raw: the gateway's own word for it.
        error: the gateway's complaint when it could not report (an unknown id).
    """

    message_id: str
    state: DeliveryState
    raw: str = ""
    error: str | None = None


class BalancePackage(msgspec.Struct, frozen=True, kw_only=True):
    """Prepaid messages in one area (Webcom): ``count`` is ``None`` for unlimited."""

    channel: str
    area: str
    count: int | None


class Balance(msgspec.Struct, frozen=True, kw_only=True):
    """Money left on the account, and prepaid packages where the gateway has them."""

    money: Decimal
    currency: str
    packages: tuple[BalancePackage, ...] = ()


class SenderState(enum.StrEnum):
    """Moderation state of a sender name."""

    APPROVED = "approved"
    MODERATION = "moderation"
    OPERATOR_MODERATION = "operator_moderation"
    NEEDS_INFORMATION = "needs_information"
    REJECTED = "rejected"
    UNKNOWN = "unknown"


class SenderStatus(msgspec.Struct, frozen=True, kw_only=True):
    """A sender name and its moderation state (``raw`` is the gateway's wording)."""

    sender: str
    state: SenderState
    raw: str

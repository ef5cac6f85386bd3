"""What a client tells the program watching it: typed events, and the request log.

A client given ``on_event=`` calls it with each :data:`Event` as it happens; the logger
``smsbridge`` writes one DEBUG line per request try and one INFO line per send. Neither costs
anything when nothing listens (no hook, DEBUG off). Numbers in any text of an event or a log
line are masked (:func:`mask_numbers`); tokens and request bodies never appear in either.
"""

from __future__ import annotations

import itertools
import logging
import re
from collections.abc import Callable, Iterable
from urllib.parse import quote, quote_plus

import msgspec

from .errors import SmsBridgeError
from .models import Counts
from .phones import UNSEEN

__all__ = [
    "NOTICE",
    "Answered",
    "Event",
    "EventHook",
    "OutcomeBatch",
    "RequestSent",
    "RetryScheduled",
    "SendFinished",
    "SendStarted",
    "Telemetry",
    "mask_numbers",
    "mask_phone",
]

log = logging.getLogger("smsbridge")

NOTICE = {"notice": True}
"""``extra=`` of a log record a person watching should see even when the log is quiet: a
pause they would otherwise take for a hang (Redis out of reach, a dead run's hold lapsing).
The command shows these without ``-v``."""


class SendStarted(msgspec.Struct, frozen=True, kw_only=True):
    """A send began. ``send`` numbers it within the process; its requests carry it."""

    gateway: str
    send: int


class RequestSent(msgspec.Struct, frozen=True, kw_only=True):
    """A request try is being written.

    Attributes:
        path: the gateway's path (``/sms/send``...).
        recipients: how many recipients it carries (0 for a status or balance call).
        attempt: 1 for the first try.
        waited: seconds from asking for a rate slot (and a free connection) to writing.
        send: the send it belongs to, or ``None`` for a plain call.
    """

    gateway: str
    path: str
    recipients: int
    attempt: int
    waited: float
    send: int | None = None


class Answered(msgspec.Struct, frozen=True, kw_only=True):
    """A request try ended: an HTTP status, or an error without one.

    Attributes:
        status: the HTTP status, ``None`` when no answer came (a reset, a timeout).
        error: the error's type and masked text, ``None`` when the answer was read as
            success.
        seconds: from writing the request to the end of its answer.
    """

    gateway: str
    path: str
    recipients: int
    attempt: int
    status: int | None
    error: str | None
    seconds: float
    send: int | None = None


class RetryScheduled(msgspec.Struct, frozen=True, kw_only=True):
    """The request will be tried again after ``delay`` seconds, for ``reason``."""

    gateway: str
    path: str
    attempt: int
    delay: float
    reason: str
    send: int | None = None


class OutcomeBatch(msgspec.Struct, frozen=True, kw_only=True):
    """Recipients of a send reached their outcomes: how many of each."""

    gateway: str
    send: int
    counts: Counts


class SendFinished(msgspec.Struct, frozen=True, kw_only=True):
    """A send ended (also when stopped, or stopped by the account's error).

    Attributes:
        counts: every outcome, and the requests made.
        seconds: how long it took.
        error: the account-wide error that stopped it, masked, or ``None``.
        stopped: the caller stopped it.
        dry_run: a plan, nothing sent.
    """

    gateway: str
    send: int
    counts: Counts
    seconds: float
    error: str | None = None
    stopped: bool = False
    dry_run: bool = False


Event = SendStarted | RequestSent | Answered | RetryScheduled | OutcomeBatch | SendFinished
"""Everything a client reports."""

EventHook = Callable[[Event], None]
"""Called with each event, on the client's event loop; it must not block. An exception it
raises is logged and otherwise ignored: watching a send never changes it."""

# groups of digits with up to six separators between them, of every kind a number is written
# with: spaces of every width and the invisible marks a paste brings (as the phone reader
# reads them), dashes, brackets, dots, slashes, a plus, and the same as an error's repr or a
# URL writes them (\xa0, \u200b, \t, %20); numbers side by side are masked as one
_DIGITS = re.compile(
    rf"\+?\d+(?:(?:[\s\-().\/_+{UNSEEN}\u2010-\u2015\u2212]"
    r"|\\x[0-9a-fA-F]{2}|\\u[0-9a-fA-F]{4}|\\[tnr]|%[0-9a-fA-F]{2}){1,6}\d+)*"
)
_sends = itertools.count(1)


def mask_phone(phone: str) -> str:
    """``380501234567`` → ``380*******67``: the country's first digits and the last two."""
    digits = [c for c in phone if c.isdigit()]
    if len(digits) < 7:
        return "*" * len(digits)
    return "".join(digits[:3]) + "*" * (len(digits) - 5) + "".join(digits[-2:])


def mask_numbers(text: str) -> str:
    """``text`` with every run of 9 or more digits that could be a phone number masked."""
    return _DIGITS.sub(lambda m: _masked_run(m.group()), text)


def _masked_run(run: str) -> str:
    digits = sum(c.isdigit() for c in run)
    return mask_phone(run) if digits >= 9 else run


def _error_text(error: BaseException) -> str:
    return f"{type(error).__name__}: {mask_numbers(str(error))}"


class Telemetry:
    """One client's listeners: its event hook and the ``smsbridge`` logger, and what they
    must never hear (its credentials). Built by the client; the core calls it at each step
    and it decides whether anyone listens."""

    __slots__ = ("gateway", "hook", "secrets")

    def __init__(
        self, gateway: str, hook: EventHook | None = None, secrets: Iterable[str] = ()
    ) -> None:
        self.gateway = gateway
        self.hook = hook
        # as given, and as a URL or a form would carry them
        self.secrets = tuple(
            {v for s in secrets if len(s) >= 4 for v in (s, quote(s, safe=""), quote_plus(s))}
        )

    def scrub(self, error: SmsBridgeError) -> SmsBridgeError:
        """``error`` with any credential a gateway echoed in its text blanked out."""
        if self.secrets:
            error.redact(self.secrets)
        return error

    @property
    def listening(self) -> bool:
        """Whether an event or a DEBUG line would go anywhere (times are taken only then)."""
        return self.hook is not None or log.isEnabledFor(logging.DEBUG)

    def new_send(self) -> int:
        """Number a send and tell it."""
        send = next(_sends)
        if self.hook is not None:
            self._tell(SendStarted(gateway=self.gateway, send=send))
        return send

    def sent(
        self, path: str, recipients: int, attempt: int, waited: float, send: int | None
    ) -> None:
        """A try is being written."""
        if self.hook is not None:
            self._tell(
                RequestSent(
                    gateway=self.gateway,
                    path=path,
                    recipients=recipients,
                    attempt=attempt,
                    waited=waited,
                    send=send,
                )
            )

    def answered(
        self,
        path: str,
        recipients: int,
        attempt: int,
        *,
        status: int | None,
        error: BaseException | None,
        seconds: float,
        waited: float,
        send: int | None,
    ) -> None:
        """A try ended."""
        text = None if error is None else _error_text(error)
        if log.isEnabledFor(logging.DEBUG):
            log.debug(
                "%s %s: %s in %.1f ms (%d recipients, try %d, %.3f s waiting for a slot)%s",
                self.gateway,
                path,
                status if status is not None else "no answer",
                seconds * 1000,
                recipients,
                attempt,
                waited,
                f": {text}" if text else "",
            )
        if self.hook is not None:
            self._tell(
                Answered(
                    gateway=self.gateway,
                    path=path,
                    recipients=recipients,
                    attempt=attempt,
                    status=status,
                    error=text,
                    seconds=seconds,
                    send=send,
                )
            )

    def retry(
        self, path: str, attempt: int, delay: float, error: BaseException, send: int | None
    ) -> None:
        """A try failed and another follows after ``delay``."""
        reason = mask_numbers(str(error))
        log.warning("%s: trying again in %.2fs (try %d): %s", self.gateway, delay, attempt, reason)
        if self.hook is not None:
            self._tell(
                RetryScheduled(
                    gateway=self.gateway,
                    path=path,
                    attempt=attempt,
                    delay=delay,
                    reason=reason,
                    send=send,
                )
            )

    def outcomes(self, send: int, counts: Counts) -> None:
        """A batch's outcomes (only for a hook: counting them is the hook's business)."""
        if self.hook is not None:
            self._tell(OutcomeBatch(gateway=self.gateway, send=send, counts=counts))

    def finished(
        self,
        send: int,
        counts: Counts,
        seconds: float,
        *,
        error: BaseException | None,
        stopped: bool,
        dry_run: bool,
    ) -> None:
        """A send ended: one INFO line, and the event."""
        text = None if error is None else _error_text(error)
        if log.isEnabledFor(logging.INFO):
            log.info(
                "%s: %s%d recipients in %.1f s, %d requests: %d accepted, %d rejected, "
                "%d suppressed, %d failed, %d uncertain%s%s",
                self.gateway,
                "dry run, " if dry_run else "",
                counts.total,
                seconds,
                counts.requests,
                counts.accepted,
                counts.rejected,
                counts.suppressed,
                counts.failed,
                counts.uncertain,
                "; stopped" if stopped else "",
                f"; {text}" if text else "",
            )
        if self.hook is not None:
            self._tell(
                SendFinished(
                    gateway=self.gateway,
                    send=send,
                    counts=counts,
                    seconds=seconds,
                    error=text,
                    stopped=stopped,
                    dry_run=dry_run,
                )
            )

    def _tell(self, event: Event) -> None:
        hook = self.hook
        assert hook is not None
        try:
            hook(event)
        except Exception:
            log.exception("%s: the event hook failed on %s", self.gateway, type(event).__name__)

"""The one error tree of smsbridge.

Every exception the library raises on purpose derives from :class:`SmsBridgeError`; the
network's (``OSError``, ``ssl``) and msgspec's are wrapped, the original kept as
``__cause__``::

    SmsBridgeError
    ├── ConfigurationError          a setting is missing or unsafe (no token, plain-HTTP URL, ...)
    ├── InvalidInputError           an argument can never be sent (empty text, bad sender, ...)
    ├── StateBackendError           the shared limiter / duplicate-window store is unreachable
    ├── SendInProgressError         another run of this keyed send is still going
    ├── TransportError              the request did not complete at the HTTP level
    │   ├── ConnectError            no connection: the request was surely not sent
    │   ├── TransportTimeoutError   no answer in time: the gateway may have processed it
    │   └── ConnectionLostError     the connection broke mid-exchange: may have been processed
    ├── GatewayError                the gateway answered, and the answer is a failure
    │   ├── AuthenticationError     bad or revoked credentials (account-wide)
    │   ├── InsufficientBalanceError  the account cannot pay (account-wide)
    │   ├── RateLimitedError        too many requests; carries ``retry_after``
    │   ├── RejectedError           the gateway refused the request (bad sender, bad field...)
    │   │   └── DuplicateMessageError  same text to the same number too recently
    │   └── UnavailableError        5xx: the gateway is failing and may have processed it
    └── ResponseDecodeError         the answer could not be understood (HTML page, bad JSON)

Every transport and gateway error says whether the gateway may have processed the request
(``maybe_processed``), and whether the condition affects the whole account so a send must stop
(``account_wide``). Errors carry the provider, HTTP status, the gateway's code and message;
never a token, password or request body.
"""

from __future__ import annotations

from collections.abc import Iterable

__all__ = [
    "AuthenticationError",
    "ConfigurationError",
    "ConnectError",
    "ConnectionLostError",
    "DuplicateMessageError",
    "GatewayError",
    "InsufficientBalanceError",
    "InvalidInputError",
    "RateLimitedError",
    "RejectedError",
    "ResponseDecodeError",
    "SendInProgressError",
    "SmsBridgeError",
    "StateBackendError",
    "TransportError",
    "TransportTimeoutError",
    "UnavailableError",
]


class SmsBridgeError(Exception):
    """Root of every error smsbridge raises.

    Attributes:
        provider: the gateway's short name (``"smsclub"``...), or ``None`` outside a gateway call.
        status: the HTTP status of the answer, when there was one.
        code: the gateway's own error code or field name, when it gave one.
        gateway_message: the gateway's own text, verbatim, when it gave one.
        maybe_processed: ``True`` when the gateway may have acted on the request although
            the call failed (a timeout after the body was written, a 5xx, an unreadable 200).
        account_wide: ``True`` when every further request on the account would fail the
            same way (bad token, empty balance), so a send stops instead of retrying.
    """

    maybe_processed: bool = False
    account_wide: bool = False

    def __init__(
        self,
        message: str,
        *,
        provider: str | None = None,
        status: int | None = None,
        code: str | None = None,
        gateway_message: str | None = None,
        maybe_processed: bool | None = None,
        account_wide: bool | None = None,
    ) -> None:
        super().__init__(message)
        self.message = message
        self.provider = provider
        self.status = status
        self.code = code
        self.gateway_message = gateway_message
        if maybe_processed is not None:
            self.maybe_processed = maybe_processed
        if account_wide is not None:
            self.account_wide = account_wide

    def __str__(self) -> str:
        parts = [self.message]
        if self.provider:
            parts.append(f"provider={self.provider}")
        if self.status is not None:
            parts.append(f"http={self.status}")
        if self.code is not None:
            parts.append(f"code={self.code}")
        if self.gateway_message and self.gateway_message not in self.message:
            parts.append(f"gateway said: {self.gateway_message!r}")
        return " | ".join(parts)

    def __repr__(self) -> str:
        return f"{type(self).__name__}({str(self)!r})"

    def redact(self, secrets: Iterable[str]) -> None:
        """Blank out ``secrets`` (credentials a gateway echoed back) in the texts."""
        for secret in secrets:
            if secret in self.message:
                self.message = self.message.replace(secret, "***")
                self.args = (self.message,)
            if self.gateway_message and secret in self.gateway_message:
                self.gateway_message = self.gateway_message.replace(secret, "***")


class ConfigurationError(SmsBridgeError):
    """A setting is missing, malformed or unsafe; nothing was sent."""


class InvalidInputError(SmsBridgeError, ValueError):
    """An argument can never be sent (empty text, malformed sender, bad option value)."""


class StateBackendError(SmsBridgeError):
    """The shared state store (Redis) failed; sending stops rather than run unlimited."""

    account_wide = True


class SendInProgressError(SmsBridgeError):
    """Another run of this send (the same idempotency key, on the same gateway account) is
    still going, in this process or in another sharing the account's state. Nothing of this
    run was read or sent; run it again once the other has ended. (A run that died leaves its
    hold to lapse within seconds; a new run waits that long before it gives up.)"""


class TransportError(SmsBridgeError):
    """The HTTP exchange did not complete."""


class ConnectError(TransportError):
    """No connection could be made; the request was surely not sent, so a retry is safe."""

    maybe_processed = False


class TransportTimeoutError(TransportError):
    """No complete answer in time after the request was written: it may have been processed."""

    maybe_processed = True


class ConnectionLostError(TransportError):
    """The connection broke after the request was written: it may have been processed."""

    maybe_processed = True


class GatewayError(SmsBridgeError):
    """The gateway answered, and the answer is a failure."""


class AuthenticationError(GatewayError):
    """The gateway does not accept the credentials; every request on the account will fail."""

    account_wide = True


class InsufficientBalanceError(GatewayError):
    """The account's balance cannot pay for the messages; every further send will fail."""

    account_wide = True


class RateLimitedError(GatewayError):
    """The gateway refused the request for exceeding its rate; it processed nothing.

    Attributes:
        retry_after: seconds the gateway asked to wait, when it said.
    """

    def __init__(
        self,
        message: str,
        *,
        retry_after: float | None = None,
        provider: str | None = None,
        status: int | None = None,
        code: str | None = None,
        gateway_message: str | None = None,
    ) -> None:
        super().__init__(
            message, provider=provider, status=status, code=code, gateway_message=gateway_message
        )
        self.retry_after = retry_after


class RejectedError(GatewayError):
    """The gateway refused the request (or one field of it) and sent nothing.

    Attributes:
        splittable: the refusal names a problem of one recipient that the gateway did not
            say which; sending the request in halves isolates it.
    """

    def __init__(
        self,
        message: str,
        *,
        splittable: bool = False,
        provider: str | None = None,
        status: int | None = None,
        code: str | None = None,
        gateway_message: str | None = None,
    ) -> None:
        super().__init__(
            message, provider=provider, status=status, code=code, gateway_message=gateway_message
        )
        self.splittable = splittable


class DuplicateMessageError(RejectedError):
    """The gateway refused a repeat of the same text to the same number within its window."""


class UnavailableError(GatewayError):
    """The gateway failed (5xx); it may or may not have processed the request."""

    maybe_processed = True


class ResponseDecodeError(SmsBridgeError):
    """The gateway's answer could not be understood (an HTML page, truncated or mistyped JSON).

    ``maybe_processed`` is ``True`` when the status said success: the gateway may have sent.
    """

"""smsbridge: async bulk SMS through SMS Club, SMSPlus and Webcom Mobi.

One core for every gateway: recipients streamed from any iterable, numbers normalised and
checked before any request, gateway-sized batches, a per-account limiter that never lets a
sliding second hold more requests than the gateway allows, a duplicate window, retries only
where they cannot send twice, and exactly one :class:`Outcome` per recipient.
"""

from ._core.client import (
    ClientOptions,
    InsecureTransportWarning,
    SendOptions,
    SharedState,
    StateFactory,
)
from ._core.clock import Clock, SystemClock
from ._core.engine import BatchObserver, OutcomeCallback
from ._core.errors import (
    AuthenticationError,
    ConfigurationError,
    ConnectError,
    ConnectionLostError,
    DuplicateMessageError,
    GatewayError,
    InsufficientBalanceError,
    InvalidInputError,
    RateLimitedError,
    RejectedError,
    ResponseDecodeError,
    SendInProgressError,
    SmsBridgeError,
    StateBackendError,
    TransportError,
    TransportTimeoutError,
    UnavailableError,
)
from ._core.events import (
    Answered,
    Event,
    EventHook,
    OutcomeBatch,
    RequestSent,
    RetryScheduled,
    SendFinished,
    SendStarted,
    mask_phone,
)
from ._core.gateway import Batch, Message
from ._core.limiter import RateLimiter, SlidingWindowLimiter, Slot
from ._core.models import (
    Balance,
    BalancePackage,
    Counts,
    DeliveryState,
    Keep,
    MessageStatus,
    Outcome,
    Report,
    SenderState,
    SenderStatus,
    Status,
)
from ._core.phones import PhoneRules
from ._core.retry import RetryPolicy
from ._core.segments import Segments, sms_segments
from ._core.tracking import DeliveryTracker
from ._core.transport import HttpRequest, HttpResponse, MockTransport, Timeouts, Transport
from ._core.window import Claim, DuplicateWindow, MemoryWindow
from ._reports import report_handler
from ._router import RoutedReport, Router
from ._smsclub.client import SenderRegistration, SmsClub
from ._smsplus.adapter import Template
from ._smsplus.client import SmsPlus
from ._webcom.client import Webcom
from ._webcom.reports import DeliveryReport, acknowledge, parse_delivery_reports

__version__ = "0.1.0"

__all__ = [
    "Answered",
    "AuthenticationError",
    "Balance",
    "BalancePackage",
    "Batch",
    "BatchObserver",
    "Claim",
    "ClientOptions",
    "Clock",
    "ConfigurationError",
    "ConnectError",
    "ConnectionLostError",
    "Counts",
    "DeliveryReport",
    "DeliveryState",
    "DeliveryTracker",
    "DuplicateMessageError",
    "DuplicateWindow",
    "Event",
    "EventHook",
    "GatewayError",
    "HttpRequest",
    "HttpResponse",
    "InsecureTransportWarning",
    "InsufficientBalanceError",
    "InvalidInputError",
    "Keep",
    "MemoryWindow",
    "Message",
    "MessageStatus",
    "MockTransport",
    "Outcome",
    "OutcomeBatch",
    "OutcomeCallback",
    "PhoneRules",
    "RateLimitedError",
    "RateLimiter",
    "RejectedError",
    "Report",
    "RequestSent",
    "ResponseDecodeError",
    "RetryPolicy",
    "RetryScheduled",
    "RoutedReport",
    "Router",
    "Segments",
    "SendFinished",
    "SendInProgressError",
    "SendOptions",
    "SendStarted",
    "SenderRegistration",
    "SenderState",
    "SenderStatus",
    "SharedState",
    "SlidingWindowLimiter",
    "Slot",
    "SmsBridgeError",
    "SmsClub",
    "SmsPlus",
    "StateBackendError",
    "StateFactory",
    "Status",
    "SystemClock",
    "Template",
    "Timeouts",
    "Transport",
    "TransportError",
    "TransportTimeoutError",
    "UnavailableError",
    "Webcom",
    "__version__",
    "acknowledge",
    "mask_phone",
    "parse_delivery_reports",
    "report_handler",
    "sms_segments",
]

"""What every gateway client shares: credentials and settings read by its gateway's
declaration, its lifecycle, the send engine, the dry run and plain calls.

The shared state (limiter and duplicate window) is handed in: in-memory by default, or made
by a :class:`StateFactory` (``smsbridge.redis`` makes the Redis one). The core imports no
backend.
"""

from __future__ import annotations

import hashlib
import inspect
import logging
import math
import numbers
import os
import ssl
import warnings
from collections.abc import AsyncIterable, Awaitable, Callable, Iterable, Mapping, Sequence
from types import TracebackType
from typing import Any, ClassVar, Generic, Protocol, Self, TypedDict, TypeVar, Unpack

import anyio
from yarl import URL

from .clock import Clock, SystemClock
from .engine import BatchObserver, OutcomeCallback, SendEngine, accepts, intake
from .errors import ConfigurationError, InvalidInputError, SmsBridgeError
from .events import EventHook, Telemetry
from .exchange import Attempts, Throttle, last_repeat
from .gateway import Batch, Gateway, GatewaySpec, Job, Message, checked_message
from .http1 import Http1Transport
from .limiter import DEFAULT_MARGIN, RateLimiter, SlidingWindowLimiter, Slot
from .models import Keep, Report, checked_keep
from .ranges import IdRanges, MemoryRanges, memory_ranges
from .recipients import Unpacker, recipients
from .retry import RetryPolicy
from .tracking import DeliveryTracker
from .transport import (
    HttpRequest,
    HttpResponse,
    Timeouts,
    Transport,
    check_base_url,
)
from .window import DuplicateWindow, MemoryWindow

__all__ = [
    "Client",
    "ClientOptions",
    "InsecureTransportWarning",
    "SendOptions",
    "SharedState",
    "StateFactory",
    "checked_options",
    "holder_for",
]

log = logging.getLogger("smsbridge")

J = TypeVar("J", bound=Job)
T = TypeVar("T")


class ClientOptions(TypedDict, total=False):
    """Settings every client takes as keyword arguments.

    Attributes:
        base_url: the gateway's address; default from ``SMSBRIDGE_<GATEWAY>_URL``, then the
            gateway's documented one.
        https: use the platform's HTTPS address where the documented one is plain HTTP and
            another is known (Webcom: ``https://my3.webcom.mobi``); not with ``base_url``.
        rate: request starts allowed per ``rate_period`` on this account (default 9).
        rate_period: the gateway's counting window in seconds (default 1.0).
        rate_margin: safety margin added to the window against network jitter (0.03 s
            in one process; 0.05 s through Redis, where a start takes one more hop).
        limiter: a shared limiter instead (one per account: share it between clients of the
            same account in one process, or use the Redis one across processes).
        window: a shared duplicate window instead of a private in-memory one.
        window_ttl: seconds the same text to the same number is blocked (120; 0 disables).
        concurrency: requests in flight at most, across all sends of the client (10).
        timeouts: network time limits.
        retry: retry policy for requests the gateway surely did not process.
        at_least_once: also resend requests that may have been processed (a 5xx, a timeout
            after sending). Recipients can then get a message twice; off by default.
        repeat_guard: where the gateway refuses the same text to the same number for a while
            (SMS Club: 453 within 2 minutes), repeat a request that may have been processed
            within that time, less 20 s and the read timeout (a repeat held up on the way
            must still reach the gateway within it), and read a refusal of the repeat as
            "the first one went" (``accepted``, without an id). On by default, while the
            duplicate window is on (it keeps other recipients from sending the same text to
            the number); ``False`` leaves such recipients ``uncertain``.
        allow_insecure_http: permit a plain ``http://`` base URL off loopback.
        ssl_context: custom TLS settings (a private CA); verification stays on.
        transport: a transport instead of the built-in HTTP/1.1 one (tests: ``MockTransport``).
        clock: time source (tests: a fake clock, so nothing sleeps).
        account: a name for the account in logs and shared-state keys, instead of a digest
            of the credentials (which, short and the same for every install, could be tried
            against guessed passwords: it is never shown, and is best kept as private as
            they are).
        redis_url: share the limiter and duplicate window through Redis, for many processes
            on one account (default ``SMSBRIDGE_REDIS_URL``; needs ``smsbridge[redis]``).
        redis_outage: seconds a send waits for an unreachable Redis before it stops (30).
        state: share the limiter and window through a backend of your own (a
            :class:`StateFactory`); ``redis_url`` is the built-in one.
        on_event: called with each :data:`~smsbridge.Event` (a request written, answered,
            retried; outcomes; a send started and finished); ``smsbridge.otel`` has one
            for OpenTelemetry.
    """

    base_url: str | None
    https: bool
    rate: int
    rate_period: float
    rate_margin: float
    limiter: RateLimiter
    window: DuplicateWindow
    window_ttl: float
    concurrency: int
    timeouts: Timeouts
    retry: RetryPolicy
    at_least_once: bool
    repeat_guard: bool
    allow_insecure_http: bool
    ssl_context: ssl.SSLContext
    transport: Transport
    clock: Clock
    account: str
    redis_url: str | None
    redis_outage: float
    state: StateFactory
    on_event: EventHook


class SharedState(Protocol):
    """A limiter and a duplicate window kept beyond one client (Redis: across processes).

    A state may also have ``ranges``, an :class:`~smsbridge._core.ranges.IdRanges` for the
    gateways that take an id per message; without it they are this process's."""

    @property
    def limiter(self) -> RateLimiter:
        """The account's limiter."""
        ...

    @property
    def window(self) -> DuplicateWindow | None:
        """The account's duplicate window, if it has one."""
        ...

    async def aclose(self) -> None:
        """Release its connections."""
        ...


class StateFactory(Protocol):
    """Makes the shared state of one account (see :func:`smsbridge.redis.redis_state`)."""

    def __call__(
        self,
        *,
        provider: str,
        account: str,
        secret: bytes,
        limit: int,
        period: float,
        margin: float,
        window_ttl: float,
        window_slack: float,
        clock: Clock,
    ) -> SharedState:
        """The state of the account ``account`` of ``provider``; ``secret`` keys its window
        entries, whose reservations outlast ``window_ttl`` by ``window_slack``."""
        ...


SLACK_MARGIN = 5.0
"""Seconds a duplicate-window reservation outlasts the TTL beyond the read timeout."""


GUARD_MARGIN = 20.0
"""Seconds of a gateway's duplicate guard not relied on (the first try's arrival, clocks)."""


class InsecureTransportWarning(UserWarning):
    """Credentials are about to travel over plain HTTP to a host off this machine."""


_warned_hosts: set[str] = set()


def _warn_plain_http(spec: GatewaySpec, host: str) -> None:
    if host in _warned_hosts:
        return
    _warned_hosts.add(host)
    if spec.https_url is not None:
        instead = (
            f"the platform also answers at {spec.https_url} (https=True, or "
            f"{spec.env_prefix}_URL={spec.https_url})"
        )
    else:
        instead = "use an https:// base URL where the gateway offers one"
    message = f"{spec.name}: credentials go over plain HTTP to {host}; {instead}"
    log.warning(message)
    warnings.warn(message, InsecureTransportWarning, stacklevel=3)


class SendOptions(TypedDict, total=False):
    """Options every send method takes as keyword arguments.

    Attributes:
        on_outcome: called with each recipient's :class:`Outcome` as it is decided; a plain
            function or a coroutine function. If it raises, the send stops reading its input
            and raises that exception once what was read has settled; the callback still
            receives every outcome.
        keep: which outcomes the report keeps: ``"all"`` (default), ``"problems"`` or
            ``"none"`` (flat memory; stream with ``on_outcome``).
        stop: an ``anyio.Event``; set it to stop reading the input. What was read still gets
            outcomes (``failed``, "not sent", for what had not gone out).
        observer: a :class:`BatchObserver` told of each batch before it is sent and of the
            outcomes after (the campaign journal is one).
        indexed: the input's entries are ``(index, entry)`` pairs and outcomes carry those
            indices instead of positions (to resume a campaign, skipping what is done). An
            index is a whole number of 0 or more, distinct within the send (Webcom derives
            its message ids from them); an entry with another index, an index read before
            in the send, or that is no pair, is ``rejected`` with the reason (index -1 where
            it has none to show).
        idempotency_key: a stable key for this send (the same message to the same list, in
            the same order): re-running it with the same key (after a crash) finds its own
            duplicate-window reservations instead of being blocked by them, and on Webcom
            reuses its ``client_id_sms`` values, position by position. One run of a key goes at
            a time per account: another waits for a dead run's hold to lapse (seconds), and
            meets :class:`~smsbridge.SendInProgressError` while a live one goes on. Random
            when omitted.
        maybe_sent: recipients (by index) that an earlier run of this send may have sent, each
            with when its request was first written (on this client's clock) where the
            repeat rests on the gateway's duplicate guard, else ``None``: if
            this send cannot send them, they end ``uncertain``, not ``failed``.
        earlier: ``(entry, sent)`` pairs (the entry shaped as the input) of what an earlier
            run of this send settled within the duplicate window: the messages it sent are
            held in the window before the input is read, as a window that died with that run
            held them, and reservations it left for the others are dropped.
    """

    on_outcome: OutcomeCallback | None
    keep: Keep
    stop: anyio.Event | None
    observer: BatchObserver | None
    indexed: bool
    idempotency_key: str | bytes | None
    maybe_sent: Mapping[int, float | None]
    earlier: Iterable[tuple[Any, bool]]


_SEND_OPTIONS = frozenset(SendOptions.__annotations__)


def checked_options(options: Mapping[str, object]) -> None:
    """:class:`InvalidInputError` for a send option that is unknown (a misspelt one would
    otherwise be ignored) or of the wrong kind."""
    unknown = sorted(set(options) - _SEND_OPTIONS)
    if unknown:
        raise InvalidInputError(
            f"unknown send option {', '.join(unknown)}; the options are "
            f"{', '.join(sorted(_SEND_OPTIONS))}"
        )
    stop = options.get("stop")
    if stop is not None and not (
        callable(getattr(stop, "is_set", None))
        and inspect.iscoroutinefunction(getattr(stop, "wait", None))
    ):  # a threading.Event's wait() would block the loop
        raise InvalidInputError(f"stop= takes an anyio.Event, got {type(stop).__name__}")
    callback = options.get("on_outcome")
    if callback is not None and not callable(callback):
        raise InvalidInputError(f"on_outcome= takes a function, got {type(callback).__name__}")
    key = options.get("idempotency_key")
    if key is not None and not isinstance(key, str | bytes):
        raise InvalidInputError(f"idempotency_key= takes str or bytes, got {type(key).__name__}")
    observer = options.get("observer")
    if observer is not None and not all(
        callable(getattr(observer, name, None)) for name in ("before", "unsent", "after")
    ):
        kind = type(observer).__name__
        raise InvalidInputError(f"observer= takes a BatchObserver (before, unsent, after): {kind}")
    if not isinstance(options.get("indexed", False), bool):
        raise InvalidInputError("indexed= takes True or False")
    maybe = options.get("maybe_sent")
    if maybe is not None and not isinstance(maybe, Mapping):
        raise InvalidInputError(f"maybe_sent= takes a mapping, got {type(maybe).__name__}")
    if maybe and not all(
        type(index) is int
        and index >= 0
        and (
            at is None
            or (type(at) is float and math.isfinite(at))
            or (type(at) is int and abs(at) < 2**53)
        )
        for index, at in maybe.items()
    ):
        raise InvalidInputError(
            "maybe_sent= maps indices (whole numbers from 0) to when their request was "
            "first written (seconds on the client's clock) or None"
        )
    earlier = options.get("earlier")
    if earlier is not None and (
        not isinstance(earlier, Iterable) or isinstance(earlier, str | bytes | Mapping)
    ):
        raise InvalidInputError(f"earlier= takes (entry, sent) pairs, got {type(earlier).__name__}")


def env_or(value: str | None, name: str) -> str | None:
    """``value`` if given, else the environment variable ``name`` (empty counts as unset)."""
    if value is not None:
        return value
    return os.environ.get(name) or None


def credential(value: str | None, name: str, what: str) -> str | None:
    """A credential from ``value`` or the environment variable ``name``, refused (without
    showing it) when it holds a line break or another control character: it would corrupt
    the request it travels in."""
    found = env_or(value, name)
    if found is not None:
        if not isinstance(found, str):
            raise ConfigurationError(f"{what} must be a string")
        if not found.isprintable() or found != found.strip():
            raise ConfigurationError(
                f"{what} contains a line break, a control character or surrounding spaces "
                f"(from {'the argument' if value is not None else name}); check how it was set"
            )
    return found


def _number(value: object) -> bool:
    if isinstance(value, bool) or not isinstance(value, numbers.Real):
        return False
    try:
        float(value)  # 10**400 is a number, and no time limit or period
    except OverflowError:
        return False
    return True


def _whole(value: object) -> bool:
    return isinstance(value, numbers.Integral) and not isinstance(value, bool)


def _kind(cls: type | tuple[type, ...]) -> Callable[[object], bool]:
    return lambda value: isinstance(value, cls)


def _with(*methods: str) -> Callable[[object], bool]:
    return lambda value: all(callable(getattr(value, m, None)) for m in methods)


_SECONDS = "a number of seconds (a float can hold)"

# what each option must be (None, where it means "the default", is checked by the option's
# own code): a wrong kind fails here, by name, not somewhere deep in the first send
_OPTION_KINDS: dict[str, tuple[Callable[[object], bool], str]] = {
    "base_url": (_kind((str, URL)), "a URL (a str)"),
    "https": (_kind(bool), "True or False"),
    "rate": (_whole, "a whole number"),
    "rate_period": (_number, _SECONDS),
    "rate_margin": (_number, _SECONDS),
    "limiter": (_with("acquire", "defer"), "a RateLimiter"),
    "window": (_with("keys", "reserve", "commit", "release"), "a DuplicateWindow"),
    "window_ttl": (_number, _SECONDS),
    "concurrency": (_whole, "a whole number"),
    "timeouts": (_kind(Timeouts), "a Timeouts"),
    "retry": (_kind(RetryPolicy), "a RetryPolicy"),
    "at_least_once": (_kind(bool), "True or False"),
    "repeat_guard": (_kind(bool), "True or False"),
    "allow_insecure_http": (_kind(bool), "True or False"),
    "ssl_context": (_kind(ssl.SSLContext), "an ssl.SSLContext"),
    "transport": (_with("send", "aclose"), "a Transport"),
    "clock": (_with("now", "sleep"), "a Clock"),
    "account": (_kind(str), "a str"),
    "redis_url": (_kind(str), "a Redis URL (str)"),
    "redis_outage": (_number, _SECONDS),
    "state": (callable, "a StateFactory"),
    "on_event": (callable, "callable"),
}


def check_options(title: str, options: Mapping[str, object]) -> None:
    """Raise :class:`ConfigurationError` for an option no client takes (a misspelt name),
    or one that is not the kind it must be (the message names the option and the kind
    given, never the value)."""
    unknown = set(options) - ClientOptions.__optional_keys__ - ClientOptions.__required_keys__
    if unknown:
        raise ConfigurationError(
            f"{title} takes no {', '.join(sorted(unknown))} (see ClientOptions)"
        )
    for name, value in options.items():
        fits, what = _OPTION_KINDS[name]
        if value is not None and not fits(value):
            raise ConfigurationError(f"{title}: {name} must be {what}, not {type(value).__name__}")


def _check_factory(factory: Callable[..., object], given: Mapping[str, object]) -> None:
    """Raise :class:`ConfigurationError` where ``state=`` cannot take what a client gives
    it (see :class:`StateFactory`), naming the mismatch, not its own ``TypeError``."""
    try:
        signature = inspect.signature(factory)
    except (TypeError, ValueError):
        return  # cannot be read: it is called as it is
    try:
        signature.bind(**given)
    except TypeError as e:
        raise ConfigurationError(
            f"state= must take the keywords {', '.join(sorted(given))}: {e}"
        ) from None


class Client(Generic[J]):
    """Base of the gateway clients: use ``async with`` to open and close its one session.

    A subclass declares its gateway (:attr:`spec`), builds its adapter from the resolved
    credentials (:meth:`_adapter`) and turns a :class:`Message` into its adapter's job
    (:meth:`_prepare`); everything else is here.
    """

    spec: ClassVar[GatewaySpec]

    def __init__(self, credentials: dict[str, str | None], options: ClientOptions) -> None:
        spec = self.spec
        check_options(spec.title, options)
        resolved = _credentials(spec, credentials)
        self._gateway = self._adapter(resolved)
        if options.get("https"):
            if spec.https_url is None:
                raise ConfigurationError(f"{spec.title} has no HTTPS address known besides its own")
            if options.get("base_url"):
                raise ConfigurationError("give https=True or base_url, not both")
            url = spec.https_url
        else:
            url = env_or(options.get("base_url"), f"{spec.env_prefix}_URL") or spec.default_url
        allow_http = options.get("allow_insecure_http", False) or (
            spec.plain_http_default and url == spec.default_url
        )
        self.base_url, self._insecure = check_base_url(url, allow_insecure_http=allow_http)
        identity = "\x00".join(resolved.values())
        secret = hashlib.sha256(f"smsbridge\x00{spec.name}\x00{identity}".encode()).digest()
        self._named = bool(options.get("account"))
        self.account = options.get("account") or f"{spec.name}-{secret[:6].hex()}"
        self._clock: Clock = options.get("clock") or SystemClock()
        self._telemetry = Telemetry(spec.name, options.get("on_event"), resolved.values())
        self.concurrency = options.get("concurrency", 10)
        if not isinstance(self.concurrency, int) or self.concurrency < 1:
            raise ConfigurationError("concurrency must be a positive integer")
        factory = options.get("state")
        rate = options.get("rate", 9)
        period = options.get("rate_period", 1.0)
        margin = options.get("rate_margin", 0.05 if factory else DEFAULT_MARGIN)
        ttl = options.get("window_ttl", 120.0)
        self._timeouts = options.get("timeouts") or Timeouts()
        slack = self._slack()
        self._shared: SharedState | None = None
        if factory is not None:
            # a factory written before the slack was given keeps its own (checked below)
            made = {"window_slack": slack} if accepts(factory, "window_slack", unknown=True) else {}
            given: dict[str, Any] = {
                "provider": spec.name,
                "account": options.get("account") or secret[:8].hex(),
                "secret": hashlib.sha256(b"window\x00" + secret).digest(),
                "limit": rate,
                "period": period,
                "margin": margin,
                "window_ttl": ttl,
                "clock": self._clock,
                **made,
            }
            _check_factory(factory, given)
            self._shared = factory(**given)
        limiter = options.get("limiter") or (
            self._shared.limiter
            if self._shared is not None
            else SlidingWindowLimiter(rate, period, margin=margin, clock=self._clock)
        )
        self._throttle = Throttle(limiter, self.concurrency)
        window = options.get("window")
        if window is None and self._shared is not None:
            window = self._shared.window
        elif window is None and ttl:
            window = MemoryWindow(ttl, slack=slack, clock=self._clock)
        if window is not None:
            self._check_window(window)
        self._window = window
        shared_ranges = getattr(self._shared, "ranges", None)
        self.ranges: IdRanges = shared_ranges or memory_ranges(self.account)
        """Where the ids of this account's messages come from (for gateways that take an id
        per message)."""
        self._retry = options.get("retry") or RetryPolicy()
        self._at_least_once = options.get("at_least_once", False)
        guard = spec.repeat_guard if options.get("repeat_guard", True) else None
        if guard is not None:
            # a repeat held up on the way may reach the gateway as late as its writer waits
            # for an answer: it must still arrive within the guard (less a margin). And the
            # first try may be held up as long: with no time left, a repeat could reach the
            # gateway that long before it, and nothing would refuse either
            guard -= GUARD_MARGIN + self._timeouts.read
        self._repeat_guard = guard if guard is not None and guard > 0 else None
        self._ssl_context = options.get("ssl_context")
        self._given_transport = options.get("transport")
        self._transport: Transport | None = None
        self._closed = False

    def _adapter(self, credentials: dict[str, str]) -> Gateway[J]:
        """The gateway's adapter, given the credentials the declaration named."""
        raise NotImplementedError

    async def _prepare(self, message: Message, options: SendOptions) -> tuple[J, Unpacker]:
        """The adapter's job for ``message`` (sent with ``options``) and how its recipients
        come."""
        raise NotImplementedError

    def _rejections(self, prepared: tuple[J, Unpacker], entries: list[Any]) -> dict[int, str]:
        """Why each of ``entries`` (by position) would be ``rejected`` as the send reads it:
        the engine's own checks, with nothing sent (for recipients a send never read)."""
        job, unpack = prepared
        return intake(self._gateway, job, unpack, entries, list(range(len(entries))))[1]

    def __repr__(self) -> str:
        state = "open" if self._transport is not None else "closed"
        name = type(self).__name__
        # a digest of the credentials is not shown: a weak password could be tried against it
        named = f", account={self.account!r}" if self._named else ""
        return f"{name}(base_url={str(self.base_url)!r}{named}, {state})"

    def _slack(self) -> float:
        """How long past the TTL a reservation must hold for this client: a request written
        may reach the gateway as late as its writer waits for an answer, and a margin."""
        return self._timeouts.read + SLACK_MARGIN

    def _check_window(self, window: DuplicateWindow) -> None:
        """Raise :class:`ConfigurationError` if ``window`` cannot serve this client (see
        :meth:`_slack`)."""
        needed = self._slack()
        if window.slack < needed:
            raise ConfigurationError(
                f"the duplicate window's slack ({window.slack:g} s) is shorter than the read "
                f"timeout ({self._timeouts.read:g} s) and {SLACK_MARGIN:g} s: a request on its "
                "way could reach the gateway after its reservation lapsed; give the window a "
                f"slack of at least {needed:g} s"
            )

    @property
    def repeat_guard(self) -> float | None:
        """Seconds after a request is first written in which one that may have been
        processed is repeated, relying on the gateway's duplicate guard: the guard less 20 s
        and the least wait for an answer a repeat is given (4 s: 96 s for SMS Club), where
        the transport waits for each request's answer as long as told, else less 20 s and
        the read timeout; ``None`` when not (no such guard, turned off, no time left of it,
        or no duplicate window as long)."""
        stretch = self._stretch(self._window)
        if stretch is not None:
            return last_repeat(stretch[0])
        return self._guard(self._window)

    @property
    def clock(self) -> Clock:
        """The time source of this client's waits."""
        return self._clock

    @property
    def limiter(self) -> RateLimiter:
        """The rate limiter every request of this client passes."""
        return self._throttle.limiter

    @property
    def is_open(self) -> bool:
        """Whether the client is open: entered with ``async with`` and not closed since."""
        return self._transport is not None

    @property
    def window(self) -> DuplicateWindow | None:
        """The duplicate window, or ``None`` when disabled."""
        return self._window

    async def __aenter__(self) -> Self:
        if self._transport is None:
            if self._insecure:
                _warn_plain_http(self.spec, str(self.base_url.host))
            self._transport = self._given_transport or Http1Transport(
                self.base_url,
                timeouts=self._timeouts,
                max_connections=self.concurrency + 4,
                ssl_context=self._ssl_context,
            )
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        await self.aclose()

    async def aclose(self) -> None:
        """Close the HTTP session (and the Redis connections); the client can be opened again
        with ``async with``."""
        transport, self._transport = self._transport, None
        if transport is not None:
            self._closed = True
            with anyio.CancelScope(shield=True):
                await transport.aclose()
        if self._shared is not None:
            await self._shared.aclose()

    def _open_transport(self) -> Transport:
        if self._transport is None and self._closed:
            raise ConfigurationError(
                f"the client was closed (while this call ran, or before it): open it again "
                f"with `async with {type(self).__name__}(...) as sms:`"
            )
        if self._transport is None:
            raise ConfigurationError(
                f"the client is not open: use `async with {type(self).__name__}(...) as sms:`"
            )
        return self._transport

    def track(
        self,
        message_ids: Iterable[str | int] | str | int,
        *,
        every: float = 30.0,
        deadline: float | None = 3600.0,
    ) -> DeliveryTracker:
        """Follow sent messages until each reaches a final state: ``async for status in
        client.track(report.message_ids())`` gives each id's :class:`MessageStatus` once,
        when final, or after ``deadline`` seconds with the last state known. The gateway is
        asked every ``every`` seconds, within the account's limiter; delivery reports from a
        webhook can be given to the tracker's ``feed`` (see :class:`DeliveryTracker`).

        Raises:
            ConfigurationError: the gateway has no status call, or a setting is wrong.
        """
        status = getattr(self, "status", None)
        if "status" not in self.spec.calls or status is None:
            raise ConfigurationError(f"{self.spec.title} has no status call to follow messages")
        return DeliveryTracker(message_ids, status, self._clock, every=every, deadline=deadline)

    async def send_message(
        self,
        message: Message,
        *,
        to: Iterable[Any] | AsyncIterable[Any] | str,
        **options: Unpack[SendOptions],
    ) -> Report:
        """Send ``message`` to every recipient of ``to``, whatever the gateway: numbers for a
        text, ``(number, text)`` pairs for personal texts, ``(number, parameters)`` pairs
        for a template (see :class:`Message`). The gateway's own methods (``send``...) are
        this with their own options.

        Raises:
            InvalidInputError: the gateway cannot carry this kind of message.
        """
        job, unpack = await self._prepare(checked_message(message), options)
        return await self._run_send(job, to, unpack, options)

    async def plan(
        self,
        message: Message,
        *,
        to: Iterable[Any] | AsyncIterable[Any],
        **options: Unpack[SendOptions],
    ) -> Report:
        """A dry run of :meth:`send_message`: the very same path, numbers checked,
        duplicates found, requests packed and built, but nothing sent, no rate slot taken and
        no shared state touched. ``accepted`` counts what would go, ``requests`` the requests
        it would take; nothing is ``failed`` or ``uncertain``."""
        ranges, self.ranges = self.ranges, MemoryRanges()
        try:
            job, unpack = await self._prepare(checked_message(message), options)
        finally:
            self.ranges = ranges
        real = self._window
        window = (
            MemoryWindow(real.ttl, slack=real.slack, clock=self._clock)
            if real is not None
            else None
        )
        indexed = options.get("indexed", False)
        source = to if indexed else recipients(to, unpack)
        engine = self._engine(job, options, plan=True, window=window)
        return await engine.run(source, unpack, indexed=indexed)

    def _guard(self, window: DuplicateWindow | None) -> float | None:
        """The gateway's duplicate guard, relied on only while the duplicate window keeps
        smsbridge's own sends of a text to a number at least as far apart: a refusal of a
        repeat then names the repeated request's own earlier try, not another recipient's."""
        guard = self.spec.repeat_guard
        if self._repeat_guard is None or guard is None or window is None or window.ttl < guard:
            return None
        return self._repeat_guard

    def _stretch(self, window: DuplicateWindow | None) -> tuple[float, float] | None:
        """Where the transport ends each request's exchange within a time limit it is given:
        the guard less the margin, and the read timeout, for a repeat to be given what is
        left of the guard (see :class:`~smsbridge._core.exchange.Attempts`)."""
        span = self.spec.repeat_guard
        if (
            span is None
            or self._guard(window) is None
            or not getattr(self._given_transport or Http1Transport, "time_limits", False)
        ):
            return None
        return span - GUARD_MARGIN, self._timeouts.read

    def _claim(self, job: J) -> Callable[[Batch], Awaitable[None]] | None:
        """What the recipients of a batch need claimed before it is packed (a gateway's
        ids for them), or ``None`` where they need nothing."""
        return None

    def _engine(
        self,
        job: J,
        options: SendOptions,
        *,
        plan: bool = False,
        window: DuplicateWindow | None = None,
    ) -> SendEngine[J]:
        checked_options(options)
        keep = checked_keep(options.get("keep", "all"))
        return SendEngine(
            gateway=self._gateway,
            job=job,
            transport=_NoTransport() if plan else self._open_transport(),
            throttle=Throttle(_NoLimit(), self.concurrency) if plan else self._throttle,
            window=window if plan else self._window,
            retry=self._retry,
            at_least_once=self._at_least_once,
            repeat_guard=self._guard(window if plan else self._window),
            repeat_stretch=None if plan else self._stretch(self._window),
            clock=self._clock,
            concurrency=self.concurrency,
            holder=holder_for(options.get("idempotency_key")),
            exclusive=options.get("idempotency_key") is not None,
            on_outcome=options.get("on_outcome"),
            keep=keep,
            stop=options.get("stop"),
            observer=options.get("observer"),
            maybe_sent=options.get("maybe_sent"),
            plan=plan,
            telemetry=self._telemetry,
            held_up=self._timeouts.read,
            claim=self._claim(job),
        )

    async def _run_send(
        self,
        job: J,
        source: Iterable[Any] | AsyncIterable[Any],
        unpack: Unpacker,
        options: SendOptions,
    ) -> Report:
        indexed = options.get("indexed", False)
        if not indexed:
            source = recipients(source, unpack)
        engine = self._engine(job, options)
        return await engine.run(
            source,
            unpack,
            indexed=indexed,
            earlier=options.get("earlier"),
        )

    async def _chunked_calls(
        self,
        ids: Sequence[str],
        size: int,
        build: Callable[[list[str]], HttpRequest],
        parse: Callable[[list[str], HttpResponse], list[T]],
    ) -> list[T]:
        """One call per ``size`` ids, run concurrently (within the client's limits); the
        results in the order of ``ids``."""
        chunks = [list(ids[i : i + size]) for i in range(0, len(ids), size)]
        results: list[list[T]] = [[] for _ in chunks]

        errors: list[SmsBridgeError] = []

        async def one(n: int) -> None:
            chunk = chunks[n]
            try:
                results[n] = await self._call(build(chunk), lambda r: parse(chunk, r))
            except SmsBridgeError as e:
                errors.append(e)

        async with anyio.create_task_group() as tg:
            for n in range(len(chunks)):
                tg.start_soon(one, n)
        if errors:
            raise errors[0]  # the same for every chunk, as a rule: one error, not a group
        return [item for chunk in results for item in chunk]

    async def _call(
        self,
        request: HttpRequest,
        parse: Callable[[HttpResponse], T],
        *,
        idempotent: bool = True,
    ) -> T:
        """A single non-send call through the limiter, retried where that is safe."""
        attempts: Attempts[T] = Attempts(
            self._throttle,
            self._open_transport(),
            self._retry,
            self._clock,
            telemetry=self._telemetry,
            ambiguous_ok=idempotent,
        )
        return await attempts.run(request, parse)


def _credentials(spec: GatewaySpec, given: dict[str, str | None]) -> dict[str, str]:
    """The first complete way to authenticate of the declaration: from the arguments given
    alone, else from them and the environment (``SMSBRIDGE_<NAME>_<ARGUMENT>``)."""
    for from_env in (False, True):
        for names in spec.credentials:
            found: dict[str, str] = {}
            for name in names:
                what = f"the {spec.title} {name}"
                value = given.get(name)
                if from_env:
                    value = credential(value, f"{spec.env_prefix}_{name.upper()}", what)
                elif value is not None:
                    value = credential(value, "", what)
                if value:
                    found[name] = value
            if len(found) == len(names):
                return found
    ways = ", or ".join(
        " and ".join(f"{n}=" for n in names)
        + " or set "
        + " and ".join(f"{spec.env_prefix}_{n.upper()}" for n in names)
        for names in spec.credentials
    )
    raise ConfigurationError(f"no {spec.title} credentials: pass {ways}")


class _NoLimit:
    """A dry run's limiter: every slot at once, counted nowhere."""

    def slot_nowait(self) -> Slot:
        return _FreeSlot()

    async def acquire(self) -> Slot:
        return _FreeSlot()

    async def defer(self, seconds: float) -> None:
        pass


class _FreeSlot:
    instant = True

    async def ready(self) -> None:
        pass

    def start(self) -> bool:
        return True

    def close(self) -> None:
        pass


class _NoTransport:
    """A dry run's transport: never called (the engine plans instead of sending)."""

    async def send(self, request: HttpRequest, ready: object = None) -> HttpResponse:
        raise ConfigurationError("a dry run sends nothing")

    async def aclose(self) -> None:
        pass


def holder_for(key: str | bytes | None) -> str:
    """The name a send's duplicate-window reservations carry: derived from its idempotency
    key (a resumed send finds its own), random without one."""
    raw = os.urandom(12) if key is None else _key_bytes(key)
    return hashlib.blake2b(raw, digest_size=12, person=b"window").hexdigest()


def _key_bytes(key: str | bytes) -> bytes:
    """An idempotency key as bytes (a ``str`` is taken as UTF-8)."""
    if isinstance(key, str):
        return key.encode()
    if isinstance(key, bytes):
        return key
    raise ConfigurationError("idempotency_key must be a str or bytes")

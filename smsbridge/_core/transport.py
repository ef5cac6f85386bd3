"""What a transport is: the requests adapters build, the answers they parse, the time limits,
the base URL's policy, and an in-memory transport for tests.

Adapters produce :class:`HttpRequest` values and parse :class:`HttpResponse` values; only a
transport does I/O (the clients' own is :class:`~smsbridge._core.http1.Http1Transport`). A
transport turns every failure into the error tree, marking whether the request may have
reached the gateway: a refused or timed-out *connect* surely did not, anything after the
request was written may have.
"""

from __future__ import annotations

import inspect
import ipaddress
import math
from collections.abc import Awaitable, Callable, Mapping
from typing import Protocol

import msgspec
from yarl import URL

from .errors import ConfigurationError, TransportError

__all__ = [
    "HttpRequest",
    "HttpResponse",
    "MockTransport",
    "Ready",
    "Timeouts",
    "Transport",
    "check_base_url",
    "header_fields",
    "unfit_for_head",
]


class HttpRequest:
    """One request as an adapter built it: path relative to the base URL, headers, body.

    ``time_limit``, where set, is the most its whole exchange may take, counted from the call
    to :meth:`Transport.send`: nothing of it is written, nor its answer awaited, past that. A
    repeat that relies on the gateway's duplicate guard is given only what is left of the
    guard. A transport that honours it says so with a true ``time_limits`` attribute; others
    are never given a request with one.

    Its ``repr`` shows neither headers nor body: they carry credentials.
    """

    __slots__ = ("body", "headers", "method", "path", "time_limit")

    def __init__(
        self,
        path: str,
        body: bytes = b"",
        headers: Mapping[str, str] | None = None,
        method: str = "POST",
        *,
        time_limit: float | None = None,
    ) -> None:
        self.method = method
        self.path = path
        self.body = body
        self.headers: Mapping[str, str] = headers or {}
        self.time_limit = time_limit

    def within(self, seconds: float) -> HttpRequest:
        """The same request, its whole exchange ``seconds`` at most."""
        return HttpRequest(self.path, self.body, self.headers, self.method, time_limit=seconds)

    def __repr__(self) -> str:
        return f"HttpRequest({self.method} {self.path}, {len(self.body)} bytes body)"


class HttpResponse(msgspec.Struct, frozen=True):
    """A complete HTTP answer: status, headers and the raw body.

    Header names are lower-case (answers built by hand, for :class:`MockTransport`, should
    use lower-case names too).
    """

    status: int
    body: bytes = b""
    headers: Mapping[str, str] = msgspec.field(default_factory=dict)

    def __repr__(self) -> str:
        return f"HttpResponse({self.status}, {len(self.body)} bytes)"


def unfit_for_head(text: str) -> str | None:
    """Why a request's head cannot carry ``text`` (a method, path, header name or value), or
    ``None``: HTTP carries it only on one line and in ISO-8859-1."""
    if "\r" in text or "\n" in text or "\0" in text:
        return "must not contain line breaks"
    if not text.isascii():
        try:
            text.encode("latin-1")
        except UnicodeEncodeError:
            return "holds a character an HTTP header cannot carry (outside ISO-8859-1)"
    return None


def header_fields(headers: Mapping[str, str], what: str) -> dict[str, str]:
    """Headers an adapter sends with every request, checked once, where it is made (see
    :func:`unfit_for_head`). Raises :class:`ConfigurationError`, naming ``what`` (the
    credential in it) but not the value."""
    for field in headers.items():
        for text in field:
            problem = unfit_for_head(text)
            if problem is not None:
                raise ConfigurationError(f"{what} {problem}")
    return dict(headers)


Ready = Callable[[], Awaitable[None]]
"""Awaited once a request's connection is ready, right before its first byte is written. The
core takes the request's rate slot there (a gateway counts arrivals, and a request that must
first open a connection arrives later than one on a warm connection). If it raises, nothing
is written and the exception propagates from :meth:`Transport.send` unchanged."""


class Transport(Protocol):
    """Sends one request and returns the complete response, or raises a TransportError.

    A transport that ends a request's exchange within its :attr:`HttpRequest.time_limit`
    (where one is set) may say so with a class attribute ``time_limits = True``: SMS Club's
    repeats then use what is left of its duplicate guard (see the README); without it they
    keep to the guard less the read timeout."""

    async def send(self, request: HttpRequest, ready: Ready | None = None) -> HttpResponse:
        """Perform the exchange; await ``ready`` right before writing the request."""
        ...

    async def aclose(self) -> None:
        """Release connections."""
        ...


class Timeouts(msgspec.Struct, frozen=True, kw_only=True):
    """Network time limits, in seconds.

    Attributes:
        connect: to get a connection (pool wait, DNS, TCP and TLS handshakes); a request
            that times out here was surely not sent, so it is retried.
        read: between bytes of the answer once the request was written; a request that times
            out here may have been processed.
        total: for the whole exchange.
    """

    connect: float = 10.0
    read: float = 60.0
    total: float = 90.0

    def __post_init__(self) -> None:
        for name in ("connect", "read", "total"):
            value = getattr(self, name)
            if not (isinstance(value, int | float) and 0 < value < math.inf):
                raise ConfigurationError(
                    f"Timeouts: {name} must be a positive number of seconds, got {value!r}"
                )


_LOOPBACK_NAMES = frozenset({"localhost", "localhost.localdomain", "ip6-localhost"})


def _is_loopback(host: str) -> bool:
    if host.lower() in _LOOPBACK_NAMES:
        return True
    try:
        return ipaddress.ip_address(host.strip("[]")).is_loopback
    except ValueError:
        return False


def check_base_url(url: str, *, allow_insecure_http: bool) -> tuple[URL, bool]:
    """Validate a gateway base URL; return it and whether it is plain HTTP off loopback.

    Plain ``http://`` to anything but loopback is refused unless ``allow_insecure_http``:
    the token would travel in clear text.
    """
    try:
        parsed = URL(url)
    except (TypeError, ValueError) as e:
        raise ConfigurationError(f"base URL is not a URL: {e}") from None
    if parsed.scheme not in ("http", "https") or not parsed.host:
        raise ConfigurationError("base URL must be an absolute http:// or https:// URL")
    if parsed.user or parsed.password:
        raise ConfigurationError("base URL must not carry credentials; pass them as arguments")
    if "?" in str(url) or "#" in str(url):  # an empty one too, which the parse drops
        # every call's own path and query take their place: they would be dropped silently
        raise ConfigurationError("base URL must not carry a query (?…) or a fragment (#…)")
    insecure = parsed.scheme == "http" and not _is_loopback(parsed.host)
    if insecure and not allow_insecure_http:
        raise ConfigurationError(
            f"refusing plain http:// to {parsed.host}: credentials would travel unencrypted; "
            "use https:// or pass allow_insecure_http=True"
        )
    return parsed, insecure


Handler = Callable[[HttpRequest], "HttpResponse | Awaitable[HttpResponse]"]


class MockTransport:
    """A transport answering from a function, in memory: for unit tests of the core.

    The handler receives each :class:`HttpRequest` and returns an :class:`HttpResponse`
    (or raises a :class:`TransportError` to simulate a network failure); it may be async.
    """

    def __init__(self, handler: Handler) -> None:
        self._handler = handler
        self.requests: list[HttpRequest] = []

    async def send(self, request: HttpRequest, ready: Ready | None = None) -> HttpResponse:
        """Await ``ready``, record the request and hand it to the handler."""
        if ready is not None:
            await ready()
        self.requests.append(request)
        result = self._handler(request)
        if inspect.isawaitable(result):
            result = await result
        if not isinstance(result, HttpResponse):
            raise TransportError("mock handler returned something other than an HttpResponse")
        return result

    async def aclose(self) -> None:
        """Nothing to release."""

    def __repr__(self) -> str:
        return f"MockTransport({len(self.requests)} requests)"

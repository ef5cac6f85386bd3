"""HTTP transport: one pooled aiohttp session per client, and an in-memory one for tests.

Adapters produce :class:`HttpRequest` values and parse :class:`HttpResponse` values; only a
transport does I/O. The aiohttp transport turns every aiohttp failure into the error tree,
marking whether the request may have reached the gateway: a refused or timed-out *connect*
surely did not, anything after the connection was made may have.
"""

from __future__ import annotations

import contextvars
import inspect
import ipaddress
import logging
import math
import ssl
from collections.abc import Awaitable, Callable, Mapping
from typing import Any, Protocol

import aiohttp
import msgspec
from yarl import URL

from .errors import (
    ConfigurationError,
    ConnectError,
    ConnectionLostError,
    TransportError,
    TransportTimeoutError,
)

__all__ = [
    "AiohttpTransport",
    "HttpRequest",
    "HttpResponse",
    "MockTransport",
    "Ready",
    "Timeouts",
    "Transport",
    "check_base_url",
]

log = logging.getLogger("smsbridge.transport")


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

    Header lookups are case-insensitive on answers from the aiohttp transport; answers built
    by hand (for :class:`MockTransport`) should use lower-case names.
    """

    status: int
    body: bytes = b""
    headers: Mapping[str, str] = msgspec.field(default_factory=dict)

    def __repr__(self) -> str:
        return f"HttpResponse({self.status}, {len(self.body)} bytes)"


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
    insecure = parsed.scheme == "http" and not _is_loopback(parsed.host)
    if insecure and not allow_insecure_http:
        raise ConfigurationError(
            f"refusing plain http:// to {parsed.host}: credentials would travel unencrypted; "
            "use https:// or pass allow_insecure_http=True"
        )
    return parsed, insecure


def _describe(error: BaseException) -> str:
    """A library exception's text, or at least its type: its ``str`` may itself fail."""
    try:
        text = str(error)
    except Exception:
        text = ""
    return text or type(error).__name__


class _Turn:
    """A request's ``ready`` hook, whether it was awaited, and whether it ever returned in
    this send (aiohttp may connect again for a request it retries itself): awaited and never
    returned, nothing was written."""

    __slots__ = ("entered", "ready", "started")

    def __init__(self, ready: Ready) -> None:
        self.ready = ready
        self.entered = self.started = False

    @property
    def unwritten(self) -> bool:
        """Whether the request surely was not written: its hook never let it."""
        return self.entered and not self.started


_TURN: contextvars.ContextVar[_Turn | None] = contextvars.ContextVar("smsbridge_turn", default=None)


class _ReadyConnector(aiohttp.TCPConnector):
    """A connector that awaits the request's :data:`Ready` hook once its connection is
    ready, fresh or reused, so nothing is written before the hook allows it."""

    async def connect(
        self,
        req: Any,
        traces: Any,
        timeout: Any,  # noqa: ASYNC109 - the connector's own signature
    ) -> aiohttp.connector.Connection:
        connection = await super().connect(req, traces, timeout)
        turn = _TURN.get()
        if turn is not None:
            turn.entered = True
            try:
                await turn.ready()
            except BaseException:
                connection.release()  # nothing was written: the connection stays usable
                raise
            turn.started = True
        return connection


class AiohttpTransport:
    """The real transport: one ``aiohttp.ClientSession``, opened once, reused for every call.
    A request's own ``time_limit`` bounds its whole exchange. A timeout while the request
    waited for its turn (its ``ready`` hook), before anything was written, is a
    :class:`ConnectError`: surely unsent.

    TLS certificates are verified (pass an ``ssl.SSLContext`` to trust a private CA);
    redirects are never followed; environment proxies are ignored unless ``trust_env``.

    Args:
        base_url: the gateway's base URL; request paths are joined to it.
        timeouts: network time limits.
        max_connections: connection-pool size; keep it at or above the client's concurrency.
        max_response_bytes: answers longer than this are cut off and treated as unreadable.
        ssl_context: custom TLS settings; ``None`` verifies against the system store.
        trust_env: honour ``HTTP(S)_PROXY`` and ``.netrc`` from the environment.
    """

    time_limits = True
    """It honours :attr:`HttpRequest.time_limit`."""

    def __init__(
        self,
        base_url: str | URL,
        *,
        timeouts: Timeouts | None = None,
        max_connections: int = 32,
        max_response_bytes: int = 4 * 1024 * 1024,
        ssl_context: ssl.SSLContext | None = None,
        trust_env: bool = False,
    ) -> None:
        self.base_url = URL(base_url)
        self.timeouts = timeouts or Timeouts()
        self._max_connections = max_connections
        self._max_response_bytes = max_response_bytes
        self._ssl: ssl.SSLContext | bool = ssl_context if ssl_context is not None else True
        self._trust_env = trust_env
        self._session: aiohttp.ClientSession | None = None
        self._urls: dict[str, URL] = {}

    def __repr__(self) -> str:
        state = "open" if self._session is not None else "closed"
        return f"AiohttpTransport({str(self.base_url)!r}, {state})"

    def _open(self) -> aiohttp.ClientSession:
        t = self.timeouts
        connector = _ReadyConnector(
            limit=self._max_connections,
            ssl=self._ssl,
            keepalive_timeout=10.0,
        )
        self._session = aiohttp.ClientSession(
            connector=connector,
            timeout=aiohttp.ClientTimeout(
                total=t.total, connect=t.connect, sock_connect=t.connect, sock_read=t.read
            ),
            trust_env=self._trust_env,
            raise_for_status=False,
            auto_decompress=True,
            skip_auto_headers=("User-Agent",),
            headers={"User-Agent": "smsbridge"},
        )
        return self._session

    async def send(self, request: HttpRequest, ready: Ready | None = None) -> HttpResponse:
        """POST the request; wrap every aiohttp failure in the error tree."""
        session = self._session or self._open()
        url = self._urls.get(request.path)
        if url is None:
            url = self._urls[request.path] = self.base_url.join(URL(request.path.lstrip("/")))
        turn = _Turn(ready) if ready is not None else None
        token = _TURN.set(turn)
        try:
            async with session.request(
                request.method,
                url,
                data=request.body,
                headers=request.headers,
                allow_redirects=False,
                timeout=self._timeout_of(request, session),
            ) as resp:
                body = await self._read(resp)
                return HttpResponse(resp.status, body, resp.headers)
        except aiohttp.ClientSSLError as e:
            raise ConnectError(
                f"TLS with {url.host} failed (certificate not trusted?): {_describe(e)}",
                account_wide=True,
            ) from e
        except (aiohttp.ClientConnectorError, aiohttp.ConnectionTimeoutError) as e:
            raise ConnectError(f"could not connect to {url.host}:{url.port}: {_describe(e)}") from e
        except (aiohttp.ServerTimeoutError, TimeoutError) as e:
            if turn is not None and turn.unwritten:
                raise ConnectError(
                    f"nothing written to {url.host}: the time limit ran out while the request "
                    "waited for its turn"
                ) from e
            raise TransportTimeoutError(
                f"no complete answer from {url.host} in time after the request was sent"
            ) from e
        except aiohttp.ClientError as e:
            raise ConnectionLostError(
                f"connection to {url.host} failed after the request was sent: {type(e).__name__}"
            ) from e
        finally:
            _TURN.reset(token)

    def _timeout_of(
        self, request: HttpRequest, session: aiohttp.ClientSession
    ) -> aiohttp.ClientTimeout:
        """The session's timeouts, within the request's own time limit where it has one."""
        limit = request.time_limit
        if limit is None:
            return session.timeout
        t = self.timeouts
        connect = min(t.connect, limit)
        return aiohttp.ClientTimeout(
            total=min(t.total, limit),
            connect=connect,
            sock_connect=connect,
            sock_read=min(t.read, limit),
        )

    async def _read(self, resp: aiohttp.ClientResponse) -> bytes:
        length = resp.content_length
        if length is not None and length <= self._max_response_bytes:
            return await resp.read()
        chunks: list[bytes] = []
        size = 0
        async for chunk in resp.content.iter_chunked(65536):
            size += len(chunk)
            if size > self._max_response_bytes:
                log.warning("answer longer than %d bytes cut off", self._max_response_bytes)
                break
            chunks.append(chunk)
        return b"".join(chunks)

    async def aclose(self) -> None:
        """Close the session and its connections."""
        session, self._session = self._session, None
        if session is not None:
            await session.close()


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

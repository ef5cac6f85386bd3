"""HTTP/1.1 over asyncio protocols: the transport every client uses unless given another.

A gateway client asks one thing of HTTP: POST a small body to one host, read a small answer,
again and again on kept-alive connections. A general client's layers round that exchange (its
session, connector, tracing, cookie jar, stream reader and timers) cost about as much CPU as
all of smsbridge's per-recipient work; here a request is one write, its answer is parsed as
it arrives, and one timer watches it.

What it speaks: ``Content-Length``, chunked and read-until-close answers; ``1xx`` answers
skipped; ``gzip`` and ``deflate`` bodies decoded (``identity`` is asked for). What it does
not: redirects (never followed), proxies, HTTP/2, cookies. An answer longer than
``max_response_bytes`` (on the wire or decoded), or one that does not decode whole, is not
read: the connection is closed, and the request may have been processed.

Whether a failed request may have reached the gateway is told as the error tree tells it:
anything before the first byte is written (a pool wait, DNS, TCP and TLS, the request's
``ready`` hook) is a :class:`ConnectError`, surely unsent; anything after may have been
processed. A kept-alive connection that the server closed while idle is seen closed before
it is used, and another is opened in its place.
"""

from __future__ import annotations

import asyncio
import logging
import ssl
import zlib
from collections import deque

from yarl import URL

from .errors import ConfigurationError, ConnectError, ConnectionLostError, TransportTimeoutError
from .transport import (
    HttpRequest,
    HttpResponse,
    Ready,
    Timeouts,
    check_base_url,
    unfit_for_head,
)

__all__ = ["Http1Transport"]

log = logging.getLogger("smsbridge.transport")

_MAX_HEAD = 65536
_KEEPALIVE = 10.0
_PATHS = 64

# where a connection's answer stands
_HEAD, _LENGTH, _CHUNK_SIZE, _CHUNK_DATA, _TRAILERS, _UNTIL_CLOSE = range(6)


class _Broken(Exception):
    """An answer that is not HTTP/1.x as this transport reads it."""


class _Connection(asyncio.Protocol):
    """One connection to the gateway and the answer to the request last written on it."""

    __slots__ = (
        "answer",
        "body",
        "buffer",
        "closed",
        "deadline",
        "headers",
        "host",
        "idle_since",
        "keep",
        "keepalive",
        "last_read",
        "left",
        "limit",
        "loop",
        "read",
        "state",
        "status",
        "timer",
        "transport",
    )

    def __init__(self, loop: asyncio.AbstractEventLoop, limit: int, host: str) -> None:
        self.loop = loop
        self.host = host
        self.limit = limit
        self.transport: asyncio.Transport | None = None
        self.buffer = bytearray()
        self.answer: asyncio.Future[HttpResponse] | None = None
        self.closed = False
        self.idle_since = 0.0
        self.keepalive = _KEEPALIVE
        self.timer: asyncio.TimerHandle | None = None
        self.deadline = self.last_read = self.read = 0.0
        self._reset()

    def _reset(self) -> None:
        self.state = _HEAD
        self.status = 0
        self.headers: dict[str, str] = {}
        self.body = bytearray()
        self.left = 0
        self.keep = True

    # -- the protocol ------------------------------------------------------------------------

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = transport  # type: ignore[assignment]

    def data_received(self, data: bytes) -> None:
        if self.answer is None or self.answer.done():
            self._close()  # bytes nobody asked for: the connection's state is unknown
            return
        self.last_read = self.loop.time()
        self.buffer += data
        try:
            self._parse()
        except _Broken as e:
            self._fail(ConnectionLostError(f"the answer of {self.host} is unreadable: {e}"))

    def eof_received(self) -> bool:
        if self.answer is not None and not self.answer.done() and self.state == _UNTIL_CLOSE:
            self.keep = False
            self._end()
        self._close()
        return False

    def connection_lost(self, exc: Exception | None) -> None:
        self.closed = True
        if self.answer is not None and not self.answer.done():
            if self.state == _UNTIL_CLOSE and exc is None:
                self.keep = False
                self._end()
            else:
                self._fail(
                    ConnectionLostError(
                        f"the connection to {self.host} closed after the request was sent, "
                        "before its answer ended"
                    )
                )

    # -- one exchange ------------------------------------------------------------------------

    def start(self, data: bytes, deadline: float, read: float) -> asyncio.Future[HttpResponse]:
        """Write a request; the future ends with its answer, or a transport error."""
        assert self.transport is not None
        self.answer = answer = self.loop.create_future()
        self.deadline, self.read = deadline, read
        self.last_read = now = self.loop.time()
        self.timer = self.loop.call_at(min(deadline, now + read), self._time_out)
        self.transport.write(data)
        return answer

    def _time_out(self) -> None:
        now = self.loop.time()
        due = min(self.deadline, self.last_read + self.read)
        if now < due:
            self.timer = self.loop.call_at(due, self._time_out)
            return
        self.timer = None
        self._fail(
            TransportTimeoutError(
                f"no complete answer from {self.host} in time after the request was sent"
            )
        )

    def _fail(self, error: Exception) -> None:
        self._close()
        answer = self.answer
        if answer is not None and not answer.done():
            answer.set_exception(error)

    def _end(self) -> None:
        """The answer ends with the connection."""
        try:
            self._done()
        except _Broken as e:
            self._fail(ConnectionLostError(f"the answer of {self.host} is unreadable: {e}"))

    def _done(self) -> None:
        self._disarm()
        if self.buffer:
            self.keep = False  # more than one answer to one request
        elif self.transport is not None and self.transport.get_write_buffer_size():
            self.keep = False  # answered before the request was all written
        if len(self.body) > self.limit:
            log.warning("answer longer than %d bytes not read", self.limit)
            raise _Broken(f"it is longer than {self.limit} bytes")
        content = _decoded(bytes(self.body), self.headers, self.limit)
        answer = HttpResponse(self.status, content, self.headers)
        keep = self.keep
        self._reset()
        if not keep:
            self._close()
        assert self.answer is not None
        self.answer.set_result(answer)

    def expiry(self) -> float:
        """When, idle, it may no longer be written to (see :func:`_idle_for`)."""
        return self.idle_since + self.keepalive

    def usable(self, now: float) -> bool:
        """Whether a request may be written on it now: open, and not idle past its time."""
        return not self.closed and now < self.expiry()

    def _disarm(self) -> None:
        if self.timer is not None:
            self.timer.cancel()
            self.timer = None

    def _close(self) -> None:
        self.closed = True
        self._disarm()
        if self.transport is not None:
            # at once: a graceful close waits for the unwritten bytes, which a server that
            # no longer reads never takes
            self.transport.abort()

    # -- parsing -----------------------------------------------------------------------------

    def _parse(self) -> None:
        buffer = self.buffer
        while True:
            state = self.state
            if state == _HEAD:
                end = buffer.find(b"\r\n\r\n")
                if end < 0:
                    if len(buffer) > _MAX_HEAD:
                        raise _Broken("its head is too long")
                    return
                head = bytes(buffer[:end])
                del buffer[: end + 4]
                self._head(head)
                if self.state == _HEAD:
                    continue  # an interim 1xx answer, and the real one after it
                if self.state == _LENGTH and self.left == 0:
                    self._done()
                    return
            elif state == _LENGTH:
                take = min(self.left, len(buffer))
                self._take(take)
                self.left -= take
                if self.left == 0 or len(self.body) > self.limit:
                    self._done()
                return
            elif state == _CHUNK_SIZE:
                end = buffer.find(b"\r\n")
                if end < 0:
                    if len(buffer) > 1024:
                        raise _Broken("a chunk size line is too long")
                    return
                line = bytes(buffer[:end]).split(b";", 1)[0].strip()
                del buffer[: end + 2]
                if not line or line.strip(b"0123456789abcdefABCDEF") or len(line) > 16:
                    raise _Broken("a chunk size is not a hexadecimal number")
                size = int(line, 16)
                self.left = size + 2
                self.state = _CHUNK_DATA if size else _TRAILERS
            elif state == _CHUNK_DATA:
                if self.left > 2:  # the chunk's data is not all read; its CRLF comes after
                    take = min(self.left - 2, len(buffer))
                    self._take(take)
                    self.left -= take
                    if len(self.body) > self.limit:
                        self._done()
                        return
                    if self.left > 2:
                        return
                if len(buffer) < 2:
                    return
                if buffer[:2] != b"\r\n":
                    raise _Broken("a chunk does not end in CRLF")
                del buffer[:2]
                self.state = _CHUNK_SIZE
            elif state == _TRAILERS:
                end = buffer.find(b"\r\n")
                if end < 0:
                    if len(buffer) > _MAX_HEAD:
                        raise _Broken("its trailers are too long")
                    return
                del buffer[: end + 2]
                if end == 0:
                    self._done()
                    return
            else:  # _UNTIL_CLOSE
                self._take(len(buffer))
                if len(self.body) > self.limit:
                    self._done()
                return

    def _take(self, size: int) -> None:
        """Move ``size`` bytes of the buffer to the body."""
        buffer = self.buffer
        self.body += buffer[:size] if size < len(buffer) else buffer
        del buffer[:size]

    def _head(self, head: bytes) -> None:
        lines = head.decode("latin-1").split("\r\n")
        status = lines[0].split(" ", 2)
        version = status[0]
        if version not in ("HTTP/1.1", "HTTP/1.0") or len(status) < 2:
            raise _Broken("its status line is not HTTP/1.x")
        if not (len(status[1]) == 3 and status[1].isdigit() and status[1].isascii()):
            raise _Broken("its status is not three digits")
        code = int(status[1])
        if code < 100:
            raise _Broken("its status is out of range")
        if code < 200 and code != 101:
            return
        headers: dict[str, str] = {}
        name = ""
        for line in lines[1:]:
            if line[:1] in (" ", "\t") and name:
                headers[name] += " " + line.strip()  # an obsolete folded line
                continue
            name, colon, value = line.partition(":")
            if not colon:
                raise _Broken("a header line has no colon")
            name = name.strip().lower()
            value = value.strip()
            headers[name] = f"{headers[name]}, {value}" if name in headers else value
        self.status, self.headers = code, headers
        connection = headers.get("connection", "").lower()
        self.keep = "close" not in connection and (
            version == "HTTP/1.1" or "keep-alive" in connection
        )
        if "keep-alive" in headers:
            self.keepalive = _idle_for(headers["keep-alive"], self.keepalive)
        if "transfer-encoding" in headers:
            if headers["transfer-encoding"].lower() != "chunked":  # nothing before or after it
                raise _Broken(f"its transfer coding {headers['transfer-encoding']!r} is not read")
            self.state = _CHUNK_SIZE
            if "content-length" in headers:
                self.keep = False  # framed two ways: the connection cannot be trusted again
        elif code in (101, 204, 304):
            self.state, self.left = _LENGTH, 0
            self.keep = self.keep and code != 101
        elif "content-length" in headers:
            lengths = {v.strip() for v in headers["content-length"].split(",")}
            value = lengths.pop()
            if lengths or not value.isdigit() or not value.isascii():
                raise _Broken("its Content-Length is not one number")
            self.state, self.left = _LENGTH, int(value)
            if self.left > self.limit:
                self.keep = False
        else:
            self.state = _UNTIL_CLOSE
            self.keep = False


def _idle_for(keep_alive: str, default: float) -> float:
    """How long a connection may wait idle, where the server said how long it keeps it
    (``Keep-Alive: timeout=5``): a second less, so that it is not written to as it closes."""
    for part in keep_alive.split(","):
        name, _, value = part.partition("=")
        if name.strip().lower() == "timeout":
            try:
                return max(0.0, min(default, float(value.strip()) - 1.0))
            except ValueError:
                return default
    return default


def _decoded(body: bytes, headers: dict[str, str], limit: int) -> bytes:
    """The body with its content coding undone (``gzip``, ``deflate``); a body that does not
    decode whole is :class:`_Broken`."""
    coding = headers.get("content-encoding", "").strip().lower()
    if not body or coding in ("", "identity"):
        return body
    if coding in ("gzip", "x-gzip"):
        window = 16 + zlib.MAX_WBITS
    elif coding == "deflate":
        window = zlib.MAX_WBITS if body[:1] == b"\x78" else -zlib.MAX_WBITS
    else:
        return body
    decoder = zlib.decompressobj(window)
    try:
        content = decoder.decompress(body, limit)
    except zlib.error:
        raise _Broken(f"its {coding} body is corrupt") from None
    if decoder.unconsumed_tail:
        raise _Broken(f"it is longer than {limit} bytes once decoded")
    if not decoder.eof:
        raise _Broken(f"its {coding} body is cut short")
    if decoder.unused_data:
        raise _Broken(f"its {coding} body has bytes after its end")
    return content


def _clean(value: str, what: str) -> str:
    problem = unfit_for_head(value)
    if problem is not None:
        # an adapter's, so the same on every request of the account; the value not shown
        raise ConfigurationError(f"an HTTP {what} {problem}", account_wide=True) from None
    return value


class Http1Transport:
    """The default transport: HTTP/1.1 on a pool of kept-alive connections to one host.

    A request's own ``time_limit`` bounds its whole exchange. A time limit that runs out
    before anything was written (the request waiting for a connection, or for its turn in
    its ``ready`` hook) is a :class:`ConnectError`: surely unsent.

    TLS certificates are verified (pass an ``ssl.SSLContext`` to trust a private CA);
    redirects are never followed; proxies are not used.

    Args:
        base_url: the gateway's base URL; request paths are joined to it.
        timeouts: network time limits.
        max_connections: connection-pool size; keep it at or above the client's concurrency.
        max_response_bytes: an answer longer than this is not read (the request may have been
            processed).
        ssl_context: custom TLS settings; ``None`` verifies against the system store.
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
    ) -> None:
        # the clients' own check of a base URL (whether plain http:// is allowed is theirs)
        url, _ = check_base_url(str(base_url), allow_insecure_http=True)
        assert url.raw_host is not None  # it has a host
        self.base_url = url
        self.timeouts = timeouts or Timeouts()
        self._host: str = url.raw_host
        self._port = url.port or (443 if url.scheme == "https" else 80)
        self._ssl: ssl.SSLContext | None = None
        if url.scheme == "https":
            self._ssl = ssl_context if ssl_context is not None else ssl.create_default_context()
        host = f"[{self._host}]" if ":" in self._host else self._host
        self._authority = host if url.explicit_port is None else f"{host}:{self._port}"
        if not (isinstance(max_connections, int) and max_connections > 0):
            raise ConfigurationError("max_connections must be a positive whole number")
        self._max = max_connections
        self._limit = max_response_bytes
        self._idle: list[_Connection] = []
        self._all: set[_Connection] = set()
        self._opening = 0
        self._waiters: deque[asyncio.Future[None]] = deque()
        self._lines: dict[tuple[str, str], str] = {}
        self._sweeper: asyncio.TimerHandle | None = None
        self._closed = False

    def __repr__(self) -> str:
        state = "closed" if self._closed else f"{len(self._all)} connections"
        return f"Http1Transport({str(self.base_url)!r}, {state})"

    async def send(self, request: HttpRequest, ready: Ready | None = None) -> HttpResponse:
        """Write the request on a kept-alive connection and read its answer."""
        loop = asyncio.get_running_loop()
        start = loop.time()
        t = self.timeouts
        limit = request.time_limit
        end = start + (t.total if limit is None or limit > t.total else limit)
        data = self._encode(request)
        before = min(start + t.connect, end)
        connection: _Connection | None = None
        try:
            async with asyncio.timeout_at(before) as scope:
                connection = await self._acquire(loop)
                if ready is not None:
                    await ready()
                if not connection.usable(loop.time()):
                    # closed, or idle too long, while the request waited for its turn, which
                    # is now: only a connection ready at once may carry it (a new one would
                    # be late)
                    self._drop(connection)
                    connection = self._idle_one(loop)
                    if connection is None:
                        raise ConnectError(
                            f"nothing written to {self._host}: its connection closed, or was "
                            "idle too long to be trusted, while it waited for its turn"
                        )
            if not loop.time() < end:
                raise ConnectError(f"nothing written to {self._host}: no time was left for it")
        except TimeoutError as e:
            if connection is not None:
                self._release(connection, used=False)
            if not scope.expired():
                raise
            if ready is not None and connection is not None:
                raise ConnectError(
                    f"nothing written to {self._host}: the time limit ran out while the "
                    "request waited for its turn"
                ) from e
            raise ConnectError(f"could not connect to {self._host}:{self._port} in time") from e
        except BaseException:
            if connection is not None:
                self._release(connection, used=False)
            raise
        answer = connection.start(data, end, min(t.read, end - start))
        try:
            response = await answer
        except BaseException:
            self._drop(connection)
            raise
        self._release(connection)
        return response

    def _encode(self, request: HttpRequest) -> bytes:
        key = (request.method, request.path)
        line = self._lines.get(key)
        if line is None:
            line = self._line(request)
            if len(self._lines) < _PATHS:
                self._lines[key] = line
        body = request.body
        headers = "".join(
            f"{_clean(name, 'header name')}: {_clean(value, 'header value')}\r\n"
            for name, value in request.headers.items()
        )
        # every part checked (_clean; the authority is ASCII): it encodes
        head = f"{line}{headers}Content-Length: {len(body)}\r\n\r\n".encode("latin-1")
        return head + body

    def _line(self, request: HttpRequest) -> str:
        base = self.base_url  # its path is the API's root, with or without a final slash
        if not base.raw_path.endswith("/"):
            base = base.with_path(base.raw_path + "/", encoded=True)
        target = base.join(URL(request.path.lstrip("/"))).raw_path_qs
        method = _clean(request.method, "method")
        return (
            f"{method} {_clean(target, 'path')} HTTP/1.1\r\nHost: {self._authority}\r\n"
            "User-Agent: smsbridge\r\nAccept-Encoding: identity\r\n"
        )

    # -- the pool --------------------------------------------------------------------------

    async def _acquire(self, loop: asyncio.AbstractEventLoop) -> _Connection:
        """A connection of the pool: the freshest idle one, or a new one while there is
        room, or else the next one released."""
        while True:
            if self._closed:
                raise self._shut()
            connection = self._idle_one(loop)
            if connection is not None:
                return connection
            if len(self._all) + self._opening < self._max:
                return await self._open(loop)
            waiter = loop.create_future()
            self._waiters.append(waiter)
            try:
                await waiter
            except BaseException:
                if waiter.done() and not waiter.cancelled():
                    self._wake()  # pass on the turn it was given
                else:
                    self._waiters.remove(waiter)
                raise

    def _shut(self) -> ConnectError:
        """What a request meets once the transport is closed: every later one would too."""
        return ConnectError(
            f"nothing written to {self._host}: the client was closed", account_wide=True
        )

    def _idle_one(self, loop: asyncio.AbstractEventLoop) -> _Connection | None:
        """The freshest idle connection still open and within its keep-alive time; the
        others met on the way are closed."""
        idle = self._idle
        while idle:
            connection = idle.pop()
            if connection.usable(loop.time()):
                return connection
            self._drop(connection)
        return None

    async def _open(self, loop: asyncio.AbstractEventLoop) -> _Connection:
        connection = _Connection(loop, self._limit, self._host)
        self._opening += 1
        opened = False
        try:
            await loop.create_connection(
                lambda: connection,
                self._host,
                self._port,
                ssl=self._ssl,
                server_hostname=self._host if self._ssl is not None else None,
            )
            opened = True
        except ssl.SSLCertVerificationError as e:
            raise ConnectError(
                f"TLS with {self._host} failed (certificate not trusted?): {e.verify_message}",
                account_wide=True,
            ) from e
        except (OSError, ssl.SSLError) as e:
            raise ConnectError(
                f"could not connect to {self._host}:{self._port}: {type(e).__name__}"
            ) from e
        finally:
            self._opening -= 1
            if not opened:
                connection._close()
                self._wake()  # its place in the pool is free again
        connection.idle_since = loop.time()
        self._all.add(connection)
        if self._closed:
            self._drop(connection)
            raise self._shut()
        return connection

    def _release(self, connection: _Connection, *, used: bool = True) -> None:
        """Put a connection back in the pool, or close it where it cannot serve again. One
        that carried no request stays as idle as it was (the server's clock ran on)."""
        if connection.closed or self._closed:
            self._drop(connection)
            return
        if used:
            connection.idle_since = connection.loop.time()
        self._idle.append(connection)
        if self._sweeper is None:
            self._sweeper = connection.loop.call_later(_KEEPALIVE, self._sweep)
        self._wake()

    def _drop(self, connection: _Connection) -> None:
        connection._close()
        if connection in self._all:
            self._all.discard(connection)
            self._wake()

    def _wake(self) -> None:
        waiters = self._waiters
        while waiters:
            waiter = waiters.popleft()
            if not waiter.done():
                waiter.set_result(None)
                return

    def _sweep(self) -> None:
        """Close the connections idle for longer than they may be."""
        self._sweeper = None
        if not self._idle:
            return
        loop = self._idle[0].loop
        now = loop.time()
        fresh = [c for c in self._idle if c.usable(now)]
        for connection in self._idle:
            if connection not in fresh:
                self._drop(connection)
        self._idle[:] = fresh
        if fresh:
            due = min(c.expiry() for c in fresh)
            self._sweeper = loop.call_at(due, self._sweep)

    async def aclose(self) -> None:
        """Close every connection, busy ones too; later requests fail as surely unsent."""
        self._closed = True
        if self._sweeper is not None:
            self._sweeper.cancel()
            self._sweeper = None
        for connection in list(self._all):
            self._drop(connection)
        self._idle.clear()
        while self._waiters:
            self._wake()
        await asyncio.sleep(0)  # let the transports' close callbacks run

"""The Redis connection smsbridge's shared state runs on: one socket per process, event loop
and URL, pipelined, shared by every account.

What :mod:`smsbridge.redis` needs of Redis is a few Lua scripts, each one command. Every
request of every account sends one or more, so their cost on the client is most of what
shared state costs: a general client's connection pool, per-call timeouts and locks came to
three times a bare round trip. Here a command is packed, appended to the socket's outgoing
bytes (written once per turn of the event loop, however many commands were given in it), and
its reply is read off the socket in order by hiredis's parser. One timer watches the oldest
reply still awaited.

Failures keep the shapes callers already handle (``redis.exceptions``): a connection that
fails, or a reply that does not come within ``timeout``, closes the socket and fails every
command awaiting on it with :class:`~redis.exceptions.ConnectionError` or
:class:`~redis.exceptions.TimeoutError` (such a command may or may not have been carried
out, as with any client); the next command opens a new socket. An error reply is a
:class:`~redis.exceptions.ResponseError` for that command alone.
"""

from __future__ import annotations

import asyncio
import hashlib
import ssl
import weakref
from collections import deque
from collections.abc import Awaitable, Sequence
from typing import Any
from urllib.parse import parse_qsl, unquote, urlsplit

import hiredis
from redis.exceptions import ConnectionError as RedisConnectionError
from redis.exceptions import ResponseError
from redis.exceptions import TimeoutError as RedisTimeoutError

from ._core.errors import ConfigurationError

__all__ = ["Endpoint", "Pipe", "Run", "Script", "pack", "parse_url"]

Arg = bytes | str | int


class Endpoint:
    """Where and how to connect, from a ``redis://``, ``rediss://`` or ``unix://`` URL. The
    password is kept out of ``repr``."""

    __slots__ = ("db", "host", "password", "path", "port", "tls", "username")

    def __init__(
        self,
        *,
        host: str = "127.0.0.1",
        port: int = 6379,
        path: str | None = None,
        db: int = 0,
        username: str | None = None,
        password: str | None = None,
        tls: ssl.SSLContext | None = None,
    ) -> None:
        self.host, self.port, self.path, self.db = host, port, path, db
        self.username, self.password, self.tls = username, password, tls

    def __repr__(self) -> str:
        where = f"unix:{self.path}" if self.path else f"{self.host}:{self.port}"
        return f"Endpoint({where}, db={self.db})"


_CERT_REQS = {"none": ssl.CERT_NONE, "optional": ssl.CERT_OPTIONAL, "required": ssl.CERT_REQUIRED}


def parse_url(url: str) -> Endpoint:
    """An :class:`Endpoint` from a Redis URL: ``redis://[[user]:password@]host[:port][/db]``,
    ``rediss://`` (TLS; ``?ssl_cert_reqs=none|optional|required``, ``?ssl_ca_certs=FILE``)
    or ``unix:///path/to/socket[?db=N]``. Anything else is a
    :class:`~smsbridge.ConfigurationError` (which never repeats the password)."""
    try:
        parts = urlsplit(url)
        port = parts.port
    except ValueError:
        raise ConfigurationError("bad Redis URL: cannot be parsed") from None
    scheme = parts.scheme.lower()
    if scheme not in ("redis", "rediss", "unix"):
        raise ConfigurationError(
            f"bad Redis URL: scheme {scheme or '(none)'!r}; use redis://, rediss:// or unix://"
        )
    query = dict(parse_qsl(parts.query))
    known = {"db", "ssl_cert_reqs", "ssl_ca_certs"}
    if unknown := sorted(set(query) - known):
        raise ConfigurationError(f"bad Redis URL: unknown option(s) {', '.join(unknown)}")
    db_text = query.get("db") or (parts.path.strip("/") if scheme != "unix" else "") or "0"
    if not db_text.isdigit():
        raise ConfigurationError("bad Redis URL: the database must be a number")
    host = parts.hostname or "127.0.0.1"
    try:
        host.encode("idna")
    except UnicodeError:
        raise ConfigurationError("bad Redis URL: the host name is not a valid one") from None
    if port == 0:
        raise ConfigurationError("bad Redis URL: port 0")
    tls = None
    if scheme == "rediss":
        try:
            tls = ssl.create_default_context(cafile=query.get("ssl_ca_certs"))
        except (OSError, ssl.SSLError) as e:
            raise ConfigurationError(f"bad Redis URL: ssl_ca_certs cannot be read: {e}") from None
        reqs = query.get("ssl_cert_reqs", "required").lower()
        if reqs not in _CERT_REQS:
            raise ConfigurationError("bad Redis URL: ssl_cert_reqs is none, optional or required")
        if _CERT_REQS[reqs] != ssl.CERT_REQUIRED:
            tls.check_hostname = False
        tls.verify_mode = _CERT_REQS[reqs]
    elif query.keys() & {"ssl_cert_reqs", "ssl_ca_certs"}:
        raise ConfigurationError("bad Redis URL: ssl options need rediss://")
    if scheme == "unix" and not parts.path:
        raise ConfigurationError("bad Redis URL: unix:// needs a socket path")
    return Endpoint(
        host=host,
        port=port or 6379,
        path=unquote(parts.path) if scheme == "unix" else None,
        db=int(db_text),
        username=unquote(parts.username) if parts.username else None,
        password=unquote(parts.password) if parts.password is not None else None,
        tls=tls,
    )


class Run:
    """Byte strings of one length, framed once (a batch's window fields): :func:`pack` sends
    them as that many arguments, without a step per string."""

    __slots__ = ("count", "framed")

    def __init__(self, items: Sequence[bytes]) -> None:
        sizes = set(map(len, items))
        if len(sizes) > 1:
            raise ValueError("a run's strings have one length")
        head = b"$%d\r\n" % (sizes.pop() if sizes else 0)
        self.count = len(items)
        self.framed = head + (b"\r\n" + head).join(items) + b"\r\n" if items else b""

    @classmethod
    def of(cls, framed: bytes, count: int) -> Run:
        """A run of ``count`` strings framed already (``framed``, as :attr:`framed` is)."""
        run = cls.__new__(cls)
        run.framed, run.count = framed, count
        return run


def pack(args: Sequence[Arg | Run], head: bytes = b"", count: int = 0) -> bytes:
    """One command in Redis's protocol (RESP): an array of bulk strings; ``head`` is its
    first ``count`` of them, framed already."""
    out = [b"", head]
    for arg in args:
        if type(arg) is Run:
            out.append(arg.framed)
            count += arg.count
            continue
        data = arg if isinstance(arg, bytes) else str(arg).encode()
        out.append(b"$%d\r\n%s\r\n" % (len(data), data))
        count += 1
    out[0] = b"*%d\r\n" % count
    return b"".join(out)


class _Wire(asyncio.Protocol):
    """One socket: commands out (coalesced per loop turn), replies in, matched in order."""

    def __init__(self, link: _Link) -> None:
        self._link = link
        self._loop = asyncio.get_running_loop()
        self._reader = hiredis.Reader()
        self._transport: asyncio.Transport | None = None
        self._out: list[bytes] = []
        # the commands awaiting replies, in order, and when each is overdue (two deques: a
        # pair's tuple would be one more object for the collector for every command)
        self.waiting: deque[asyncio.Future[Any]] = deque()
        self._due: deque[float] = deque()
        self._watch: asyncio.TimerHandle | None = None
        self.broken: Exception | None = None

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        assert isinstance(transport, asyncio.Transport)
        self._transport = transport

    def send(self, data: bytes) -> asyncio.Future[Any]:
        if self.broken is not None:
            raise _fresh(self.broken)
        due = self._loop.time() + self._link.timeout
        future: asyncio.Future[Any] = self._loop.create_future()
        self.waiting.append(future)
        self._due.append(due)
        if not self._out:
            self._loop.call_soon(self._flush)
        self._out.append(data)
        if self._watch is None:
            self._watch = self._loop.call_at(self._due[0], self._overdue)
        return future

    def _flush(self) -> None:
        out, self._out = self._out, []
        if self._transport is not None and self.broken is None and out:
            self._transport.write(b"".join(out))

    def _overdue(self) -> None:
        self._watch = None
        if not self.waiting:
            return
        due = self._due[0]
        if due <= self._loop.time():
            self.fail(RedisTimeoutError(f"no reply from Redis within {self._link.timeout:g} s"))
        else:
            self._watch = self._loop.call_at(due, self._overdue)

    def data_received(self, data: bytes) -> None:
        reader = self._reader
        reader.feed(data)
        waiting, due = self.waiting, self._due
        try:
            reply = reader.gets()
            while reply is not False:
                if not waiting:
                    raise RedisConnectionError("Redis sent a reply nobody asked for")
                future = waiting.popleft()
                due.popleft()
                if not future.done():
                    if isinstance(reply, hiredis.ReplyError):
                        future.set_exception(ResponseError(str(reply)))
                    else:
                        future.set_result(reply)
                reply = reader.gets()
        except (hiredis.ProtocolError, RedisConnectionError) as e:
            self.fail(RedisConnectionError(f"Redis protocol error: {e}"))

    def connection_lost(self, exc: Exception | None) -> None:
        self.fail(RedisConnectionError(f"connection to Redis lost: {exc or 'closed'}"))

    def fail(self, error: Exception) -> None:
        """Close the socket and fail every command awaiting a reply on it."""
        if self.broken is None:
            self.broken = error
        if self._watch is not None:
            self._watch.cancel()
            self._watch = None
        if self._transport is not None:
            self._transport.abort()
        self._due.clear()
        while self.waiting:
            future = self.waiting.popleft()
            if not future.done():
                future.set_exception(_fresh(error))  # one each: a traceback is per raise
        self._link.lost(self)


def _fresh(error: Exception) -> Exception:
    """A new exception like ``error``, for one more waiter to raise."""
    return type(error)(*error.args)


class _Link:
    """The socket to one Redis on one event loop, opened when first needed and again after it
    failed, and the :class:`Pipe` objects using it."""

    def __init__(self, endpoint: Endpoint, timeout: float) -> None:
        self.endpoint = endpoint
        self.timeout = timeout
        self.users = 0
        self._wire: _Wire | None = None
        self._opening: asyncio.Future[_Wire] | None = None
        self._closed = False

    def send(self, command: bytes) -> Awaitable[Any]:
        wire = self._wire
        if wire is None or wire.broken is not None:
            return self._send_opened(command)
        return wire.send(command)

    async def _send_opened(self, command: bytes) -> Any:
        wire = await self._open()
        return await wire.send(command)

    async def _open(self) -> _Wire:
        opening = self._opening
        if opening is None:
            # one set-up for every caller, which goes on if the caller that began it is
            # cancelled; once done, it is forgotten (whether or not anyone awaited it)
            opening = self._opening = asyncio.ensure_future(self._connect())
            opening.add_done_callback(self._opened)
        return await asyncio.shield(opening)

    def _opened(self, opening: asyncio.Future[_Wire]) -> None:
        if self._opening is opening:
            self._opening = None
        if not opening.cancelled():
            opening.exception()  # retrieved: a set-up nobody awaited any more is not an error

    async def _connect(self) -> _Wire:
        loop = asyncio.get_running_loop()
        endpoint = self.endpoint
        wire: _Wire | None = None
        hello: list[asyncio.Future[Any]] = []
        try:
            async with asyncio.timeout(self.timeout):
                if endpoint.path is not None:
                    _, wire = await loop.create_unix_connection(
                        lambda: _Wire(self), endpoint.path, ssl=endpoint.tls
                    )
                else:
                    _, wire = await loop.create_connection(
                        lambda: _Wire(self),
                        endpoint.host,
                        endpoint.port,
                        ssl=endpoint.tls,
                        server_hostname=endpoint.host if endpoint.tls else None,
                    )
                if endpoint.password is not None:
                    who = [endpoint.username] if endpoint.username else []
                    hello.append(wire.send(pack(["AUTH", *who, endpoint.password])))
                if endpoint.db:
                    hello.append(wire.send(pack(["SELECT", endpoint.db])))
                for future in hello:
                    await future
        except BaseException as e:
            for future in hello:  # the other answers of the set-up are not awaited now
                future.cancel()
            if wire is not None:
                wire.fail(RedisConnectionError("could not set up the connection to Redis"))
            if isinstance(e, TimeoutError):
                raise RedisTimeoutError(f"cannot reach Redis at {endpoint!r} in time") from None
            if isinstance(e, OSError):
                raise RedisConnectionError(f"cannot reach Redis at {endpoint!r}: {e}") from None
            raise
        if self._closed:  # the last user left while this was being set up
            wire.fail(RedisConnectionError("the connection to Redis is closed"))
            raise RedisConnectionError("the connection to Redis is closed")
        self._wire = wire
        return wire

    def lost(self, wire: _Wire) -> None:
        if self._wire is wire:
            self._wire = None

    def close(self) -> None:
        self._closed = True
        if self._wire is not None:
            self._wire.fail(RedisConnectionError("the connection to Redis is closed"))


_links: weakref.WeakKeyDictionary[asyncio.AbstractEventLoop, dict[tuple[str, float], _Link]] = (
    weakref.WeakKeyDictionary()
)


class Pipe:
    """What :class:`smsbridge.redis.RedisState` uses of a Redis client (``register_script``
    and ``aclose``, plus :meth:`execute` for any command), on the process's one pipelined
    socket to ``url`` in the running event loop: every ``Pipe`` of the same URL shares it, and
    the last to close closes it. Nothing connects until the first command; a closed ``Pipe``
    can be used again.

    Args:
        url: the Redis URL (see :func:`parse_url`).
        timeout: seconds to connect, and to wait for a reply.
    """

    def __init__(self, url: str, *, timeout: float = 2.0) -> None:
        self.endpoint = parse_url(url)
        self.timeout = timeout
        self._key = (url, timeout)
        self._link: _Link | None = None
        self._loop: asyncio.AbstractEventLoop | None = None

    def __repr__(self) -> str:
        return f"Pipe({self.endpoint!r})"

    def register_script(self, source: str) -> Script:
        """A Lua script, run by its SHA1 (sent whole if Redis does not know it)."""
        return Script(self, source)

    async def execute(self, *args: Arg) -> Any:
        """Run one command; its reply (bytes, int, list, or None)."""
        return await self.send(pack(args))

    def send(self, command: bytes) -> Awaitable[Any]:
        """Send one packed command; awaits its reply."""
        link = self._link
        if link is None or self._loop is not asyncio.get_running_loop():
            link = self._join()
        return link.send(command)

    def _join(self) -> _Link:
        self._leave()
        loop = asyncio.get_running_loop()
        links = _links.setdefault(loop, {})
        link = links.get(self._key)
        if link is None:
            link = links[self._key] = _Link(self.endpoint, self.timeout)
        link.users += 1
        self._link, self._loop = link, loop
        return link

    def _leave(self) -> None:
        link, loop = self._link, self._loop
        self._link = self._loop = None
        if link is None:
            return
        link.users -= 1
        if link.users == 0:
            if loop is not None and not loop.is_closed():  # an ended loop runs nothing more:
                # its socket is left to the collector
                link.close()
            links = _links.get(loop) if loop is not None else None
            if links is not None and links.get(self._key) is link:
                del links[self._key]

    async def aclose(self) -> None:
        """Stop using the socket (closed when no other ``Pipe`` uses it)."""
        self._leave()


_UNBOUND = object()


class Script:
    """A Lua script on a :class:`Pipe`: ``await script(keys, args)``, as redis-py's."""

    __slots__ = ("_bound", "_head", "_pipe", "_source")

    def __init__(self, pipe: Pipe, source: str) -> None:
        self._pipe = pipe
        self._source = source
        self._head = hashlib.sha1(source.encode()).hexdigest().encode()  # noqa: S324
        # the command up to its arguments, framed for the keys it was last called with,
        # where those are a tuple (an account's calls of a script name the same tuple);
        # none yet: a tuple of no keys is the one empty tuple, so it cannot stand for that
        self._bound: tuple[object, bytes] = (_UNBOUND, b"")

    async def __call__(
        self, keys: Sequence[Arg] = (), args: Sequence[Arg | Run] = (), client: Any = None
    ) -> Any:
        bound = self._bound
        if bound[0] is not keys or type(keys) is not tuple:
            framed = pack(["EVALSHA", self._head, len(keys), *keys])
            bound = self._bound = (keys, framed[framed.index(b"\r\n") + 2 :])
        try:
            return await self._pipe.send(pack(args, bound[1], 3 + len(keys)))
        except ResponseError as e:
            if not str(e).startswith("NOSCRIPT"):
                raise
        return await self._pipe.send(pack(["EVAL", self._source, len(keys), *keys, *args]))

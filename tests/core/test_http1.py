"""The clients' HTTP/1.1 transport: answers read whole however they are framed and split,
and its pool of kept-alive connections (reuse, its limit, stale and closed connections)."""

from __future__ import annotations

import asyncio
import gzip
import itertools
import logging

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from smsbridge import (
    ConfigurationError,
    ConnectError,
    ConnectionLostError,
    HttpRequest,
    HttpResponse,
    Timeouts,
    TransportTimeoutError,
)
from smsbridge._core.http1 import Http1Transport, _Connection

from .loopback import Served, frame, raw_server


class _Wire:
    """The socket a :class:`_Connection` writes to, in memory."""

    def __init__(self) -> None:
        self.written: list[bytes] = []
        self.closed = False
        self.unsent = 0

    def write(self, data: bytes) -> None:
        self.written.append(data)

    def get_write_buffer_size(self) -> int:
        return self.unsent

    def close(self) -> None:
        self.closed = True

    abort = close


def _feed(
    loop: asyncio.AbstractEventLoop, wire: bytes, cuts: list[int], limit: int = 1 << 20
) -> tuple[_Connection, asyncio.Future[HttpResponse], _Wire]:
    connection = _Connection(loop, limit, "gateway")
    socket = _Wire()
    connection.connection_made(socket)  # type: ignore[arg-type]
    answer = connection.start(b"POST / HTTP/1.1\r\n\r\n", loop.time() + 60, 60)
    points = sorted({c % (len(wire) + 1) for c in cuts} | {0, len(wire)})
    for a, b in itertools.pairwise(points):
        if not answer.done():
            connection.data_received(wire[a:b])
    if not answer.done():
        connection.eof_received()
        connection.connection_lost(None)
    return connection, answer, socket


@settings(max_examples=300, deadline=None)
@given(
    body=st.binary(max_size=3000),
    framing=st.sampled_from(["length", "chunked", "close", "gzip", "deflate"]),
    sizes=st.lists(st.integers(1, 700), max_size=8),
    cuts=st.lists(st.integers(0, 10_000), max_size=12),
    interim=st.booleans(),
    extra=st.lists(
        st.tuples(
            st.sampled_from(["X-Request", "Server", "Keep-Alive", "set-cookie"]),
            st.text("abcdefgh =,;0123456789", max_size=20).map(str.strip),
        ),
        max_size=3,
    ),
)
def test_an_answer_is_read_whole_however_it_is_framed_and_split(
    body: bytes,
    framing: str,
    sizes: list[int],
    cuts: list[int],
    interim: bool,
    extra: list[tuple[str, str]],
) -> None:
    """Content-Length, chunked (with extensions and trailers), read-until-close, gzip and
    deflate bodies, after an interim 100 or not, arriving in any pieces: the body comes out
    as it was, the headers lower-case, and the connection is kept only where it may be."""
    wire = frame(body, framing, sizes=sizes, extra=extra)
    if interim:
        wire = b"HTTP/1.1 100 Continue\r\n\r\n" + wire
    loop = asyncio.new_event_loop()
    try:
        connection, answer, socket = _feed(loop, wire, cuts)
        response = answer.result()
    finally:
        loop.close()
    assert response.status == 200
    assert response.body == body
    assert all(k == k.lower() for k in response.headers)
    assert socket.closed is (framing == "close") is connection.closed


@settings(max_examples=300, deadline=None)
@given(wire=st.binary(max_size=400), cuts=st.lists(st.integers(0, 1000), max_size=6))
def test_any_bytes_end_in_an_answer_or_a_lost_connection(wire: bytes, cuts: list[int]) -> None:
    """Whatever comes back, the exchange ends: an answer, or ConnectionLostError (the
    request may have been processed), and never another exception."""
    loop = asyncio.new_event_loop()
    try:
        _, answer, _ = _feed(loop, b"HTTP/1.1 200 OK\r\n" + wire, cuts)
        assert answer.done()
        if answer.exception() is not None:
            assert isinstance(answer.exception(), ConnectionLostError)
    finally:
        loop.close()


def test_a_second_answer_on_the_connection_reads_as_the_first() -> None:
    """A kept-alive connection reads each answer from a clean state."""
    loop = asyncio.new_event_loop()
    try:
        connection, first, socket = _feed(loop, frame(b"one", "chunked", sizes=[1]), [5, 40])
        assert first.result().body == b"one"
        second = connection.start(b"POST / HTTP/1.1\r\n\r\n", loop.time() + 60, 60)
        connection.data_received(frame(b"two!", "length"))
        assert second.result().body == b"two!"
        assert not connection.closed and not socket.closed
    finally:
        loop.close()


def test_an_answer_before_the_request_was_all_written_closes_the_connection() -> None:
    """A server may answer (a 401, say) while the body is still on its way; the rest of the
    body would then precede the next request, so the connection is not used again."""
    loop = asyncio.new_event_loop()
    try:
        connection = _Connection(loop, 1 << 20, "gateway")
        socket = _Wire()
        connection.connection_made(socket)  # type: ignore[arg-type]
        answer = connection.start(b"POST / HTTP/1.1\r\n\r\n", loop.time() + 60, 60)
        socket.unsent = 4096
        connection.data_received(frame(b'{"status": 401}', status="401 Unauthorized"))
        assert answer.result().status == 401
        assert connection.closed and socket.closed
    finally:
        loop.close()


def test_bytes_beyond_the_answer_close_the_connection() -> None:
    """Two answers to one request, or bytes nobody asked for: the connection's state is
    unknown, so it is not used again."""
    loop = asyncio.new_event_loop()
    try:
        wire = frame(b"one", "length") + frame(b"two", "length")
        connection, answer, socket = _feed(loop, wire, [])
        assert answer.result().body == b"one"
        assert connection.closed and socket.closed
        idle = _Connection(loop, 100, "gateway")
        idle.connection_made(_Wire())  # type: ignore[arg-type]
        idle.data_received(b"HTTP/1.1 408 Request Timeout\r\n\r\n")
        assert idle.closed
    finally:
        loop.close()


def test_an_answer_past_the_limit_is_not_read_and_its_connection_closed(
    caplog: pytest.LogCaptureFixture,
) -> None:
    """An answer longer than max_response_bytes (framed any way, or once decoded) is not
    read: the rest is not awaited, the connection is closed, and the request may have been
    processed. So is a body that does not decode whole."""
    loop = asyncio.new_event_loop()
    try:
        cases = [
            frame(b"x" * 5000, framing, sizes=[300] * 30)[:3000]
            for framing in ("length", "chunked", "close")
        ]
        cases.append(frame(b"x" * 5000, "gzip"))  # small on the wire, not decoded
        packed = gzip.compress(b"abcdefgh" * 100)[:-8]  # its end cut off
        cases.append(
            b"HTTP/1.1 200 OK\r\nContent-Encoding: gzip\r\nContent-Length: %d\r\n\r\n%s"
            % (len(packed), packed)
        )
        cases.append(b"HTTP/1.1 200 OK\r\nContent-Encoding: gzip\r\nContent-Length: 3\r\n\r\nabc")
        two = gzip.compress(b"hello ") + gzip.compress(b"world")  # what follows its end is lost
        cases.append(
            b"HTTP/1.1 200 OK\r\nContent-Encoding: gzip\r\nContent-Length: %d\r\n\r\n%s"
            % (len(two), two)
        )
        for wire in cases:
            with caplog.at_level(logging.WARNING):
                connection, answer, socket = _feed(loop, wire, [100, 900], limit=1000)
            assert isinstance(answer.exception(), ConnectionLostError)
            assert "unreadable" in str(answer.exception())
            assert connection.closed and socket.closed
        assert "not read" in caplog.text
    finally:
        loop.close()


def test_the_server_s_keep_alive_time_is_kept_within() -> None:
    """``Keep-Alive: timeout=5``: the connection is not used after 4 s idle, so that it is
    not written to as the server closes it."""
    loop = asyncio.new_event_loop()
    try:
        connection, answer, _ = _feed(
            loop, frame(b"{}", "length", extra=[("Keep-Alive", "timeout=5, max=99")]), []
        )
        assert answer.done() and connection.keepalive == 4.0
        connection, answer, _ = _feed(
            loop, frame(b"{}", "length", extra=[("Keep-Alive", "max=9")]), []
        )
        assert connection.keepalive == 10.0
    finally:
        loop.close()


def _ok(body: bytes = b"{}") -> bytes:
    return f"HTTP/1.1 200 OK\r\nContent-Length: {len(body)}\r\n\r\n".encode() + body


async def _answer_ok(served: Served, writer: asyncio.StreamWriter) -> bool:
    writer.write(_ok(served.requests[-1][1]))
    return True


async def test_requests_share_one_kept_alive_connection() -> None:
    """One request after another: one connection, each request whole on it."""
    async with raw_server(_answer_ok) as served:
        transport = Http1Transport(served.url)
        try:
            for i in range(20):
                response = await transport.send(HttpRequest("/api/send", b"%d" % i))
                assert response.body == b"%d" % i and response.status == 200
        finally:
            await transport.aclose()
    assert served.connections == 1 and len(served.requests) == 20
    head = served.requests[0][0].decode()
    assert head.startswith("POST /api/send HTTP/1.1\r\nHost: 127.0.0.1:")
    assert "\r\nContent-Length: 1\r\n" in head and "\r\nAccept-Encoding: identity\r\n" in head


async def test_the_pool_keeps_to_its_size() -> None:
    """Twelve requests at once on a pool of three: three connections at most, all answered."""
    release = asyncio.Event()

    async def held(served: Served, writer: asyncio.StreamWriter) -> bool:
        body = served.requests[-1][1]
        await release.wait()
        writer.write(_ok(body))
        return True

    async with raw_server(held) as served:
        transport = Http1Transport(served.url, max_connections=3)
        try:
            sends = [
                asyncio.ensure_future(transport.send(HttpRequest("/", b"%d" % i)))
                for i in range(12)
            ]
            await asyncio.sleep(0.2)
            assert served.open == 3 and len(served.requests) == 3
            release.set()
            bodies = [r.body for r in await asyncio.gather(*sends)]
        finally:
            await transport.aclose()
    assert sorted(bodies) == sorted(b"%d" % i for i in range(12))
    assert served.most_open == 3 and served.connections == 3


async def test_a_turn_given_to_a_cancelled_waiter_passes_on() -> None:
    """A request woken for a free connection and cancelled before it took it gives the turn
    to the next one waiting: nobody waits for a connection that is idle."""
    async with raw_server(_answer_ok) as served:
        transport = Http1Transport(served.url, max_connections=1)
        loop = asyncio.get_running_loop()
        try:
            held = await transport._acquire(loop)
            second = asyncio.ensure_future(transport._acquire(loop))
            third = asyncio.ensure_future(transport._acquire(loop))
            await asyncio.sleep(0)
            transport._release(held)
            second.cancel()
            assert await asyncio.wait_for(third, 1) is held
            assert second.cancelled()
        finally:
            await transport.aclose()


async def test_a_connection_the_server_closed_while_idle_is_not_used() -> None:
    """The server closes a kept-alive connection while it is idle: the next request goes on
    a new connection, whole, with no error."""

    async def once(served: Served, writer: asyncio.StreamWriter) -> bool:
        writer.write(_ok())
        return False  # closes after each answer, without saying so

    async with raw_server(once) as served:
        transport = Http1Transport(served.url)
        try:
            for _ in range(3):
                assert (await transport.send(HttpRequest("/", b"{}"))).status == 200
                await asyncio.sleep(0.05)
        finally:
            await transport.aclose()
    assert served.connections == 3 and len(served.requests) == 3


async def test_closing_ends_requests_under_way_and_refuses_later_ones() -> None:
    """aclose closes busy connections too: a request under way may have been processed; a
    later one is surely unsent, and nothing is reopened."""

    async def never(served: Served, writer: asyncio.StreamWriter) -> bool:
        await asyncio.sleep(10)
        return False

    async with raw_server(never) as served:
        transport = Http1Transport(served.url)
        under_way = asyncio.ensure_future(transport.send(HttpRequest("/", b"{}")))
        await asyncio.sleep(0.1)
        await transport.aclose()
        with pytest.raises(ConnectionLostError):
            await under_way
        with pytest.raises(ConnectError) as e:
            await transport.send(HttpRequest("/", b"{}"))
        assert e.value.maybe_processed is False
    assert served.connections == 1 and "closed" in repr(transport)


async def test_time_limits_bound_the_wait_for_an_answer() -> None:
    """No answer within the read time (or the request's own limit): TransportTimeoutError,
    in about that time, and the connection is not used again."""

    async def slow(served: Served, writer: asyncio.StreamWriter) -> bool:
        await asyncio.sleep(0.6)
        writer.write(_ok())
        return True

    async with raw_server(slow) as served:
        transport = Http1Transport(served.url, timeouts=Timeouts(connect=1, read=0.2, total=5))
        loop = asyncio.get_running_loop()
        try:
            for request in (HttpRequest("/", b"{}"), HttpRequest("/", b"{}").within(0.1)):
                started = loop.time()
                with pytest.raises(TransportTimeoutError):
                    await transport.send(request)
                assert 0.05 < loop.time() - started < 0.5
        finally:
            await transport.aclose()
    assert served.connections == 2


async def test_a_header_with_a_line_break_is_refused_before_anything_is_written() -> None:
    """A header value that would end the head early is a ConfigurationError; nothing goes."""
    async with raw_server(_answer_ok) as served:
        transport = Http1Transport(served.url)
        try:
            with pytest.raises(ConfigurationError, match="line breaks"):
                await transport.send(HttpRequest("/", b"{}", {"X-A": "1\r\nX-B: 2"}))
        finally:
            await transport.aclose()
    assert served.requests == []


@pytest.mark.parametrize("size", [0, -1, 1.5])
def test_a_pool_of_no_connections_is_refused(size: object) -> None:
    """max_connections must be a positive whole number."""
    with pytest.raises(ConfigurationError, match="max_connections"):
        Http1Transport("http://127.0.0.1:1", max_connections=size)  # type: ignore[arg-type]


async def test_a_connection_closed_while_its_request_waits_for_its_turn_is_not_replaced_late() -> (
    None
):
    """The request's turn (its rate slot) is the moment it must be written: where its kept
    connection closed while it waited, and no other is open at once, nothing is written (a
    new connection would carry it late), and it is surely unsent."""
    writers: list[asyncio.StreamWriter] = []

    async def keep(served: Served, writer: asyncio.StreamWriter) -> bool:
        writer.write(_ok())
        writers.append(writer)
        return True

    async def closed_meanwhile() -> None:
        writers[-1].close()
        await asyncio.sleep(0.1)

    async with raw_server(keep) as served:
        transport = Http1Transport(served.url)
        try:
            await transport.send(HttpRequest("/", b"{}"))
            with pytest.raises(ConnectError, match="while it waited for its turn") as e:
                await transport.send(HttpRequest("/", b"{}"), closed_meanwhile)
            assert e.value.maybe_processed is False
            assert (await transport.send(HttpRequest("/", b"{}"))).status == 200
        finally:
            await transport.aclose()
    assert len(served.requests) == 2 and served.connections == 2


async def test_a_server_that_stops_reading_does_not_hold_the_request() -> None:
    """The server half-closes and reads no more of a large body: the request ends in its
    time, and its socket is let go at once (a graceful close would wait for the unwritten
    bytes for ever)."""

    done = asyncio.Event()
    ended = asyncio.Event()

    async def stop_reading(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        await reader.readuntil(b"\r\n\r\n")
        writer.write_eof()
        await done.wait()
        writer.transport.abort()
        ended.set()

    server = await asyncio.start_server(stop_reading, "127.0.0.1", 0)
    url = f"http://127.0.0.1:{server.sockets[0].getsockname()[1]}"
    transport = Http1Transport(url, timeouts=Timeouts(connect=1, read=0.3, total=1))
    loop = asyncio.get_running_loop()
    try:
        started = loop.time()
        with pytest.raises((ConnectionLostError, TransportTimeoutError)) as e:
            await asyncio.wait_for(transport.send(HttpRequest("/", b"x" * (32 << 20))), 10)
        assert e.value.maybe_processed is True
        assert loop.time() - started < 2
        assert not transport._all
    finally:
        await transport.aclose()
        done.set()
        await asyncio.wait_for(ended.wait(), 5)
        server.close()
        await server.wait_closed()


async def test_a_header_http_cannot_carry_is_refused_without_showing_it() -> None:
    """A header value outside ISO-8859-1 (a token with a Cyrillic letter): a
    ConfigurationError that does not show the value, and nothing written."""
    async with raw_server(_answer_ok) as served:
        transport = Http1Transport(served.url)
        try:
            with pytest.raises(ConfigurationError) as e:
                await transport.send(HttpRequest("/", b"{}", {"Authorization": "Bearer SECRET-Ж"}))
            assert "SECRET" not in str(e.value) and "SECRET" not in repr(e.value)
            assert e.value.__cause__ is None and e.value.__suppress_context__
        finally:
            await transport.aclose()
    assert served.requests == []


async def test_a_connection_past_its_keep_alive_time_at_the_write_is_not_written_to() -> None:
    """``Keep-Alive: timeout=2``: kept 1 s. A request that took the connection in time but
    waited past that for its turn is not written on it (the server may be closing it)."""

    async def short(served: Served, writer: asyncio.StreamWriter) -> bool:
        writer.write(b"HTTP/1.1 200 OK\r\nKeep-Alive: timeout=2\r\nContent-Length: 2\r\n\r\n{}")
        return True

    async def slow_turn() -> None:
        await asyncio.sleep(1.1)

    async with raw_server(short) as served:
        transport = Http1Transport(served.url)
        try:
            await transport.send(HttpRequest("/", b"{}"))
            with pytest.raises(ConnectError, match="waited for its turn"):
                await transport.send(HttpRequest("/", b"{}"), slow_turn)
        finally:
            await transport.aclose()
    assert len(served.requests) == 1


@pytest.mark.parametrize("limit", [0.0, -5.0, float("nan")])
async def test_a_request_with_no_time_left_is_not_written(limit: float) -> None:
    """A time limit already spent (or not a number) writes nothing: surely unsent."""
    async with raw_server(_answer_ok) as served:
        transport = Http1Transport(served.url)
        try:
            await transport.send(HttpRequest("/", b"{}"))
            with pytest.raises(ConnectError, match="no time was left"):
                await transport.send(HttpRequest("/", b"{}").within(limit))
        finally:
            await transport.aclose()
    assert len(served.requests) == 1


async def test_a_connection_that_carried_nothing_is_no_fresher() -> None:
    """A request whose turn never came (its ``ready`` hook raised) hands its connection back
    as idle as it was: the server's idle clock ran on, so it is not kept past its time."""

    async def short(served: Served, writer: asyncio.StreamWriter) -> bool:
        writer.write(b"HTTP/1.1 200 OK\r\nKeep-Alive: timeout=2\r\nContent-Length: 2\r\n\r\n{}")
        return True

    async def refused() -> None:
        raise RuntimeError("no slot")

    async with raw_server(short) as served:
        transport = Http1Transport(served.url)
        try:
            await transport.send(HttpRequest("/", b"{}"))
            await asyncio.sleep(0.6)
            with pytest.raises(RuntimeError):
                await transport.send(HttpRequest("/", b"{}"), refused)
            await asyncio.sleep(0.5)
            assert (await transport.send(HttpRequest("/", b"{}"))).status == 200
        finally:
            await transport.aclose()
    assert len(served.requests) == 2 and served.connections == 2


@pytest.mark.parametrize("root", ["/api", "/api/", ""])
async def test_a_base_url_s_path_is_the_root_of_every_request(root: str) -> None:
    """``http://host/api`` and ``http://host/api/`` both send ``/sms/send`` to
    ``/api/sms/send`` (a join by the rules for links would drop ``api``)."""
    async with raw_server(_answer_ok) as served:
        transport = Http1Transport(served.url + root)
        try:
            await transport.send(HttpRequest("/sms/send", b"{}"))
        finally:
            await transport.aclose()
    expected = "/api/sms/send" if root else "/sms/send"
    assert served.requests[0][0].startswith(f"POST {expected} HTTP/1.1\r\n".encode())

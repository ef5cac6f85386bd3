"""The clients' transport over real loopback sockets: URL policy, error mapping (sent or
not), redirects, TLS, and no credentials anywhere they could leak. How it reads answers and
keeps its connections: ``test_http1.py``."""

from __future__ import annotations

import asyncio
import logging
import socket
import ssl
import subprocess
from collections.abc import AsyncIterator
from pathlib import Path

import pytest
from aiohttp import web

from smsbridge import (
    ConfigurationError,
    ConnectError,
    ConnectionLostError,
    GatewayError,
    HttpRequest,
    SmsClub,
    Status,
    Timeouts,
    TransportTimeoutError,
)
from smsbridge._core.http1 import Http1Transport
from smsbridge._core.transport import check_base_url
from smsbridge.testing import FakeClock

from ..helpers import TOKEN, ua_numbers
from .loopback import Served, frame, raw_server


@pytest.mark.parametrize(
    "url",
    ["http://127.0.0.1:8080", "http://localhost", "http://[::1]:9000", "https://example.com"],
)
def test_safe_base_urls_are_accepted(url: str) -> None:
    """HTTPS anywhere and plain HTTP on loopback are fine, and neither is insecure."""
    parsed, insecure = check_base_url(url, allow_insecure_http=False)
    assert str(parsed) == url and insecure is False
    assert SmsClub(TOKEN, base_url=url).base_url == parsed


@pytest.mark.parametrize(
    ("url", "message"),
    [
        ("http://im.smsclub.mobi", "refusing plain http:// to im.smsclub.mobi"),
        ("http://10.0.0.5", "refusing plain http://"),
        ("ftp://example.com", "absolute http:// or https://"),
        ("/relative", "absolute http:// or https://"),
        ("https://user:pw@example.com", "must not carry credentials"),
        ("https://example.com/api?key=1", "must not carry a query"),
        ("https://example.com/api#v2", "or a fragment"),
        ("https://example.com/?", "must not carry a query"),
    ],
)
def test_unsafe_base_urls_are_refused(url: str, message: str) -> None:
    """Plain HTTP off loopback, other schemes and embedded credentials are refused; so is a
    query or a fragment, which every call's own path and query would drop without a word."""
    with pytest.raises(ConfigurationError, match=message):
        SmsClub(TOKEN, base_url=url)
    if url.startswith("http://"):
        SmsClub(TOKEN, base_url=url, allow_insecure_http=True)


def test_settings_come_from_the_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    """Token and URL default to SMSBRIDGE_SMSCLUB_TOKEN and SMSBRIDGE_SMSCLUB_URL."""
    monkeypatch.delenv("SMSBRIDGE_SMSCLUB_TOKEN", raising=False)
    with pytest.raises(ConfigurationError, match="SMSBRIDGE_SMSCLUB_TOKEN"):
        SmsClub()
    monkeypatch.setenv("SMSBRIDGE_SMSCLUB_TOKEN", "from-env")
    monkeypatch.setenv("SMSBRIDGE_SMSCLUB_URL", "http://127.0.0.1:1234")
    sms = SmsClub()
    assert str(sms.base_url) == "http://127.0.0.1:1234"
    assert "from-env" not in repr(sms)


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@pytest.fixture
async def misbehaving() -> AsyncIterator[str]:
    """A loopback server with a hanging, a resetting and a redirecting endpoint."""
    release = asyncio.Event()

    async def hang(request: web.Request) -> web.Response:
        await request.read()
        await release.wait()
        return web.Response()

    async def reset(request: web.Request) -> web.Response:
        await request.read()
        assert request.transport is not None
        request.transport.abort()
        return web.Response()

    async def redirect(request: web.Request) -> web.Response:
        raise web.HTTPFound("https://elsewhere.example/")

    app = web.Application()
    app.router.add_post("/hang", hang)
    app.router.add_post("/reset", reset)
    app.router.add_post("/redirect", redirect)
    runner = web.AppRunner(app, shutdown_timeout=0.1)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    yield f"http://127.0.0.1:{runner.addresses[0][1]}"
    release.set()
    await runner.cleanup()


async def test_refused_connection_is_surely_unsent() -> None:
    """Nothing listening: ConnectError, maybe_processed False."""
    transport = Http1Transport(f"http://127.0.0.1:{_free_port()}")
    try:
        with pytest.raises(ConnectError) as e:
            await transport.send(HttpRequest("/sms/send", b"{}"))
        assert e.value.maybe_processed is False
    finally:
        await transport.aclose()


async def test_read_timeout_and_reset_may_have_been_processed(misbehaving: str) -> None:
    """A hang after the request and a reset after it are both ambiguous."""
    transport = Http1Transport(misbehaving, timeouts=Timeouts(connect=1, read=0.3, total=5))
    try:
        with pytest.raises(TransportTimeoutError) as timeout:
            await transport.send(HttpRequest("/hang", b"{}"))
        assert timeout.value.maybe_processed is True
        with pytest.raises(ConnectionLostError) as lost:
            await transport.send(HttpRequest("/reset", b"{}"))
        assert lost.value.maybe_processed is True
    finally:
        await transport.aclose()


async def test_a_requests_own_time_limit_ends_its_exchange(misbehaving: str) -> None:
    """A repeat relying on the gateway's duplicate guard is given only what is left of the
    guard: the transport gives up on it then, however long its own timeouts."""
    transport = Http1Transport(misbehaving, timeouts=Timeouts(connect=1, read=30, total=60))
    assert transport.time_limits is True
    try:
        started = asyncio.get_running_loop().time()
        with pytest.raises(TransportTimeoutError):
            await transport.send(HttpRequest("/hang", b"{}").within(0.3))
        assert asyncio.get_running_loop().time() - started < 5
    finally:
        await transport.aclose()


async def test_redirects_are_not_followed(misbehaving: str) -> None:
    """A 302 comes back as is; for a send it means a wrong base URL, and nothing is sent."""
    transport = Http1Transport(misbehaving)
    try:
        response = await transport.send(HttpRequest("/redirect", b"{}"))
        assert response.status == 302
    finally:
        await transport.aclose()
    async with SmsClub(TOKEN, base_url=misbehaving + "/redirect") as sms:
        report = await sms.send("hi", to=["380501234567", "380501234568"], sender="Shop")
    assert report.failed == 2
    assert isinstance(report.error, GatewayError) and report.error.account_wide


@pytest.fixture(scope="module")
def self_signed(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path]:
    """A throwaway self-signed certificate for 127.0.0.1."""
    folder = tmp_path_factory.mktemp("tls")
    cert, key = folder / "cert.pem", folder / "key.pem"
    subprocess.run(
        [
            "openssl",
            "req",
            "-x509",
            "-newkey",
            "rsa:2048",
            "-nodes",
            "-days",
            "1",
            "-subj",
            "/CN=127.0.0.1",
            "-addext",
            "subjectAltName=IP:127.0.0.1",
            "-keyout",
            str(key),
            "-out",
            str(cert),
        ],
        check=True,
        capture_output=True,
    )
    return cert, key


async def test_tls_is_verified_by_default(self_signed: tuple[Path, Path]) -> None:
    """An untrusted certificate is refused (unsent); trusting it explicitly works."""
    cert, key = self_signed
    server_ctx = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    server_ctx.load_cert_chain(cert, key)

    async def ok(request: web.Request) -> web.Response:
        return web.json_response({"success_request": {"info": {"money": "1", "currency": "UAH"}}})

    app = web.Application()
    app.router.add_post("/sms/balance", ok)
    runner = web.AppRunner(app)
    await runner.setup()
    await web.TCPSite(runner, "127.0.0.1", 0, ssl_context=server_ctx).start()
    url = f"https://127.0.0.1:{runner.addresses[0][1]}"
    try:
        async with SmsClub(TOKEN, base_url=url) as sms:
            with pytest.raises(ConnectError) as e:
                await sms.balance()
            assert e.value.maybe_processed is False
        trusting = ssl.create_default_context(cafile=str(cert))
        async with SmsClub(TOKEN, base_url=url, ssl_context=trusting) as sms:
            assert str((await sms.balance()).money) == "1"
    finally:
        await runner.cleanup()


ANSWER = b'{"success_request": {"info": {"1": "380501234567"}}}'


async def _hang_up(served: Served, writer: asyncio.StreamWriter) -> bool:
    return False


async def _half(served: Served, writer: asyncio.StreamWriter) -> bool:
    writer.write(b'HTTP/1.1 200 OK\r\nContent-Length: 100\r\n\r\n{"succ')
    return False


async def _garbage(served: Served, writer: asyncio.StreamWriter) -> bool:
    writer.write(b"SMTP ready\r\n\r\n")
    return True


async def _silence(served: Served, writer: asyncio.StreamWriter) -> bool:
    await asyncio.sleep(5)
    return False


async def _reset(served: Served, writer: asyncio.StreamWriter) -> bool:
    transport = writer.transport
    assert isinstance(transport, asyncio.Transport)
    transport.abort()
    return False


@pytest.mark.parametrize(
    ("behaviour", "status"),
    [
        (None, Status.FAILED),  # nothing listens
        (_hang_up, Status.UNCERTAIN),
        (_half, Status.UNCERTAIN),
        (_garbage, Status.UNCERTAIN),
        (_silence, Status.UNCERTAIN),
        (_reset, Status.UNCERTAIN),
    ],
)
async def test_failures_map_to_sent_or_unsent(behaviour: object, status: Status) -> None:
    """A connection refused is tried again, then failed; a request written and then hung up
    on, half answered, answered with something not HTTP, not answered in time or reset may
    have been processed: uncertain. SMS Club's duplicate guard lets such a request be tried
    again under the same key; each try is written once."""
    timeouts = Timeouts(connect=1, read=0.3, total=2)
    if behaviour is None:
        async with SmsClub(
            TOKEN, base_url=f"http://127.0.0.1:{_free_port()}", clock=FakeClock()
        ) as sms:
            report = await sms.send("hi", to=["380501234567"], sender="Shop")
        assert report.outcomes[0].status is status and report.requests == 5
        return
    async with (
        raw_server(behaviour) as served,  # type: ignore[arg-type]
        SmsClub(TOKEN, base_url=served.url, clock=FakeClock(), timeouts=timeouts) as sms,
    ):
        report = await sms.send("hi", to=["380501234567"], sender="Shop")
    assert report.outcomes[0].status is status
    assert report.requests == len(served.requests) == 5
    assert len({body for _, body in served.requests}) == 1


@pytest.mark.parametrize("framing", ["length", "chunked", "gzip", "close"])
@pytest.mark.parametrize(
    ("status", "body", "expected"),
    [
        ("200 OK", ANSWER, Status.ACCEPTED),
        (
            "200 OK",
            b'{"success_request": {"add_info": {"380501234567": "black list"}}}',
            Status.REJECTED,
        ),
        ("400 Bad Request", b'{"status": 400, "message": "bad"}', Status.REJECTED),
        ("401 Unauthorized", b'{"status": 401, "message": "no"}', Status.FAILED),
        ("503 Service Unavailable", b"<html>down</html>", Status.UNCERTAIN),
        ("200 OK", b"<html>oops</html>", Status.UNCERTAIN),
    ],
)
async def test_answers_through_the_real_transport(
    framing: str, status: str, body: bytes, expected: Status
) -> None:
    """Recorded answers, framed each way, reach the adapter whole and map end to end."""

    async def answer(served: Served, writer: asyncio.StreamWriter) -> bool:
        writer.write(frame(body, framing, status=status))
        return framing != "close"

    async with (
        raw_server(answer) as served,
        SmsClub(TOKEN, base_url=served.url, clock=FakeClock()) as sms,
    ):
        report = await sms.send("hi", to=["380501234567"], sender="Shop")
    assert report.outcomes[0].status is expected
    head, sent = served.requests[0]
    assert head.startswith(b"POST /sms/send HTTP/1.1\r\n")
    assert b"\r\nauthorization: bearer test-token\r\n" in head.lower()
    assert b"380501234567" in sent


async def test_credentials_never_reach_logs_reprs_or_errors(
    caplog: pytest.LogCaptureFixture,
) -> None:
    """With debug logging on and failures everywhere, the token appears nowhere."""
    secret = "s3cr3t-TOKEN-value"

    async def answer(served: Served, writer: asyncio.StreamWriter) -> bool:
        if served.requests[-1][0].startswith(b"POST /sms/send "):
            writer.write(frame(b'{"status": 401, "message": "no"}', status="401 Unauthorized"))
            return True
        return False  # the balance: hung up on

    with caplog.at_level(logging.DEBUG):
        async with (
            raw_server(answer) as served,
            SmsClub(secret, base_url=served.url, clock=FakeClock()) as sms,
        ):
            report = await sms.send("hi", to=list(ua_numbers(3)), sender="Shop")
            with pytest.raises(ConnectionLostError) as e:
                await sms.balance()
            texts = [repr(sms), repr(sms.gateway), repr(report), str(e.value), repr(e.value)]
    texts += [r.getMessage() for r in caplog.records]
    assert all(secret not in text for text in texts)
    assert secret.encode() in served.requests[0][0]  # it did go where it belongs


async def test_a_time_limit_that_runs_out_before_the_write_is_no_send() -> None:
    """aiohttp counts its total time limit from the call, through the wait for the request's
    turn (its ``ready`` hook: a rate slot, a renewal, the journal's intent). A limit that
    ran out there wrote nothing: surely unsent and tried again, where it was read as a
    timeout after the request was sent (``uncertain``, and never repeated)."""
    from smsbridge import Batch, RetryPolicy
    from smsbridge.testing import FakeSmsClub

    class SlowBefore:
        def __init__(self) -> None:
            self.calls = self.unsent_calls = 0

        async def before(self, batch: Batch) -> None:
            self.calls += 1
            if self.calls == 1:  # a stall once (the journal's disk, say)
                await asyncio.sleep(0.8)

        async def unsent(self, batch: Batch) -> None:
            self.unsent_calls += 1

        async def after(self, batch: Batch, statuses: object, details: object) -> None:
            pass

    async with (
        FakeSmsClub(tokens=[TOKEN], rate_limit=None) as fake,
        SmsClub(
            TOKEN,
            base_url=fake.url,
            timeouts=Timeouts(connect=0.3, read=0.3, total=0.5),
            retry=RetryPolicy(backoff=0.01, max_backoff=0.01),
        ) as sms,
    ):
        observer = SlowBefore()
        report = await sms.send("hi", to=["380501234567"], sender="Shop", observer=observer)
        assert [o.status for o in report.outcomes] == [Status.ACCEPTED]
        # the intent begun (and cut short) is closed before it is told again
        assert (report.requests, observer.calls, observer.unsent_calls) == (2, 2, 1)
        assert len(fake.sent) == 1


async def test_a_request_whose_connection_drops_after_the_write_is_not_written_again() -> None:
    """A kept-alive connection that drops once the request is written may have carried it:
    the request is not written again on another connection (a general client does that for
    a PUT), it is ``ConnectionLostError``."""

    async def drop_the_second(served: Served, writer: asyncio.StreamWriter) -> bool:
        if len(served.requests) == 1:
            writer.write(frame(b"{}"))
            return True
        return False

    async with raw_server(drop_the_second) as served:
        transport = Http1Transport(served.url, timeouts=Timeouts(connect=5, read=0.5, total=1))
        try:
            await transport.send(HttpRequest("/ok", b"{}", method="PUT"))
            with pytest.raises(ConnectionLostError) as e:
                await transport.send(HttpRequest("/drop", b"{}", method="PUT"))
            assert e.value.maybe_processed is True
        finally:
            await transport.aclose()
    assert [head.split(b" ")[1] for head, _ in served.requests] == [b"/ok", b"/drop"]
    assert served.connections == 1


async def test_a_client_closed_under_a_running_send_stops_it_at_once() -> None:
    """Closing the client while a send runs (from its own callback, here) ends the send: what
    was accepted stays so, nothing more is written, and every recipient left is ``failed``
    with the reason, the send's error saying why. It was tried again, batch by batch, for as
    long as the retry policy allowed, against a transport that could no longer send."""
    from smsbridge import Outcome
    from smsbridge.testing import FakeSmsClub

    async with FakeSmsClub(tokens=[TOKEN], rate_limit=None) as fake:
        sms = SmsClub(TOKEN, base_url=fake.url, clock=FakeClock())
        seen: list[Outcome] = []

        async def close_after_the_first_batch(outcome: Outcome) -> None:
            seen.append(outcome)
            if len(seen) == 100:
                await sms.aclose()

        async with sms:
            report = await sms.send(
                "hi",
                to=list(ua_numbers(3000)),
                sender="Shop",
                on_outcome=close_after_the_first_batch,
            )
    assert isinstance(report.error, ConnectError) and report.error.account_wide
    # what was on the wire as the connections closed may have gone: uncertain
    assert 100 <= report.accepted <= len(fake.sent) <= report.accepted + report.uncertain
    assert report.accepted + report.failed + report.uncertain == 3000
    assert report.requests < 45  # each batch written or refused once, none tried again
    assert all(
        "client was closed" in (o.reason or "")
        for o in report.outcomes
        if o.status is Status.FAILED
    )


@pytest.mark.parametrize("client", ["SmsClub", "SmsPlus"])
def test_a_token_an_http_header_cannot_carry_is_refused_when_the_client_is_made(
    client: str,
) -> None:
    """A token with a letter outside ISO-8859-1 (a Cyrillic look-alike pasted in) travels in
    the Authorization header, which cannot carry it: refused at once, without showing it. A
    Webcom token, which travels in the JSON body, may hold it."""
    from smsbridge import SmsPlus, Webcom

    with pytest.raises(ConfigurationError, match="cannot carry") as e:
        SmsPlus("SECRET-тест") if client == "SmsPlus" else SmsClub("SECRET-тест")
    assert "SECRET" not in str(e.value) and "SECRET" not in repr(e.value)
    Webcom("SECRET-тест")


async def test_a_call_on_a_closed_client_says_it_was_closed() -> None:
    """A client closed (before a call, or while it ran) says so, not that it was never
    opened."""
    sms = SmsClub(TOKEN, base_url=f"http://127.0.0.1:{_free_port()}")
    with pytest.raises(ConfigurationError, match="not open"):
        await sms.send("hi", to=["380501234567"], sender="Shop")
    async with sms:
        pass
    with pytest.raises(ConfigurationError, match="was closed"):
        await sms.send("hi", to=["380501234567"], sender="Shop")

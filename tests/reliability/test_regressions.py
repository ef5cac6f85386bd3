"""The seven silent-loss paths that adversarial runs found, each replayed through the public
API (every one of these failed before its fix): a Webcom 429 with an error body, a Redis
stall, a cancelled send, a large or deeply nested delivery report, a stop while batches wait
for a rate slot, a cold connection's late arrival, and a kill -9 during a 429 back-off."""

from __future__ import annotations

import asyncio
import json
import signal
import sqlite3
from collections.abc import AsyncIterator, Sequence
from pathlib import Path

import aiohttp
import anyio
import anyio.lowlevel
import msgspec
import pytest
from aiohttp import web

from smsbridge import (
    DeliveryReport,
    HttpRequest,
    HttpResponse,
    MockTransport,
    Outcome,
    SlidingWindowLimiter,
    SmsClub,
    Status,
    Webcom,
    report_handler,
)
from smsbridge.testing import FakeClock, FakeProcess, Faults, busiest_window
from smsbridge.testing._sim.loop import LoopClock, VirtualLoop, World

from ..conftest import RedisServer, free_port
from ..helpers import EXE, TOKEN, clean_env, csv_file, last_json, run, ua_numbers


def webcom_accepting(request: HttpRequest) -> HttpResponse:
    """A Webcom that accepts every phone of the envelope."""
    body = json.loads(request.body)
    phones = [p for m in body["message"] for p in m["phones"]]
    info = [{"state": "send", "id_sms": 1000 + n} for n in range(len(phones))]
    return HttpResponse(200, json.dumps({"information": info}).encode())


async def test_a_webcom_429_with_an_error_body_is_a_throttle_not_a_refusal(
    clock: FakeClock,
) -> None:
    """HTTP 429 with {"error": "Too many requests"}: retried, never `rejected`."""
    throttled = [HttpResponse(429, b'{"error": "Too many requests"}')] * 3

    def handler(request: HttpRequest) -> HttpResponse:
        return throttled.pop() if throttled else webcom_accepting(request)

    async with Webcom(
        TOKEN, base_url="http://127.0.0.1:9", transport=MockTransport(handler), clock=clock
    ) as sms:
        report = await sms.send("hi", to=[f"7916{i:07d}" for i in range(300)], sender="Shop")
    assert (report.accepted, report.rejected) == (300, 0)


class FreezingProxy:
    """A TCP proxy in front of Redis whose answers can be frozen: commands still reach the
    server (and are carried out), the replies wait, as with a Redis that stalls. Armed, it
    freezes at the next command that names a duplicate-window key."""

    def __init__(self, upstream: int) -> None:
        self.upstream = upstream
        self.port = free_port()
        self.frozen_until = 0.0
        self.armed: float | None = None
        self._server: asyncio.Server | None = None

    async def __aenter__(self) -> FreezingProxy:
        self._server = await asyncio.start_server(self._serve, "127.0.0.1", self.port)
        return self

    async def __aexit__(self, *exc: object) -> None:
        assert self._server is not None
        self._server.close()

    def arm(self, seconds: float) -> None:
        self.armed = seconds

    async def _serve(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        up_reader, up_writer = await asyncio.open_connection("127.0.0.1", self.upstream)

        async def pump(src: asyncio.StreamReader, dst: asyncio.StreamWriter, hold: bool) -> None:
            try:
                while data := await src.read(65536):
                    if not hold and self.armed is not None and b":w:" in data:
                        self.frozen_until = asyncio.get_running_loop().time() + self.armed
                        self.armed = None
                    if hold:
                        wait = self.frozen_until - asyncio.get_running_loop().time()
                        if wait > 0:
                            await asyncio.sleep(wait)
                    dst.write(data)
                    await dst.drain()
            except (ConnectionError, OSError):
                pass
            finally:
                dst.close()

        await asyncio.gather(pump(reader, up_writer, False), pump(up_reader, writer, True))


async def test_a_redis_stall_does_not_turn_our_own_reservation_into_suppressed(
    private_redis: RedisServer,
) -> None:
    """Redis carries out the window reservation, but its answer comes after the client gave
    up; the retry finds the key. It is this send's own: the recipients go, once."""
    sent: list[str] = []

    def handler(request: HttpRequest) -> HttpResponse:
        phones = json.loads(request.body)["phone"]
        sent.extend(phones)
        info = {f"id-{p}": p for p in phones}
        return HttpResponse(200, json.dumps({"success_request": {"info": info}}).encode())

    async with FreezingProxy(private_redis.port) as proxy:
        url = f"redis://127.0.0.1:{proxy.port}/0"
        async with SmsClub(TOKEN, transport=MockTransport(handler), redis_url=url) as sms:
            await sms.send("Warm-up", to=["380509999999"], sender="Shop")  # connections, scripts
            sent.clear()
            proxy.arm(3.0)  # longer than the client's 2 s socket timeout
            report = await sms.send("Sale", to=list(ua_numbers(300)), sender="Shop")
            again = await sms.send("Sale", to=list(ua_numbers(300)), sender="Shop")
    assert (report.accepted, report.suppressed) == (300, 0)
    assert sorted(sent) == sorted(ua_numbers(300))  # each once
    assert again.suppressed == 300  # and the window holds them


async def test_a_cancelled_send_settles_everyone_it_read_and_blocks_nobody(
    clock: FakeClock,
) -> None:
    """Cancel a send while two requests hang on the wire: those recipients are `uncertain`,
    the others it had read `failed`, every one reported; a new send of the same list within
    the window suppresses only the uncertain ones and sends the rest."""
    release, two_in_flight = anyio.Event(), anyio.Event()
    in_flight = [0]

    async def handler(request: HttpRequest) -> HttpResponse:
        phones = json.loads(request.body)["phone"]
        if not release.is_set():
            in_flight[0] += 1
            if in_flight[0] == 2:
                two_in_flight.set()
            await release.wait()
        info = {f"id-{p}": p for p in phones}
        return HttpResponse(200, json.dumps({"success_request": {"info": info}}).encode())

    outcomes: list[Outcome] = []
    async with SmsClub(TOKEN, transport=MockTransport(handler), clock=clock, concurrency=2) as sms:
        task = asyncio.ensure_future(
            sms.send(
                "Sale", to=ua_numbers(1000), sender="Shop", on_outcome=outcomes.append, keep="none"
            )
        )
        await two_in_flight.wait()
        task.cancel()
        with pytest.raises(asyncio.CancelledError):
            await task
        release.set()
        read = {o.index for o in outcomes}
        assert len(outcomes) == len(read) >= 200  # one outcome each, in-flight included
        uncertain = [o for o in outcomes if o.status is Status.UNCERTAIN]
        assert len(uncertain) == 200
        assert {o.status for o in outcomes} == {Status.UNCERTAIN, Status.FAILED}
        again = await sms.send("Sale", to=list(ua_numbers(1000)), sender="Shop")
    assert (again.suppressed, again.accepted) == (200, 800)


async def _report_server(max_bytes: int = 1024 * 1024) -> tuple[web.AppRunner, str, list[int]]:
    stored: list[int] = []

    async def store(reports: Sequence[DeliveryReport]) -> list[str]:
        stored.extend(int(r.message_id) for r in reports)
        return [r.message_id for r in reports]

    app = web.Application(client_max_size=max_bytes * 2)
    app.router.add_post("/reports", report_handler(store, max_bytes=max_bytes))
    runner = web.AppRunner(app, access_log=None)
    await runner.setup()
    port = free_port()
    await web.TCPSite(runner, "127.0.0.1", port).start()
    return runner, f"http://127.0.0.1:{port}/reports", stored


async def test_a_large_report_arriving_slowly_is_read_whole() -> None:
    """A 600 KB delivery report sent in small, slow pieces is read to its end and every id is
    acknowledged; a deeply nested body is a 400, not a 500."""
    reports = [
        {"id_sms": 100_000 + i, "time": "2026-11-22 12:00:00", "state": "deliver"}
        for i in range(12_000)
    ]
    body = msgspec.json.encode(reports)
    assert len(body) > 600_000

    async def pieces() -> AsyncIterator[bytes]:
        for start in range(0, len(body), 16_384):
            yield body[start : start + 16_384]
            await asyncio.sleep(0.002)

    runner, url, stored = await _report_server()
    try:
        async with aiohttp.ClientSession() as session:
            async with session.post(url, data=pieces()) as response:
                assert response.status == 200
                echoed = {e["id_sms"] for e in await response.json()}
            assert echoed == {r["id_sms"] for r in reports}
            nested = b"[" * 100_000 + b"]" * 100_000
            async with session.post(url, data=nested) as response:
                assert response.status == 400
    finally:
        await runner.cleanup()
    assert len(stored) == 12_000


async def test_stopping_writes_nothing_more_even_for_batches_waiting_for_a_slot(
    clock: FakeClock,
) -> None:
    """Batches wait for rate slots when the stop comes (Ctrl-C): once it is set, no request
    is written, not even one whose slot comes up a moment later."""
    stop = anyio.Event()
    written_at_stop: list[int] = []

    async def handler(request: HttpRequest) -> HttpResponse:
        await anyio.lowlevel.checkpoint()  # the others meanwhile take their slots, or wait for one
        if len(transport.requests) >= 12 and not stop.is_set():
            stop.set()  # in the second second: the user presses Ctrl-C
            written_at_stop.append(len(transport.requests))
        phones = json.loads(request.body)["phone"]
        info = {f"id-{p}": p for p in phones}
        return HttpResponse(200, json.dumps({"success_request": {"info": info}}).encode())

    transport = MockTransport(handler)
    async with SmsClub(TOKEN, transport=transport, clock=clock, concurrency=10) as sms:
        report = await sms.send("Sale", to=ua_numbers(2000), sender="Shop", stop=stop)
    assert len(transport.requests) == written_at_stop[0]
    assert report.stopped and report.accepted == 100 * len(transport.requests)


class ColdStartTransport:
    """Connections that go cold after 0.2 s idle; opening one takes 0.3 s before the request
    can be written. Records when each request arrives at the gateway."""

    def __init__(self) -> None:
        self.idle: list[float] = []
        self.arrivals: list[float] = []

    async def send(self, request: HttpRequest, ready: object = None) -> HttpResponse:
        now = asyncio.get_running_loop().time()
        warm = [t for t in self.idle if now - t < 0.2]
        if warm:
            self.idle.remove(warm[0])
        else:
            await asyncio.sleep(0.3)
        if callable(ready):
            await ready()
        self.arrivals.append(asyncio.get_running_loop().time())
        await asyncio.sleep(0.05)
        self.idle.append(asyncio.get_running_loop().time())
        phones = json.loads(request.body)["phone"]
        info = {f"id-{p}": p for p in phones}
        return HttpResponse(200, json.dumps({"success_request": {"info": info}}).encode())

    async def aclose(self) -> None:
        pass


def test_the_gateway_counts_arrivals_and_cold_connections_arrive_late() -> None:
    """Bursts separated by pauses: the first requests of a burst must open connections and
    arrive 0.3 s after their slot; no sliding second at the gateway holds more than 9."""
    world = World()
    loop = VirtualLoop(world)
    transport = ColdStartTransport()

    async def main() -> None:
        limiter = SlidingWindowLimiter(9, clock=LoopClock())
        async with SmsClub(
            TOKEN, transport=transport, clock=LoopClock(), limiter=limiter, batch_size=1
        ) as sms:
            for burst in range(6):
                await sms.send("Sale", to=list(ua_numbers(12, burst * 100)), sender="Shop")
                await asyncio.sleep(0.25 if burst % 2 else 0.9)

    try:
        loop.run_until_complete(main())
    finally:
        loop.close()
    assert len(transport.arrivals) == 72
    assert busiest_window(transport.arrivals, 1.0) <= 9


async def test_a_kill_during_a_429_back_off_leaves_nobody_uncertain(tmp_path: Path) -> None:
    """The gateway answers 429 with Retry-After: 60; the campaign is killed while it waits.
    The gateway surely processed nothing: the resumed campaign sends everyone, and the
    journal says `accepted`, never `uncertain`."""
    path = csv_file(tmp_path / "to.csv", [f"38050{i:07d}" for i in range(300)], "phone")
    journal = tmp_path / "c.journal"
    throttle = Faults(rate_limited=1.0, retry_after=60.0)
    async with FakeProcess("smsclub", "--token", TOKEN, "--rate-limit", "none") as fake:
        await fake.set_faults(throttle)
        env = {"SMSBRIDGE_SMSCLUB_TOKEN": TOKEN, "SMSBRIDGE_SMSCLUB_URL": fake.url}
        args = ["send", "smsclub", "--sender", "Shop", "--text", "Sale"]
        args += ["--to-file", str(path), "--journal", str(journal), "--json"]
        process = await anyio.open_process([str(EXE), *args], env=clean_env(**env))
        with anyio.fail_after(20):
            while (await fake.record()).count(429) < 3:  # noqa: ASYNC110 - another process
                await anyio.sleep(0.05)
        process.send_signal(signal.SIGKILL)
        await process.wait()
        await process.aclose()
        await fake.set_faults(Faults())
        final = await anyio.to_thread.run_sync(lambda: run(*args, env=env))
        record = await fake.record()
    counts = last_json(final)
    assert (counts["accepted"], counts["uncertain"]) == (300, 0), final.stderr
    assert final.returncode == 0
    assert len(record.sent) == 300
    with sqlite3.connect(journal) as db:
        statuses = dict(db.execute("SELECT status, COUNT(*) FROM outcomes GROUP BY status"))
    assert statuses == {"accepted": 300}

"""Many processes, one account, one Redis: the shared limiter holds every sliding second to
the limit across processes, the shared window lets one of many identical sends through, and
both fail closed when Redis goes away."""

from __future__ import annotations

import asyncio
import contextlib
import json
import statistics
import sys
import time
import uuid
from pathlib import Path
from typing import Any

import anyio
import pytest
import redis
import redis.asyncio as aioredis
from anyio.streams.text import TextReceiveStream
from redis.exceptions import ConnectionError as RedisConnectionError
from redis.exceptions import ResponseError

from smsbridge import (
    Claim,
    ConfigurationError,
    HttpRequest,
    HttpResponse,
    MockTransport,
    SmsClub,
    StateBackendError,
    Status,
    Timeouts,
)
from smsbridge._core.client import holder_for
from smsbridge._core.gateway import Batch
from smsbridge._redis.scripts import RELEASE, RESERVE
from smsbridge._redis.window import key_head
from smsbridge._resp import Pipe
from smsbridge.redis import RedisLimiter, RedisWindow
from smsbridge.testing import FakeProcess, busiest_window

from ..conftest import RedisServer
from ..helpers import last_json, run, window_entries

OURS, SENT, PENDING = Claim.OURS, Claim.SENT, Claim.PENDING

SENDER = Path(__file__).with_name("redis_sender.py")


def token() -> str:
    """A fresh account per test, so tests never share Redis keys."""
    return f"tok-{uuid.uuid4().hex}"


async def _senders(commands: list[list[str]]) -> list[dict[str, int]]:
    """Run sender processes side by side, all told to go once every one is ready (imports
    and start-up done); their JSON counts."""
    results: list[dict[str, int]] = [{} for _ in commands]
    async with contextlib.AsyncExitStack() as stack:
        processes = [
            await stack.enter_async_context(
                await anyio.open_process([sys.executable, str(SENDER), *command])
            )
            for command in commands
        ]
        streams = [TextReceiveStream(p.stdout) for p in processes]  # type: ignore[arg-type]
        for stream in streams:
            assert (await _line(stream)) == "ready"
        for process in processes:
            await process.stdin.send(b"go\n")  # type: ignore[union-attr]
        for n, (process, stream) in enumerate(zip(processes, streams, strict=True)):
            results[n] = json.loads(await _line(stream))
            assert await process.wait() == 0
    return results


async def _line(stream: TextReceiveStream) -> str:
    text = ""
    while "\n" not in text:
        text += await stream.receive()
    return text.strip()


@pytest.mark.realtime
async def test_four_processes_share_nine_requests_per_second(redis_url: str) -> None:
    """4 OS processes, 6 s, one account: busiest sliding second <= 9 at the gateway, no
    429, and together within 2% of 9 per 1.05 s while all four are going (from the
    second second, a cold start spending a few slots opening Redis connections, to the last
    but one, when they stop)."""
    account = token()
    async with FakeProcess("smsclub", "--token", account, "--rate-limit", "9") as fake:
        common = [
            "--url",
            fake.url,
            "--redis",
            redis_url,
            "--token",
            account,
            "--seconds",
            "6",
        ]
        results = await _senders(
            [[*common, "--start", str(n * 1_000_000), "--count", "20000"] for n in range(4)]
        )
        record = await fake.record()
    starts = sorted(r.at for r in record.requests if r.path == "/sms/send")
    assert record.count(429) == 0
    assert busiest_window(starts, 1.0) <= 9
    shares = sorted(r["requests"] for r in results)
    # no process starved. The slots go first come, first served, not in equal shares: in
    # 6 s the first-served's lead has not evened out, and the shares were [5, 8, 11, 30] in
    # one run of six (on 87b55f0 as well), so each must have at least a fifth of an even one
    assert shares[0] >= sum(shares) / 4 / 5, shares
    steady = [t for t in starts if starts[0] + 1.0 <= t <= starts[-1] - 1.0]
    gaps = [b - a for a, b in zip(steady, steady[9:], strict=False)]
    # the typical second runs within 2% of what the margin allows (9 / 1.05 s); a lone stall
    # of the machine (seen once after the rest of the suite: a second lost by all four at
    # once) may cost no more than that second
    assert 9 / statistics.median(gaps) >= 0.98 * 9 / 1.05, gaps
    assert 9 / (sum(gaps) / len(gaps)) >= 8.0, gaps
    assert sum(r["accepted"] for r in results) == len(record.sent)


@pytest.mark.heavy(4)
async def test_eight_processes_one_message_one_send(redis_url: str) -> None:
    """8 processes send the same text to the same number at once: exactly one gets through."""
    account = token()
    async with FakeProcess("smsclub", "--token", account, "--rate-limit", "9") as fake:
        common = ["--url", fake.url, "--redis", redis_url, "--token", account]
        results = await _senders([[*common, "--phone", "380501234567"] for _ in range(8)])
        record = await fake.record()
    assert len(record.sent) == 1
    assert sorted(r["accepted"] for r in results) == [0] * 7 + [1]
    assert sum(r["suppressed"] for r in results) == 7


async def test_the_command_twice_within_two_minutes_sends_once(
    redis_url: str, tmp_path: Path
) -> None:
    """`smsbridge send` run twice with SMSBRIDGE_REDIS_URL: the second run is all suppressed."""
    account = token()
    path = tmp_path / "r.csv"
    path.write_text("phone\n" + "\n".join(f"38050{i:07d}" for i in range(250)) + "\n")
    async with FakeProcess("smsclub", "--token", account, "--rate-limit", "9") as fake:
        env = {
            "SMSBRIDGE_SMSCLUB_TOKEN": account,
            "SMSBRIDGE_SMSCLUB_URL": fake.url,
            "SMSBRIDGE_REDIS_URL": redis_url,
        }
        args = [
            "send",
            "smsclub",
            "--sender",
            "Shop",
            "--text",
            "Sale",
            "--to-file",
            str(path),
            "--json",
        ]
        first = await anyio.to_thread.run_sync(lambda: run(*args, env=env))
        second = await anyio.to_thread.run_sync(lambda: run(*args, env=env))
        record = await fake.record()
    assert first.returncode == second.returncode == 0
    assert last_json(first)["accepted"] == 250
    assert last_json(second) == {
        "accepted": 0,
        "rejected": 0,
        "suppressed": 250,
        "failed": 0,
        "uncertain": 0,
        "requests": 0,
    }
    assert len(record.sent) == 250


class _NoScripts:
    def register_script(self, source: str) -> None:
        return None


@pytest.mark.parametrize(
    ("sender", "text", "batch", "expected"),
    [
        (
            "Shop",
            "Sale",
            Batch([0, 1], ["380500000001", "380500000002"]),
            ["09aaf4a5049e599ff2e95e5c4956bd3a", "b0d55700ac5f8f4a0d8c4911db7f42d5"],
        ),
        (
            "Shop",
            None,
            Batch([0, 1], ["380500000001", "380500000002"], texts=["Hi Olena", "Привіт"]),
            ["e24e1576bb895fd46814c02d9c8a6435", "afb7e7dff0ba22474e576955acd18eca"],
        ),
        (
            "Shop",
            "",
            Batch(
                [0, 1], ["994501234567", "994501234568"], params=[("Aysel", "A-1"), ("B", "\ud800")]
            ),
            ["848e0cf7a92e5270017aead695a0cfb0", "f16be65eec7b85d178c6252b22bad7ae"],
        ),
        (
            "Магазин",
            "Знижка \ud800",
            Batch([0], ["79001234567"]),
            ["7eca0cd575f6c06c9e7df2e3ded92e3e"],
        ),
    ],
)
def test_window_fields_stay_what_every_version_writes(
    sender: str, text: str | None, batch: Batch, expected: list[str]
) -> None:
    """Processes of one account running different versions (a rolling deploy) must name a
    recipient's entry alike, or each would send what the other holds: the fields are pinned."""
    window = RedisWindow(_NoScripts(), "smsbridge:{x:y}", b"s" * 40, 120.0)
    assert [k.hex() for k in window.keys(sender, text, batch) if isinstance(k, bytes)] == expected


def test_window_fields_tell_every_set_of_parameters_apart() -> None:
    """No parameter and one empty one, a US inside a parameter and two parameters, an RS
    where the counted form begins: each its own field for the same number (the US join
    alone gave some of these one field: one of them was suppressed, never sent). Sets the
    join tells apart keep the fields every version wrote (pinned above)."""
    window = RedisWindow(_NoScripts(), "smsbridge:{x:y}", b"s" * 40, 120.0)
    sets = [
        (),
        ("",),
        ("", ""),
        ("a", "b"),
        ("a\x1fb",),
        ("a", "b\x1fc"),
        ("a\x1fb", "c"),
        ("\x1e",),
        ("\x1e0:",),
        ("1:a",),
    ]
    batch = Batch(list(range(len(sets))), ["994501234567"] * len(sets), params=sets)
    keys = window.keys("Shop", "template #1", batch)
    assert len(set(keys)) == len(sets)
    assert key_head("S", "t", ("a", "b")) == b"S\x00t\x00a\x1fb\x00"
    assert key_head("S", "t", ()) == b"S\x00t\x00\x00"


async def test_window_keys_hold_neither_numbers_nor_texts(redis_url: str) -> None:
    """Reserve claims once across clients, commit extends, release frees; keys are HMACs."""
    client = aioredis.Redis.from_url(redis_url)
    try:
        namespace = f"smsbridge:{{test:{uuid.uuid4().hex}}}"
        window = RedisWindow(client, namespace, b"k" * 32, ttl=5)
        other = RedisWindow(client, namespace, b"k" * 32, ttl=5)
        batch = Batch([0, 1, 2], ["380501234567", "380501234568", "380501234567"])
        keys = window.keys("Shop", "Secret text", batch)
        assert keys == other.keys("Shop", "Secret text", batch)
        assert keys[0] == keys[2] and keys[0] != keys[1]
        assert all("380501234567" not in str(k) and "Secret" not in str(k) for k in keys)
        assert await window.reserve(keys, "h1/a", [0, 1, 2]) == [OURS, OURS, PENDING]
        assert await window.reserve(keys[:1], "h1/a", [0]) == [OURS]  # its own, again
        assert await other.reserve(keys[:1], "h2/a", [0]) == [PENDING]
        await window.commit(keys[:1], "h1/a", [0])
        assert await other.reserve(keys[:1], "h2/a", [0]) == [SENT]
        await other.release(keys[1:2], "h2/a", [1])  # not h2's: nothing happens
        assert await other.reserve(keys[1:2], "h2/a", [1]) == [PENDING]
        # a later run of h1 takes over what its earlier run left (it may have sent it)
        assert await window.reserve(keys[1:2], "h1/b", [1]) == [Claim.EARLIER]
        # the same call again (its answer lost) answers the same
        assert await window.reserve(keys[1:2], "h1/b", [1]) == [Claim.EARLIER]
        await window.release(keys[1:2], "h1/a", [1])  # not this run's any more: it stays
        assert await other.reserve(keys[1:2], "h2/a", [1]) == [PENDING]
        await window.release(keys[1:2], "h1", [1])  # the bare send: any run of it
        assert await other.reserve(keys[1:2], "h2/a", [1]) == [OURS]
        stored = await client.keys(f"{namespace}:w:*")  # one hash per 262 s bucket
        assert 1 <= len(stored) <= 2
        entries: dict[Any, Any] = {}
        for key in sorted(stored):
            entries.update(await client.hgetall(key))
            # to its bucket's end and a reservation's life (120 s, 65 s of slack)
            assert 0 < await client.pttl(key) <= (262.144 + 120 + 65 + 1) * 1000
        assert set(entries) == {keys[0], keys[1]}
        assert all(b"380501234567" not in v and b"Secret" not in v for v in entries.values())
        seconds, micros = await client.time()
        held_for = int(entries[keys[0]][:13]) - (seconds * 1000 + micros // 1000)
        assert entries[keys[0]][13:] == b"ch1/a:0" and 0 < held_for <= 5000
    finally:
        await client.aclose()


async def test_a_resumed_send_stopped_by_the_account_frees_what_its_dead_run_reserved(
    redis_url: str,
) -> None:
    """A dead run of the send reserved #3 and #4, and committed #5 (its message may have
    gone); another send holds #2. This run, a journaled resume (``earlier=``, with nothing the
    dead run may have written), is refused by the gateway at once: #2 to #5 are failed
    without a request, and only #3 and #4 are freed: the other send's reservation and the
    commit stay in Redis."""
    refused = HttpResponse(401, b'{"status": 401, "message": "no"}')

    def handler(request: HttpRequest) -> HttpResponse:
        return refused

    numbers = [f"38050{i:07d}" for i in range(6)]
    holder = holder_for(b"campaign")
    redis = aioredis.Redis.from_url(redis_url)
    try:
        async with SmsClub(
            token(),
            transport=MockTransport(handler),
            redis_url=redis_url,
            batch_size=2,
            concurrency=1,
        ) as sms:
            window = sms.window
            assert isinstance(window, RedisWindow)
            keys = window.keys("Shop", "Sale", Batch([2, 3, 4, 5], numbers[2:]))
            assert await window.reserve(keys[:1], "another/send", [2]) == [OURS]
            assert await window.reserve(keys[1:], f"{holder}/dead", [3, 4, 5]) == [OURS] * 3
            await window.commit(keys[3:], f"{holder}/dead", [5])
            report = await sms.send(
                "Sale", to=numbers, sender="Shop", idempotency_key=b"campaign", earlier=()
            )
        assert report.failed == 6 and report.requests == 1
        stored = await window_entries(redis, window, keys)
    finally:
        await redis.aclose()
    assert stored == [b"ranother/send:2", None, None, f"c{holder}/dead:5".encode()]


async def test_a_text_no_gateway_can_carry_is_rejected_through_redis(redis_url: str) -> None:
    """A lone surrogate in a personal text: rejected before any request (once its window key
    was made and its batch failed to build), and the send goes on."""

    def handler(request: HttpRequest) -> HttpResponse:
        raise AssertionError("no request can be built")

    async with SmsClub(token(), transport=MockTransport(handler), redis_url=redis_url) as sms:
        report = await sms.send_personal([("380501234567", "a\ud800b")], sender="Shop")
    assert report.rejected == 1 and report.requests == 0
    assert "lone surrogate" in (report.outcomes[0].reason or "")


@pytest.mark.realtime
async def test_a_redis_outage_pauses_the_send_and_it_resumes(
    private_redis: RedisServer,
) -> None:
    """Redis killed mid-send: once the start times it had promised are used up, nothing goes
    out while it is away; back within the patience, the send carries on and everyone is
    accepted, and no sliding second ever held more than the limit."""
    account = token()
    async with FakeProcess("smsclub", "--token", account, "--rate-limit", "9") as fake:
        async with SmsClub(account, base_url=fake.url, redis_url=private_redis.url) as sms:
            result: dict[str, object] = {}

            async def send() -> None:
                result["report"] = await sms.send(
                    "Sale",
                    to=(f"38050{i:07d}" for i in range(2500)),
                    sender="Shop",
                    keep="none",
                )

            async with anyio.create_task_group() as tg:
                tg.start_soon(send)
                await anyio.sleep(1.0)
                private_redis.stop()
                stopped = time.monotonic()
                await anyio.sleep(3.0)
                restarted = time.monotonic()
                await anyio.to_thread.run_sync(private_redis.start)
        record = await fake.record()
    report = result["report"]
    assert report.accepted == 2500 and report.error is None  # type: ignore[attr-defined]
    assert [r for r in record.requests if r.at > restarted], "the send went on after it"
    # starts promised before the outage (at most 10 workers / 9 per 1.05 s ahead, counted
    # from a burst) still go; after those, nothing until Redis is back
    during = [r.at for r in record.requests if stopped + 2.2 < r.at < restarted]
    assert during == []
    assert record.count(429) == 0
    assert busiest_window([r.at for r in record.requests], 1.0) <= 9


@pytest.mark.realtime
async def test_starts_redis_loses_mid_send_are_put_back_and_no_second_holds_more_than_nine(
    private_redis: RedisServer,
) -> None:
    """Redis loses the limiter's starts mid-send (a restart without persistence, a flush):
    the process puts back the starts and promises it holds, and every process's new starts
    wait a span, so no sliding second at the gateway holds more than 9 and nothing is
    refused with 429. The empty set gave the next nine asks "now", beside the promises
    already made: 12-18 requests in 25-45 ms."""
    account = token()
    async with FakeProcess("smsclub", "--token", account, "--rate-limit", "9") as fake:
        async with (
            SmsClub(account, base_url=fake.url, redis_url=private_redis.url, batch_size=1) as sms,
            anyio.create_task_group() as tg,
        ):

            async def send() -> None:
                await sms.send("Sale", to=(f"38050{i:07d}" for i in range(30)), sender="Shop")

            tg.start_soon(send)
            await anyio.sleep(1.2)
            flushed = redis.Redis.from_url(private_redis.url)
            await anyio.to_thread.run_sync(flushed.flushall)
            flushed.close()
        record = await fake.record()
    assert record.count(429) == 0
    assert len(record.sent) == 30
    assert busiest_window([r.at for r in record.requests], 1.0) <= 9


async def test_a_long_outage_stops_the_send_then_sending_works_again(
    private_redis: RedisServer,
) -> None:
    """Redis gone longer than the patience: the send stops with StateBackendError, the rest
    are failed, nothing was sent unlimited; with Redis back, a new send works."""
    account = token()
    # the fake counts no rate: this test is about the outage, and runs beside others
    async with FakeProcess("smsclub", "--token", account, "--rate-limit", "none") as fake:
        async with SmsClub(
            account, base_url=fake.url, redis_url=private_redis.url, redis_outage=1.0
        ) as sms:
            outcomes: list[Status] = []

            async def killer() -> None:
                await anyio.sleep(1.2)
                private_redis.stop()

            async with anyio.create_task_group() as tg:
                tg.start_soon(killer)
                report = await sms.send(
                    "Sale",
                    to=(f"38050{i:07d}" for i in range(3000)),
                    sender="Shop",
                    keep="none",
                    on_outcome=lambda o: outcomes.append(o.status),
                )
            stopped_at = time.monotonic()
            assert isinstance(report.error, StateBackendError)
            assert report.failed > 0 and report.total == 3000
            sent_before = len((await fake.record()).sent)
            assert report.accepted == sent_before
            await anyio.to_thread.run_sync(private_redis.start)
            again = await sms.send("Back", to=["380509999999"], sender="Shop")
            assert again.accepted == 1
        record = await fake.record()
    late = [r for r in record.requests if r.at > stopped_at - 0.5 and r.path == "/sms/send"]
    assert len(late) <= 1 + 1  # the in-flight one at most, and the send after Redis returned


async def test_a_frozen_redis_leaves_no_reservation_that_holds_the_next_send(
    private_redis: RedisServer,
) -> None:
    """Redis frozen past the patience while a batch is reserved: the send fails it (nothing
    sent), and Redis, woken, carries out the reservations the client gave up on. The next
    send of the same list drops them before it reserves (they are that failed run's own), so
    it goes at once instead of waiting out their lapse (the TTL and the slack, minutes)."""
    account = token()
    phones = [f"38050{i:07d}" for i in range(100)]
    async with FakeProcess("smsclub", "--token", account, "--rate-limit", "none") as fake:
        async with SmsClub(
            account, base_url=fake.url, redis_url=private_redis.url, redis_outage=0.5
        ) as sms:
            assert (await sms.send("Warm", to=["380509999999"], sender="Shop")).accepted == 1
            private_redis.freeze()
            try:
                failed = await sms.send("Sale", to=phones, sender="Shop", keep="none")
            finally:
                private_redis.thaw()
            assert isinstance(failed.error, StateBackendError)
            assert failed.failed == 100 and failed.accepted == 0
            with anyio.fail_after(15):  # not the minutes of the reservations' lapse
                again = await sms.send("Sale", to=phones, sender="Shop", keep="none")
            assert again.accepted == 100, again
        record = await fake.record()
    assert sorted(m.phone for m in record.sent if m.text == "Sale") == phones


@pytest.mark.parametrize("key", [None, "campaign-1"], ids=["plain", "keyed"])
async def test_a_stop_while_redis_is_frozen_does_not_wait_out_the_outage(
    private_redis: RedisServer, key: str | None
) -> None:
    """Redis frozen under a send, then the caller stops it (Ctrl-C at the CLI, whose sends
    are keyed): the batches waiting on Redis fail at once with the stop's reason, and the
    send returns within the reply timeout and the stopping send's wait for its store (its
    window's updates, then its key's release), not the 30 s outage."""
    account = token()
    phones = [f"38050{i:07d}" for i in range(2000)]
    stop = anyio.Event()
    stopped: list[float] = []
    async with FakeProcess("smsclub", "--token", account, "--rate-limit", "none") as fake:
        async with SmsClub(account, base_url=fake.url, redis_url=private_redis.url) as sms:
            assert (await sms.send("Warm", to=["380509999999"], sender="Shop")).accepted == 1

            async def freeze_then_stop() -> None:
                await anyio.sleep(0.3)
                private_redis.freeze()
                await anyio.sleep(1.0)
                stopped.append(time.monotonic())
                stop.set()

            try:
                async with anyio.create_task_group() as tg:
                    tg.start_soon(freeze_then_stop)
                    with anyio.fail_after(60):
                        report = await sms.send(
                            "Sale",
                            to=phones,
                            sender="Shop",
                            keep="all",
                            stop=stop,
                            idempotency_key=key,
                        )
                    returned = time.monotonic()
            finally:
                private_redis.thaw()
        record = await fake.record()
    # the reply timeout (2 s), the window's updates and the key's release (3 s each): not 30 s
    assert returned - stopped[0] < 14
    sent = [m.phone for m in record.sent if m.text == "Sale"]
    assert len(sent) == len(set(sent)) == report.accepted
    assert report.stopped and report.total == len(report.outcomes) < len(phones)  # read so far
    reasons = {o.reason for o in report.outcomes if o.status is Status.FAILED}
    assert reasons and not any("unavailable" in (r or "") for r in reasons), reasons


async def test_a_send_cancelled_while_redis_is_frozen_does_not_wait_out_the_outage(
    private_redis: RedisServer,
) -> None:
    """A keyed send cancelled (a timeout round it) with Redis frozen halts as a stopped one
    does: its window's updates and its key's release wait a while, not the 30 s outage,
    and the cancellation comes out. Nothing goes twice."""
    account = token()
    phones = [f"38050{i:07d}" for i in range(2000)]
    async with FakeProcess("smsclub", "--token", account, "--rate-limit", "none") as fake:
        async with SmsClub(account, base_url=fake.url, redis_url=private_redis.url) as sms:
            assert (await sms.send("Warm", to=["380509999999"], sender="Shop")).accepted == 1

            async def freeze() -> None:
                await anyio.sleep(0.3)
                private_redis.freeze()

            try:
                async with anyio.create_task_group() as tg:
                    tg.start_soon(freeze)
                    began = time.monotonic()
                    with anyio.move_on_after(1.3) as scope:
                        await sms.send(
                            "Sale", to=phones, sender="Shop", keep="none", idempotency_key="k"
                        )
                cancelled = time.monotonic()
            finally:
                private_redis.thaw()
            assert scope.cancelled_caught
        record = await fake.record()
    # the reply timeout (2 s), the window's updates and the key's release (3 s each): not 30 s
    assert cancelled - (began + 1.3) < 14
    sent = [m.phone for m in record.sent if m.text == "Sale"]
    assert len(sent) == len(set(sent))


class _Unanswered:
    """A Redis client that, while ``down``, gets no reply: a reservation is carried out
    (its reply lost), anything else never arrives. While ``refusing``, Redis refuses every
    release. ``releases`` counts the releases that reached Redis."""

    def __init__(self, pipe: Pipe) -> None:
        self.pipe, self.down, self.refusing, self.releases = pipe, False, False, 0

    def register_script(self, source: str) -> Any:
        script = self.pipe.register_script(source)

        async def call(keys: Any = (), args: Any = (), client: Any = None) -> Any:
            if self.refusing and source == RELEASE:
                raise ResponseError("NOPERM this user has no permissions to run 'hdel'")
            if not self.down:
                self.releases += source == RELEASE
                return await script(keys, args)
            if source == RESERVE:
                await script(keys, args)
            raise RedisConnectionError("no reply (test)")

        return call


async def test_a_batchs_fields_are_framed_once_for_its_reservation_and_commit(
    redis_url: str,
) -> None:
    """On smsbridge's own connection the fields go framed: made once per batch by ``keys``
    and used by its reserve and its commit; a part of the batch is framed on its own."""
    pipe = Pipe(redis_url)
    try:
        namespace = f"smsbridge:{{test:{uuid.uuid4().hex}}}"
        window = RedisWindow(pipe, namespace, b"k" * 32, ttl=5)
        other = RedisWindow(pipe, namespace, b"k" * 32, ttl=5)
        batch = Batch([0, 1, 2], ["380501234567", "380501234568", "380501234569"])
        keys = window.keys("Shop", "Sale", batch)
        assert await window.reserve(keys, "h1/a", [0, 1, 2]) == [OURS] * 3
        framed = keys.run()  # type: ignore[attr-defined]
        assert await other.reserve(keys, "h2/a", [0, 1, 2]) == [PENDING] * 3
        await window.commit(keys[:2], "h1/a", [0, 1])  # a part: a list of its own
        assert await other.reserve(keys, "h2/a", [0, 1, 2]) == [SENT, SENT, PENDING]
        await window.commit(keys, "h1/a", [0, 1, 2])
        assert keys.run() is framed  # type: ignore[attr-defined]
        assert await other.reserve(keys, "h2/a", [0, 1, 2]) == [SENT] * 3
        more = window.keys("Shop", "Sale", Batch([3], ["380501234570"]))
        keys.extend(more)  # grown since it was framed: framed again
        assert await other.reserve(keys, "h2/a", [0, 1, 2, 3]) == [SENT] * 3 + [OURS]
    finally:
        await pipe.aclose()


async def test_reserves_wait_while_failed_releases_are_done(redis_url: str) -> None:
    """Releases left from an outage are done one call each before a reserve: another
    reserve coming meanwhile waits for them all, or it could reach Redis between two of them
    and find a key still held by the failed run (a later run of the same send would take
    that over as uncertain, and never send it)."""
    pipe = Pipe(redis_url)
    client = _Unanswered(pipe)
    try:
        window = RedisWindow(client, f"smsbridge:{{test:{uuid.uuid4().hex}}}", b"k" * 32, outage=0)
        resumed = window.keys("Shop", "Sale", Batch([0], ["380500000001"]))
        other = window.keys("Shop", "Sale", Batch([1], ["380500000002"]))
        client.down = True
        for keys, indices in ((resumed, [0]), (other, [1])):  # done last, first
            with pytest.raises(StateBackendError):
                await window.reserve(keys, "s1/a", indices)
            with pytest.raises(StateBackendError):
                await window.release(keys, "s1/a", indices)
        client.down = False
        claims = await asyncio.gather(
            window.reserve(other, "s2/b", [1]), window.reserve(resumed, "s1/c", [0])
        )
        assert list(claims) == [[OURS], [OURS]]
    finally:
        await pipe.aclose()


async def test_a_release_redis_refused_is_not_done_again(redis_url: str) -> None:
    """A release Redis refused (a permission, say) would be refused again: it is not kept
    to be done before every later reserve; its reservations lapse."""
    pipe = Pipe(redis_url)
    client = _Unanswered(pipe)
    try:
        window = RedisWindow(client, f"smsbridge:{{test:{uuid.uuid4().hex}}}", b"k" * 32, outage=0)
        keys = window.keys("Shop", "Sale", Batch([0], ["380500000001"]))
        assert await window.reserve(keys, "s1/a", [0]) == [OURS]
        client.refusing = True
        with pytest.raises(StateBackendError, match="refused"):
            await window.release(keys, "s1/a", [0])
        client.refusing = False
        for _ in range(3):
            assert await window.reserve(keys, "s2/b", [0]) == [PENDING]
        assert client.releases == 0
    finally:
        await pipe.aclose()


async def test_while_redis_is_out_of_reach_a_reserve_does_not_try_the_releases_first(
    redis_url: str,
) -> None:
    """Releases left from an outage wait while Redis is still out of reach, as far as the
    account's calls know: trying them first would cost each later send a reply timeout.
    Redis back within the reserve's patience, they are done, and the reserve asked again."""
    pipe = Pipe(redis_url)
    client = _Unanswered(pipe)
    try:
        window = RedisWindow(
            client, f"smsbridge:{{test:{uuid.uuid4().hex}}}", b"k" * 32, outage=30.0
        )
        window._patience.outage = 0.0  # the first reserve gives up at once
        keys = window.keys("Shop", "Sale", Batch([0], ["380500000001"]))
        client.down = True
        with pytest.raises(StateBackendError):
            await window.reserve(keys, "s1/a", [0])
        with pytest.raises(StateBackendError):
            await window.release(keys, "s1/a", [0])
        window._patience.outage = 30.0  # from now on, an outage is waited out

        async def back() -> None:
            await anyio.sleep(0.2)
            client.down = False

        async with anyio.create_task_group() as tg:
            tg.start_soon(back)
            assert await window.reserve(keys, "s2/b", [0]) == [OURS]
        assert client.releases == 1
    finally:
        await pipe.aclose()


async def test_only_a_runs_own_failed_releases_are_done_later(redis_url: str) -> None:
    """A release Redis did not take is done before the window's next reserve, where it is a
    run's own; a bare send key's is not (by then a later run of the send may hold its keys),
    and those reservations wait out their lapse."""
    pipe = Pipe(redis_url)
    client = _Unanswered(pipe)
    try:
        window = RedisWindow(client, f"smsbridge:{{test:{uuid.uuid4().hex}}}", b"k" * 32, outage=0)
        own = window.keys("Shop", "Sale", Batch([0, 1], ["380500000001", "380500000002"]))
        bare = window.keys("Shop", "Sale", Batch([2], ["380500000003"]))
        client.down = True
        for keys, indices, releaser in ((own, [0, 1], "s1/a"), (bare, [2], "s1")):
            with pytest.raises(StateBackendError):
                await window.reserve(keys, "s1/a", indices)
            with pytest.raises(StateBackendError):
                await window.release(keys, releaser, indices)
        client.down = False
        assert await window.reserve(own + bare, "s2/b", [0, 1, 2]) == [OURS, OURS, PENDING]
        assert await window.reserve(own, "s3/c", [0, 1]) == [PENDING, PENDING]  # s2's now
    finally:
        await pipe.aclose()


def test_redis_url_from_the_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    """SMSBRIDGE_REDIS_URL switches a client to the shared limiter and window."""
    monkeypatch.setenv("SMSBRIDGE_REDIS_URL", "redis://127.0.0.1:1/0")
    sms = SmsClub("t")
    assert type(sms.limiter).__name__ == "RedisLimiter"
    assert type(sms.window).__name__ == "RedisWindow"
    assert "redis://" not in repr(sms)


async def test_a_batch_of_thousands_is_reserved_committed_and_released(redis_url: str) -> None:
    """A batch far past what Lua unpacks at once (SMSPlus and Webcom take any batch size; a
    journaled resume settles a thousand at a time): the window splits its calls and every
    recipient gets its claim, the same number repeated within the batch its PENDING."""
    pipe = Pipe(redis_url)
    try:
        window = RedisWindow(pipe, f"smsbridge:{{test:{uuid.uuid4().hex}}}", b"k" * 32)
        phones = [f"38050{i:07d}" for i in range(8_499)] + ["380500000000"]
        batch = Batch(list(range(8_500)), phones)
        keys = window.keys("Shop", "Sale", batch)
        claims = await window.reserve(keys, "h1/a", batch.indices)
        assert claims == [OURS] * 8_499 + [PENDING]
        await window.commit(keys[:5_000], "h1/a", batch.indices[:5_000])
        await window.release(keys[5_000:], "h1/a", batch.indices[5_000:])
        again = await window.reserve(keys, "h2/a", batch.indices)
        assert again == [SENT] * 5_000 + [OURS] * 3_499 + [SENT]
    finally:
        await pipe.aclose()


def test_a_window_longer_than_a_year_through_redis_is_refused(redis_url: str) -> None:
    """An entry's "until" is 13 digits of milliseconds: a TTL that would overflow them (a
    misread stamp sent twice, or waited for ever) is refused when the client is made."""
    with pytest.raises(ConfigurationError, match="at most a year"):
        SmsClub(token(), redis_url=redis_url, window_ttl=1e10)
    SmsClub(token(), redis_url=redis_url, window_ttl=365 * 86400.0)  # a year is fine


def test_a_window_shorter_than_redis_counts_is_refused(redis_url: str) -> None:
    """Redis holds an entry whole milliseconds: a TTL under one would hold nothing, the
    window silently off, so it is refused when the client is made (0 turns it off)."""
    with pytest.raises(ConfigurationError, match="at least a millisecond"):
        SmsClub(token(), redis_url=redis_url, window_ttl=1e-6)
    SmsClub(token(), redis_url=redis_url, window_ttl=0.001)
    SmsClub(token(), redis_url=redis_url, window_ttl=0)


def test_a_rate_period_longer_than_a_year_through_redis_is_refused(redis_url: str) -> None:
    """The limiter's span is Redis's clock in microseconds: a period beyond what its
    numbers hold made Redis refuse every start, each recipient failed; it is refused when
    the client is made."""
    with pytest.raises(ConfigurationError, match="at most a year"):
        SmsClub(token(), redis_url=redis_url, rate_period=1e300)
    with pytest.raises(ConfigurationError, match="at most a year"):
        SmsClub(token(), redis_url=redis_url, rate_period=365 * 86400.0, rate_margin=1.0)
    SmsClub(token(), redis_url=redis_url, rate_period=365 * 86400.0 - 1.0, rate_margin=1.0)


def test_a_read_timeout_a_redis_window_cannot_outlast_is_refused(redis_url: str) -> None:
    """An entry must live at most a bucket (twice the TTL, rounded up to 2^18 ms for 120 s),
    or a process reading the two newest buckets misses it: a reservation held the read
    timeout and 5 s past the TTL caps the read timeout at 137 s for a 2-minute window."""
    with pytest.raises(ConfigurationError, match=r"read timeout of at most 137\.144 s"):
        SmsClub(token(), redis_url=redis_url, timeouts=Timeouts(read=200.0))
    SmsClub(token(), redis_url=redis_url, timeouts=Timeouts(read=137.0))


async def test_a_late_process_gets_promises_it_can_keep_and_redis_counts_them_late(
    redis_url: str,
) -> None:
    """A start kept more than the tolerance late is given back and asked for again, and the
    process's promises get a width of twice that lateness: a write within the width is
    kept, and Redis records the start at the width's end, so every later start counts from
    a moment at or after the write. Kept promises shrink the width again."""
    client = aioredis.Redis.from_url(redis_url)
    namespace = f"smsbridge:{{test:{uuid.uuid4().hex}}}"
    limiter = RedisLimiter(client, namespace, 9, 1.0, margin=0.05)
    try:
        slot = await limiter.acquire()
        await slot.ready()
        _block(0.06)  # the loop blocked past the 25 ms the promise allows
        assert not slot.start()
        await slot.ready()  # asked again
        assert 0.12 <= limiter.width <= 0.5
        width = limiter.width
        assert slot.start()
        slot.close()
        assert limiter.width == pytest.approx(width * 0.9)
        newest: Any = await client.zrange(f"{namespace}:starts", -1, -1)
        assert newest[0].decode().endswith(f"/{round(width * 1_000_000)}")

        late = await limiter.acquire()
        await late.ready()
        _block(0.03)  # later than the 25 ms a promise without a width allows
        assert late.start()
        late.close()
    finally:
        await client.aclose()


def _block(seconds: float) -> None:
    """Hold the event loop, as a busy process does."""
    time.sleep(seconds)


@pytest.mark.parametrize("outage", [float("nan"), float("inf"), -1.0, "3", True])
def test_a_redis_outage_that_is_no_number_of_seconds_is_refused(outage: object) -> None:
    """``redis_outage`` NaN or infinite never ran out (a send waited on a dead Redis for
    ever), a string failed mid-send: each is a ConfigurationError when the client is made."""
    from smsbridge import ConfigurationError, SmsClub

    with pytest.raises(ConfigurationError, match="redis_outage"):
        SmsClub(
            "T",
            base_url="http://127.0.0.1:1",
            redis_url="redis://127.0.0.1:1/0",
            redis_outage=outage,  # type: ignore[arg-type]
        )

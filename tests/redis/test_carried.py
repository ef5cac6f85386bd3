"""A commit through Redis rides with the window's next call: one trip to Redis where a
reservation and the commit of the request before it each took one. A send still returns with
everything that went committed, a commit nothing carries goes by itself, and one whose
carrier was cancelled goes again."""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import Awaitable
from typing import Any

import anyio
import pytest
import redis.asyncio as aioredis

import smsbridge.redis as redis_module
from smsbridge import Claim, SmsClub
from smsbridge._core.gateway import Batch
from smsbridge._resp import Pipe
from smsbridge.redis import RedisLimiter, RedisWindow
from smsbridge.testing import FakeProcess

from ..conftest import RedisServer
from ..helpers import window_entries


class CountingPipe(Pipe):
    """smsbridge's own connection, counting the commands it sends."""

    sent = 0

    def send(self, command: bytes) -> Awaitable[Any]:
        self.sent += 1
        return super().send(command)


def _batch(start: int, count: int) -> Batch:
    return Batch(
        list(range(start, start + count)), [f"38050{i:07d}" for i in range(start, start + count)]
    )


async def test_a_commit_rides_with_the_next_reservation(redis_url: str) -> None:
    pipe = CountingPipe(redis_url)
    reader = aioredis.Redis.from_url(redis_url)
    window = RedisWindow(pipe, f"smsbridge:{{test:{uuid.uuid4().hex}}}", b"k" * 32, ttl=60)
    first, second = _batch(0, 100), _batch(100, 100)
    one, two = window.keys("Shop", "Sale", first), window.keys("Shop", "Sale", second)
    try:
        # Redis learns the scripts (a first call of each may go twice: by its hash, then whole)
        warm = _batch(500, 1)
        for _ in range(2):
            await window.reserve(window.keys("Shop", "Warm", warm), "w/a", warm.indices)
            window.commit_soon(window.keys("Shop", "Warm", warm), "w/a", warm.indices)
        await window.flush()
        assert await window.reserve(one, "s/a", first.indices) == [Claim.OURS] * 100
        window.commit_soon(one, "s/a", first.indices)
        # not yet: the commit waits for a carrier
        assert await window_entries(reader, window, one) == [b"rs/a:%d" % i for i in range(100)]
        sent = pipe.sent
        assert await window.reserve(two, "s/a", second.indices) == [Claim.OURS] * 100
        assert pipe.sent - sent == 1, "the commit and the reservation went as one command"
        assert await window_entries(reader, window, one) == [b"cs/a:%d" % i for i in range(100)]
        assert await window_entries(reader, window, two) == [b"rs/a:%d" % i for i in second.indices]
        await window.flush()  # nothing left to carry: nothing sent
        assert pipe.sent - sent == 1
    finally:
        await pipe.aclose()
        await reader.aclose()


async def test_a_commit_nothing_carries_goes_by_itself(
    redis_url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Sent by a timer; a flush in the moment the timer has taken it, before its send began,
    waits for it all the same."""
    monkeypatch.setattr(redis_module, "_CARRY", 0.0)
    pipe = Pipe(redis_url)
    reader = aioredis.Redis.from_url(redis_url)
    window = RedisWindow(pipe, f"smsbridge:{{test:{uuid.uuid4().hex}}}", b"k" * 32, ttl=60)
    batch = _batch(0, 3)
    keys = window.keys("Shop", "Sale", batch)
    try:
        await window.reserve(keys, "s/a", batch.indices)
        window.commit_soon(keys, "s/a", batch.indices)
        # the timer fires in the loop's next turn, after this task's, and its send begins
        # in the turn after that: here, they are taken and not yet on their way
        await asyncio.sleep(0)
        await asyncio.sleep(0)
        assert not window._outbox and window._tasks and not window._carrying
        await window.flush()  # waits for them too
        assert not window._tasks
        assert await window_entries(reader, window, keys) == [b"cs/a:0", b"cs/a:1", b"cs/a:2"]
    finally:
        await pipe.aclose()
        await reader.aclose()


class _Stalling:
    """A stand-in for a Redis client whose first call fails (Redis out of reach), so that the
    caller waits to try again; every call's arguments are kept."""

    def __init__(self) -> None:
        self.calls: list[list[Any]] = []

    def register_script(self, source: str) -> Any:
        async def script(keys: Any = (), args: Any = (), client: Any = None) -> Any:
            self.calls.append(list(args))
            if len(self.calls) == 1:
                raise ConnectionError("Redis out of reach")
            return b"0" * int(args[5]) if source == redis_module._SETTLE else b""

        return script


async def test_a_commit_whose_carrier_was_cancelled_goes_again() -> None:
    """A reservation carrying a commit is cancelled while it waits to try again (Redis out of
    reach): whether the commit went is unknown, so it goes again with the next call."""
    client = _Stalling()
    window = RedisWindow(client, "smsbridge:{test:x}", b"k" * 32, ttl=60)
    done, going = _batch(0, 2), _batch(2, 1)
    window.commit_soon(window.keys("Shop", "Sale", done), "s/a", done.indices)
    with anyio.move_on_after(0.05):
        await window.reserve(window.keys("Shop", "Sale", going), "s/a", going.indices)
    assert len(client.calls) == 1 and client.calls[0][5] == 1  # carried, and failed
    await window.flush()
    assert len(client.calls) == 2
    # by itself now: no reservation of its own (0 fields), the commit of #0 and #1 after
    assert client.calls[1][2:6] == ["", "", window._span, 0]
    assert client.calls[1][8] == "0,1" and client.calls[1][9] == 2


async def test_a_send_returns_with_what_went_committed(redis_url: str) -> None:
    """After the send returns, every accepted recipient's entry is committed (a second send
    of the same text to them is suppressed at once, not held up), though the last commits
    had no reservation to ride with."""
    account = f"tok-{uuid.uuid4().hex}"
    reader = aioredis.Redis.from_url(redis_url)
    phones = [f"38050{i:07d}" for i in range(250)]
    try:
        async with FakeProcess("smsclub", "--token", account, "--rate-limit", "9") as fake:
            async with SmsClub(account, base_url=fake.url, redis_url=redis_url) as sms:
                report = await sms.send("Sale", to=phones, sender="Shop", keep="none")
                assert report.accepted == 250
                window = sms._window
                assert isinstance(window, RedisWindow)
                keys = window.keys("Shop", "Sale", Batch(list(range(250)), phones))
                entries = await window_entries(reader, window, keys)
                assert all(e is not None and e.startswith(b"c") for e in entries), entries[:3]
                again = await sms.send("Sale", to=phones, sender="Shop", keep="none")
                assert again.suppressed == 250 and again.requests == 0
            record = await fake.record()
        assert len(record.sent) == 250
    finally:
        await reader.aclose()


class _Broken(_Stalling):
    """A stand-in whose every call fails with an error that is not Redis's."""

    def register_script(self, source: str) -> Any:
        async def script(keys: Any = (), args: Any = (), client: Any = None) -> Any:
            self.calls.append(list(args))
            raise TypeError("not a Redis error")

        return script


async def test_a_commit_that_fails_for_no_redis_reason_is_given_up_once(
    caplog: pytest.LogCaptureFixture,
) -> None:
    """Logged and dropped: not put back to be tried every tenth of a second for ever, and
    the flush a send ends with returns."""
    client = _Broken()
    window = RedisWindow(client, "smsbridge:{test:x}", b"k" * 32, ttl=60)
    batch = _batch(0, 2)
    window.commit_soon(window.keys("Shop", "Sale", batch), "s/a", batch.indices)
    await window.flush()
    assert len(client.calls) == 1
    assert not window._outbox and window._timer is None
    assert "commits not carried out" in caplog.text


async def test_a_send_through_redis_makes_two_calls_a_request(
    private_redis: RedisServer,
) -> None:
    """Each request's reservation carries the commit of the request before it: two script
    calls to Redis a request (its reservation and its start; three before, the commit its
    own), and a send of the same text again asks for no start."""
    account = f"tok-{uuid.uuid4().hex}"
    reader = aioredis.Redis.from_url(private_redis.url)
    phones = [f"38050{i:07d}" for i in range(1_000)]

    async def calls() -> int:
        stats = await reader.info("commandstats")
        return sum(stats.get(f"cmdstat_{c}", {}).get("calls", 0) for c in ("evalsha", "eval"))

    try:
        async with (
            FakeProcess("smsclub", "--token", account, "--rate-limit", "none") as fake,
            SmsClub(account, base_url=fake.url, redis_url=private_redis.url) as sms,
        ):
            for warm in ("Warm", "Up"):  # Redis learns the scripts
                await sms.send(warm, to=phones[:1], sender="Shop")
            before = await calls()
            report = await sms.send("Sale", to=phones, sender="Shop", keep="none")
            made = await calls() - before
            limiter = sms._throttle.limiter
            assert isinstance(limiter, RedisLimiter)
            starts = limiter._keys[0]
            given = await reader.zcard(starts)
            again = await sms.send("Sale", to=phones, sender="Shop", keep="none")
            assert given >= 10 and await reader.zcard(starts) == given, "a start for nothing"
        assert report.accepted == 1_000 and report.requests == 10
        # two a request, and the last commits sent by themselves when the send ends (a
        # start asked again now and then by a busy process)
        assert 20 <= made <= 23
        assert again.suppressed == 1_000 and again.requests == 0
    finally:
        await reader.aclose()

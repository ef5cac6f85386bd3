"""smsbridge's Lua scripts against their models in the simulator's Redis: the same random
operations on a real redis-server and on the model give the same answers, so the simulator's
findings hold for the real thing."""

from __future__ import annotations

import random
import uuid
from collections import Counter
from typing import Any

import pytest
import redis.asyncio as aioredis

from smsbridge._core.gateway import Batch
from smsbridge._redis.window import _joined
from smsbridge.redis import RedisWindow, scripts
from smsbridge.testing._sim.loop import World
from smsbridge.testing._sim.redis import FakeRedis, RedisFaults, _indices

from ..conftest import RedisServer


@pytest.mark.parametrize("seed", range(8))
async def test_the_window_scripts_and_their_model_agree(redis_url: str, seed: int) -> None:
    """Reserve, commit and release by several holders over a few keys, repeats included, on
    an explicit clock that crosses buckets and outlives entries (short lives as well as the
    usual two minutes)."""
    rng = random.Random(seed)
    client = aioredis.Redis.from_url(redis_url)
    model = FakeRedis(World(), RedisFaults(), random.Random(0), Counter())
    run = {name: client.register_script(source) for name, source in scripts.items()}
    prefix = f"smsbridge:{{test:{uuid.uuid4().hex}}}:w:"
    fields = [bytes([n]) * 16 for n in range(5)]  # what keys() gives: 16 raw bytes
    now = 1_764_000_000_000 + rng.randrange(128_000)
    life = rng.choice([3_000, 125_000, 300_000])
    span = rng.choice([1 << 17, 1 << 19])  # shorter than an entry lives, too: 3 buckets read
    try:
        for _ in range(300):
            now += rng.choice([0, 0, 500, 2_000, 40_000])
            op = rng.choice(["reserve", "reserve", "commit", "release"])
            chosen = [rng.choice(fields) for _ in range(rng.randint(1, 4))]
            # runs of a send ("h1/a", "h1/b": the second takes the first's over), and a bare
            # send, as a journaled resume releases with
            holder = rng.choice(["h1/a", "h1/b", "h2/a"] + (["h1"] if op == "release" else []))
            indices = ",".join(str(rng.randrange(3)) for _ in chosen)
            if rng.random() < 0.3:  # a run of consecutive indices, as a packed batch has
                indices = f"{rng.randrange(3)}+{len(chosen)}"
            ms = life if op != "commit" else max(1, life - rng.choice([0, 2_000]))
            args: list[Any] = [ms, holder, indices, now, span, *chosen]
            real = await run[op](keys=[prefix], args=args)
            modelled = getattr(model, f"_{op}")([prefix], args, 0.0)
            if op == "reserve":
                assert real.decode() == modelled
            else:
                assert int(real) == modelled
        stored = await client.keys(prefix + "*")
        assert stored, "nothing was written"
        for key in stored:
            name = key.decode()  # type: ignore[union-attr]
            entries = {f: v.decode() for f, v in (await client.hgetall(key)).items()}  # type: ignore[union-attr]
            if name in model.hashes:
                assert entries == model.hashes[name][0]
            else:  # the model let it expire (Redis keeps it longer: its clock is not ours)
                assert all(int(v[:13]) <= now for v in entries.values())
    finally:
        await client.aclose()


@pytest.mark.parametrize("seed", range(3))
async def test_the_lease_scripts_and_their_model_agree(redis_url: str, seed: int) -> None:
    """Holds taken, renewed and dropped by several runs over two names."""
    rng = random.Random(seed)
    client = aioredis.Redis.from_url(redis_url)
    model = FakeRedis(World(), RedisFaults(), random.Random(0), Counter())
    run = {name: client.register_script(scripts[name]) for name in ("hold", "unhold")}
    prefix = f"smsbridge:{{test:{uuid.uuid4().hex}}}:run:"
    try:
        for _ in range(200):
            op = rng.choice(["hold", "hold", "unhold"])
            keys = [prefix + rng.choice("ab")]
            args: list[Any] = [rng.choice(["r1", "r2", "r3"])]
            if op == "hold":
                args.append(600_000)
            real = await run[op](keys=keys, args=args)
            assert int(real) == getattr(model, f"_{op}")(keys, args, model.world.now)
        for key in (prefix + "a", prefix + "b"):
            value = await client.get(key)
            text = value.decode() if isinstance(value, bytes) else value
            assert text == model._get(key, model.world.now)
    finally:
        await client.aclose()


@pytest.mark.parametrize("seed", range(4))
async def test_the_limiter_scripts_and_their_model_agree(redis_url: str, seed: int) -> None:
    """Acquire (with stale promises replaced) and defer, on an explicit clock; now and then
    Redis loses the limiter's keys (a restart, a flush), and a caller that had seen the set
    is told so and puts back what it holds."""
    rng = random.Random(seed)
    client = aioredis.Redis.from_url(redis_url)
    model = FakeRedis(World(), RedisFaults(), random.Random(0), Counter())
    acquire = client.register_script(scripts["acquire"])
    defer = client.register_script(scripts["defer"])
    namespace = f"smsbridge:{{test:{uuid.uuid4().hex}}}"
    keys = [f"{namespace}:starts", f"{namespace}:defer", f"{namespace}:mark"]
    now = 1_700_000_000_000_000
    previous: str | None = None
    seen, heard, mine, told_lost = "", 0, dict[str, int](), 0
    try:
        for n in range(300):
            now += rng.choice([0, 1_000, 50_000, 400_000])
            if rng.random() < 0.05:
                args: list[Any] = [rng.randint(1, 3_000_000), now]
                assert int(await defer(keys=keys[1:2], args=args)) == model._defer(
                    keys[1:2], args, 0.0
                )
                continue
            if rng.random() < 0.04:  # the state lost: all of it, or the starts alone
                lost = keys if rng.random() < 0.5 else keys[:1]
                await client.delete(*lost)
                model.zsets.pop(keys[0], None)
                for key in lost[1:]:
                    model.values.pop(key, None)
                continue
            limit = 9
            width = rng.choice([0, 0, 30_000, 100_000])
            member = f"m{n}/{width}" if width else f"m{n}"
            args = [limit, 1_040_000, member, now]
            unused: list[str] = []
            if previous is not None and rng.random() < 0.2:
                args += [rng.choice(["0", "1"]), rng.choice([0, 80_000]), width]
                unused.append(previous)
                mine.pop(previous, None)
            else:
                args += ["0", 0, width]
            told = seen if rng.random() < 0.9 else rng.choice(["", "another"])
            back: list[Any] = []
            if mine and rng.random() < 0.1:
                back = [x for m, score in mine.items() for x in (score, m)]
            said = heard if rng.random() < 0.95 else heard + 1_000_000  # an older state
            args += [told, said, len(mine), len(back) // 2, *back, *unused]
            previous = member
            real = await acquire(keys=keys, args=args)
            answer = [int(real[0]), int(real[1]), real[2].decode()]
            assert answer == model._acquire(keys, args, 0.0)
            seen, heard = answer[2], answer[1]
            if answer[0] < 0:
                told_lost += 1
            else:
                mine[member] = answer[0] + width
    finally:
        await client.aclose()
    assert told_lost  # the loss was seen, and told


@pytest.mark.parametrize("seed", range(3))
async def test_the_id_ranges_script_and_its_model_agree(redis_url: str, seed: int) -> None:
    """Blocks of random sizes, some names repeated (a retry), a counter that wraps."""
    rng = random.Random(seed)
    client = aioredis.Redis.from_url(redis_url)
    model = FakeRedis(World(), RedisFaults(), random.Random(0), Counter())
    claim = client.register_script(scripts["claim"])
    namespace = f"smsbridge:{{test:{uuid.uuid4().hex}}}"
    size = rng.choice([2**16 - 1, 2**31 - 1, 2**53 - 1])
    try:
        for _ in range(150):
            keys = [f"{namespace}:ids", f"{namespace}:ids:{rng.randrange(40)}"]
            args = [rng.choice([100, 200, 400, 6400, size // 3]), size, 3600, rng.randrange(size)]
            real = int(await claim(keys=keys, args=args))
            assert real == model._claim(keys, args, 0.0)
        # the counter lost (a restart without persistence, a flush): it starts again from the
        # random point the caller gave, not from 0, where ids went before
        await client.delete(f"{namespace}:ids")
        keys = [f"{namespace}:ids", f"{namespace}:ids:new"]
        assert int(await claim(keys=keys, args=[100, size, 3600, 12_345])) == 12_345
    finally:
        await client.aclose()


async def test_processes_of_one_account_share_its_id_ranges(redis_url: str) -> None:
    """Two RedisState of one account (two processes): disjoint blocks; the same block name
    gets the same start (a repeat of a send with the same key)."""
    from smsbridge._core.ranges import IdBlocks
    from smsbridge.redis import RedisState

    account = uuid.uuid4().hex

    def state() -> RedisState:
        return RedisState(
            redis_url,
            provider="webcom",
            account_id=account,
            secret=b"s" * 32,
            limit=9,
            period=1.0,
            margin=0.04,
            window_ttl=0,
        )

    one, two = state(), state()
    try:
        sends = [
            IdBlocks(s.ranges, f"send {n}".encode(), 31) for n, s in enumerate([one, two, one])
        ]
        for ids in sends:
            await ids.cover(2_000)
        again = IdBlocks(two.ranges, b"send 0", 31)
        await again.cover(2_000)
        all_ids = [ids.id(i) for ids in sends for i in range(2_001)]
        assert len(set(all_ids)) == len(all_ids)
        assert [again.id(i) for i in range(2_001)] == [sends[0].id(i) for i in range(2_001)]
    finally:
        await one.aclose()
        await two.aclose()


@pytest.mark.parametrize("ttl", [120.0, 3_600.0, 30 * 86_400.0])
async def test_a_window_reads_two_buckets_whatever_its_ttl(
    private_redis: RedisServer, ttl: float
) -> None:
    """Buckets are twice the TTL, longer than an entry lives: a reservation reads the
    current bucket and the one before, for a two-minute window as for a month's (one HMGET
    per bucket back over a month would be twenty thousand, on every call). A commit holds
    exactly ``ttl``."""
    client = aioredis.Redis.from_url(private_redis.url)
    window = RedisWindow(client, f"smsbridge:{{test:{uuid.uuid4().hex}}}", b"k" * 32, ttl)
    run = {name: client.register_script(scripts[name]) for name in ("reserve", "commit")}
    fields = window.keys("Shop", "Sale", Batch([0, 1], ["380501234567", "380501234568"]))
    span = window._span
    now = 1_764_000_000_000

    async def call(op: str, at: int, holder: str) -> Any:
        life = window._ttl_ms if op == "commit" else window._reserve_ms
        args: list[Any] = [life, holder, "0,1", at, span, *fields]
        return await run[op](keys=window._hashes, args=args)

    try:
        assert span >= window._reserve_ms
        await client.config_resetstat()
        assert await call("reserve", now, "h1/a") == b"00"
        assert (await client.info("commandstats"))["cmdstat_hmget"]["calls"] == 2
        await call("commit", now, "h1/a")
        assert await call("reserve", now + window._ttl_ms - 1, "h2/a") == b"11"
        assert await call("reserve", now + window._ttl_ms, "h2/a") == b"00"
    finally:
        await client.aclose()


async def test_a_short_ask_never_shortens_the_life_of_starts_that_still_count(
    redis_url: str,
) -> None:
    """Wide promises far ahead (a late process: 1 s lead, 0.5 s width) count until their
    latest moment and the span; a short ask after them (another process's re-ask with a
    60 ms lead) must not cut the key's life below that: when it did, the key expired while
    they counted, the next asks were given "now", and 17 writes fell in one second."""
    client = aioredis.Redis.from_url(redis_url)
    acquire = client.register_script(scripts["acquire"])
    namespace = f"smsbridge:{{test:{uuid.uuid4().hex}}}"
    keys = [f"{namespace}:starts", f"{namespace}:defer", f"{namespace}:mark"]
    span, now = 1_050_000, 1_700_000_000_000_000

    async def ask(at: int, member: str, first: str, lead: int, width: int, *unused: str) -> int:
        args: list[Any] = [9, span, member, at, first, lead, width, "", 0, 0, 0, *unused]
        start, _, _ = await acquire(keys=keys, args=args)
        return int(start)

    try:
        await ask(now, "A:1", "0", 0, 0)
        at = now + 500_000  # A's loop was blocked half a second: its promise went stale
        await ask(at, "B:1", "0", 0, 0)
        latest = await ask(at, "A:2/500000", "1", 1_000_000, 500_000, "A:1") + 500_000
        for n in range(3, 10):
            latest = max(latest, await ask(at, f"A:{n}/500000", "0", 0, 500_000) + 500_000)
        at += 30_000  # B, 30 ms late, asks again with a short lead: 8 starts held, room
        await ask(at, "B:2/60000", "1", 60_000, 60_000, "B:1")
        assert await client.pttl(keys[0]) >= (latest - at + span) / 1000
    finally:
        await client.aclose()


@pytest.mark.parametrize(
    ("indices", "joined"),
    [
        ([7, 8, 9, 10], "7+4"),
        (list(range(1_000, 1_100)), "1000+100"),
        ([7, 8], "7,8"),  # as short either way
        ([7, 9, 10], "7,9,10"),
        ([9, 8, 7], "9,8,7"),
        ([7, 7, 9], "7,7,9"),  # the ends' distance alone does not make a run
        ([True, 2, 3], "True,2,3"),  # not a run Lua would read as one index
        ([10**13 - 2, 10**13 - 1, 10**13], "9999999999998,9999999999999,10000000000000"),
    ],
)
def test_a_batch_s_consecutive_indices_go_as_a_run(indices: list[int], joined: str) -> None:
    """What the window scripts are sent for a batch's recipients: a run of consecutive
    indices as "<first>+<count>", anything else (or a run Lua's numbers could not write digit
    for digit) one by one; the model reads both back as the script does."""
    assert _joined(indices) == joined
    assert _indices(joined) == [str(i) for i in indices]

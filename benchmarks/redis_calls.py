"""What one Redis call of smsbridge's shared state costs: the client's CPU per call on
smsbridge's own pipelined connection against redis-py's asyncio client (the bare round trip,
the window's reservation and commit of a hundred recipients), and Redis's own CPU per call of
each window script (``INFO commandstats``). Sequential calls, then fifty at once.

    .venv/bin/python benchmarks/redis_calls.py --redis redis://127.0.0.1:6379/15 [--calls 2000]

Writes keys under ``smsbridge:{bench:…}`` (they expire within minutes); use a database of its
own.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import time
from collections.abc import Awaitable, Callable
from typing import Any

import redis.asyncio as aioredis

from smsbridge._core.gateway import Batch
from smsbridge._resp import Pipe
from smsbridge.redis import RedisWindow


async def cpu_per_call(calls: int, call: Callable[[int], Awaitable[Any]], together: int) -> float:
    """Client CPU µs per call, ``together`` calls in flight at a time."""
    start = time.process_time()
    for at in range(0, calls, together):
        await asyncio.gather(*(call(at + i) for i in range(together)))
    return (time.process_time() - start) / calls * 1e6


async def script_usec(client: Pipe) -> tuple[int, int]:
    info = (await client.execute("INFO", "commandstats")).decode()
    for line in info.splitlines():
        if line.startswith("cmdstat_evalsha:"):
            fields = dict(kv.split("=") for kv in line.split(":", 1)[1].split(","))
            return int(fields["calls"]), int(fields["usec"])
    return 0, 0


async def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--redis", required=True)
    parser.add_argument("--calls", type=int, default=2000)
    args = parser.parse_args()
    n = args.calls
    pipe = Pipe(args.redis)
    client = aioredis.Redis.from_url(args.redis)
    phones = [f"38050{i:07d}" for i in range(100 * (n + 1))]
    batches = [Batch(list(range(100)), phones[i * 100 : (i + 1) * 100]) for i in range(n + 1)]
    print(f"{n:,} calls each; client CPU µs per call (lower is better)\n")
    print(f"{'call':<36}{'redis-py':>10}{'smsbridge':>11}{'smsbridge, 50 at once':>23}")
    for name, make in (
        ("PING", None),
        ("window: reserve 100", "reserve"),
        ("commit 100", "commit"),
    ):
        row = []
        for side, together in (("redis-py", 1), ("smsbridge", 1), ("smsbridge", 50)):
            conn: Any = client if side == "redis-py" else pipe
            if make is None:
                call: Callable[[int], Awaitable[Any]] = (
                    (lambda i: client.ping())
                    if side == "redis-py"
                    else (lambda i: pipe.execute("PING"))
                )
            else:
                window = RedisWindow(conn, f"smsbridge:{{bench:{os.urandom(6).hex()}}}", b"k" * 32)
                keys = [window.keys("Shop", "Sale", batch) for batch in batches]
                if make == "commit":
                    for i in range(n):
                        await window.reserve(keys[i], "bench/run", batches[i].indices)

                def call(
                    i: int, w: RedisWindow = window, k: list[Any] = keys, op: str = make
                ) -> Any:
                    return getattr(w, op)(k[i], "bench/run", batches[i].indices)

            await call(n) if make is None else None
            row.append(await cpu_per_call(n, call, together))
        print(f"{name:<36}{row[0]:>10.0f}{row[1]:>11.0f}{row[2]:>23.0f}")
    print("\nRedis's own CPU per window call (INFO commandstats, µs):")
    window = RedisWindow(pipe, f"smsbridge:{{bench:{os.urandom(6).hex()}}}", b"k" * 32)
    keys = [window.keys("Shop", "Sale", batch) for batch in batches]
    for name, op, holder in (
        ("reserve 100 new", "reserve", "bench/a"),
        ("reserve 100 again (its own)", "reserve", "bench/a"),
        ("commit 100", "commit", "bench/a"),
        ("reserve 100 committed by another", "reserve", "other/a"),
    ):
        calls0, usec0 = await script_usec(pipe)
        for i in range(n):
            await getattr(window, op)(keys[i], holder, batches[i].indices)
        calls1, usec1 = await script_usec(pipe)
        print(f"  {name:<36}{(usec1 - usec0) / max(1, calls1 - calls0):>8.0f}")
    await client.aclose()
    await pipe.aclose()


if __name__ == "__main__":
    asyncio.run(main())

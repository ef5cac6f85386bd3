"""Client instructions per request, counted by valgrind (callgrind): smsbridge with the rate
limit lifted against the bare aiohttp + msgspec loop of ``throughput.py``, both posting
100-recipient batches to the gateway's fake in its own process (which valgrind does not
count). Instruction counts do not move with the load of a shared machine as CPU time does,
so a change of a few percent shows.

Each side runs twice under valgrind, sending 10,000 and 30,000 recipients (each after a
warm-up of the same size); the difference over the 400 extra requests leaves out start-up
and imports. Needs valgrind; takes about a minute per gateway.

    .venv/bin/python benchmarks/instructions.py [--provider smsclub|smsplus|webcom|all]
        [--redis redis://127.0.0.1:6379/14]

``--redis`` adds smsbridge with its limiter and window in Redis (``redis_url``), against the
same client in memory: the Redis side's cost in instructions. It empties that database and
the next one (a run of each size).
"""

from __future__ import annotations

import argparse
import asyncio
import shutil
from concurrent.futures import ThreadPoolExecutor
from functools import partial
from urllib.parse import urlsplit

import redis
import throughput
from throughput import Runner

from smsbridge.testing import FakeProcess

from _common import TOKEN, instructions

SIZES = (10_000, 30_000)


async def child(name: str, side: str, recipients: int) -> None:
    """One side's warm-up and measured run (what valgrind counts); ``side`` is ``bare``,
    ``smsbridge``, or a Redis URL for smsbridge on it."""
    provider = throughput.PROVIDERS[name]
    args = ["--token", TOKEN, "--rate-limit", "none"]
    if name == "smsplus":
        args += ["--template", "1=Your code is {1}"]
    if side == "bare":
        run: Runner = throughput.bare_loop
    elif side == "smsbridge":
        run = throughput.smsbridge_run
    else:  # each run its own numbers: an emptied database holds no window entry of them
        redis.Redis.from_url(side).flushdb()
        run = partial(throughput.smsbridge_run, redis_url=side)
    async with FakeProcess(name, *args) as fake:
        await run(provider, fake.url, recipients, 16, 9_000_000)
        await run(provider, fake.url, recipients, 16, 0)


def count(name: str, side: str, recipients: int) -> int:
    """Instructions the client process ran."""
    return instructions(__file__, name, side, str(recipients))


def per_request(name: str, side: str) -> float:
    """Instructions per request between the two sizes, both counted at once (through Redis,
    each in a database of its own)."""
    sides = [side] * len(SIZES)
    if side.startswith(("redis://", "unix://")):
        url = urlsplit(side)
        db = int(url.path.strip("/") or 0)
        sides = [url._replace(path=f"/{db + i}").geturl() for i in range(len(SIZES))]
    with ThreadPoolExecutor(len(SIZES)) as pool:
        small, large = pool.map(lambda n, s: count(name, s, n), SIZES, sides)
    return (large - small) / ((SIZES[1] - SIZES[0]) * 2 / 100)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--provider", default="all", choices=["all", *throughput.PROVIDERS])
    parser.add_argument("--redis", default=None, help="also smsbridge with its state in Redis")
    parser.add_argument("--child", nargs=3, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        name, side, recipients = args.child
        asyncio.run(child(name, side, int(recipients)))
        return
    if shutil.which("valgrind") is None:
        raise SystemExit("valgrind is not installed (Debian: apt-get install valgrind)")
    names = list(throughput.PROVIDERS) if args.provider == "all" else [args.provider]
    if args.redis is None:
        print("| gateway | bare loop | smsbridge | ratio |")
        print("| --- | ---: | ---: | ---: |")
    else:
        print("| gateway | bare loop | smsbridge | ratio | through Redis | to in memory |")
        print("| --- | ---: | ---: | ---: | ---: | ---: |")
    for name in names:
        bare, ours = per_request(name, "bare"), per_request(name, "smsbridge")
        row = f"| {name} | {bare:,.0f} | {ours:,.0f} | {ours / bare:.2f}× |"
        if args.redis is not None:
            shared = per_request(name, args.redis)
            row += f" {shared:,.0f} | {shared / ours:.2f}× |"
        print(row, flush=True)


if __name__ == "__main__":
    main()

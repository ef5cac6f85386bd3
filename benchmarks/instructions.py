"""Client instructions per request, counted by valgrind (callgrind): smsbridge with the rate
limit lifted against the bare aiohttp + msgspec loop of ``throughput.py``, both posting
100-recipient batches to the gateway's fake in its own process (which valgrind does not
count). Instruction counts do not move with the load of a shared machine as CPU time does,
so a change of a few percent shows.

Each side runs twice under valgrind, sending 10,000 and 30,000 recipients (each after a
warm-up of the same size); the difference over the 400 extra requests leaves out start-up
and imports. Needs valgrind; takes about a minute per gateway.

    .venv/bin/python benchmarks/instructions.py [--provider smsclub|smsplus|webcom|all]
"""

from __future__ import annotations

import argparse
import asyncio
import shutil
from concurrent.futures import ThreadPoolExecutor

import throughput

from smsbridge.testing import FakeProcess

from _common import TOKEN, instructions

SIZES = (10_000, 30_000)


async def child(name: str, side: str, recipients: int) -> None:
    """One side's warm-up and measured run (what valgrind counts)."""
    provider = throughput.PROVIDERS[name]
    run = throughput.smsbridge_run if side == "smsbridge" else throughput.bare_loop
    args = ["--token", TOKEN, "--rate-limit", "none"]
    if name == "smsplus":
        args += ["--template", "1=Your code is {1}"]
    async with FakeProcess(name, *args) as fake:
        await run(provider, fake.url, recipients, 16, 9_000_000)
        await run(provider, fake.url, recipients, 16, 0)


def count(name: str, side: str, recipients: int) -> int:
    """Instructions the client process ran."""
    return instructions(__file__, name, side, str(recipients))


def per_request(name: str, side: str) -> float:
    """Instructions per request between the two sizes, both counted at once."""
    with ThreadPoolExecutor(len(SIZES)) as pool:
        small, large = pool.map(lambda n: count(name, side, n), SIZES)
    return (large - small) / ((SIZES[1] - SIZES[0]) * 2 / 100)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--provider", default="all", choices=["all", *throughput.PROVIDERS])
    parser.add_argument("--child", nargs=3, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        name, side, recipients = args.child
        asyncio.run(child(name, side, int(recipients)))
        return
    if shutil.which("valgrind") is None:
        raise SystemExit("valgrind is not installed (Debian: apt-get install valgrind)")
    names = list(throughput.PROVIDERS) if args.provider == "all" else [args.provider]
    print("| gateway | bare loop | smsbridge | ratio |")
    print("| --- | ---: | ---: | ---: |")
    for name in names:
        bare, ours = per_request(name, "bare"), per_request(name, "smsbridge")
        print(f"| {name} | {bare:,.0f} | {ours:,.0f} | {ours / bare:.2f}× |")


if __name__ == "__main__":
    main()

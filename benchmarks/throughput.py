"""Client CPU per request and recipients per second: smsbridge with the rate limit lifted
against a bare aiohttp + msgspec loop posting the same 100-number batches at the same
concurrency, both to the fake SMS Club running in its own process.

    .venv/bin/python benchmarks/throughput.py [--recipients 100000] [--concurrency 16]
"""

from __future__ import annotations

import argparse
import asyncio
import time
from collections.abc import Awaitable, Callable

import aiohttp
import msgspec

from smsbridge import SmsClub
from smsbridge.testing import FakeProcess

from _common import TOKEN, median, numbers


async def bare_loop(url: str, recipients: int, concurrency: int, start: int = 0) -> int:
    """What a hand-written client does: batch, encode, POST, decode. No checks at all."""
    encoder = msgspec.json.Encoder()
    headers = {"Authorization": f"Bearer {TOKEN}", "Content-Type": "application/json"}
    queue: asyncio.Queue[list[str] | None] = asyncio.Queue(concurrency)
    accepted = 0

    async def worker(session: aiohttp.ClientSession) -> None:
        nonlocal accepted
        while (batch := await queue.get()) is not None:
            body = encoder.encode({"phone": batch, "src_addr": "Shop", "message": "Sale"})
            async with session.post(f"{url}/sms/send", data=body, headers=headers) as resp:
                answer = msgspec.json.decode(await resp.read())
                accepted += len(answer["success_request"]["info"])

    connector = aiohttp.TCPConnector(limit=concurrency + 4)
    async with aiohttp.ClientSession(connector=connector) as session:
        workers = [asyncio.create_task(worker(session)) for _ in range(concurrency)]
        batch: list[str] = []
        for phone in numbers(recipients, start):
            batch.append(phone)
            if len(batch) == 100:
                await queue.put(batch)
                batch = []
        if batch:
            await queue.put(batch)
        for _ in workers:
            await queue.put(None)
        await asyncio.gather(*workers)
    return accepted


async def smsbridge_send(url: str, recipients: int, concurrency: int, start: int = 0) -> int:
    """The same work through smsbridge: validation, duplicate window, outcomes, retries."""
    async with SmsClub(TOKEN, base_url=url, rate=1_000_000, concurrency=concurrency) as sms:
        report = await sms.send("Sale", to=numbers(recipients, start), sender="Shop", keep="none")
    return report.accepted


Runner = Callable[[str, int, int, int], Awaitable[int]]


async def measure(
    name: str, run: Runner, url: str, recipients: int, concurrency: int
) -> tuple[float, float]:
    """CPU µs per request and recipients per second of one run, after a warm-up run."""
    await run(url, 2_000, concurrency, 9_000_000)  # imports, metadata, connections: warm
    start_wall, start_cpu = time.perf_counter(), time.process_time()
    accepted = await run(url, recipients, concurrency, 0)
    wall, cpu = time.perf_counter() - start_wall, time.process_time() - start_cpu
    assert accepted == recipients, (name, accepted)
    requests = recipients / 100
    return cpu / requests * 1e6, recipients / wall


async def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--recipients", type=int, default=100_000)
    parser.add_argument("--concurrency", type=int, default=16)
    parser.add_argument("--rounds", type=int, default=5)
    args = parser.parse_args()
    results: dict[str, list[tuple[float, float]]] = {"bare aiohttp + msgspec": [], "smsbridge": []}
    runners: list[tuple[str, Runner]] = [
        ("bare aiohttp + msgspec", bare_loop),
        ("smsbridge", smsbridge_send),
    ]
    for round_ in range(args.rounds):
        for name, run in runners if round_ % 2 == 0 else runners[::-1]:
            # a fresh fake per run: its record grows with every message it accepts
            async with FakeProcess("smsclub", "--token", TOKEN, "--rate-limit", "none") as fake:
                results[name].append(
                    await measure(name, run, fake.url, args.recipients, args.concurrency)
                )
    print(
        f"{args.recipients:,} recipients, 100 per request, concurrency {args.concurrency}, "
        f"median of {args.rounds} rounds; fake SMS Club in its own process"
    )
    print(f"{'client':<24}{'CPU µs/request':>16}{'recipients/s':>16}")
    base_cpu = median([r[0] for r in results["bare aiohttp + msgspec"]])
    base_rate = median([r[1] for r in results["bare aiohttp + msgspec"]])
    for name, rows in results.items():
        cpu, rate = median([r[0] for r in rows]), median([r[1] for r in rows])
        ratios = f"({cpu / base_cpu:.2f}x CPU, {rate / base_rate:.2f}x throughput)"
        print(f"{name:<24}{cpu:>16.0f}{rate:>16,.0f}   {ratios}")


if __name__ == "__main__":
    asyncio.run(main())

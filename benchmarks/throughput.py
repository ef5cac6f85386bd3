"""Client CPU per request and recipients per second: smsbridge with the rate limit lifted
against a bare aiohttp + msgspec loop posting the same 100-recipient batches at the same
concurrency, both to the gateway's fake running in its own process.

    .venv/bin/python benchmarks/throughput.py [--provider smsclub|smsplus|webcom|all]
                                              [--recipients 100000] [--concurrency 16]
"""

from __future__ import annotations

import argparse
import asyncio
import time
from collections.abc import Awaitable, Callable, Iterator
from dataclasses import dataclass
from typing import Any

import aiohttp
import msgspec

from smsbridge import SmsClub, SmsPlus, Template, Webcom
from smsbridge.testing import FakeProcess

from _common import TOKEN, median, numbers

TEMPLATE = Template(id=1, text="Your code is {1}")


def az_numbers(count: int, start: int = 0) -> Iterator[str]:
    """Distinct valid Azerbaijani mobile numbers, lazily."""
    for i in range(start, start + count):
        yield f"99450{i:07d}"


@dataclass(frozen=True)
class Provider:
    """How to drive one gateway both ways."""

    name: str
    path: str
    entries: Callable[[int, int], Iterator[Any]]
    body: Callable[[list[Any]], dict[str, Any]]
    accepted: Callable[[Any, int], int]
    smsbridge: Callable[..., Awaitable[int]]  # (url, entries, concurrency, **client options)


async def _smsclub(url: str, entries: Iterator[Any], concurrency: int, **options: Any) -> int:
    async with SmsClub(
        TOKEN, base_url=url, rate=1_000_000, concurrency=concurrency, **options
    ) as sms:
        report = await sms.send("Sale", to=entries, sender="Shop", keep="none")
    return report.accepted


async def _smsplus(url: str, entries: Iterator[Any], concurrency: int, **options: Any) -> int:
    async with SmsPlus(
        TOKEN, base_url=url, rate=1_000_000, concurrency=concurrency, **options
    ) as sms:
        report = await sms.send_template(
            1, sender="Shop", to=entries, template=TEMPLATE, keep="none"
        )
    return report.accepted


async def _webcom(url: str, entries: Iterator[Any], concurrency: int, **options: Any) -> int:
    async with Webcom(
        TOKEN, base_url=url, rate=1_000_000, concurrency=concurrency, **options
    ) as sms:
        report = await sms.send("Sale", to=entries, sender="Shop", keep="none")
    return report.accepted


def ru_numbers(count: int, start: int = 0) -> Iterator[str]:
    """Distinct valid Russian mobile numbers, lazily."""
    for i in range(start, start + count):
        yield f"7916{i:07d}"


PROVIDERS = {
    "smsclub": Provider(
        "smsclub",
        "/sms/send",
        numbers,
        lambda batch: {"phone": batch, "src_addr": "Shop", "message": "Sale"},
        lambda answer, n: len(answer["success_request"]["info"]),
        _smsclub,
    ),
    "smsplus": Provider(
        "smsplus",
        "/api/sms/send",
        lambda count, start: ((p, (str(i),)) for i, p in enumerate(az_numbers(count, start))),
        lambda batch: {
            "sender_name": "Shop",
            "message_template_id": 1,
            "mobile_numbers": [p for p, _ in batch],
            "first_parameters": [params[0] for _, params in batch],
        },
        lambda answer, n: n if answer["code"] == "100" else 0,
        _smsplus,
    ),
    "webcom": Provider(
        "webcom",
        "/json",
        ru_numbers,
        lambda batch: {
            "token": TOKEN,
            "message": [
                {
                    "type_send_1": "sms",
                    "sender": "Shop",
                    "text": "Sale",
                    "phones": [{"phone": p} for p in batch],
                }
            ],
        },
        lambda answer, n: sum(1 for e in answer["information"] if "id_sms" in e),
        _webcom,
    ),
}


async def bare_loop(
    provider: Provider, url: str, recipients: int, concurrency: int, start: int
) -> int:
    """What a hand-written client does: batch, encode, POST, decode. No checks at all."""
    encoder = msgspec.json.Encoder()
    headers = {"Authorization": f"Bearer {TOKEN}", "Content-Type": "application/json"}
    queue: asyncio.Queue[list[Any] | None] = asyncio.Queue(concurrency)
    accepted = 0

    async def worker(session: aiohttp.ClientSession) -> None:
        nonlocal accepted
        while (batch := await queue.get()) is not None:
            body = encoder.encode(provider.body(batch))
            async with session.post(url + provider.path, data=body, headers=headers) as resp:
                accepted += provider.accepted(msgspec.json.decode(await resp.read()), len(batch))

    connector = aiohttp.TCPConnector(limit=concurrency + 4)
    async with aiohttp.ClientSession(connector=connector) as session:
        workers = [asyncio.create_task(worker(session)) for _ in range(concurrency)]
        await hand_out(queue, provider.entries(recipients, start), workers)
    return accepted


async def hand_out(
    queue: asyncio.Queue[list[Any] | None],
    entries: Iterator[Any],
    workers: list[asyncio.Task[None]],
) -> None:
    """Batches of 100 of ``entries`` onto ``queue``, then an end for each of ``workers``;
    returns when they have all ended."""
    batch: list[Any] = []
    for entry in entries:
        batch.append(entry)
        if len(batch) == 100:
            await queue.put(batch)
            batch = []
    if batch:
        await queue.put(batch)
    for _ in workers:
        await queue.put(None)
    await asyncio.gather(*workers)


async def smsbridge_run(
    provider: Provider, url: str, recipients: int, concurrency: int, start: int, **options: Any
) -> int:
    """The same work through smsbridge: validation, duplicate window, outcomes, retries
    (``options``: the client's, such as ``redis_url``)."""
    return await provider.smsbridge(
        url, provider.entries(recipients, start), concurrency, **options
    )


Runner = Callable[[Provider, str, int, int, int], Awaitable[int]]


async def measure(
    provider: Provider, run: Runner, url: str, recipients: int, concurrency: int
) -> tuple[float, float]:
    """CPU µs per request and recipients per second of one run, after a warm-up run."""
    await run(provider, url, 2_000, concurrency, 9_000_000)  # imports, connections: warm
    start_wall, start_cpu = time.perf_counter(), time.process_time()
    accepted = await run(provider, url, recipients, concurrency, 0)
    wall, cpu = time.perf_counter() - start_wall, time.process_time() - start_cpu
    assert accepted == recipients, (provider.name, accepted)
    return cpu / (recipients / 100) * 1e6, recipients / wall


async def compare(provider: Provider, recipients: int, concurrency: int, rounds: int) -> None:
    results: dict[str, list[tuple[float, float]]] = {"bare aiohttp + msgspec": [], "smsbridge": []}
    runners: list[tuple[str, Runner]] = [
        ("bare aiohttp + msgspec", bare_loop),
        ("smsbridge", smsbridge_run),
    ]
    fake_args = ["--token", TOKEN, "--rate-limit", "none"]
    if provider.name == "smsplus":
        fake_args += ["--template", "1=Your code is {1}"]
    for round_ in range(rounds):
        for name, run in runners if round_ % 2 == 0 else runners[::-1]:
            # a fresh fake per run: its record grows with every message it accepts
            async with FakeProcess(provider.name, *fake_args) as fake:
                results[name].append(
                    await measure(provider, run, fake.url, recipients, concurrency)
                )
    print(
        f"\n{provider.name}: {recipients:,} recipients, 100 per request, concurrency "
        f"{concurrency}, median of {rounds} rounds; the fake in its own process"
    )
    print(f"{'client':<24}{'CPU µs/request':>16}{'recipients/s':>16}")
    base_cpu = median([r[0] for r in results["bare aiohttp + msgspec"]])
    base_rate = median([r[1] for r in results["bare aiohttp + msgspec"]])
    for name, rows in results.items():
        cpu, rate = median([r[0] for r in rows]), median([r[1] for r in rows])
        ratios = f"({cpu / base_cpu:.2f}x CPU, {rate / base_rate:.2f}x throughput)"
        print(f"{name:<24}{cpu:>16.0f}{rate:>16,.0f}   {ratios}")


async def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--provider", default="all", choices=["all", *PROVIDERS])
    parser.add_argument("--recipients", type=int, default=100_000)
    parser.add_argument("--concurrency", type=int, default=16)
    parser.add_argument("--rounds", type=int, default=5)
    args = parser.parse_args()
    chosen = PROVIDERS.values() if args.provider == "all" else [PROVIDERS[args.provider]]
    for provider in chosen:
        await compare(provider, args.recipients, args.concurrency, args.rounds)


if __name__ == "__main__":
    asyncio.run(main())

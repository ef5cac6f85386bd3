"""What an idle client costs in memory: N clients of one gateway, each opened, and then each
after one send (its session and a kept connection), against the gateway's fake in its own
process. Memory is Python's own allocations (tracemalloc) and the process's resident set,
each divided by N; each gateway in a fresh interpreter, so that its RSS is its own.

    .venv/bin/python benchmarks/idle_client.py [--clients 200]
"""

from __future__ import annotations

import argparse
import asyncio
import gc
import subprocess
import sys
import tracemalloc
import warnings
from collections.abc import Awaitable, Callable
from typing import Any

from smsbridge import SmsClub, SmsPlus, Template, Webcom
from smsbridge.testing import FakeProcess

TEMPLATE = Template(id=1, text="Your code is {1}")


def _rss() -> int:
    """This process's resident set size now, in bytes."""
    with open("/proc/self/statm") as f:
        return int(f.read().split()[1]) * 4096


def _token(i: int) -> str:
    return f"account-{i:04d}-token"


async def _smsclub(client: Any, i: int) -> object:
    return await client.send("Sale", to=[f"3805{i:08d}"], sender="Shop")


async def _smsplus(client: Any, i: int) -> object:
    entry = (f"9945{i:08d}", ("1",))
    return await client.send_template(1, sender="Shop", to=[entry], template=TEMPLATE)


async def _webcom(client: Any, i: int) -> object:
    return await client.send("Sale", to=[f"7916{i:07d}"], sender="Shop")


GATEWAYS: dict[str, tuple[type[Any], Callable[[Any, int], Awaitable[object]], list[str]]] = {
    "smsclub": (SmsClub, _smsclub, []),
    "smsplus": (SmsPlus, _smsplus, ["--template", "1=Your code is {1}"]),
    "webcom": (Webcom, _webcom, []),
}


async def measure(name: str, n: int) -> None:
    kind, send, extra = GATEWAYS[name]
    tokens = [arg for i in range(n + 1) for arg in ("--token", _token(i))]
    async with FakeProcess(name, "--rate-limit", "none", *tokens, *extra) as fake:
        warm = kind(_token(n), base_url=fake.url)  # imports and first-use caches: not counted
        async with warm:
            await send(warm, n)
        tracemalloc.start()
        gc.collect()
        rss0, traced0 = _rss(), tracemalloc.get_traced_memory()[0]
        clients = [kind(_token(i), base_url=fake.url) for i in range(n)]
        for client in clients:
            await client.__aenter__()
        gc.collect()
        rss1, traced1 = _rss(), tracemalloc.get_traced_memory()[0]
        for i, client in enumerate(clients):
            await send(client, i)
        gc.collect()
        rss2, traced2 = _rss(), tracemalloc.get_traced_memory()[0]
        tracemalloc.stop()
        for client in clients:
            await client.__aexit__(None, None, None)
    kib = 1024 * n
    print(
        f"| {name} | {(traced1 - traced0) / kib:.1f} | {(rss1 - rss0) / kib:.1f} "
        f"| {(traced2 - traced0) / kib:.1f} | {(rss2 - rss0) / kib:.1f} |"
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--clients", type=int, default=200)
    parser.add_argument("--gateway", choices=GATEWAYS, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.gateway is not None:
        warnings.simplefilter("ignore")  # plain HTTP to the loopback fake is the point here
        asyncio.run(measure(args.gateway, args.clients))
        return
    print(f"{args.clients} clients per gateway, KiB per client")
    print("| gateway | opened: Python | opened: RSS | after a send: Python | after a send: RSS |")
    print("| --- | ---: | ---: | ---: | ---: |")
    for name in GATEWAYS:
        command = [sys.executable, __file__, "--gateway", name, "--clients", str(args.clients)]
        subprocess.run(command, check=True, stderr=subprocess.DEVNULL)


if __name__ == "__main__":
    main()

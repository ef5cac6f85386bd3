"""Where SMS Club's instructions per request go: ``instructions.py``'s count (callgrind, the
fake in its own process, the difference between 10,000 and 30,000 recipients) for smsbridge
with one part of its per-recipient work replaced by a stub, for the bare loop with the read
and connect time limits smsbridge sets, and for the bare loop's work over a minimal HTTP/1.1
client on asyncio protocols (keep-alive, Content-Length answers only: what the HTTP layer
costs, not a client to use). The stubs answer as the real parts do for this input (every
number valid, new and accepted), so the send runs the same path otherwise.

    .venv/bin/python benchmarks/ablation.py [VARIANT ...]

Takes a minute or two per variant; needs valgrind.
"""

from __future__ import annotations

import argparse
import asyncio
import re
import shutil
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from types import SimpleNamespace
from typing import Any

import aiohttp
import msgspec
import throughput
from yarl import URL

from smsbridge import SmsClub
from smsbridge.testing import FakeProcess

from _common import TOKEN, instructions

SIZES = (10_000, 30_000)
PROVIDER = throughput.PROVIDERS["smsclub"]


def _no_window() -> None:
    """The duplicate window's keys, claims and commits answer at once: all new."""
    from smsbridge._core.window import Claim, MemoryWindow

    async def reserve(self: Any, keys: Any, holder: str, indices: Any) -> list[Claim]:
        return [Claim.OURS] * len(keys)

    async def commit(self: Any, keys: Any, holder: str, indices: Any, extra: float = 0.0) -> None:
        return None

    zeros = [0] * 1000

    def keys(self: Any, sender: str, text: str | None, batch: Any) -> list[Any]:
        return zeros[: len(batch)]

    for name, stub in (("reserve", reserve), ("commit", commit), ("keys", keys)):
        setattr(MemoryWindow, name, stub)


def _no_parse() -> None:
    """SMS Club's answer is not read: every number accepted, without an id."""
    from smsbridge._core.gateway import BatchResult
    from smsbridge._core.models import Status
    from smsbridge._smsclub.adapter import SmsClubGateway

    def parse_send(self: Any, batch: Any, response: Any, job: Any) -> BatchResult:
        return BatchResult([Status.ACCEPTED] * len(batch), [None] * len(batch))

    setattr(SmsClubGateway, "parse_send", parse_send)  # noqa: B010 - a stub, for the count


def _no_numbers() -> None:
    """Numbers are taken as they come, unchecked."""
    from smsbridge._core.phones import PhoneRules

    def normalise_many(self: Any, raws: Any) -> tuple[list[Any], dict[int, str]]:
        return list(raws), {}

    setattr(PhoneRules, "normalise_many", normalise_many)  # noqa: B010 - a stub


def _timed_session(*args: Any, **kwargs: Any) -> aiohttp.ClientSession:
    """The bare loop's session with smsbridge's default time limits."""
    kwargs["timeout"] = aiohttp.ClientTimeout(total=90, connect=10, sock_connect=10, sock_read=60)
    return aiohttp.ClientSession(*args, **kwargs)


class _Connection(asyncio.Protocol):
    """One keep-alive connection: the answer to the request written last."""

    def __init__(self) -> None:
        self.buffer = bytearray()
        self.answer: asyncio.Future[bytes] | None = None
        self.transport: asyncio.Transport | None = None

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = transport  # type: ignore[assignment]

    def data_received(self, data: bytes) -> None:
        self.buffer += data
        end = self.buffer.find(b"\r\n\r\n")
        if end < 0 or self.answer is None or self.answer.done():
            return
        head = bytes(self.buffer[:end]).decode("latin-1").lower()
        length = int(re.search(r"content-length:\s*(\d+)", head).group(1))  # type: ignore[union-attr]
        if len(self.buffer) - end - 4 >= length:
            body = bytes(self.buffer[end + 4 : end + 4 + length])
            del self.buffer[: end + 4 + length]
            self.answer.set_result(body)

    def connection_lost(self, exc: Exception | None) -> None:
        if self.answer is not None and not self.answer.done():
            self.answer.set_exception(ConnectionError("closed"))


async def _protocol_loop(url: str, recipients: int, concurrency: int, start: int) -> int:
    """The bare loop's work (batch, encode, POST, decode) over :class:`_Connection`."""
    base, loop = URL(url), asyncio.get_running_loop()
    host, port = base.host or "127.0.0.1", base.port or 80
    encoder = msgspec.json.Encoder()
    head = (
        f"POST {PROVIDER.path} HTTP/1.1\r\nHost: {host}:{port}\r\n"
        f"Authorization: Bearer {TOKEN}\r\nContent-Type: application/json\r\n"
        "User-Agent: bare\r\nContent-Length: "
    ).encode()
    queue: asyncio.Queue[list[Any] | None] = asyncio.Queue(concurrency)
    accepted = 0

    async def worker() -> None:
        nonlocal accepted
        _, connection = await loop.create_connection(_Connection, host, port)
        assert connection.transport is not None
        while (batch := await queue.get()) is not None:
            body = encoder.encode(PROVIDER.body(batch))
            connection.answer = loop.create_future()
            connection.transport.write(head + str(len(body)).encode() + b"\r\n\r\n" + body)
            timer = loop.call_later(60, lambda: None)  # a read time limit, as the others
            answer = await connection.answer
            timer.cancel()
            accepted += PROVIDER.accepted(msgspec.json.decode(answer), len(batch))
        connection.transport.close()

    workers = [asyncio.create_task(worker()) for _ in range(concurrency)]
    await throughput.hand_out(queue, PROVIDER.entries(recipients, start), workers)
    return accepted


async def _smsbridge(url: str, recipients: int, concurrency: int, start: int) -> int:
    entries = PROVIDER.entries(recipients, start)
    async with SmsClub(TOKEN, base_url=url, rate=1_000_000, concurrency=concurrency) as sms:
        report = await sms.send("Sale", to=entries, sender="Shop", keep="none")
    return report.accepted


async def _bare(url: str, recipients: int, concurrency: int, start: int) -> int:
    return await throughput.bare_loop(PROVIDER, url, recipients, concurrency, start)


Run = Callable[[str, int, int, int], Any]
VARIANTS: dict[str, tuple[Run, list[Callable[[], None]]]] = {
    "smsbridge": (_smsbridge, []),
    "no-window": (_smsbridge, [_no_window]),
    "no-parse": (_smsbridge, [_no_parse]),
    "no-numbers": (_smsbridge, [_no_numbers]),
    "none-of-the-three": (_smsbridge, [_no_window, _no_parse, _no_numbers]),
    "bare": (_bare, []),
    "bare-time-limits": (_bare, []),
    "bare-protocol": (_protocol_loop, []),
}


async def child(variant: str, recipients: int) -> None:
    """One variant's warm-up and measured run (what valgrind counts)."""
    run, stubs = VARIANTS[variant]
    for stub in stubs:
        stub()
    if variant == "bare-time-limits":
        timed = SimpleNamespace(ClientSession=_timed_session, TCPConnector=aiohttp.TCPConnector)
        setattr(throughput, "aiohttp", timed)  # noqa: B010 - the bare loop's module, timed
    async with FakeProcess("smsclub", "--token", TOKEN, "--rate-limit", "none") as fake:
        await run(fake.url, recipients, 16, 9_000_000)
        accepted = await run(fake.url, recipients, 16, 0)
    assert accepted == recipients, (variant, accepted)


def count(variant: str, recipients: int) -> int:
    """Instructions the client process ran."""
    return instructions(__file__, variant, str(recipients))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("variants", nargs="*", metavar="VARIANT", help=", ".join(VARIANTS))
    parser.add_argument("--child", nargs=2, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        asyncio.run(child(args.child[0], int(args.child[1])))
        return
    unknown = [v for v in args.variants if v not in VARIANTS]
    if unknown:
        parser.error(f"unknown variant {unknown[0]!r}; one of {', '.join(VARIANTS)}")
    if shutil.which("valgrind") is None:
        raise SystemExit("valgrind is not installed (Debian: apt-get install valgrind)")
    print("| variant | instructions / request |")
    print("| --- | ---: |")
    for variant in args.variants or VARIANTS:
        with ThreadPoolExecutor(len(SIZES)) as pool:
            small, large = pool.map(lambda n, v=variant: count(v, n), SIZES)
        # each run sends its size twice (a warm-up, then the run)
        per_request = (large - small) / ((SIZES[1] - SIZES[0]) * 2 / 100)
        print(f"| {variant} | {per_request:,.0f} |", flush=True)


if __name__ == "__main__":
    main()
